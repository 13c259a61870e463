r"""AdaBound and AMSBound (Luo, Xiong, Liu & Sun, ICLR 2019, "Adaptive Gradient Methods with
Dynamic Bound of Learning Rate"): Adam whose per-coordinate learning rate is clipped to a band
that starts wide and closes in on a single value, so that training begins like Adam and ends
like SGD.

The numerics are those of the authors' reference implementation (the ``adabound`` package),
which differs from the paper's algorithm box in two ways the book points out: Adam's bias
corrections are folded into the step size before clipping, and the paper's extra
:math:`1/\sqrt t` decay is left out. As in Adam's paper ("efficient" form) and in that code,
ϵ is added to :math:`\sqrt v` *before* the bias correction of :math:`v`; ``torch.optim.Adam`` adds
it after. The two denominators differ by :math:`\epsilon\,(1/\sqrt{1-\beta_2^t} - 1)`, which is
invisible unless the gradient is as small as ϵ; with ``eps=0`` and the bounds switched off
(``gamma=0``) AdaBound is Adam.

Torch has no AdaBound. Explained in: book/optimizers.md.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_number
from ._base import (
    RuleOptimizer,
    check_betas,
    check_eps,
    check_lr,
    check_state,
    check_weight_decay,
    pure_step,
)

__all__ = ["AdaBound", "adabound_init", "adabound_step", "adabound_bounds"]


def _check_adabound(lr, betas, final_lr, gamma, eps, weight_decay):
    # the reference implementation's order and wording, then the weight decay it leaves unchecked
    check_lr(lr)
    check_eps(eps)
    check_betas(betas)
    check_number("final learning rate", final_lr, low=0.0)
    check_number("gamma parameter", gamma, low=0.0, high=1.0, high_open=True)
    check_weight_decay(weight_decay)


def _check_adabound_state(state, amsbound):
    """The pure step's state must be one that :func:`adabound_init` made (same ``amsbound``)."""
    keys = ["step", "exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsbound else [])
    hint = "adabound_init(param, amsbound=True)" if amsbound else "adabound_init(param)"
    check_state(state, keys, hint)


def adabound_bounds(step: int, *, final_lr: float, gamma: float) -> tuple[float, float]:
    r"""The band :math:`[\eta_l(t), \eta_u(t)]` that AdaBound clips its learning rates to at
    step :math:`t \ge 1`, with final learning rate :math:`\eta^*` (``final_lr``) and convergence
    speed :math:`\zeta` (``gamma``):

    .. math::
        \eta_l(t) = \eta^*\Bigl(1 - \frac{1}{\zeta t + 1}\Bigr), \qquad
        \eta_u(t) = \eta^*\Bigl(1 + \frac{1}{\zeta t}\Bigr)

    Both tend to the final (SGD) learning rate :math:`\eta^*` as :math:`\zeta t \to \infty`;
    :math:`\zeta` sets how fast (the band is within 1 % of :math:`\eta^*` after about
    :math:`100/\zeta` steps). ``gamma=0`` gives :math:`[0, \infty)`: no bounds at all, the limit
    :math:`\zeta \to 0` (for :math:`\eta^* > 0`). Python floats, so no device is involved.

    Example::

        >>> adabound_bounds(1000, final_lr=0.1, gamma=1e-3)
        (0.05, 0.2)
    """
    check_int("step", step, low=1)
    check_number("final learning rate", final_lr, low=0.0)
    check_number("gamma parameter", gamma, low=0.0, high=1.0, high_open=True)
    return _bounds(step, final_lr, gamma)


def _bounds(step, final_lr, gamma):
    gt = gamma * step
    # written as in the reference code (not η*ζt/(ζt+1), with ζ = gamma) so that the floats
    # agree bit for bit
    lower = final_lr * (1 - 1 / (gt + 1))
    upper = final_lr * (1 + 1 / gt) if gt > 0 else math.inf
    return lower, upper


def _number(lr):
    """A learning rate as a Python number (a one-element tensor read once)."""
    return lr.item() if isinstance(lr, torch.Tensor) else lr


def _adabound_(param, grad, state, *, lr, beta1, beta2, final_lr, gamma, eps, weight_decay,
               amsbound):
    """In-place AdaBound kernel: the math of :func:`adabound_step`, in the operation order of the
    authors' reference code so that the two agree bit for bit."""
    step = state["step"] = state["step"] + 1
    g = grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad  # g ← g + λθ
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.mul_(beta1).add_(g, alpha=1 - beta1)           # m ← β₁m + (1−β₁)g
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v ← β₂v + (1−β₂)g²
    second = exp_avg_sq
    if amsbound:
        second = state["max_exp_avg_sq"]
        torch.maximum(second, exp_avg_sq, out=second)      # v_max ← max(v_max, v)
    denom = second.sqrt().add_(eps)                        # √v + ϵ (ϵ before bias correction)
    # Adam's step size with both bias corrections, from the Python step: no device round trip.
    step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    lower, upper = _bounds(step, final_lr, gamma)
    # eta = clip(η√(1−β₂ᵗ)/(1−β₁ᵗ) / (√v+ϵ), η_l, η_u), one learning rate per coordinate;
    # divided as a tensor (not via a reciprocal) so it is the correctly rounded quotient
    eta = torch.full_like(denom, step_size).div_(denom).clamp_(lower, upper)
    param.sub_(eta.mul_(exp_avg))                          # θ ← θ − eta ⊙ m


def adabound_init(param: torch.Tensor, *, amsbound: bool = False) -> dict:
    """State of AdaBound for one tensor: ``step`` 0 and zero moments (plus ``max_exp_avg_sq``
    with ``amsbound``), on the parameter's device and dtype. The keys are Adam's."""
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)
    state = {"step": 0, "exp_avg": zeros(), "exp_avg_sq": zeros()}
    if amsbound:
        state["max_exp_avg_sq"] = zeros()
    return state


