"""Checks for exercise 6, gated recurrent units: the simplified GRU (update gate only), the full
GRU step in torch's convention, its backward step, the change of update-gate convention, and the GRU
over a whole sequence: its forward pass and backpropagation through time.

Expected values come from ``rnnkit.cells`` on fresh random inputs. The values that typical mistakes
produce are computed from rnnkit with the mistake applied (another convention, permuted or negated
gate blocks) or, where rnnkit has no switch for it, by the few lines of numpy below that redo the
step with the mistake in it.
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells import gru_simple_step_forward as _simple_forward
from rnnkit.cells import gru_step_backward as _gru_backward
from rnnkit.cells import gru_step_forward as _gru_forward
from rnnkit.sequence import sequence_backward as _sequence_backward
from rnnkit.sequence import sequence_forward as _sequence_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_close, expect_grads_dict,
                     expect_tuple, expect_unchanged, kind_of, student_function)
from .gated import (DH_LAST_MISTAKES, call_backward, expect_grads, expect_output, mistakes_by_key, negate_block,
                    permute_blocks, random_params, sigmoid, with_cases)

#: what the student's notebook may import when it is graded: no rnnkit.cells
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("simple_forward", "forward", "backward", "update_convention", "sequence_forward", "sequence_backward")
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
GRAD_KEYS = ("x", "h_prev") + PARAM_NAMES


def _inputs(rng, batch, input_size, hidden, gates, scale, zero_state):
    params = random_params(rng, input_size, hidden, gates, scale=scale)
    x = rng.normal(size=(batch, input_size))
    h_prev = np.zeros((batch, hidden)) if zero_state else rng.normal(0.0, 0.8, size=(batch, hidden))
    return x, h_prev, params


STATE_AXES = ("B", "H")


# ------------------------------------------------------------------------------ simplified GRU

def _simple_mistakes(x, c_prev, p):
    """c_t for typical mistakes in the one-gate GRU (gate order u, c)."""
    H = c_prev.shape[1]
    a = x @ p["weight_ih"].T + p["bias_ih"] + c_prev @ p["weight_hh"].T + p["bias_hh"]
    a_u, a_c = a[:, :H], a[:, H:]
    u, c_tilde = sigmoid(a_u), np.tanh(a_c)
    only_ih = x @ p["weight_ih"].T + p["bias_ih"] + c_prev @ p["weight_hh"].T
    only_hh = x @ p["weight_ih"].T + c_prev @ p["weight_hh"].T + p["bias_hh"]

    def from_a(a2):
        return sigmoid(a2[:, :H]) * np.tanh(a2[:, H:]) + (1 - sigmoid(a2[:, :H])) * c_prev

    return {
        "Γ_u and 1 − Γ_u are swapped: the update gate weighs the candidate, "
        "c_t = Γ_u ⊙ c̃_t + (1 − Γ_u) ⊙ c_{t−1}": _simple_forward(x, c_prev, negate_block(p, 0, H))[0],
        "the two gate blocks are swapped: rows 0…H−1 of the weights belong to the update gate Γ_u and "
        "rows H…2H−1 to the candidate c̃ (gate order u, c)":
            _simple_forward(x, c_prev, permute_blocks(p, [1, 0], H))[0],
        "the update gate uses tanh; a gate must lie between 0 and 1, so it needs σ":
            np.tanh(a_u) * c_tilde + (1 - np.tanh(a_u)) * c_prev,
        "the candidate c̃ uses σ; it needs tanh (values between −1 and 1)": u * sigmoid(a_c) + (1 - u) * c_prev,
        "the term (1 − Γ_u) ⊙ c_{t−1} is missing: where the gate is closed the old memory must be kept":
            u * c_tilde,
        "the result is the candidate c̃_t alone; the update gate must mix it with c_{t−1}": c_tilde,
        "bias_hh is missing: the bias b of the equations is bias_ih + bias_hh": from_a(only_ih),
        "bias_ih is missing: the bias b of the equations is bias_ih + bias_hh": from_a(only_hh),
    }


def _check_step(student, rng, fname, state, gates, reference, mistakes, batch, input_size, hidden, scale,
                zero_state):
    """``fname(x, <state>_prev, params)`` must return ``(<state>, cache)`` with the state that
    ``reference`` computes; ``mistakes(x, state_prev, params)`` gives the known wrong ones."""
    fn = student_function(student, fname)
    x, s_prev, params = _inputs(rng, batch, input_size, hidden, gates, scale, zero_state)
    want, _ = reference(x, s_prev, params)
    prev = f"{state}_prev"
    args = {"x": x.copy(), prev: s_prev.copy(), "params": copy_params(params)}
    got, _cache = expect_tuple(call_student(fn, args["x"], args[prev], args["params"]), 2, fname, f"({state}, cache)")
    expect_unchanged({"x": x, prev: s_prev, "params": params}, args, fname)
    expect_output(got, want, state, axes=STATE_AXES, mistakes=mistakes(x, s_prev, params))
    return f"{fname}: correct (B={batch}, I={input_size}, H={hidden})"


@with_cases
def simple_forward(student, rng, batch=3, input_size=4, hidden=5, scale=0.5, zero_state=False):
    """``gru_simple_step_forward(x, c_prev, params)`` returns ``(c, cache)``, c of shape (B, H)."""
    return _check_step(student, rng, "gru_simple_step_forward", "c", 2, _simple_forward, _simple_mistakes,
                       batch, input_size, hidden, scale, zero_state)


# ---------------------------------------------------------------------------- full GRU forward

def _gru_pieces(x, h_prev, p):
    H = h_prev.shape[1]
    xw = x @ p["weight_ih"].T + p["bias_ih"]
    hw = h_prev @ p["weight_hh"].T + p["bias_hh"]
    xr, xz, xn = xw[:, :H], xw[:, H:2 * H], xw[:, 2 * H:]
    hr, hz, hn = hw[:, :H], hw[:, H:2 * H], hw[:, 2 * H:]
    return H, xr, xz, xn, hr, hz, hn


def _forward_mistakes(x, h_prev, p):
    """h_t for typical mistakes in the full GRU step, torch's convention asked."""
    H, xr, xz, xn, hr, hz, hn = _gru_pieces(x, h_prev, p)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)

    def mix(n, zz=z):
        return (1 - zz) * n + zz * h_prev

    hn_no_bias = h_prev @ p["weight_hh"][2 * H:].T
    return {
        "z and 1 − z are swapped: in torch's convention z weighs the previous state, "
        "h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}": _gru_forward(x, h_prev, p, update_weighs="candidate")[0],
        "the reset gate is applied to h_{t−1} before the matrix, W_hn (r ⊙ h_{t−1}) (the articles' convention, "
        "and that of the final version of Cho et al.'s paper); torch applies it after: r ⊙ (W_hn h_{t−1} + b_hn)":
            _gru_forward(x, h_prev, p, reset_after=False)[0],
        "the gates r and z are swapped: the first H rows are the reset gate r, the next H the update gate z "
        "(torch's order r, z, n)": _gru_forward(x, h_prev, permute_blocks(p, [1, 0, 2], H))[0],
        "the reset gate multiplies the input part W_in x_t + b_in; it belongs on the recurrent part "
        "W_hn h_{t−1} + b_hn": mix(np.tanh(r * xn + hn)),
        "the reset gate multiplies the input part as well; only the recurrent part W_hn h_{t−1} + b_hn is reset":
            mix(np.tanh(r * (xn + hn))),
        "the reset gate r is not used: n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn))":
            mix(np.tanh(xn + hn)),
        "b_hn is outside the reset: torch resets the whole recurrent part, r ⊙ (W_hn h_{t−1} + b_hn)":
            mix(np.tanh(xn + r * hn_no_bias + p["bias_hh"][2 * H:])),
        "the gates use tanh; r and z must lie between 0 and 1, so they need σ":
            mix(np.tanh(xn + np.tanh(xr + hr) * hn), np.tanh(xz + hz)),
        "the candidate n uses σ; it needs tanh": mix(sigmoid(xn + r * hn)),
    }


