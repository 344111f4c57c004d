"""Layers × directions, by hand: stacking, bidirectional layers and what goes between layers.

Layers × directions (:func:`stacked_forward` / :func:`stacked_backward`), torch's layout:
layer ℓ reads the merged outputs of layer ℓ−1; with ``bidirectional=True`` each layer runs
a forward and a reverse direction and :func:`merge_forward` combines them ("concat" like
torch, or "sum", "mul", "ave" like Keras). Parameters are named as torch names them:
``weight_ih_l{ℓ}``, ``weight_hh_l{ℓ}``, ``bias_ih_l{ℓ}``, ``bias_hh_l{ℓ}`` (``…_reverse``
for the reverse direction); states are ``(num_layers*D, B, H)``.

Between layers (each an option, all off by default, in this order on layer ℓ's merged output
u^(ℓ)_t, which is what the layer above reads and, for the top layer, ``out``):

    layer_norm=True:  u ← LN(u) = γ^(ℓ) ⊙ (u − μ)/√(σ² + ε) + β^(ℓ)   (over the features, every step;
                      parameters ``weight_ln_l{ℓ}``, ``bias_ln_l{ℓ}``, as F.layer_norm)
    residual=True:    u ← u + (the layer's input), for ℓ ≥ 1 (layer 0's input has I features)
    dropout=p > 0:    u ← u ⊙ m / (1 − p), m_j ~ Bernoulli(1 − p), for ℓ < L − 1 (torch's ``dropout=``)

The recurrent states, and so ``h_n``, are those of the cells: none of the three changes them.

Each layer is one :func:`rnnkit.sequence.sequence_forward` per direction. Every ``*_backward``
returns one dict of gradients, keyed by what they are the gradient of: ``"x"``, the initial states
(``"h0"``, LSTM also ``"c0"``) and each parameter by name.
"""

from dataclasses import dataclass

import numpy as np

from .backend import asarray_like, check_like, device_of, dtype_name, namespace, no_autograd, zeros
from .cells import get_cell
from .cells.base import check_choice
from .sequence import check_input, initial_state, pack_state, padding_mask, scan, sequence_backward

__all__ = [
    "stacked_forward",
    "stacked_backward",
    "merge_forward",
    "merge_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "dropout_mask",
    "layer_params",
    "stacked_param_shapes",
    "MERGE_MODES",
    "StackedCache",
    "BetweenCache",
    "NORM_NAMES",
]

MERGE_MODES = ("concat", "sum", "mul", "ave")


# ------------------------------------------------------------------- merging directions


@no_autograd
def merge_forward(h_fwd, h_bwd, mode="concat"):
    """Combine the outputs of the two directions of a bidirectional layer:

        concat: [h_fwd, h_bwd] (…, 2H) (torch)    sum: h_fwd + h_bwd    mul: h_fwd ⊙ h_bwd
        ave:    (h_fwd + h_bwd) / 2                                       (Keras's merge modes)

    Returns ``(out, cache)``; only "mul" keeps the outputs (its gradient needs them).
    """
    check_choice("merge_mode", mode, MERGE_MODES)
    xp = namespace(h_fwd, h_bwd)
    if mode == "concat":
        return xp.concat([h_fwd, h_bwd], axis=-1), (mode, None)
    if mode == "sum":
        return h_fwd + h_bwd, (mode, None)
    if mode == "mul":
        return h_fwd * h_bwd, (mode, (h_fwd, h_bwd))
    return (h_fwd + h_bwd) / 2, (mode, None)


@no_autograd
def merge_backward(d_out, cache):
    """Backward of :func:`merge_forward`: ``{"h_fwd": …, "h_bwd": …}``.

        concat: the two halves of d_out    sum: d_out, d_out    mul: d_out ⊙ h_bwd, d_out ⊙ h_fwd
        ave:    d_out / 2, d_out / 2
    """
    mode, kept = cache
    if mode == "concat":
        H = d_out.shape[-1] // 2
        return {"h_fwd": d_out[..., :H], "h_bwd": d_out[..., H:]}
    if mode == "sum":
        return {"h_fwd": d_out, "h_bwd": d_out}
    if mode == "mul":
        h_fwd, h_bwd = kept
        return {"h_fwd": d_out * h_bwd, "h_bwd": d_out * h_fwd}
    return {"h_fwd": d_out / 2, "h_bwd": d_out / 2}


