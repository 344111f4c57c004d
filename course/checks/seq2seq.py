"""Checks for exercise 10, sequence to sequence: greedy generation that feeds its own output back,
teacher-forcing inputs, a cross-entropy that ignores padding, and the loss and gradients of a small
GRU encoder-decoder.

The expected values come from rnnkit: ``rnnkit.models.Seq2Seq`` (its ``params`` names are the ones the
exercise uses, ``src_embed.weight``, ``encoder.weight_ih_l0``, ..., ``head.bias``), its greedy
generation, ``shift_right`` and ``rnnkit.losses.cross_entropy`` with ``ignore_index``, all on fresh
random inputs. The ``mistakes`` come from the same computation written out step by step here with one
typical error built in (targets not shifted, decoder started from zeros, padding counted, no gradient
into the encoder, generation that does not feed its output back or does not stop at <EOS>).

``seq2seq_loss`` is built from the student's earlier functions (``encode``, ``teacher_forcing_inputs``,
``masked_cross_entropy``); when it fails, the first of those that fails its own check is named
(:func:`~course.checks.expect.blame_parts`).

Also used by the capstone (exercise 13): :func:`run_cases` and :func:`expect_number`.
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells import gru_step_forward as _gru_step
from rnnkit.losses import cross_entropy as _cross_entropy
from rnnkit.models import Seq2Seq as _Seq2Seq
from rnnkit.models import shift_right as _shift_right
from rnnkit.modules import GRU as _GRU
from rnnkit.sequence import sequence_backward as _seq_backward
from rnnkit.sequence import sequence_forward as _seq_forward
from rnnkit.text import BOS_ID, EOS_ID, PAD_ID

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_array, expect_close,
                     expect_grads_dict, expect_tuple, expect_unchanged, kind_of, student_function)

#: the notebook's imports: numpy, matplotlib and threadpoolctl; the earlier exercises' pieces (one GRU
#: layer and its BPTT, the special ids), the data and the optimizer of the ungraded training run, and
#: array_api_compat, which rnnkit.backend (under all of them) imports on first use. Not rnnkit.models
#: (its Seq2Seq is the answer) nor rnnkit.losses.
POLICY = Policy(packages=("numpy", "matplotlib", "threadpoolctl", "array_api_compat"),
                rnnkit=HELPERS + ("rnnkit.cells", "rnnkit.sequence", "rnnkit.text", "rnnkit.optim"))
SPECS = ("greedy", "teacher_forcing", "masked_cross_entropy", "encoder", "loss")

CELL_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
FIRST_SYMBOL = 4  # ids 0-3 are <PAD>, <UNK>, <BOS>, <EOS>


# --------------------------------------------------------------------------------------------
# helpers (run_cases and expect_number serve the capstone too)
# --------------------------------------------------------------------------------------------

def run_cases(run, cases, defaults: dict, context=None) -> str:
    """``run(**case)`` for each case (``defaults`` overridden by the case); one note for them all.
    ``context``: a context manager factory wrapped around the runs (e.g. one BLAS thread)."""
    cases = cases or [{}]
    if context is None:
        notes = [run(**{**defaults, **case}) for case in cases]
    else:
        with context():
            notes = [run(**{**defaults, **case}) for case in cases]
    return notes[0] if len(notes) == 1 else f"{len(notes)} cases correct: " + "; ".join(notes)


def expect_number(value, what: str) -> np.ndarray:
    """A loss (a float, a numpy number or an array of one entry) as a 0-d float64 array."""
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return np.asarray(float(value))
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return value.reshape(()).astype(np.float64)
    got = "None" if value is None else f"a {kind_of(value)}"
    raise CheckFailure(f"{what} should be a number (a float or a 0-d array), got {got}")


def random_params(rng, src_vocab, tgt_vocab, embed, hidden, scale=1.0):
    """Seq2Seq parameters (a GRU encoder and decoder, one layer each) under rnnkit's names."""
    E, H = embed, hidden
    params = {"src_embed.weight": rng.normal(0.0, 1.0, (src_vocab, E))}
    for part in ("encoder", "decoder"):
        if part == "decoder":
            params["embed.weight"] = rng.normal(0.0, 1.0, (tgt_vocab, E))
        params[f"{part}.weight_ih_l0"] = rng.normal(0.0, scale / np.sqrt(E), (3 * H, E))
        params[f"{part}.weight_hh_l0"] = rng.normal(0.0, scale / np.sqrt(H), (3 * H, H))
        params[f"{part}.bias_ih_l0"] = rng.normal(0.0, 0.3, 3 * H)
        params[f"{part}.bias_hh_l0"] = rng.normal(0.0, 0.3, 3 * H)
    params["head.weight"] = rng.normal(0.0, 1.5 / np.sqrt(H), (tgt_vocab, H))
    params["head.bias"] = rng.normal(0.0, 0.3, tgt_vocab)
    return params


