"""Typical mistakes in exercise 2 (the vanilla RNN forward pass) and what the feedback must say about each."""
from course_helpers import Mutant

A_LINE = ('a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T'
          ' + params["bias_hh"]')

MUTANTS = [
    Mutant("forgets_bias_hh", "rnn_step_forward",
           A_LINE, 'a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T',
           "bias_hh is missing"),
    Mutant("untransposed_w_hh", "rnn_step_forward",
           A_LINE, A_LINE.replace('params["weight_hh"].T', 'params["weight_hh"]'),
           "instead of its transpose"),
    Mutant("relu_ignored", "rnn_step_forward",
           'elif nonlinearity == "relu":\n        h = np.maximum(a, 0.0)',
           'elif nonlinearity == "relu":\n        h = np.tanh(a)',
           "asks for ReLU"),
    # h_t instead of h_{t-1}: the step reads the (still zero) slot of the state it is computing
    Mutant("reads_h_t_instead_of_h_prev", "rnn_forward",
           "h, cache = rnn_step_forward(x[t], h, params, nonlinearity)",
           "h, cache = rnn_step_forward(x[t], hs[t], params, nonlinearity)",
           "every step starts from a zero state"),
    Mutant("state_not_carried", "rnn_forward",
           "h, cache = rnn_step_forward(x[t], h, params, nonlinearity)",
           "h_t, cache = rnn_step_forward(x[t], h0, params, nonlinearity)\n        h = h_t",
           "every step starts from h0"),
    Mutant("batch_first_output", "rnn_forward",
           "return hs, h, caches", "return hs.transpose(1, 0, 2), h, caches",
           "expected (T, B, H)"),
    Mutant("head_without_bias", "linear_head_forward",
           'ys = hs @ params["weight"].T + params["bias"]', 'ys = hs @ params["weight"].T',
           "the bias b_y is missing"),
    Mutant("softmax_overflows", "softmax",
           "shifted = z - np.max(z, axis=-1, keepdims=True)", "shifted = z",
           "np.exp overflows"),
    Mutant("softmax_wrong_axis", "softmax",
           "return e / np.sum(e, axis=-1, keepdims=True)", "return e / np.sum(e, axis=0, keepdims=True)",
           "should sum to 1"),
    # Cheating: borrowing the library's softmax.
    Mutant("calls_rnnkit", "softmax",
           "shifted = z - np.max(z, axis=-1, keepdims=True)\n",
           "from rnnkit.losses import softmax as library_softmax\n"
           "    return library_softmax(z, axis=-1)\n",
           "No module named 'rnnkit.losses'"),
]
