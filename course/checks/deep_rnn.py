"""Checks for exercise 9, deep (stacked) RNNs: the forward and backward pass of a stack of recurrent
layers with torch's parameter names, a deep (non-recurrent) head applied at every step, and the
loss and gradients of the whole model.

The expected values come from rnnkit's ``RNN``/``GRU`` modules with ``num_layers=L`` and its
``MLPHead`` on fresh random inputs. The ``mistakes`` are the same stack computed layer by layer with
``rnnkit.sequence`` and one typical error built in (every layer reads x, the next layer reads only
the last step, h_n top-first, no gradient into the lower layers, ...).

The point of the exercise is the stacking, not the single layer, which the students wrote in
exercises 2 and 3: they may use ``rnnkit.sequence`` (``sequence_forward``/``sequence_backward``) for
one layer, and nothing else from rnnkit that computes.

The backward checks receive caches that the checker made, in the formats the notebook documents
(so a wrong forward pass does not fail a right backward pass): for the stack, the list of the
layers' ``sequence_forward`` caches, which are rnnkit objects and are therefore made on the
student's side (``student.new``); for the head, the tuple ``(h, a, W0, W1)``.
"""
from __future__ import annotations

import numpy as np

from rnnkit.heads import MLPHead as _MLPHead
from rnnkit.losses import squared_error as _squared_error
from rnnkit.modules import GRU as _GRU
from rnnkit.modules import RNN as _RNN
from rnnkit.sequence import sequence_backward as _seq_backward
from rnnkit.sequence import sequence_forward as _seq_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_close, expect_tuple,
                     expect_unchanged, kind_of, student_function)
from .gated import call_backward, expect_grads, with_cases

#: what the student's notebook may import when it is graded: one layer and its BPTT (exercises 2
#: and 3) come from rnnkit.sequence (with the cells and the backend it needs); rnnkit.modules, whose
#: RNN(..., num_layers=L) is the answer, is not there
POLICY = Policy(packages=("numpy", "matplotlib", "threadpoolctl", "array_api_compat"),
                rnnkit=HELPERS + ("rnnkit.sequence",))
SPECS = ("forward", "backward", "head_forward", "head_backward", "model_loss")

CELLS = {"rnn": 1, "gru": 3}  # cell -> number of gate blocks G
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
HEAD_NAMES = ("layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias")

#: the caches the backward passes receive, as the notebook documents them
STACK_CACHE_DOC = ("cache = [cache_0, ..., cache_{L-1}], the list of the caches that sequence_forward returned "
                   "for the layers, layer 0 first")
HEAD_CACHE_DOC = ("cache = (h, a, W0, W1): the input h, a = tanh(h @ W0.T + b0), W0 = params['layers.0.weight'] "
                  "and W1 = params['layers.2.weight']")


# --------------------------------------------------------------------------------------------
# inputs and small helpers
# --------------------------------------------------------------------------------------------

def _check_cell(cell):
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")


def random_stack_params(rng, cell, num_layers, input_size, hidden_size):
    """torch-named parameters of a stack: weight_ih_l0 (G*H, I), weight_ih_l1 (G*H, H), ..."""
    G, H = CELLS[cell], hidden_size
    params = {}
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else H
        params[f"weight_ih_l{layer}"] = rng.normal(0.0, 1.0 / np.sqrt(n_in), (G * H, n_in))
        params[f"weight_hh_l{layer}"] = rng.normal(0.0, 1.0 / np.sqrt(H), (G * H, H))
        params[f"bias_ih_l{layer}"] = rng.normal(0.0, 0.3, G * H)
        params[f"bias_hh_l{layer}"] = rng.normal(0.0, 0.3, G * H)
    return params


def random_head_params(rng, in_size, mid_size, out_size):
    """Parameters of Linear-tanh-Linear under the names of a torch.nn.Sequential called layers."""
    return {
        "layers.0.weight": rng.normal(0.0, 1.0 / np.sqrt(in_size), (mid_size, in_size)),
        "layers.0.bias": rng.normal(0.0, 0.5, mid_size),
        "layers.2.weight": rng.normal(0.0, 1.0 / np.sqrt(mid_size), (out_size, mid_size)),
        "layers.2.bias": rng.normal(0.0, 0.5, out_size),
    }


