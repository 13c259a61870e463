r"""Lookahead (Zhang, Lucas, Hinton & Ba, NeurIPS 2019, "Lookahead Optimizer: k steps forward,
1 step back"): let any optimizer take k steps ("fast weights"), then move a second copy of the
parameters ("slow weights") a fraction ω (the argument ``alpha``, the name in the authors' code)
of the way towards where the fast weights ended, and restart the fast weights from there.

The slow-weight update is a pure pair on one tensor, :func:`lookahead_init` /
:func:`lookahead_step`, applied *after* each step of the inner optimizer; :class:`Lookahead`
wraps any ``torch.optim.Optimizer`` (nnbolts' or torch's) and is one itself.

Torch has no Lookahead. Explained in: book/optimizers.md.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from .._checks import check_floating, check_int, check_like, check_number
from ._base import copy_state

__all__ = ["Lookahead", "lookahead_init", "lookahead_step"]


def _check_lookahead(k, alpha):
    check_int("k", k, low=1)
    check_number("alpha", alpha, low=0.0, high=1.0)


def _check_lookahead_state(param, state):
    if not isinstance(state, dict):
        raise TypeError(f"expected state to be a dict, got {type(state).__name__}")
    for key in ("slow_param", "lookahead_step"):
        if key not in state:
            raise ValueError(f"state has no {key!r}; create the state with lookahead_init(param)")
    check_like("state['slow_param']", state["slow_param"], "param", param)
    check_int("state['lookahead_step']", state["lookahead_step"], low=0)


def _lookahead_(param, state, *, k, alpha):
    """In-place kernel of :func:`lookahead_step`: count one inner step; every k-th, pull the slow
    weights towards the fast ones and restart the fast weights there."""
    step = state["lookahead_step"] = state["lookahead_step"] + 1
    if step % k == 0:
        slow = state["slow_param"]
        # lerp is θ̄ + ω(θ − θ̄) computed so that ω = 1 gives θ exactly and ω = 0 gives θ̄ exactly
        slow.lerp_(param, alpha)                           # θ̄ ← θ̄ + ω(θ − θ̄), ω = alpha
        param.copy_(slow)                                  # θ ← θ̄


def lookahead_init(param: torch.Tensor) -> dict:
    """Lookahead state for one tensor: the slow weights start as a copy of the parameter, before
    the inner optimizer's first step, and no inner step has been counted."""
    check_floating("param", param)
    return {"slow_param": param.detach().clone(memory_format=torch.preserve_format),
            "lookahead_step": 0}


def lookahead_step(param, state, *, k=5, alpha=0.5):
    r"""Lookahead's slow-weight update for one tensor, to be applied after every step of the
    inner optimizer; returns ``(new_param, new_state)`` and changes nothing.

    With fast weights :math:`\theta` (the parameter, just updated by the inner optimizer), slow
    weights :math:`\bar\theta` (``slow_param``), interpolation factor :math:`\omega` (``alpha``)
    and :math:`t` the number of inner steps so far (after increment):

    .. math::
        \text{if } t \bmod k = 0: \qquad
        \bar\theta &\leftarrow \bar\theta + \omega(\theta - \bar\theta) \\
        \theta &\leftarrow \bar\theta

    and nothing otherwise. ``alpha=1`` is the inner optimizer alone; ``alpha=0`` sends the
    parameter back to where it started every k steps. The inner optimizer's own state (momentum,
    Adam's moments) is left as it is, as in the paper.

    No torch equivalent. Explained in: book/optimizers.md.

    Example::

        >>> p = torch.tensor([0.0])
        >>> state = lookahead_init(p)
        >>> p = torch.tensor([1.0])          # the inner optimizer moved it
        >>> p, state = lookahead_step(p, state, k=1, alpha=0.5)
        >>> p, state["slow_param"], state["lookahead_step"]
        (tensor([0.5000]), tensor([0.5000]), 1)
    """
    _check_lookahead(k, alpha)
    check_floating("param", param)
    _check_lookahead_state(param, state)
    new_param = param.detach().clone()
    new_state = copy_state(state)
    with torch.no_grad():
        _lookahead_(new_param, new_state, k=k, alpha=alpha)
    return new_param, new_state


