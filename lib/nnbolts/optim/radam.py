r"""RAdam: Adam with a rectified adaptive learning rate (Liu et al., 2020, "On the Variance of the
Adaptive Learning Rate and Beyond"), in PyTorch's form.

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

__all__ = ["RAdam", "radam_init", "radam_step", "radam_rectification"]

_NO_CAPTURE = ("the step count is a Python int (see nnbolts.optim._base), so the update cannot "
               "be captured in a CUDA graph; use torch.optim.RAdam(capturable=True)")
_NO_GRAD = ("the update runs under torch.no_grad(); use torch.optim.RAdam(differentiable=True) "
            "to differentiate through it")


def _check_radam(lr, betas, eps, weight_decay, capturable=False, differentiable=False):
    # torch's order, so that the first complaint is the same one torch would make
    check_lr(lr)
    check_eps(eps)
    check_betas(betas)
    check_weight_decay(weight_decay)
    check_flag_off("capturable", capturable, _NO_CAPTURE)
    check_flag_off("differentiable", differentiable, _NO_GRAD)


def radam_rectification(step: int, beta2: float) -> float | None:
    r"""RAdam's variance rectification :math:`r_t` at step :math:`t \ge 1`, or ``None`` while
    the approximated simple moving average is too short (:math:`\ell_t \le 5`) and RAdam takes
    a plain momentum step.

    .. math::
        \ell_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
        \ell_t = \ell_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \\
        r_t &= \sqrt{\frac{(\ell_t-4)(\ell_t-2)\,\ell_\infty}
            {(\ell_\infty-4)(\ell_\infty-2)\,\ell_t}}

    Example::

        >>> radam_rectification(5, 0.999) is None, round(radam_rectification(100, 0.999), 4)
        (True, 0.2153)
    """
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / (1 - beta2 ** step)
    if not rho_t > 5.0:
        return None
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


def _radam_(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    """In-place RAdam kernel: the math of :func:`radam_step`, in the operation order of torch's
    single-tensor RAdam (so trajectories agree bit for bit on CPU)."""
    step = state["step"] = state["step"] + 1
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param.mul_(1 - lr * weight_decay)              # θ ← (1 − ηλ)θ
        else:
            g = g.add(param, alpha=weight_decay)           # g ← g + λθ     (L2 penalty)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(g, 1 - beta1)                            # m ← β₁m + (1−β₁)g
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v ← β₂v + (1−β₂)g²
    bias_correction2 = 1 - beta2 ** step
    update = torch.div(exp_avg, 1 - beta1 ** step)         # m̂ = m/(1−β₁ᵗ)
    update.mul_(lr)                                        # η m̂
    rect = radam_rectification(step, beta2)
    if rect is not None:
        # torch computes √(1−β₂ᵗ)/(√v + ϵ) as (√v + ϵ)⁻¹ · √(1−β₂ᵗ) (Python's float/tensor)
        adaptive = exp_avg_sq.sqrt().add_(eps).reciprocal_().mul_(bias_correction2 ** 0.5)
        update.mul_(adaptive).mul_(rect)                   # η m̂ r_t / (√v̂ + ϵ')
    param.sub_(update)


def _radam_many_(params, grads, states, *, lr, beta1, beta2, eps, weight_decay, decoupled,
                 maximize):
    """Multi-tensor RAdam, in the operations and order of torch's multi-tensor RAdam. It folds
    both branches into one: with :math:`s_t = -\\eta r_t\\sqrt{1-\\beta_2^t}/(1-\\beta_1^t)`
    (0 while unrectified) and :math:`u_t = -\\eta/(1-\\beta_1^t)` (0 once rectified),
    θ ← θ + m · (1/((√v + ϵ)/s_t) + u_t); the division by zero of the unrectified steps gives
    an infinity whose reciprocal is 0. Rounded differently from the one-tensor path, as torch's
    two paths are. All tensors share a device and dtype (the class groups them so); gradients
    are never modified."""
    exp_avgs = [s["exp_avg"] for s in states]
    exp_avg_sqs = [s["exp_avg_sq"] for s in states]
    steps = []
    for s in states:
        s["step"] += 1
        steps.append(s["step"])
    g = torch._foreach_neg(grads) if maximize else grads
    rho_inf = 2 / (1 - beta2) - 1
    rho_ts = [rho_inf - 2 * t * (beta2 ** t) / (1 - beta2 ** t) for t in steps]
    if weight_decay != 0:
        if decoupled:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        elif maximize:
            torch._foreach_add_(g, params, alpha=weight_decay)
        else:
            g = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, g, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, g, g, 1 - beta2)
    del g
    rects = [((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
             ** 0.5 if rho_t > 5 else 0 for rho_t in rho_ts]
    unrectified = [0 if rect > 0 else 1.0 for rect in rects]
    bias_corrections1 = [1 - beta1 ** t for t in steps]
    unrect_step_sizes = [(lr * u / bc) * -1 for u, bc in zip(unrectified, bias_corrections1)]
    rect_step_sizes = [((1 - beta2 ** t) ** 0.5) * (lr * rect / bc) * -1
                       for t, rect, bc in zip(steps, rects, bias_corrections1)]
    buffer = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_add_(buffer, eps)
    torch._foreach_div_(buffer, rect_step_sizes)
    torch._foreach_reciprocal_(buffer)
    torch._foreach_add_(buffer, unrect_step_sizes)
    torch._foreach_addcmul_(params, exp_avgs, buffer)


def radam_init(param: torch.Tensor) -> dict:
    """State of RAdam for one tensor, as torch creates it: ``step`` 0 and zero moments on the
    parameter's device and dtype."""
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)
    return {"step": 0, "exp_avg": zeros(), "exp_avg_sq": zeros()}