@with_cases
def forward(student, rng, batch=3, input_size=4, hidden=5, scale=0.5, zero_state=False):
    """``gru_step_forward(x, h_prev, params)`` returns ``(h, cache)`` (torch's convention)."""
    return _check_step(student, rng, "gru_step_forward", "h", 3, _gru_forward, _forward_mistakes,
                       batch, input_size, hidden, scale, zero_state)


# --------------------------------------------------------------------------- full GRU backward

#: the cache that gru_step_backward receives, as the notebook documents it
CACHE_DOC = ("cache = (x, h_prev, r, z, n, hn, params), where r, z, n are the gates and the candidate (B, H) "
             "and hn = h_prev @ W_hn.T + b_hn is the recurrent part of the candidate before the reset")


def forward_cache(x, h_prev, p):
    """The cache of one GRU step in the format the notebook documents (see ``CACHE_DOC``)."""
    H, xr, xz, xn, hr, hz, hn = _gru_pieces(x, h_prev, p)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (x, h_prev, r, z, n, hn, p)


def backward_reference(x, h_prev, p, dh, mistake=None):
    """The GRU step's gradients (torch's convention) in plain numpy, optionally with one mistake.

    ``mistake=None`` gives rnnkit's values (tested in tests/test_checks_gru.py); the others are
    the typical errors the feedback names.
    """
    _, _, r, z, n, hn, _ = forward_cache(x, h_prev, p)
    dn, dz = dh * (1 - z), dh * (h_prev - n)
    direct = dh * z
    if mistake == "dz_sign":
        dz = -dz
    if mistake == "z_swapped":
        dn, dz, direct = dh * z, dh * (n - h_prev), dh * (1 - z)
    if mistake == "no_direct":
        direct = 0 * dh
    da_n = dn if mistake == "no_tanh" else dn * (1 - n * n)
    da_z = dz if mistake in ("no_sigmoid", "no_sigmoid_z") else dz * z * (1 - z)
    dr = da_n * hn
    da_r = dr if mistake in ("no_sigmoid", "no_sigmoid_r") else dr * r * (1 - r)
    dxw = np.concatenate([da_r, da_z, da_n], axis=1)
    dhw = np.concatenate([da_r, da_z, da_n if mistake == "hn_without_r" else r * da_n], axis=1)
    dh_prev = direct + dhw @ p["weight_hh"]
    if mistake == "no_recurrent":
        dh_prev = direct
    return {"x": dxw @ p["weight_ih"], "h_prev": dh_prev, "weight_ih": dxw.T @ x, "weight_hh": dhw.T @ h_prev,
            "bias_ih": dxw.sum(axis=0), "bias_hh": dhw.sum(axis=0)}