# ------------------------------------------------------------------ between layers

LAYER_NORM_EPS = 1e-5  # torch's default


def _feature_mean(xp, a):
    """The mean over the last axis, keeping it: a product with a column of 1/F, which on the short
    rows of a recurrent layer is several times faster than a reduction."""
    F = a.shape[-1]
    return a @ (xp.ones((F, 1), dtype=a.dtype, device=device_of(a)) / F)


@no_autograd
def layer_norm_forward(x, weight, bias, eps=LAYER_NORM_EPS):
    r"""Layer normalisation over the last (feature) axis, as ``torch.nn.functional.layer_norm(x,
    (F,), weight, bias, eps)``: for each row (each step of each sequence) of ``x (..., F)``,

        μ = mean_j x_j,   σ² = mean_j (x_j − μ)²,   x̂ = (x − μ) / √(σ² + ε),   y = γ ⊙ x̂ + β

    with the gain γ = ``weight`` and the shift β = ``bias``, both ``(F,)``. Returns ``(y, cache)``.
    """
    xp = namespace(x, weight, bias)
    centred = x - _feature_mean(xp, x)
    inv_std = 1.0 / xp.sqrt(_feature_mean(xp, centred * centred) + eps)
    x_hat = centred * inv_std
    return x_hat * weight + bias, (x_hat, inv_std, weight)


@no_autograd
def layer_norm_backward(dy, cache):
    r"""Backward of :func:`layer_norm_forward`: ``{"x": …, "weight": …, "bias": …}``.

        dβ = Σ_rows dy,   dγ = Σ_rows dy ⊙ x̂,   g = dy ⊙ γ,
        dx = (g − mean_j g − x̂ ⊙ mean_j(g ⊙ x̂)) / √(σ² + ε)

    (μ and σ² depend on every x_j of the row, hence the two means: the gradient that flows
    through them.)
    """
    x_hat, inv_std, weight = cache
    xp = namespace(dy)
    g = dy * weight
    dx = inv_std * (g - _feature_mean(xp, g) - x_hat * _feature_mean(xp, g * x_hat))
    rows = (-1, x_hat.shape[-1])
    return {"x": dx, "weight": xp.sum(xp.reshape(dy * x_hat, rows), axis=0), "bias": xp.sum(xp.reshape(dy, rows), axis=0)}


def dropout_mask(p, shape, like, rng=None):
    """The mask of (inverted) dropout, as torch's ``nn.Dropout`` draws in training: each entry is
    1/(1 − p) with probability 1 − p and 0 otherwise, so that the expected value of ``u * mask``
    is ``u``. ``rng`` is a numpy ``Generator`` or a seed (None: fresh entropy); the mask has the
    dtype, backend and device of the array ``like``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {p!r}")
    keep = np.random.default_rng(rng).random(shape) >= p
    return asarray_like((keep / (1.0 - p)).astype(dtype_name(like)), like)


@dataclass
class BetweenCache:
    """What runs between layer ℓ and the layer above (see the module docstring): the layer
    norm's cache (or None), whether the layer's input was added, the dropout mask (or None)."""

    norm: object
    residual: bool
    keep: object


def _between_forward(u, layer_input, params, layer, mask, layer_norm, residual, keep):
    """Layer norm, residual connection and dropout on layer ``layer``'s merged output ``u``."""
    xp = namespace(u)
    norm = None
    if layer_norm:
        u, norm = layer_norm_forward(u, params[f"weight_ln_l{layer}"], params[f"bias_ln_l{layer}"])
        if mask is not None:
            u = xp.where(mask[:, :, None], u, 0.0)  # padded steps stay 0
    if residual:
        u = u + layer_input
    if keep is not None:
        u = u * keep
    return u, BetweenCache(norm, residual, keep)


