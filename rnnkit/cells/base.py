"""What every cell shares: the two projections, their gradients, and the ``Cell`` description.

Every cell computes its gate pre-activations as

    a_t = (W_ih x_t + b_ih) + (W_hh h_{t−1} + b_hh)        (G*H numbers per row)

The first bracket, the *input projection* ``xw_t``, does not depend on the past, so a
sequence computes it for all T steps at once (one big matmul) and each step starts from
``xw_t``: a cell is split into

* ``input_projection(x, params)``                          ``xw = x W_ihᵀ + b_ih``
* ``core_forward(xw, state_prev, params, **options)``      ``-> (state, core_cache)``
* ``core_backward(dstate, core_cache)``                    ``-> (dxw, dstate_prev)``
* ``param_grads(params, x, dxw, states_prev, states, core_caches, **options)``

and the public ``*_step_forward(x, ...)`` is exactly ``input_projection`` followed by
``core_forward``: the code the course shows is the code that runs in a sequence.

The second bracket, the *hidden projection*, is computed gate block by gate block
(:func:`hidden_projection`): ``(G, B, H)`` with block k = ``W_hk h + b_hk``, so that each
gate is one contiguous (B, H) array. ``xw`` and ``dxw`` are rows ``(B, G*H)``, gate blocks
side by side (:func:`gate_blocks` views them as ``(G, B, H)``).

Both core functions take ``out=``: arrays to write the new state (``core_forward``) or
``dxw`` (``core_backward``) into, which a sequence passes so that the states land in its
state buffer and ``dxw_t`` in the rows of dXW without a copy; by default new arrays.

The weight gradients are sums over rows, ``dW_ih = dxwᵀ x``, so a sequence stacks the rows
of all steps and computes each weight gradient with one matmul after the time loop
(``param_grads`` gets ``(N, ·)`` arrays with N = T*B rows; a single step is the case T = 1).
"""

from dataclasses import dataclass, field
from typing import Callable

from ..backend import contiguous, matmul, namespace

__all__ = [
    "Cell",
    "input_projection",
    "hidden_projection",
    "with_transposed_blocks",
    "gate_blocks",
    "linear_grads",
    "linear_param_grads",
    "check_choice",
]

PREPARED = "hidden projection"  # the key under which with_transposed_blocks() stores its blocks


def input_projection(x, params, with_bias_hh=False):
    """xw = W_ih x + b_ih for a batch of rows: ``x (N, I) -> xw (N, G*H)``.

    ``with_bias_hh=True`` adds b_hh too, xw = W_ih x + b_ih + b_hh: a sequence does this
    for cells whose b_hh only adds to the pre-activations (``Cell.bias_hh_adds``), once
    for all steps instead of once per step.
    """
    xw = x @ params["weight_ih"].T
    b = params.get("bias_ih")
    if with_bias_hh and params.get("bias_hh") is not None:
        b = params["bias_hh"] if b is None else b + params["bias_hh"]  # one pass over xw, not two
    if b is not None:
        xw += b  # in place: xw is a new array
    return xw


