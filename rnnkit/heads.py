r"""Output heads: what turns the hidden state :math:`h_t` into the output :math:`y_t` at every step.

The same head (same weights) is applied at every time step. It works on hidden states of shape
``(T, B, H)`` (all steps at once) or ``(B, H)`` (one step): any leading axes are carried along.

* linear head: :math:`y_t = W_y h_t + b_y`, with ``W`` stored ``(out, in)`` like ``torch.nn.Linear``;
* softmax head: :math:`p_t = \mathrm{softmax}(W_y h_t + b_y)` (``output="softmax"``);
* deep head (:class:`MLPHead`): Linear - tanh/ReLU - ... - Linear, still applied step by step
  (depth between :math:`h_t` and :math:`y_t`, not through time).

For classification train on the logits with :func:`rnnkit.losses.cross_entropy`; the softmax output is
for reading probabilities or for losses defined on probabilities.
"""

import math

import numpy as np

from .backend import namespace, no_autograd
from .losses import softmax, softmax_backward
from .params import Parameters, uniform

__all__ = [
    "linear_forward",
    "linear_backward",
    "softmax_head_forward",
    "softmax_head_backward",
    "tanh_forward",
    "tanh_backward",
    "relu_forward",
    "relu_backward",
    "Linear",
    "MLPHead",
]


# ---------------------------------------------------------------------------------------------------
# functional layer: *_forward(...) -> (out, cache), *_backward(dout, cache) -> {name: gradient}
# ---------------------------------------------------------------------------------------------------


@no_autograd
def linear_forward(h, W, b=None):
    r"""Affine output head applied at every step: :math:`y_t = W_y h_t + b_y`.

    ``h`` is ``(..., H)`` (e.g. ``(T, B, H)``), ``W`` is ``(K, H)``, ``b`` is ``(K,)`` or ``None``;
    ``y`` is ``(..., K)``. In code this is ``h @ W.T + b``. Returns ``(y, cache)``.
    """
    xp = namespace(h, W)
    if W.ndim != 2 or h.shape[-1] != W.shape[1]:
        raise ValueError(
            f"h has {h.shape[-1]} features, expected in_features={W.shape[1]} "
            f"(W has shape {tuple(W.shape)}, stored (out, in))"
        )
    if b is not None and tuple(b.shape) != (W.shape[0],):
        raise ValueError(f"b has shape {tuple(b.shape)}, expected ({W.shape[0]},)")
    y = xp.matmul(h, W.T)
    if b is not None:
        y = y + b
    return y, (h, W, b is not None)


@no_autograd
def linear_backward(dy, cache):
    r"""Backward pass of :func:`linear_forward`.

    .. math:: \frac{\partial E}{\partial h_t} = W_y^\top \frac{\partial E}{\partial y_t}, \qquad
              \frac{\partial E}{\partial W_y} = \sum_t \frac{\partial E}{\partial y_t} h_t^\top, \qquad
              \frac{\partial E}{\partial b_y} = \sum_t \frac{\partial E}{\partial y_t}

    The weights are shared by every step (and every batch element), so their gradients are sums over
    all leading axes. Returns ``{"h": dh, "W": dW, "b": db}`` (no ``"b"`` without a bias).
    """
    h, W, has_bias = cache
    xp = namespace(dy, W)
    expected = tuple(h.shape[:-1]) + (W.shape[0],)
    if tuple(dy.shape) != expected:
        raise ValueError(f"dy has shape {tuple(dy.shape)}, expected {expected}")
    dh = xp.matmul(dy, W)
    dy_rows = xp.reshape(dy, (-1, W.shape[0]))  # every (step, batch) position is one row
    h_rows = xp.reshape(h, (-1, W.shape[1]))
    grads = {"h": dh, "W": dy_rows.T @ h_rows}
    if has_bias:
        grads["b"] = xp.sum(dy_rows, axis=0)
    return grads


@no_autograd
def softmax_head_forward(h, W, b=None):
    r"""Softmax output head: :math:`p_t = \mathrm{softmax}(W_y h_t + b_y)`. Returns ``(p, cache)``."""
    z, linear_cache = linear_forward(h, W, b)
    p = softmax(z, axis=-1)
    return p, (linear_cache, p)


@no_autograd
def softmax_head_backward(dp, cache):
    r"""Backward pass of :func:`softmax_head_forward`: through the softmax
    (:func:`rnnkit.losses.softmax_backward`), then the linear map. Returns ``{"h": dh, "W": dW, "b": db}``."""
    linear_cache, p = cache
    return linear_backward(softmax_backward(dp, p, axis=-1)["logits"], linear_cache)


@no_autograd
def tanh_forward(z):
    r""":math:`a = \tanh(z)`. Returns ``(a, cache)``."""
    a = namespace(z).tanh(z)
    return a, a


@no_autograd
def tanh_backward(da, cache):
    r""":math:`\partial E/\partial z = \partial E/\partial a \odot (1 - a^2)`. Returns ``{"z": dz}``."""
    a = cache
    return {"z": da * (1 - a * a)}


@no_autograd
def relu_forward(z):
    r""":math:`a = \max(z, 0)`. Returns ``(a, cache)``."""
    xp = namespace(z)
    return xp.where(z > 0, z, xp.zeros_like(z)), z


