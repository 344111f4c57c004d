"""Checks for exercise 13, the capstone: a character-level language model of first names trained end
to end with the students' own pieces, written once for numpy and torch.

Graded: the student's cell step (LSTM or GRU, chosen with ``CELL = "lstm"`` or ``"gru"`` in the
notebook) forward and backward; the loss of the language model and its gradients (BPTT through their
step); clipping by the global norm; the Adam update; one training step (loss, clipping, update); a
training run whose loss must go down like rnnkit's with the same data and start; sampling names by
inverse-CDF with given uniform numbers; and the same functions on torch tensors.

The expected values come from rnnkit: the cells of ``rnnkit.cells``, ``ManyToMany`` with an
``LSTM``/``GRU`` and a ``Linear`` head, ``cross_entropy`` (mean over the non-padded targets),
``clip_grad_norm`` and ``Adam``. The ``mistakes`` are the same computations with one typical error
(no bias correction, gradient ascent, clipping after the update, losses as a running total, the state
not carried through time or not reset between names, ...).

The backward step is scored on its own: it gets a cache that the checker built in the format the
notebook documents (:data:`CACHE_FIELDS`), never one from the student's forward step. The composite
functions (``lm_loss``, ``train_step``, ``train``, ``sample_names``) call the student's own pieces; when
one fails, the first of its parts that fails its own check is named (``blame_parts``).

On torch the student's side makes numpy refuse tensors (``Tensor.__array__`` raises) for the length of
the check, as happens on a GPU: a numpy function called on a tensor (``np.tanh(h)``) then fails
instead of silently working on the CPU.
"""
from __future__ import annotations

import contextlib

import numpy as np

from rnnkit.cells import gru_step_backward as _gru_step_backward
from rnnkit.cells import gru_step_forward as _gru_step_forward
from rnnkit.cells import lstm_step_backward as _lstm_step_backward
from rnnkit.cells import lstm_step_forward as _lstm_step_forward
from rnnkit.clip import clip_grad_norm as _clip_grad_norm
from rnnkit.heads import Linear as _Linear
from rnnkit.losses import cross_entropy as _cross_entropy
from rnnkit.models import ManyToMany as _ManyToMany
from rnnkit.modules import GRU as _GRU
from rnnkit.modules import LSTM as _LSTM
from rnnkit.optim import Adam as _Adam
from rnnkit.sequence import sequence_backward as _seq_backward
from rnnkit.sequence import sequence_forward as _seq_forward
from rnnkit.text import BOS_ID, EOS_ID, PAD_ID

from ..sandbox import Policy
from . import HELPERS
from ..student_side.runtime import NUMPY_ON_TENSOR
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_close, expect_grads_dict,
                     expect_tuple, kind_of, student_function)
from .seq2seq import expect_number, run_cases, token_lists

#: the notebook's imports: numpy, matplotlib, threadpoolctl, array_api_compat, the names of rnnkit.data
#: (read from the ``names`` package), the special ids of rnnkit.text and rnnkit.backend.to_backend;
#: torch, because section 7 runs the student's code on tensors. Not rnnkit's cells, losses, clipping
#: or optimizers (they are the answers).
POLICY = Policy(packages=("numpy", "matplotlib", "threadpoolctl", "array_api_compat", "names", "torch"),
                rnnkit=HELPERS + ("rnnkit.text", "rnnkit.backend"))
SPECS = ("step_forward", "step_backward", "lm_loss", "clip", "adam", "train_step", "train", "sample",
         "torch_backend")

LETTERS = "abcdefghijklmnopqrstuvwxyz"
VOCAB = 4 + len(LETTERS)  # <PAD>, <UNK>, <BOS>, <EOS>, a ... z
CELLS = {"lstm": 4, "gru": 3}
CELL_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
PARAM_NAMES = tuple(f"rnn.{n}_l0" for n in CELL_NAMES) + ("head.weight", "head.bias")
#: what the cache of cell_step_forward holds, entry by entry (the notebook documents the same)
CACHE_FIELDS = {"lstm": ("x", "h_prev", "c_prev", "i", "f", "g", "o", "c", "tanh_c", "params"),
                "gru": ("x", "h_prev", "r", "z", "n", "hn", "params")}
GRAD_KEYS = {"lstm": ("x", "h_prev", "c_prev") + CELL_NAMES, "gru": ("x", "h_prev") + CELL_NAMES}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _threads():
    """One BLAS thread for the checker's own computations: the matrices are tiny."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _cases(run, cases, defaults):
    return run_cases(run, cases, defaults, context=_threads)


def student_cell(student):
    """The cell the student chose with ``CELL = "lstm"`` or ``"gru"`` (LSTM when not set)."""
    cell = student.value("CELL", "lstm")
    if not isinstance(cell, str) or cell not in CELLS:
        raise CheckFailure(f'CELL is {cell!r}; set CELL = "lstm" or CELL = "gru" (the cell your step implements)')
    return cell


def random_cell_params(rng, cell, input_size, hidden, scale=0.5):
    GH = CELLS[cell] * hidden
    return {"weight_ih": rng.normal(0.0, scale, (GH, input_size)),
            "weight_hh": rng.normal(0.0, scale, (GH, hidden)),
            "bias_ih": rng.normal(0.0, scale / 2, GH), "bias_hh": rng.normal(0.0, scale / 2, GH)}


def random_lm_params(rng, cell, hidden, vocab=VOCAB, scale=0.5):
    """Language-model parameters under ManyToMany's names: rnn.weight_ih_l0, ..., head.bias."""
    params = {f"rnn.{k}_l0": v for k, v in random_cell_params(rng, cell, vocab, hidden, scale).items()}
    params["head.weight"] = rng.normal(0.0, 1.0 / np.sqrt(hidden), (vocab, hidden))
    params["head.bias"] = rng.normal(0.0, 0.3, vocab)
    return params