BACKWARD_MISTAKES = {
    "no_sigmoid": "the derivative of σ is missing at both gates: da = d(gate) ⊙ σ(a) ⊙ (1 − σ(a))",
    "no_sigmoid_z": "the derivative of σ is missing at the update gate: da_z = dz ⊙ z ⊙ (1 − z)",
    "no_sigmoid_r": "the derivative of σ is missing at the reset gate: da_r = dr ⊙ r ⊙ (1 − r)",
    "no_tanh": "the derivative of tanh is missing at the candidate: da_n = dn ⊙ (1 − n²)",
    "no_direct": "dh_prev misses the direct path z ⊙ dh: h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} "
                 "contains h_{t−1} itself, besides the paths through r, z and n",
    "no_recurrent": "dh_prev has only the direct path z ⊙ dh; h_{t−1} also enters r, z and n through W_hh, "
                    "which adds W_hhᵀ [da_r, da_z, r ⊙ da_n]",
    "dz_sign": "dz has the wrong sign: h_t = n + z ⊙ (h_{t−1} − n), so dz = dh ⊙ (h_{t−1} − n)",
    "z_swapped": "z and 1 − z are swapped (the articles' convention): in torch's, dn = dh ⊙ (1 − z) and "
                 "the direct path is dh ⊙ z",
    "hn_without_r": "the gradient of the recurrent candidate part W_hn h_{t−1} + b_hn lacks the reset gate: "
                    "it is r ⊙ da_n (da_n itself goes to W_in, b_in and x)",
}


def _grad_axes(hidden):
    return {"x": ("B", "I"), "h_prev": ("B", "H"), "weight_ih": ("3H", "I"), "weight_hh": ("3H", "H")}


