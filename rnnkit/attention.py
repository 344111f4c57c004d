r"""Additive (Bahdanau) attention: at every output step the decoder looks back at all encoder states.

An encoder–decoder without attention hands the decoder one vector, the encoder's final state.
With attention the decoder keeps all encoder states :math:`h_1, \dots, h_S` (the *keys*, here also
the *values*) and, before each step, computes from its previous state :math:`q = h^{\text{dec}}_{t-1}`
(the *query*) how much to read from each of them:

.. math::

    u_s &= W_q\, q + W_k\, h_s + b               && (A \text{ numbers: one hidden layer of size } A)\\
    z_s &= \tanh(u_s), \qquad e_s = v^\top z_s  && (\text{the score of source position } s)\\
    \alpha_s &= \frac{\exp e_s}{\sum_{s'} \exp e_{s'}}  && (\text{attention weights; padded } s\text{: } \alpha_s = 0)\\
    c &= \sum_s \alpha_s\, h_s                  && (\text{the context vector})

(Bahdanau, Cho and Bengio, 2015). Shapes, time-major like the rest of rnnkit: ``query (B, H_q)``,
``keys (S, B, H_k)``, ``W_q (A, H_q)``, ``W_k (A, H_k)``, ``b (A,)``, ``v (A,)``; the weights
``(S, B)`` (they sum to 1 over ``s`` in every column) and ``context (B, H_k)``. ``mask (S, B)``
(1 or True at real source positions) gives padded positions the score :math:`-\infty`.

The backward pass, from :math:`\partial E/\partial c` (and optionally :math:`\partial E/\partial \alpha`):

.. math::

    \frac{\partial E}{\partial \alpha_s} &= h_s^\top \frac{\partial E}{\partial c}, \qquad
    \frac{\partial E}{\partial e_s} = \alpha_s\Big(\frac{\partial E}{\partial \alpha_s}
        - \sum_{s'} \alpha_{s'} \frac{\partial E}{\partial \alpha_{s'}}\Big) \quad (\text{softmax}),\\
    \frac{\partial E}{\partial v} &= \sum_{s,b} \frac{\partial E}{\partial e_s} z_s, \qquad
    \frac{\partial E}{\partial u_s} = \frac{\partial E}{\partial e_s}\, v \odot (1 - z_s^2),\\
    \frac{\partial E}{\partial q} &= W_q^\top \sum_s \frac{\partial E}{\partial u_s}, \qquad
    \frac{\partial E}{\partial W_q} = \sum_{b} \Big(\sum_s \frac{\partial E}{\partial u_s}\Big) q^\top, \qquad
    \frac{\partial E}{\partial b} = \sum_{s,b} \frac{\partial E}{\partial u_s},\\
    \frac{\partial E}{\partial W_k} &= \sum_{s,b} \frac{\partial E}{\partial u_s} h_s^\top, \qquad
    \frac{\partial E}{\partial h_s} = \alpha_s \frac{\partial E}{\partial c} + W_k^\top \frac{\partial E}{\partial u_s}.

Each key reaches the loss twice, as a value (weighted by :math:`\alpha_s`) and through its score;
its gradient is the sum of both paths.

A decoder step with attention (:func:`attention_step_forward`) computes the context from the
previous state and feeds the cell the concatenation :math:`[x_t; c_t]`:

.. math:: c_t, \alpha_t = \mathrm{attend}(h_{t-1}, h_{1:S}), \qquad h_t = \mathrm{cell}([x_t; c_t], h_{t-1}),

so the gradient of :math:`h_{t-1}` also has two parts: through the cell, and through the query.
:func:`attention_decoder_forward` runs it over a whole target sequence (teacher forcing).
"""

import math

import numpy as np

from .backend import device_of, namespace, no_autograd, zeros
from .cells import get_cell
from .losses import softmax, softmax_backward
from .params import Parameters, uniform