def init_lm_params(cell, hidden, seed, vocab=VOCAB):
    """torch-like initial parameters (uniform ±1/√H), as rnnkit's modules draw them."""
    model = _ManyToMany((_LSTM if cell == "lstm" else _GRU)(vocab, hidden, seed=seed),
                        _Linear(hidden, vocab, seed=seed + 1))
    return copy_params(model.params)


def encode_name(name):
    return [BOS_ID] + [4 + LETTERS.index(ch) for ch in name] + [EOS_ID]


def make_batch(names):
    """Time-major ids (T+1, B): <BOS>, the letters, <EOS>, then <PAD> up to the longest name."""
    seqs = [encode_name(n) for n in names]
    ids = np.full((max(len(s) for s in seqs), len(seqs)), PAD_ID, dtype=np.int64)
    for b, s in enumerate(seqs):
        ids[: len(s), b] = s
    return ids


def make_batches(names, batch_size, steps, seed):
    rng = np.random.default_rng(seed)
    return [make_batch([names[i] for i in rng.integers(0, len(names), batch_size)]) for _ in range(steps)]


def random_batch(rng, batch, max_letters):
    lengths = rng.integers(0, max_letters + 1, size=batch)
    lengths[rng.integers(batch)] = max_letters
    return make_batch(["".join(LETTERS[i] for i in rng.integers(0, 26, n)) for n in lengths])


def short_names(max_letters=6):
    from rnnkit.data import names_corpus

    return [n for n in names_corpus() if len(n) <= max_letters]


def _one_hot(ids, vocab=VOCAB):
    return (ids[..., None] == np.arange(vocab)).astype(np.float64)


def _cell_part(params):
    return {n: params[f"rnn.{n}_l0"] for n in CELL_NAMES}


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _expect_params(got, want, what, mistakes=None, rtol=1e-7, atol=1e-10):
    """``got`` must be a dict with every name of ``want``, each close to it; ``mistakes`` maps a
    message to a whole dict of wrong values."""
    if not isinstance(got, dict):
        raise CheckFailure(f"{what} should be a dict named like the parameters, got a {kind_of(got)}")
    for name in want:
        if name not in got:
            raise CheckFailure(f"{what} has no entry {name!r}: keep every parameter under its name")
        expect_close(got[name], want[name], f"{what}[{name!r}]", rtol=rtol, atol=atol,
                     mistakes={msg: v[name] for msg, v in (mistakes or {}).items()})


# --------------------------------------------------------------------------------------------
# 1. the cell step, forward and backward
# --------------------------------------------------------------------------------------------

def _reference_step(cell, x, state, params):
    """rnnkit's step of ``cell``: ``(state, rnnkit's own cache)``."""
    if cell == "lstm":
        return _lstm_step_forward(x, state, params)
    return _gru_step_forward(x, state, params)


def reference_cache(cell, x, state, params):
    """The step written out: ``(state, cache)`` with the cache in the documented format
    (:data:`CACHE_FIELDS`): the gates after their nonlinearity, and for the LSTM the new cell
    state and its tanh, for the GRU ``hn = h_prev @ W_hn.T + b_hn``; ``params`` last."""
    W_ih, W_hh, b_ih, b_hh = (params[n] for n in CELL_NAMES)
    H = W_hh.shape[1]
    h_prev = state[0] if cell == "lstm" else state
    xw, hw = x @ W_ih.T + b_ih, h_prev @ W_hh.T + b_hh
    if cell == "lstm":
        c_prev = state[1]
        a = xw + hw
        i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        return (o * tanh_c, c), (x, h_prev, c_prev, i, f, g, o, c, tanh_c, params)
    r, z = _sigmoid(xw[:, :H] + hw[:, :H]), _sigmoid(xw[:, H:2 * H] + hw[:, H:2 * H])
    hn = hw[:, 2 * H:]
    n = np.tanh(xw[:, 2 * H:] + r * hn)
    return (1 - z) * n + z * h_prev, (x, h_prev, r, z, n, hn, params)


def backward_reference(cell, dstate, cache, through_h=True, tanh_of_c=True, direct=True, reset=True):
    """The backward step written out from a documented cache, with switches for the mistakes:
    LSTM ``through_h`` (dc gets the path through h_t), ``tanh_of_c`` (tanh' from tanh(c_t), not
    from c_t); GRU ``direct`` (the path z ⊙ dh to h_prev), ``reset`` (r multiplies the recurrent part
    of the candidate's gradient)."""
    if cell == "lstm":
        dh, dc = dstate
        x, h_prev, c_prev, i, f, g, o, c, tanh_c, params = cache
        if through_h:
            dc = dc + dh * o * ((1 - tanh_c * tanh_c) if tanh_of_c else (1 - c * c))
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                             dh * tanh_c * o * (1 - o)], axis=1)
        dxw = dhw = da
        extra = {"h_prev": da @ params["weight_hh"], "c_prev": dc * f}
    else:
        dh = dstate
        x, h_prev, r, z, n, hn, params = cache
        da_n = dh * (1 - z) * (1 - n * n)
        da_z = dh * (h_prev - n) * z * (1 - z)
        da_r = da_n * hn * r * (1 - r)
        dxw = np.concatenate([da_r, da_z, da_n], axis=1)
        dhw = np.concatenate([da_r, da_z, r * da_n if reset else da_n], axis=1)
        extra = {"h_prev": (dh * z if direct else 0.0) + dhw @ params["weight_hh"]}
    return {"x": dxw @ params["weight_ih"], **extra, "weight_ih": dxw.T @ x, "weight_hh": dhw.T @ h_prev,
            "bias_ih": dxw.sum(axis=0), "bias_hh": dhw.sum(axis=0)}


