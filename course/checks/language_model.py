"""Checks for exercise 5, a word-level language model: the vocabulary with <UNK> and min_count, encoding,
the summed next-word cross-entropy with padding ignored, one training step, and sampling with a temperature.

Expected values come from rnnkit (``text.Tokenizer``, ``losses.cross_entropy``, ``embedding``, ``heads``,
the ``RNN`` module, ``losses.softmax``). The recurrent layer of the training step is rnnkit's ``RNN``: the
students wrote it in exercises 2 and 3, and the point here is the loss and the loop, so the sandbox holds
``rnnkit.modules`` (and what it imports: the cells and the recurrence), but not ``rnnkit.text``,
``rnnkit.losses``, ``rnnkit.embedding`` or ``rnnkit.heads``. The training step's RNN is made on the
student's side (``student.new("rnnkit.RNN", ...)``) and read back with ``RemoteObject.get("params")``.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from rnnkit.embedding import embedding_backward, embedding_forward
from rnnkit.heads import linear_backward, linear_forward
from rnnkit.losses import cross_entropy as _rnnkit_cross_entropy
from rnnkit.losses import softmax as _rnnkit_softmax
from rnnkit.modules import RNN
from rnnkit.text import SPECIALS, Tokenizer

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, expect_array, expect_close, expect_tuple, kind_of,
                     student_function)

#: what the student's notebook may import when it is graded: the recurrent layer (rnnkit.modules, which
#: needs array_api_compat) and the data helpers; nothing that holds a tokenizer, a loss or a sampler
POLICY = Policy(packages=("numpy", "array_api_compat", "matplotlib"), rnnkit=HELPERS + ("rnnkit.modules",))
SPECS = ("build_vocab", "encode", "next_word_loss", "train_step", "sampling_probs", "sample_next")

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
WORDS = ("the", "cat", "dog", "sat", "on", "mat", "a", "saw", "bird", "ran", "to", "house", "big", "red",
         "and", "it", "was", "there", "small", "tree")


def _sentences(rng, n, mixed_case=False, pool=12, min_words=3, max_words=8):
    """Random sentences of words from a pool, with Zipf-like frequencies (so counts repeat and tie)."""
    words = list(WORDS[:pool])
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    out = []
    for _ in range(n):
        chosen = [words[i] for i in rng.choice(len(words), size=int(rng.integers(min_words, max_words + 1)), p=weights)]
        if mixed_case:
            chosen = [w.capitalize() if rng.random() < 0.3 else w for w in chosen]
            chosen[0] = chosen[0].capitalize()
        out.append(" ".join(chosen))
    return out


def _counts(sentences):
    return Counter(w for s in sentences for w in s.lower().split())



def _loss_and_dlogits(logits, targets, **kwargs):
    """rnnkit's summed cross-entropy and its gradient with respect to the logits."""
    loss, grads = _rnnkit_cross_entropy(logits, targets, **kwargs)
    return loss, grads["logits"]

# --------------------------------------------------------------------------------------------
# 1. the vocabulary
# --------------------------------------------------------------------------------------------