__all__ = [
    "ATTENTION_PARAMS",
    "additive_attention_forward",
    "additive_attention_backward",
    "attention_step_forward",
    "attention_step_backward",
    "attention_decoder_forward",
    "attention_decoder_backward",
    "AdditiveAttention",
]

ATTENTION_PARAMS = ("W_q", "W_k", "b", "v")


def _check_attention(query, keys, params, mask):
    """Shapes of the attention's inputs; errors say what was expected and what came."""
    missing = [name for name in ATTENTION_PARAMS if name not in params]
    if missing:
        raise KeyError(f"attention params need {list(ATTENTION_PARAMS)}, missing {missing}")
    W_q, W_k, b, v = (params[name] for name in ATTENTION_PARAMS)
    A = W_q.shape[0]
    if keys.ndim != 3:
        raise ValueError(f"keys must be (S, B, H_k), got shape {tuple(keys.shape)}")
    S, B, H_k = keys.shape
    if tuple(query.shape) != (B, W_q.shape[1]):
        raise ValueError(f"query has shape {tuple(query.shape)}, expected (B, H_q) = {(B, W_q.shape[1])} "
                         f"(B from keys {tuple(keys.shape)}, H_q from W_q {tuple(W_q.shape)})")
    if tuple(W_k.shape) != (A, H_k):
        raise ValueError(f"W_k has shape {tuple(W_k.shape)}, expected (A, H_k) = {(A, H_k)}")
    for name, p in (("b", b), ("v", v)):
        if tuple(p.shape) != (A,):
            raise ValueError(f"{name} has shape {tuple(p.shape)}, expected (A,) = {(A,)}")
    if mask is not None:
        if tuple(mask.shape) != (S, B):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected (S, B) = {(S, B)}")
        if not bool(namespace(mask).all(namespace(mask).any(mask != 0, axis=0))):
            raise ValueError("mask leaves a sequence without any source position to attend to")


@no_autograd
def additive_attention_forward(query, keys, params, mask=None):
    r"""Additive attention (equations in the module docstring).

    ``query (B, H_q)``, ``keys (S, B, H_k)``, ``params`` with ``W_q (A, H_q)``, ``W_k (A, H_k)``,
    ``b (A,)``, ``v (A,)``; ``mask (S, B)`` optional (nonzero = a real position).

    Returns ``(context (B, H_k), weights (S, B), cache)``; the cache is the tuple
    ``(query, keys, params, z, weights)`` with ``z = tanh(u)`` of shape ``(S, B, A)``.
    """
    _check_attention(query, keys, params, mask)
    xp = namespace(query, keys, *(params[name] for name in ATTENTION_PARAMS))
    u = xp.matmul(keys, params["W_k"].T) + (xp.matmul(query, params["W_q"].T) + params["b"])  # (S, B, A)
    z = xp.tanh(u)
    scores = xp.matmul(z, params["v"])  # (S, B)
    if mask is not None:
        scores = xp.where(mask != 0, scores, xp.asarray(-math.inf, dtype=scores.dtype, device=device_of(scores)))
    weights = softmax(scores, axis=0)  # over the source positions
    context = xp.sum(weights[..., None] * keys, axis=0)  # (B, H_k)
    return context, weights, (query, keys, params, z, weights)