def _between_backward(d, cache, mask, layer):
    """Backward of :func:`_between_forward`: the gradient of the merged output, that of the
    layer's input through the residual connection (or None), and the layer norm's parameters."""
    if cache.keep is not None:
        d = d * cache.keep
    d_skip = d if cache.residual else None
    grads = {}
    if cache.norm is not None:
        if mask is not None:
            d = namespace(d).where(mask[:, :, None], d, 0.0)
        g = layer_norm_backward(d, cache.norm)
        d = g["x"]
        grads = {f"weight_ln_l{layer}": g["weight"], f"bias_ln_l{layer}": g["bias"]}
    return d, d_skip, grads


# ------------------------------------------------------------- layers × directions

NORM_NAMES = ("weight_ln", "bias_ln")  # the layer norm's parameters of a stack, per layer


def _suffix(layer, direction):
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def layer_params(params, layer, direction=0):
    """The recurrent parameters of one layer and direction of a stack, under the cell's names
    (``weight_ih_l1_reverse`` → ``weight_ih``); the layer norm's are not among them."""
    suffix = _suffix(layer, direction)
    return {name[: -len(suffix)]: p for name, p in params.items()
            if name.endswith(suffix) and name[: -len(suffix)] not in NORM_NAMES}


def stacked_param_shapes(cell, input_size, hidden_size, num_layers=1, bidirectional=False, merge_mode="concat",
                         bias=True, layer_norm=False, **options):
    """``{name: shape}`` of a stack's parameters in torch's order and names; layer ℓ > 0 reads
    the merged outputs of the layer below (2H features for concat, H otherwise). With
    ``layer_norm=True`` the gain and shift of each layer's norm follow, ``weight_ln_l{ℓ}`` and
    ``bias_ln_l{ℓ}``, each ``(F,)`` for the F features of the layer's merged output."""
    cell = get_cell(cell)
    D = 2 if bidirectional else 1
    below = 2 * hidden_size if bidirectional and merge_mode == "concat" else hidden_size
    shapes = {}
    for layer in range(num_layers):
        sizes = cell.param_shapes(input_size if layer == 0 else below, hidden_size, bias, **options)
        for direction in range(D):
            shapes.update({name + _suffix(layer, direction): shape for name, shape in sizes.items()})
    if layer_norm:
        for layer in range(num_layers):
            shapes.update({f"{name}_l{layer}": (below,) for name in NORM_NAMES})
    return shapes


def _check_stack_params(params, num_layers, D, layer_norm):
    expected = {_suffix(layer, d) for layer in range(num_layers) for d in range(D)}
    for name in ("weight_ih", "weight_hh"):
        missing = sorted(name + s for s in expected if name + s not in params)
        if missing:
            raise KeyError(f"params has no {', '.join(missing)} (num_layers={num_layers}, "
                           f"{'bidirectional' if D == 2 else 'one direction'})")
    if layer_norm:
        missing = [f"{n}_l{layer}" for layer in range(num_layers) for n in NORM_NAMES if f"{n}_l{layer}" not in params]
        if missing:
            raise KeyError(f"params has no {', '.join(missing)} (layer_norm=True)")


@dataclass
class StackedCache:
    """What :func:`stacked_backward` needs from :func:`stacked_forward`: per layer, the
    :class:`SequenceCache` of each direction and the merge cache, and what ran between it and
    the layer above (:class:`BetweenCache`); the merge cache of the last outputs
    (``return_sequences=False``); the padding mask; and the layout of ``out``."""

    cell: object
    layers: list
    between: list
    top: object
    mask: object
    out_shape: tuple
    state_shape: tuple
    batch_first: bool
    return_sequences: bool
    like: object


def _check_between(dropout, residual, layer_norm, return_sequences):
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if not return_sequences and (residual or layer_norm):
        raise ValueError("return_sequences=False reads the last outputs from h_n, the cells' states, which "
                         "residual= and layer_norm= do not change; use return_sequences=True and take out "
                         "at each sequence's last step")


