r"""Embeddings: a lookup table of learned vectors, one row per token id.

Looking up row :math:`i` of :math:`W` is the same as multiplying a one-hot vector by :math:`W`:

.. math:: e = W^\top \mathrm{onehot}(i) = W_{i,:}

so the backward pass adds the upstream gradient of every position into the row of its id
(a scatter-add): :math:`\partial E/\partial W_{i,:} = \sum_{n:\ \mathrm{ids}_n = i} \partial E/\partial e_n`.
"""

import numpy as np

from .backend import device_of, namespace, no_autograd, resolve_dtype
from .params import Parameters

__all__ = ["one_hot", "embedding_forward", "embedding_backward", "Embedding"]


@no_autograd
def one_hot(ids, num_classes, dtype=None):
    r"""One-hot encoding: an array of shape ``ids.shape + (num_classes,)`` with
    :math:`\mathrm{onehot}(i)_k = [k = i]`.

    ``dtype`` defaults to the backend's default float (float64 for numpy, float32 for torch).
    Ids outside ``[0, num_classes)`` give all-zero rows.
    """
    xp = namespace(ids)
    if dtype is None:
        dtype = xp.__array_namespace_info__().default_dtypes(device=device_of(ids))["real floating"]
    classes = xp.arange(num_classes, device=device_of(ids))
    return xp.astype(ids[..., None] == classes, dtype)


def _check_ids(xp, ids, num_embeddings):
    if not xp.isdtype(ids.dtype, "integral"):
        raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
    bad = (ids < 0) | (ids >= num_embeddings)
    if bool(xp.any(bad)):
        raise ValueError(
            f"id {int(ids[bad][0])} is out of range: the table has {num_embeddings} rows, "
            f"so ids must lie in [0, {num_embeddings - 1}]"
        )


def _normalize_padding_idx(padding_idx, num_embeddings):
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"padding_idx={padding_idx} is out of range for {num_embeddings} embeddings")
    return padding_idx % num_embeddings  # negative values count from the end, like torch


@no_autograd
def embedding_forward(ids, W, padding_idx=None):
    r"""Look up the rows of ``W`` (shape ``(num_embeddings, D)``) for integer ``ids`` of any shape.

    .. math:: \mathrm{out}[\ldots] = W_{\mathrm{ids}[\ldots],:}

    ``out`` has shape ``ids.shape + (D,)``; e.g. ``(T, B)`` ids give ``(T, B, D)``.
    ``padding_idx`` only matters for the backward pass (that row receives no gradient), as in torch.
    Returns ``(out, cache)``.
    """
    xp = namespace(ids, W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-d table (num_embeddings, D), got shape {tuple(W.shape)}")
    num_embeddings, dim = W.shape
    _check_ids(xp, ids, num_embeddings)
    padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)
    rows = xp.take(W, xp.reshape(ids, (-1,)), axis=0)
    out = xp.reshape(rows, tuple(ids.shape) + (dim,))
    cache = (ids, tuple(W.shape), padding_idx)
    return out, cache


@no_autograd
def embedding_backward(dout, cache):
    r"""Gradient of the table: scatter-add ``dout`` into the rows of the ids that produced it.

    .. math:: \frac{\partial E}{\partial W_{i,:}}
              = \sum_{n:\ \mathrm{ids}_n = i} \frac{\partial E}{\partial \mathrm{out}_n}

    A repeated id accumulates the gradients of all its positions; the ``padding_idx`` row gets zero.
    The sum is computed as :math:`\mathrm{onehot}(\mathrm{ids})^\top\, \mathrm{dout}`, a block of
    positions at a time to bound memory. Returns ``{"W": dW}`` (integer ids have no gradient).
    """
    ids, (num_embeddings, dim), padding_idx = cache
    xp = namespace(dout)
    if tuple(dout.shape) != tuple(ids.shape) + (dim,):
        raise ValueError(f"dout has shape {tuple(dout.shape)}, expected {tuple(ids.shape) + (dim,)}")
    flat_ids = xp.reshape(ids, (-1,))
    flat_dout = xp.reshape(dout, (-1, dim))
    dW = xp.zeros((num_embeddings, dim), dtype=dout.dtype, device=device_of(dout))
    block = max(1, 2**22 // num_embeddings)  # at most ~4M one-hot entries at once
    for start in range(0, flat_ids.shape[0], block):
        onehot = one_hot(flat_ids[start : start + block], num_embeddings, dtype=dout.dtype)  # (n, V)
        dW += onehot.T @ flat_dout[start : start + block]
    if padding_idx is not None:
        dW[padding_idx, :] = 0.0
    return {"W": dW}


class Embedding(Parameters):
    r"""A learned lookup table, like ``torch.nn.Embedding``.

    ``params["weight"]`` has shape ``(num_embeddings, embedding_dim)``, initialised from
    :math:`\mathcal N(0, 1)` like torch (from ``seed``, as a numpy array of ``dtype``; ``.to("torch")`` moves
    it), with the ``padding_idx`` row (if any) set to zero.
    ``forward(ids)`` returns the vectors; ``backward(dout)`` stores ``grads["weight"]`` (replacing the
    previous value) and returns ``None``, since integer ids have no gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, *, seed=None, dtype="float64"):
        rng = np.random.default_rng(seed)
        self.padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)
        weight = rng.standard_normal((num_embeddings, embedding_dim)).astype(resolve_dtype(dtype, "numpy"))
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0.0
        self._set_params({"weight": weight})

    def forward(self, ids):
        out, self._cache = embedding_forward(ids, self.params["weight"], self.padding_idx)
        return out

    def backward(self, dout):
        self.grads = {"weight": embedding_backward(dout, self._forward_cache())["W"]}
        return None
