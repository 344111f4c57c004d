r"""Losses: softmax cross-entropy and squared error.

Every loss returns ``(loss, grads)``: the scalar loss (a 0-d array of the input's backend, ``float(loss)``
gives a number) and, like every backward in rnnkit, a dict of gradients named after what they are the
gradient of: ``grads["logits"]`` (cross-entropy) or ``grads["y"]`` (squared error), ready to be fed
backwards. Targets are data and have no gradient.

A sequence model produces one output per time step and the course adds one loss per step into the
total, :math:`E = \sum_t E_t`. That is ``reduction="sum"`` (the default) over a ``(T, B, V)`` array of
logits; ``reduction="mean"`` divides by the number of terms that count (positions for cross-entropy,
scalar entries for squared error), which is what torch's losses do by default.
"""

from .backend import device_of, namespace, no_autograd

__all__ = ["softmax", "softmax_backward", "log_softmax", "cross_entropy", "squared_error"]

_REDUCTIONS = ("sum", "mean")


@no_autograd
def softmax(logits, axis=-1):
    r"""Softmax along ``axis``, computed stably.

    .. math:: p_i = \frac{e^{z_i - m}}{\sum_j e^{z_j - m}}, \qquad m = \max_j z_j

    Subtracting the maximum :math:`m` changes nothing mathematically but keeps :math:`e^{(\cdot)}`
    from overflowing.
    """
    xp = namespace(logits)
    shifted = logits - xp.max(logits, axis=axis, keepdims=True)
    exp = xp.exp(shifted)
    return exp / xp.sum(exp, axis=axis, keepdims=True)


@no_autograd
def softmax_backward(dprobs, probs, axis=-1):
    r"""Backward pass of :func:`softmax`: given :math:`\partial E/\partial p` and :math:`p`, return
    :math:`\partial E/\partial z`.

    .. math:: \frac{\partial E}{\partial z_i} = p_i \Big(\frac{\partial E}{\partial p_i}
              - \sum_j \frac{\partial E}{\partial p_j} p_j\Big)

    Returns ``{"logits": dz}``. (When the softmax feeds a cross-entropy, use :func:`cross_entropy` on the
    logits instead: the combined gradient is simply :math:`p - \mathrm{onehot}(c)`.)
    """
    xp = namespace(dprobs, probs)
    return {"logits": probs * (dprobs - xp.sum(dprobs * probs, axis=axis, keepdims=True))}


@no_autograd
def log_softmax(logits, axis=-1):
    r"""Logarithm of :func:`softmax`, computed stably: :math:`\log p_i = (z_i - m) - \log\sum_j e^{z_j - m}`."""
    xp = namespace(logits)
    shifted = logits - xp.max(logits, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}, expected one of {_REDUCTIONS}")


