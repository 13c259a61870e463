r"""Adadelta: RMSProp whose step size is the root of a leaky average of its own past steps.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._base import RuleOptimizer, check_eps, check_lr, check_state, check_weight_decay, pure_step

__all__ = ["Adadelta", "adadelta_init", "adadelta_step"]


def _check_adadelta(lr, rho, eps, weight_decay):
    check_lr(lr)
    check_number("rho value", rho, low=0.0, high=1.0)
    check_eps(eps)
    check_weight_decay(weight_decay)


def _adadelta_(param, grad, state, *, lr, rho, eps, weight_decay, maximize):
    """In-place Adadelta kernel: the math of :func:`adadelta_step`."""
    state["step"] += 1
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)                # g ← g + λθ  (L2 penalty)
    # r is the docstring's v, delta its d
    r, u = state["square_avg"], state["acc_delta"]
    r.mul_(rho).addcmul_(g, g, value=1 - rho)               # v ← ρv + (1−ρ) g⊙g
    # ϵ sits inside both roots; in the numerator it is what lets the very first step move:
    # u starts at zero, so the first step is √ϵ / √(v + ϵ) · g
    rms_g = r.add(eps).sqrt_()
    delta = u.add(eps).sqrt_().div_(rms_g).mul_(g)          # d = √(u + ϵ) / √(v + ϵ) ⊙ g
    u.mul_(rho).addcmul_(delta, delta, value=1 - rho)       # u ← ρu + (1−ρ) d⊙d
    param.add_(delta, alpha=-lr)                            # θ ← θ − ηd


def adadelta_init(param: torch.Tensor) -> dict:
    """State of Adadelta for one tensor, with torch's keys: ``{"step": 0, "square_avg": 0,
    "acc_delta": 0}``, the averages shaped like ``param``."""
    return {"step": 0,
            "square_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
            "acc_delta": torch.zeros_like(param, memory_format=torch.preserve_format)}


def adadelta_step(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                  maximize=False):
    r"""One Adadelta update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), learning rate :math:`\eta` (1 in Zeiler's
    paper), decay :math:`\rho` (``rho``) and weight decay :math:`\lambda`:

    .. math::
        g &\leftarrow g + \lambda\theta \\
        v &\leftarrow \rho v + (1-\rho)\, g \odot g \\
        d &= \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}} \odot g \\
        u &\leftarrow \rho u + (1-\rho)\, d \odot d \\
        \theta &\leftarrow \theta - \eta d

    :math:`v` (``square_avg``) and :math:`u` (``acc_delta``) start at zero; :math:`d` uses the
    :math:`u` of the previous step. The ratio of the two roots has the units of :math:`\theta`,
    which is why the rule needs no learning rate; ``lr`` only rescales it.

    Equivalent torch call: ``torch.optim.Adadelta([p], lr=lr, rho=rho, eps=eps,
    weight_decay=weight_decay, maximize=maximize).step()``. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([1.0])
        >>> p, s = adadelta_step(p, g, adadelta_init(p), rho=0.75, eps=0.375**2)
        >>> p, s["acc_delta"]
        (tensor([0.4000]), tensor([0.0900]))
    """
    _check_adadelta(lr, rho, eps, weight_decay)
    check_state(state, ("step", "square_avg", "acc_delta"), "adadelta_init(param)")
    return pure_step(_adadelta_, param, grad, state, dict(
        lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))


class Adadelta(RuleOptimizer):
    """Adadelta; a drop-in for ``torch.optim.Adadelta``. The rule is :func:`adadelta_step`.

    ``foreach`` is accepted for compatibility; the one-tensor rule is always used.
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, foreach=None, *,
                 maximize=False):
        _check_adadelta(lr, rho, eps, weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize))

    group_defaults = dict(foreach=None, maximize=False)

    def _init_state(self, param, group):
        return adadelta_init(param)

    def _update(self, param, grad, state, group):
        _adadelta_(param, grad, state, lr=group["lr"], rho=group["rho"], eps=group["eps"],
                   weight_decay=group["weight_decay"], maximize=group["maximize"])
