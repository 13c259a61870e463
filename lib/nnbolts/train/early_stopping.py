"""Early stopping: end training once the validation curve has stopped improving.

Explained in: book/minibatch.md
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_choice, check_int, check_number


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (whose keys lack "module.")."""
    return getattr(model, "module", model)


class EarlyStopping:
    r"""Stop when the monitored value has not improved for ``patience`` epochs.

    After each epoch call :meth:`update` with the monitored value ``v_t`` (``"val_loss"`` by
    default). With ``mode="min"`` an epoch *improves* when

    .. math::  v_t < v_{\text{best}} - \text{min\_delta}

    (``mode="max"``: ``v_t > v_best + min_delta``), i.e. it must beat the best so far by *more*
    than ``min_delta``. An improving epoch becomes the best one, its weights are copied (a clone of
    the ``state_dict`` kept on the model's device) and the wait counter goes back to 0; otherwise
    the counter grows by one, and when it reaches ``patience`` :meth:`update` returns True: stop.
    ``patience=0`` stops at the first epoch that does not improve. A NaN never improves.

    With ``restore_best=True`` :meth:`restore` (called by ``fit`` at the end of training, whether
    it stopped early or ran out of epochs) loads the best weights back into the model. The whole
    state — best value, best epoch, wait counter, best weights — goes into checkpoints
    (:meth:`state_dict`), so a resumed run stops exactly where the uninterrupted one would.

    Keras' ``EarlyStopping(patience=..., min_delta=..., restore_best_weights=True)`` callback is the
    same rule. Example::

        stopper = EarlyStopping(patience=5)
        history = fit(model, loss_fn, optimizer, train, val=val, epochs=200, batch_size=32,
                      early_stopping=stopper)
        history.best_epoch, history.stopped_epoch

    Explained in: book/minibatch.md
    """

    def __init__(
        self,
        patience: int,
        min_delta: float = 0.0,
        restore_best: bool = True,
        mode: str = "min",
        monitor: str = "val_loss",
    ):
        self.patience = check_int("patience", patience, low=0)
        check_number("min_delta", min_delta, low=0.0)
        self.min_delta = float(min_delta)
        if not isinstance(restore_best, bool):
            raise TypeError(
                f"expected restore_best to be a bool, got {type(restore_best).__name__}"
            )
        self.restore_best = restore_best
        self.mode = check_choice("mode", mode, {"min", "max"})
        if not isinstance(monitor, str):
            raise TypeError(f"expected monitor to be a str, got {type(monitor).__name__}")
        self.monitor = monitor
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far (``fit`` calls this at the start of a fresh run)."""
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.epoch = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float, model: nn.Module | None = None, *, epoch: int | None = None):
        """Record one epoch's monitored value; return True when training should stop.

        ``model`` (optional) is the module whose weights are kept when this epoch is the best.
        ``epoch`` (counted from 1) defaults to one more than the previous call's.
        """
        value = float(value)
        self.epoch = self.epoch + 1 if epoch is None else check_int("epoch", epoch, low=1)
        if self.improves(value):
            self.best = value
            self.best_epoch = self.epoch
            self.wait = 0
            if model is not None and self.restore_best:
                self.best_state = {
                    key: tensor.detach().clone()
                    for key, tensor in _unwrap(model).state_dict().items()
                }
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = self.epoch
            return True
        return False

    @property
    def should_stop(self) -> bool:
        return self.stopped_epoch is not None

    def restore(self, model: nn.Module) -> bool:
        """Load the best weights into ``model`` if ``restore_best`` and some were kept."""
        if not self.restore_best or self.best_state is None:
            return False
        _unwrap(model).load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict:
        """Everything needed to continue: counters, best value and the best weights."""
        return {
            "patience": self.patience,
            "min_delta": self.min_delta,
            "mode": self.mode,
            "monitor": self.monitor,
            "restore_best": self.restore_best,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "epoch": self.epoch,
            "stopped_epoch": self.stopped_epoch,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict, model: nn.Module | None = None) -> None:
        """Restore :meth:`state_dict`'s output; the best weights move to ``model``'s devices.

        The configuration of this object (patience, min_delta, restore_best) is kept, so a resumed
        run may change its patience; ``mode`` and ``monitor`` must match, since they give the
        stored best value its meaning.
        """
        for key in ("mode", "monitor"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"early-stopping state was saved with {key}={state.get(key)!r} but this "
                    f"EarlyStopping has {key}={getattr(self, key)!r}"
                )
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.wait = int(state["wait"])
        self.epoch = int(state["epoch"])
        self.stopped_epoch = state["stopped_epoch"]
        best_state = state["best_state"]
        if best_state is not None and model is not None:
            current = _unwrap(model).state_dict()
            best_state = {
                key: tensor.to(current[key].device) if key in current else tensor
                for key, tensor in best_state.items()
            }
        self.best_state = best_state

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"restore_best={self.restore_best}, mode={self.mode!r}, monitor={self.monitor!r})"
        )
