"""Checks for exercise 11, the capstone: a character-level language model of first names trained end
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

On torch the checks make numpy refuse tensors (``Tensor.__array__`` raises), as happens on a GPU: a
numpy function called on a tensor (``np.tanh(h)``) then fails instead of silently working on the CPU.
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells import gru_step_backward as _gru_step_backward
from rnnkit.cells import gru_step_forward as _gru_step_forward
from rnnkit.cells import lstm_step_backward as _lstm_step_backward
from rnnkit.cells import lstm_step_forward as _lstm_step_forward
from rnnkit.checks.core import CheckFailure, call_student, expect_array, expect_close, student_function
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

#: the special ids; array_api_compat gives the namespace that makes one code path serve numpy and torch;
#: rnnkit.backend's to_backend lets the notebook make torch tensors without importing torch (refused)
ALLOWED = ("rnnkit.text", "rnnkit.backend", "array_api_compat")

LETTERS = "abcdefghijklmnopqrstuvwxyz"
VOCAB = 4 + len(LETTERS)  # <PAD>, <UNK>, <BOS>, <EOS>, a ... z
CELLS = {"lstm": 4, "gru": 3}
CELL_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
PARAM_NAMES = tuple(f"rnn.{n}_l0" for n in CELL_NAMES) + ("head.weight", "head.bias")

# pristine references (student code runs later in the same process)
_isinstance = isinstance
_tuple = tuple
_list = list
_dict = dict
_float = float
_int = int
_ndarray = np.ndarray


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _threads(n=1):
    """One BLAS thread: the matrices are tiny and the grader runs many checks side by side."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(n)


def student_cell(ns):
    """The cell the student chose with ``CELL = "lstm"`` or ``"gru"`` (LSTM when not set)."""
    cell = ns.get("CELL", "lstm")
    if cell not in CELLS:
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
    return {k: np.array(v, copy=True) for k, v in model.params.items()}


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


def _copy(params):
    return {k: np.array(v, copy=True) for k, v in params.items()}


def _one_hot(ids, vocab=VOCAB):
    return (ids[..., None] == np.arange(vocab)).astype(np.float64)


def _cell_part(params):
    return {n: params[f"rnn.{n}_l0"] for n in CELL_NAMES}


def _expect_tuple(out, n, what, names):
    if not _isinstance(out, _tuple) or len(out) != n:
        got = f"a tuple of {len(out)} values" if _isinstance(out, _tuple) else type(out).__name__
        raise CheckFailure(f"{what} should return a tuple {names}, got {got}")
    return out


def _number(value, what):
    if _isinstance(value, (float, int, np.floating, np.integer)) and not _isinstance(value, bool):
        return np.asarray(_float(value))
    if _isinstance(value, _ndarray) and value.size == 1:
        return value.reshape(()).astype(np.float64)
    raise CheckFailure(f"{what} should be a number (a float or a 0-d array), got {type(value).__name__}")


def _expect_params(got, want, what, mistakes=None, rtol=1e-7, atol=1e-10):
    if not _isinstance(got, _dict):
        raise CheckFailure(f"{what} should be a dict named like the parameters, got {type(got).__name__}")
    for name in want:
        if name not in got:
            raise CheckFailure(f"{what} has no entry {name!r}: keep every parameter under its name")
        expect_close(got[name], want[name], f"{what}[{name!r}]", rtol=rtol, atol=atol,
                     mistakes={msg: v[name] for msg, v in (mistakes or {}).items()})


def _cases(run, cases, defaults):
    with _threads():
        notes = [run(**{**defaults, **case}) for case in cases]
    return notes[0] if len(notes) == 1 else f"{len(notes)} cases correct: " + "; ".join(notes)


def _first_failing_part(ns, parts):
    """``(name, message)`` of the first earlier function that fails its own check, or None."""
    for name, spec in parts:
        if name not in ns:
            continue
        try:
            spec(ns, np.random.default_rng(2024))
        except CheckFailure as failure:
            return name, str(failure)
    return None


