"""One parameter holder for every layer: recurrent modules and cells, heads, embeddings, models.

A layer keeps its arrays in ``params`` (named like torch's ``named_parameters()``) and the
gradients of its last ``backward`` in ``grads`` (the same names); everything a torch user
reaches for is here, once::

    m.weight_ih_l0                      # a parameter by attribute, like torch
    m.parameters(), m.named_parameters()
    m.state_dict(), m.load_state_dict(torch_module.state_dict())
    m.zero_grad(), m.to(backend="torch", device="cuda", dtype="float32")
    m.train(), m.eval(), m.training    # training mode: only dropout behaves differently
    m.dtype, m.backend, m.device
"""


from .backend import check_like, device_of, dtype_name, is_torch, namespace, resolve_dtype, to_backend, zeros

__all__ = ["Parameters", "uniform"]

BACKENDS = ("numpy", "torch")


def uniform(rng, bound, shapes, dtype):
    """``{name: U(−bound, bound) array of shape}``, drawn in the order of ``shapes`` (torch's init
    of recurrent and linear layers, with bound 1/√H and 1/√in_features)."""
    dtype = resolve_dtype(dtype, "numpy")
    return {name: rng.uniform(-bound, bound, shape).astype(dtype) for name, shape in shapes.items()}


class Parameters:
    """Base of every rnnkit layer: ``params`` and ``grads`` dicts named like torch, attribute
    access to the parameters, and torch's parameter methods.

    Subclasses set ``self.params`` (through :meth:`_set_params`) and implement ``forward`` and
    ``backward``; ``backward`` *sets* ``grads`` (it does not accumulate like torch's ``.grad``).
    """

    _cache = None
    training = True  # like torch: layers start in training mode

    def _set_params(self, params):
        """Install a new ``params`` dict: gradients back to zero, the forward cache dropped."""
        self.__dict__["params"] = params
        self._cache = None
        self.zero_grad()

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ torch's methods

    def __getattr__(self, name):
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        params = self.__dict__.get("params")
        if params is not None and name in params:
            old = params[name]
            namespace(old, value)
            if tuple(value.shape) != tuple(old.shape):
                raise ValueError(f"{name} must have shape {tuple(old.shape)}, got {tuple(value.shape)}")
            params[name] = value
        else:
            object.__setattr__(self, name, value)

    def parameters(self):
        """The parameter arrays, in torch's order."""
        return list(self.params.values())

    def named_parameters(self):
        """``(name, array)`` pairs, in torch's order."""
        return list(self.params.items())

    def state_dict(self):
        """``{name: array}`` of the parameters (the arrays themselves, like torch)."""
        return dict(self.params)

    def load_state_dict(self, state):
        """Copy arrays (numpy or torch, e.g. a torch module's ``state_dict()``) into ``params``
        after checking their names and shapes. The layer takes the arrays' backend, device and
        dtype: a torch state dict makes a torch layer. Returns ``self``."""
        missing, unexpected = set(self.params) - set(state), set(state) - set(self.params)
        if missing or unexpected:
            raise KeyError(f"state dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for name, value in state.items():
            if tuple(value.shape) != tuple(self.params[name].shape):
                raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {tuple(self.params[name].shape)}")
        namespace(*state.values())  # one backend for all
        backend = "torch" if is_torch(next(iter(state.values()))) else "numpy"
        self._set_params({name: to_backend(state[name], backend) for name in self.params})  # copies
        return self

    def train(self, mode=True):
        """Training mode (``mode=False``: evaluation mode), like torch: it changes only what
        dropout does. Returns ``self``."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``. Returns ``self``."""
        return self.train(False)

    def zero_grad(self):
        """Set every gradient in ``grads`` to zeros."""
        self.grads = {name: zeros(namespace(p), tuple(p.shape), p) for name, p in self.params.items()}

    def to(self, backend=None, device=None, dtype=None):
        """Convert the parameters to ``backend`` ('numpy' or 'torch'), ``device`` and ``dtype``
        (each ``None`` keeps the current one); gradients start again from zero. Returns ``self``."""
        backend = self.backend if backend is None else backend
        if backend not in BACKENDS:
            raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
        if dtype is not None:
            resolve_dtype(dtype, "numpy")  # validates
        self._set_params({k: to_backend(p, backend, device, dtype) for k, p in self.params.items()})
        return self

    @property
    def dtype(self):
        """'float32' or 'float64'."""
        return dtype_name(self._first())

    @property
    def backend(self):
        """'numpy' or 'torch'."""
        return "torch" if is_torch(self._first()) else "numpy"

    @property
    def device(self):
        """'cpu' for numpy, the tensors' device for torch."""
        return device_of(self._first())

    # ------------------------------------------------------------------ for subclasses

    def _first(self):
        return next(iter(self.params.values()))

    def _check_array(self, a, what):
        """``a``'s namespace, after checking that it has the parameters' backend, dtype and device."""
        return check_like(a, what, self._first())

    def _forward_cache(self):
        """The cache of the last ``forward``, for ``backward``."""
        if self._cache is None:
            raise RuntimeError("backward() needs a forward() call first (it was called before forward())")
        return self._cache