def build_vocab(student, rng, n_sentences=6, min_count=1, mixed_case=False):
    """``build_vocab(sentences, min_count)`` returns ``{token: id}``: the four reserved tokens at 0-3, then the
    lowercased words seen at least ``min_count`` times, most frequent first, ties alphabetically."""
    fn = student_function(student, "build_vocab")
    sentences = _sentences(rng, n_sentences, mixed_case=mixed_case)
    if min_count > 1 and not any(c < min_count for c in _counts(sentences).values()):
        # make sure that min_count matters: one word of the sentences is rare
        rare = next(w for w in WORDS if w not in _counts(sentences))
        i = int(rng.integers(len(sentences)))
        sentences[i] = f"{sentences[i]} {rare}"
    want = Tokenizer("word", lower=True).fit(sentences, min_count=min_count).vocab.stoi
    counts = _counts(sentences)
    got = call_student(fn, list(sentences), min_count=min_count)
    if not isinstance(got, dict):
        raise CheckFailure(f"build_vocab should return a dict {{token: id}}, got {kind_of(got)}")
    for token, i in zip(SPECIALS, range(4)):
        if got.get(token) != i:
            raise CheckFailure(f"the four reserved tokens come first: <PAD> 0, <UNK> 1, <BOS> 2, <EOS> 3; "
                               f"yours maps {token} to {got.get(token)!r}")
    extra = [t for t in got if t not in want]
    missing = [t for t in want if t not in got]
    for token in extra:
        if not isinstance(token, str):
            raise CheckFailure(f"the keys of the vocabulary are the words (strings); {token!r} is a "
                               f"{kind_of(token)}")
        if token != token.lower() and token.lower() in counts:
            raise CheckFailure(f"the vocabulary has {token!r}; words are lowercased first, so {token!r} and "
                               f"{token.lower()!r} are one word")
        if token in counts and counts[token] < min_count:
            raise CheckFailure(f"{token!r} appears {counts[token]} time(s) in the training sentences, fewer than "
                               f"min_count={min_count}: leave it out (it will be read as <UNK>)")
        raise CheckFailure(f"the vocabulary has {token!r}, which is not a word of the training sentences")
    if missing:
        token = missing[0]
        raise CheckFailure(f"{token!r} (seen {counts[token]} time(s), min_count={min_count}) has no id")
    for token, i in want.items():
        if got[token] != i:
            kind = kind_of(got[token])
            if not isinstance(got[token], (int, np.integer)):
                raise CheckFailure(f"the ids should be integers; {token!r} maps to a {kind}")
            raise CheckFailure(
                f"{token!r} (seen {counts[token]} time(s)) has id {got[token]}, expected {i}: after the four "
                "reserved ids come the words by decreasing count, and words with the same count in "
                "alphabetical order (sorted(..., key=lambda w: (-count[w], w)))")
    return (f"build_vocab: correct ({len(want) - 4} words kept of {len(counts)} from {n_sentences} sentences, "
            f"min_count={min_count})")


# --------------------------------------------------------------------------------------------
# 2. encoding
# --------------------------------------------------------------------------------------------

def encode(student, rng, n_sentences=6, mixed_case=True, unknown=2):
    """``encode(sentence, vocab)`` returns the int ids ``[<BOS>, w_1, ..., w_n, <EOS>]``, unknown words → 1."""
    fn = student_function(student, "encode")
    training = _sentences(rng, n_sentences, pool=10)
    tokenizer = Tokenizer("word", lower=True).fit(training)
    vocab = dict(tokenizer.vocab.stoi)
    words = _sentences(rng, 1, mixed_case=mixed_case, pool=10, min_words=4, max_words=7)[0].split()
    outside = [w for w in WORDS if w not in vocab] or ["zebra"]
    for _ in range(unknown):
        word = outside[int(rng.integers(len(outside)))]
        words.insert(int(rng.integers(len(words) + 1)), word.capitalize() if rng.random() < 0.5 else word)
    sentence = " ".join(words)
    want = np.array(tokenizer.encode(sentence, add_bos=True, add_eos=True), dtype=np.int64)
    try:
        got = call_student(fn, sentence, dict(vocab))
    except CheckFailure as failure:
        if "raised KeyError" in str(failure):
            raise CheckFailure(f"encode({sentence!r}, vocab) raised {str(failure).split('raised ')[1]}: a word the "
                               "vocabulary does not know must become <UNK> (id 1), e.g. vocab.get(word, 1)") from None
        raise
    if isinstance(got, list) and all(isinstance(i, (int, np.integer)) for i in got):
        raise CheckFailure("encode returned a list; return a numpy integer array (np.array(ids))")
    expect_array(got, f"encode({sentence!r}, vocab)", integer=True)
    n_known = sum(w.lower() in vocab for w in words)
    if got.shape == (len(words),):
        raise CheckFailure(f"encode({sentence!r}, vocab) has {len(words)} ids, one per word; it should start "
                           f"with <BOS> (id {BOS_ID}) and end with <EOS> (id {EOS_ID}): {len(words) + 2} ids")
    if got.shape == (n_known + 2,) and n_known < len(words):
        raise CheckFailure(f"encode({sentence!r}, vocab) dropped the unknown words; each one becomes <UNK> "
                           f"(id {UNK_ID}) so that the sentence keeps its length")
    case_sensitive = np.array([BOS_ID] + [vocab.get(w, UNK_ID) for w in words] + [EOS_ID])
    as_pad = np.where(want == UNK_ID, PAD_ID, want)
    expect_close(got, want, f"encode({sentence!r}, vocab)", mistakes={
        "unknown words map to <UNK> (id 1), not to <PAD> (id 0)": as_pad,
        "the words were not lowercased: 'The' must find the id of 'the'": case_sensitive,
    })
    return f"encode: correct for {sentence!r}"


