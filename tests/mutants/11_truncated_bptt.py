"""Typical mistakes in exercise 11 (truncated BPTT on a long text) and what the feedback must say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("columns_dealt_like_cards", "batchify",
           "ids[: rows * batch_size].reshape(batch_size, rows).T.copy()",
           "ids[: rows * batch_size].reshape(rows, batch_size).copy()",
           "deals the ids out to the columns like cards"),
    Mutant("targets_not_shifted", "get_chunk",
           "columns[start + 1 : stop + 1]", "columns[start:stop]",
           "off by one"),
    Mutant("last_chunk_not_shortened", "get_chunk",
           "stop = min(start + seq_len, columns.shape[0] - 1)", "stop = start + seq_len",
           "the last chunk is shorter"),
    Mutant("state_reset_every_chunk", "train_chunk",
           "run(model, inputs, h)", "run(model, inputs, None)",
           "started from zeros"),
    Mutant("hands_on_the_start_state", "train_chunk",
           "return loss, h_last", "return loss, h",
           "the state the chunk started from"),
    Mutant("clips_each_gradient_alone", "train_chunk",
           """    norm = np.sqrt(sum(np.sum(g * g) for g in all_grads))
    scale = max_norm / (norm + 1e-6) if norm > max_norm else 1.0

    head["weight"] -= lr * scale * grads["W"]
    head["bias"] -= lr * scale * grads["b"]
    E -= lr * scale * grads["E"]
    for name in rnn.params:
        rnn.params[name] -= lr * scale * rnn.grads[name]
""",
           """    def scale(g):
        norm = np.sqrt(np.sum(g * g))
        return max_norm / (norm + 1e-6) if norm > max_norm else 1.0

    head["weight"] -= lr * scale(grads["W"]) * grads["W"]
    head["bias"] -= lr * scale(grads["b"]) * grads["b"]
    E -= lr * scale(grads["E"]) * grads["E"]
    for name in rnn.params:
        rnn.params[name] -= lr * scale(rnn.grads[name]) * rnn.grads[name]
""",
           "clip their GLOBAL norm"),
    Mutant("perplexity_resets_the_state", "perplexity",
           "logits, _, h = run(model, inputs, h)", "logits, _, _ = run(model, inputs, None)",
           "the state must be carried"),
    Mutant("mean_of_chunk_means", "perplexity",
           "total += loss * targets.size\n        count += targets.size",
           "total += loss\n        count += 1",
           "the last chunk is shorter"),
    Mutant("unigram_without_smoothing", "unigram_perplexity",
           "p = (counts + 1.0) / (len(train_ids) + vocab_size)", "p = counts / len(train_ids)",
           "add-one smoothing"),
    # Cheating: borrowing the library's answers, which the sandbox does not hold (it holds rnnkit.RNN).
    Mutant("calls_rnnkit", "batchify",
           "rows = len(ids) // batch_size\n",
           "from rnnkit.lm import batchify as cut\n    return cut(ids, batch_size)\n",
           "No module named 'rnnkit.lm'"),
    Mutant("calls_rnnkit_through_the_package", "train_chunk",
           "    norm = np.sqrt(sum(np.sum(g * g) for g in all_grads))\n",
           "    import rnnkit\n    norm = float(rnnkit.clip_grad_norm(all_grads, max_norm))\n",
           "has no attribute 'clip_grad_norm'"),
]
