r"""ASGD: stochastic gradient descent with a decaying step and a running (Polyak-Ruppert) average
of the iterates (Polyak & Juditsky, 1992; Bottou, 2012, "Stochastic Gradient Descent Tricks"), in
PyTorch's form.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import _get_scalar_dtype

from .._checks import check_floating, check_like, check_number, check_tensor
from ._base import (
    RuleOptimizer,
    by_device_and_dtype,
    check_flag_off,
    check_lr,
    check_state,
    check_weight_decay,
    copy_state,
    scalar_lr,
)

__all__ = ["ASGD", "asgd_init", "asgd_step"]

_NO_CAPTURE = ("the step count is a Python int (see nnbolts.optim._base), so the update cannot "
               "be captured in a CUDA graph; use torch.optim.ASGD(capturable=True)")
_NO_GRAD = ("the update runs under torch.no_grad(); use torch.optim.ASGD(differentiable=True) "
            "to differentiate through it")


def _check_asgd(lr, lambd, alpha, t0, weight_decay, capturable=False, differentiable=False):
    # torch checks lr and weight_decay only; the others are checked here too, after them
    check_lr(lr)
    check_weight_decay(weight_decay)
    check_number("lambd value", lambd, low=0.0)
    check_number("alpha value", alpha, low=0.0)
    check_number("t0 value", t0)
    check_flag_off("capturable", capturable, _NO_CAPTURE)
    check_flag_off("differentiable", differentiable, _NO_GRAD)


def _check_asgd_state(param, grad, state):
    """The pure step's inputs: ``ax`` shaped like ``param``; ``eta`` and ``mu`` 0-d floating
    tensors on the parameter's device (torch's form; float32 unless loaded otherwise)."""
    check_floating("param", param)
    check_like("grad", grad, "param", param)
    check_state(state, ("step", "eta", "mu", "ax"), "asgd_init(param, lr=lr)")
    if not isinstance(state, dict):
        raise TypeError(f"expected state to be a dict, got {type(state).__name__}")
    check_like("state['ax']", state["ax"], "param", param)
    for key in ("eta", "mu"):
        value = check_floating(f"state[{key!r}]", check_tensor(f"state[{key!r}]", state[key]))
        if value.dim() != 0:
            raise ValueError(f"expected state[{key!r}] to be a 0-d tensor, got shape "
                             f"{tuple(value.shape)}")
        if value.device != param.device:
            raise ValueError(f"state[{key!r}] is on {value.device} but param is on "
                             f"{param.device}")


def _asgd_(param, grad, state, *, lr, lambd, alpha, t0, weight_decay, maximize):
    """In-place ASGD kernel: the math of :func:`asgd_step`, in the operation order of torch's
    single-tensor ASGD (so trajectories agree bit for bit on CPU).

    Like torch's, it reads ``eta`` and ``mu`` back from their 0-d tensors (a device
    synchronisation each on a GPU); on the ``meta`` device, which has no values, it applies the
    same operations with the tensors themselves.
    """
    step = state["step"] = state["step"] + 1
    eta, mu, ax = state["eta"], state["mu"], state["ax"]
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)               # g ← g + λθ     (L2 penalty)
    if param.device.type == "meta":
        param.mul_(1 - lambd * eta).addcmul_(g, eta, value=-1)
        ax.add_(param.sub(ax).mul_(mu))
    else:
        eta_value = eta.item()                             # η_t, stored by the previous step
        param.mul_(1 - lambd * eta_value)                  # θ ← (1 − λ'η_t)θ
        param.add_(g, alpha=-eta_value)                    # θ ← θ − η_t g
        if mu.item() != 1:
            ax.add_(param.sub(ax).mul_(mu))                # θ̄ ← θ̄ + (θ − θ̄)/max(1, t − t₀)
        else:
            ax.copy_(param)                                # before t₀ the "average" is θ itself
    # the next step's rate and averaging weight, rounded to torch's default dtype as torch's are
    eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * step) ** alpha)))
    mu.copy_(torch.as_tensor(1 / max(1, step - t0)))


def _asgd_many_(params, grads, states, *, lr, lambd, alpha, t0, weight_decay, maximize):
    """Multi-tensor ASGD, in the operations and order of torch's multi-tensor ASGD, which
    differ from its one-tensor path: no device synchronisation (``eta`` and ``mu`` enter as
    tensors, and the average is always updated as θ̄ + μ(θ − θ̄)), the shrink and the gradient
    step fused as θ − η_t(g + λ'θ), and η_{t+1} computed with torch's float32 step count. So
    the two paths agree to float32 rounding, as torch's do. All tensors share a device and
    dtype (the class groups them so); gradients are never modified."""
    axs = [s["ax"] for s in states]
    mus = [s["mu"] for s in states]
    etas = [s["eta"] for s in states]
    steps = []
    for s in states:
        s["step"] += 1
        steps.append(s["step"])
    g = torch._foreach_neg(grads) if maximize else grads
    if weight_decay != 0:
        if maximize:
            torch._foreach_add_(g, params, alpha=weight_decay)
            intermediate = g
        else:
            intermediate = torch._foreach_add(grads, params, alpha=weight_decay)
        torch._foreach_add_(intermediate, params, alpha=lambd)       # g + λθ + λ'θ
    else:
        intermediate = torch._foreach_add(g, params, alpha=lambd)    # g + λ'θ
    torch._foreach_addcmul_(params, intermediate, etas, value=-1)   # θ ← θ − η_t(g + λ'θ)
    del intermediate
    difference = torch._foreach_sub(params, axs)
    torch._foreach_addcmul_(axs, difference, mus)                   # θ̄ ← θ̄ + μ(θ − θ̄)
    del difference
    device = params[0].device
    scalar_dtype = _get_scalar_dtype()
    # torch's step count is a float32 (scalar-dtype) tensor here, and enters the arithmetic
    new_etas = [torch.as_tensor(
        lr / ((1 + lambd * lr * torch.tensor(float(t), dtype=scalar_dtype)) ** alpha),
        device=device) for t in steps]
    new_mus = [torch.as_tensor(1 / max(1, t - t0), device=device) for t in steps]
    torch._foreach_copy_(etas, new_etas)
    torch._foreach_copy_(mus, new_mus)


def asgd_init(param: torch.Tensor, *, lr=1e-2) -> dict:
    """State of ASGD for one tensor, as torch creates it: ``step`` 0 (a Python int here),
    ``eta`` the learning rate and ``mu`` 1 as 0-d tensors of torch's scalar dtype (float32, or
    float64 under a float64 default dtype) on the parameter's device, and a zero running
    average ``ax`` shaped like the parameter. ``lr`` may be a one-element tensor."""
    check_lr(lr)
    dtype = _get_scalar_dtype()
    return {
        "step": 0,
        "eta": torch.as_tensor(scalar_lr(lr), device=param.device, dtype=dtype).clone().detach(),
        "mu": torch.ones((), device=param.device, dtype=dtype),
        "ax": torch.zeros_like(param, memory_format=torch.preserve_format),
    }


def asgd_step(param, grad, state, *, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
              maximize=False):
    r"""One ASGD update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), step :math:`t` (after increment), learning
    rate :math:`\eta`, decay :math:`\lambda'` (``lambd``), weight decay :math:`\lambda`, the
    decay power ``alpha`` and the step ``t0`` at which averaging starts, :math:`t_0`:

    .. math::
        g &\leftarrow g + \lambda\theta \\
        \theta &\leftarrow (1 - \lambda'\eta_t)\,\theta - \eta_t\, g \\
        \bar\theta &\leftarrow \bar\theta + \frac{\theta - \bar\theta}{\max(1,\ t-1-t_0)} \\
        \eta_{t+1} &= \frac{\eta}{(1 + \lambda'\eta\, t)^{\mathtt{alpha}}}

    with :math:`\eta_1 = \eta`. The step size decays like :math:`t^{-\mathtt{alpha}}` (0.75 by
    default, Bottou's choice); the iterate average :math:`\bar\theta` (``ax``) is a copy of
    :math:`\theta` up to step :math:`t_0 + 2` and from then on the mean of the iterates since
    that step. The average is what ASGD returns as its estimate; the optimizer keeps training
    :math:`\theta` and leaves :math:`\bar\theta` in its state (read it with
    ``opt.state[p]["ax"]``). Torch's default :math:`t_0 = 10^6` means no averaging in most runs.

    Equivalent torch call: ``torch.optim.ASGD([p], lr=lr, lambd=lambd, alpha=alpha, t0=t0,
    weight_decay=weight_decay, maximize=maximize).step()``. State keys and types are torch's:
    ``step`` (a Python int here), ``eta`` (:math:`\eta_{t+1}`) and ``mu`` (the averaging weight
    of the next step, :math:`1/\max(1, t-t_0)`) as 0-d tensors of torch's scalar dtype on the
    parameter's device, ``ax`` (:math:`\bar\theta`). Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = asgd_step(p, g, asgd_init(p, lr=0.1), lr=0.1, lambd=0.0)
        >>> p, s["ax"]
        (tensor([0.9500]), tensor([0.9500]))
    """
    _check_asgd(lr, lambd, alpha, t0, weight_decay)
    _check_asgd_state(param, grad, state)
    new_param = param.detach().clone()
    new_state = copy_state(state)
    with torch.no_grad():
        _asgd_(new_param, grad.detach(), new_state, lr=scalar_lr(lr), lambd=lambd, alpha=alpha,
               t0=t0, weight_decay=weight_decay, maximize=maximize)
    return new_param, new_state


class ASGD(RuleOptimizer):
    """ASGD (averaged SGD); a drop-in for ``torch.optim.ASGD`` whose rule is :func:`asgd_step`.

    Every torch option is accepted. ``foreach=None`` picks the multi-tensor path where torch
    picks its own (CUDA); ``True``/``False`` force it. Like torch's, the multi-tensor path
    needs no device synchronisation and is rounded differently (see :func:`_asgd_many_`); each
    path matches torch's namesake path. ``capturable`` and ``differentiable`` are accepted in
    their default, ``False``, position only, so that torch's keyword arguments and state dicts
    carry over.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = ASGD([w], lr=0.1, t0=0)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach(), opt.state[w]["ax"]
        (tensor([0.8000, 0.8000, 0.8000]), tensor([0.8000, 0.8000, 0.8000]))
    """

    has_foreach = True

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        _check_asgd(lr, lambd, alpha, t0, weight_decay, capturable, differentiable)
        super().__init__(params, dict(
            lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable))

    group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)

    def _init_state(self, param, group):
        return asgd_init(param, lr=group["lr"])

    @staticmethod
    def _hp(group):
        return dict(lr=group["lr"], lambd=group["lambd"], alpha=group["alpha"], t0=group["t0"],
                    weight_decay=group["weight_decay"], maximize=group["maximize"])

    def _update(self, param, grad, state, group):
        _asgd_(param, grad, state, **self._hp(group))

    def _update_many(self, params, grads, states, group):
        hp = self._hp(group)
        for idx in by_device_and_dtype(params):
            _asgd_many_([params[i] for i in idx], [grads[i] for i in idx],
                        [states[i] for i in idx], **hp)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict saved by this optimizer or by ``torch.optim.ASGD``.

        As in torch, the load casts ``eta`` and ``mu`` to the parameter's dtype and device; a
        state dict whose ``eta``/``mu`` are Python numbers (torch accepts those too) gets them
        as 0-d tensors of torch's scalar dtype, as torch's loader makes them.
        """
        super().load_state_dict(state_dict)
        dtype = _get_scalar_dtype()
        for p, state in self.state.items():
            for key in ("eta", "mu"):
                if key in state and not isinstance(state[key], torch.Tensor):
                    state[key] = torch.tensor(state[key], dtype=dtype, device=p.device)