@no_autograd
def additive_attention_backward(dcontext, cache, dweights=None):
    r"""Backward of :func:`additive_attention_forward` (equations in the module docstring).

    ``dcontext (B, H_k)`` is :math:`\partial E/\partial c`; ``dweights (S, B)``, optional, a gradient
    that reaches the weights directly (a loss on the alignment). Returns
    ``{"query", "keys", "W_q", "W_k", "b", "v"}``.
    """
    query, keys, params, z, weights = cache
    xp = namespace(dcontext, keys)
    if tuple(dcontext.shape) != tuple(keys.shape[1:]):
        raise ValueError(f"dcontext has shape {tuple(dcontext.shape)}, expected (B, H_k) = {tuple(keys.shape[1:])}")
    S, B, H_k = keys.shape
    A = z.shape[-1]
    dweights_total = xp.sum(keys * dcontext[None], axis=-1)  # ∂E/∂α_s = h_sᵀ ∂E/∂c   (S, B)
    if dweights is not None:
        dweights_total = dweights_total + dweights
    dscores = softmax_backward(dweights_total, weights, axis=0)["logits"]  # (S, B); 0 where masked
    du = dscores[..., None] * params["v"] * (1.0 - z * z)  # (S, B, A)
    du_sum = xp.sum(du, axis=0)  # (B, A): the query enters every u_s
    du_rows = xp.reshape(du, (S * B, A))
    return {
        "query": xp.matmul(du_sum, params["W_q"]),
        "keys": weights[..., None] * dcontext[None] + xp.matmul(du, params["W_k"]),
        "W_q": xp.matmul(du_sum.T, query),
        "W_k": xp.matmul(du_rows.T, xp.reshape(keys, (S * B, H_k))),
        "b": xp.sum(du_sum, axis=0),
        "v": xp.matmul(xp.reshape(z, (S * B, A)).T, xp.reshape(dscores, (S * B,))),
    }


# ---------------------------------------------------------------------------------------------------
# a decoder step with attention, and a whole teacher-forced decoder
# ---------------------------------------------------------------------------------------------------


def _split(params):
    """The attention's and the cell's parameters from one dict."""
    attention = {name: params[name] for name in ATTENTION_PARAMS}
    return attention, {name: p for name, p in params.items() if name not in ATTENTION_PARAMS}


@no_autograd
def attention_step_forward(x, state_prev, keys, params, cell="gru", mask=None, **options):
    r"""One decoder step with attention:

    .. math:: c_t, \alpha_t = \mathrm{attend}(h_{t-1}, h_{1:S}), \qquad h_t = \mathrm{cell}([x_t; c_t], h_{t-1})

    ``x (B, D)`` (the embedded input token), ``state_prev`` the cell's state (``h (B, H)``; LSTM
    ``(h, c)``), ``keys (S, B, H_k)``; ``params`` holds the attention's ``W_q, W_k, b, v`` and the
    cell's ``weight_ih (G*H, D + H_k)``, ``weight_hh``, ``bias_ih``, ``bias_hh``. ``cell`` is a cell
    name or :class:`~rnnkit.cells.Cell`, ``options`` its options.

    Returns ``(state, context (B, H_k), weights (S, B), cache)``.
    """
    cell = get_cell(cell)
    xp = namespace(x, keys)
    h_prev = state_prev[0] if cell.has_cell_state else state_prev
    attention_params, cell_params = _split(params)
    context, weights, attention_cache = additive_attention_forward(h_prev, keys, attention_params, mask)
    state, cell_cache = cell.step_forward(xp.concat([x, context], axis=-1), state_prev, cell_params, **options)
    return state, context, weights, (attention_cache, cell_cache, cell, x.shape[-1])


@no_autograd
def attention_step_backward(dstate, cache):
    """Backward of :func:`attention_step_forward`; ``dstate`` is the gradient of the new state
    (LSTM: ``(dh, dc)``). The cell's input gradient splits into ``x`` and the context; the context's
    goes through the attention; ``h_prev`` adds the cell's and the query's gradient.

    Returns ``{"x", "h_prev" (LSTM also "c_prev"), "keys"}`` and every parameter's gradient.
    """
    attention_cache, cell_cache, cell, D = cache
    g = cell.step_backward(dstate, cell_cache)
    d_input = g.pop("x")
    a = additive_attention_backward(d_input[:, D:], attention_cache)
    g["h_prev"] = g["h_prev"] + a.pop("query")
    g["x"] = d_input[:, :D]
    g.update(a)
    return g