@no_autograd
def stacked_forward(cell, x, state0, params, num_layers=1, *, bidirectional=False, merge_mode="concat",
                    batch_first=False, lengths=None, mask=None, return_sequences=True, dropout=0.0,
                    residual=False, layer_norm=False, rng=None, **options):
    """``num_layers`` layers of ``cell`` over ``x``, each in one or two directions (torch's RNN/GRU/LSTM).

        h^(ℓ)_t = cell(u^(ℓ−1)_t, h^(ℓ)_{t−1}),   u^(0)_t = x_t,   u^(ℓ)_t = h^(ℓ)_t   (forward direction)
        bidirectional: the reverse direction runs t = T−1 … 0 and u^(ℓ)_t = merge(h→_t, h←_t)

    ``x`` is ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``); ``state0`` is
    ``(num_layers*D, B, H)`` (LSTM: a pair), row ``ℓ*D + d`` for layer ℓ and direction d, or
    ``None`` for zeros; ``params`` are named like torch's (see :func:`stacked_param_shapes`).
    Variable lengths: ``lengths`` (B integers in 1 … T) or ``mask`` (0/1, shaped like ``x``
    without its feature axis). ``options`` are the cell's.

    Between layers (see the module docstring): ``layer_norm=True`` normalises each layer's output,
    ``residual=True`` adds each layer's input to its output from layer 1 on, ``dropout=p`` drops
    the outputs of every layer but the top one with masks drawn from ``rng`` (a numpy Generator or
    a seed; pass ``dropout=0`` outside training, as torch's ``eval()`` does).

    Returns ``(out, h_n, cache)``: ``out`` ``(T, B, D*H)`` for "concat", ``(T, B, H)`` for the
    other merge modes (batch first with ``batch_first``); with ``return_sequences=False`` the
    last valid output of each sequence, ``(B, ·)`` (the forward direction's at the sequence's last
    step, the reverse direction's at step 0: the top layer's rows of ``h_n``). ``h_n`` is the
    final state, shaped like ``state0``.
    """
    cell = get_cell(cell)
    options = cell.resolve_options(options)
    check_choice("merge_mode", merge_mode, MERGE_MODES)
    _check_between(dropout, residual, layer_norm, return_sequences)
    D = 2 if bidirectional else 1
    _check_stack_params(params, num_layers, D, layer_norm)
    W_ih = params["weight_ih_l0"]
    layout = "(B, T, input_size)" if batch_first else "(T, B, input_size)"
    xp = check_input(x, W_ih, W_ih.shape[1], f"input_size={W_ih.shape[1]}", batch_first, layout)
    if batch_first:
        x = xp.permute_dims(x, (1, 0, 2))
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    mask = padding_mask(T, B, lengths, mask, batch_first, like=x)
    state = initial_state(state0, cell, (num_layers * D, B, H), x,
                          expected="shape (num_layers*num_directions, B, hidden_size) = {shape}")
    rng = np.random.default_rng(rng) if dropout > 0 else None

    layer_input, layers, between, finals = x, [], [], []
    for layer in range(num_layers):
        outs, caches = [], []
        for direction in range(D):
            s0 = tuple(part[layer * D + direction] for part in state)
            p = layer_params(params, layer, direction)
            hs, state_T, seq_cache = scan(cell, options, layer_input, s0, p, mask, direction == 1)
            outs.append(hs)
            caches.append(seq_cache)
            finals.append(state_T)
        merged_out, merged = merge_forward(*outs, merge_mode) if D == 2 else (outs[0], None)
        layers.append((caches, merged))
        keep = dropout_mask(dropout, merged_out.shape, x, rng) if rng is not None and layer < num_layers - 1 else None
        layer_input, link = _between_forward(merged_out, layer_input, params, layer, mask, layer_norm,
                                             residual and layer > 0, keep)
        between.append(link)
    h_n = tuple(xp.stack([f[k] for f in finals]) for k in range(len(state)))

    top = None
    if return_sequences:
        out = xp.permute_dims(layer_input, (1, 0, 2)) if batch_first else layer_input
    else:
        out, top = merge_forward(*h_n[0][-D:], merge_mode) if D == 2 else (xp.asarray(h_n[0][-1], copy=True), None)
    cache = StackedCache(cell, layers, between, top, mask, tuple(out.shape), (num_layers * D, B, H), batch_first,
                         return_sequences, W_ih)
    return out, pack_state(cell, h_n), cache