def adabound_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3,
                  eps=1e-8, weight_decay=0, amsbound=False):
    r"""One AdaBound (or, with ``amsbound``, AMSBound) update of one tensor; returns
    ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g`, step count :math:`t` (after increment), Adam learning rate
    :math:`\eta` (``lr``), final (SGD) learning rate :math:`\eta^*` (``final_lr``), convergence
    speed :math:`\zeta` (``gamma``) and weight decay :math:`\lambda`:

    .. math::
        g &\leftarrow g + \lambda\theta \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2
            \quad(\text{AMSBound: } v_{\max} \leftarrow \max(v_{\max}, v),\ v \to v_{\max}) \\
        \eta^{\text{Adam}}_t &= \frac{\eta\sqrt{1-\beta_2^t}}{(1-\beta_1^t)(\sqrt v + \epsilon)}
            \quad\text{(per coordinate)} \\
        \theta &\leftarrow \theta - \operatorname{clip}\Bigl(\eta^{\text{Adam}}_t,\
            \eta^*\bigl(1 - \tfrac{1}{\zeta t + 1}\bigr),\
            \eta^*\bigl(1 + \tfrac{1}{\zeta t}\bigr)\Bigr) \odot m

    Unclipped, :math:`\eta^{\text{Adam}}_t \odot m` is Adam's step
    :math:`\eta\hat m/(\sqrt{\hat v} + \hat\epsilon)` with
    :math:`\hat\epsilon = \epsilon/\sqrt{1-\beta_2^t}`; once the band has closed it is
    :math:`\eta^* m`, SGD with learning rate :math:`\eta^*` and momentum in moving-average form
    (``torch.optim.SGD`` with ``momentum=dampening=``:math:`\beta_1`). ``gamma=0`` switches the
    bounds off. ``final_lr`` is used as given: the optimizer class scales it with the learning
    rate schedule (see :class:`AdaBound`), a caller of this function does so itself.

    No torch equivalent; the authors' reference is ``adabound.AdaBound([p], lr, betas, final_lr,
    gamma, eps, weight_decay, amsbound)``, whose state keys (``step``, ``exp_avg``,
    ``exp_avg_sq``, ``max_exp_avg_sq``) these are. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.ones(3), torch.tensor([10.0, 0.1, 100.0])
        >>> p, s = adabound_step(p, g, adabound_init(p), lr=0.1, final_lr=0.1, gamma=0.5)
        >>> p  # Adam moves each by 0.1; the band [1/30, 0.3] caps the 2nd rate, lifts the 3rd
        tensor([0.9000, 0.9970, 0.6667])
    """
    _check_adabound(lr, betas, final_lr, gamma, eps, weight_decay)
    _check_adabound_state(state, amsbound)
    return pure_step(_adabound_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1], final_lr=final_lr, gamma=gamma, eps=eps,
        weight_decay=weight_decay, amsbound=amsbound))


class AdaBound(RuleOptimizer):
    """AdaBound / AMSBound; the rule is :func:`adabound_step`, the constructor and defaults are
    those of the authors' ``adabound.AdaBound``.

    Learning-rate schedules: a scheduler changes ``lr`` but knows nothing of ``final_lr``. As in
    the reference implementation, each step uses ``final_lr * lr / base_lr``, where
    ``base_lr`` is the group's learning rate when the group joined the optimizer, so the SGD
    rate the bounds close in on follows the schedule. It is kept in every param group under
    ``"base_lr"`` (the reference keeps it outside the state dict, so a reloaded run there forgets
    it; here it travels with ``state_dict()``); groups loaded from a state dict without it take
    their current ``lr``. A group whose ``base_lr`` is 0 uses ``final_lr`` unscaled.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = AdaBound([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8,
                 weight_decay=0, amsbound=False):
        _check_adabound(lr, betas, final_lr, gamma, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), final_lr=final_lr, gamma=gamma,
                                      eps=eps, weight_decay=weight_decay, amsbound=amsbound))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("base_lr", _number(group["lr"]))

    def __setstate__(self, state):
        super().__setstate__(state)
        # groups saved by the reference package lack both
        for group in self.param_groups:
            group.setdefault("amsbound", False)
            group.setdefault("base_lr", _number(group["lr"]))

    @staticmethod
    def _hp(group):
        beta1, beta2 = group["betas"]
        final_lr = group["final_lr"]
        # a tensor lr (accepted as torch's optimizers accept one) is read as a number here: the
        # bounds are Python floats (one synchronisation per group and step)
        lr = _number(group["lr"])
        if group["base_lr"] != 0:
            final_lr = final_lr * lr / group["base_lr"]
        return dict(lr=lr, beta1=beta1, beta2=beta2, final_lr=final_lr,
                    gamma=group["gamma"], eps=group["eps"], weight_decay=group["weight_decay"],
                    amsbound=group["amsbound"])

    def _init_state(self, param, group):
        return adabound_init(param, amsbound=group["amsbound"])

    def _update(self, param, grad, state, group):
        _adabound_(param, grad, state, **self._hp(group))