# --------------------------------------------------------------------------------------------
# 3. the loss
# --------------------------------------------------------------------------------------------

def _id_batch(rng, T, batch, vocab, pad=True):
    """(T+1, B) ids: <BOS>, words, <EOS>, then <PAD>; the first sequence fills all T+1 positions."""
    ids = np.zeros((T + 1, batch), dtype=np.int64)
    for b in range(batch):
        length = T + 1 if (b == 0 or not pad) else int(rng.integers(2, T + 2))
        if pad and b == 1 and batch > 1:
            length = min(length, T)  # at least one sequence has padding
        length = max(length, 2)
        ids[0, b] = BOS_ID
        ids[1:length - 1, b] = rng.integers(4, vocab, size=length - 2)
        ids[length - 1, b] = EOS_ID
    return ids


def _scalar(value, what):
    if isinstance(value, np.ndarray) and value.size != 1:
        raise CheckFailure(f"{what} should be one number, the sum of the per-step losses; yours has shape "
                           f"{value.shape} (did you forget to add them up?)")
    try:
        return np.asarray(float(np.asarray(value).reshape(())))
    except (TypeError, ValueError):
        raise CheckFailure(f"{what} should be one number, got {kind_of(value)}") from None


def next_word_loss(student, rng, T=5, batch=3, vocab=7, scale=2.0, pad=True):
    """``next_word_loss(logits (T, B, V), ids (T+1, B), pad_id=0)`` returns ``(loss, dlogits)``: the summed
    cross-entropy of predicting ``ids[t+1]`` from ``logits[t]``, positions whose target is padding ignored."""
    fn = student_function(student, "next_word_loss")
    ids = _id_batch(rng, T, batch, vocab, pad=pad)
    logits = rng.normal(0.0, scale, size=(T, batch, vocab))
    if scale > 100:  # make sure that exp overflows at a position that counts (exp(710) is inf)
        counted = np.argwhere(ids[1:] != PAD_ID)
        t, b = counted[int(rng.integers(len(counted)))]
        logits[t, b, int(rng.integers(vocab))] = 1.5 * scale
    want_loss, want_d = _loss_and_dlogits(logits, ids[1:], ignore_index=PAD_ID)
    out = call_student(fn, logits.copy(), ids.copy())
    loss, dlogits = expect_tuple(out, 2, "next_word_loss", "(loss, dlogits)")
    loss = _scalar(loss, "the loss")
    if not np.isfinite(loss):
        raise CheckFailure(f"the loss is {float(loss)} for logits as large as {np.abs(logits).max():.3g}: the "
                           "softmax overflowed; compute log p stably, log p_k = (z_k − m) − log Σ_j exp(z_j − m) "
                           "with m = max_j z_j")
    n = int((ids[1:] != PAD_ID).sum())
    scales = {1 / n: f"you averaged over the {n} counted positions; this exercise sums the per-step losses",
              -1: "the sign is flipped: the loss is −log p of the target"}
    if T * batch != n:
        scales[1 / (T * batch)] = "you averaged over all T·B positions; the loss is the sum of the per-step losses"
    if batch > 1:
        scales[1 / batch] = "you divided by the batch size B; the loss is the sum over steps and sequences"
    if T > 1:
        scales[1 / T] = "you divided by T; the loss is the sum of the per-step losses"
    padded = _loss_and_dlogits(logits, ids[1:])
    current = _loss_and_dlogits(logits, ids[:-1], ignore_index=PAD_ID)
    variants = [("off by one: logits[t] is compared with ids[t], the word the model has just read; it must "
                 "predict the next word, ids[t+1]", current)]
    if not np.allclose(padded[0], want_loss):
        variants.append(("the padded positions count in your loss; skip every position whose target ids[t+1] "
                         "is pad_id", padded))
    expect_close(loss, want_loss, "the loss", rtol=1e-8, scales=scales,
                 mistakes={message: v[0] for message, v in variants})
    if isinstance(dlogits, np.ndarray) and dlogits.dtype.kind == "f" and not np.isfinite(dlogits).all():
        raise CheckFailure("dlogits contains NaN or inf: compute the softmax stably (subtract the row maximum)")
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    keep = (ids[1:] != PAD_ID)[..., None]
    dmistakes = {message: v[1] for message, v in variants}
    dmistakes["the gradient of −log p_c is p − onehot(c); subtract 1 at the target class"] = p * keep
    dmistakes["the padded positions must get zero gradient (their loss is ignored)"] = np.where(keep, want_d, p)
    dscales = {k: v.replace("loss", "loss (and so its gradient)", 1) for k, v in scales.items()}
    expect_close(dlogits, want_d, "dlogits", axes=("T", "B", "V") if len({T, batch, vocab}) == 3 else None,
                 rtol=1e-8, scales=dscales, mistakes=dmistakes)
    return (f"next_word_loss: correct (T={T}, B={batch}, V={vocab}, {n} of {T * batch} positions counted, "
            f"|z| up to {np.abs(logits).max():.3g})")