def radam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
               decoupled_weight_decay=False, maximize=False):
    r"""One RAdam update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), step :math:`t` (after increment), learning
    rate :math:`\eta`, decay rates :math:`\beta_1, \beta_2`, weight decay :math:`\lambda` and the
    rectification :math:`r_t` of :func:`radam_rectification`:

    .. math::
        g &\leftarrow g + \lambda\theta
            \quad(\text{or } \theta \leftarrow (1-\eta\lambda)\theta
            \text{ if decoupled\_weight\_decay}) \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
        \hat m = m/(1-\beta_1^t) \\
        \theta &\leftarrow \theta - \eta\, r_t\, \hat m\,
            \frac{\sqrt{1-\beta_2^t}}{\sqrt{v} + \epsilon}
            \quad\text{if } \ell_t > 5, \qquad
        \theta \leftarrow \theta - \eta\, \hat m \quad\text{otherwise.}

    Early on, the variance of Adam's adaptive rate :math:`\sqrt{1-\beta_2^t}/\sqrt{v}` is large
    (it rests on few gradients); RAdam takes momentum-SGD steps until the approximated moving
    average is long enough (:math:`\ell_t > 5`; with :math:`\beta_2 = 0.999`, steps 1 to 5),
    then scales the adaptive step by :math:`r_t`, which grows towards 1. It acts as a built-in
    warmup. :math:`\epsilon` is added to :math:`\sqrt{v}` before the bias correction, as in torch.

    Equivalent torch call: ``torch.optim.RAdam([p], lr=lr, betas=betas, eps=eps,
    weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
    maximize=maximize).step()``. State keys are torch's: ``step`` (a Python int here),
    ``exp_avg``, ``exp_avg_sq``. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = radam_step(p, g, radam_init(p), lr=0.1)
        >>> p
        tensor([0.9500])
    """
    _check_radam(lr, betas, eps, weight_decay)
    check_state(state, ("step", "exp_avg", "exp_avg_sq"), "radam_init(param)")
    return pure_step(_radam_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
        decoupled=decoupled_weight_decay, maximize=maximize))


class RAdam(RuleOptimizer):
    """RAdam; a drop-in for ``torch.optim.RAdam`` whose rule is :func:`radam_step`.

    Every torch option is accepted. ``foreach=None`` picks the multi-tensor path where torch
    picks its own (CUDA); ``True``/``False`` force it. Each path matches torch's namesake path;
    the two compute the same rule, rounded slightly differently (as torch's do).
    ``capturable`` and ``differentiable`` are accepted in their default, ``False``, position
    only, so that torch's keyword arguments and state dicts carry over.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = RAdam([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.8000, 0.8000, 0.8000])
    """

    has_foreach = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        _check_radam(lr, betas, eps, weight_decay, capturable, differentiable)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay, differentiable=differentiable))

    group_defaults = dict(foreach=None, maximize=False, differentiable=False,
                          decoupled_weight_decay=False, capturable=False)

    def _init_state(self, param, group):
        return radam_init(param)

    @staticmethod
    def _hp(group):
        beta1, beta2 = group["betas"]
        return dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], decoupled=group["decoupled_weight_decay"],
                    maximize=group["maximize"])

    def _update(self, param, grad, state, group):
        _radam_(param, grad, state, **self._hp(group))

    def _update_many(self, params, grads, states, group):
        hp = self._hp(group)
        for idx in by_device_and_dtype(params):
            _radam_many_([params[i] for i in idx], [grads[i] for i in idx],
                         [states[i] for i in idx], **hp)