def _layer(params, layer):
    return {name: params[f"{name}_l{layer}"] for name in NAMES}


def _stack_inputs(rng, cell, T, batch, input_size, hidden_size, num_layers, h0_kind):
    """``(params, x, h0)`` for a stack; ``h0_kind``: "random" or "zeros"."""
    _check_cell(cell)
    params = random_stack_params(rng, cell, num_layers, input_size, hidden_size)
    x = rng.normal(size=(T, batch, input_size))
    shape = (num_layers, batch, hidden_size)
    h0 = np.zeros(shape) if h0_kind == "zeros" else rng.normal(0.0, 0.8, shape)
    return params, x, h0


def _as_number_array(value, what):
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return np.asarray(float(value))
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.reshape(())
    raise CheckFailure(f"{what} should be a number (a float or a 0-d array), got {kind_of(value)}")


# --------------------------------------------------------------------------------------------
# the reference and its known wrong variants
# --------------------------------------------------------------------------------------------

def reference_module(cell, params, input_size, hidden_size, num_layers):
    """rnnkit's RNN/GRU module with ``num_layers`` layers holding ``params``."""
    m = (_RNN if cell == "rnn" else _GRU)(input_size, hidden_size, num_layers)
    for name in m.params:
        m.params[name] = np.array(params[name], copy=True)
    return m


def stack_forward(x, h0, params, cell, feed="below", start="h0"):
    """The stack, layer by layer, with a chosen way of feeding the layers (for the mistakes).

    ``feed``: "below" (correct: the outputs of the layer below), "x" (every layer reads x),
    "last" (the layer above reads the last output of the layer below at every step).
    ``start``: "h0" (correct: h0[l]), "zeros", "first" (every layer from h0[0]).
    Returns ``(out, h_n, caches, outs)``.
    """
    L = h0.shape[0]
    layer_input, finals, caches, outs = x, [], [], []
    for layer in range(L):
        s0 = {"h0": h0[layer], "zeros": np.zeros_like(h0[layer]), "first": h0[0]}[start]
        hs, h_T, cache = _seq_forward(cell, x if feed == "x" else layer_input, s0, _layer(params, layer))
        finals.append(h_T)
        caches.append(cache)
        outs.append(hs)
        layer_input = np.broadcast_to(hs[-1], hs.shape).copy() if feed == "last" else hs
    return outs[-1], np.stack(finals), caches, outs


def stack_backward(d_out, d_h_n, caches, mode="ok"):
    """BPTT through :func:`stack_forward`'s caches, with a chosen mistake.

    ``mode``: "ok"; "no_lower" (the lower layers get no output gradient from above);
    "d_out_everywhere" (every layer gets d_out as its output gradient); "reversed_dhn" (d_h_n used
    top-first). Returns ``(dx, dh0, grads)``.
    """
    L = len(caches)
    d_above, grads, dh0 = d_out, {}, [None] * L
    for layer in reversed(range(L)):
        index = L - 1 - layer if mode == "reversed_dhn" else layer
        d_T = None if d_h_n is None else d_h_n[index]
        d_hs = d_above
        if mode == "no_lower" and layer < L - 1:
            d_hs = None
        if mode == "d_out_everywhere":
            d_hs = d_out
        g = _seq_backward(d_hs, d_T, caches[layer])
        dx, dh0[layer] = g["x"], g["h0"]
        for name in NAMES:
            grads[f"{name}_l{layer}"] = g[name]
        d_above = dx
    return d_above, np.stack(dh0), grads