# --------------------------------------------------------------------------------------------
# 4. one training step
# --------------------------------------------------------------------------------------------

def _rnn_with(flat):
    """A checker-side rnnkit RNN holding the ``rnn.*`` arrays of ``flat`` (copies)."""
    params = {k[4:]: np.array(v, copy=True) for k, v in flat.items() if k.startswith("rnn.")}
    H, D = params["weight_ih_l0"].shape
    rnn = RNN(D, H, seed=0)
    rnn.params.update(params)
    return rnn


def _reference_step(flat, ids):
    """Loss, gradients (the keys of ``flat``) and dx of the summed next-word cross-entropy, with rnnkit.
    ``flat``: ``embedding``, ``head.weight``, ``head.bias`` and ``rnn.<name>`` for each RNN parameter."""
    rnn = _rnn_with(flat)
    x, e_cache = embedding_forward(ids[:-1], flat["embedding"])
    hs, _ = rnn(x)
    logits, h_cache = linear_forward(hs, flat["head.weight"], flat["head.bias"])
    loss, dlogits = _loss_and_dlogits(logits, ids[1:], ignore_index=PAD_ID)
    head = linear_backward(dlogits, h_cache)
    dx, _ = rnn.backward(head["h"])
    grads = {"embedding": embedding_backward(dx, e_cache)["W"], "head.weight": head["W"], "head.bias": head["b"],
             **{f"rnn.{k}": np.array(v, copy=True) for k, v in rnn.grads.items()}}
    return float(loss), grads, dx