def reference_model(params):
    """rnnkit's Seq2Seq holding ``params``."""
    V_src, E = params["src_embed.weight"].shape
    V_tgt, H = params["head.weight"].shape
    model = _Seq2Seq(V_src, V_tgt, E, _GRU(E, H), _GRU(E, H))
    for name, part in model.parts.items():
        for key in part.params:
            part.params[key] = np.array(params[f"{name}.{key}"], copy=True)
    return model


def cell_params(params, part):
    return {name: params[f"{part}.{name}_l0"] for name in CELL_NAMES}


def random_targets(rng, T, batch, vocab, lengths=None):
    """Time-major target ids (T, B): symbols, then <EOS>, then <PAD>; every row has length 1..T
    (the <EOS> included) and at least one row is full."""
    if lengths is None:
        lengths = rng.integers(1, T + 1, size=batch)
        lengths[rng.integers(batch)] = T
    ids = np.full((T, batch), PAD_ID, dtype=np.int64)
    for b, n in enumerate(lengths):
        ids[: n - 1, b] = rng.integers(FIRST_SYMBOL, vocab, size=n - 1)
        ids[n - 1, b] = EOS_ID
    return ids


def token_lists(got, n: int, what: str, unit: str = "sequence") -> list[list[int]]:
    """``got`` as a list of ``n`` lists of Python ints (one per ``unit``), or a CheckFailure."""
    if isinstance(got, np.ndarray):
        raise CheckFailure(f"{what} returned a numpy array; return a list of {n} lists of token ids (the "
                           f"generated {unit}s have different lengths)")
    if not isinstance(got, (list, tuple)):
        raise CheckFailure(f"{what} should return a list of {n} lists of token ids, got a {kind_of(got)}")
    if len(got) != n:
        raise CheckFailure(f"{what} returned {len(got)} lists, expected {n} (one per {unit})")
    out = []
    for k, seq in enumerate(got):
        if not isinstance(seq, (list, tuple, np.ndarray)):
            raise CheckFailure(f"{what}: entry {k} should be a list of token ids (ints), got a {kind_of(seq)}")
        try:
            out.append([int(t) for t in seq])
        except (TypeError, ValueError):
            raise CheckFailure(f"{what}: entry {k} should be a list of token ids (ints)") from None
    return out


# --------------------------------------------------------------------------------------------
# 1. greedy decoding
# --------------------------------------------------------------------------------------------

def greedy_reference(h0, params, max_len, feed="sample", stop="each", keep_eos=False):
    """Greedy decoding written out, with switches for the mistakes.

    ``feed``: "sample" (correct: the argmax is the next input) or "bos" (always <BOS>).
    ``stop``: "each" (correct: a row ends at its <EOS>, the loop when all have ended), "never" (the
    rows keep every token up to max_len), "first" (everything stops at the first <EOS> of any row).
    ``keep_eos``: the <EOS> is kept at the end of each list.
    """
    B = h0.shape[0]
    cell = cell_params(params, "decoder")
    tokens = np.full(B, BOS_ID, dtype=np.int64)
    h, out, done = h0, [[] for _ in range(B)], np.zeros(B, dtype=bool)
    for _ in range(max_len):
        x = params["embed.weight"][tokens if feed == "sample" else np.full(B, BOS_ID)]
        h, _ = _gru_step(x, h, cell)
        chosen = np.argmax(h @ params["head.weight"].T + params["head.bias"], axis=1)
        for b in range(B):
            if done[b]:
                continue
            if chosen[b] == EOS_ID and stop != "never":
                done[b] = True
                if keep_eos:
                    out[b].append(EOS_ID)
            else:
                out[b].append(int(chosen[b]))
        tokens = chosen
        if done.all() or (stop == "first" and done.any()):
            break
    return out