@with_cases
def backward(student, rng, batch=3, input_size=4, hidden=5, scale=0.5, zero_state=False):
    """``gru_step_backward(dh, cache)`` returns a dict with keys x, h_prev and the parameter names.
    The cache is the checker's (``CACHE_DOC``), so a wrong forward pass does not fail this check."""
    fname = "gru_step_backward"
    fn = student_function(student, fname)
    x, h_prev, params = _inputs(rng, batch, input_size, hidden, 3, scale, zero_state)
    want_h, ref_cache = _gru_forward(x, h_prev, params)
    dh = rng.normal(size=want_h.shape)
    cache = forward_cache(x.copy(), h_prev.copy(), copy_params(params))
    grads = call_backward(fn, dh.copy(), cache, what=fname, cache_doc=CACHE_DOC)
    want = _gru_backward(dh, ref_cache)
    variants = {msg: backward_reference(x, h_prev, params, dh, key) for key, msg in BACKWARD_MISTAKES.items()}
    expect_grads(grads, want, "grads", whole=f"the result of {fname}", keys=GRAD_KEYS, axes=_grad_axes(hidden),
                 variants=variants)
    return f"{fname}: all six gradients correct (B={batch}, I={input_size}, H={hidden})"


# --------------------------------------------------------------------- update-gate conventions

@with_cases
def update_convention(student, rng, input_size=3, hidden=4, bias=True):
    """``convert_update_convention(params)`` returns parameters for torch's convention
    (z weighs h_{t−1}) that compute the same h as ``params`` do in the articles' convention
    (z weighs the candidate)."""
    fname = "convert_update_convention"
    fn = student_function(student, fname)
    H = hidden
    params = random_params(rng, input_size, hidden, 3, bias=bias)
    passed = copy_params(params)
    got = call_student(fn, passed)
    expect_unchanged({"params": params}, {"params": passed}, fname)
    if not isinstance(got, dict):
        raise CheckFailure(f"{fname} should return a dict of parameters, got a {kind_of(got)}")
    if set(got) != set(params):
        raise CheckFailure(f"{fname} should return the same keys as it was given, {sorted(params)}; "
                           f"it returned {sorted(map(str, got))}")
    want = negate_block(params, 1, H)
    variants = {
        "the biases must be negated too: the whole pre-activation of z changes sign, a → −a":
            negate_block(params, 1, H, names=("weight_ih", "weight_hh")),
        "nothing changed: negate the z rows (rows H…2H−1) so that σ(−a) = 1 − σ(a) swaps z and 1 − z":
            params,
        "only the input side is negated; W_hh (and b_hh) feed z as well":
            negate_block(params, 1, H, names=("weight_ih", "bias_ih")),
        "you negated the rows of the reset gate r; z is the second block (order r, z, n), rows H…2H−1":
            negate_block(params, 0, H),
        "you negated the rows of the candidate n; z is the second block (order r, z, n), rows H…2H−1":
            negate_block(params, 2, H),
        "you negated every row; only z's rows (H…2H−1) change sign": {k: -v for k, v in params.items()},
        "1 − W is not the same as −W: 1 − σ(a) = σ(−a), so negate the z rows": {
            k: np.concatenate([v[:H], 1 - v[H:2 * H], v[2 * H:]]) for k, v in params.items()},
    }
    for name in params:
        axes = {"weight_ih": ("3H", "I"), "weight_hh": ("3H", "H")}.get(name)
        expect_close(got[name], want[name], f"the returned {name}", axes=axes,
                     mistakes={msg: var[name] for msg, var in variants.items()})
    # the point of the exercise, checked on the step itself
    x, h_prev = rng.normal(size=(2, input_size)), rng.normal(size=(2, hidden))
    h_articles, _ = _gru_forward(x, h_prev, params, update_weighs="candidate")
    h_torch, _ = _gru_forward(x, h_prev, {k: np.asarray(v, dtype=np.float64) for k, v in got.items()})
    expect_close(h_torch, h_articles, "h computed with the converted parameters")
    return f"{fname}: correct (H={hidden}, {'with' if bias else 'without'} biases)"


# -------------------------------------------------------------------- the GRU over a sequence

def _sequence_inputs(rng, T, batch, input_size, hidden, scale, zero_state):
    params = random_params(rng, input_size, hidden, 3, scale=scale)
    x = rng.normal(size=(T, batch, input_size))
    h0 = np.zeros((batch, hidden)) if zero_state else rng.normal(0.0, 0.8, size=(batch, hidden))
    return x, h0, params