def _with_parts(ns, run, parts, what):
    try:
        return run()
    except CheckFailure as failure:
        broken = _first_failing_part(ns, parts)
        if broken is None:
            raise
        name, message = broken
        raise CheckFailure(f"{failure}. {what} uses your {name}, which does not pass its own check yet; fix it "
                           f"first: {message}") from None


# --------------------------------------------------------------------------------------------
# 1. the cell step, forward and backward
# --------------------------------------------------------------------------------------------

def _reference_step(cell, x, state, params):
    if cell == "lstm":
        return _lstm_step_forward(x, state, params)
    return _gru_step_forward(x, state, params)


def _step_problem(rng, cell, batch, input_size, hidden):
    params = random_cell_params(rng, cell, input_size, hidden)
    x = rng.normal(size=(batch, input_size))
    h = rng.normal(0.0, 0.8, (batch, hidden))
    state = (h, rng.normal(0.0, 0.8, (batch, hidden))) if cell == "lstm" else h
    return params, x, state


def _check_step_output(cell, out, want, what):
    new_state, _ = _expect_tuple(out, 2, what, "(state, cache)")
    if cell == "lstm":
        if not _isinstance(new_state, (_tuple, _list)) or len(new_state) != 2:
            raise CheckFailure(f"{what} should return the LSTM state as a pair (h, c), got "
                               f"{type(new_state).__name__}")
        expect_close(new_state[0], want[0], "h", axes=("B", "H"))
        expect_close(new_state[1], want[1], "c", axes=("B", "H"))
    else:
        expect_close(new_state, want, "h", axes=("B", "H"))


def step_forward(ns, rng, cases=None, **defaults):
    """``cell_step_forward(x, state, params)`` returns ``(state, cache)`` like rnnkit's step of the
    chosen cell (LSTM: state = (h, c); GRU: state = h)."""
    base = {"batch": 3, "input_size": 4, "hidden": 5, **defaults}
    fn = student_function(ns, "cell_step_forward")
    cell = student_cell(ns)

    def run(batch, input_size, hidden):
        params, x, state = _step_problem(rng, cell, batch, input_size, hidden)
        want, _ = _reference_step(cell, x, state, params)
        passed = tuple(s.copy() for s in state) if cell == "lstm" else state.copy()
        out = call_student(fn, x.copy(), passed, _copy(params), what="cell_step_forward")
        _check_step_output(cell, out, want, "cell_step_forward")
        return f"cell_step_forward: correct ({cell}, B={batch}, I={input_size}, H={hidden})"

    return _cases(run, cases or [{}], base)


def step_backward(ns, rng, cases=None, **defaults):
    """``cell_step_backward(dstate, cache)`` returns a dict of gradients like rnnkit's (keys 'x',
    'h_prev', ['c_prev'], and the parameter names)."""
    base = {"batch": 3, "input_size": 4, "hidden": 5, **defaults}
    fwd = student_function(ns, "cell_step_forward")
    fn = student_function(ns, "cell_step_backward")
    cell = student_cell(ns)

    def run(batch, input_size, hidden):
        params, x, state = _step_problem(rng, cell, batch, input_size, hidden)
        want_state, cache = _reference_step(cell, x, state, params)
        try:
            out = call_student(fwd, x.copy(), state, _copy(params), what="cell_step_forward")
            _check_step_output(cell, out, want_state, "cell_step_forward")
        except CheckFailure as failure:
            raise CheckFailure("cell_step_backward starts from the cache of cell_step_forward, which does not pass "
                               f"its check yet: {failure}") from None
        dh = rng.normal(size=(batch, hidden))
        if cell == "lstm":
            dstate = (dh, rng.normal(size=(batch, hidden)))
            want = _lstm_step_backward(dstate, cache)
            keys = ("x", "h_prev", "c_prev")
        else:
            dstate = dh
            want = _gru_step_backward(dstate, cache)
            keys = ("x", "h_prev")
        got = call_student(fn, dstate, out[1], what="cell_step_backward")
        if not _isinstance(got, _dict):
            raise CheckFailure(f"cell_step_backward should return a dict of gradients, got {type(got).__name__}")
        for key in keys + CELL_NAMES:
            if key not in got:
                raise CheckFailure(f"the gradients have no entry {key!r}: return the keys {', '.join(keys + CELL_NAMES)}")
            expect_close(got[key], want[key], f"grads[{key!r}]", rtol=1e-7, atol=1e-10)
        return f"cell_step_backward: correct ({cell}, B={batch}, I={input_size}, H={hidden})"

    return _cases(run, cases or [{}], base)


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
    loss, dlogits = _cross_entropy(logits, ids[1:], ignore_index=PAD_ID, reduction="mean")
    model.backward(dlogits)
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
    loss, dlogits = _cross_entropy(logits, targets, ignore_index=PAD_ID if ignore_pad else None,
                                   reduction="mean" if mean else "sum")
    H = W.shape[1]
    grads = {"head.weight": dlogits.reshape(-1, VOCAB).T @ hs.reshape(-1, H),
             "head.bias": dlogits.reshape(-1, VOCAB).sum(0)}
    dhs = dlogits @ W
    if carry:
        _, _, g = _seq_backward(dhs, None, cache, truncate=None if through_time else 1)
    else:
        _, _, g = _seq_backward(dhs.reshape(1, T * B, H), None, cache)
    for n in CELL_NAMES:
        grads[f"rnn.{n}_l0"] = g[n]
    return float(loss), grads


