"""Gated recurrent units: the full GRU (two conventions each for two choices) and the
simplified GRU with an update gate only.

Full GRU, gate blocks in torch's order (r, z, n); W_ih = [W_ir; W_iz; W_in] (3H, I),
W_hh = [W_hr; W_hz; W_hn] (3H, H), b_ih = [b_ir; b_iz; b_in], b_hh = [b_hr; b_hz; b_hn]:

    r = σ(W_ir x + b_ir + W_hr h_{t−1} + b_hr)                     reset gate
    z = σ(W_iz x + b_iz + W_hz h_{t−1} + b_hz)                     update gate
    n = tanh(W_in x + b_in + r ⊙ (W_hn h_{t−1} + b_hn))            reset_after=True
    n = tanh(W_in x + b_in + W_hn (r ⊙ h_{t−1}) + b_hn)            reset_after=False
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}                                 update_weighs="previous"
    h_t = (1 − z) ⊙ h_{t−1} + z ⊙ n                                 update_weighs="candidate"

* ``reset_after=True`` is torch's and cuDNN's GRU (Keras ``reset_after=True``);
  ``reset_after=False`` is Cho et al. (2014), Keras ``reset_after=False`` and most articles.
  They are different models, not two parametrizations of one: torch's reset gate scales
  the *rows* of W_hn h_{t−1} + b_hn (it also gates b_hn), Cho's scales the *entries of h*
  that enter W_hn, i.e. the *columns* of W_hn. Since r depends on x and h, no fixed change
  of weights turns r_j Σ_k W_jk h_k into Σ_k W_jk r_k h_k for all inputs (they agree only
  in degenerate cases such as H = 1 without bias).
* ``update_weighs="previous"`` (torch: z weighs the previous state) and
  ``"candidate"`` (the articles: z weighs the candidate n) are an exact
  reparametrization of each other: since 1 − σ(a) = σ(−a), negating the z rows of
  W_ih, W_hh, b_ih and b_hh turns one into the other.

Simplified GRU (the "memory cell" GRU with one gate), gate order (u, c), the state is c:

    c̃_t = tanh(W_c [c_{t−1}, x_t] + b_c)
    Γ_u = σ(W_u [c_{t−1}, x_t] + b_u)
    c_t = Γ_u ⊙ c̃_t + (1 − Γ_u) ⊙ c_{t−1}

stored like torch's cells: W_ih = [W_ux; W_cx] (2H, I), W_hh = [W_uc; W_cc] (2H, H) (the
concatenated W [c, x] split by columns), b = b_ih + b_hh.
"""

from ..backend import device_of, multiply, namespace, no_autograd, sigmoid, tanh
from .base import Cell, check_choice, gate_blocks, hidden_projection, input_projection, linear_grads, linear_param_grads

__all__ = [
    "gru_step_forward",
    "gru_step_backward",
    "gru_simple_step_forward",
    "gru_simple_step_backward",
    "gru_core_forward",
    "gru_core_backward",
    "gru_simple_core_forward",
    "gru_simple_core_backward",
    "GRU_CELL",
    "GRU_SIMPLE_CELL",
    "gru_variant",
]

UPDATE_WEIGHS = ("previous", "candidate")


def _check_gru(reset_after=True, update_weighs="previous"):
    if not isinstance(reset_after, bool):
        raise TypeError(f"reset_after must be True or False, got {reset_after!r}")
    check_choice("update_weighs", update_weighs, UPDATE_WEIGHS)


# ----------------------------------------------------------------------------- full GRU