def _rnn_params(rnn, shapes=None) -> dict:
    """The parameters of the student's-side RNN, as ``rnn.<name>`` arrays."""
    params = rnn.get("params")
    if not isinstance(params, dict) or not all(isinstance(v, np.ndarray) and v.dtype.kind == "f"
                                               for v in params.values()):
        raise CheckFailure("model['rnn'].params should stay a dict of float arrays (the RNN's parameters)")
    flat = {f"rnn.{k}": v for k, v in params.items()}
    if shapes is not None and {k: v.shape for k, v in flat.items()} != {k: v for k, v in shapes.items()
                                                                         if k.startswith("rnn.")}:
        raise CheckFailure("model['rnn'].params should keep its arrays, names and shapes; update them in place: "
                           "param -= lr * grad")
    return flat


def _flat(model, rnn, shapes) -> dict:
    """The model's arrays as the student's train_step left them."""
    out = {"embedding": model.get("embedding"), "head.weight": model.get("head", {}).get("weight"),
           "head.bias": model.get("head", {}).get("bias"), **_rnn_params(rnn, shapes)}
    for name, value in out.items():
        expect_array(value, _where(name), shape=shapes[name])
    return out


def _where(name):
    if name.startswith("rnn."):
        return f"model['rnn'].params[{name[4:]!r}]"
    if name.startswith("head."):
        return f"model['head'][{name[5:]!r}]"
    return f"model[{name!r}]"


def _expect_update(name, change, want, n, single_writes):
    """The change of one parameter must be lr * grad; known mistakes are named."""
    if not np.any(change) and np.any(want):
        raise CheckFailure(f"{_where(name)} did not change: after the backward pass, update every parameter, "
                           "param -= lr * grad" + (" (the RNN's gradients are in model['rnn'].grads after "
                                                   "model['rnn'].backward(...))" if name.startswith("rnn.") else ""))
    mistakes = {}
    if name == "embedding":
        mistakes["a word id that occurs several times in the batch got only one of its updates: "
                 "E[ids] -= ... does not add up repeated ids; accumulate the gradient with "
                 "np.add.at(dE, ids, dx)"] = single_writes
    expect_close(change, want, f"the change of {_where(name)}", rtol=1e-7, atol=1e-10,
                 scales={-1: "the parameter moved up the gradient: subtract lr * grad",
                         1 / n: "did your loss average instead of sum?"},
                 mistakes=mistakes)


def train_step(student, rng, T=5, batch=3, vocab=8, emb=4, hidden=6, lr=0.1):
    """``train_step(model, ids, lr)`` does one SGD step on the summed next-word loss of ``ids (T+1, B)``, in the
    model (embedding -> rnnkit RNN -> linear head), and returns the loss before the step. The model's RNN
    is an ``rnnkit.RNN`` made on the student's side."""
    fn = student_function(student, "train_step")
    ids = _id_batch(rng, T, batch, vocab)
    rnn = student.new("rnnkit.RNN", emb, hidden, seed=int(rng.integers(2**31)))
    before = {"embedding": rng.normal(0.0, 1.0, (vocab, emb)),
              "head.weight": rng.normal(0.0, 1.0 / np.sqrt(hidden), (vocab, hidden)),
              "head.bias": rng.normal(0.0, 0.1, vocab), **_rnn_params(rnn)}
    shapes = {k: v.shape for k, v in before.items()}
    want_loss, grads, dx = _reference_step(before, ids)
    loss_after, _, _ = _reference_step({k: v - lr * grads[k] for k, v in before.items()}, ids)
    n = int((ids[1:] != PAD_ID).sum())
    single_writes = np.zeros_like(before["embedding"])
    single_writes[ids[:-1]] = lr * dx           # fancy-index assignment keeps one write per repeated id
    model = {"embedding": before["embedding"].copy(), "rnn": rnn,
             "head": {"weight": before["head.weight"].copy(), "bias": before["head.bias"].copy()}}

    def judge():
        returned = call_student(fn, model, ids.copy(), lr)
        if returned is None:
            raise CheckFailure("train_step returned None; return the loss of the batch (computed before the update)")
        expect_close(_scalar(returned, "the returned loss"), np.asarray(want_loss), "the returned loss", rtol=1e-8,
                     scales={1 / n: "you averaged; the loss of this exercise is the sum of the per-step losses"},
                     mistakes={"that is the loss after the update; return the loss of the batch computed before "
                               "the step": np.asarray(loss_after)})
        after = _flat(model, rnn, shapes)
        for name, g in grads.items():
            _expect_update(name, before[name] - after[name], lr * g, n, single_writes)

    blame_parts(student, judge, [("next_word_loss", next_word_loss)], "train_step")
    return f"train_step: correct (T={T}, B={batch}, V={vocab}, D={emb}, H={hidden}, lr={lr})"