def _lm_variants(cell, ids):
    return {
        "the targets are the inputs themselves: the model must predict the NEXT character, targets = ids[1:] "
        "while the inputs are ids[:-1]": {"shift": False},
        "the padding was counted: positions whose target is <PAD> add nothing to the loss (nor to n)":
            {"ignore_pad": False},
        "the hidden state is not carried from step to step: step t starts from the state of step t-1, not "
        "from zeros": {"carry": False},
        "no gradient flows back through time: at step t, the state's gradient is the head's dh_t PLUS the "
        "gradient that came back from step t+1 (dh_prev, and dc_prev for the LSTM)": {"through_time": False},
    }


def lm_loss(ns, rng, cases=None, **defaults):
    """``lm_loss(ids, params)`` returns ``(loss, grads)``: the mean cross-entropy per real target
    character and the gradient of every parameter."""
    base = {"batch": 4, "max_letters": 5, "hidden": 6, **defaults}
    fn = student_function(ns, "lm_loss")
    cell = student_cell(ns)

    def run(batch, max_letters, hidden):
        params = random_lm_params(rng, cell, hidden)
        ids = random_batch(rng, batch, max_letters)
        want_loss, want = reference_loss(cell, ids, params)
        variants = {msg: lm_reference(cell, ids, params, **kw) for msg, kw in _lm_variants(cell, ids).items()}
        out = call_student(fn, ids.copy(), _copy(params), what="lm_loss")
        loss, grads = _expect_tuple(out, 2, "lm_loss", "(loss, grads)")
        n = int((ids[1:] != PAD_ID).sum())
        expect_close(_number(loss, "loss"), np.asarray(want_loss), "loss", rtol=1e-8, scales={
            float(n): "the loss is summed; this model reports the mean over the real target characters "
                      "(divide by their number n)"},
            mistakes={msg: v[0] for msg, v in variants.items()})
        grad_scales = {float(n): "the gradient is n times too large: the loss is a mean, so dlogits is divided by n"}
        if not _isinstance(grads, _dict):
            raise CheckFailure(f"grads should be a dict named like params, got {type(grads).__name__}")
        for name in ("head.weight", "head.bias") + PARAM_NAMES[:4]:
            if name not in grads:
                raise CheckFailure(f"grads has no entry {name!r}: return a gradient for every parameter, under its "
                                   "name")
            expect_close(grads[name], want[name], f"grads[{name!r}]", rtol=1e-6, atol=1e-10, scales=grad_scales,
                         mistakes={msg: v[1][name] for msg, v in variants.items()})
        return f"lm_loss: correct ({cell}, B={batch}, up to {max_letters} letters, H={hidden})"

    return _with_parts(ns, lambda: _cases(run, cases or [{}], base),
                       [("cell_step_forward", step_forward), ("cell_step_backward", step_backward)], "lm_loss")


