r"""RMSProp with Nesterov momentum: Algorithm 8.6 of Goodfellow, Bengio and Courville, *Deep
Learning* (2016), §8.5.2, as a pure one-tensor pair. torch has no equivalent.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._base import check_eps, check_lr, check_state, check_step_inputs, scalar_lr

__all__ = ["rmsprop_nesterov_init", "rmsprop_nesterov_lookahead", "rmsprop_nesterov_step"]

_KEYS = ("step", "square_avg", "velocity")


def _check(lr, rho, momentum, eps):
    check_lr(lr)
    check_number("rho value", rho, low=0.0, high=1.0)
    check_number("momentum value", momentum, low=0.0, high=1.0, high_open=True)
    check_eps(eps)


def rmsprop_nesterov_init(param: torch.Tensor) -> dict:
    """State for one tensor: ``{"step": 0, "square_avg": r, "velocity": v}``, with the
    accumulation :math:`r` and the velocity :math:`v` zeros shaped like ``param`` (the book lets
    the initial velocity be chosen; zero is the usual choice)."""
    return {"step": 0, "square_avg": torch.zeros_like(param), "velocity": torch.zeros_like(param)}


def rmsprop_nesterov_lookahead(param: torch.Tensor, state: dict, *, momentum=0.9) -> torch.Tensor:
    r"""The interim point :math:`\tilde\theta = \theta + \mu v` where Algorithm 8.6 evaluates
    the gradient that :func:`rmsprop_nesterov_step` then takes. A new tensor."""
    check_state(state, _KEYS, "rmsprop_nesterov_init(param)")
    return param + momentum * state["velocity"]


def rmsprop_nesterov_step(param, grad, state, *, lr=1e-3, rho=0.9, momentum=0.9, eps=1e-6):
    r"""One step of RMSProp with Nesterov momentum (Algorithm 8.6) on one tensor; returns
    ``(new_param, new_state)`` and changes nothing.

    ``grad`` is the gradient at the interim point :math:`\tilde\theta = \theta + \mu v`
    (:func:`rmsprop_nesterov_lookahead`), not at ``param``. With learning rate :math:`\eta`
    (the book's :math:`\epsilon`), decay :math:`\rho` and momentum :math:`\mu` (the book's
    :math:`\alpha`):

    .. math::
        r &\leftarrow \rho r + (1-\rho)\, g \odot g \\
        v &\leftarrow \mu v - \frac{\eta}{\sqrt{\epsilon + r}} \odot g \\
        \theta &\leftarrow \theta + v

    The book's Algorithm 8.6 divides by :math:`\sqrt r`; ``eps`` (:math:`\epsilon` here) is the
    small constant its Algorithm 8.5 (RMSProp) adds inside the root, which keeps a component
    whose gradients were all 0 finite. ``eps=0`` is the book's rule exactly. ``step`` counts
    the updates, as a Python int. With ``momentum=0`` the rule is RMSProp with ε inside the
    root. (:func:`~nnbolts.optim.rmsprop_step` with ``nesterov=True`` is this variant in PyTorch's
    style: it stores the look-ahead point as the parameter and puts ε outside the root.)

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([2.0])
        >>> p, s = rmsprop_nesterov_step(p, g, rmsprop_nesterov_init(p), lr=0.1, rho=0.75,
        ...                              eps=0.0)
        >>> p, s["velocity"]
        (tensor([0.8000]), tensor([-0.2000]))
    """
    _check(lr, rho, momentum, eps)
    check_state(state, _KEYS, "rmsprop_nesterov_init(param)")
    check_step_inputs(param, grad, state)
    lr = scalar_lr(lr)  # a one-element tensor computes as a 0-d one, as in torch
    with torch.no_grad():
        r = rho * state["square_avg"] + (1 - rho) * grad * grad
        v = momentum * state["velocity"] - lr * grad / torch.sqrt(eps + r)
        new_param = param.detach() + v
    return new_param, {**state, "step": state["step"] + 1, "square_avg": r, "velocity": v}