def student_stack_cache(student, x, h0, params, cell):
    """The cache of ``STACK_CACHE_DOC`` for the reference stack, made in the student's process:
    the layers' caches are rnnkit objects, which do not travel as data, so the student's side runs
    ``rnnkit.sequence.sequence_forward`` on each layer's reference input and keeps the result;
    the checker holds handles to the caches."""
    outs = stack_forward(x, h0, params, cell)[3]
    caches = []
    for layer, layer_input in enumerate([x] + outs[:-1]):
        result = student.new("rnnkit.sequence.sequence_forward", cell, layer_input, h0[layer], _layer(params, layer))
        caches.append(result.method("__getitem__")(2))
    return caches


# --------------------------------------------------------------------------------------------
# 1. forward through the stack
# --------------------------------------------------------------------------------------------

FEED_X = ("the layers above the first read x: every layer above the first reads the outputs of the "
          "layer below, not x (layer ℓ's input at step t is h^(ℓ−1)_t)")
FEED_LAST = ("the layer above read only the last output of the layer below: it reads the outputs of the "
             "layer below at every step, the whole (T, B, H) sequence hs, not hs[-1]")


def _call_forward(fn, x, h0, params, cell):
    try:
        return call_student(fn, x, h0, params, cell=cell, what="deep_rnn_forward")
    except CheckFailure as failure:
        if "features, expected" in str(failure) or "shapes" in str(failure) or "mismatch" in str(failure):
            raise CheckFailure(f"{failure} (hint: {FEED_X})") from None
        raise


def _forward_mistakes(x, h0, params, cell, h0_kind):
    L, T = h0.shape[0], x.shape[0]
    mistakes = {}
    if x.shape[2] == h0.shape[2] and L > 1:
        mistakes[FEED_X] = stack_forward(x, h0, params, cell, feed="x")[0]
    if L > 1 and T > 1:
        mistakes[FEED_LAST] = stack_forward(x, h0, params, cell, feed="last")[0]
        mistakes["out holds the outputs of the first layer; return the top layer's outputs, h^(L)_t at "
                 "every step"] = stack_forward(x, h0, params, cell)[3][0]
    if h0_kind != "zeros":
        mistakes["the layers start from zero states: layer ℓ starts from h0[ℓ]"] = \
            stack_forward(x, h0, params, cell, start="zeros")[0]
        if L > 1:
            mistakes["every layer starts from h0[0]: layer ℓ starts from its own initial state h0[ℓ]"] = \
                stack_forward(x, h0, params, cell, start="first")[0]
    return mistakes


def _h_n_mistakes(want_hn, h0, h0_kind):
    mistakes = {}
    if want_hn.shape[0] > 1:
        mistakes["h_n lists the top layer first; like torch, h_n[0] is the final state of the lowest "
                 "layer (layer 0) and h_n[L-1] that of the top layer"] = want_hn[::-1]
        mistakes["every entry of h_n is the top layer's final state; h_n[ℓ] is the final state of "
                 "layer ℓ"] = np.broadcast_to(want_hn[-1], want_hn.shape)
    if h0_kind != "zeros":
        mistakes["h_n holds the initial states; it holds the state of each layer after the last step"] = h0
    return mistakes