def _step_problem(rng, cell, batch, input_size, hidden):
    params = random_cell_params(rng, cell, input_size, hidden)
    x = rng.normal(size=(batch, input_size))
    h = rng.normal(0.0, 0.8, (batch, hidden))
    state = (h, rng.normal(0.0, 0.8, (batch, hidden))) if cell == "lstm" else h
    return params, x, state


def _forward_mistakes(cell, x, state, params):
    """The new state of the typical forward mistakes, by message."""
    if cell == "lstm":
        H = state[0].shape[1]
        swapped = {k: np.concatenate([v[:2 * H], v[3 * H:], v[2 * H:3 * H]]) for k, v in params.items()}
        return {"the gate blocks are in the order i, f, o, g; in torch's order the candidate g is the third "
                "block and the output gate o the fourth: i, f, g, o": _lstm_step_forward(x, state, swapped)[0]}
    return {"z weighs the candidate: in torch's GRU, z weighs the previous state, "
            "h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}":
            _gru_step_forward(x, state, params, update_weighs="candidate")[0],
            "the reset gate multiplied h_prev before the matrix; in torch's GRU it multiplies the recurrent part "
            "after it, with its bias: r ⊙ (W_hn h_{t−1} + b_hn)": _gru_step_forward(x, state, params,
                                                                                   reset_after=False)[0]}


def _check_state(cell, new_state, want, mistakes, what):
    if cell == "lstm":
        if not isinstance(new_state, (tuple, list)) or len(new_state) != 2:
            raise CheckFailure(f"{what} should return the LSTM state as a pair (h, c), got a {kind_of(new_state)}")
        expect_close(new_state[0], want[0], "h", axes=("B", "H"), mistakes={m: v[0] for m, v in mistakes.items()})
        expect_close(new_state[1], want[1], "c", axes=("B", "H"), mistakes={m: v[1] for m, v in mistakes.items()})
    else:
        expect_close(new_state, want, "h", axes=("B", "H"), mistakes=mistakes)


def _check_cache(cell, cache, want):
    """The student's cache must hold the documented entries (cell_step_backward is tested with them)."""
    fields = CACHE_FIELDS[cell]
    layout = "(" + ", ".join(fields) + ")"
    if not isinstance(cache, (tuple, list)) or len(cache) != len(fields):
        got = f"{len(cache)} entries" if isinstance(cache, (tuple, list)) else f"a {kind_of(cache)}"
        raise CheckFailure(f"the cache should be the tuple {layout} that section 1 describes (cell_step_backward "
                           f"is tested with a cache in that format), got {got}")
    for k, (name, got, expected) in enumerate(zip(fields, cache, want)):
        if name == "params":
            _expect_params(got, expected, f"cache[{k}] (params)", rtol=0, atol=0)
        else:
            expect_close(got, expected, f"cache[{k}] ({name})", axes=("B", "H") if k > 0 else None)


def step_forward(student, rng, cases=None, **defaults):
    """``cell_step_forward(x, state, params)`` returns ``(state, cache)``: the state like rnnkit's step
    of the chosen cell (LSTM: state = (h, c); GRU: state = h), the cache in the documented format."""
    base = {"batch": 3, "input_size": 4, "hidden": 5, **defaults}
    fn = student_function(student, "cell_step_forward")
    cell = student_cell(student)

    def run(batch, input_size, hidden):
        params, x, state = _step_problem(rng, cell, batch, input_size, hidden)
        want, _ = _reference_step(cell, x, state, params)
        _, want_cache = reference_cache(cell, x, state, params)
        passed = tuple(s.copy() for s in state) if cell == "lstm" else state.copy()
        out = call_student(fn, x.copy(), passed, copy_params(params))
        new_state, cache = expect_tuple(out, 2, "cell_step_forward", "(state, cache)")
        _check_state(cell, new_state, want, _forward_mistakes(cell, x, state, params), "cell_step_forward")
        _check_cache(cell, cache, want_cache)
        return f"cell_step_forward: correct ({cell}, B={batch}, I={input_size}, H={hidden})"

    return _cases(run, cases, base)


def _backward_mistakes(cell):
    if cell == "lstm":
        return {"c_t reaches the loss along two paths, the dc you are given and through h_t = o ⊙ tanh(c_t): add "
                "dh ⊙ o ⊙ (1 − tanh²(c_t)) to dc before going further back": {"through_h": False},
                "the derivative of tanh(c_t) is 1 − tanh²(c_t), not 1 − c_t²: use tanh_c from the cache":
                    {"tanh_of_c": False}}
    return {"the direct path is missing: h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} sends z ⊙ dh straight to h_prev, "
            "besides what flows through the gates": {"direct": False},
            "the recurrent part of the candidate enters multiplied by r_t, so its gradient (the n block of the "
            "recurrent parts) is r ⊙ da_n, not da_n": {"reset": False}}