def _greedy_problem(rng, batch, vocab, embed, hidden, max_len, want_stop):
    """Random decoder parameters and h0 whose greedy outputs stop at different steps.

    ``want_stop``: "mixed" (some rows end with <EOS> before max_len, at different steps, and the
    outputs depend on what is fed back), "never" (no row produces <EOS>).
    """
    best = None
    for _attempt in range(400):
        params = random_params(rng, vocab, vocab, embed, hidden)
        h0 = rng.normal(0.0, 1.0, (batch, hidden))
        if want_stop == "never":
            params["head.bias"][EOS_ID] = -50.0
            return params, h0
        for boost in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
            trial = copy_params(params)
            trial["head.bias"][EOS_ID] += boost
            want = greedy_reference(h0, trial, max_len)
            lengths = [len(s) for s in want]
            ended = [n < max_len for n in lengths]
            if not any(ended):
                continue
            fed = greedy_reference(h0, trial, max_len, feed="bos")
            score = (len(set(lengths)) + sum(n > 0 for n in lengths) + (fed != want) * 3
                     + (any(ended) and (batch == 1 or not all(ended))) * 2)
            if best is None or score > best[0]:
                best = (score, trial, h0)
            if fed != want and len(set(lengths)) == min(batch, 3) and min(lengths) > 0:
                return trial, h0
    return best[1], best[2]


def _greedy_mistakes(h0, params, max_len):
    return {
        "every step read <BOS>: the token chosen at step t (the argmax of its logits) is the input "
        "of step t+1; feed it back": greedy_reference(h0, params, max_len, feed="bos"),
        "the lists end with <EOS>; like <BOS>, the end marker is not part of the generated "
        "sequence: leave it out": greedy_reference(h0, params, max_len, keep_eos=True),
        "the lists go on after <EOS>: a sequence is finished when it produces <EOS>; keep nothing "
        "from that step on": greedy_reference(h0, params, max_len, stop="never"),
        "every sequence stopped when the first one produced <EOS>; each sequence ends at its own "
        "<EOS>, and the loop ends when all have ended (or after max_len steps)":
            greedy_reference(h0, params, max_len, stop="first"),
    }


def greedy(student, rng, cases=None, **defaults):
    """``greedy_decode(h0, params, max_len)`` returns one list of generated ids per row of ``h0``,
    without <BOS> and <EOS>."""
    base = {"batch": 3, "vocab": 9, "embed": 4, "hidden": 5, "max_len": 8, "stop": "mixed", **defaults}
    fn = student_function(student, "greedy_decode")

    def run(batch, vocab, embed, hidden, max_len, stop):
        params, h0 = _greedy_problem(rng, batch, vocab, embed, hidden, max_len, stop)
        want = reference_model(params)._generate(h0[None], batch, max_len, 0.0, None)
        h0_passed = h0.copy()
        got = token_lists(call_student(fn, h0_passed, copy_params(params), max_len), batch, "greedy_decode")
        if got != want:
            for message, wrong in _greedy_mistakes(h0, params, max_len).items():
                if got == wrong and wrong != want:
                    raise CheckFailure(f"greedy_decode is wrong: {message}")
            if any(len(s) > max_len for s in got):
                raise CheckFailure(f"greedy_decode generated more than max_len={max_len} tokens for a sequence; "
                                   "stop after max_len steps")
            b = next(i for i in range(batch) if got[i] != want[i])
            raise CheckFailure(f"greedy_decode is wrong for sequence {b} of {batch}: yours {got[b]}, expected "
                               f"{want[b]} (max_len={max_len}, <EOS> is id {EOS_ID})")
        expect_unchanged({"h0": h0}, {"h0": h0_passed}, "greedy_decode")
        lengths = sorted(len(s) for s in want)
        return f"greedy_decode: correct (B={batch}, max_len={max_len}, generated lengths {lengths})"

    return run_cases(run, cases, base)


