"""Bookkeeping shared by every nnbolts optimizer.

Each update rule lives in its own module as a pair of pure functions on one tensor,
``<rule>_init(param) -> state`` and ``<rule>_step(param, grad, state, **hp) -> (param, state)``,
which students re-implement and hidden tests compare. Both are thin wrappers around one in-place
kernel ``_<rule>_(param, grad, state, **hp)`` that holds the math. The optimizer classes below call
that kernel directly, so the library does not pay for the copies that purity costs; the
``torch.optim.Optimizer`` base gives them ``param_groups``, ``zero_grad``, ``state_dict`` and
compatibility with ``torch.optim.lr_scheduler``.

State dicts use torch's keys (``step``, ``exp_avg``, ``momentum_buffer``, ...), so a
``state_dict()`` saved from an nnbolts optimizer loads into the torch optimizer of the same name and
back. One deliberate difference: ``state["step"]`` is a Python ``int``, not torch's float32 CPU
tensor. An int keeps every state tensor on the parameter's device (torch's CPU scalar is the one
exception to device-faithfulness in torch.optim), needs no device synchronisation to read, and is
what a student writes. Torch optimizers convert an int step to their tensor on load; nnbolts
converts torch's tensor step to an int on load (:meth:`RuleOptimizer.load_state_dict`).

Tensor learning rates. As in torch, ``lr`` may be a one-element tensor (``torch.tensor(0.01)``,
for compiled training loops and schedulers that update it in place). The group keeps the very
tensor given; the kernels compute with it exactly as torch's do (the same tensor arithmetic, then
the same conversion to a Python scalar where an operation takes one), so trajectories with a
tensor ``lr`` agree with torch's bit for bit too. Note that a float32 ``lr`` tensor is not the
same learning rate as the Python float it was made from (0.01 rounds to 0.0099999998), so a
tensor-lr trajectory differs slightly from the float-lr one, in torch as here. Where torch refuses
a tensor ``lr`` (Adam and AdamW on their multi-tensor path without ``capturable``), nnbolts
refuses it with torch's message; with ``foreach=None`` both fall back to the one-tensor path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch.optim.optimizer import _default_to_fused_or_foreach

from .._checks import check_floating, check_like, check_number, check_number_or_tensor


def copy_state(state: dict) -> dict:
    """A copy of ``state`` whose tensors can be updated in place, leaving the original intact."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def check_step_inputs(param, grad, state) -> None:
    """Validation shared by the pure ``*_step`` functions."""
    check_floating("param", param)
    check_like("grad", grad, "param", param)
    if not isinstance(state, dict):
        raise TypeError(f"expected state to be a dict, got {type(state).__name__}")
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            check_like(f"state[{key!r}]", value, "param", param)


def check_state(state, keys, hint: str) -> None:
    """A pure step needs the state its ``*_init`` made (``hint`` says which call), with an int
    step count. A ``state`` that is not a dict is left to :func:`check_step_inputs`."""
    if not isinstance(state, dict):
        return
    for key in keys:
        if key not in state:
            raise ValueError(f"state has no {key!r}; create the state with {hint}")
    step = state.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise TypeError(f"expected state['step'] to be an int >= 0, got {step!r}")


def pure_step(kernel: Callable, param, grad, state, hp: dict):
    """Run the in-place ``kernel`` on copies: the pure form ``(param, state) -> (new, new)``."""
    check_step_inputs(param, grad, state)
    new_param = param.detach().clone()
    new_state = copy_state(state)
    if "lr" in hp:  # a one-element tensor lr computes as a 0-d one, as in the classes
        hp = {**hp, "lr": scalar_lr(hp["lr"])}
    with torch.no_grad():
        kernel(new_param, grad.detach(), new_state, **hp)
    return new_param, new_state


def check_lr(lr, *, foreach=None, capturable=False, foreach_takes_tensor=True) -> None:
    """``lr`` is a number >= 0 or, as torch allows, a one-element tensor holding one.

    ``foreach_takes_tensor=False`` is for rules whose torch multi-tensor path refuses a tensor
    ``lr`` unless ``capturable`` (torch's Adam and AdamW): then ``foreach=True`` with a tensor
    ``lr`` is refused with torch's message.
    """
    if (isinstance(lr, torch.Tensor) and not foreach_takes_tensor and foreach
            and not capturable):
        raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
    check_number_or_tensor("learning rate", "lr", lr, low=0.0)


def scalar_lr(lr):
    """``lr`` as the kernels use it: a one-element tensor of any shape becomes 0-d (torch's
    ``_to_scalar``); a number or a 0-d tensor is returned as it is."""
    if isinstance(lr, torch.Tensor) and lr.dim() != 0:
        return lr.squeeze()
    return lr


def check_eps(eps) -> None:
    check_number("epsilon value", eps, low=0.0)


def check_weight_decay(weight_decay) -> None:
    check_number("weight_decay value", weight_decay, low=0.0)


def check_flag_off(name: str, value, why: str) -> None:
    """A torch option that nnbolts accepts (so that torch's keyword arguments and state dicts
    carry over) but only in its default, off, position: ``True`` is refused, saying ``why``."""
    if value:
        raise ValueError(f"{name}=True is not supported by nnbolts: {why}")


