r"""AdaGrad: each coordinate's step is divided by the root of its summed squared gradients.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._base import RuleOptimizer, check_eps, check_lr, check_state, check_weight_decay, pure_step

__all__ = ["Adagrad", "adagrad_init", "adagrad_step"]


def _check_adagrad(lr, lr_decay, weight_decay, eps):
    check_lr(lr)
    check_number("lr_decay value", lr_decay, low=0.0)
    check_weight_decay(weight_decay)
    check_eps(eps)


def _check_initial_accumulator(value):
    check_number("initial_accumulator_value value", value, low=0.0)


def _adagrad_(param, grad, state, *, lr, lr_decay, weight_decay, eps, maximize):
    """In-place AdaGrad kernel: the math of :func:`adagrad_step`."""
    state["step"] += 1
    t = state["step"]
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)                # g ← g + λθ  (L2 penalty)
    # the decay is a Python float from the int step: no tensor, no device round trip
    lr_t = lr / (1 + (t - 1) * lr_decay)                    # η_t = η / (1 + (t−1)k), k = lr_decay
    s = state["sum"]
    s.addcmul_(g, g)                                        # G ← G + g⊙g   (s is G)
    # ϵ is added outside the root, as in torch and the Deep Learning book (algorithm 8.4)
    denom = s.sqrt().add_(eps)
    param.addcdiv_(g, denom, value=-lr_t)                   # θ ← θ − η_t g / (√G + ϵ)


def adagrad_init(param: torch.Tensor, *, initial_accumulator_value=0.0) -> dict:
    """State of AdaGrad for one tensor: ``{"step": 0, "sum": initial_accumulator_value}``, the
    sum shaped like ``param`` (torch's keys; the step is an int, see :mod:`nnbolts.optim._base`)."""
    _check_initial_accumulator(initial_accumulator_value)
    total = torch.full_like(param, initial_accumulator_value, memory_format=torch.preserve_format)
    return {"step": 0, "sum": total}


def adagrad_step(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                 maximize=False):
    r"""One AdaGrad update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), learning rate :math:`\eta`, decay
    :math:`k` (``lr_decay``), weight decay :math:`\lambda` and step count :math:`t` (after
    increment):

    .. math::
        g &\leftarrow g + \lambda\theta \\
        G &\leftarrow G + g \odot g \\
        \eta_t &= \frac{\eta}{1 + (t-1)k} \\
        \theta &\leftarrow \theta - \eta_t \frac{g}{\sqrt{G} + \epsilon}

    Root, division and square are element-wise; :math:`G` (``sum``) starts at
    ``initial_accumulator_value`` (see :func:`adagrad_init`). With ``lr_decay=0`` and
    :math:`G_0 = 0` this is algorithm 8.4 of the Deep Learning book (which writes :math:`r` for
    :math:`G`, :math:`\epsilon` for :math:`\eta` and :math:`\delta` for ``eps``). Because
    :math:`G` only grows, a constant gradient :math:`g_0` gives :math:`G = t g_0^2` and a step of
    :math:`\eta / \sqrt{t}`: AdaGrad anneals its own learning rate like :math:`1/\sqrt{t}`.

    Equivalent torch call: ``torch.optim.Adagrad([p], lr=lr, lr_decay=lr_decay,
    weight_decay=weight_decay, initial_accumulator_value=..., eps=eps,
    maximize=maximize).step()``. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = adagrad_step(p, g, adagrad_init(p), lr=0.1)
        >>> p, s["sum"], s["step"]
        (tensor([0.9000]), tensor([0.2500]), 1)
    """
    _check_adagrad(lr, lr_decay, weight_decay, eps)
    check_state(state, ("step", "sum"), "adagrad_init(param)")
    return pure_step(_adagrad_, param, grad, state, dict(
        lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize))


class Adagrad(RuleOptimizer):
    """AdaGrad; a drop-in for ``torch.optim.Adagrad``. The rule is :func:`adagrad_step`.

    As in torch, the state of every parameter is created by the constructor (so a state_dict
    taken before the first step already holds the accumulators), and the accumulator starts at
    the constructor's ``initial_accumulator_value`` in every param group: torch ignores a
    per-group value, and matching it keeps the two trajectories equal. ``foreach`` is accepted
    for compatibility; the one-tensor rule is always used.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, foreach=None, *, maximize=False):
        _check_adagrad(lr, lr_decay, weight_decay, eps)
        _check_initial_accumulator(initial_accumulator_value)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, foreach=foreach, maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].update(self._init_state(p, group))

    group_defaults = dict(foreach=None, maximize=False)

    def _init_state(self, param, group):
        return adagrad_init(
            param, initial_accumulator_value=self.defaults["initial_accumulator_value"])

    def _update(self, param, grad, state, group):
        _adagrad_(param, grad, state, lr=group["lr"], lr_decay=group["lr_decay"],
                  weight_decay=group["weight_decay"], eps=group["eps"],
                  maximize=group["maximize"])