# --------------------------------------------------------------------------------------------
# 3. clipping by the global norm
# --------------------------------------------------------------------------------------------

def clip(ns, rng, cases=None, **defaults):
    """``clip_grad_norm(grads, max_norm)`` returns ``(clipped, norm)``: a new dict scaled so that the
    global norm is at most max_norm, and the norm before clipping."""
    base = {"arrays": 3, "active": True, **defaults}
    fn = student_function(ns, "clip_grad_norm")

    def run(arrays, active):
        shapes = [tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(1, 3))) for _ in range(arrays)]
        grads = {f"p{k}": rng.normal(size=s) for k, s in enumerate(shapes)}
        norm = float(np.sqrt(sum((g * g).sum() for g in grads.values())))
        max_norm = norm * (rng.uniform(0.2, 0.6) if active else rng.uniform(1.5, 3.0))
        want = _copy(grads)
        want_norm = float(_clip_grad_norm(want, max_norm))
        passed = _copy(grads)
        out = call_student(fn, passed, max_norm, what="clip_grad_norm")
        clipped, got_norm = _expect_tuple(out, 2, "clip_grad_norm", "(clipped, norm)")
        expect_close(_number(got_norm, "norm"), np.asarray(want_norm), "norm", rtol=1e-9, mistakes={
            "the norm is the square of what it should be: take the square root of the sum of squares":
                want_norm ** 2})
        per_array = {k: g * min(1.0, max_norm / (np.sqrt((g * g).sum()) + 1e-6)) for k, g in grads.items()}
        always = {k: g * max_norm / (want_norm + 1e-6) for k, g in grads.items()}
        mistakes = {}
        if len(grads) > 1:
            mistakes["each array was clipped on its own: the norm is global, one number for all gradients "
                     "together, and every array is scaled by the same factor"] = per_array
        if not active:
            mistakes["the gradients were scaled although their norm was already below max_norm: the factor is "
                     "min(1, max_norm / norm)"] = always
        _expect_params(clipped, want, "clipped", mistakes=mistakes, rtol=1e-9, atol=1e-12)
        state = "clipped" if active else "left alone"
        return f"clip_grad_norm: correct ({len(grads)} arrays, norm {want_norm:.3g} vs max_norm {max_norm:.3g}: {state})"

    return _cases(run, cases or [{}], base)


# --------------------------------------------------------------------------------------------
# 4. Adam
# --------------------------------------------------------------------------------------------

def adam_reference(params, grads_list, lr, betas=(0.9, 0.999), eps=1e-8, correct=True, sign=1.0, square=True):
    """Params after each Adam step, written out with switches for the mistakes."""
    beta1, beta2 = betas
    p = _copy(params)
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
        out.append(_copy(p))
    return out


def adam(ns, rng, cases=None, **defaults):
    """``adam_update(params, grads, state, lr, betas, eps)`` updates ``params`` (and ``state``) in
    place; checked over several steps against rnnkit's Adam."""
    base = {"steps": 3, "lr": 0.01, "betas": (0.9, 0.999), **defaults}
    fn = student_function(ns, "adam_update")

    def run(steps, lr, betas):
        betas = tuple(float(b) for b in betas)
        params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(4,)), "c": rng.normal(size=(2, 2))}
        grads_list = [{k: rng.normal(0.0, 0.5, v.shape) * rng.uniform(0.1, 3.0) for k, v in params.items()}
                      for _ in range(steps)]
        want_params = _copy(params)
        opt = _Adam(want_params, lr=lr, betas=betas)
        mistakes_runs = {
            "the bias correction is missing: m̂ = m / (1 − β1^t) and v̂ = v / (1 − β2^t), with t = 1 at the first "
            "step": adam_reference(params, grads_list, lr, betas, correct=False),
            "the parameters moved up the gradient: the update subtracts, θ ← θ − η m̂ / (√v̂ + ε)":
                adam_reference(params, grads_list, lr, betas, sign=-1.0),
            "v must average the squared gradients: v ← β2 v + (1 − β2) g²":
                adam_reference(params, grads_list, lr, betas, square=False),
        }
        state, passed = {}, _copy(params)
        for t, grads in enumerate(grads_list):
            opt.step({k: g.copy() for k, g in grads.items()})
            call_student(fn, passed, {k: g.copy() for k, g in grads.items()}, state, lr, betas=betas,
                         what="adam_update")
            try:
                _expect_params(passed, want_params, "params", rtol=1e-9, atol=1e-12,
                               mistakes={msg: run_[t] for msg, run_ in mistakes_runs.items()})
            except CheckFailure as failure:
                raise CheckFailure(f"after step {t + 1}: {failure}") from None
        return f"adam_update: correct over {steps} steps (lr={lr}, betas={betas})"

    return _cases(run, cases or [{}], base)


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
        loss, dlogits = _cross_entropy(logits, ids[1:], ignore_index=PAD_ID, reduction="mean")
        model.backward(dlogits)
        grads = model.grads
        if clip:
            _clip_grad_norm(grads, max_norm)
        opt.step(grads)
        losses.append(float(loss))
        snapshots.append(_copy(model.params))
    return losses, snapshots