@no_autograd
def cross_entropy(logits, targets, ignore_index=None, reduction="sum"):
    r"""Softmax cross-entropy of integer targets, and its gradient with respect to the logits.

    ``logits`` has shape ``(..., V)`` (e.g. ``(T, B, V)``: one score per class at every step),
    ``targets`` holds class indices of shape ``(...)``. At one position with logits :math:`z` and
    target class :math:`c`:

    .. math:: p = \mathrm{softmax}(z), \qquad E_t = -\log p_c, \qquad
              \frac{\partial E_t}{\partial z} = p - \mathrm{onehot}(c)

    and the total is :math:`E = \sum_t E_t` (``reduction="sum"``), or :math:`E = \frac1N\sum_t E_t` over
    the :math:`N` positions that count (``reduction="mean"``; the gradient is divided by :math:`N` too).

    Positions whose target equals ``ignore_index`` (e.g. padding) contribute neither loss nor gradient
    and are not counted in :math:`N`, exactly like ``torch.nn.functional.cross_entropy``. If every position
    is ignored, the mean is ``nan`` (0/0), as in torch.

    Returns ``(loss, {"logits": dlogits})``: a 0-d array and the gradient, shaped like ``logits``.
    """
    xp = namespace(logits, targets)
    _check_reduction(reduction)
    if logits.ndim < 1:
        raise ValueError("logits must have a class axis (shape (..., V)), got a 0-d array")
    if tuple(targets.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"targets have shape {tuple(targets.shape)}, expected {tuple(logits.shape[:-1])} "
            f"(the shape of logits {tuple(logits.shape)} without its last, class axis)"
        )
    if not xp.isdtype(targets.dtype, "integral"):
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    num_classes = logits.shape[-1]

    if ignore_index is None:
        keep = xp.ones(targets.shape, dtype=logits.dtype, device=device_of(logits))
    else:
        keep = xp.astype(targets != ignore_index, logits.dtype)  # 1 where the position counts, else 0
    out_of_range = (keep != 0) & ((targets < 0) | (targets >= num_classes))
    if bool(xp.any(out_of_range)):
        bad = int(targets[out_of_range][0])
        also = "" if ignore_index is None else f" (or equal ignore_index={ignore_index})"
        raise ValueError(
            f"target {bad} is out of range: logits have {num_classes} classes, "
            f"so targets must lie in [0, {num_classes - 1}]{also}"
        )

    log_probs = log_softmax(logits, axis=-1)
    classes = xp.arange(num_classes, device=device_of(logits))
    target_onehot = xp.astype(targets[..., None] == classes, logits.dtype)  # onehot(c); all zeros where ignored
    losses = -xp.sum(target_onehot * log_probs, axis=-1) * keep  # E_t at every position
    loss = xp.sum(losses)
    dlogits = (xp.exp(log_probs) - target_onehot) * keep[..., None]  # p - onehot(c)
    if reduction == "mean":
        n = xp.sum(keep)
        loss = loss / n
        dlogits = dlogits / n
    return loss, {"logits": dlogits}


@no_autograd
def squared_error(y, target, reduction="sum", mask=None):
    r"""Squared error with the factor one half, and its gradient with respect to ``y``.

    .. math:: E = \tfrac12 \sum_{t} \sum_k m_t\,(y_{t,k} - d_{t,k})^2, \qquad
              \frac{\partial E}{\partial y_{t,k}} = m_t\,(y_{t,k} - d_{t,k})

    The :math:`\tfrac12` is a convention chosen so that the gradient is exactly the error
    :math:`y - d` (torch's ``mse_loss`` has no half: ``2 * E`` equals ``mse_loss(..., reduction="sum")``).

    ``mask`` (optional, 0/1 or bool) covers the leading axes of ``y``, e.g. ``(T, B)`` for ``y`` of shape
    ``(T, B, K)``: masked-out steps contribute neither loss nor gradient. ``reduction="mean"`` divides by
    the number of scalar entries that count (all of ``y.size`` without a mask), so that
    ``2 * E == mse_loss(y, d)`` (torch's default mean).

    Returns ``(loss, {"y": dy})``.
    """
    xp = namespace(y, target, mask)
    _check_reduction(reduction)
    if tuple(y.shape) != tuple(target.shape):
        raise ValueError(f"target has shape {tuple(target.shape)}, expected {tuple(y.shape)} (the shape of y)")
    error = y - target
    if mask is None:
        weights = xp.ones(y.shape, dtype=y.dtype, device=device_of(y))
    else:
        if tuple(mask.shape) != tuple(y.shape[: mask.ndim]):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}, expected the leading axes of y, {tuple(y.shape[: mask.ndim])}"
            )
        trailing = (1,) * (y.ndim - mask.ndim)
        weights = xp.reshape(xp.astype(mask, y.dtype), tuple(mask.shape) + trailing) * xp.ones_like(y)
    loss = 0.5 * xp.sum(weights * error * error)
    dy = weights * error
    if reduction == "mean":
        n = xp.sum(weights)
        loss = loss / n
        dy = dy / n
    return loss, {"y": dy}