# --------------------------------------------------------------------------------------------
# 5. and 6. sampling with a temperature
# --------------------------------------------------------------------------------------------

def _temperature_probs(z, temperature):
    if temperature == 0:
        return (np.arange(z.shape[-1]) == np.argmax(z)).astype(np.float64)
    return _rnnkit_softmax(z / temperature)


def _logits(rng, vocab, scale):
    z = rng.normal(0.0, scale, size=vocab)
    z[int(rng.integers(vocab))] += 1.0    # one clear favourite, so that greedy is unambiguous
    return z


def sampling_probs(student, rng, vocab=6, temperature=0.7, scale=2.0):
    """``sampling_probs(logits (V,), temperature)`` returns softmax(logits / τ); τ = 0 gives the one-hot
    vector of the argmax (greedy)."""
    fn = student_function(student, "sampling_probs")
    z = _logits(rng, vocab, scale)
    want = _temperature_probs(z, temperature)
    got = call_student(fn, z.copy(), temperature)
    if isinstance(got, np.ndarray) and got.dtype.kind == "f" and not np.isfinite(got).all():
        if temperature == 0:
            raise CheckFailure("sampling_probs returned NaN or inf at temperature 0; dividing by 0 does not work, "
                               "so treat 0 on its own: all the probability goes to the largest logit (greedy)")
        raise CheckFailure(f"sampling_probs returned NaN or inf for logits / τ as large as "
                           f"{np.abs(z).max() / temperature:.3g}: subtract the maximum before np.exp")
    mistakes = {}
    if temperature not in (0, 1):
        mistakes["the logits were multiplied by the temperature; divide them by it: softmax(z / τ)"] = \
            _rnnkit_softmax(z * temperature)
        mistakes["the temperature has no effect: divide the logits by it, softmax(z / τ)"] = _rnnkit_softmax(z)
    if temperature == 0:
        mistakes["at temperature 0 all the probability goes to the largest logit, not to the smallest"] = \
            (np.arange(vocab) == np.argmin(z)).astype(float)
    expect_close(got, want, f"sampling_probs(z, {temperature:g})", rtol=1e-8, mistakes=mistakes)
    return f"sampling_probs: correct at temperature {temperature:g} (V={vocab})"


def _fits(counts, p, draws):
    """Counts consistent with probabilities p (5 standard deviations per class)."""
    expected = draws * p
    sd = np.sqrt(draws * p * (1 - p))
    return bool(np.all(np.abs(counts - expected) <= 5 * sd + 1.5))