CLIP_AFTER = ("the update used gradients that were not clipped: clip first, then update with the clipped "
              "gradients (clipping after the update changes nothing)")


def train_step(ns, rng, cases=None, **defaults):
    """``train_step(params, state, ids, lr, max_norm)`` returns the loss before the update and updates
    ``params`` in place: lm_loss, clip_grad_norm, adam_update."""
    base = {"steps": 3, "batch": 4, "max_letters": 5, "hidden": 6, "lr": 0.05, "max_norm": 0.3, **defaults}
    fn = student_function(ns, "train_step")
    cell = student_cell(ns)

    def run(steps, batch, max_letters, hidden, lr, max_norm):
        params = random_lm_params(rng, cell, hidden)
        batches = [random_batch(rng, batch, max_letters) for _ in range(steps)]
        want_losses, want_params = reference_training(cell, params, batches, lr, max_norm)
        _, unclipped = reference_training(cell, params, batches, lr, max_norm, clip=False)
        state, passed = {}, _copy(params)
        for t, ids in enumerate(batches):
            loss = call_student(fn, passed, state, ids.copy(), lr, max_norm, what="train_step")
            try:
                expect_close(_number(loss, "the loss train_step returned"), np.asarray(want_losses[t]),
                             "the loss train_step returned", rtol=1e-8)
                _expect_params(passed, want_params[t], "params", rtol=1e-7, atol=1e-10,
                               mistakes={CLIP_AFTER: unclipped[t]})
            except CheckFailure as failure:
                raise CheckFailure(f"after step {t + 1}: {failure}") from None
        return f"train_step: correct for {steps} steps ({cell}, lr={lr}, max_norm={max_norm})"

    return _with_parts(ns, lambda: _cases(run, cases or [{}], base),
                       [("lm_loss", lm_loss), ("clip_grad_norm", clip), ("adam_update", adam)], "train_step")


def train(ns, rng, cases=None, **defaults):
    """``train(params, batches, lr, max_norm)`` returns the list of per-step losses; after N steps on
    names the loss must be as low as rnnkit's with the same data and start."""
    base = {"steps": 60, "batch": 16, "hidden": 16, "lr": 0.02, "max_norm": 1.0, **defaults}
    fn = student_function(ns, "train")
    cell = student_cell(ns)

    def run(steps, batch, hidden, lr, max_norm):
        names = short_names()
        batches = make_batches(names, batch, steps, seed=int(rng.integers(1 << 30)))
        params = init_lm_params(cell, hidden, seed=int(rng.integers(1 << 30)))
        want, _ = reference_training(cell, params, batches, lr, max_norm)
        passed = _copy(params)
        got = call_student(fn, passed, [b.copy() for b in batches], lr, max_norm, what="train")
        if not _isinstance(got, (_list, _tuple)) or len(got) != steps:
            n = len(got) if _isinstance(got, (_list, _tuple)) else type(got).__name__
            raise CheckFailure(f"train should return a list with one loss per batch ({steps}), got {n}")
        try:
            got = np.array([_float(v) for v in got])
        except (TypeError, ValueError):
            raise CheckFailure("train should return a list of numbers (one loss per step)") from None
        want = np.array(want)
        k = np.arange(1, steps + 1)
        expect_close(got[:3], want[:3], "losses[:3]", rtol=1e-6, mistakes={
            "the losses grow like a running total: each entry is the loss of its own step (start again from "
            "zero at every step)": np.cumsum(want)[:3],
            "the losses are running averages: each entry is the loss of its own step":
                (np.cumsum(want) / k)[:3],
        })
        last_got, last_want = got[-10:].mean(), want[-10:].mean()
        threshold = last_want + 0.02
        if not last_got <= threshold:
            raise CheckFailure(f"the loss does not go down enough: the mean of your last 10 losses is {last_got:.4f}, "
                               f"rnnkit reaches {last_want:.4f} with the same batches and start (threshold "
                               f"{threshold:.4f})")
        return (f"train: correct; loss {got[0]:.3f} -> {last_got:.3f} (mean of the last 10) in {steps} steps, "
                f"rnnkit {last_want:.3f}")

    return _with_parts(ns, lambda: _cases(run, cases or [{}], base), [("train_step", train_step)], "train")


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


