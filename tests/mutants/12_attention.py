"""Typical mistakes in exercise 12 (attention) and what the feedback must say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("softmax_over_the_batch", "attention_forward",
           "weights = np.exp(scores - scores.max(axis=0, keepdims=True))\n"
           "    weights = weights / weights.sum(axis=0, keepdims=True)",
           "weights = np.exp(scores - scores.max(axis=1, keepdims=True))\n"
           "    weights = weights / weights.sum(axis=1, keepdims=True)",
           "the softmax ran over the batch axis"),
    Mutant("mask_ignored", "attention_forward",
           "scores = np.where(mask != 0, scores, -np.inf)", "scores = scores",
           "the padded source positions got weight"),
    Mutant("mask_applied_after_the_softmax", "attention_forward",
           "scores = np.where(mask != 0, scores, -np.inf)                         # padded: weight 0\n"
           "    weights = np.exp(scores - scores.max(axis=0, keepdims=True))\n"
           "    weights = weights / weights.sum(axis=0, keepdims=True)",
           "weights = np.exp(scores - scores.max(axis=0, keepdims=True))\n"
           "    weights = weights / weights.sum(axis=0, keepdims=True) * mask",
           "they no longer sum to 1"),
    Mutant("softmax_backward_without_its_sum", "attention_backward",
           "dscores = weights * (dweights - np.sum(weights * dweights, axis=0, keepdims=True))",
           "dscores = weights * dweights",
           "lacks its sum term"),
    Mutant("no_tanh_derivative", "attention_backward",
           'du = dscores[..., None] * params["v"] * (1 - z ** 2)', 'du = dscores[..., None] * params["v"]',
           "the derivative of tanh is missing"),
    Mutant("keys_only_through_the_context", "attention_backward",
           '"keys": weights[..., None] * dcontext[None] + du @ params["W_k"],',
           '"keys": weights[..., None] * dcontext[None],',
           "each key also sets its own score"),
    Mutant("cell_input_in_the_wrong_order", "decoder_step",
           "np.concatenate([x, context], axis=1)", "np.concatenate([context, x], axis=1)",
           "the cell read [c_t; x_t]"),
    Mutant("h_prev_without_the_query_gradient", "decoder_step_backward",
           'grads["h_prev"] = cell["h_prev"] + attention["query"]', 'grads["h_prev"] = cell["h_prev"]',
           "h_prev is also the query"),
    Mutant("dh_next_forgotten", "decoder_step_backward",
           'dh = dlogits @ params["head.weight"] + dh_next', 'dh = dlogits @ params["head.weight"]',
           "dh_next was not added"),
    # Cheating: borrowing the library's attention (graded sandboxed, where rnnkit.attention is not installed).
    Mutant("calls_rnnkit", "attention_forward",
           'u = keys @ params["W_k"].T + (query @ params["W_q"].T + params["b"])   # (S, B, A)\n',
           "from rnnkit.attention import additive_attention_forward\n"
           "    return additive_attention_forward(query, keys, params, mask)\n",
           "No module named 'rnnkit.attention'"),
]
