"""Typical mistakes in exercise 4 (vanishing and exploding gradients, clipping) and what the feedback must say."""
from course_helpers import Mutant

JACOBIAN = 'return (1 - h**2)[:, :, None] * params["weight_hh"][None, :, :]'

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

MUTANTS = [
    Mutant("jacobian_without_derivative", "step_jacobian",
           JACOBIAN, 'return np.ones_like(h)[:, :, None] * params["weight_hh"][None, :, :]',
           "the derivative factor 1 − h_t² is missing"),
    Mutant("jacobian_transposed", "step_jacobian",
           JACOBIAN, 'return params["weight_hh"].T[None, :, :] * (1 - h**2)[:, None, :]',
           "they are transposed"),
    Mutant("frobenius_norm", "jacobian_norms",
           "norms[k] = np.linalg.norm(P, ord=2, axis=(1, 2))", "norms[k] = np.linalg.norm(P, axis=(1, 2))",
           "Frobenius norm"),
    Mutant("product_in_wrong_order", "jacobian_norms",
           "P = P @ J[k] ", "P = J[k] @ P ",
           "multiplied in the wrong order"),
    Mutant("radius_without_modulus", "spectral_radius",
           "return float(np.max(np.abs(np.linalg.eigvals(W))))",
           "return float(np.max(np.linalg.eigvals(W).real))",
           "largest real eigenvalue"),
    Mutant("clips_below_threshold", "clip_grad_norm",
           "if total > max_norm:", "if True:",
           "already below"),
    Mutant("per_array_norm", "clip_grad_norm", CLIP_BODY, PER_ARRAY,
           "by its own norm"),
    Mutant("clip_norm_replaces_arrays", "clip_grad_norm",
           "        for g in grads.values():\n            g *= scale\n",
           "        for name in grads:\n            grads[name] = grads[name] * scale\n",
           "was replaced by a new array"),
    Mutant("norm_not_returned", "clip_grad_norm",
           "    return total\n", "",
           "returned None"),
    Mutant("clip_value_not_in_place", "clip_grad_value",
           "np.clip(g, -clip_value, clip_value, out=g)", "g = np.clip(g, -clip_value, clip_value)",
           "did not change"),
    # Cheating: borrowing the library's clipping.
    Mutant("calls_rnnkit", "clip_grad_value",
           "np.clip(g, -clip_value, clip_value, out=g)",
           "from rnnkit.clip import clip_grad_value as library_clip\n"
           "    library_clip(grads, clip_value)",
           "No module named 'rnnkit.clip'"),
]