def gru_core_forward(xw, h_prev, params, reset_after=True, update_weighs="previous", out=None):
    """One GRU step from the input projection ``xw = W_ih x + b_ih = [x_r, x_z, x_n]``:

        r = σ(x_r + W_hr h_prev + b_hr),   z = σ(x_z + W_hz h_prev + b_hz)
        n = tanh(x_n + r ⊙ (W_hn h_prev + b_hn))        reset_after=True
        n = tanh(x_n + W_hn (r ⊙ h_prev) + b_hn)        reset_after=False
        h = n + z ⊙ (h_prev − n)                        "previous":  (1 − z) ⊙ n + z ⊙ h_prev
        h = h_prev + z ⊙ (n − h_prev)                   "candidate": (1 − z) ⊙ h_prev + z ⊙ n

    The hidden projection is held gate by gate, ``(3, B, H)`` (``(2, B, H)`` for r and z
    with ``reset_after=False``); r and z overwrite their pre-activations in it. ``out`` is an
    array to write h into (a sequence passes its state buffer; by default a new array).
    """
    xp = namespace(xw)
    x_r, x_z, x_n = xw_blocks = gate_blocks(xp, xw, 3)
    h = xp.empty_like(h_prev) if out is None else out
    if reset_after:
        hw = hidden_projection(xp, h_prev, params, 3)  # [W_hr h + b_hr, W_hz h + b_hz, W_hn h + b_hn]
        hn = hw[2]
    else:
        hw = hidden_projection(xp, h_prev, params, 3, blocks=slice(0, 2))  # [W_hr h + b_hr, W_hz h + b_hz]
        hn = None
    rz = hw[:2]
    rz += xw_blocks[:2]
    r, z = sigmoid(xp, rz, out=rz)
    if reset_after:
        n = r * hn
    else:
        n = hidden_projection(xp, r * h_prev, params, 3, blocks=2)  # W_hn (r ⊙ h_prev) + b_hn
    n += x_n
    tanh(xp, n, out=n)
    if update_weighs == "previous":
        multiply(xp, z, h_prev - n, out=h)
        h += n
    else:
        multiply(xp, z, n - h_prev, out=h)
        h += h_prev
    return h, (h_prev, r, z, n, hn, params["weight_hh"], reset_after, update_weighs)


def gru_core_backward(dh, cache, out=None):
    """Backward of :func:`gru_core_forward`; returns ``(dxw, dh_prev)``.

        "previous":  dn = dh ⊙ (1 − z),  dz = dh ⊙ (h_prev − n),  dh_prev ← dh ⊙ z
        "candidate": dn = dh ⊙ z,        dz = dh ⊙ (n − h_prev),  dh_prev ← dh ⊙ (1 − z)
        da_n = dn ⊙ (1 − n²),   da_z = dz ⊙ z ⊙ (1 − z)
        reset_after=True:  dr = da_n ⊙ (W_hn h_prev + b_hn),  dh_prev += W_hhᵀ [da_r, da_z, r ⊙ da_n]
        reset_after=False: d(r⊙h) = W_hnᵀ da_n,  dr = d(r⊙h) ⊙ h_prev,
                           dh_prev += r ⊙ d(r⊙h) + W_h[rz]ᵀ [da_r, da_z]
        da_r = dr ⊙ r ⊙ (1 − r),   dxw = [da_r, da_z, da_n]

    ``out`` is a (B, 3H) array to write ``dxw`` into (by default a new one).
    """
    h_prev, r, z, n, hn, W_hh, reset_after, update_weighs = cache
    xp = namespace(dh)
    H = h_prev.shape[-1]
    if update_weighs == "previous":
        dn, dz, dh_prev = dh * (1.0 - z), dh * (h_prev - n), dh * z
    else:
        dn, dz, dh_prev = dh * z, dh * (n - h_prev), dh * (1.0 - z)
    dxw = xp.empty((dh.shape[0], 3 * H), dtype=dh.dtype, device=device_of(dh)) if out is None else out
    da_r, da_z, da_n = dxw[:, :H], dxw[:, H : 2 * H], dxw[:, 2 * H :]  # [da_r, da_z, da_n] side by side
    multiply(xp, dn, 1.0 - n * n, out=da_n)
    multiply(xp, dz, z * (1.0 - z), out=da_z)
    if reset_after:
        multiply(xp, da_n * hn, r * (1.0 - r), out=da_r)
        dh_prev += (r * da_n) @ W_hh[2 * H :]  # W_hnᵀ (r ⊙ da_n)
    else:
        d_rh = da_n @ W_hh[2 * H :]  # W_hnᵀ da_n
        multiply(xp, d_rh * h_prev, r * (1.0 - r), out=da_r)
        dh_prev += r * d_rh
    dh_prev += dxw[:, : 2 * H] @ W_hh[: 2 * H]  # W_h[rz]ᵀ [da_r, da_z]
    return dxw, dh_prev


