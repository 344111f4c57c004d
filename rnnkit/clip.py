r"""Gradient clipping, the standard guard against exploding gradients in backpropagation through time.

Both functions modify the gradients **in place** (like torch's ``clip_grad_norm_`` / ``clip_grad_value_``)
and accept a dict of gradients (e.g. ``model.grads``) or any iterable of arrays; ``None`` entries are
skipped.
"""

from .backend import namespace, no_autograd

__all__ = ["clip_grad_norm", "clip_grad_value"]


def _arrays(grads):
    values = grads.values() if isinstance(grads, dict) else grads
    return [g for g in values if g is not None]


@no_autograd
def clip_grad_norm(grads, max_norm):
    r"""Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    .. math:: \|g\| = \sqrt{\textstyle\sum_{\text{arrays}} \sum_{\text{entries}} g^2}, \qquad
              g \leftarrow g \cdot \min\Big(1, \frac{\text{max\_norm}}{\|g\| + 10^{-6}}\Big)

    The direction of the overall gradient is kept; only its length shrinks. Exactly
    ``torch.nn.utils.clip_grad_norm_`` (the :math:`10^{-6}` included). Returns the total norm *before*
    clipping, as a 0-d array (``float(...)`` for a number); 0.0 when there are no gradients.
    """
    arrays = _arrays(grads)
    if max_norm < 0:
        raise ValueError(f"max_norm={max_norm}, expected max_norm >= 0")
    if not arrays:
        return 0.0
    xp = namespace(*arrays)
    total_norm = xp.sqrt(sum(xp.sum(g * g) for g in arrays))
    scale = xp.clip(max_norm / (total_norm + 1e-6), max=1.0)  # 1.0 (no change) when already short enough
    for g in arrays:
        g *= scale
    return total_norm


@no_autograd
def clip_grad_value(grads, clip_value):
    r"""Clip every gradient entry into :math:`[-c, c]`: :math:`g \leftarrow \min(\max(g, -c), c)`.

    Entry-wise, so the direction of the gradient can change. Same as ``torch.nn.utils.clip_grad_value_``.
    """
    if clip_value < 0:
        raise ValueError(f"clip_value={clip_value}, expected clip_value >= 0")
    for g in _arrays(grads):
        g[...] = namespace(g).clip(g, min=-clip_value, max=clip_value)
