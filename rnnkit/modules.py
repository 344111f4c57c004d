"""torch.nn look-alikes: ``RNN``, ``GRU``, ``LSTM`` (stacked, bidirectional) and the cells
``RNNCell``, ``GRUCell``, ``LSTMCell``, with a hand-written ``backward``.

    m = LSTM(input_size=4, hidden_size=8, num_layers=2, bidirectional=True, seed=0)
    out, (h_n, c_n) = m(x)                # x (T, B, 4) -> out (T, B, 16), h_n (4, B, 8)
    dx, (dh0, dc0) = m.backward(d_out)    # fills m.grads (same keys as m.params)

Differences from torch, on purpose:

* parameters are **float64 by default** (an oracle and gradient checks want float64);
  ask for ``dtype="float32"`` or call ``m.to(dtype="float32")`` to match torch's default.
  Inputs must have the parameters' dtype (no silent casting).
* ``backward`` *sets* ``m.grads`` (it does not accumulate like torch's ``.grad``).
* arguments after ``num_layers`` are keyword-only (torch's positional order differs
  between RNN and LSTM/GRU, and contains ``dropout``, which rnnkit does not have).
* variable lengths come as ``lengths=`` or ``mask=`` instead of packed sequences; outputs
  at padded steps are 0 and ``h_n`` is each sequence's state after its last valid step,
  exactly as with torch's packed sequences.
* ``merge_mode`` ("concat" like torch, or "sum", "mul", "ave" like Keras) combines the two
  directions; the next layer's input size follows (2H for concat, H otherwise).
* ``return_sequences=False`` returns only the last valid output of each sequence,
  ``(B, D*H)``: for the forward direction the output at the sequence's last valid step,
  for the reverse direction (like Keras) the output at position 0, which is the one the
  reverse pass computes last. Both are the top layer's entries of ``h_n``.
"""

import numpy as np

from .backend import (
    asarray_like,
    check_floating,
    device_of,
    dtype_name,
    first_nonfinite,
    is_torch,
    namespace,
    no_autograd,
    resolve_dtype,
    to_backend,
    to_numpy,
    zeros,
)
from .cells import GRU_CELL, GRU_SIMPLE_CELL, LSTM_CELL, RNN_CELL, get_cell
from .cells.base import check_choice
from .sequence import as_bool_mask, lengths_to_mask, sequence_backward, sequence_forward

__all__ = ["RNNBase", "RNN", "GRU", "LSTM", "RNNCellBase", "RNNCell", "GRUCell", "LSTMCell", "MERGE_MODES"]

MERGE_MODES = ("concat", "sum", "mul", "ave")


class _Parameters:
    """Parameter storage shared by the sequence modules and the cells: ``params`` and
    ``grads`` dicts (ordered like torch's ``named_parameters()``), attribute access,
    ``parameters()``, ``named_parameters()``, ``zero_grad()`` and ``to()``."""

    def _init_params(self, shapes, hidden_size, dtype, seed):
        dtype = resolve_dtype(dtype, "numpy")
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden_size)  # torch: U(−1/√H, 1/√H) for every parameter
        self.params = {name: rng.uniform(-bound, bound, shape).astype(dtype) for name, shape in shapes.items()}
        self.zero_grad()
        self._cache = None

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

    def zero_grad(self):
        """Set every gradient in ``grads`` to zeros."""
        self.grads = {}
        for name, p in self.params.items():
            self.grads[name] = zeros(namespace(p), tuple(p.shape), p)

    @property
    def dtype(self):
        return dtype_name(next(iter(self.params.values())))

    @property
    def backend(self):
        """'numpy' or 'torch'."""
        return "torch" if is_torch(next(iter(self.params.values()))) else "numpy"

    @property
    def device(self):
        return device_of(next(iter(self.params.values())))

    def to(self, backend=None, device=None, dtype=None):
        """Convert the parameters to ``backend`` ('numpy' or 'torch'), ``device`` and
        ``dtype`` (each ``None`` keeps the current one). Returns ``self``."""
        backend = self.backend if backend is None else backend
        check_choice("backend", backend, ("numpy", "torch"))
        if dtype is not None:
            resolve_dtype(dtype, "numpy")  # validates
        self.params = {k: to_backend(p, backend, device, dtype) for k, p in self.params.items()}
        self.zero_grad()
        self._cache = None
        return self

    def _check_array(self, a, what):
        """``a``'s namespace; raise if its backend, dtype or device differs from the parameters'."""
        p = next(iter(self.params.values()))
        try:
            xp = namespace(a, p)
        except TypeError as e:
            if "one backend" in str(e):
                raise TypeError(
                    f"{what} is a {_backend_word(a)} but the parameters are {_backend_word(p)}s; "
                    f"use one backend (m.to(backend=...) converts the parameters)"
                ) from None
            raise TypeError(f"{what} must be a numpy array or a torch tensor, got {type(a).__name__}") from None
        check_floating(a, what)
        if dtype_name(a) != dtype_name(p):
            raise TypeError(
                f"{what} has dtype {dtype_name(a)} but the parameters are {dtype_name(p)}; "
                f"cast {what} or call m.to(dtype={dtype_name(a)!r})"
            )
        if str(device_of(a)) != str(device_of(p)):
            raise ValueError(f"{what} is on device {device_of(a)} but the parameters are on {device_of(p)}")
        return xp