def gru_param_grads(params, x, dxw, states_prev, states, core_caches, reset_after=True, update_weighs="previous"):
    """Weight gradients from the rows of all steps (``r`` is stacked from the caches):

        dW_ih = dxwᵀ x,  db_ih = Σ dxw,  dW_h[rz] = [da_r, da_z]ᵀ h_prev,  db_h[rz] = Σ [da_r, da_z]
        reset_after=True:  dW_hn = (r ⊙ da_n)ᵀ h_prev,   db_hn = Σ r ⊙ da_n
        reset_after=False: dW_hn = da_nᵀ (r ⊙ h_prev),   db_hn = Σ da_n
    """
    xp = namespace(dxw)
    h_prev = states_prev[0]
    H = h_prev.shape[-1]
    r = xp.reshape(xp.stack([c[1] for c in core_caches]), h_prev.shape)
    da_rz, da_n = dxw[:, : 2 * H], dxw[:, 2 * H :]
    # the n block of the hidden projection: r ⊙ (W_hn h_prev + b_hn) (torch) or W_hn (r ⊙ h_prev) + b_hn (Cho)
    n_input, n_grad = (h_prev, r * da_n) if reset_after else (r * h_prev, da_n)
    bias_hh = params.get("bias_hh") is not None
    grads = {}
    grads["weight_ih"], db_ih = linear_grads(x, dxw, params.get("bias_ih") is not None)
    (dW_rz, db_rz), (dW_n, db_n) = linear_grads(h_prev, da_rz, bias_hh), linear_grads(n_input, n_grad, bias_hh)
    grads["weight_hh"] = xp.concat([dW_rz, dW_n], axis=0)
    if db_ih is not None:
        grads["bias_ih"] = db_ih
    if bias_hh:
        grads["bias_hh"] = xp.concat([db_rz, db_n], axis=0)
    return grads


@no_autograd
def gru_step_forward(x, h_prev, params, reset_after=True, update_weighs="previous"):
    """One GRU step (gate order r, z, n):

        r = σ(W_ir x + b_ir + W_hr h_prev + b_hr)
        z = σ(W_iz x + b_iz + W_hz h_prev + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h_prev + b_hn))     reset_after=True (torch)
        n = tanh(W_in x + b_in + W_hn (r ⊙ h_prev) + b_hn)     reset_after=False (Cho 2014)
        h = (1 − z) ⊙ n + z ⊙ h_prev                           update_weighs="previous" (torch)
        h = (1 − z) ⊙ h_prev + z ⊙ n                           update_weighs="candidate" (articles)

    ``x (B, I)``, ``h_prev (B, H)``, ``weight_ih (3H, I)``, ``weight_hh (3H, H)``,
    ``bias_ih``/``bias_hh (3H,)`` (optional). Returns ``(h, cache)``.
    """
    _check_gru(reset_after, update_weighs)
    namespace(x, h_prev, *params.values())  # one backend for all
    xw = input_projection(x, params)
    h, core = gru_core_forward(xw, h_prev, params, reset_after, update_weighs)
    return h, (x, h_prev, h, params, core, reset_after, update_weighs)


@no_autograd
def gru_step_backward(dh, cache):
    """Backward of :func:`gru_step_forward` (equations in :func:`gru_core_backward`).

    Returns a dict with keys ``'x'``, ``'h_prev'`` and each parameter name.
    """
    x, h_prev, h, params, core, reset_after, update_weighs = cache
    dxw, dh_prev = gru_core_backward(dh, core)
    grads = gru_param_grads(params, x, dxw, (h_prev,), (h,), [core], reset_after, update_weighs)
    grads["x"] = dxw @ params["weight_ih"]
    grads["h_prev"] = dh_prev
    return grads


GRU_CELL = Cell(
    name="gru",
    title="GRU",
    num_gates=3,
    has_cell_state=False,
    step_forward=gru_step_forward,
    step_backward=gru_step_backward,
    core_forward=gru_core_forward,
    core_backward=gru_core_backward,
    param_grads=gru_param_grads,
    options={"reset_after": True, "update_weighs": "previous"},
    check_options=_check_gru,
    bias_hh_adds=lambda reset_after=True, **options: not reset_after,
)


# ------------------------------------------------------------------------ simplified GRU


def gru_simple_core_forward(xw, c_prev, params, out=None):
    """One simplified-GRU step from ``xw = W_ih x + b_ih = [x_u, x_c]``:

        Γ_u = σ(x_u + W_uc c_prev + b_hu),   c̃ = tanh(x_c + W_cc c_prev + b_hc)
        c = c_prev + Γ_u ⊙ (c̃ − c_prev)       (= Γ_u ⊙ c̃ + (1 − Γ_u) ⊙ c_prev)

    The pre-activations are held gate by gate, ``(2, B, H)``; Γ_u and c̃ overwrite them.
    ``out`` is an array to write c into (a sequence passes its state buffer; by default a
    new array).
    """
    xp = namespace(xw)
    c = xp.empty_like(c_prev) if out is None else out
    a = hidden_projection(xp, c_prev, params, 2)  # [W_uc c_prev + b_hu, W_cc c_prev + b_hc]
    a += gate_blocks(xp, xw, 2)
    a_u, a_c = a
    u = sigmoid(xp, a_u, out=a_u)
    c_tilde = tanh(xp, a_c, out=a_c)
    multiply(xp, u, c_tilde - c_prev, out=c)
    c += c_prev
    return c, (c_prev, u, c_tilde, params["weight_hh"])