@no_autograd
def relu_backward(da, cache):
    r""":math:`\partial E/\partial z = \partial E/\partial a \odot [z > 0]`. Returns ``{"z": dz}``."""
    z = cache
    xp = namespace(da, z)
    return {"z": xp.where(z > 0, da, xp.zeros_like(da))}


_ACTIVATIONS = {"tanh": (tanh_forward, tanh_backward), "relu": (relu_forward, relu_backward)}
_OUTPUTS = ("linear", "softmax")


# ---------------------------------------------------------------------------------------------------
# objects: params / grads dicts named like torch, forward / backward
# ---------------------------------------------------------------------------------------------------


def _init_linear(rng, in_features, out_features, bias, dtype):
    """torch.nn.Linear's initialisation: weight and bias uniform in [-1/sqrt(in), 1/sqrt(in)]."""
    shapes = {"weight": (out_features, in_features)}
    if bias:
        shapes["bias"] = (out_features,)
    return uniform(rng, 1.0 / math.sqrt(in_features), shapes, dtype)


def _check_output(output):
    if output not in _OUTPUTS:
        raise ValueError(f"output={output!r}, expected one of {_OUTPUTS}")


class Linear(Parameters):
    r"""Per-step linear head :math:`y_t = W_y h_t + b_y` (optionally followed by a softmax), like
    ``torch.nn.Linear``.

    ``params``: ``weight`` ``(out_features, in_features)`` and ``bias`` ``(out_features,)``, initialised like
    torch from ``seed`` (an int, a ``numpy.random.Generator`` or ``None``) as numpy arrays of ``dtype``
    (``.to("torch")`` moves them). ``forward(h)`` takes ``(..., in_features)``; ``backward(dy)`` takes the
    gradient with respect to the output (the probabilities when ``output="softmax"``), stores ``grads``
    (replacing the previous ones) and returns the gradient with respect to ``h``.
    """

    def __init__(self, in_features, out_features, bias=True, output="linear", *, seed=None, dtype="float64"):
        _check_output(output)
        self.output = output
        self._set_params(_init_linear(np.random.default_rng(seed), in_features, out_features, bias, dtype))

    def forward(self, h):
        head_forward = softmax_head_forward if self.output == "softmax" else linear_forward
        y, self._cache = head_forward(h, self.params["weight"], self.params.get("bias"))
        return y

    def backward(self, dy):
        head_backward = softmax_head_backward if self.output == "softmax" else linear_backward
        grads = head_backward(dy, self._forward_cache())
        self.grads = {name: grads[key] for name, key in (("weight", "W"), ("bias", "b")) if key in grads}
        return grads["h"]


class MLPHead(Parameters):
    r"""A deep (non-recurrent) output head applied at every step: Linear - act - ... - Linear.

    ``sizes = [H, hidden_1, ..., hidden_L, K]``, with the activation :math:`\phi` (tanh or ReLU) between
    the linear layers:

    .. math:: a^{(0)}_t = h_t, \qquad a^{(l+1)}_t = \phi(W^{(l)} a^{(l)}_t + b^{(l)}), \qquad
              y_t = W^{(L)} a^{(L)}_t + b^{(L)}

    :math:`W^{(l)}` is ``params[f"layers.{2 l}.weight"]``: the names of a ``torch.nn.Sequential`` stored as
    ``self.layers`` (``layers.0.weight``, ``layers.0.bias``, ``layers.2.weight``, ...; the odd indices are
    the activations, which have no parameters), so ``load_state_dict`` accepts such a torch module's
    ``state_dict()``. ``output="softmax"`` appends a softmax.
    """

    def __init__(self, sizes, activation="tanh", bias=True, output="linear", *, seed=None, dtype="float64"):
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least input and output sizes, got {list(sizes)}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation={activation!r}, expected one of {tuple(_ACTIVATIONS)}")
        _check_output(output)
        rng = np.random.default_rng(seed)
        self.sizes, self.activation, self.output = list(sizes), activation, output
        params = {}
        for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            for name, p in _init_linear(rng, n_in, n_out, bias, dtype).items():
                params[f"layers.{2 * layer}.{name}"] = p
        self._set_params(params)

    @property
    def num_linear(self):
        return len(self.sizes) - 1

    def forward(self, h):
        act_forward, _ = _ACTIVATIONS[self.activation]
        caches = []
        a = h
        for layer in range(self.num_linear):
            name = f"layers.{2 * layer}"
            a, cache = linear_forward(a, self.params[name + ".weight"], self.params.get(name + ".bias"))
            caches.append(cache)
            if layer < self.num_linear - 1:
                a, cache = act_forward(a)
                caches.append(cache)
        if self.output == "softmax":
            a = softmax(a, axis=-1)
            caches.append(a)
        self._cache = caches
        return a

    def backward(self, dy):
        _, act_backward = _ACTIVATIONS[self.activation]
        caches = list(self._forward_cache())
        grads = {}
        d = dy
        if self.output == "softmax":
            d = softmax_backward(d, caches.pop(), axis=-1)["logits"]
        for layer in reversed(range(self.num_linear)):
            if layer < self.num_linear - 1:
                d = act_backward(d, caches.pop())["z"]
            g = linear_backward(d, caches.pop())
            d = g["h"]
            grads[f"layers.{2 * layer}.weight"] = g["W"]
            if "b" in g:
                grads[f"layers.{2 * layer}.bias"] = g["b"]
        self.grads = {name: grads[name] for name in self.params}  # same order as params
        return d
