"""Typical mistakes in exercise 9 (deep RNNs) and what the feedback must say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("every_layer_reads_x", "deep_rnn_forward",
           "sequence_forward(cell, layer_input,", "sequence_forward(cell, x,",
           "reads the outputs of the layer below, not x"),
    Mutant("next_layer_reads_last_step_only", "deep_rnn_forward",
           "layer_input = hs                   # every step",
           "layer_input = hs[-1:]              # every step",
           "the whole (T, B, H) sequence"),
    Mutant("h_n_top_first", "deep_rnn_forward",
           "np.stack(finals)", "np.stack(finals[::-1])",
           "h_n lists the top layer first"),
    Mutant("no_gradient_to_lower_layers", "deep_rnn_backward",
           "d_hs = dx                          # gradient of the outputs of the layer below",
           "d_hs = None",
           "got no gradient through their outputs"),
    Mutant("d_h_n_top_first", "deep_rnn_backward",
           "d_h_n[layer]", "d_h_n[L - 1 - layer]",
           "d_h_n was used top-first"),
    Mutant("tanh_derivative_missing", "mlp_head_backward",
           "dz = (dy @ W1) * (1 - a * a)", "dz = dy @ W1",
           "tanh derivative is missing"),
    Mutant("head_weights_from_last_step_only", "mlp_head_backward",
           "rows(dy).T @ rows(a)", "dy[-1].T @ a[-1]",
           "only the last step was summed"),
    Mutant("head_gradient_at_last_step_only", "deep_model_loss",
           "_, _, rnn_grads = deep_rnn_backward(d_out, None, rnn_cache)",
           "d_h_n = np.zeros_like(h_n)\n"
           "    d_h_n[-1] = d_out[-1]                  # as if only the last output mattered\n"
           "    _, _, rnn_grads = deep_rnn_backward(np.zeros_like(d_out), d_h_n, rnn_cache)",
           "only at the last step"),
    # Cheating: borrowing the library's stacked module.
    Mutant("calls_rnnkit", "deep_rnn_backward",
           "L = len(cache)\n",
           "from rnnkit.modules import RNN as _library_stack\n    L = len(cache)\n",
           "No module named 'rnnkit.modules'"),
]
