r"""Schedule-free AdamW (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, 2024, "The Road Less
Scheduled"): no learning-rate schedule, and no need to know the training length in advance.

The method keeps three sequences. :math:`z` takes plain Adam-normalised gradient steps with a
constant rate; :math:`x` is a running weighted average of the :math:`z`'s, the weights to
evaluate; gradients are taken at :math:`y`, an interpolation between the two. Averaging the
iterates does what a decaying schedule does (it damps the noise of the last steps), without
deciding when to decay. The momentum :math:`\beta_1` is the interpolation weight.

Memory: like the authors' ``schedulefree.AdamWScheduleFree`` (package ``schedulefree``, version
1.4.1), the parameter itself holds :math:`y` while training and :math:`x` while evaluating, and
the state keeps only :math:`z` and the second moment :math:`v`: :math:`x` is recovered from
:math:`y` and :math:`z` as :math:`x = (y - (1-\beta_1) z)/\beta_1`. So the optimizer has two
modes, switched by :meth:`ScheduleFreeAdamW.train` and :meth:`ScheduleFreeAdamW.eval`, which
must bracket training and evaluation (``nnbolts.train.fit`` does it). The operations and their
order are the reference's, so trajectories agree with it bit for bit.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import numbers

import torch

from .._checks import check_floating, check_int, check_like, check_number
from ._base import (
    RuleOptimizer,
    check_betas,
    check_eps,
    check_lr,
    check_state,
    check_weight_decay,
    pure_step,
)

__all__ = [
    "ScheduleFreeAdamW", "schedule_free_adamw_init", "schedule_free_adamw_step",
    "schedule_free_adamw_x",
]


def _check_schedule_free_betas(betas):
    check_betas(betas)
    if betas[0] == 0:
        raise ValueError(
            f"Invalid beta parameter at index 0: {betas[0]} (schedule-free needs beta_1 > 0: "
            "the averaged weights x = (y - (1 - beta_1) z) / beta_1 are recovered through it)")


def _check_schedule_free(lr, betas, eps, weight_decay, warmup_steps, r, weight_lr_power):
    check_lr(lr)
    check_eps(eps)
    _check_schedule_free_betas(betas)
    check_weight_decay(weight_decay)
    check_int("warmup_steps", warmup_steps, low=0)
    check_number("r value", r, low=0.0)
    check_number("weight_lr_power value", weight_lr_power, low=0.0)


def _one_element(lr):
    """A one-element tensor ``lr`` of any shape computes as a 0-d one (torch's ``_to_scalar``)."""
    if isinstance(lr, torch.Tensor) and lr.dim() != 0:
        return lr.squeeze()
    return lr


def _coefficients(k, lr, warmup_steps, r, weight_lr_power, lr_max, weight_sum):
    r"""The scalars of step ``k + 1``, computed as the reference computes them.

    Returns ``(scheduled_lr, lr_max, weight_sum, ckp1)``: the warmed-up rate
    :math:`\eta_t`, the largest rate so far, the sum of the averaging weights and the averaging
    coefficient :math:`c_t = w_t / \sum_{i \le t} w_i`. Python floats for a number ``lr`` (a
    0-d tensor for a tensor one, as in the reference).
    """
    sched = (k + 1) / warmup_steps if k < warmup_steps else 1.0
    lr = lr * sched
    lr_max = max(lr, lr_max)
    weight = ((k + 1) ** r) * (lr_max ** weight_lr_power)
    weight_sum = weight_sum + weight
    # the reference catches the ZeroDivisionError of 0.0/0.0 (lr = 0 with weight_lr_power > 0);
    # the test also gives 0 for a tensor lr of 0, where the reference's division gives NaN
    ckp1 = weight / weight_sum if weight_sum != 0 else 0
    return lr, lr_max, weight_sum, ckp1


def _schedule_free_adamw_(y, grad, state, *, lr, beta1, beta2, eps, weight_decay, ckp1,
                          bias_correction2):
    """In-place kernel of one step: ``y`` (the parameter, at the training point) and the state's
    ``z`` and ``exp_avg_sq`` are updated; the step's scalars come from :func:`_coefficients`.

    The reference's single-tensor operations in its order; the one difference is that the
    reference divides ``p.grad`` in place to save memory, and this kernel never modifies the
    gradient (the quotient goes to the denominator's buffer instead: the same numbers)."""
    z, exp_avg_sq = state["z"], state["exp_avg_sq"]
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v ← β₂v + (1−β₂)g²
    denom = exp_avg_sq.div(bias_correction2).sqrt_().add_(eps)     # √v̂ + ϵ
    g = torch.div(grad, denom, out=denom)                          # g / (√v̂ + ϵ)
    if weight_decay != 0:
        g.add_(y, alpha=weight_decay)                              # ĝ = … + λy
    # y ← (1−c)y + cz − η(1 − β₁(1−c))ĝ: the new y = (1−β₁)z + β₁x without storing x
    y.lerp_(end=z, weight=ckp1)
    y.add_(g, alpha=lr * (beta1 * (1 - ckp1) - 1))
    z.sub_(g, alpha=lr)                                            # z ← z − ηĝ


def _schedule_free_adamw_many_(ys, grads, states, *, lr, beta1, beta2, eps, weight_decay, ckp1,
                               bias_correction2):
    """Multi-tensor form of :func:`_schedule_free_adamw_`: the reference's ``foreach`` path, one
    ``torch._foreach_*`` call per operation (gradients left untouched here too)."""
    zs = [s["z"] for s in states]
    exp_avg_sqs = [s["exp_avg_sq"] for s in states]
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    denom = torch._foreach_div(exp_avg_sqs, bias_correction2)
    torch._foreach_sqrt_(denom)
    torch._foreach_add_(denom, eps)
    g = torch._foreach_div(grads, denom)
    del denom
    if weight_decay != 0:
        torch._foreach_add_(g, ys, alpha=weight_decay)
    torch._foreach_lerp_(ys, zs, weight=ckp1)
    torch._foreach_add_(ys, g, alpha=lr * (beta1 * (1 - ckp1) - 1))
    torch._foreach_sub_(zs, g, alpha=lr)


# --------------------------------------------------------------------------------------------
# the pure pair
# --------------------------------------------------------------------------------------------

def schedule_free_adamw_init(param: torch.Tensor) -> dict:
    """State of schedule-free AdamW for one tensor before its first step: ``z`` starts at the
    parameter (so :math:`x = y = z`), ``exp_avg_sq`` at zero; ``step`` 0, ``weight_sum`` 0.0 and
    ``lr_max`` -1.0 are the reference's per-group counters (``k``, ``weight_sum``, ``lr_max``)
    kept here with the tensor."""
    return {
        "step": 0,
        "weight_sum": 0.0,
        "lr_max": -1.0,
        "z": param.detach().clone(memory_format=torch.preserve_format),
        "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
    }


def _check_counters(state):
    check_state(state, ("step", "weight_sum", "lr_max", "z", "exp_avg_sq"),
                "schedule_free_adamw_init(param)")
    if not isinstance(state, dict):
        return
    for key in ("weight_sum", "lr_max"):
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, torch.Tensor)):
            raise TypeError(f"expected state[{key!r}] to be a number, got {type(value).__name__}")