# --------------------------------------------------------------------------------------------
# 2. teacher forcing
# --------------------------------------------------------------------------------------------

NOT_SHIFTED = ("the inputs are the targets themselves, so at step t the decoder is shown the very token it "
               "must predict; shift right by one: <BOS> first, then targets[:-1]")


def teacher_forcing(student, rng, cases=None, **defaults):
    """``teacher_forcing_inputs(targets, bos_id)`` returns ``(T, B)``: <BOS>, then targets[:-1]."""
    base = {"T": 5, "batch": 3, "vocab": 9, **defaults}
    fn = student_function(student, "teacher_forcing_inputs")

    def run(T, batch, vocab):
        targets = random_targets(rng, T, batch, vocab)
        want = _shift_right(targets, BOS_ID)
        passed = targets.copy()
        got = call_student(fn, passed, BOS_ID)
        if isinstance(got, np.ndarray) and got.shape == (T - 1, batch):
            raise CheckFailure(f"the inputs have shape {got.shape}, expected {want.shape}: one step is missing. "
                               "There is one input per target: <BOS> first, then targets[:-1]")
        expect_array(got, "inputs", shape=want.shape, axes=("T", "B"), integer=True)
        expect_close(got, want, "inputs", mistakes={
            NOT_SHIFTED: targets,
            "the targets were shifted the wrong way (targets[1:]); the input at step t is the target of step "
            "t-1: <BOS> first, then targets[:-1]":
                np.concatenate([targets[1:], np.full((1, batch), PAD_ID)], axis=0),
            "<BOS> is at the end; it is the first input, before targets[:-1]":
                np.concatenate([targets[:-1], np.full((1, batch), BOS_ID)], axis=0),
        })
        expect_unchanged({"targets": targets}, {"targets": passed}, "teacher_forcing_inputs")
        return f"teacher_forcing_inputs: correct (T={T}, B={batch})"

    return run_cases(run, cases, base)


# --------------------------------------------------------------------------------------------
# 3. cross-entropy that ignores padding
# --------------------------------------------------------------------------------------------

PAD_COUNTED = ("the padding was counted: positions whose target is <PAD> add nothing to the loss and get a zero "
               "gradient")
OVERFLOW = "np.exp overflowed; subtract each row's maximum before exponentiating"


def masked_cross_entropy(student, rng, cases=None, **defaults):
    """``masked_cross_entropy(logits, targets, pad_id)`` returns ``(loss, dlogits)``, summed over the
    positions whose target is not <PAD>."""
    base = {"T": 5, "batch": 3, "vocab": 7, "scale": 2.0, **defaults}
    fn = student_function(student, "masked_cross_entropy")

    def run(T, batch, vocab, scale):
        targets = random_targets(rng, T, batch, vocab)
        logits = rng.normal(0.0, scale, (T, batch, vocab))
        want_loss, want_d = _cross_entropy(logits, targets, ignore_index=PAD_ID)
        all_loss, all_d = _cross_entropy(logits, targets)
        want_d, all_d = want_d["logits"], all_d["logits"]
        N = int((targets != PAD_ID).sum())
        passed = logits.copy()
        out = call_student(fn, passed, targets.copy(), PAD_ID)
        loss, dlogits = expect_tuple(out, 2, "masked_cross_entropy", "(loss, dlogits)")
        loss = expect_number(loss, "the loss")
        if not np.isfinite(loss):
            raise CheckFailure(f"the loss is {float(loss)} for logits up to |z| = {np.abs(logits).max():.3g}: "
                               + OVERFLOW)
        if isinstance(dlogits, np.ndarray) and dlogits.dtype.kind == "f" and not np.isfinite(dlogits).all():
            raise CheckFailure(f"dlogits contains NaN or inf for logits up to |z| = {np.abs(logits).max():.3g}: "
                               + OVERFLOW)
        scales = {1.0 / N: "the loss is averaged over the real positions; this exercise sums it"}
        if N != T * batch:
            scales[1.0 / (T * batch)] = ("the loss is averaged over all positions; this exercise sums it over "
                                         "the positions that are not padding")
        padded = N != T * batch
        expect_close(loss, np.asarray(want_loss), "loss", rtol=1e-8, scales=scales,
                     mistakes={PAD_COUNTED: all_loss} if padded else None)
        expect_close(dlogits, want_d, "dlogits", axes=("T", "B", "V"), rtol=1e-7, atol=1e-10, scales={
            -1.0: "its sign is flipped: the gradient of −log p_c with respect to the logits is p − onehot(c)",
            **scales}, mistakes={PAD_COUNTED: all_d} if padded else None)
        expect_unchanged({"logits": logits}, {"logits": passed}, "masked_cross_entropy")
        return f"masked_cross_entropy: correct (T={T}, B={batch}, V={vocab}, {T * batch - N} padded positions)"

    return run_cases(run, cases, base)


