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
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim.optimizer import _default_to_fused_or_foreach

from .._checks import check_floating, check_like, check_number


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
    with torch.no_grad():
        kernel(new_param, grad.detach(), new_state, **hp)
    return new_param, new_state


def check_lr(lr) -> None:
    check_number("learning rate", lr, low=0.0)


def check_eps(eps) -> None:
    check_number("epsilon value", eps, low=0.0)


def check_weight_decay(weight_decay) -> None:
    check_number("weight_decay value", weight_decay, low=0.0)


def check_betas(betas) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair of numbers)")
    for i, beta in enumerate(betas):
        check_number(f"beta parameter at index {i}", beta, low=0.0, high=1.0, high_open=True)


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
        if foreach is None:
            # Torch's own rule: the multi-tensor path by default on CUDA-like devices only.
            _, foreach = _default_to_fused_or_foreach(params, differentiable=False)
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
