r"""Adamax: Adam with the root of the second moment replaced by a decaying maximum (Kingma & Ba,
2015, section 7.1), in PyTorch's form.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from ._base import (
    RuleOptimizer,
    by_device_and_dtype,
    check_betas,
    check_eps,
    check_flag_off,
    check_lr,
    check_state,
    check_weight_decay,
    pure_step,
)

__all__ = ["Adamax", "adamax_init", "adamax_step"]

_NO_CAPTURE = ("the step count is a Python int (see nnbolts.optim._base), so the update cannot "
               "be captured in a CUDA graph; use torch.optim.Adamax(capturable=True)")
_NO_GRAD = ("the update runs under torch.no_grad(); use torch.optim.Adamax(differentiable=True) "
            "to differentiate through it")


def _check_adamax(lr, betas, eps, weight_decay, capturable=False, differentiable=False):
    # torch's order, so that the first complaint is the same one torch would make
    check_lr(lr)
    check_eps(eps)
    check_betas(betas)
    check_weight_decay(weight_decay)
    check_flag_off("capturable", capturable, _NO_CAPTURE)
    check_flag_off("differentiable", differentiable, _NO_GRAD)


def _adamax_(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, maximize):
    """In-place Adamax kernel: the math of :func:`adamax_step`, in the operation order of torch's
    single-tensor Adamax (so trajectories agree bit for bit on CPU)."""
    step = state["step"] = state["step"] + 1
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)               # g ← g + λθ     (L2 penalty)
    exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
    exp_avg.lerp_(g, 1 - beta1)                            # m ← β₁m + (1−β₁)g
    # u ← max(β₂u, |g| + ϵ): ϵ sits inside the maximum, so u never vanishes
    torch.maximum(exp_inf.mul_(beta2), g.abs().add_(eps), out=exp_inf)
    clr = lr / (1 - beta1 ** step)                         # η/(1−β₁ᵗ), a Python float (or tensor)
    param.addcdiv_(exp_avg, exp_inf, value=-clr)           # θ ← θ − η m / ((1−β₁ᵗ) u)


def _adamax_many_(params, grads, states, *, lr, beta1, beta2, eps, weight_decay, maximize):
    """Multi-tensor Adamax: the rule of :func:`_adamax_` with one ``torch._foreach_*`` call per
    operation, in the order of torch's multi-tensor Adamax (on CPU the same numbers as the
    one-tensor kernel). All tensors share a device and dtype (the class groups them so).
    Gradients are never modified: a negated or decayed gradient is a new list."""
    exp_avgs = [s["exp_avg"] for s in states]
    exp_infs = [s["exp_inf"] for s in states]
    steps = []
    for s in states:
        s["step"] += 1
        steps.append(s["step"])
    g = torch._foreach_neg(grads) if maximize else grads
    if weight_decay != 0:
        if maximize:
            torch._foreach_add_(g, params, alpha=weight_decay)
        else:
            g = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, g, 1 - beta1)
    torch._foreach_mul_(exp_infs, beta2)
    if g is grads:
        g = torch._foreach_abs(g)
    else:
        torch._foreach_abs_(g)
    torch._foreach_add_(g, eps)
    torch._foreach_maximum_(exp_infs, g)
    del g
    # torch's multi-tensor path reads a tensor lr as a Python number
    lr = lr.item() if isinstance(lr, torch.Tensor) else lr
    if steps.count(steps[0]) == len(steps):  # the usual case: one scalar, not a list
        step_size = (lr / (1 - beta1 ** steps[0])) * -1
    else:
        step_size = [(lr / (1 - beta1 ** t)) * -1 for t in steps]
    torch._foreach_addcdiv_(params, exp_avgs, exp_infs, step_size)


def adamax_init(param: torch.Tensor) -> dict:
    """State of Adamax for one tensor, as torch creates it: ``step`` 0 and zero ``exp_avg`` and
    ``exp_inf`` on the parameter's device and dtype."""
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)
    return {"step": 0, "exp_avg": zeros(), "exp_inf": zeros()}


def adamax_step(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                maximize=False):
    r"""One Adamax update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), step :math:`t` (after increment), learning
    rate :math:`\eta`, decay rates :math:`\beta_1, \beta_2` and weight decay :math:`\lambda`:

    .. math::
        g &\leftarrow g + \lambda\theta \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        u &\leftarrow \max\big(\beta_2 u,\ |g| + \epsilon\big) \\
        \theta &\leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,\frac{m}{u}

    :math:`u` is an exponentially weighted infinity norm of the past gradients: Adam's
    :math:`\sqrt{v}` with the :math:`L^2` average replaced by a decaying maximum, which needs no
    bias correction. Note that :math:`\epsilon` sits inside the maximum (torch's form), not added
    to the denominator.

    Equivalent torch call: ``torch.optim.Adamax([p], lr=lr, betas=betas, eps=eps,
    weight_decay=weight_decay, maximize=maximize).step()``. State keys are torch's: ``step`` (a
    Python int here), ``exp_avg`` (:math:`m`), ``exp_inf`` (:math:`u`).
    Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = adamax_step(p, g, adamax_init(p), lr=0.1)
        >>> p, s["exp_inf"]
        (tensor([0.9000]), tensor([0.5000]))
    """
    _check_adamax(lr, betas, eps, weight_decay)
    check_state(state, ("step", "exp_avg", "exp_inf"), "adamax_init(param)")
    return pure_step(_adamax_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
        maximize=maximize))


class Adamax(RuleOptimizer):
    """Adamax; a drop-in for ``torch.optim.Adamax`` whose rule is :func:`adamax_step`.

    Every torch option is accepted. ``foreach=None`` picks the multi-tensor path where torch
    picks its own (CUDA); ``True``/``False`` force it. Both paths compute the same numbers on
    CPU, as torch's two paths do. ``capturable`` and ``differentiable`` are accepted in their
    default, ``False``, position only, so that torch's keyword arguments and state dicts carry
    over.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = Adamax([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """

    has_foreach = True

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_adamax(lr, betas, eps, weight_decay, capturable, differentiable)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable))

    group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)

    def _init_state(self, param, group):
        return adamax_init(param)

    @staticmethod
    def _hp(group):
        beta1, beta2 = group["betas"]
        return dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], maximize=group["maximize"])

    def _update(self, param, grad, state, group):
        _adamax_(param, grad, state, **self._hp(group))

    def _update_many(self, params, grads, states, group):
        hp = self._hp(group)
        for idx in by_device_and_dtype(params):
            _adamax_many_([params[i] for i in idx], [grads[i] for i in idx],
                          [states[i] for i in idx], **hp)