def _forward_variants(x, h0, p):
    """(hs, h_last) for typical mistakes of a loop over time."""
    from_h0 = np.stack([_gru_forward(x[t], h0, p)[0] for t in range(len(x))])
    hs, _, _ = _sequence_forward("gru", x, h0, p)
    before = np.concatenate([h0[None], hs[:-1]])
    return {
        "every step starts from h0: carry the state, the h of step t is the h_prev of step t+1": (from_h0,
                                                                                                  from_h0[-1]),
        "hs[t] must be the state after step t (h_{t+1}); yours holds the state before it": (before, hs[-1]),
    }


@with_cases
def sequence_forward(student, rng, T=4, batch=3, input_size=2, hidden=5, scale=0.5, zero_state=False):
    """``gru_forward(x, h0, params)`` returns ``(hs (T, B, H), h_last (B, H), caches)``, ``caches`` the T
    step caches of gru_step_forward."""
    fname = "gru_forward"
    fn = student_function(student, fname)
    x, h0, params = _sequence_inputs(rng, T, batch, input_size, hidden, scale, zero_state)
    want_hs, want_h, _ = _sequence_forward("gru", x, h0, params)
    args = {"x": x.copy(), "h0": h0.copy(), "params": copy_params(params)}

    def judge():
        out = call_student(fn, args["x"], args["h0"], args["params"], what=fname)
        hs, h_last, caches = expect_tuple(out, 3, fname, "(hs, h_last, caches)")
        expect_unchanged({"x": x, "h0": h0, "params": params}, args, fname)
        variants = _forward_variants(x, h0, params)
        axes = ("T", "B", "H") if len({T, batch, hidden}) == 3 else None
        expect_output(hs, want_hs, "hs", axes=axes, mistakes={m: v[0] for m, v in variants.items()})
        expect_output(h_last, want_h, "h_last", axes=STATE_AXES, mistakes={
            **{m: v[1] for m, v in variants.items()},
            "h_last is the state after the last step, hs[T − 1]": want_hs[0]})
        _expect_caches(caches, x, h0, want_hs, params)

    blame_parts(student, judge, [("gru_step_forward", forward)], fname)
    return f"{fname}: hs, h_last and the caches correct (T={T}, B={batch}, I={input_size}, H={hidden})"


def _expect_caches(caches, x, h0, hs, params):
    """caches[t] must be the documented cache of step t (the one gru_step_backward reads)."""
    T = len(x)
    if not isinstance(caches, (list, tuple)) or len(caches) != T:
        got = f"a {kind_of(caches)} of {len(caches)}" if isinstance(caches, (list, tuple)) else f"a {kind_of(caches)}"
        raise CheckFailure(f"caches should be a list of the T = {T} step caches, got {got}")
    names = ("x", "h_prev", "r", "z", "n", "hn")
    for t, cache in enumerate(caches):
        if not isinstance(cache, (list, tuple)) or len(cache) != 7:
            raise CheckFailure(f"caches[{t}] should be the cache of step {t}: {CACHE_DOC}; got {kind_of(cache)}")
        want = forward_cache(x[t], h0 if t == 0 else hs[t - 1], params)
        for name, got, right in zip(names, cache, want):
            expect_close(got, right, f"caches[{t}] entry {name!r}")


#: the gradients gru_backward returns
SEQUENCE_KEYS = ("x", "h0") + PARAM_NAMES
#: the caches that gru_backward receives, as the notebook documents them
CACHES_DOC = ("caches = the list of the T step caches, caches[t] = (x[t], h_prev, r, z, n, hn, params) as "
              "gru_step_forward returns it, with h_prev = h0 for t = 0 and hs[t − 1] after")


def sequence_caches(x, h0, hs, params):
    """The caches of a GRU run in the documented format (``CACHES_DOC``), from the states ``hs``."""
    return [forward_cache(x[t], h0 if t == 0 else hs[t - 1], params) for t in range(len(x))]