def _lists(got, n, what):
    if not _isinstance(got, (_list, _tuple)) or len(got) != n:
        count = len(got) if _isinstance(got, (_list, _tuple)) else type(got).__name__
        raise CheckFailure(f"{what} should return a list of {n} lists of token ids (one per name), got {count}")
    try:
        return [[_int(t) for t in name] for name in got]
    except (TypeError, ValueError):
        raise CheckFailure(f"{what} should return a list of lists of token ids (ints)") from None


def _sample_variants(cell, params, u, temperature):
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


def sample(ns, rng, cases=None, **defaults):
    """``sample_names(params, u, temperature)`` returns one list of letter ids per row of ``u``."""
    base = {"n_names": 4, "max_len": 8, "hidden": 6, "temperature": 1.0, **defaults}
    fn = student_function(ns, "sample_names")
    cell = student_cell(ns)

    def run(n_names, max_len, hidden, temperature):
        params, u = _sample_problem(rng, cell, n_names, max_len, hidden)
        want = sample_reference(cell, params, u, temperature)
        got = call_student(fn, _copy(params), u.copy(), temperature, what="sample_names")
        got = _lists(got, n_names, "sample_names")
        if got != want:
            for message, wrong in _sample_variants(cell, params, u, temperature).items():
                if got == wrong and wrong != want:
                    raise CheckFailure(f"sample_names is wrong: {message}")
            k = next(i for i in range(n_names) if got[i] != want[i])
            raise CheckFailure(f"sample_names is wrong for name {k}: yours {got[k]}, expected {want[k]} "
                               f"(temperature {temperature}, <EOS> is id {EOS_ID})")
        return f"sample_names: correct ({n_names} names, up to {max_len} steps, temperature {temperature})"

    return _with_parts(ns, lambda: _cases(run, cases or [{}], base), [("cell_step_forward", step_forward)],
                       "sample_names")


# --------------------------------------------------------------------------------------------
# 7. the same code on torch tensors
# --------------------------------------------------------------------------------------------

NUMPY_ON_TENSOR = ("a numpy function was called on a torch tensor (np.tanh, np.exp, np.concatenate, ...); on a "
                   "GPU that fails, so the checks refuse it here too. Use the functions of "
                   "xp = array_namespace(...) instead: xp.tanh, xp.exp, xp.concat, ...")


def _torch():
    import torch

    def refuse(self, *args, **kwargs):
        raise TypeError(NUMPY_ON_TENSOR)

    torch.Tensor.__array__ = refuse  # numpy must not read tensors, as on a GPU (this process only)
    return torch


def _to_numpy(value, what, torch):
    if _isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if _isinstance(value, _ndarray):
        raise CheckFailure(f"{what} is a numpy array although the inputs were torch tensors: create arrays with "
                           "xp (xp.zeros(..., dtype=x.dtype), xp.asarray) rather than np, so that they follow the "
                           "inputs' backend")
    return value