def gate_blocks(xp, a, G):
    """The G gate blocks of the rows ``a (N, G*H)`` side by side, as a view ``(G, N, H)``
    (block k first): writing into it writes into ``a``."""
    N, GH = a.shape
    return xp.permute_dims(xp.reshape(a, (N, G, GH // G), copy=False), (1, 0, 2))


def with_transposed_blocks(params, G):
    """``params`` plus, prepared for :func:`hidden_projection`, the blocks W_hkᵀ of W_hh as one
    contiguous ``(G, H, H)`` array and b_hh as ``(G, 1, H)`` blocks (None without it). A
    sequence prepares them once for all its steps.

    Why: at the course's sizes (B = 32, H = 128) OpenBLAS multiplies ``h (B, H)`` by a
    contiguous (H, H) block about twice as fast as by the transposed view ``W_hk.T``, and
    G such products beat one ``(B, H) @ (H, G*H)`` product by ~1.4x (bench/run.py's floor).
    """
    xp = namespace(params["weight_hh"])
    GH, H = params["weight_hh"].shape
    W_T = contiguous(xp.permute_dims(xp.reshape(params["weight_hh"], (G, H, H)), (0, 2, 1)))
    b = params.get("bias_hh")
    return {**params, PREPARED: (W_T, None if b is None else xp.reshape(b, (G, 1, H)))}


def hidden_projection(xp, h, params, G, blocks=slice(None), out=None):
    """The hidden projection gate block by gate block: ``(G, B, H)`` with block k

        W_hk h + b_hk          (b_hh left out when ``params["bias_hh"]`` is None)

    ``blocks`` selects some of them (``slice(0, 2)``: the first two; an int: one, ``(B, H)``).
    ``out`` is an array of the result's shape to write into.
    """
    prepared = params.get(PREPARED)
    W_T, b = prepared if prepared is not None else with_transposed_blocks(params, G)[PREPARED]
    a = matmul(xp, h, W_T[blocks], out=out)
    if b is not None:
        a += b[blocks]
    return a


def linear_grads(inputs, d, bias=True):
    """``(dW, db)`` of a linear map a = W inputs + b applied to N rows, from ``d`` = ∂E/∂a:

        dW = dᵀ inputs,    db = Σ_rows d          (db is None with ``bias=False``)

    (dW computed as (inputsᵀ d)ᵀ, which OpenBLAS runs ~1.3x faster in float64).
    """
    xp = namespace(d)
    return contiguous((inputs.T @ d).T), (xp.sum(d, axis=0) if bias else None)


def linear_param_grads(params, x, dxw, h_prev):
    """Gradients of W_ih, b_ih, W_hh, b_hh when a = W_ih x + b_ih + W_hh h_prev + b_hh
    (``x (N, I)``, ``dxw (N, G*H)``, ``h_prev (N, H)``):

        dW_ih = dxwᵀ x    dW_hh = dxwᵀ h_prev    db_ih = db_hh = Σ_rows dxw
    """
    xp = namespace(dxw)
    has_bias = [params.get(name) is not None for name in ("bias_ih", "bias_hh")]
    grads = {}
    grads["weight_ih"], db = linear_grads(x, dxw, any(has_bias))
    grads["weight_hh"], _ = linear_grads(h_prev, dxw, bias=False)
    if has_bias[0]:
        grads["bias_ih"] = db
    if has_bias[1]:
        grads["bias_hh"] = xp.asarray(db, copy=True) if has_bias[0] else db  # two arrays, one sum
    return grads


def check_choice(name, value, allowed):
    """Raise ``ValueError`` naming the allowed values unless ``value`` is one of them."""
    if value not in allowed:
        choices = " or ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be {choices}, got {value!r}")


@dataclass(frozen=True)
class Cell:
    """Description of a cell type, so that sequences and modules are generic over cells.

    ``num_gates`` is G (the weights have G*H rows); ``has_cell_state`` is True when the
    state is a tuple ``(h, c)`` (LSTM) rather than one array ``h``. ``options`` holds the
    cell's keyword options and their defaults; ``check_options`` validates them.
    ``bias_hh_adds(**options)`` is True when b_hh only adds to the pre-activations,
    a = xw + W_hh h + b_hh (not so in torch's GRU, whose reset gate scales b_hn).
    ``title`` names the cell in error messages ("LSTM expects ...").
    """

    name: str
    title: str
    num_gates: int
    has_cell_state: bool
    step_forward: Callable
    step_backward: Callable
    core_forward: Callable
    core_backward: Callable
    param_grads: Callable
    options: dict = field(default_factory=dict)
    check_options: Callable = None
    extra_param_names: Callable = None
    bias_hh_adds: Callable = lambda **options: True

    @property
    def state_names(self):
        """The parts of the state: ``("h", "c")`` for the LSTM, ``("h",)`` otherwise."""
        return ("h", "c") if self.has_cell_state else ("h",)

    def param_names(self, bias=True, **options):
        """Parameter names in torch's order: weight_ih, weight_hh, bias_ih, bias_hh, extras."""
        names = ["weight_ih", "weight_hh"]
        if bias:
            names += ["bias_ih", "bias_hh"]
        if self.extra_param_names is not None:
            names += list(self.extra_param_names(**self.resolve_options(options)))
        return tuple(names)

    def param_shapes(self, input_size, hidden_size, bias=True, **options):
        """``{name: shape}`` of the parameters for the given sizes."""
        GH = self.num_gates * hidden_size
        shapes = {}
        for name in self.param_names(bias, **options):
            shapes[name] = {
                "weight_ih": (GH, input_size),
                "weight_hh": (GH, hidden_size),
                "bias_ih": (GH,),
                "bias_hh": (GH,),
            }.get(name, (hidden_size,))
        return shapes

    def resolve_options(self, options):
        """The cell's options with defaults filled in; unknown or bad options raise."""
        unknown = set(options) - set(self.options)
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise TypeError(f"unknown option(s) {sorted(unknown)} for the {self.name} cell (allowed: {allowed})")
        resolved = {**self.options, **options}
        if self.check_options is not None:
            self.check_options(**resolved)
        return resolved

    def __repr__(self):
        return f"Cell({self.name!r}, G={self.num_gates}, options={self.options})"