@with_cases
def forward(student, rng, T=5, batch=2, input_size=3, hidden_size=4, num_layers=2, cell="rnn", h0_kind="random"):
    """``deep_rnn_forward(x, h0, params, cell)`` returns ``(out (T, B, H), h_n (L, B, H), cache)``."""
    fn = student_function(student, "deep_rnn_forward")
    L, H = num_layers, hidden_size
    params, x, h0 = _stack_inputs(rng, cell, T, batch, input_size, H, L, h0_kind)
    want_out, want_hn = reference_module(cell, params, input_size, H, L)(x, h0)

    x_passed, h0_passed, passed = x.copy(), h0.copy(), copy_params(params)
    out = _call_forward(fn, x_passed, h0_passed, passed, cell)
    out, h_n, _cache = expect_tuple(out, 3, "deep_rnn_forward", "(out, h_n, cache)")
    if isinstance(out, np.ndarray) and T > 1 and out.shape == (1, batch, H):
        raise CheckFailure(f"out has shape {out.shape}, expected {want_out.shape}: {FEED_LAST}")
    if isinstance(out, np.ndarray) and out.shape == (L, batch, H) and L != T:
        raise CheckFailure(f"out has shape (L, B, H) = {out.shape}, expected (T, B, H) = {want_out.shape}: out "
                           "is the top layer's state at every step; the final state of every layer is h_n")
    expect_close(out, want_out, "out", axes=("T", "B", "H"), mistakes=_forward_mistakes(x, h0, params, cell, h0_kind))
    if isinstance(h_n, np.ndarray) and h_n.shape == (batch, H) and L > 1:
        raise CheckFailure(f"h_n has shape (B, H) = {h_n.shape}, expected (L, B, H) = {want_hn.shape}: "
                           "stack the final state of every layer, layer 0 first, like torch")
    expect_close(h_n, want_hn, "h_n", axes=("L", "B", "H"), mistakes=_h_n_mistakes(want_hn, h0, h0_kind))
    expect_unchanged({"x": x, "h0": h0, "params": params}, {"x": x_passed, "h0": h0_passed, "params": passed},
                     "deep_rnn_forward")
    return (f"deep_rnn_forward: correct ({cell}, L={L}, T={T}, B={batch}, I={input_size}, H={H}"
            f"{', zero h0' if h0_kind == 'zeros' else ''})")


# --------------------------------------------------------------------------------------------
# 2. backward through the stack
# --------------------------------------------------------------------------------------------

NO_LOWER = ("the layers below the top got no gradient through their outputs: the dx that layer ℓ's "
            "backward pass returns is the gradient of the outputs of layer ℓ−1; pass it to that layer as "
            "its output gradient")
D_OUT_EVERYWHERE = ("every layer received d_out as the gradient of its outputs; only the top layer's "
                    "outputs are out: the output gradient of a lower layer is the dx of the layer above it")
REVERSED_DHN = ("d_h_n was used top-first; d_h_n[ℓ] is the gradient of h_n[ℓ], the final state of layer ℓ "
                "(layer 0 first)")


def _backward_variants(x, h0, params, cell, d_out, d_hn):
    """(message -> (dx, dh0, grads)) of the typical mistakes, and dx of the top layer alone."""
    caches = stack_forward(x, h0, params, cell)[2]
    modes = {NO_LOWER: "no_lower", D_OUT_EVERYWHERE: "d_out_everywhere"}
    if d_hn is not None:
        modes[REVERSED_DHN] = "reversed_dhn"
    variants = {msg: stack_backward(d_out, d_hn, caches, mode) for msg, mode in modes.items()}
    top_dx = _seq_backward(d_out, None if d_hn is None else d_hn[-1], caches[-1])["x"]
    return variants, top_dx


