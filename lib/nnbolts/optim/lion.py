r"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of an
interpolation between the momentum and the gradient, so every coordinate moves by exactly the
learning rate.

The rule was found by a program search over update rules. It keeps one buffer (Adam keeps two)
and its step has the same size :math:`\eta` in every coordinate, like signSGD; the momentum is
updated *after* the step with its own, slower rate :math:`\beta_2`. Because the steps are large,
the authors' learning rates are 3 to 10 times smaller than AdamW's and their weight decay
:math:`\lambda` as many times larger, keeping the product :math:`\eta\lambda` about the same.

The reference is the authors' PyTorch port, ``lion_pytorch.Lion`` (package ``lion-pytorch``,
version 0.2.5), whose operations and their order this module repeats, so that trajectories agree
with it bit for bit. Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._base import RuleOptimizer, check_lr, check_state, check_weight_decay, pure_step

__all__ = ["Lion", "lion_init", "lion_step"]


def _check_lion(lr, betas, weight_decay, decoupled_weight_decay, initial_lr=None):
    check_lr(lr)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair of numbers)")
    for i, beta in enumerate(betas):
        # the closed interval, as lion-pytorch asserts: beta_1 = 0 or beta_2 = 1 give signSGD
        check_number(f"beta parameter at index {i}", beta, low=0.0, high=1.0)
    check_weight_decay(weight_decay)
    if not isinstance(decoupled_weight_decay, bool):
        raise TypeError("expected decoupled_weight_decay to be a bool, got "
                        f"{type(decoupled_weight_decay).__name__}")
    if decoupled_weight_decay:
        base = lr if initial_lr is None else initial_lr
        if initial_lr is not None:
            check_lr(initial_lr)
        if not base > 0:
            raise ValueError(
                f"Invalid learning rate: {base} (decoupled weight decay divides by the initial "
                "learning rate, which must be > 0)")


def _lion_(param, grad, state, *, lr, beta1, beta2, weight_decay):
    """In-place Lion kernel: the math of :func:`lion_step`, in the operation order of
    ``lion_pytorch``'s ``update_fn``. ``weight_decay`` is the coefficient applied with ``lr``
    (already divided by the initial rate for decoupled decay)."""
    if weight_decay != 0:                      # lion-pytorch multiplies by 1.0 otherwise: exact
        param.mul_(1.0 - lr * weight_decay)    # θ ← (1 − ηλ)θ
    exp_avg = state["exp_avg"]
    # c = β₁m + (1−β₁)g, and the step is its sign (0 where c is 0)
    update = exp_avg.mul(beta1).add_(grad, alpha=1.0 - beta1).sign_()
    param.add_(update, alpha=-lr)              # θ ← θ − η sign(c)
    exp_avg.mul_(beta2).add_(grad, alpha=1.0 - beta2)  # m ← β₂m + (1−β₂)g


def lion_init(param: torch.Tensor) -> dict:
    """State of Lion for one tensor, as ``lion_pytorch`` creates it: a zero momentum ``exp_avg``
    on the parameter's device and dtype (no step count: the rule needs none)."""
    return {"exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format)}


def _decay(lr, weight_decay, decoupled, initial_lr):
    # lion-pytorch: ``wd /= init_lr`` before ``1 - lr * wd``, in this order
    if decoupled and weight_decay != 0:
        return weight_decay / (lr if initial_lr is None else initial_lr)
    return weight_decay


def lion_step(param, grad, state, *, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0,
              decoupled_weight_decay=False, initial_lr=None):
    r"""One Lion update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g`, momentum :math:`m` (``exp_avg``), learning rate :math:`\eta`,
    interpolation and momentum rates :math:`\beta_1, \beta_2` and weight decay :math:`\lambda`:

    .. math::
        c &= \beta_1 m + (1-\beta_1) g \\
        \theta &\leftarrow (1-\eta\lambda)\,\theta - \eta\,\operatorname{sign}(c) \\
        m &\leftarrow \beta_2 m + (1-\beta_2) g

    :math:`\operatorname{sign}(0) = 0`. The decay is decoupled from the gradient, as in AdamW.
    With ``decoupled_weight_decay=True`` it is also decoupled from the learning rate, as
    ``lion_pytorch`` does it: :math:`\lambda` is divided by the initial learning rate
    :math:`\eta_0` (``initial_lr``, default ``lr``), so the shrink factor is
    :math:`1 - \lambda\,\eta/\eta_0`: :math:`1-\lambda` per step at the initial rate, scaled down
    with it by a schedule.

    Reference equivalent: ``lion_pytorch.Lion([p], lr=lr, betas=betas,
    weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay).step()``
    (``lion-pytorch`` 0.2.5; its ``initial_lr`` is the constructor's ``lr``). State key:
    ``exp_avg``, as there. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.0])
        >>> p, s = lion_step(p, g, lion_init(p), lr=0.1)
        >>> p, s["exp_avg"]
        (tensor([ 0.9000, -1.0000]), tensor([0.0050, 0.0000]))
    """
    _check_lion(lr, betas, weight_decay, decoupled_weight_decay, initial_lr)
    check_state(state, ("exp_avg",), "lion_init(param)")
    return pure_step(_lion_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1],
        weight_decay=_decay(lr, weight_decay, decoupled_weight_decay, initial_lr)))


class Lion(RuleOptimizer):
    r"""Lion; a drop-in for ``lion_pytorch.Lion`` whose rule is :func:`lion_step`.

    The options are the reference's: ``lr``, ``betas``, ``weight_decay`` and
    ``decoupled_weight_decay`` (then :math:`\lambda` is divided by the constructor's ``lr``, the
    same initial rate for every parameter group, as the reference does; not saved in the state
    dict, there either). State dicts cross to ``lion_pytorch.Lion`` and back: the same group keys
    and the one state key ``exp_avg``. The reference's ``use_triton`` (a CUDA kernel) is not
    offered. ``lr`` may be a one-element tensor, as in torch; for the decoupled decay its
    initial value is kept (the reference keeps the tensor, which a scheduler then changes in
    place, so that its decay stops following the schedule).

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = Lion([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0,
                 decoupled_weight_decay=False):
        _check_lion(lr, betas, weight_decay, decoupled_weight_decay)
        # a tensor lr is changed in place by torch's schedulers: keep its initial value (the
        # reference keeps the tensor itself, so that its decoupled decay stops following them)
        self.initial_lr = lr.detach().clone().reshape(()) if isinstance(lr, torch.Tensor) else lr
        self.decoupled_weight_decay = decoupled_weight_decay
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    def _init_state(self, param, group):
        return lion_init(param)

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        _lion_(param, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2,
               weight_decay=_decay(group["lr"], group["weight_decay"],
                                   self.decoupled_weight_decay, self.initial_lr))
