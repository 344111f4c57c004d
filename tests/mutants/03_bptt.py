"""Typical mistakes in exercise 3 (backpropagation through time) and what the feedback must say about each."""
from course_helpers import Mutant

MUTANTS = [
    # the worked example
    Mutant("sum_stops_at_t_minus_1", "bptt_worked_example",
           'grads["weight_hh"] = terms["weight_hh"].sum(axis=0)',
           'grads["weight_hh"] = terms["weight_hh"][:-1].sum(axis=0)',
           "the term k = t is missing"),
    Mutant("worked_example_without_tanh_derivative", "bptt_worked_example",
           "delta = (1 - h[k] ** 2) * dh", "delta = dh",
           "the factor 1 − h_k² (the derivative of tanh) is missing"),
    Mutant("worked_example_uses_h_k", "bptt_worked_example",
           'terms["weight_hh"][k - 1] = np.outer(delta, h[k - 1])',
           'terms["weight_hh"][k - 1] = np.outer(delta, h[k])',
           "W_hh read h_{k-1} at step k"),
    Mutant("worked_example_sign", "bptt_worked_example",
           "dy = 2 * (y - d)", "dy = 2 * (d - y)",
           "the sign is flipped"),
    Mutant("worked_example_half_squared_error", "bptt_worked_example",
           "dy = 2 * (y - d)", "dy = y - d",
           "you used ½‖d − y‖² (the derivative of the course's loss has a factor 2)"),
    # one step
    Mutant("step_missing_derivative", "rnn_step_backward",
           "da = dh * (1 - h**2)", "da = dh",
           "the gradient skips the derivative of φ"),
    Mutant("transposed_dw_hh", "rnn_step_backward",
           '"weight_hh": da.T @ h_prev,', '"weight_hh": h_prev.T @ da,',
           "dW_hh is transposed"),
    Mutant("bias_gradient_not_summed", "rnn_step_backward",
           '"bias_hh": da.sum(axis=0),', '"bias_hh": da,',
           "summed over the batch axis"),
    # the whole sequence
    Mutant("dw_overwritten_each_step", "rnn_backward",
           "grads[name] += step[name]", "grads[name] = step[name]",
           "only the first step's gradient"),
    Mutant("next_step_gradient_not_added", "rnn_backward",
           "step = rnn_step_backward(dhs[t] + dh_next, caches[t])",
           "step = rnn_step_backward(dhs[t], caches[t])",
           "the gradient from step t+1 is not added"),
    Mutant("averaged_over_time", "rnn_backward",
           'grads["x"] = np.stack(dx[::-1])',
           'grads = {name: g / T for name, g in grads.items()}\n    grads["x"] = np.stack(dx[::-1])',
           "did you divide by T?"),
    # Cheating: borrowing the library's BPTT.
    Mutant("calls_rnnkit", "rnn_backward",
           "grads = {name: np.zeros_like(p) for name, p in caches[0][3].items()}\n",
           "from rnnkit.cells import rnn_step_backward as library_step\n"
           "    grads = {name: np.zeros_like(p) for name, p in caches[0][3].items()}\n",
           "No module named 'rnnkit.cells'"),
]