def step_backward(student, rng, cases=None, **defaults):
    """``cell_step_backward(dstate, cache)`` returns a dict of gradients like rnnkit's (keys 'x',
    'h_prev', ['c_prev'], and the parameter names). The cache is the checker's, in the documented
    format: a wrong forward step does not cost these points."""
    base = {"batch": 3, "input_size": 4, "hidden": 5, **defaults}
    fn = student_function(student, "cell_step_backward")
    cell = student_cell(student)
    layout = "(" + ", ".join(CACHE_FIELDS[cell]) + ")"

    def run(batch, input_size, hidden):
        params, x, state = _step_problem(rng, cell, batch, input_size, hidden)
        _, rnnkit_cache = _reference_step(cell, x, state, params)
        _, cache = reference_cache(cell, x, state, params)
        dh = rng.normal(size=(batch, hidden))
        dstate = (dh, rng.normal(size=(batch, hidden))) if cell == "lstm" else dh
        want = (_lstm_step_backward if cell == "lstm" else _gru_step_backward)(dstate, rnnkit_cache)
        mistakes = {msg: backward_reference(cell, dstate, cache, **switch)
                    for msg, switch in _backward_mistakes(cell).items()}
        try:
            got = call_student(fn, dstate, cache)
        except CheckFailure as failure:
            raise CheckFailure(f"{failure}. (Its cache is the tuple {layout} of section 1, made by the "
                               "checker from the same inputs.)") from None
        keys = GRAD_KEYS[cell]
        expect_grads_dict(got, keys, "the gradients")
        for key in keys:
            expect_close(got[key], want[key], f"grads[{key!r}]", rtol=1e-7, atol=1e-10,
                         mistakes={msg: v[key] for msg, v in mistakes.items()})
        return f"cell_step_backward: correct ({cell}, B={batch}, I={input_size}, H={hidden})"

    return _cases(run, cases, base)


# --------------------------------------------------------------------------------------------
# 2. the loss of the language model and its gradients
# --------------------------------------------------------------------------------------------

def reference_model(cell, params):
    H = params["head.weight"].shape[1]
    model = _ManyToMany((_LSTM if cell == "lstm" else _GRU)(VOCAB, H), _Linear(H, VOCAB))
    for name, part in model.parts.items():
        for key in part.params:
            part.params[key] = np.array(params[f"{name}.{key}"], copy=True)
    return model


def reference_loss(cell, ids, params):
    """rnnkit's loss (mean cross-entropy over the non-padded targets) and gradients."""
    model = reference_model(cell, params)
    logits = model(_one_hot(ids[:-1]))
    loss, d_loss = _cross_entropy(logits, ids[1:], ignore_index=PAD_ID, reduction="mean")
    model.backward(d_loss["logits"])
    return float(loss), dict(model.grads)


def lm_reference(cell, ids, params, shift=True, ignore_pad=True, mean=True, carry=True, through_time=True):
    """The loss written out with switches for the mistakes. Returns ``(loss, grads)``."""
    inputs, targets = ids[:-1], (ids[1:] if shift else ids[:-1])
    T, B = inputs.shape
    x = _one_hot(inputs)
    part = _cell_part(params)
    if carry:
        hs, _, cache = _seq_forward(cell, x, None, part)
    else:  # every step from a zero state: one step of a batch of T*B
        hs, _, cache = _seq_forward(cell, x.reshape(1, T * B, VOCAB), None, part)
        hs = hs.reshape(T, B, -1)
    W, b = params["head.weight"], params["head.bias"]
    logits = hs @ W.T + b
    loss, d_loss = _cross_entropy(logits, targets, ignore_index=PAD_ID if ignore_pad else None,
                                  reduction="mean" if mean else "sum")
    dlogits = d_loss["logits"]
    H = W.shape[1]
    grads = {"head.weight": dlogits.reshape(-1, VOCAB).T @ hs.reshape(-1, H),
             "head.bias": dlogits.reshape(-1, VOCAB).sum(0)}
    dhs = dlogits @ W
    if carry:
        g = _seq_backward(dhs, None, cache, truncate=None if through_time else 1)
    else:
        g = _seq_backward(dhs.reshape(1, T * B, H), None, cache)
    for n in CELL_NAMES:
        grads[f"rnn.{n}_l0"] = g[n]
    return float(loss), grads


LM_MISTAKES = {
    "the targets are the inputs themselves: the model must predict the NEXT character, targets = ids[1:] "
    "while the inputs are ids[:-1]": {"shift": False},
    "the padding was counted: positions whose target is <PAD> add nothing to the loss (nor to n)":
        {"ignore_pad": False},
    "the hidden state is not carried from step to step: step t starts from the state of step t-1, not "
    "from zeros": {"carry": False},
    "no gradient flows back through time: at step t, the state's gradient is the head's dh_t PLUS the "
    "gradient that came back from step t+1 (dh_prev, and dc_prev for the LSTM)": {"through_time": False},
}