def _pure_kernel(y, grad, state, *, lr, beta1, beta2, eps, weight_decay, warmup_steps, r,
                 weight_lr_power):
    k = state["step"]
    scheduled, lr_max, weight_sum, ckp1 = _coefficients(
        k, lr, warmup_steps, r, weight_lr_power, state["lr_max"], state["weight_sum"])
    state["step"], state["lr_max"], state["weight_sum"] = k + 1, lr_max, weight_sum
    _schedule_free_adamw_(y, grad, state, lr=scheduled, beta1=beta1, beta2=beta2, eps=eps,
                          weight_decay=weight_decay, ckp1=ckp1,
                          bias_correction2=1 - beta2 ** (k + 1))


def schedule_free_adamw_step(param, grad, state, *, lr=0.0025, betas=(0.9, 0.999), eps=1e-8,
                             weight_decay=0, warmup_steps=0, r=0.0, weight_lr_power=2.0):
    r"""One schedule-free AdamW update of one tensor; returns ``(new_param, new_state)`` and
    changes nothing. ``param`` is :math:`y`, the point where ``grad`` was taken.

    With step :math:`t` (after increment), base learning rate :math:`\eta`, rates
    :math:`\beta_1, \beta_2`, :math:`\epsilon`, weight decay :math:`\lambda`, ``warmup_steps``
    :math:`T_w`, ``r`` and ``weight_lr_power`` :math:`q`:

    .. math::
        \eta_t &= \eta \min(1, t/T_w) \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad \hat v = v/(1-\beta_2^t) \\
        \hat g &= g/(\sqrt{\hat v} + \epsilon) + \lambda y \\
        w_t &= t^r \big(\max_{i\le t} \eta_i\big)^q, \qquad
            c_t = w_t \big/ \textstyle\sum_{i\le t} w_i \\
        z &\leftarrow z - \eta_t \hat g \\
        x &\leftarrow (1-c_t)\,x + c_t z \\
        y &\leftarrow (1-\beta_1) z + \beta_1 x

    :math:`x` is not stored: the last two lines are computed as
    :math:`y \leftarrow (1-c_t) y + c_t z_{\text{old}} - \eta_t(1-\beta_1(1-c_t))\hat g`, and
    :func:`schedule_free_adamw_x` gives :math:`x` from :math:`y` and :math:`z`. With ``r = 0`` and
    no warmup, :math:`c_t = 1/t`: :math:`x` is the plain average of the :math:`z`'s; the warmup's
    small rates get small weights through :math:`q`. The decay is taken at :math:`y` and added to
    the normalised gradient, so it enters :math:`z` (and through it :math:`x`) like AdamW's.

    Reference equivalent: ``schedulefree.AdamWScheduleFree([p], lr=lr, betas=betas, eps=eps,
    weight_decay=weight_decay, warmup_steps=warmup_steps, r=r,
    weight_lr_power=weight_lr_power)`` with ``.train()`` then ``.step()`` (``schedulefree``
    1.4.1). State keys ``z`` and ``exp_avg_sq`` are the reference's; its per-group ``k``,
    ``weight_sum`` and ``lr_max`` are ``step``, ``weight_sum`` and ``lr_max`` here.
    Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = schedule_free_adamw_step(p, g, schedule_free_adamw_init(p), lr=0.1)
        >>> p, s["z"], schedule_free_adamw_x(p, s)
        (tensor([0.9000]), tensor([0.9000]), tensor([0.9000]))
    """
    _check_schedule_free(lr, betas, eps, weight_decay, warmup_steps, r, weight_lr_power)
    _check_counters(state)
    return pure_step(_pure_kernel, param, grad, state, dict(
        lr=_one_element(lr), beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
        warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power))


