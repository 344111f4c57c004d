"""Typical mistakes in exercise 13 (capstone) and what the feedback must say about each."""
from course_helpers import Mutant

MUTANTS = [
    Mutant("adam_without_bias_correction", "adam_update",
           "m_hat = m / (1 - beta1 ** t)\n        v_hat = v / (1 - beta2 ** t)",
           "m_hat = m\n        v_hat = v",
           "the bias correction is missing"),
    Mutant("learning_rate_sign", "adam_update",
           "params[name] = params[name] - lr", "params[name] = params[name] + lr",
           "moved up the gradient"),
    Mutant("clipping_after_update", "train_step",
           "grads, _ = clip_grad_norm(grads, max_norm)\n    adam_update(params, grads, state, lr)",
           "adam_update(params, grads, state, lr)\n    grads, _ = clip_grad_norm(grads, max_norm)",
           "clip first, then update"),
    Mutant("loss_not_reset_each_step", "train",
           "    losses = []\n    for ids in batches:\n        losses.append(train_step(params, state, ids, lr, max_norm))",
           "    losses, total = [], 0.0\n    for ids in batches:\n"
           "        total += train_step(params, state, ids, lr, max_norm)\n        losses.append(total)",
           "running total"),
    Mutant("state_not_reset_between_names", "sample_names",
           "    for n in range(N):\n"
           "        zeros = xp.zeros((1, H), dtype=W.dtype, device=device_of(W))\n"
           "        state = (zeros, zeros)                                  # every name starts afresh\n",
           "    zeros = xp.zeros((1, H), dtype=W.dtype, device=device_of(W))\n"
           "    state = (zeros, zeros)\n"
           "    for n in range(N):\n",
           "carried over from the previous name"),
    Mutant("state_not_carried_through_time", "lm_loss",
           "state, cache = cell_step_forward(x[t], state, cell)",
           "state, cache = cell_step_forward(x[t], (zeros, zeros), cell)",
           "not carried from step to step"),
    Mutant("padding_counted", "lm_loss",
           "keep = xp.astype(targets != PAD_ID, W.dtype)", "keep = xp.ones(targets.shape, dtype=W.dtype)",
           "the padding was counted"),
    Mutant("numpy_only_code", "cell_step",
           "g, o = xp.tanh(a[:, 2 * H:3 * H])", "g, o = np.tanh(a[:, 2 * H:3 * H])",
           "a numpy function was given a torch tensor"),
    Mutant("lstm_backward_without_the_path_through_h", "cell_step",
           "dc = dc + dh * o * (1 - tanh_c * tanh_c)", "dc = dc",
           "c_t reaches the loss along two paths"),
    # Cheating: borrowing the library's optimizer (graded sandboxed, where rnnkit.optim is not installed).
    Mutant("calls_rnnkit", "adam_update",
           "beta1, beta2 = betas\n",
           "from rnnkit.optim import Adam as _library_adam\n    beta1, beta2 = betas\n",
           "No module named 'rnnkit.optim'"),
]