def _backend_word(a):
    return "numpy array" if isinstance(a, np.ndarray) else "torch tensor"


def _check_size(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_finite(xp, a, what, axes, error=ValueError):
    found = first_nonfinite(xp, a)
    if found is not None:
        index, count = found
        where = ", ".join(f"{ax}={i}" for ax, i in zip(axes, index))
        value = float(a[index])
        raise error(f"{what} has {count} non-finite value(s); the first is {what}[{where}] = {value}")


class RNNBase(_Parameters):
    """Stacked, optionally bidirectional recurrent layers of one cell type (like torch's
    ``RNNBase``; ``cell`` is a :class:`rnnkit.cells.Cell` or its name). Parameters
    ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and ``…_reverse``
    for the reverse direction), as torch names them.
    """

    def __init__(
        self,
        cell,
        input_size,
        hidden_size,
        num_layers=1,
        *,
        bias=True,
        batch_first=False,
        bidirectional=False,
        merge_mode="concat",
        dtype="float64",
        seed=None,
        **cell_options,
    ):
        self.cell = get_cell(cell)
        self.cell_options = self.cell.resolve_options(cell_options)
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = _check_size("hidden_size", hidden_size)
        self.num_layers = _check_size("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        check_choice("merge_mode", merge_mode, MERGE_MODES)
        self.merge_mode = merge_mode
        self.num_directions = 2 if bidirectional else 1
        shapes = {}
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                input_size = self._layer_input_size(layer)
                sizes = self.cell.param_shapes(input_size, hidden_size, self.bias, **self.cell_options)
                for name, shape in sizes.items():
                    shapes[name + self._suffix(layer, direction)] = shape
        self._init_params(shapes, hidden_size, dtype, seed)

    # ----------------------------------------------------------------- structure

    def _layer_input_size(self, layer):
        if layer == 0:
            return self.input_size
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.hidden_size
        return self.hidden_size

    @staticmethod
    def _suffix(layer, direction):
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def layer_params(self, layer, direction=0):
        """The parameters of one layer and direction, under the cell's names (``weight_ih``, …)."""
        suffix = self._suffix(layer, direction)
        return {name: self.params[name + suffix] for name in self.cell.param_names(self.bias, **self.cell_options)}

    @property
    def output_size(self):
        """Features of ``out``: D*H for concat, H for the other merge modes."""
        return self._layer_input_size(1) if self.bidirectional else self.hidden_size

    def __repr__(self):
        extras = [f"num_layers={self.num_layers}"] if self.num_layers != 1 else []
        for name, default in (("bias", True), ("batch_first", False), ("bidirectional", False)):
            if getattr(self, name) != default:
                extras.append(f"{name}={getattr(self, name)}")
        if self.bidirectional and self.merge_mode != "concat":
            extras.append(f"merge_mode={self.merge_mode!r}")
        extras += [f"{k}={v!r}" for k, v in self.cell_options.items() if v != self.cell.options[k]]
        extras.append(f"dtype={self.dtype}")
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, {', '.join(extras)})"

    # ------------------------------------------------------------------ forward

    @no_autograd
    def forward(self, x, h0=None, lengths=None, mask=None, return_sequences=True, check_finite=False, *, hx=None):
        """``out, h_n = m(x, h0)`` (LSTM: ``out, (h_n, c_n) = m(x, (h0, c0))``).

        ``x`` is ``(T, B, input_size)`` (``(B, T, input_size)`` with ``batch_first``);
        ``h0`` is ``(num_layers*D, B, H)`` or ``None`` for zeros (``hx=`` is accepted as
        torch's name for it). Variable lengths:
        ``lengths`` (B integers in 1 … T) or ``mask`` (0/1, shaped like ``x`` without
        its last axis). Returns ``out`` ``(T, B, D*H)`` (``(B, T, D*H)`` with
        ``batch_first``; ``(B, D*H)`` with ``return_sequences=False``) and ``h_n``.
        ``check_finite=True`` raises if inputs, parameters or outputs are not finite.
        """
        if hx is not None:
            if h0 is not None:
                raise TypeError("give the initial state as h0 or as hx, not both")
            h0 = hx
        xp = self._check_array(x, "x")
        if len(x.shape) != 3:
            layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(
                f"x must be 3-D {layout}, got a {len(x.shape)}-D array of shape {tuple(x.shape)}"
                + (" (add a batch axis for a single sequence)" if len(x.shape) == 2 else "")
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(f"x has {x.shape[-1]} features, expected input_size={self.input_size}")
        if self.batch_first:
            x = xp.permute_dims(x, (1, 0, 2))
        T, B, _ = x.shape
        if T == 0:
            raise ValueError("x is an empty sequence (T=0 steps); a sequence needs at least one step")
        if B == 0:
            raise ValueError("x has an empty batch (B=0)")
        mask = self._mask(xp, x, lengths, mask)
        state0 = self._initial_states(xp, h0, B, x)
        if check_finite:
            self._check_inputs_finite(xp, x, state0)

        layer_input, caches, finals = x, [], []
        for layer in range(self.num_layers):
            outs, layer_caches = [], []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                s0 = tuple(part[index] for part in state0)
                hs, state_T, cache = sequence_forward(
                    self.cell,
                    layer_input,
                    s0 if self.cell.has_cell_state else s0[0],
                    self.layer_params(layer, direction),
                    mask=mask,
                    reverse=direction == 1,
                    **self.cell_options,
                )
                outs.append(hs)
                layer_caches.append(cache)
                finals.append(state_T if self.cell.has_cell_state else (state_T,))
            layer_input = _merge(xp, self.merge_mode, outs)
            # only "mul" needs the directions' outputs in backward; other modes keep nothing
            caches.append((layer_caches, outs if self.merge_mode == "mul" else [None] * len(outs)))

        parts = tuple(xp.stack([f[k] for f in finals]) for k in range(len(finals[0])))
        top = [f[0] for f in finals[-self.num_directions :]]
        if return_sequences:
            out = layer_input
            if self.batch_first:
                out = xp.permute_dims(out, (1, 0, 2))
        else:
            out = _merge(xp, self.merge_mode, top)
        if check_finite:
            if not return_sequences:
                axes = ("b", "j")
            else:
                axes = ("b", "t", "j") if self.batch_first else ("t", "b", "j")
            _check_finite(xp, out, "out", axes, FloatingPointError)
            for name, part in zip(("h_n", "c_n"), parts):
                _check_finite(xp, part, name, ("layer*direction", "b", "j"), FloatingPointError)
        self._cache = {
            "caches": caches,
            "top": top if self.merge_mode == "mul" else [None] * len(top),  # as for outs above
            "return_sequences": return_sequences,
            "out_shape": tuple(out.shape),
            "B": B,
        }
        return out, (parts if self.cell.has_cell_state else parts[0])

    __call__ = forward

    def _mask(self, xp, x, lengths, mask):
        T, B, _ = x.shape
        if lengths is not None and mask is not None:
            raise ValueError("give either lengths or mask, not both")
        if lengths is not None:
            lengths = to_numpy(lengths)
            if lengths.shape != (B,):
                raise ValueError(f"lengths must have one entry per sequence, shape ({B},), got shape {lengths.shape}")
            if not np.issubdtype(lengths.dtype, np.integer):
                raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
            if lengths.max() > T:
                raise ValueError(f"lengths must be at most the sequence length T={T}, got a length of {lengths.max()}")
            if lengths.min() < 1:
                raise ValueError(f"lengths must be at least 1, got a length of {lengths.min()}")
            if lengths.min() == T:
                return None  # no padding: the fast path
            return asarray_like(lengths_to_mask(lengths, T), x)
        if mask is not None:
            mask = to_numpy(mask)
            expected = (B, T) if self.batch_first else (T, B)
            if mask.shape != expected:
                layout = "(B, T)" if self.batch_first else "(T, B)"
                raise ValueError(
                    f"mask must have shape {layout} = {expected} like x without its feature axis, got {mask.shape}"
                )
            if self.batch_first:
                mask = mask.T
            return asarray_like(as_bool_mask(mask, T, B), x)
        return None

    def _initial_states(self, xp, hx, B, like):
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        names = ("h0", "c0") if self.cell.has_cell_state else ("h0",)
        if hx is None:
            return tuple(zeros(xp, (LD, B, H), like) for _ in names)
        if self.cell.has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(
                    f"{type(self).__name__} expects the initial state as a pair (h0, c0) of arrays, "
                    f"got {type(hx).__name__}"
                )
            hx = tuple(hx)
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{type(self).__name__} expects h0 as one array, got a {type(hx).__name__}")
            hx = (hx,)
        parts = []
        for name, part in zip(names, hx):
            if part is None:
                part = zeros(xp, (LD, B, H), like)
            self._check_array(part, name)
            if tuple(part.shape) != (LD, B, H):
                raise ValueError(
                    f"{name} must have shape (num_layers*num_directions, B, hidden_size) = {(LD, B, H)}, "
                    f"got {tuple(part.shape)}"
                )
            parts.append(part)
        return tuple(parts)

    def _check_inputs_finite(self, xp, x, state0):
        axes = ("t", "b", "i")
        if self.batch_first:
            x, axes = xp.permute_dims(x, (1, 0, 2)), ("b", "t", "i")
        _check_finite(xp, x, "x", axes)
        for name, part in zip(("h0", "c0"), state0):
            _check_finite(xp, part, name, ("layer*direction", "b", "j"))
        for name, p in self.params.items():
            _check_finite(xp, p, name, ("row", "col"))

    # ----------------------------------------------------------------- backward

    @no_autograd
    def backward(self, d_out, d_h_n=None, truncate=None):
        """BPTT through the last forward call: ``dx, dh0 = m.backward(d_out, d_h_n)``
        (LSTM: ``dx, (dh0, dc0) = m.backward(d_out, (d_h_n, d_c_n))``).

        ``d_out`` is shaped like ``out`` (or ``None``), ``d_h_n`` like ``h_n`` (or
        ``None``; for the LSTM either part may be ``None``). Each layer's input gradient
        flows into the layer below. ``truncate=k`` truncates BPTT every k steps (see
        :func:`rnnkit.sequence.sequence_backward`). Sets ``m.grads``.
        """
        if self._cache is None:
            raise RuntimeError("backward() needs a forward() call first")
        c = self._cache
        L, D, H, B = self.num_layers, self.num_directions, self.hidden_size, c["B"]
        p = next(iter(self.params.values()))
        xp = namespace(p)
        if d_out is not None:
            self._check_array(d_out, "d_out")
            if tuple(d_out.shape) != c["out_shape"]:
                raise ValueError(f"d_out must have the shape of out, {c['out_shape']}, got {tuple(d_out.shape)}")
            if self.batch_first and c["return_sequences"]:
                d_out = xp.permute_dims(d_out, (1, 0, 2))
        d_final = self._final_state_grads(d_h_n, L * D, B)

        grads, dstate0 = {}, [None] * (L * D)
        d_layer_out = d_out if c["return_sequences"] else None
        for layer in reversed(range(L)):
            layer_caches, outs = c["caches"][layer]
            if layer == L - 1 and not c["return_sequences"]:
                d_outs = [None] * D
                d_top = _merge_backward(xp, self.merge_mode, d_out, c["top"]) if d_out is not None else [None] * D
            else:
                d_outs = [None] * D
                if d_layer_out is not None:
                    d_outs = _merge_backward(xp, self.merge_mode, d_layer_out, outs)
                d_top = [None] * D
            d_input = None
            for direction in range(D):
                index = layer * D + direction
                d_state_T = list(d_final[index])
                if d_top[direction] is not None:
                    d_state_T[0] = d_top[direction] if d_state_T[0] is None else d_state_T[0] + d_top[direction]
                dx, ds0, g = sequence_backward(
                    d_outs[direction],
                    tuple(d_state_T) if self.cell.has_cell_state else d_state_T[0],
                    layer_caches[direction],
                    truncate=truncate,
                )
                d_input = dx if d_input is None else d_input + dx
                dstate0[index] = ds0 if self.cell.has_cell_state else (ds0,)
                suffix = self._suffix(layer, direction)
                for name, value in g.items():
                    grads[name + suffix] = value
            d_layer_out = d_input
        self.grads = {name: grads[name] for name in self.params}
        dx = xp.permute_dims(d_layer_out, (1, 0, 2)) if self.batch_first else d_layer_out
        parts = tuple(xp.stack([s[k] for s in dstate0]) for k in range(len(dstate0[0])))
        return dx, (parts if self.cell.has_cell_state else parts[0])

    def _final_state_grads(self, d_h_n, LD, B):
        """``d_h_n`` as a list of per-(layer, direction) tuples of parts (``None`` = zero)."""
        n_parts = 2 if self.cell.has_cell_state else 1
        if d_h_n is None:
            return [(None,) * n_parts for _ in range(LD)]
        if self.cell.has_cell_state:
            if not isinstance(d_h_n, (tuple, list)) or len(d_h_n) != 2:
                name = type(self).__name__
                raise TypeError(f"{name}.backward expects d_h_n=(d_h_n, d_c_n), got {type(d_h_n).__name__}")
            parts = tuple(d_h_n)
        else:
            parts = (d_h_n,)
        expected = (LD, B, self.hidden_size)
        for name, part in zip(("d_h_n", "d_c_n"), parts):
            if part is not None:
                self._check_array(part, name)
                if tuple(part.shape) != expected:
                    raise ValueError(f"{name} must have the shape of h_n, {expected}, got {tuple(part.shape)}")
        return [tuple(None if part is None else part[i] for part in parts) for i in range(LD)]


def _merge(xp, mode, outs):
    """Combine the directions' outputs: concat (torch), sum, mul or ave (Keras)."""
    if len(outs) == 1:
        return outs[0]
    f, b = outs
    if mode == "concat":
        return xp.concat([f, b], axis=-1)
    if mode == "sum":
        return f + b
    if mode == "mul":
        return f * b
    return (f + b) / 2


def _merge_backward(xp, mode, d, outs):
    """Gradients of the directions' outputs from the gradient ``d`` of the merged output."""
    if len(outs) == 1:
        return [d]
    f, b = outs
    if mode == "concat":
        H = d.shape[-1] // 2
        return [d[..., :H], d[..., H:]]
    if mode == "sum":
        return [d, d]
    if mode == "mul":
        return [d * b, d * f]
    return [d / 2, d / 2]


class RNN(RNNBase):
    """Elman RNN, like ``torch.nn.RNN``: h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh),
    φ = tanh or ReLU (``nonlinearity``)."""

    def __init__(self, input_size, hidden_size, num_layers=1, *, nonlinearity="tanh", **kwargs):
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(RNN_CELL, input_size, hidden_size, num_layers, nonlinearity=nonlinearity, **kwargs)

    @property
    def nonlinearity(self):
        return self.cell_options["nonlinearity"]


class GRU(RNNBase):
    """GRU, like ``torch.nn.GRU`` with the defaults (gate order r, z, n).

    ``reset_after=False`` applies the reset gate before W_hn (Cho 2014, Keras);
    ``update_weighs="candidate"`` lets z weigh the candidate (the articles' convention);
    ``simplified=True`` is the one-gate GRU (gate order u, c). Equations: :mod:`rnnkit.cells.gru`.
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        *,
        reset_after=True,
        update_weighs="previous",
        simplified=False,
        **kwargs,
    ):
        if simplified:
            if reset_after is not True or update_weighs != "previous":
                raise ValueError("the simplified GRU has no reset gate: reset_after and update_weighs do not apply")
            super().__init__(GRU_SIMPLE_CELL, input_size, hidden_size, num_layers, **kwargs)
        else:
            super().__init__(
                GRU_CELL,
                input_size,
                hidden_size,
                num_layers,
                reset_after=reset_after,
                update_weighs=update_weighs,
                **kwargs,
            )
        self.simplified = bool(simplified)


class LSTM(RNNBase):
    """LSTM, like ``torch.nn.LSTM`` (gate order i, f, g, o); ``peephole=True`` adds the
    diagonal peephole weights ``weight_ci_l{k}``, ``weight_cf_l{k}``, ``weight_co_l{k}``."""

    def __init__(self, input_size, hidden_size, num_layers=1, *, peephole=False, **kwargs):
        super().__init__(LSTM_CELL, input_size, hidden_size, num_layers, peephole=peephole, **kwargs)


# ---------------------------------------------------------------------------- cells


class RNNCellBase(_Parameters):
    """One step of a cell, like torch's ``RNNCell``/``GRUCell``/``LSTMCell``: parameters
    ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``; ``backward`` after each call."""

    def __init__(self, cell, input_size, hidden_size, bias=True, *, dtype="float64", seed=None, **cell_options):
        self.cell = get_cell(cell)
        self.cell_options = self.cell.resolve_options(cell_options)
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = _check_size("hidden_size", hidden_size)
        self.bias = bool(bias)
        shapes = cell.param_shapes(self.input_size, self.hidden_size, self.bias, **self.cell_options)
        self._init_params(shapes, self.hidden_size, dtype, seed)

    def __repr__(self):
        extras = [] if self.bias else ["bias=False"]
        extras += [f"{k}={v!r}" for k, v in self.cell_options.items() if v != self.cell.options[k]]
        extras.append(f"dtype={self.dtype}")
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, {', '.join(extras)})"

    @no_autograd
    def forward(self, x, hx=None):
        """``h = cell(x, h)`` (LSTMCell: ``h, c = cell(x, (h, c))``); ``x (B, input_size)``,
        states ``(B, hidden_size)``, ``None`` for zeros."""
        xp = self._check_array(x, "x")
        if len(x.shape) != 2:
            raise ValueError(f"x must be 2-D (B, input_size), got a {len(x.shape)}-D array of shape {tuple(x.shape)}")
        if x.shape[1] != self.input_size:
            raise ValueError(f"x has {x.shape[1]} features, expected input_size={self.input_size}")
        B, H = x.shape[0], self.hidden_size
        names = ("h", "c") if self.cell.has_cell_state else ("h",)
        if hx is None:
            hx = (None,) * len(names)
        elif self.cell.has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                name = type(self).__name__
                raise TypeError(f"{name} expects the state as a pair (h, c) of arrays, got {type(hx).__name__}")
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{type(self).__name__} expects h as one array, got a {type(hx).__name__}")
            hx = (hx,)
        state = []
        for name, part in zip(names, hx):
            if part is None:
                part = zeros(xp, (B, H), x)
            self._check_array(part, name)
            if tuple(part.shape) != (B, H):
                raise ValueError(f"{name} must have shape (B, hidden_size) = {(B, H)}, got {tuple(part.shape)}")
            state.append(part)
        state = tuple(state) if self.cell.has_cell_state else state[0]
        new, self._cache = self.cell.step_forward(x, state, self.params, **self.cell_options)
        return new

    __call__ = forward

    @no_autograd
    def backward(self, dstate):
        """Backward of the last call: ``dx, dh_prev = cell.backward(dh)`` (LSTMCell:
        ``dx, (dh_prev, dc_prev) = cell.backward((dh, dc))``, ``dc`` optional). Sets ``grads``."""
        if self._cache is None:
            raise RuntimeError("backward() needs a forward() call first")
        if self.cell.has_cell_state and not isinstance(dstate, (tuple, list)):
            dstate = (dstate, None)
        g = self.cell.step_backward(tuple(dstate) if self.cell.has_cell_state else dstate, self._cache)
        self.grads = {name: g[name] for name in self.params}
        if self.cell.has_cell_state:
            return g["x"], (g["h_prev"], g["c_prev"])
        return g["x"], g["h_prev"]


class RNNCell(RNNCellBase):
    """h = φ(W_ih x + b_ih + W_hh h_prev + b_hh), like ``torch.nn.RNNCell``."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", **kwargs):
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(RNN_CELL, input_size, hidden_size, bias, nonlinearity=nonlinearity, **kwargs)

    @property
    def nonlinearity(self):
        return self.cell_options["nonlinearity"]


class GRUCell(RNNCellBase):
    """One GRU step, like ``torch.nn.GRUCell`` (options as :class:`GRU`)."""

    def __init__(
        self,
        input_size,
        hidden_size,
        bias=True,
        *,
        reset_after=True,
        update_weighs="previous",
        simplified=False,
        **kwargs,
    ):
        if simplified:
            if reset_after is not True or update_weighs != "previous":
                raise ValueError("the simplified GRU has no reset gate: reset_after and update_weighs do not apply")
            super().__init__(GRU_SIMPLE_CELL, input_size, hidden_size, bias, **kwargs)
        else:
            super().__init__(
                GRU_CELL, input_size, hidden_size, bias, reset_after=reset_after, update_weighs=update_weighs, **kwargs
            )
        self.simplified = bool(simplified)


class LSTMCell(RNNCellBase):
    """One LSTM step, like ``torch.nn.LSTMCell``; ``peephole=True`` adds ``weight_ci``,
    ``weight_cf``, ``weight_co``."""

    def __init__(self, input_size, hidden_size, bias=True, *, peephole=False, **kwargs):
        super().__init__(LSTM_CELL, input_size, hidden_size, bias, peephole=peephole, **kwargs)