def _check_lm_loss_case(fn, rng, cell, batch, max_letters, hidden):
    params = random_lm_params(rng, cell, hidden)
    ids = random_batch(rng, batch, max_letters)
    want_loss, want = reference_loss(cell, ids, params)
    mistakes = {msg: lm_reference(cell, ids, params, **switch) for msg, switch in LM_MISTAKES.items()}
    out = call_student(fn, ids.copy(), copy_params(params))
    loss, grads = expect_tuple(out, 2, "lm_loss", "(loss, grads)")
    n = int((ids[1:] != PAD_ID).sum())
    expect_close(expect_number(loss, "the loss"), np.asarray(want_loss), "loss", rtol=1e-8, scales={
        float(n): "the loss is summed; this model reports the mean over the real target characters "
                  "(divide by their number n)"}, mistakes={msg: v[0] for msg, v in mistakes.items()})
    expect_grads_dict(grads, PARAM_NAMES, "grads")
    grad_scales = {float(n): "the gradient is n times too large: the loss is a mean, so dlogits is divided by n"}
    for name in ("head.weight", "head.bias") + PARAM_NAMES[:4]:
        expect_close(grads[name], want[name], f"grads[{name!r}]", rtol=1e-6, atol=1e-10, scales=grad_scales,
                     mistakes={msg: v[1][name] for msg, v in mistakes.items()})
    return f"lm_loss: correct ({cell}, B={batch}, up to {max_letters} letters, H={hidden})"


def lm_loss(student, rng, cases=None, **defaults):
    """``lm_loss(ids, params)`` returns ``(loss, grads)``: the mean cross-entropy per real target
    character and the gradient of every parameter."""
    base = {"batch": 4, "max_letters": 5, "hidden": 6, **defaults}
    fn = student_function(student, "lm_loss")
    cell = student_cell(student)
    run = lambda **case: _check_lm_loss_case(fn, rng, cell, **case)  # noqa: E731
    return blame_parts(student, lambda: _cases(run, cases, base), parts_of("lm_loss"), "lm_loss")


# --------------------------------------------------------------------------------------------
# 3. clipping by the global norm
# --------------------------------------------------------------------------------------------

def _clip_mistakes(grads, max_norm, norm, active):
    out = {}
    if len(grads) > 1:
        out["each array was clipped on its own: the norm is global, one number for all gradients together, and "
            "every array is scaled by the same factor"] = {
            k: g * min(1.0, max_norm / (np.sqrt((g * g).sum()) + 1e-6)) for k, g in grads.items()}
    if not active:
        out["the gradients were scaled although their norm was already below max_norm: the factor is "
            "min(1, max_norm / norm)"] = {k: g * max_norm / (norm + 1e-6) for k, g in grads.items()}
    return out


def clip(student, rng, cases=None, **defaults):
    """``clip_grad_norm(grads, max_norm)`` returns ``(clipped, norm)``: a new dict scaled so that the
    global norm is at most max_norm, and the norm before clipping."""
    base = {"arrays": 3, "active": True, **defaults}
    fn = student_function(student, "clip_grad_norm")

    def run(arrays, active):
        shapes = [tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(1, 3))) for _ in range(arrays)]
        grads = {f"p{k}": rng.normal(size=s) for k, s in enumerate(shapes)}
        norm = float(np.sqrt(sum((g * g).sum() for g in grads.values())))
        max_norm = norm * (rng.uniform(0.2, 0.6) if active else rng.uniform(1.5, 3.0))
        want = copy_params(grads)
        want_norm = float(_clip_grad_norm(want, max_norm))
        out = call_student(fn, copy_params(grads), max_norm)
        clipped, got_norm = expect_tuple(out, 2, "clip_grad_norm", "(clipped, norm)")
        expect_close(expect_number(got_norm, "norm"), np.asarray(want_norm), "norm", rtol=1e-9, mistakes={
            "the norm is the square of what it should be: take the square root of the sum of squares":
                want_norm ** 2})
        _expect_params(clipped, want, "clipped", mistakes=_clip_mistakes(grads, max_norm, want_norm, active),
                       rtol=1e-9, atol=1e-12)
        state = "clipped" if active else "left alone"
        return (f"clip_grad_norm: correct ({len(grads)} arrays, norm {want_norm:.3g} vs max_norm {max_norm:.3g}: "
                f"{state})")

    return _cases(run, cases, base)


# --------------------------------------------------------------------------------------------
# 4. Adam
# --------------------------------------------------------------------------------------------

def adam_reference(params, grads_list, lr, betas=(0.9, 0.999), eps=1e-8, correct=True, sign=1.0, square=True):
    """Params after each Adam step, written out with switches for the mistakes."""
    beta1, beta2 = betas
    p = copy_params(params)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(a) for k, a in p.items()}
    out = []
    for t, grads in enumerate(grads_list, start=1):
        for k, g in grads.items():
            m[k] = beta1 * m[k] + (1 - beta1) * g
            v[k] = beta2 * v[k] + (1 - beta2) * (g * g if square else g)
            m_hat = m[k] / (1 - beta1**t) if correct else m[k]
            v_hat = v[k] / (1 - beta2**t) if correct else v[k]
            with np.errstate(invalid="ignore"):
                p[k] = p[k] - sign * lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(copy_params(p))
    return out


ADAM_MISTAKES = {
    "the bias correction is missing: m̂ = m / (1 − β1^t) and v̂ = v / (1 − β2^t), with t = 1 at the first "
    "step": {"correct": False},
    "the parameters moved up the gradient: the update subtracts, θ ← θ − η m̂ / (√v̂ + ε)": {"sign": -1.0},
    "v must average the squared gradients: v ← β2 v + (1 − β2) g²": {"square": False},
}


