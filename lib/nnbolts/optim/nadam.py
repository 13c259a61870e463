r"""NAdam: Adam with Nesterov momentum (Dozat, 2016), in PyTorch's form with a warming-up momentum.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import numbers
import struct

import torch

from .._checks import check_number
from ._base import (
    RuleOptimizer,
    check_betas,
    check_eps,
    check_lr,
    check_state,
    check_weight_decay,
    pure_step,
)

__all__ = ["NAdam", "nadam_init", "nadam_step"]

_FLOAT32 = struct.Struct("f")


def _round_to_float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even), returned as a Python float."""
    return _FLOAT32.unpack(_FLOAT32.pack(x))[0]


def _check_nadam(lr, betas, eps, weight_decay, momentum_decay):
    check_lr(lr)
    check_eps(eps)
    check_betas(betas)
    check_weight_decay(weight_decay)
    check_number("momentum_decay value", momentum_decay, low=0.0)


def _check_nadam_state(state):
    check_state(state, ("step", "mu_product", "exp_avg", "exp_avg_sq"), "nadam_init(param)")
    if not isinstance(state, dict):
        return
    mu_product = state["mu_product"]
    if isinstance(mu_product, bool) or not isinstance(mu_product, numbers.Real):
        raise TypeError(
            f"expected state['mu_product'] to be a Python float, got {type(mu_product).__name__}")


def _nadam_(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, momentum_decay,
            decoupled, maximize):
    """In-place NAdam kernel: the math of :func:`nadam_step`, in the operation order of torch's
    single-tensor NAdam (so float64 trajectories agree bit for bit)."""
    step = state["step"] = state["step"] + 1
    bias_correction2 = 1 - beta2 ** step
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param.mul_(1 - lr * weight_decay)              # θ ← (1 − ηλ)θ   (NAdamW)
        elif maximize:
            g.add_(param, alpha=weight_decay)              # g ← g + λθ (g is already a copy)
        else:
            g = grad.add(param, alpha=weight_decay)        # g ← g + λθ      (L2 penalty)

    # The momentum schedule μ_t = β₁(1 − ½·0.96^(t·momentum_decay)) warms up from 0.5β₁ to β₁.
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    # Torch keeps the running product ∏μ_i in a float32 scalar whatever the parameter's dtype.
    # Rounding ours the same way (a float32 times a float32-rounded μ, correctly rounded) keeps
    # float64 trajectories identical to torch's; the rounding itself is ~1e-7 relative.
    mu_product = state["mu_product"] = _round_to_float32(
        state["mu_product"] * _round_to_float32(mu))
    mu_product_next = mu_product * mu_next

    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(g, 1 - beta1)                            # m ← β₁m + (1−β₁)g
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v ← β₂v + (1−β₂)g²
    # unlike Adam, torch's NAdam divides v by (1−β₂ᵗ) before the root
    denom = torch.div(exp_avg_sq, bias_correction2).sqrt_().add_(eps)  # √v̂ + ϵ
    # the Nesterov look-ahead: part of the update from the current gradient, part from m
    param.addcdiv_(g, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
    param.addcdiv_(exp_avg, denom, value=(-lr * mu_next) / (1.0 - mu_product_next))


def nadam_init(param: torch.Tensor) -> dict:
    """State of NAdam for one tensor: ``step`` 0, ``mu_product`` 1.0 (the empty product of the
    momentum schedule) and zero moments on the parameter's device and dtype."""
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)
    return {"step": 0, "mu_product": 1.0, "exp_avg": zeros(), "exp_avg_sq": zeros()}


def nadam_step(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
               momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    r"""One NAdam update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), step :math:`t` (after increment), learning
    rate :math:`\eta`, decay rates :math:`\beta_1, \beta_2`, weight decay :math:`\lambda` and
    ``momentum_decay``:

    .. math::
        g &\leftarrow g + \lambda\theta
            \quad(\text{or } \theta \leftarrow (1-\eta\lambda)\theta
            \text{ if decoupled\_weight\_decay}) \\
        \mu_t &= \beta_1\big(1 - \tfrac12\, 0.96^{\,t \cdot \mathtt{momentum\_decay}}\big),
        \qquad P_t = \textstyle\prod_{i=1}^{t} \mu_i \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
        \hat v = v/(1-\beta_2^t) \\
        \theta &\leftarrow \theta
            - \eta\,\frac{1-\mu_t}{1-P_t}\,\frac{g}{\sqrt{\hat v}+\epsilon}
            - \eta\,\frac{\mu_{t+1}}{1-P_t\,\mu_{t+1}}\,\frac{m}{\sqrt{\hat v}+\epsilon}

    The last line is Nesterov's look-ahead: the bias-corrected momentum one step ahead plus the
    current gradient's share. Equivalent torch call: ``torch.optim.NAdam([p], lr=lr,
    betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
    decoupled_weight_decay=decoupled_weight_decay, maximize=maximize).step()``.

    State keys are torch's. ``step`` is a Python int and ``mu_product`` (:math:`P_t`) a Python
    float, both device-free; torch keeps both as float32 CPU tensors and converts a float on
    load. :math:`P_t` is rounded to float32 at each step, as torch's is, so that trajectories
    match torch's bit for bit. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = nadam_step(p, g, nadam_init(p), lr=0.1)
        >>> p, round(s["mu_product"], 4)
        (tensor([0.8944]), 0.4501)
    """
    _check_nadam(lr, betas, eps, weight_decay, momentum_decay)
    _check_nadam_state(state)
    return pure_step(_nadam_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
        momentum_decay=momentum_decay, decoupled=decoupled_weight_decay, maximize=maximize))


class NAdam(RuleOptimizer):
    """NAdam; a drop-in for ``torch.optim.NAdam`` whose rule is :func:`nadam_step`.

    ``foreach`` is accepted for compatibility and ignored: this rule has only the one-tensor
    path. ``capturable`` and ``differentiable`` are not offered.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = NAdam([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.8944, 0.8944, 0.8944])
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False):
        _check_nadam(lr, betas, eps, weight_decay, momentum_decay)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, foreach=foreach))

    group_defaults = dict(maximize=False, foreach=None, decoupled_weight_decay=False)

    def _init_state(self, param, group):
        return nadam_init(param)

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        _nadam_(param, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"],
                decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict saved by this optimizer or by ``torch.optim.NAdam``."""
        super().load_state_dict(state_dict)
        for state in self.state.values():
            mu_product = state.get("mu_product")
            if isinstance(mu_product, torch.Tensor):
                # torch's float32 scalar (cast to the parameter's dtype by the load) holds a
                # float32 value, so the conversion is exact
                state["mu_product"] = float(mu_product.item())
