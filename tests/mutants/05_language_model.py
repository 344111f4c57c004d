"""Typical mistakes in exercise 5 (a word-level language model) and what the feedback must say about each."""
from course_helpers import Mutant

EMBEDDING_UPDATE = """    dE = np.zeros_like(E)
    np.add.at(dE, inputs, dx)

    head["weight"] -= lr * dW
    head["bias"] -= lr * db
    E -= lr * dE
"""

MUTANTS = [
    Mutant("unknown_word_not_mapped", "encode",
           "vocab.get(word, unk)", "vocab[word]",
           "must become <UNK>"),
    Mutant("min_count_ignored", "build_vocab",
           "if c >= min_count", "if c >= 1",
           "fewer than min_count"),
    Mutant("loss_averaged", "next_word_loss",
           "return float(loss.sum()), dlogits",
           "n = keep.sum()\n    return float(loss.sum() / n), dlogits / n",
           "you averaged over the"),
    Mutant("predicts_current_word", "next_word_loss",
           "targets = ids[1:] ", "targets = ids[:-1] ",
           "off by one"),
    Mutant("padding_counted", "next_word_loss",
           "keep = (targets != pad_id).astype(logits.dtype)", "keep = np.ones(targets.shape)",
           "the padded positions count"),
    Mutant("log_softmax_overflows", "next_word_loss",
           "shifted = logits - logits.max(axis=-1, keepdims=True)", "shifted = logits",
           "the softmax overflowed"),
    Mutant("repeated_ids_overwrite", "train_step",
           EMBEDDING_UPDATE,
           '    head["weight"] -= lr * dW\n    head["bias"] -= lr * db\n    E[inputs] -= lr * dx\n',
           "np.add.at"),
    Mutant("temperature_multiplied", "sampling_probs",
           "scaled = logits / temperature", "scaled = logits * temperature",
           "multiplied by the temperature"),
    Mutant("global_random_state", "sample_next",
           "return int(rng.choice(len(p), p=p))", "return int(np.random.choice(len(p), p=p))",
           "not with np.random"),
    # Cheating: borrowing the library's sampler, which the sandbox does not hold (it holds rnnkit.RNN).
    Mutant("calls_rnnkit", "sample_next",
           "p = sampling_probs(logits, temperature)\n",
           "from rnnkit.text import sample_from_logits\n"
           "    return sample_from_logits(logits, temperature, rng)\n",
           "No module named 'rnnkit.text'"),
    Mutant("calls_rnnkit_through_the_package", "build_vocab",
           "counts = {}\n",
           "import rnnkit\n"
           "    return dict(rnnkit.Tokenizer('word', lower=True).fit(sentences, min_count=min_count).vocab.stoi)\n",
           "has no attribute 'Tokenizer'"),
]