def schedule_free_adamw_x(param, state, *, betas=(0.9, 0.999)):
    r"""The averaged weights :math:`x = (y - (1-\beta_1) z)/\beta_1` for the training point
    ``param`` :math:`= y`, computed as the reference's ``eval()`` does (a ``lerp`` from :math:`y`
    past :math:`z`); returns a new tensor. Before the first step :math:`x = y`.

    Reference equivalent: the parameter after ``optimizer.eval()``. Explained in:
    book/optimizers.md.
    """
    check_floating("param", param)
    _check_schedule_free_betas(betas)
    if not isinstance(state, dict) or "z" not in state:
        raise ValueError("state has no 'z'; create the state with schedule_free_adamw_init(param)")
    check_like("state['z']", state["z"], "param", param)
    with torch.no_grad():
        return param.detach().clone().lerp_(end=state["z"], weight=1 - 1 / betas[0])


# --------------------------------------------------------------------------------------------
# the optimizer
# --------------------------------------------------------------------------------------------

class ScheduleFreeAdamW(RuleOptimizer):
    r"""Schedule-free AdamW; a drop-in for ``schedulefree.AdamWScheduleFree`` whose rule is
    :func:`schedule_free_adamw_step`.

    Options are the reference's: ``lr``, ``betas``, ``eps``, ``weight_decay``, ``warmup_steps``
    (a linear warmup of the rate, the only schedule), ``r`` and ``weight_lr_power`` (the
    averaging weights :math:`w_t = t^r (\max_{i \le t}\eta_i)^q`) and ``foreach`` (``None``: the
    multi-tensor path on CUDA only, torch's rule; the reference defaults to ``True``, which on the
    CPU computes the same numbers).

    Modes, as in the reference. The optimizer starts in *eval* mode; :meth:`train` moves every
    parameter from :math:`x` to the training point :math:`y` and :meth:`eval` back, and
    :meth:`step` refuses to run in eval mode. Call ``optimizer.train()`` with ``model.train()``
    and ``optimizer.eval()`` with ``model.eval()``; ``nnbolts.train.fit`` does both. The mode is
    part of the state dict (each group's ``train_mode``), so a model and optimizer saved together
    in either mode load back consistently.

    The bookkeeping is the reference's too: per parameter ``z`` and ``exp_avg_sq``, per group the
    step ``k``, ``weight_sum``, ``lr_max`` and ``scheduled_lr`` (the last warmed-up rate, for
    logging). State dicts therefore cross to ``schedulefree.AdamWScheduleFree`` and back. Two
    differences: the gradients are left as they were (the reference overwrites ``p.grad`` with the
    normalised gradient), and :meth:`step` checks the mode of every group, not only the first.
    ``lr`` may be a one-element tensor, as in torch.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = ScheduleFreeAdamW([w], lr=0.1)
        >>> opt.train(); (w ** 2).sum().backward(); opt.step()
        >>> opt.eval(); w.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """

    has_foreach = True

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0, foreach=None):
        _check_schedule_free(lr, betas, eps, weight_decay, warmup_steps, r, weight_lr_power)
        # the reference's group keys, in its order
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, r=r, k=0, warmup_steps=warmup_steps,
            train_mode=False, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0,
            weight_lr_power=weight_lr_power, weight_decay=weight_decay, foreach=foreach))

    @torch.no_grad()
    def eval(self) -> None:
        """Evaluation mode: every parameter that has taken a step goes from :math:`y` to the
        averaged weights :math:`x`. Nothing happens for groups already in eval mode."""
        for group in self.param_groups:
            if group["train_mode"]:
                beta1 = group["betas"][0]
                for p in group["params"]:
                    state = self.state.get(p)
                    if state and "z" in state:
                        p.lerp_(end=state["z"].to(p.device), weight=1 - 1 / beta1)
                group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        r"""Training mode: every parameter that has taken a step goes from :math:`x` to the
        training point :math:`y = (1-\beta_1) z + \beta_1 x`. Nothing happens for groups
        already in training mode."""
        for group in self.param_groups:
            if not group["train_mode"]:
                beta1 = group["betas"][0]
                for p in group["params"]:
                    state = self.state.get(p)
                    if state and "z" in state:
                        p.lerp_(end=state["z"].to(p.device), weight=1 - beta1)
                group["train_mode"] = True

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; only in training mode.

        ``closure`` re-evaluates the model and returns the loss, as in ``torch.optim``.
        """
        if not all(group["train_mode"] for group in self.param_groups):
            raise RuntimeError(
                f"{type(self).__name__}.step() was called in eval mode: call optimizer.train() "
                "before training steps and optimizer.eval() before evaluating or saving the "
                "averaged weights (fit does both)")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            k = group["k"]
            lr, lr_max, weight_sum, ckp1 = _coefficients(
                k, _one_element(group["lr"]), group["warmup_steps"], group["r"],
                group["weight_lr_power"], group["lr_max"], group["weight_sum"])
            group["scheduled_lr"], group["lr_max"], group["weight_sum"] = lr, lr_max, weight_sum
            params, grads, states = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[p]
                if "z" not in state:
                    state.update(self._init_state(p, group))
                params.append(p)
                grads.append(p.grad)
                states.append(state)
            if params:
                hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=group["eps"],
                          weight_decay=group["weight_decay"], ckp1=ckp1,
                          bias_correction2=1 - beta2 ** (k + 1))
                if self._use_foreach(group, params):
                    _schedule_free_adamw_many_(params, grads, states, **hp)
                else:
                    for param, grad, state in zip(params, grads, states):
                        _schedule_free_adamw_(param, grad, state, **hp)
            group["k"] = k + 1
        return loss

    def _init_state(self, param, group):
        # the reference's two keys; the counters live in the group
        return {"z": torch.clone(param, memory_format=torch.preserve_format).detach(),
                "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format)}

    def _update(self, param, grad, state, group):  # pragma: no cover - step() does the work
        raise TypeError("ScheduleFreeAdamW updates whole groups in step()")

    group_defaults = dict(foreach=None)  # AdamWScheduleFreeReference saves no foreach
