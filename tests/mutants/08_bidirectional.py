"""Typical mistakes in exercise 8 (bidirectional RNNs, forward and backward) and what the feedback must
say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("backward_outputs_not_reversed_back", "bidirectional_forward",
           "hs_b = reverse_within_lengths(hs_b_rev, lengths)    # back to the positions of x",
           "hs_b = hs_b_rev",
           "outputs are not reversed back"),
    Mutant("concat_backward_first", "merge",
           "return np.concatenate([h_fwd, h_bwd], axis=-1)",
           "return np.concatenate([h_bwd, h_fwd], axis=-1)",
           "the backward states come first"),
    Mutant("ave_as_sum", "merge",
           "return (h_fwd + h_bwd) / 2", "return h_fwd + h_bwd",
           "'ave' is the mean (h_fwd + h_bwd) / 2; you returned the sum"),
    Mutant("mul_as_concat", "merge",
           "return h_fwd * h_bwd", "return np.concatenate([h_fwd, h_bwd], axis=-1)",
           "'mul' is the element-wise product, (…, H); you returned the concatenation"),
    Mutant("reverse_whole_padded_sequence", "bidirectional_forward",
           "x_rev = reverse_within_lengths(x, lengths)          # each sequence from its last real step\n"
           "    hs_b_rev, h_b, cache_b = rnn_forward(x_rev, h0, params_bwd, lengths)\n"
           "    hs_b = reverse_within_lengths(hs_b_rev, lengths)    # back to the positions of x",
           "x_rev = x[::-1]\n"
           "    hs_b_rev, h_b, cache_b = rnn_forward(x_rev, h0, params_bwd, lengths)\n"
           "    hs_b = hs_b_rev[::-1]",
           "you reversed the padded array as a whole"),
    Mutant("reverse_ignores_lengths", "reverse_within_lengths",
           "if lengths is None:", "if True:",
           "you reversed the padded array as a whole"),
    Mutant("state_updated_on_padding", "rnn_forward",
           "h = np.where(real, h_new, h)           # padded steps leave the state as it was",
           "h = h_new",
           "the state kept changing on the padded steps"),
    Mutant("h_n_from_last_output", "bidirectional_forward",
           "h_n = np.stack([h_f, h_b])", "h_n = np.stack([h_f, hs_b[-1]])",
           "h_n[1] must be the backward direction's final state"),
    Mutant("padded_step_gradients_not_masked", "rnn_backward",
           "np.where(real, dhs[t] + dh, 0.0)", "dhs[t] + dh",
           "dhs at the padded steps must be ignored"),
    Mutant("gradient_stops_at_padding", "rnn_backward",
           'dh = np.where(real, step["h_prev"], dh)', 'dh = step["h_prev"]',
           "its gradient passes through unchanged too"),
    Mutant("mul_backward_with_its_own_factor", "merge_backward",
           "return d_out * h_bwd, d_out * h_fwd", "return d_out * h_fwd, d_out * h_bwd",
           "you multiplied by the same direction"),
    Mutant("backward_direction_gradient_not_reversed", "bidirectional_backward",
           "g_b = rnn_backward(reverse_within_lengths(d_bwd, lengths), dh_b, cache_bwd)",
           "g_b = rnn_backward(d_bwd, dh_b, cache_bwd)",
           "its gradients must be reversed too"),
    Mutant("final_state_gradients_swapped", "bidirectional_backward",
           "(d_h_n[0], d_h_n[1])", "(d_h_n[1], d_h_n[0])",
           "they are swapped"),
    # Cheating: borrowing the library's bidirectional layer.
    Mutant("calls_rnnkit", "bidirectional_forward",
           "B, H = x.shape[1], params_fwd[\"weight_hh\"].shape[1]\n",
           "from rnnkit.modules import RNN\n"
           "    m = RNN(x.shape[2], params_fwd[\"weight_hh\"].shape[1], bidirectional=True, merge_mode=merge_mode)\n"
           "    m.params.update({k + \"_l0\": v for k, v in params_fwd.items()})\n"
           "    m.params.update({k + \"_l0_reverse\": v for k, v in params_bwd.items()})\n"
           "    out, h_n = m(x, lengths=lengths)\n"
           "    return out, h_n, None\n",
           "No module named 'rnnkit.modules'"),
]
