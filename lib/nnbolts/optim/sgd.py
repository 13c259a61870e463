r"""Stochastic gradient descent with momentum, in torch's form and in the textbook's velocity form.

Explained in: book/optimizers.md (and book/gradient_descent.md for plain gradient descent).
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._base import RuleOptimizer, check_lr, check_weight_decay, pure_step

__all__ = [
    "SGD", "sgd_init", "sgd_step",
    "SGDVelocity", "sgd_velocity_init", "sgd_velocity_step",
]


# --------------------------------------------------------------------------------------------
# torch's form: a buffer of accumulated gradients, multiplied by the learning rate at the end
# --------------------------------------------------------------------------------------------

def _check_sgd(lr, momentum, dampening, weight_decay, nesterov):
    check_lr(lr)
    check_number("momentum value", momentum, low=0.0)
    check_number("dampening value", dampening)
    check_weight_decay(weight_decay)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def _sgd_(param, grad, state, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """In-place SGD kernel: the math of :func:`sgd_step`."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)              # g ← g + λθ  (L2 penalty)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            # torch starts the buffer at the first gradient, not at zero
            buf = state["momentum_buffer"] = g.detach().clone()
        else:
            buf.mul_(momentum).add_(g, alpha=1 - dampening)  # b ← μb + (1−d)g, d = dampening
        g = g.add(buf, alpha=momentum) if nesterov else buf  # Nesterov: g + μb
    param.add_(g, alpha=-lr)                              # θ ← θ − η g


def _sgd_many_(params, grads, bufs, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """Multi-tensor SGD: the same rule as :func:`_sgd_` with one kernel launch per operation.

    ``bufs`` holds each parameter's momentum buffer or ``None``; new buffers are written into it.
    Gradients are never modified (torch's own fast path may add into them under Nesterov).
    """
    g = torch._foreach_neg(grads) if maximize else list(grads)
    if weight_decay != 0:
        g = torch._foreach_add(g, params, alpha=weight_decay)
    if momentum != 0:
        old = [i for i, b in enumerate(bufs) if b is not None]
        if old:
            old_bufs = [bufs[i] for i in old]
            torch._foreach_mul_(old_bufs, momentum)                       # b ← μb
            torch._foreach_add_(old_bufs, [g[i] for i in old], alpha=1 - dampening)
        for i, buf in enumerate(bufs):
            if buf is None:
                bufs[i] = g[i].detach().clone()
        g = torch._foreach_add(g, bufs, alpha=momentum) if nesterov else list(bufs)
    torch._foreach_add_(params, g, alpha=-lr)


def sgd_init(param: torch.Tensor) -> dict:
    """State of SGD for one tensor: empty. The momentum buffer is created by the first step,
    from the first gradient (torch's convention)."""
    return {}


def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False):
    r"""One SGD update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), learning rate :math:`\eta`, momentum
    :math:`\mu`, dampening :math:`d` (``dampening``), weight decay :math:`\lambda` and momentum
    buffer :math:`b`:

    .. math::
        g &\leftarrow g + \lambda\theta \\
        b &\leftarrow \begin{cases} g & \text{first step} \\
                                    \mu b + (1-d) g & \text{after} \end{cases} \\
        g &\leftarrow g + \mu b \ \text{(Nesterov)} \quad\text{or}\quad g \leftarrow b \\
        \theta &\leftarrow \theta - \eta g

    Without momentum the step is :math:`\eta g`. Equivalent torch call:
    ``torch.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening,
    weight_decay=weight_decay, nesterov=nesterov, maximize=maximize).step()``. The state key
    ``"momentum_buffer"`` is torch's.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = sgd_step(p, g, sgd_init(p), lr=0.1, momentum=0.9)
        >>> p, s["momentum_buffer"]
        (tensor([0.9500]), tensor([0.5000]))
    """
    _check_sgd(lr, momentum, dampening, weight_decay, nesterov)
    return pure_step(_sgd_, param, grad, state, dict(
        lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
        nesterov=nesterov, maximize=maximize))