def _token(value):
    """One token id as an int; a CheckFailure says what came instead."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise CheckFailure(f"sample_next should return one token id, an int, got a {kind_of(value)}"
                           + (f" of shape {value.shape}" if isinstance(value, np.ndarray) else ""))
    return int(value)


def _draws(student, z, temperature, seed, n):
    """``n`` ids from ``sample_next(z, temperature, rng)``, all with one generator ``default_rng(seed)``
    made on the student's side. They are drawn in one request, as ``list(map(sample_next, repeat(z),
    repeat(temperature), repeat(rng)))`` built there from builtins: a request per draw costs milliseconds."""
    function = student.value("sample_next")
    rng = student.new("numpy.random.default_rng", seed)
    args = [student.new("itertools.repeat", value, n) for value in (z, temperature, rng)]
    try:
        ids = student.new("builtins.list", student.new("builtins.map", function, *args)).method("copy")()
    except CheckFailure as failure:  # the failure names the request, builtins.list, not the student's function
        why = str(failure).replace("builtins.list ", "", 1)
        raise CheckFailure(f"sample_next failed while drawing {n} ids in a row: it {why}") from None
    return np.array([_token(i) for i in ids], dtype=np.int64)


def sample_next(student, rng, vocab=5, temperature=1.0, scale=1.0, draws=2000):
    """``sample_next(logits (V,), temperature, rng)`` returns one token id drawn from softmax(logits / τ) with
    the generator ``rng``; τ = 0 returns the argmax."""
    fn = student_function(student, "sample_next")
    z = _logits(rng, vocab, scale)
    p = _temperature_probs(z, temperature)
    seed = int(rng.integers(2**31))

    _token(call_student(fn, z.copy(), temperature, np.random.default_rng(seed)))
    if temperature == 0:
        picks = {_token(call_student(fn, z.copy(), 0, np.random.default_rng(seed + i))) for i in range(20)}
        if picks != {int(np.argmax(z))}:
            raise CheckFailure(f"at temperature 0 sample_next must always return the most likely id, "
                               f"{int(np.argmax(z))} (greedy); yours returned {sorted(picks)}")
        return f"sample_next: correct at temperature 0 (always the argmax, {int(np.argmax(z))})"

    def run(start, n):
        return _draws(student, z, temperature, start, n)

    a, b = run(seed, 150), run(seed, 150)
    if not np.array_equal(a, b):
        raise CheckFailure("sample_next gave different ids for two generators with the same seed: draw with the "
                           "rng you are given (e.g. rng.choice(V, p=p)), not with np.random")
    c = run(seed + 1, 150)
    if np.array_equal(a, c):
        raise CheckFailure("sample_next gave the same ids for generators with different seeds: it ignores its "
                           "rng argument; draw with it (e.g. rng.choice(V, p=p))")
    samples = run(seed + 2, draws)
    if samples.min() < 0 or samples.max() >= vocab:
        raise CheckFailure(f"sample_next returned {int(samples.min() if samples.min() < 0 else samples.max())}, "
                           f"which is not an id of the {vocab} logits (0 … {vocab - 1})")
    counts = np.bincount(samples, minlength=vocab).astype(float)
    if not _fits(counts, p, draws):
        wrong = {
            "they follow softmax(z · τ): divide the logits by the temperature instead": _rnnkit_softmax(z * temperature),
            "they follow softmax(z), ignoring the temperature": _rnnkit_softmax(z),
            "they are uniform: sample from the probabilities softmax(z / τ), e.g. rng.choice(V, p=p)":
                np.full(vocab, 1.0 / vocab),
            "they always pick the most likely id; that is temperature 0 only":
                (np.arange(vocab) == np.argmax(z)).astype(float),
        }
        for message, q in wrong.items():
            if not np.allclose(q, p, atol=0.02) and _fits(counts, q, draws):
                raise CheckFailure(f"the ids sample_next draws at temperature {temperature:g} are wrong: {message}")
        freq = ", ".join(f"{f:.3f}" for f in counts / draws)
        want = ", ".join(f"{q:.3f}" for q in p)
        raise CheckFailure(f"the frequencies of the ids sample_next draws at temperature {temperature:g} are "
                           f"[{freq}] in {draws} draws; softmax(z / τ) gives [{want}]")
    return f"sample_next: correct at temperature {temperature:g} ({draws} draws match softmax(z / τ))"