def gru_simple_core_backward(dc, cache, out=None):
    """Backward of :func:`gru_simple_core_forward`:

        da_u = dc ⊙ (c̃ − c_prev) ⊙ Γ_u ⊙ (1 − Γ_u),   da_c = dc ⊙ Γ_u ⊙ (1 − c̃²)
        dxw = [da_u, da_c],   dc_prev = dc ⊙ (1 − Γ_u) + W_hhᵀ dxw

    ``out`` is a (B, 2H) array to write ``dxw`` into (by default a new one).
    """
    c_prev, u, c_tilde, W_hh = cache
    xp = namespace(dc)
    H = c_prev.shape[-1]
    dxw = xp.empty((dc.shape[0], 2 * H), dtype=dc.dtype, device=device_of(dc)) if out is None else out
    multiply(xp, dc * (c_tilde - c_prev), u * (1.0 - u), out=dxw[:, :H])  # da_u
    multiply(xp, dc * u, 1.0 - c_tilde * c_tilde, out=dxw[:, H:])  # da_c
    dc_prev = dc * (1.0 - u)
    dc_prev += dxw @ W_hh
    return dxw, dc_prev


def gru_simple_param_grads(params, x, dxw, states_prev, states, core_caches):
    """dW_ih = daᵀ x, dW_hh = daᵀ c_prev, db_ih = db_hh = Σ da (rows of all steps)."""
    return linear_param_grads(params, x, dxw, states_prev[0])


@no_autograd
def gru_simple_step_forward(x, c_prev, params):
    """One step of the simplified GRU (gate order u, c):

        c̃ = tanh(W_c [c_prev, x] + b_c),   Γ_u = σ(W_u [c_prev, x] + b_u)
        c = Γ_u ⊙ c̃ + (1 − Γ_u) ⊙ c_prev

    with W [c_prev, x] stored split as W_ih x + W_hh c_prev and b = b_ih + b_hh:
    ``weight_ih (2H, I)``, ``weight_hh (2H, H)``, ``bias_ih``/``bias_hh (2H,)`` (optional).
    Returns ``(c, cache)``.
    """
    namespace(x, c_prev, *params.values())  # one backend for all
    xw = input_projection(x, params)
    c, core = gru_simple_core_forward(xw, c_prev, params)
    return c, (x, c_prev, c, params, core)


@no_autograd
def gru_simple_step_backward(dc, cache):
    """Backward of :func:`gru_simple_step_forward` (equations in :func:`gru_simple_core_backward`).

    Returns a dict with keys ``'x'``, ``'h_prev'`` (the gradient of c_prev) and each
    parameter name.
    """
    x, c_prev, c, params, core = cache
    dxw, dc_prev = gru_simple_core_backward(dc, core)
    grads = gru_simple_param_grads(params, x, dxw, (c_prev,), (c,), [core])
    grads["x"] = dxw @ params["weight_ih"]
    grads["h_prev"] = dc_prev
    return grads


GRU_SIMPLE_CELL = Cell(
    name="gru_simple",
    title="GRU",
    num_gates=2,
    has_cell_state=False,
    step_forward=gru_simple_step_forward,
    step_backward=gru_simple_step_backward,
    core_forward=gru_simple_core_forward,
    core_backward=gru_simple_core_backward,
    param_grads=gru_simple_param_grads,
)


def gru_variant(simplified=False, reset_after=True, update_weighs="previous"):
    """The cell and its options for a GRU module's arguments: ``(GRU_SIMPLE_CELL, {})`` for the
    simplified GRU (which has no reset gate, so the other two must keep their defaults), else
    ``(GRU_CELL, {"reset_after": …, "update_weighs": …})``."""
    if simplified:
        if reset_after is not True or update_weighs != "previous":
            raise ValueError("the simplified GRU has no reset gate: reset_after and update_weighs do not apply")
        return GRU_SIMPLE_CELL, {}
    return GRU_CELL, {"reset_after": reset_after, "update_weighs": update_weighs}