@with_cases
def backward(student, rng, T=5, batch=2, input_size=3, hidden_size=4, num_layers=2, cell="rnn", h0_kind="random",
             d_h_n=True):
    """``deep_rnn_backward(d_out, d_h_n, cache)`` returns ``(dx (T, B, I), dh0 (L, B, H), grads)``;
    ``d_h_n=None`` means no gradient reaches h_n. The cache is the checker's (``STACK_CACHE_DOC``),
    so a wrong forward pass does not fail this check."""
    fn = student_function(student, "deep_rnn_backward")
    L, H = num_layers, hidden_size
    params, x, h0 = _stack_inputs(rng, cell, T, batch, input_size, H, L, h0_kind)
    module = reference_module(cell, params, input_size, H, L)
    module(x, h0)
    d_out = rng.normal(size=(T, batch, H))
    d_hn = rng.normal(size=(L, batch, H)) if d_h_n else None
    want_dx, want_dh0 = module.backward(d_out, d_hn)
    variants, top_dx = _backward_variants(x, h0, params, cell, d_out, d_hn) if L > 1 else ({}, None)

    cache = student_stack_cache(student, x, h0, params, cell)
    passed_d_out = d_out.copy()
    out = call_backward(fn, passed_d_out, None if d_hn is None else d_hn.copy(), cache, what="deep_rnn_backward",
                        cache_doc=STACK_CACHE_DOC)
    dx, dh0, grads = expect_tuple(out, 3, "deep_rnn_backward", "(dx, dh0, grads)")

    dx_mistakes = {msg: v[0] for msg, v in variants.items()}
    if L > 1 and input_size == H:
        dx_mistakes["dx is the gradient of the outputs of the layer below the top; return the gradient of "
                    "x, which comes out of the first layer's backward pass"] = top_dx
    expect_close(dx, want_dx, "dx", axes=("T", "B", "I"), rtol=1e-6, atol=1e-9, mistakes=dx_mistakes)
    dh0_mistakes = {msg: v[1] for msg, v in variants.items()}
    if L > 1:
        dh0_mistakes["dh0 lists the top layer first; dh0[ℓ] is the gradient of h0[ℓ], layer 0 "
                     "first"] = want_dh0[::-1]
    expect_close(dh0, want_dh0, "dh0", axes=("L", "B", "H"), rtol=1e-6, atol=1e-9, mistakes=dh0_mistakes)
    expect_grads(grads, dict(module.grads), "grads", variants={m: v[2] for m, v in variants.items()},
                 atol=1e-9)
    expect_unchanged({"d_out": d_out}, {"d_out": passed_d_out}, "deep_rnn_backward")
    note = "d_h_n given" if d_hn is not None else "d_h_n=None"
    return f"deep_rnn_backward: correct ({cell}, L={L}, T={T}, B={batch}, I={input_size}, H={H}, {note})"


# --------------------------------------------------------------------------------------------
# 3. the deep head, applied at every step
# --------------------------------------------------------------------------------------------

def _reference_head(params, sizes):
    head = _MLPHead(sizes, activation="tanh")
    for name in head.params:
        head.params[name] = np.array(params[name], copy=True)
    return head


def _head_inputs(rng, leading, hidden_size, mid_size, out_size):
    params = random_head_params(rng, hidden_size, mid_size, out_size)
    h = rng.normal(0.0, 1.0, tuple(int(n) for n in leading) + (hidden_size,))
    return params, h, _reference_head(params, [hidden_size, mid_size, out_size])


@with_cases
def head_forward(student, rng, leading=(4, 3), hidden_size=5, mid_size=6, out_size=2):
    """``mlp_head_forward(h, params)`` returns ``(y, cache)``, ``y`` of shape ``h.shape[:-1] + (K,)``."""
    fn = student_function(student, "mlp_head_forward")
    leading = tuple(int(n) for n in leading)
    params, h, head = _head_inputs(rng, leading, hidden_size, mid_size, out_size)
    want = head(h)

    W0, b0, W2, b2 = (params[n] for n in HEAD_NAMES)
    z = h @ W0.T + b0
    mistakes = {
        "there is no tanh between the two linear layers: a_t = tanh(W^(0) h_t + b^(0))": z @ W2.T + b2,
        "the output went through a tanh too: the last layer is linear, y_t = W^(1) a_t + b^(1)":
            np.tanh(np.tanh(z) @ W2.T + b2),
        "a ReLU was used; this head uses tanh between its two linear layers": np.maximum(z, 0) @ W2.T + b2,
        "the biases are missing: each linear layer adds its bias": np.tanh(h @ W0.T) @ W2.T,
    }
    h_passed, passed = h.copy(), copy_params(params)
    out = call_student(fn, h_passed, passed, what="mlp_head_forward")
    y, _cache = expect_tuple(out, 2, "mlp_head_forward", "(y, cache)")
    axes = {1: ("B", "K"), 2: ("T", "B", "K")}.get(len(leading))
    if len(leading) >= 2 and isinstance(y, np.ndarray) and y.shape == leading[1:] + (out_size,):
        raise CheckFailure(f"y has shape {y.shape}, expected {want.shape}: the head is applied at every step, "
                           "not only to the last state")
    expect_close(y, want, "y", axes=axes, mistakes=mistakes)
    expect_unchanged({"h": h}, {"h": h_passed}, "mlp_head_forward")
    return (f"mlp_head_forward: correct for h of shape {leading + (hidden_size,)}, {hidden_size} -> {mid_size} -> "
            f"{out_size}")