class Lookahead(torch.optim.Optimizer):
    """Lookahead around any ``torch.optim.Optimizer``; the rule is :func:`lookahead_step`,
    applied to every parameter the inner optimizer updated (those with a gradient), after it.

    It is an optimizer itself: ``param_groups`` and ``defaults`` *are* the inner optimizer's (the
    same objects), so learning-rate schedulers, ``add_param_group`` and ``zero_grad`` act on the
    inner optimizer; ``step(closure)`` runs the inner step and returns its loss; ``state`` holds
    the Lookahead state of each parameter (``slow_param``, ``lookahead_step``), the inner
    optimizer's is ``self.optimizer.state``.

    ``state_dict()`` is the inner optimizer's state dict with one more entry, ``"lookahead"``:
    ``{"k", "alpha", "state": {index: {"slow_param", "lookahead_step"}}}`` (indices as in
    ``"state"``). So it also loads into the bare inner optimizer, and a bare inner state dict
    loads into a Lookahead (the slow weights then restart from the current parameters).

    Example::

        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = Lookahead(torch.optim.SGD([w], lr=0.1), k=2, alpha=0.5)
        >>> for _ in range(2):
        ...     opt.zero_grad(); (w ** 2).sum().backward(); opt.step()
        >>> w.detach()  # SGD went 1 → 0.8 → 0.64; halfway back from 0.64 to 1
        tensor([0.8200])
    """

    def __init__(self, optimizer, k=5, alpha=0.5):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"expected optimizer to be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        _check_lookahead(k, alpha)
        self.__setstate__({"optimizer": optimizer, "k": k, "alpha": alpha,
                           "state": defaultdict(dict)})

    # the inner optimizer's groups, looked up every time: its load_state_dict replaces the list
    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, groups):
        self.optimizer.param_groups = groups

    @property
    def defaults(self):
        return self.optimizer.defaults

    def __getstate__(self):
        return {"optimizer": self.optimizer, "k": self.k, "alpha": self.alpha,
                "state": self.state}

    def __setstate__(self, state):
        # torch.optim.Optimizer.__init__ would build param groups of its own; its __setstate__
        # sets up only the hook tables and the profiler wrapping of step(), which we need. It
        # also adds "differentiable" to the defaults, which here are the inner optimizer's:
        # leave those as they were.
        state = dict(state)
        groups = state.pop("param_groups", None)
        state.pop("defaults", None)
        inner_defaults = state["optimizer"].defaults
        had_flag = "differentiable" in inner_defaults
        super().__setstate__(state)
        if not had_flag:
            inner_defaults.pop("differentiable", None)
        if groups is not None:
            self.param_groups = groups

    def __repr__(self):
        return f"Lookahead(k={self.k}, alpha={self.alpha}, optimizer={self.optimizer!r})"

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict) -> None:
        self.optimizer.add_param_group(param_group)

    def step(self, closure=None):
        """One inner step (with ``closure``, if given), then :func:`lookahead_step` on every
        parameter that has a gradient. Returns the inner step's loss."""
        params = self._params()
        with torch.no_grad():
            # The slow weights must start from the parameters *before* the first inner step.
            # A closure computes the gradients inside the inner step, so then every parameter
            # gets its state now; otherwise only those the inner optimizer is about to update.
            # (.get, not [], and "empty" rather than "absent": self.state is a defaultdict)
            for p in params:
                if not self.state.get(p) and (closure is not None or p.grad is not None):
                    self.state[p] = lookahead_init(p)
        loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
        with torch.no_grad():
            for p in params:
                state = self.state.get(p)
                if p.grad is not None and state:
                    _lookahead_(p, state, k=self.k, alpha=self.alpha)
        return loss

    def _params(self) -> list[torch.Tensor]:
        """All parameters in state-dict order (torch numbers them through the groups in turn)."""
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """The inner optimizer's state dict plus ``"lookahead"`` (see the class docstring)."""
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        state_dict = self.optimizer.state_dict()
        index = {id(p): i for i, p in enumerate(self._params())}
        slow = {index[id(p)]: dict(s) for p, s in self.state.items() if s}
        state_dict["lookahead"] = {"k": self.k, "alpha": self.alpha, "state": slow}
        for hook in self._optimizer_state_dict_post_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict saved by :meth:`state_dict` (or a bare one of the inner optimizer:
        the slow weights then restart from the current parameters)."""
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = dict(result)
        saved = state_dict.pop("lookahead", None)
        if saved is not None:
            _check_lookahead(saved["k"], saved["alpha"])
        self.optimizer.load_state_dict(state_dict)
        self.state = defaultdict(dict)
        if saved is not None:
            self.k, self.alpha = saved["k"], saved["alpha"]
            params = self._params()
            for i, s in saved["state"].items():
                p = params[int(i)]
                # a copy on the parameter's device and dtype, as torch does with inner state
                slow = s["slow_param"].to(device=p.device, dtype=p.dtype, copy=True)
                self.state[p] = {"slow_param": slow, "lookahead_step": int(s["lookahead_step"])}
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)