def adam(student, rng, cases=None, **defaults):
    """``adam_update(params, grads, state, lr, betas, eps)`` updates ``params`` (and ``state``) in
    place; checked over several steps against rnnkit's Adam."""
    base = {"steps": 3, "lr": 0.01, "betas": (0.9, 0.999), **defaults}
    fn = student_function(student, "adam_update")

    def run(steps, lr, betas):
        betas = tuple(float(b) for b in betas)
        params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(4,)), "c": rng.normal(size=(2, 2))}
        grads_list = [{k: rng.normal(0.0, 0.5, v.shape) * rng.uniform(0.1, 3.0) for k, v in params.items()}
                      for _ in range(steps)]
        want_params = copy_params(params)
        opt = _Adam(want_params, lr=lr, betas=betas)
        wrong_runs = {msg: adam_reference(params, grads_list, lr, betas, **switch)
                      for msg, switch in ADAM_MISTAKES.items()}
        state, passed = {}, copy_params(params)
        for t, grads in enumerate(grads_list):
            opt.step(copy_params(grads))
            call_student(fn, passed, copy_params(grads), state, lr, betas=betas)
            try:
                _expect_params(passed, want_params, "params", rtol=1e-9, atol=1e-12,
                               mistakes={msg: wrong[t] for msg, wrong in wrong_runs.items()})
            except CheckFailure as failure:
                raise CheckFailure(f"after step {t + 1}: {failure}") from None
        return f"adam_update: correct over {steps} steps (lr={lr}, betas={betas})"

    return _cases(run, cases, base)


# --------------------------------------------------------------------------------------------
# 5. one training step, and a training run
# --------------------------------------------------------------------------------------------

def reference_training(cell, params, batches, lr, max_norm, clip=True):
    """rnnkit: loss, clip_grad_norm, Adam, step by step. Returns ``(losses, params after each step)``."""
    model = reference_model(cell, params)
    opt = _Adam(model.params, lr=lr)
    losses, snapshots = [], []
    for ids in batches:
        logits = model(_one_hot(ids[:-1]))
        loss, d_loss = _cross_entropy(logits, ids[1:], ignore_index=PAD_ID, reduction="mean")
        model.backward(d_loss["logits"])
        grads = model.grads
        if clip:
            _clip_grad_norm(grads, max_norm)
        opt.step(grads)
        losses.append(float(loss))
        snapshots.append(copy_params(model.params))
    return losses, snapshots


CLIP_AFTER = ("the update used gradients that were not clipped: clip first, then update with the clipped "
              "gradients (clipping after the update changes nothing)")


def train_step(student, rng, cases=None, **defaults):
    """``train_step(params, state, ids, lr, max_norm)`` returns the loss before the update and updates
    ``params`` in place: lm_loss, clip_grad_norm, adam_update."""
    base = {"steps": 3, "batch": 4, "max_letters": 5, "hidden": 6, "lr": 0.05, "max_norm": 0.3, **defaults}
    fn = student_function(student, "train_step")
    cell = student_cell(student)

    def run(steps, batch, max_letters, hidden, lr, max_norm):
        params = random_lm_params(rng, cell, hidden)
        batches = [random_batch(rng, batch, max_letters) for _ in range(steps)]
        want_losses, want_params = reference_training(cell, params, batches, lr, max_norm)
        _, unclipped = reference_training(cell, params, batches, lr, max_norm, clip=False)
        state, passed = {}, copy_params(params)
        for t, ids in enumerate(batches):
            loss = call_student(fn, passed, state, ids.copy(), lr, max_norm)
            try:
                expect_close(expect_number(loss, "the loss train_step returned"), np.asarray(want_losses[t]),
                             "the loss train_step returned", rtol=1e-8)
                _expect_params(passed, want_params[t], "params", rtol=1e-7, atol=1e-10,
                               mistakes={CLIP_AFTER: unclipped[t]})
            except CheckFailure as failure:
                raise CheckFailure(f"after step {t + 1}: {failure}") from None
        return f"train_step: correct for {steps} steps ({cell}, lr={lr}, max_norm={max_norm})"

    return blame_parts(student, lambda: _cases(run, cases, base), parts_of("train_step"), "train_step")


def _losses(got, steps):
    if not isinstance(got, (list, tuple)) or len(got) != steps:
        n = len(got) if isinstance(got, (list, tuple)) else f"a {kind_of(got)}"
        raise CheckFailure(f"train should return a list with one loss per batch ({steps}), got {n}")
    return np.array([expect_number(v, f"losses[{k}]") for k, v in enumerate(got)], dtype=np.float64)