def head_cache(h, params):
    """The cache of ``HEAD_CACHE_DOC``."""
    W0, b0, W1 = params["layers.0.weight"], params["layers.0.bias"], params["layers.2.weight"]
    return (h, np.tanh(h @ W0.T + b0), W0, W1)


def _head_backward_mistakes(params, h, dy, want_dh):
    """message -> (dh, grads) of the typical mistakes of the head's backward pass."""
    W0, b0, W2, _ = (params[n] for n in HEAD_NAMES)
    z = h @ W0.T + b0
    a = np.tanh(z)

    def rows(v):
        return v.reshape(-1, v.shape[-1])

    def variant(da_to_dz):
        dz = da_to_dz(dy @ W2)
        return dz @ W0, {"layers.0.weight": rows(dz).T @ rows(h), "layers.0.bias": rows(dz).sum(0),
                         "layers.2.weight": rows(dy).T @ rows(a), "layers.2.bias": rows(dy).sum(0)}

    wrong = {
        "the tanh derivative was taken at the wrong value: tanh'(z) = 1 − tanh(z)² = 1 − a², with a the "
        "output of the tanh (not its input z)": variant(lambda da: da * (1 - z * z)),
        "the tanh derivative is missing: on the way back through a = tanh(z), multiply by 1 − a²":
            variant(lambda da: da),
    }
    if h.ndim >= 3:
        dz = (dy @ W2) * (1 - a * a)
        last = {"layers.0.weight": dz[-1].T @ h[-1], "layers.0.bias": dz[-1].sum(0),
                "layers.2.weight": dy[-1].T @ a[-1], "layers.2.bias": dy[-1].sum(0)}
        wrong["only the last step was summed: the head is applied at every step with the same weights, so "
              "its weight gradients are sums over all steps and all sequences"] = (want_dh, last)
    return wrong


@with_cases
def head_backward(student, rng, leading=(4, 3), hidden_size=5, mid_size=6, out_size=2):
    """``mlp_head_backward(dy, cache)`` returns ``(dh, grads)`` with grads named like the params. The
    cache is the checker's (``HEAD_CACHE_DOC``), so a wrong forward pass does not fail this check."""
    fn = student_function(student, "mlp_head_backward")
    leading = tuple(int(n) for n in leading)
    params, h, head = _head_inputs(rng, leading, hidden_size, mid_size, out_size)
    head(h)
    dy = rng.normal(size=leading + (out_size,))
    want_dh = head.backward(dy)
    wrong = _head_backward_mistakes(params, h, dy, want_dh)

    out = call_backward(fn, dy.copy(), head_cache(h.copy(), copy_params(params)), what="mlp_head_backward",
                        cache_doc=HEAD_CACHE_DOC)
    dh, grads = expect_tuple(out, 2, "mlp_head_backward", "(dh, grads)")
    axes = {1: ("B", "H"), 2: ("T", "B", "H")}.get(len(leading))
    expect_close(dh, want_dh, "dh", axes=axes, rtol=1e-6, atol=1e-9, mistakes={msg: v[0] for msg, v in wrong.items()})
    expect_grads(grads, dict(head.grads), "grads", variants={msg: v[1] for msg, v in wrong.items()},
                 atol=1e-9, shape_hint="a gradient has the shape of its parameter: sum over every position where "
                                       "the head was applied, all steps and all sequences")
    return f"mlp_head_backward: correct for h of shape {leading + (hidden_size,)}"


# --------------------------------------------------------------------------------------------
# 4. the whole model: stack + head at every step + squared error
# --------------------------------------------------------------------------------------------