@no_autograd
def attention_decoder_forward(x, state0, keys, params, cell="gru", mask=None, **options):
    r"""The decoder with attention over a whole (teacher-forced) input sequence ``x (T, B, D)``,
    from ``state0`` (the cell's state; LSTM ``(h0, c0)``): :func:`attention_step_forward` at every step.

    Returns ``(hs (T, B, H), state_T, weights (T, S, B), cache)``: the outputs, the final state, and
    the attention weights of every step (row t: where step t looked).
    """
    xp = namespace(x, keys)
    state, hs, weights, caches = state0, [], [], []
    for t in range(x.shape[0]):
        state, _, alpha, cache = attention_step_forward(x[t], state, keys, params, cell, mask, **options)
        hs.append(state[0] if isinstance(state, tuple) else state)
        weights.append(alpha)
        caches.append(cache)
    return xp.stack(hs), state, xp.stack(weights), caches


@no_autograd
def attention_decoder_backward(dhs, dstate_T, cache):
    """BPTT through :func:`attention_decoder_forward`. ``dhs (T, B, H)`` (or ``None``) is the
    gradient of the outputs, ``dstate_T`` that of the final state (or ``None``). The keys and the
    parameters are shared by every step: their gradients are sums over the steps.

    Returns ``{"x" (T, B, D), "h0" (LSTM also "c0"), "keys"}`` and every parameter's gradient.
    """
    caches = cache
    cell = caches[0][2]
    h_like = caches[0][0][0]  # the first query, h0
    xp = namespace(h_like)
    dstate = dstate_T
    if cell.has_cell_state:
        dh, dc = dstate if dstate is not None else (None, None)
        dstate = (zeros(xp, h_like.shape, h_like) if dh is None else dh,
                  zeros(xp, h_like.shape, h_like) if dc is None else dc)
    elif dstate is None:
        dstate = zeros(xp, h_like.shape, h_like)
    total, dx = {}, []
    for t in reversed(range(len(caches))):
        if dhs is not None:
            dstate = (dstate[0] + dhs[t], dstate[1]) if cell.has_cell_state else dstate + dhs[t]
        g = attention_step_backward(dstate, caches[t])
        dx.append(g.pop("x"))
        dstate = (g.pop("h_prev"), g.pop("c_prev")) if cell.has_cell_state else g.pop("h_prev")
        for name, value in g.items():
            total[name] = value if name not in total else total[name] + value
    grads = {"x": xp.stack(dx[::-1])}
    if cell.has_cell_state:
        grads["h0"], grads["c0"] = dstate
    else:
        grads["h0"] = dstate
    grads.update(total)
    return grads


# ---------------------------------------------------------------------------------------------------
# the attention as a layer
# ---------------------------------------------------------------------------------------------------


class AdditiveAttention(Parameters):
    r"""Additive attention as a layer: ``params`` ``W_q (A, H_q)``, ``W_k (A, H_k)``, ``b (A,)``,
    ``v (A,)`` drawn from U(−1/√fan_in, 1/√fan_in) (fan_in: H_q for W_q and b, H_k for W_k, A for
    v, as ``torch.nn.Linear`` would), from ``seed``, as numpy arrays of ``dtype``.

    ``context, weights = att(query, keys, mask=None)``; ``att.backward(dcontext)`` sets ``grads`` and
    returns ``(dquery, dkeys)``.
    """

    def __init__(self, query_size, key_size, attention_size, *, seed=None, dtype="float64"):
        rng = np.random.default_rng(seed)
        params = {}
        for name, shape, fan_in in (("W_q", (attention_size, query_size), query_size),
                                    ("W_k", (attention_size, key_size), key_size),
                                    ("b", (attention_size,), query_size),
                                    ("v", (attention_size,), attention_size)):
            params.update(uniform(rng, 1.0 / math.sqrt(fan_in), {name: shape}, dtype))
        self._set_params(params)

    def forward(self, query, keys, mask=None):
        context, weights, self._cache = additive_attention_forward(query, keys, self.params, mask)
        return context, weights

    def backward(self, dcontext, dweights=None):
        g = additive_attention_backward(dcontext, self._forward_cache(), dweights)
        self.grads = {name: g[name] for name in self.params}
        return g["query"], g["keys"]