MIXED = ("a numpy array met a torch tensor: arrays made with np (np.zeros, np.array, np.arange, ...) are numpy "
         "arrays whatever the inputs are; make them with xp, with the inputs' dtype and device: "
         "xp.zeros(shape, dtype=x.dtype, device=device_of(x))")


def _on_torch(fn, *args, what, **kwargs):
    try:
        return call_student(fn, *args, what=what, **kwargs)
    except CheckFailure as failure:
        message = str(failure)
        if NUMPY_ON_TENSOR not in message and "ndarray" in message and "Tensor" in message:
            message += f" ({MIXED})"
        raise CheckFailure(f"on torch tensors: {message}") from None


def torch_backend(ns, rng, **params):
    """lm_loss, train_step and sample_names on torch float64 tensors give the numpy results."""
    return _with_parts(ns, lambda: _torch_backend(ns, rng, **params),
                       [("lm_loss", lm_loss), ("train_step", train_step), ("sample_names", sample)],
                       "this check (on torch tensors)")


def _torch_backend(ns, rng, batch=4, max_letters=5, hidden=6, steps=2, n_names=3, max_len=6):
    torch = _torch()
    cell = student_cell(ns)
    to_t = lambda a: torch.from_numpy(np.array(a, copy=True))  # noqa: E731
    notes = []
    with _threads():
        torch.set_num_threads(1)
        # the loss and its gradients
        params = random_lm_params(rng, cell, hidden)
        ids = random_batch(rng, batch, max_letters)
        want_loss, want = reference_loss(cell, ids, params)
        fn = student_function(ns, "lm_loss")
        out = _on_torch(fn, to_t(ids), {k: to_t(v) for k, v in params.items()}, what="lm_loss")
        loss, grads = _expect_tuple(out, 2, "lm_loss", "(loss, grads)")
        expect_close(_number(_to_numpy(loss, "the loss", torch), "loss"), np.asarray(want_loss),
                     "lm_loss on torch: loss", rtol=1e-8)
        if not _isinstance(grads, _dict):
            raise CheckFailure(f"on torch tensors: grads should be a dict, got {type(grads).__name__}")
        for name in PARAM_NAMES:
            if name not in grads:
                raise CheckFailure(f"on torch tensors: grads has no entry {name!r}")
            expect_close(_to_numpy(grads[name], f"grads[{name!r}]", torch), want[name],
                         f"lm_loss on torch: grads[{name!r}]", rtol=1e-6, atol=1e-10)
        notes.append("lm_loss")

        # training steps
        fn = student_function(ns, "train_step")
        params = random_lm_params(rng, cell, hidden)
        batches = [random_batch(rng, batch, max_letters) for _ in range(steps)]
        want_losses, want_params = reference_training(cell, params, batches, 0.05, 0.5)
        state, passed = {}, {k: to_t(v) for k, v in params.items()}
        for t, b in enumerate(batches):
            loss = _on_torch(fn, passed, state, to_t(b), 0.05, 0.5, what="train_step")
            loss = loss.item() if _isinstance(loss, torch.Tensor) else loss
            expect_close(_number(loss, "loss"), np.asarray(want_losses[t]), f"train_step on torch, step {t + 1}: "
                         "the loss", rtol=1e-8)
            for name in PARAM_NAMES:
                expect_close(_to_numpy(passed[name], f"params[{name!r}]", torch), want_params[t][name],
                             f"train_step on torch, step {t + 1}: params[{name!r}]", rtol=1e-7, atol=1e-10)
        notes.append(f"{steps} train_steps")

        # sampling
        fn = student_function(ns, "sample_names")
        params, u = _sample_problem(rng, cell, n_names, max_len, hidden)
        want_names = sample_reference(cell, params, u)
        got = _on_torch(fn, {k: to_t(v) for k, v in params.items()}, to_t(u), 1.0, what="sample_names")
        got = _lists(got, n_names, "sample_names on torch")
        if got != want_names:
            raise CheckFailure(f"sample_names on torch tensors gives {got}, but {want_names} on numpy")
        notes.append("sample_names")
    return "on torch tensors: " + ", ".join(notes) + " give the numpy results"