def bptt_reference(x, h0, hs, params, dhs, dh_last, carry=True, dh_last_mode="last", accumulate="all",
                   h0_grad="through", reverse_dx=False):
    """BPTT over a GRU run in numpy from the step backward, with switches for the typical mistakes
    (all off: rnnkit's ``sequence_backward``, tested in tests/test_checks_gru.py)."""
    T = len(x)
    grads = {k: np.zeros_like(params[k]) for k in PARAM_NAMES}
    dxs, dnext, dh_first = [], np.zeros_like(h0), None
    extra = np.zeros_like(h0) if dh_last is None else dh_last
    for t in reversed(range(T)):
        dh = dhs[t] + (dnext if carry else 0.0)
        if (dh_last_mode == "last" and t == T - 1) or dh_last_mode == "every":
            dh = dh + extra
        dh_first = dh
        step = backward_reference(x[t], h0 if t == 0 else hs[t - 1], params, dh)
        if accumulate == "all" or (accumulate == "first" and t == 0) or (accumulate == "last" and t == T - 1):
            for k in grads:
                grads[k] = grads[k] + step[k]
        dxs.append(step["x"])
        dnext = step["h_prev"]
    grads["x"] = np.stack(dxs if reverse_dx else dxs[::-1])
    grads["h0"] = dnext if h0_grad == "through" else dh_first
    return grads


def _bptt_mistakes(x, h0, hs, params, dhs, dlast, want):
    """Known wrong versions of each gradient of gru_backward: {key: {message: value}}."""
    T = len(x)
    not_carried = ("the gradient from step t+1 is not added: dh_t = dhs[t] + (the 'h_prev' gradient that step t+1 "
                   "sends back)")
    messages = [
        (not_carried, dict(carry=False)),
        (not_carried + "; dh_last is missing too", dict(carry=False, dh_last_mode="none")),
        ("only the first step's gradient is in it: every step uses the same weights, so add (+=) the "
         "gradients of all T steps", dict(accumulate="first")),
        ("only the last step's gradient is in it: every step uses the same weights, so add (+=) the "
         "gradients of all T steps", dict(accumulate="last")),
        ("grads['x'] is in reverse time order: the loop runs backwards, so put dx of step t at index t",
         dict(reverse_dx=True)),
    ]
    if dlast is not None:
        messages += DH_LAST_MISTAKES[: 2 if T > 1 else 1]
    mistakes = mistakes_by_key(lambda **flags: bptt_reference(x, h0, hs, params, dhs, dlast, **flags), messages,
                               want, SEQUENCE_KEYS)
    mistakes["h0"]["grads['h0'] is dh of the first step; pass it back through that step: ∂L/∂h_0 is the "
                   "'h_prev' gradient of the first step"] = bptt_reference(x, h0, hs, params, dhs, dlast,
                                                                          h0_grad="first")["h0"]
    return mistakes


@with_cases
def sequence_backward(student, rng, T=4, batch=3, input_size=2, hidden=5, scale=0.5, zero_state=False,
                      d_h_n=True):
    """``gru_backward(dhs (T, B, H), dh_last (B, H) or None, caches)`` returns a dict with the keys
    SEQUENCE_KEYS. The caches are the checker's (``CACHES_DOC``): a wrong forward pass does not fail
    this check."""
    fname = "gru_backward"
    fn = student_function(student, fname)
    x, h0, params = _sequence_inputs(rng, T, batch, input_size, hidden, scale, zero_state)
    hs, _, cache = _sequence_forward("gru", x, h0, params)
    dhs = rng.normal(size=hs.shape)
    dlast = rng.normal(size=h0.shape) if d_h_n else None
    want = dict(_sequence_backward(dhs, dlast, cache))
    given = sequence_caches(x.copy(), h0.copy(), hs.copy(), copy_params(params))
    mistakes = _bptt_mistakes(x, h0, hs, params, dhs, dlast, want)
    scales = {1 / T: "did you divide by T? The loss is the sum of the per-step losses, so its gradients are "
                     "sums over the steps, not averages"} if T > 1 else {}
    axes = {"x": ("T", "B", "I") if len({T, batch, input_size}) == 3 else None, "h0": STATE_AXES}

    def judge():
        grads = call_backward(fn, dhs.copy(), None if dlast is None else dlast.copy(), given, what=fname,
                              cache_doc=CACHES_DOC)
        grads = expect_grads_dict(grads, SEQUENCE_KEYS, f"the dict {fname} returns")
        for key in SEQUENCE_KEYS:
            expect_close(grads[key], want[key], f"grads[{key!r}]", axes=axes.get(key), mistakes=mistakes[key],
                         scales=scales if key in PARAM_NAMES else None)

    blame_parts(student, judge, [("gru_step_backward", backward)], fname)
    last = "with dh_last" if dlast is not None else "dh_last=None"
    return f"{fname}: all six gradients correct ({last}, T={T}, B={batch}, I={input_size}, H={hidden})"
