r"""RMSProp: AdaGrad with a leaky average of squared gradients, in torch's form and with the
Deep Learning book's variants (ϵ inside the root, Nesterov momentum) as options.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._base import RuleOptimizer, check_eps, check_lr, check_state, check_weight_decay, pure_step

__all__ = ["RMSprop", "rmsprop_init", "rmsprop_step"]


def _check_rmsprop(lr, alpha, eps, weight_decay, momentum, nesterov):
    check_lr(lr)
    check_eps(eps)
    check_number("momentum value", momentum, low=0.0)
    check_weight_decay(weight_decay)
    # torch only asks alpha >= 0; above 1 the weight 1 − alpha of g² turns negative, the average
    # can go below zero and its root is NaN, so nnbolts refuses it up front
    check_number("alpha value", alpha, low=0.0, high=1.0)
    if nesterov and momentum <= 0:
        raise ValueError("Nesterov momentum requires a momentum > 0")


def _buffer(state, key, param):
    """``state[key]``, created as zeros if absent.

    :func:`rmsprop_init` makes every buffer the options need, as torch does; this only matters
    when momentum or centering is switched on after the state was made (torch fails there).
    """
    buf = state.get(key)
    if buf is None:
        buf = state[key] = torch.zeros_like(param, memory_format=torch.preserve_format)
    return buf


def _rmsprop_(param, grad, state, *, lr, alpha, eps, weight_decay, momentum, centered, maximize,
              eps_inside_sqrt, nesterov):
    """In-place RMSProp kernel: the math of :func:`rmsprop_step`."""
    state["step"] += 1
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)                 # g ← g + λθ  (L2 penalty)
    # r is the docstring's v (square_avg); its ρ is the argument alpha
    r = state["square_avg"]
    r.mul_(alpha).addcmul_(g, g, value=1 - alpha)            # v ← ρv + (1−ρ) g⊙g
    if centered:
        m = _buffer(state, "grad_avg", param)
        m.lerp_(g, 1 - alpha)                                # m ← ρm + (1−ρ) g
        var = r.addcmul(m, m, value=-1)                      # v − m⊙m, a fresh tensor
        denom = var.add_(eps).sqrt_() if eps_inside_sqrt else var.sqrt_().add_(eps)
    elif eps_inside_sqrt:
        denom = r.add(eps).sqrt_()                           # √(v + ϵ)   (the book's form)
    else:
        denom = r.sqrt().add_(eps)                           # √v + ϵ     (torch's form)
    if momentum > 0:
        b = _buffer(state, "momentum_buffer", param)
        b.mul_(momentum).addcdiv_(g, denom)                  # b ← μb + g/d
        if nesterov:
            # the parameter is the look-ahead point θ + μb̃ of algorithm 8.6, with velocity
            # b̃ = −ηb; moving to the next look-ahead point is θ ← θ − η(μb + g/d)
            param.addcdiv_(g, denom, value=-lr).add_(b, alpha=-lr * momentum)
        else:
            param.add_(b, alpha=-lr)                         # θ ← θ − ηb
    else:
        param.addcdiv_(g, denom, value=-lr)                  # θ ← θ − η g/d


def rmsprop_init(param: torch.Tensor, *, momentum=0.0, centered=False) -> dict:
    """State of RMSprop for one tensor, with torch's keys: ``step`` (an int), ``square_avg``,
    and ``momentum_buffer`` if ``momentum > 0`` and ``grad_avg`` if ``centered``, all zeros
    shaped like ``param``."""
    check_number("momentum value", momentum, low=0.0)
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)  # noqa: E731
    state = {"step": 0, "square_avg": zeros()}
    if momentum > 0:
        state["momentum_buffer"] = zeros()
    if centered:
        state["grad_avg"] = zeros()
    return state


def rmsprop_step(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, maximize=False, eps_inside_sqrt=False,
                 nesterov=False):
    r"""One RMSprop update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), learning rate :math:`\eta`, decay
    :math:`\rho` (torch's ``alpha``), momentum :math:`\mu` and weight decay :math:`\lambda`,
    torch's rule is

    .. math::
        g &\leftarrow g + \lambda\theta \\
        v &\leftarrow \rho v + (1-\rho)\, g \odot g \\
        m &\leftarrow \rho m + (1-\rho)\, g \qquad s = v - m \odot m
              \quad\text{(centered; otherwise } s = v\text{)} \\
        d &= \sqrt{s} + \epsilon \\
        b &\leftarrow \mu b + g / d, \qquad \theta \leftarrow \theta - \eta b
              \qquad (\text{without momentum: } \theta \leftarrow \theta - \eta\, g/d)

    All operations are element-wise; :math:`v` (``square_avg``), :math:`m` (``grad_avg``) and
    :math:`b` (``momentum_buffer``) start at zero (:func:`rmsprop_init`). The Deep Learning book
    writes :math:`r` for :math:`v`, :math:`\alpha` for the momentum :math:`\mu`,
    :math:`\epsilon` for the learning rate :math:`\eta` and :math:`\delta` for ``eps``.

    ``eps_inside_sqrt=True`` takes the Deep Learning book's denominator (algorithm 8.5)
    :math:`d = \sqrt{s + \epsilon}` with :math:`\epsilon` = ``eps``, instead of torch's
    :math:`\sqrt{s} + \epsilon`. Where :math:`s \gg \epsilon^2` the two agree; where a
    coordinate's gradients are tiny they do not: torch's floor is :math:`\epsilon` and the book's
    is :math:`\sqrt{\epsilon}`. A first gradient of :math:`10^{-8}` with :math:`\rho = 0.99`
    gives :math:`\sqrt{s} = 10^{-9}`; with ``eps=1e-8`` torch normalises it to
    :math:`10^{-8} / (1.1 \cdot 10^{-8}) \approx 0.91` (nearly a full step) and the book's form
    to :math:`10^{-8} / \sqrt{10^{-18} + 10^{-8}} \approx 10^{-4}` (almost none). The same number
    is a far larger safeguard inside the root: ϵ outside acts like ϵ² inside.

    ``nesterov=True`` (needs ``momentum > 0``) is RMSProp with Nesterov momentum (algorithm 8.6),
    with velocity :math:`\tilde b`: :math:`\tilde\theta = \theta + \mu \tilde b`, :math:`g`
    taken at :math:`\tilde\theta`, :math:`\tilde b \leftarrow \mu \tilde b - \eta\, g/d`,
    :math:`\theta \leftarrow \theta + \tilde b`. As in
    :func:`~nnbolts.optim.sgd.sgd_velocity_step`, the parameter stored and returned is the
    look-ahead point :math:`\tilde\theta`, **so the gradient you pass must be the gradient at the
    stored parameter** (what ``loss.backward()`` gives). Moving from one look-ahead point to the
    next is

    .. math::
        b \leftarrow \mu b + g/d, \qquad \theta \leftarrow \theta - \eta(\mu b + g/d)

    with torch's buffer :math:`b = -\tilde b/\eta`, so the state keeps torch's keys and meaning.
    Weight decay applies at the look-ahead point, where the gradient is taken. With a changing
    learning rate the buffer form applies the current rate to the whole buffer while the Deep
    Learning book's velocity keeps each step's rate. Both options may be combined with each other
    and with ``centered``; off (the default), the rule is exactly torch's.

    Equivalent torch call (options off): ``torch.optim.RMSprop([p], lr=lr, alpha=alpha,
    eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
    maximize=maximize).step()``. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = rmsprop_step(p, g, rmsprop_init(p), lr=0.01, alpha=0.75)
        >>> p, s["square_avg"]
        (tensor([0.9800]), tensor([0.0625]))
    """
    _check_rmsprop(lr, alpha, eps, weight_decay, momentum, nesterov)
    check_state(state, ("step", "square_avg"), "rmsprop_init(param)")
    return pure_step(_rmsprop_, param, grad, state, dict(
        lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
        centered=centered, maximize=maximize, eps_inside_sqrt=eps_inside_sqrt,
        nesterov=nesterov))


class RMSprop(RuleOptimizer):
    """RMSprop; a drop-in for ``torch.optim.RMSprop``. The rule is :func:`rmsprop_step`.

    ``eps_inside_sqrt`` and ``nesterov`` are the Deep Learning book's variants (algorithms 8.5
    and 8.6), off by default. ``foreach`` is accepted for compatibility; the one-tensor rule is
    always used. Arguments after ``centered`` are keyword-only (torch's ``capturable`` sits
    between ``centered`` and ``foreach``).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, foreach=None, maximize=False, eps_inside_sqrt=False,
                 nesterov=False):
        _check_rmsprop(lr, alpha, eps, weight_decay, momentum, nesterov)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, foreach=foreach,
                                      maximize=maximize, eps_inside_sqrt=eps_inside_sqrt,
                                      nesterov=nesterov))

    # torch.optim.RMSprop saves no nnbolts-only option: on load they are off
    group_defaults = dict(momentum=0, centered=False, foreach=None, maximize=False,
                          eps_inside_sqrt=False, nesterov=False)

    def _init_state(self, param, group):
        return rmsprop_init(param, momentum=group["momentum"], centered=group["centered"])

    def _update(self, param, grad, state, group):
        _rmsprop_(param, grad, state, lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                  weight_decay=group["weight_decay"], momentum=group["momentum"],
                  centered=group["centered"], maximize=group["maximize"],
                  eps_inside_sqrt=group["eps_inside_sqrt"], nesterov=group["nesterov"])
