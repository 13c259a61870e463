r"""Rprop: resilient backpropagation (Riedmiller & Braun, 1993), one adaptive step size per
weight driven by the sign of the gradient only, in PyTorch's form.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._base import (
    RuleOptimizer,
    check_flag_off,
    check_lr,
    check_state,
    pure_step,
    scalar_lr,
)

__all__ = ["Rprop", "rprop_init", "rprop_step"]

_NO_CAPTURE = ("the step count is a Python int (see nnbolts.optim._base), so the update cannot "
               "be captured in a CUDA graph; use torch.optim.Rprop(capturable=True)")
_NO_GRAD = ("the update runs under torch.no_grad(); use torch.optim.Rprop(differentiable=True) "
            "to differentiate through it")


def _check_pair(name, value):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"Invalid {name}: {value!r} (expected a pair of numbers)")
    for i, x in enumerate(value):
        check_number(f"{name}[{i}]", x)


def _check_rprop(lr, etas, step_sizes, capturable=False, differentiable=False):
    # torch's order and wording for lr and etas; torch does not check step_sizes
    check_lr(lr)
    _check_factors(etas, step_sizes)
    check_flag_off("capturable", capturable, _NO_CAPTURE)
    check_flag_off("differentiable", differentiable, _NO_GRAD)


def _check_factors(etas, step_sizes):
    _check_pair("etas", etas)
    if not 0.0 < etas[0] < 1.0 < etas[1]:
        raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
    _check_pair("step_sizes", step_sizes)
    if not 0.0 <= step_sizes[0] <= step_sizes[1]:
        raise ValueError(f"Invalid step_sizes: {step_sizes[0]}, {step_sizes[1]} "
                         f"(expected 0 <= minimum <= maximum)")


def _rprop_(param, grad, state, *, etaminus, etaplus, step_size_min, step_size_max, maximize):
    """In-place Rprop kernel: the math of :func:`rprop_step` with torch's single-tensor Rprop's
    operations (masked fills where torch assigns through boolean indices: the same values,
    without the device synchronisation that boolean indexing costs, and valid on ``meta``)."""
    state["step"] = state["step"] + 1
    g = grad.neg() if maximize else grad
    prev, step_size = state["prev"], state["step_size"]
    sign = g.mul(prev).sign_()                             # sign(g_t · g_{t−1}), 0 after a skip
    sign.masked_fill_(sign.gt(0), etaplus)                 # same sign: grow by c₊
    sign.masked_fill_(sign.lt(0), etaminus)                # sign change: shrink by c₋
    sign.masked_fill_(sign.eq(0), 1)                       # no information: keep
    step_size.mul_(sign).clamp_(step_size_min, step_size_max)  # Δ ← clip(factor·Δ)
    g = g.masked_fill(sign.eq(etaminus), 0)                # after a sign change: no step, and
    param.addcmul_(g.sign(), step_size, value=-1)          # θ ← θ − sign(g) Δ
    prev.copy_(g)                                          # the next step sees g = 0 there


def rprop_init(param: torch.Tensor, *, lr=1e-2) -> dict:
    """State of Rprop for one tensor, as torch creates it: ``step`` 0 (a Python int here), a
    zero previous gradient ``prev`` and every step size ``step_size`` equal to the learning rate,
    on the parameter's device and dtype. ``lr`` may be a one-element tensor."""
    check_lr(lr)
    lr = scalar_lr(lr)
    if isinstance(lr, torch.Tensor) and lr.device.type != "meta":
        lr = lr.item()  # what torch.full_like makes of a tensor fill value
    return {
        "step": 0,
        "prev": torch.zeros_like(param, memory_format=torch.preserve_format),
        "step_size": torch.full_like(param, lr, memory_format=torch.preserve_format),
    }


def rprop_step(param, grad, state, *, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    r"""One Rprop update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g_t` (negated if ``maximize``), per-element step sizes :math:`\Delta`
    (started at the learning rate :math:`\eta` by :func:`rprop_init`), factors
    :math:`0 < c_- < 1 < c_+` (``etas``) and bounds :math:`\Delta_{\min}, \Delta_{\max}`
    (``step_sizes``), elementwise:

    .. math::
        \Delta &\leftarrow \begin{cases}
            \min(c_+\Delta,\ \Delta_{\max}) & \text{if } g_t\, g_{t-1} > 0 \\
            \max(c_-\Delta,\ \Delta_{\min}) & \text{if } g_t\, g_{t-1} < 0 \\
            \Delta & \text{otherwise}
        \end{cases} \\
        g_t &\leftarrow 0 \quad\text{where } g_t\, g_{t-1} < 0 \\
        \theta &\leftarrow \theta - \operatorname{sign}(g_t)\,\Delta

    Only the gradient's sign is used, so the step never scales with the gradient's size:
    each weight's step grows while its gradient keeps its sign and shrinks when it flips (an
    overshoot), after which that weight pauses one step (its stored gradient :math:`g_{t-1}`,
    ``prev``, is set to 0). Rprop is a full-batch method: with noisy minibatch gradients the
    signs flip at random and the steps shrink to :math:`\Delta_{\min}`. The learning rate only
    sets the initial :math:`\Delta`, which is why this step takes no ``lr``.

    Equivalent torch call: ``torch.optim.Rprop([p], lr=lr, etas=etas, step_sizes=step_sizes,
    maximize=maximize).step()`` with ``lr`` the one given to :func:`rprop_init`. State keys are
    torch's: ``step`` (a Python int here), ``prev`` (:math:`g_{t-1}`) and ``step_size``
    (:math:`\Delta`). Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0, 1.0]), torch.tensor([0.5, -2.0])
        >>> s = rprop_init(p, lr=0.1)
        >>> p, s = rprop_step(p, g, s)
        >>> p, s = rprop_step(p, g, s)
        >>> p, s["step_size"]
        (tensor([0.7800, 1.2200]), tensor([0.1200, 0.1200]))
    """
    _check_factors(etas, step_sizes)
    check_state(state, ("step", "prev", "step_size"), "rprop_init(param, lr=lr)")
    return pure_step(_rprop_, param, grad, state, dict(
        etaminus=etas[0], etaplus=etas[1], step_size_min=step_sizes[0],
        step_size_max=step_sizes[1], maximize=maximize))


class Rprop(RuleOptimizer):
    """Rprop; a drop-in for ``torch.optim.Rprop`` whose rule is :func:`rprop_step`.

    As in torch, ``lr`` is the initial step size of every weight; a scheduler's later changes
    of ``lr`` do not reach the step sizes already in the state. Every torch option is accepted.
    ``foreach`` is ignored: the one-tensor rule is always used (on CPU it is also torch's
    default). ``capturable`` and ``differentiable`` are accepted in their default, ``False``,
    position only, so that torch's keyword arguments and state dicts carry over.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = Rprop([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_rprop(lr, etas, step_sizes, capturable, differentiable)
        super().__init__(params, dict(
            lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable))

    group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)

    def _init_state(self, param, group):
        return rprop_init(param, lr=group["lr"])

    def _update(self, param, grad, state, group):
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        _rprop_(param, grad, state, etaminus=etaminus, etaplus=etaplus,
                step_size_min=step_size_min, step_size_max=step_size_max,
                maximize=group["maximize"])