def train(student, rng, cases=None, **defaults):
    """``train(params, batches, lr, max_norm)`` returns the list of per-step losses; after N steps on
    names the loss must be as low as rnnkit's with the same data and start."""
    base = {"steps": 60, "batch": 16, "hidden": 16, "lr": 0.02, "max_norm": 1.0, **defaults}
    fn = student_function(student, "train")
    cell = student_cell(student)

    def run(steps, batch, hidden, lr, max_norm):
        batches = make_batches(short_names(), batch, steps, seed=int(rng.integers(1 << 30)))
        params = init_lm_params(cell, hidden, seed=int(rng.integers(1 << 30)))
        want, _ = reference_training(cell, params, batches, lr, max_norm)
        got = _losses(call_student(fn, copy_params(params), [b.copy() for b in batches], lr, max_norm), steps)
        want = np.array(want)
        k = np.arange(1, steps + 1)
        expect_close(got[:3], want[:3], "losses[:3]", rtol=1e-6, mistakes={
            "the losses grow like a running total: each entry is the loss of its own step (start again from "
            "zero at every step)": np.cumsum(want)[:3],
            "the losses are running averages: each entry is the loss of its own step": (np.cumsum(want) / k)[:3],
        })
        last_got, last_want = got[-10:].mean(), want[-10:].mean()
        threshold = last_want + 0.02
        if not last_got <= threshold:
            raise CheckFailure(f"the loss does not go down enough: the mean of your last 10 losses is {last_got:.4f}, "
                               f"rnnkit reaches {last_want:.4f} with the same batches and start (threshold "
                               f"{threshold:.4f})")
        return (f"train: correct; loss {got[0]:.3f} -> {last_got:.3f} (mean of the last 10) in {steps} steps, "
                f"rnnkit {last_want:.3f}")

    return blame_parts(student, lambda: _cases(run, cases, base), parts_of("train"), "train")


# --------------------------------------------------------------------------------------------
# 6. sampling names
# --------------------------------------------------------------------------------------------

def sample_reference(cell, params, u, temperature=1.0, carry=False, feed=True, keep_eos=False, stop=True,
                     multiply=False):
    """Names sampled one after another by inverse CDF with the uniform numbers ``u (N, max_len)``."""
    part = _cell_part(params)
    W, b = params["head.weight"], params["head.bias"]
    H = W.shape[1]
    N, max_len = u.shape
    names, state = [], None
    for n in range(N):
        if state is None or not carry:
            zeros = np.zeros((1, H))
            state = (zeros, zeros.copy()) if cell == "lstm" else zeros
        token, name = BOS_ID, []
        for t in range(max_len):
            x = _one_hot(np.array([token if feed else BOS_ID]))
            state, _ = _reference_step(cell, x, state, part)
            h = state[0] if cell == "lstm" else state
            z = (h @ W.T + b)[0, EOS_ID:]
            z = z * temperature if multiply else z / temperature
            p = np.exp(z - z.max())
            p = p / p.sum()
            k = int(np.sum(np.cumsum(p) <= u[n, t]))
            token = EOS_ID + min(k, len(p) - 1)
            if token == EOS_ID and stop:
                if keep_eos:
                    name.append(EOS_ID)
                break
            name.append(token)
        names.append(name)
    return names


def _sample_mistakes(cell, params, u, temperature):
    out = {
        "the state was carried over from the previous name: every name starts again from a zero state and "
        "<BOS>": sample_reference(cell, params, u, temperature, carry=True),
        "every step read <BOS>: the character drawn at step t is the input of step t+1":
            sample_reference(cell, params, u, temperature, feed=False),
        "the names end with <EOS>; the end marker is not part of the name: leave it out":
            sample_reference(cell, params, u, temperature, keep_eos=True),
        "the names go on after <EOS>: a name is finished when <EOS> is drawn":
            sample_reference(cell, params, u, temperature, stop=False),
    }
    if temperature != 1.0:
        out["the logits were multiplied by the temperature; divide them by it: softmax(z / τ)"] = \
            sample_reference(cell, params, u, temperature, multiply=True)
    return out


def _sample_problem(rng, cell, n_names, max_len, hidden):
    params = random_lm_params(rng, cell, hidden, scale=1.0)
    params["head.weight"] *= 3.0
    params["head.bias"][EOS_ID] += 1.0  # names of a few letters rather than max_len
    return params, rng.uniform(size=(n_names, max_len))


def sample(student, rng, cases=None, **defaults):
    """``sample_names(params, u, temperature)`` returns one list of letter ids per row of ``u``."""
    base = {"n_names": 4, "max_len": 8, "hidden": 6, "temperature": 1.0, **defaults}
    fn = student_function(student, "sample_names")
    cell = student_cell(student)

    def run(n_names, max_len, hidden, temperature):
        params, u = _sample_problem(rng, cell, n_names, max_len, hidden)
        want = sample_reference(cell, params, u, temperature)
        got = token_lists(call_student(fn, copy_params(params), u.copy(), temperature), n_names, "sample_names",
                          unit="name")
        if got != want:
            for message, wrong in _sample_mistakes(cell, params, u, temperature).items():
                if got == wrong and wrong != want:
                    raise CheckFailure(f"sample_names is wrong: {message}")
            k = next(i for i in range(n_names) if got[i] != want[i])
            raise CheckFailure(f"sample_names is wrong for name {k}: yours {got[k]}, expected {want[k]} "
                               f"(temperature {temperature}, <EOS> is id {EOS_ID})")
        return f"sample_names: correct ({n_names} names, up to {max_len} steps, temperature {temperature})"

    return blame_parts(student, lambda: _cases(run, cases, base), parts_of("sample_names"), "sample_names")


# --------------------------------------------------------------------------------------------
# 7. the same code on torch tensors
# --------------------------------------------------------------------------------------------

MIXED = ("a numpy array met a torch tensor: arrays made with np (np.zeros, np.array, np.arange, ...) are numpy "
         "arrays whatever the inputs are; make them with xp, with the inputs' dtype and device: "
         "xp.zeros(shape, dtype=x.dtype, device=device_of(x))")