# --------------------------------------------------------------------------------------------
# 4. the encoder, and the loss of the whole model
# --------------------------------------------------------------------------------------------

def _problem(rng, S, T, batch, src_vocab, tgt_vocab, embed, hidden):
    params = random_params(rng, src_vocab, tgt_vocab, embed, hidden)
    src = rng.integers(FIRST_SYMBOL, src_vocab, size=(S, batch))
    targets = random_targets(rng, T, batch, tgt_vocab)
    return params, src, targets


def encoder(student, rng, cases=None, **defaults):
    """``encode(src, params)`` returns ``(h_enc (B, H), cache)``: the encoder's final state."""
    base = {"S": 6, "batch": 3, "src_vocab": 8, "embed": 4, "hidden": 5, **defaults}
    fn = student_function(student, "encode")

    def run(S, batch, src_vocab, embed, hidden):
        params, src, _ = _problem(rng, S, 2, batch, src_vocab, 7, embed, hidden)
        want = reference_model(params).encode(src)[0]
        out = call_student(fn, src.copy(), copy_params(params))
        h, _ = expect_tuple(out, 2, "encode", "(h_enc, cache)")
        hs, _, _ = _seq_forward("gru", params["src_embed.weight"][src], None, cell_params(params, "encoder"))
        mistakes = {"this is the encoder's state after its first step; the decoder needs the state after the "
                    "last source token": hs[0]} if S > 1 else {}
        if isinstance(h, np.ndarray) and h.shape == (S, batch, hidden) and S != batch:
            raise CheckFailure(f"h_enc has shape (S, B, H) = {h.shape}: return only the encoder's final "
                               f"state, shape (B, H) = {want.shape}")
        expect_close(h, want, "h_enc", axes=("B", "H"), mistakes=mistakes)
        return f"encode: correct (S={S}, B={batch}, H={hidden})"

    return run_cases(run, cases, base)


def seq2seq_reference(src, targets, params, shift=True, init="encoder", ignore_pad=True, encoder_grad=True):
    """Loss and gradients of the encoder-decoder, written out, with switches for the mistakes."""
    E_src, E_tgt = params["src_embed.weight"], params["embed.weight"]
    W, b = params["head.weight"], params["head.bias"]
    _, h_enc, enc_cache = _seq_forward("gru", E_src[src], None, cell_params(params, "encoder"))
    inputs = _shift_right(targets, BOS_ID) if shift else targets
    h0 = h_enc if init == "encoder" else np.zeros_like(h_enc)
    hs, _, dec_cache = _seq_forward("gru", E_tgt[inputs], h0, cell_params(params, "decoder"))
    logits = hs @ W.T + b
    loss, d_loss = _cross_entropy(logits, targets, ignore_index=PAD_ID if ignore_pad else None)
    dlogits = d_loss["logits"]
    V, H = W.shape
    grads = {"head.weight": dlogits.reshape(-1, V).T @ hs.reshape(-1, H), "head.bias": dlogits.reshape(-1, V).sum(0)}
    g = _seq_backward(dlogits @ W, None, dec_cache)
    d_in, dh0 = g["x"], g["h0"]
    for name in CELL_NAMES:
        grads[f"decoder.{name}_l0"] = g[name]
    d_embed = np.zeros_like(E_tgt)
    np.add.at(d_embed, inputs, d_in)
    grads["embed.weight"] = d_embed
    if init != "encoder" or not encoder_grad:
        dh0 = np.zeros_like(dh0)
    g = _seq_backward(None, dh0, enc_cache)
    d_src = g["x"]
    for name in CELL_NAMES:
        grads[f"encoder.{name}_l0"] = g[name]
    d_src_embed = np.zeros_like(E_src)
    np.add.at(d_src_embed, src, d_src)
    grads["src_embed.weight"] = d_src_embed
    return loss, grads


