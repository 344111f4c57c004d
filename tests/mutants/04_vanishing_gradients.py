"""Typical mistakes in exercise 4 (Jacobians, the gradient carried back, the factor per step, clipping
and a training loop) and what the feedback must say."""
from course_helpers import Mutant

JACOBIAN = 'return slope[:, :, None] * params["weight_hh"][None, :, :]'
SLOPE = 'slope = 1 - h**2 if nonlinearity == "tanh" else (h > 0).astype(float)'

CLIP_BODY = """    total = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads.values():
            g *= scale
    return total
"""

PER_ARRAY = """    total = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    for g in grads.values():
        norm = np.sqrt(np.sum(g * g))
        if norm > max_norm:
            g *= max_norm / (norm + 1e-6)
    return total
"""

STEP = """        norm = clip_grad_norm(grads, np.inf if max_norm is None else max_norm)
        for name in params:
            params[name] -= lr * grads[name]
"""

MUTANTS = [
    Mutant("jacobian_without_derivative", "jacobians",
           SLOPE, "slope = np.ones_like(h)",
           "the derivative factor 1 − h_t² is missing"),
    Mutant("jacobian_transposed", "jacobians",
           JACOBIAN, 'return params["weight_hh"].T[None, :, :] * slope[:, None, :]',
           "they are transposed"),
    Mutant("relu_with_the_tanh_slope", "jacobians",
           SLOPE, "slope = 1 - h**2",
           "1 − h² is tanh's"),
    Mutant("frobenius_norm", "jacobians",
           "norms[k] = np.linalg.norm(P, ord=2, axis=(1, 2))", "norms[k] = np.linalg.norm(P, axis=(1, 2))",
           "Frobenius norm"),
    Mutant("product_in_wrong_order", "jacobians",
           "P = P @ step_jacobian(hs[k], params, nonlinearity) ", "P = step_jacobian(hs[k], params, nonlinearity) @ P ",
           "multiplied in the wrong order"),
    Mutant("state_gradient_through_transposed_matrix", "state_gradients",
           'grads[k] = (slope * grads[k + 1]) @ params["weight_hh"]',
           'grads[k] = (slope * grads[k + 1]) @ params["weight_hh"].T',
           "W_hh is transposed"),
    Mutant("state_gradient_slope_after_the_matrix", "state_gradients",
           'grads[k] = (slope * grads[k + 1]) @ params["weight_hh"]',
           'grads[k] = slope * (grads[k + 1] @ params["weight_hh"])',
           "φ' multiplies dh_{k+1} before W_hh"),
    Mutant("factor_is_the_log_slope", "factor_per_step",
           "return np.exp(slope)", "return slope",
           "its exponential"),
    Mutant("factor_fitted_against_k", "factor_per_step",
           "distance = np.arange(T, -1, -1)", "distance = np.arange(T + 1)",
           "upside down"),
    Mutant("clips_below_threshold", "clip_grad_norm",
           "if total > max_norm:", "if True:",
           "already below"),
    Mutant("per_array_norm", "clip_grad_norm", CLIP_BODY, PER_ARRAY,
           "by its own norm"),
    Mutant("clip_norm_replaces_arrays", "clip_grad_norm",
           "        for g in grads.values():\n            g *= scale\n",
           "        for name in grads:\n            grads[name] = grads[name] * scale\n",
           "was replaced by a new array"),
    Mutant("clip_after_the_update", "train_clipped",
           STEP,
           "        for name in params:\n            params[name] -= lr * grads[name]\n"
           "        norm = clip_grad_norm(grads, np.inf if max_norm is None else max_norm)\n",
           "updated with the unclipped gradient"),
    Mutant("gradient_ascent", "train_clipped",
           "params[name] -= lr * grads[name]", "params[name] += lr * grads[name]",
           "goes uphill"),
    Mutant("params_not_updated_in_place", "train_clipped",
           "        for name in params:\n            params[name] -= lr * grads[name]\n",
           "        params = {name: p - lr * grads[name] for name, p in params.items()}\n",
           "params did not change"),
    # Cheating: borrowing the library's clipping.
    Mutant("calls_rnnkit", "clip_grad_norm",
           CLIP_BODY,
           "    from rnnkit.clip import clip_grad_norm as library_clip\n"
           "    return library_clip(grads, max_norm)\n",
           "No module named 'rnnkit.clip'"),
]