def _to_numpy(value, what, torch):
    """A tensor the student returned, as a numpy array; a numpy array is refused (it did not follow
    the inputs' backend); anything else is left for the comparison to explain."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        raise CheckFailure(f"on torch tensors: {what} is a numpy array although the inputs were torch tensors: "
                           "create arrays with xp (xp.zeros(..., dtype=x.dtype), xp.asarray) rather than np, so "
                           "that they follow the inputs' backend")
    return value


def _on_torch(fn, *args):
    try:
        return call_student(fn, *args)
    except CheckFailure as failure:
        message = str(failure)
        if NUMPY_ON_TENSOR not in message and "ndarray" in message and "Tensor" in message:
            message += f" ({MIXED})"
        raise CheckFailure(f"on torch tensors: {message}") from None


def _torch_lm_loss(student, rng, torch, cell, batch, max_letters, hidden):
    to_t = lambda a: torch.from_numpy(np.array(a, copy=True))  # noqa: E731
    params = random_lm_params(rng, cell, hidden)
    ids = random_batch(rng, batch, max_letters)
    want_loss, want = reference_loss(cell, ids, params)
    out = _on_torch(student_function(student, "lm_loss"), to_t(ids), {k: to_t(v) for k, v in params.items()})
    loss, grads = expect_tuple(out, 2, "lm_loss", "(loss, grads)")
    expect_close(expect_number(_to_numpy(loss, "the loss", torch), "the loss"), np.asarray(want_loss),
                 "lm_loss on torch: loss", rtol=1e-8)
    expect_grads_dict(grads, PARAM_NAMES, "lm_loss on torch: grads")
    for name in PARAM_NAMES:
        expect_close(_to_numpy(grads[name], f"grads[{name!r}]", torch), want[name],
                     f"lm_loss on torch: grads[{name!r}]", rtol=1e-6, atol=1e-10)


def _torch_train_steps(student, rng, torch, cell, batch, max_letters, hidden, steps):
    to_t = lambda a: torch.from_numpy(np.array(a, copy=True))  # noqa: E731
    fn = student_function(student, "train_step")
    params = random_lm_params(rng, cell, hidden)
    batches = [random_batch(rng, batch, max_letters) for _ in range(steps)]
    want_losses, want_params = reference_training(cell, params, batches, 0.05, 0.5)
    state, passed = {}, {k: to_t(v) for k, v in params.items()}
    for t, b in enumerate(batches):
        loss = _on_torch(fn, passed, state, to_t(b), 0.05, 0.5)
        loss = loss.item() if isinstance(loss, torch.Tensor) and loss.numel() == 1 else loss
        expect_close(expect_number(loss, "the loss"), np.asarray(want_losses[t]),
                     f"train_step on torch, step {t + 1}: the loss", rtol=1e-8)
        for name in PARAM_NAMES:
            expect_close(_to_numpy(passed.get(name), f"params[{name!r}]", torch), want_params[t][name],
                         f"train_step on torch, step {t + 1}: params[{name!r}]", rtol=1e-7, atol=1e-10)


def _torch_sample(student, rng, torch, cell, hidden, n_names, max_len):
    to_t = lambda a: torch.from_numpy(np.array(a, copy=True))  # noqa: E731
    params, u = _sample_problem(rng, cell, n_names, max_len, hidden)
    want = sample_reference(cell, params, u)
    got = _on_torch(student_function(student, "sample_names"), {k: to_t(v) for k, v in params.items()}, to_t(u), 1.0)
    got = token_lists(got, n_names, "sample_names on torch", unit="name")
    if got != want:
        raise CheckFailure(f"sample_names on torch tensors gives {got}, but {want} on numpy")


def _torch_backend(student, rng, batch=4, max_letters=5, hidden=6, steps=2, n_names=3, max_len=6):
    import torch

    cell = student_cell(student)
    student.configure(refuse_numpy_on_tensors=True)
    try:
        with _threads():
            _torch_lm_loss(student, rng, torch, cell, batch, max_letters, hidden)
            _torch_train_steps(student, rng, torch, cell, batch, max_letters, hidden, steps)
            _torch_sample(student, rng, torch, cell, hidden, n_names, max_len)
    finally:
        student.configure(refuse_numpy_on_tensors=False)
    return f"on torch tensors: lm_loss, {steps} train_steps, sample_names give the numpy results"


def torch_backend(student, rng, **params):
    """lm_loss, train_step and sample_names on torch float64 tensors give the numpy results."""
    return blame_parts(student, lambda: _torch_backend(student, rng, **params), parts_of("torch"),
                       "this check (on torch tensors)")


#: what each composite function is built from, innermost first: the first of them that fails its
#: own check is the one to fix (named without the chain of the parts in between)
USES = {
    "lm_loss": ("cell_step_forward", "cell_step_backward"),
    "train_step": ("cell_step_forward", "cell_step_backward", "clip_grad_norm", "adam_update", "lm_loss"),
    "train": ("cell_step_forward", "cell_step_backward", "clip_grad_norm", "adam_update", "lm_loss", "train_step"),
    "sample_names": ("cell_step_forward",),
    "torch": ("cell_step_forward", "cell_step_backward", "clip_grad_norm", "adam_update", "lm_loss", "train_step",
              "sample_names"),
}


def parts_of(name: str) -> list:
    """``[(function name, spec), ...]`` for blame_parts: the student's functions that ``name`` uses."""
    specs = {"cell_step_forward": step_forward, "cell_step_backward": step_backward, "clip_grad_norm": clip,
             "adam_update": adam, "lm_loss": lm_loss, "train_step": train_step, "sample_names": sample}
    return [(part, specs[part]) for part in USES[name]]