def check_betas(betas) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair of numbers)")
    for i, beta in enumerate(betas):
        check_number(f"beta parameter at index {i}", beta, low=0.0, high=1.0, high_open=True)


def by_device_and_dtype(params) -> list[list[int]]:
    """Index lists of ``params`` sharing a device and dtype (one list in the usual case), for
    the multi-tensor kernels, whose ``torch._foreach_*`` calls take one device and dtype."""
    first = params[0]
    if all(p.dtype == first.dtype and p.device == first.device for p in params):
        return [list(range(len(params)))]
    groups: dict = {}
    for i, p in enumerate(params):
        groups.setdefault((p.device, p.dtype), []).append(i)
    return list(groups.values())


class RuleOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose update is a one-tensor kernel (and, optionally, a
    multi-tensor kernel for the same rule).

    Subclasses define ``_init_state(param, group) -> dict`` (the rule's ``*_init``),
    ``_update(param, grad, state, group)`` (the rule's in-place kernel with the group's
    hyperparameters) and, for a multi-tensor fast path, ``_update_many(params, grads, states,
    group)``. Everything else (closures, skipping parameters without a gradient, lazily creating
    state, choosing the fast path where torch would choose its own) is here.
    """

    #: whether the subclass provides ``_update_many``
    has_foreach = False
    #: whether that multi-tensor path takes a tensor ``lr`` (torch's Adam's does not unless
    #: capturable, which nnbolts does not offer; it then falls back as torch does)
    foreach_takes_tensor_lr = True
    #: options a loaded param group may lack (saved by torch's optimizer of the same name, which
    #: has no nnbolts-only switches, or by an older torch), filled in with their defaults
    group_defaults: dict = {}

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.group_defaults.items():
                group.setdefault(key, value)

    def _init_state(self, param: torch.Tensor, group: dict) -> dict:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not define _init_state")

    def _update(self, param, grad, state, group) -> None:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not define _update")

    def _update_many(self, params, grads, states, group) -> None:
        for param, grad, state in zip(params, grads, states):
            self._update(param, grad, state, group)

    def _use_foreach(self, group: dict, params: list[torch.Tensor]) -> bool:
        if not self.has_foreach:
            return False
        foreach = group.get("foreach")
        tensor_lr_refused = (isinstance(group.get("lr"), torch.Tensor)
                             and not self.foreach_takes_tensor_lr
                             and not group.get("capturable", False))
        if foreach is None:
            # Torch's own rule: the multi-tensor path by default on CUDA-like devices only,
            # and not where that path would refuse the group's tensor lr.
            _, foreach = _default_to_fused_or_foreach(params, differentiable=False)
            if tensor_lr_refused:
                foreach = False
        elif foreach and tensor_lr_refused:
            # an lr made a tensor after construction; torch's multi-tensor step refuses it so
            raise RuntimeError(
                "lr as a Tensor is not supported for capturable=False and foreach=True")
        return bool(foreach)

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one update of every parameter that has a gradient.

        ``closure`` re-evaluates the model and returns the loss, as in ``torch.optim``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, states = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p, group))
                params.append(p)
                grads.append(p.grad)
                states.append(state)
            if not params:
                continue
            lr = group.get("lr")
            if isinstance(lr, torch.Tensor) and lr.dim() != 0:
                # a one-element tensor of any shape computes as a 0-d one (torch's _to_scalar);
                # the group keeps the tensor it was given
                group = {**group, "lr": scalar_lr(lr)}
            if self._use_foreach(group, params):
                self._update_many(params, grads, states, group)
            else:
                for param, grad, state in zip(params, grads, states):
                    self._update(param, grad, state, group)
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict saved by this optimizer or by the torch optimizer of the same name."""
        super().load_state_dict(state_dict)
        for state in self.state.values():
            step = state.get("step")
            if isinstance(step, torch.Tensor):
                # torch keeps a float32 tensor; the count is exact below 2**24 steps
                state["step"] = int(step.item())


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step`` must be given a closure that re-evaluates the loss
    (``torch.optim.LBFGS``, :class:`nnbolts.optim.LBFGS`): its ``closure`` parameter has no
    default. Read from the signature, not the class, so any such optimizer is recognised.
    ``nnbolts.train.fit`` and ``nnbolts.landscapes.descend`` call ``step(closure)`` for these.

    Explained in: book/optimizers.md.
    """
    try:
        parameters = inspect.signature(optimizer.step).parameters
    except (TypeError, ValueError):  # a builtin without a signature: the usual step()
        return False
    closure = parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


def has_modes(optimizer: torch.optim.Optimizer) -> bool:
    """Whether the optimizer keeps separate training and evaluation weights, switched by its
    ``train()`` and ``eval()`` methods (schedule-free optimizers: :class:`nnbolts.optim.
    ScheduleFreeAdamW`, the ``schedulefree`` package's). ``torch.optim.Optimizer`` has neither
    method. ``nnbolts.train.fit`` and ``nnbolts.landscapes.descend`` switch such an optimizer to
    ``train()`` before stepping.

    Explained in: book/optimizers.md.
    """
    return all(callable(getattr(optimizer, name, None)) for name in ("train", "eval"))