LAST_ONLY = ("the recurrent stack received the head's gradient only at the last step; the head is applied "
             "at every step, so the gradient dh that mlp_head_backward returns is the gradient of out at "
             "every step t: pass all of it as d_out")
GRAD_SCALES = {2.0: "the gradient of ½ (y − d)² is y − d (no factor 2)",
               -1.0: "its sign is flipped: the gradient of ½ (y − d)² with respect to y is y − d"}


@with_cases
def model_loss(student, rng, T=5, batch=3, input_size=2, hidden_size=4, num_layers=2, mid_size=6, out_size=2,
               cell="rnn"):
    """``deep_model_loss(x, targets, h0, rnn_params, head_params, cell)`` returns
    ``(loss, rnn_grads, head_grads)`` for E = ½ Σ_t Σ_b ‖y_t − d_t‖². When it is wrong and one of the
    student's functions of sections 1-3 fails its own check, the message names that function too."""
    parts = [("deep_rnn_forward", forward), ("deep_rnn_backward", backward), ("mlp_head_forward", head_forward),
             ("mlp_head_backward", head_backward)]
    return blame_parts(student, lambda: _check_model(student, rng, T, batch, input_size, hidden_size, num_layers,
                                                     mid_size, out_size, cell),
                       parts, "deep_model_loss")


def _check_model(student, rng, T, batch, input_size, hidden_size, num_layers, mid_size, out_size, cell):
    _check_cell(cell)
    fn = student_function(student, "deep_model_loss")
    L, H, K = num_layers, hidden_size, out_size
    rnn_params = random_stack_params(rng, cell, L, input_size, H)
    head_params = random_head_params(rng, H, mid_size, K)
    x = rng.normal(size=(T, batch, input_size))
    targets = rng.normal(size=(T, batch, K))
    h0 = rng.normal(0.0, 0.5, (L, batch, H))

    module = reference_module(cell, rnn_params, input_size, H, L)
    head = _reference_head(head_params, [H, mid_size, K])
    y = head(module(x, h0)[0])
    want_loss, d_loss = _squared_error(y, targets)
    d_out = head.backward(d_loss["y"])
    module.backward(d_out)
    want_rnn, want_head = dict(module.grads), dict(head.grads)
    wrong = {}
    if T > 1:
        last = np.zeros_like(d_out)
        last[-1] = d_out[-1]
        wrong[LAST_ONLY] = stack_backward(last, None, stack_forward(x, h0, rnn_params, cell)[2])[2]

    out = call_student(fn, x.copy(), targets.copy(), h0.copy(), copy_params(rnn_params), copy_params(head_params),
                       cell=cell, what="deep_model_loss")
    loss, rnn_grads, head_grads = expect_tuple(out, 3, "deep_model_loss", "(loss, rnn_grads, head_grads)")
    if (isinstance(rnn_grads, dict) and set(want_rnn) <= set(rnn_grads)
            and all(isinstance(rnn_grads[k], np.ndarray) and not np.any(rnn_grads[k]) for k in want_rnn)):
        raise CheckFailure("rnn_grads are all zero: the recurrent stack received no gradient; the dh that "
                           "mlp_head_backward returns is the d_out of deep_rnn_backward")
    N = T * batch
    loss_scales = {2.0: "the ½ is missing: E = ½ Σ_t Σ_b ‖y_t − d_t‖²",
                   1.0 / N: "the loss is averaged; this exercise sums it over all steps and sequences",
                   1.0 / (N * K): "the loss is averaged; this exercise sums it over all steps, sequences "
                                  "and outputs"}
    expect_close(_as_number_array(loss, "loss"), np.asarray(want_loss), "loss", rtol=1e-8, scales=loss_scales)
    expect_grads(head_grads, want_head, "head_grads", scales=GRAD_SCALES, atol=1e-9)
    expect_grads(rnn_grads, want_rnn, "rnn_grads", variants=wrong, scales=GRAD_SCALES,
                 atol=1e-9)
    return f"deep_model_loss: correct ({cell}, L={L}, T={T}, B={batch}, I={input_size}, H={H}, K={K})"