GRAD_ORDER = ("head.weight", "head.bias", "decoder.weight_ih_l0", "decoder.weight_hh_l0", "decoder.bias_ih_l0",
              "decoder.bias_hh_l0", "embed.weight", "encoder.weight_ih_l0", "encoder.weight_hh_l0",
              "encoder.bias_ih_l0", "encoder.bias_hh_l0", "src_embed.weight")
ENCODER_GRADS = tuple(name for name in GRAD_ORDER if name.startswith(("encoder.", "src_embed.")))
NO_ENCODER_GRADIENT = ("the encoder's gradients are all zero: the gradient of the decoder's initial state (dh0 "
                       "from the decoder's backward pass) is the gradient of the encoder's final state; pass it "
                       "into the encoder's backward pass")


def _loss_mistakes(src, targets, params):
    """The (loss, grads) of the typical mistakes, by message."""
    out = {
        "the decoder read the targets unshifted: at step t it was shown the token it must predict. Its "
        "inputs are <BOS> followed by targets[:-1] (teacher_forcing_inputs)":
            seq2seq_reference(src, targets, params, shift=False),
        "the decoder did not start from the encoder's final state: h_enc is the decoder's initial state, "
        "the only way the source reaches the decoder": seq2seq_reference(src, targets, params, init="zeros"),
    }
    if (targets == PAD_ID).any():
        out[PAD_COUNTED] = seq2seq_reference(src, targets, params, ignore_pad=False)
    return out


def _check_loss_case(fn, rng, S, T, batch, src_vocab, tgt_vocab, embed, hidden):
    params, src, targets = _problem(rng, S, T, batch, src_vocab, tgt_vocab, embed, hidden)
    model = reference_model(params)
    want_loss, d_loss = _cross_entropy(model(src, targets), targets, ignore_index=PAD_ID)
    model.backward(d_loss["logits"])
    want = dict(model.grads)
    mistakes = _loss_mistakes(src, targets, params)

    passed = copy_params(params)
    out = call_student(fn, src.copy(), targets.copy(), passed)
    loss, grads = expect_tuple(out, 2, "seq2seq_loss", "(loss, grads)")
    N = int((targets != PAD_ID).sum())
    expect_close(expect_number(loss, "the loss"), np.asarray(want_loss), "loss", rtol=1e-8,
                 scales={1.0 / N: "the loss is averaged; this exercise sums it over the real target positions"},
                 mistakes={msg: v[0] for msg, v in mistakes.items()})
    expect_grads_dict(grads, GRAD_ORDER, "grads")
    if all(isinstance(grads[n], np.ndarray) and not np.any(grads[n]) for n in ENCODER_GRADS):
        raise CheckFailure(NO_ENCODER_GRADIENT)
    for name in GRAD_ORDER:
        expect_close(grads[name], want[name], f"grads[{name!r}]", rtol=1e-6, atol=1e-9,
                     mistakes={msg: v[1][name] for msg, v in mistakes.items()})
    expect_unchanged({"params": params}, {"params": passed}, "seq2seq_loss")
    return f"seq2seq_loss: correct (S={S}, T={T}, B={batch}, H={hidden}, {T * batch - N} padded targets)"


def loss(student, rng, cases=None, **defaults):
    """``seq2seq_loss(src, targets, params)`` returns ``(loss, grads)``: the summed cross-entropy of
    the teacher-forced decoder (padding ignored) and the gradient of every parameter."""
    base = {"S": 5, "T": 4, "batch": 3, "src_vocab": 8, "tgt_vocab": 7, "embed": 4, "hidden": 5, **defaults}
    fn = student_function(student, "seq2seq_loss")
    parts = [("teacher_forcing_inputs", teacher_forcing), ("masked_cross_entropy", masked_cross_entropy),
             ("encode", encoder)]
    return blame_parts(student, lambda: run_cases(lambda **case: _check_loss_case(fn, rng, **case), cases, base),
                       parts, "seq2seq_loss")