@no_autograd
def stacked_backward(d_out, d_h_n, cache, truncate=None):
    """BPTT through :func:`stacked_forward`: each layer's input gradient flows into the layer below
    (and, with residual connections, also straight into the layer below that).

    ``d_out`` is shaped like ``out`` (or ``None``), ``d_h_n`` like ``h_n`` (or ``None``; for the
    LSTM either part of the pair may be ``None``). ``truncate=k`` truncates BPTT every k steps
    (see :func:`sequence_backward`). Dropout reuses the forward pass's masks.

    Returns a dict: ``"x"`` (shaped like ``x``), ``"h0"`` (LSTM also ``"c0"``) shaped like
    ``state0``, and the gradient of each parameter under its name.
    """
    c = cache
    cell, like = c.cell, c.like
    xp = namespace(like)
    L, D = len(c.layers), len(c.layers[0][0])
    d_final = initial_state(d_h_n, cell, c.state_shape, like, names=("d_h_n", "d_c_n"), owner=f"{cell.title}.backward",
                            expected="the shape of h_n, {shape}", pair="d_h_n=({0}, {1})")
    d_rows = [[part[k] for part in d_final] for k in range(L * D)]  # per layer and direction
    if d_out is not None:
        check_like(d_out, "d_out", like)
        if tuple(d_out.shape) != c.out_shape:
            raise ValueError(f"d_out must have the shape of out, {c.out_shape}, got {tuple(d_out.shape)}")
    d_layer_out = None
    if c.return_sequences:
        d_layer_out = xp.permute_dims(d_out, (1, 0, 2)) if c.batch_first and d_out is not None else d_out
    elif d_out is not None:  # the last outputs are the top layer's rows of h_n
        d_top = [d_out] if D == 1 else list(merge_backward(d_out, c.top).values())
        for direction, d in enumerate(d_top):
            d_rows[(L - 1) * D + direction][0] = d_rows[(L - 1) * D + direction][0] + d

    grads, d_state0 = [None] * (L * D), [None] * (L * D)  # per layer and direction
    norm_grads = [None] * L
    for layer in reversed(range(L)):
        caches, merged = c.layers[layer]
        d_skip, norm_grads[layer] = None, _zero_norm_grads(c.between[layer], layer)
        if d_layer_out is not None:
            d_layer_out, d_skip, norm_grads[layer] = _between_backward(d_layer_out, c.between[layer], c.mask, layer)
        if d_layer_out is None:
            d_outs = [None] * D
        else:
            d_outs = [d_layer_out] if D == 1 else list(merge_backward(d_layer_out, merged).values())
        d_input = None
        for direction in range(D):
            k = layer * D + direction
            g = sequence_backward(d_outs[direction], pack_state(cell, d_rows[k]), caches[direction], truncate=truncate)
            d_input = g.pop("x") if d_input is None else d_input + g.pop("x")
            d_state0[k] = [g.pop(name) for name in ("h0", "c0")[: len(cell.state_names)]]
            grads[k] = {name + _suffix(layer, direction): value for name, value in g.items()}
        d_layer_out = d_input if d_skip is None else d_input + d_skip
    dx = xp.permute_dims(d_layer_out, (1, 0, 2)) if c.batch_first else d_layer_out
    out = {"x": dx}
    out.update(zip(("h0", "c0"), (xp.stack([s[i] for s in d_state0]) for i in range(len(cell.state_names)))))
    grads += norm_grads  # torch's order, then the norms (as stacked_param_shapes orders them)
    return {**out, **{name: value for row in grads for name, value in row.items()}}


def _zero_norm_grads(link, layer):
    """Zero gradients for a layer norm that no gradient reaches (``d_out=None``)."""
    if link.norm is None:
        return {}
    weight = link.norm[2]
    return {f"{name}_l{layer}": zeros(namespace(weight), tuple(weight.shape), weight) for name in NORM_NAMES}