class SGD(RuleOptimizer):
    """Stochastic gradient descent, optionally with momentum; a drop-in for ``torch.optim.SGD``.

    The rule is :func:`sgd_step`. ``foreach=None`` picks the multi-tensor path where torch picks
    its own (CUDA); ``True``/``False`` force it.
    """

    has_foreach = True

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None):
        _check_sgd(lr, momentum, dampening, weight_decay, nesterov)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach))

    @staticmethod
    def _hp(group):
        return dict(lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                    weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                    maximize=group["maximize"])

    def _init_state(self, param, group):
        return sgd_init(param)

    def _update(self, param, grad, state, group):
        _sgd_(param, grad, state, **self._hp(group))

    def _update_many(self, params, grads, states, group):
        hp = self._hp(group)
        if hp["momentum"] == 0:
            _sgd_many_(params, grads, [None] * len(params), **hp)
            return
        bufs = [s.get("momentum_buffer") for s in states]
        _sgd_many_(params, grads, bufs, **hp)
        for state, buf in zip(states, bufs):
            state["momentum_buffer"] = buf


# --------------------------------------------------------------------------------------------
# the textbook's velocity form (Deep Learning book, algorithms 8.2 and 8.3)
# --------------------------------------------------------------------------------------------

def _check_velocity(lr, momentum):
    check_lr(lr)
    check_number("momentum value", momentum, low=0.0, high=1.0, high_open=True)


def _sgd_velocity_(param, grad, state, *, lr, momentum, nesterov):
    """In-place kernel of :func:`sgd_velocity_step`."""
    v = state["velocity"]
    v.mul_(momentum).add_(grad, alpha=-lr)                 # b̃ ← μb̃ − ηg  (v is b̃)
    if nesterov:
        # θ stored here is the look-ahead point θ + μb̃ of algorithm 8.3, where the gradient was
        # taken; moving it to the next look-ahead point gives θ ← θ + μb̃ − ηg.
        param.add_(v, alpha=momentum).add_(grad, alpha=-lr)
    else:
        param.add_(v)                                      # θ ← θ + b̃


def sgd_velocity_init(param: torch.Tensor) -> dict:
    """State of the velocity form: ``{"velocity": 0}`` shaped like ``param``."""
    return {"velocity": torch.zeros_like(param, memory_format=torch.preserve_format)}


def sgd_velocity_step(param, grad, state, *, lr=1e-2, momentum=0.9, nesterov=False):
    r"""One momentum update in the velocity form of the Deep Learning book (algorithm 8.2),
    with velocity :math:`\tilde b` (``state["velocity"]``), momentum :math:`\mu` and learning
    rate :math:`\eta` (the Deep Learning book writes :math:`v`, :math:`\alpha` and
    :math:`\epsilon` for them):

    .. math::
        \tilde b \leftarrow \mu \tilde b - \eta g, \qquad \theta \leftarrow \theta + \tilde b

    With ``nesterov=True`` (algorithm 8.3) the gradient must be the one at the look-ahead point
    :math:`\tilde\theta = \theta + \mu \tilde b`. Storing the look-ahead point as the parameter
    (the usual reparameterisation, Sutskever et al. 2013) turns it into
    :math:`\tilde b \leftarrow \mu \tilde b - \eta g,\
    \theta \leftarrow \theta + \mu \tilde b - \eta g`,
    which needs only the gradient at the stored parameter.

    With a constant learning rate this is exactly
    ``torch.optim.SGD(momentum=momentum, dampening=0)`` (torch's buffer is
    :math:`b = -\tilde b/\eta`); the two part ways when the learning rate changes, because torch
    applies the *current* rate to the whole buffer while the velocity remembers each step's
    rate. No torch equivalent otherwise. Explained in: book/optimizers.md.

    Example::

        >>> p = torch.tensor([1.0])
        >>> p, s = sgd_velocity_step(p, torch.tensor([0.5]), sgd_velocity_init(p), lr=0.1)
        >>> p, s["velocity"]
        (tensor([0.9500]), tensor([-0.0500]))
    """
    _check_velocity(lr, momentum)
    return pure_step(_sgd_velocity_, param, grad, state,
                     dict(lr=lr, momentum=momentum, nesterov=nesterov))


class SGDVelocity(RuleOptimizer):
    """Momentum SGD in the textbook's velocity form; the rule is :func:`sgd_velocity_step`."""

    def __init__(self, params, lr=1e-2, momentum=0.9, nesterov=False):
        _check_velocity(lr, momentum)
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    def _init_state(self, param, group):
        return sgd_velocity_init(param)

    def _update(self, param, grad, state, group):
        _sgd_velocity_(param, grad, state, lr=group["lr"], momentum=group["momentum"],
                       nesterov=group["nesterov"])
