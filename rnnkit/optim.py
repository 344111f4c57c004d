r"""Optimizers: SGD (with momentum) and Adam / AdamW, matching ``torch.optim`` step for step.

An optimizer holds a dict of parameter arrays (numpy arrays or torch tensors, e.g. ``head.params``)
and updates them **in place** from a dict of gradients with the same names::

    opt = Adam(model.params, lr=1e-3)
    for batch in batches:
        ...                       # forward, loss, backward: fills model.grads
        opt.step(model.grads)

A name missing from ``grads`` (or mapped to ``None``) is skipped, like a torch parameter whose
``.grad`` is ``None``. ``opt.lr`` may be changed between steps (learning-rate schedules).
Per-parameter state (momentum buffers, moment estimates) lives in ``opt.state[name]`` under torch's names.
"""

from .backend import namespace, no_autograd

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Base class: checks the gradients, then calls ``self.update(name, param, grad)`` for each."""

    def __init__(self, params, lr):
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of arrays (name -> array), got {type(params).__name__}")
        if lr < 0:
            raise ValueError(f"lr={lr}, expected lr >= 0")
        self.params = params
        self.lr = lr
        self.state = {}

    @no_autograd
    def step(self, grads):
        """Update every parameter that has a gradient in ``grads``, in place."""
        for name, grad in grads.items():
            if grad is None:
                continue
            if name not in self.params:
                raise KeyError(f"gradient for unknown parameter {name!r}; parameters are {sorted(self.params)}")
            param = self.params[name]
            if tuple(grad.shape) != tuple(param.shape):
                raise ValueError(f"gradient for {name!r} has shape {tuple(grad.shape)}, expected {tuple(param.shape)}")
            self.update(name, param, grad)

    def update(self, name, param, grad):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with weight decay and (Nesterov) momentum.

    With :math:`g = \nabla E + \lambda\,\theta` (weight decay :math:`\lambda`):

    .. math:: v \leftarrow \mu v + g \ (\text{first step: } v = g), \qquad
              \theta \leftarrow \theta - \eta\, v \quad (\text{Nesterov: } \theta \leftarrow \theta - \eta\,(g + \mu v))

    Without momentum (:math:`\mu = 0`) this is plain :math:`\theta \leftarrow \theta - \eta\, g`.
    Same as ``torch.optim.SGD(params, lr, momentum, weight_decay=..., nesterov=...)`` (dampening 0).
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def update(self, name, param, grad):
        xp = namespace(param, grad)
        g = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum:
            state = self.state.setdefault(name, {})
            if "momentum_buffer" in state:
                buf = state["momentum_buffer"]
                buf *= self.momentum  # v <- mu v + g
                buf += g
            else:
                buf = state["momentum_buffer"] = xp.asarray(g, copy=True)  # first step: v = g
            g = g + self.momentum * buf if self.nesterov else buf
        param -= self.lr * g


class Adam(Optimizer):
    r"""Adam, with L2 weight decay (``decoupled=False``, torch's ``Adam``) or decoupled weight decay
    (``decoupled=True``, torch's ``AdamW``).

    At step :math:`t` with gradient :math:`g`:

    .. math::
        g &\leftarrow g + \lambda\theta \quad (\text{Adam with weight decay}) \quad\text{or}\quad
            \theta \leftarrow (1 - \eta\lambda)\,\theta \quad (\text{AdamW}) \\
        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \hat m &= m / (1 - \beta_1^t), \qquad \hat v = v / (1 - \beta_2^t) \\
        \theta &\leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)

    ``m`` and ``v`` start at zero; the division by :math:`1 - \beta^t` (bias correction) undoes that
    start in the first steps.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(params, lr)
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas={betas}, expected both in [0, 1)")
        self.betas, self.eps, self.weight_decay, self.decoupled = (beta1, beta2), eps, weight_decay, decoupled

    def update(self, name, param, grad):
        xp = namespace(param, grad)
        beta1, beta2 = self.betas
        state = self.state.setdefault(name, {})
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(param), exp_avg_sq=xp.zeros_like(param))
        g = grad
        if self.weight_decay and self.decoupled:
            param *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = grad + self.weight_decay * param
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        param -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay, with torch's defaults (``weight_decay=0.01``);
    the same as ``Adam(..., decoupled=True)``."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)
