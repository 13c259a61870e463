"""What a training run records: the loss at every step and the losses and metrics of every epoch.

Explained in: book/minibatch.md
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(repr=False)
class History:
    """The record of one training run, as returned by :func:`nnbolts.train.fit`.

    Fields
    ------
    step_loss
        the training loss of every optimizer step (the minibatch loss the gradient was taken of),
        in order; under several workers, the loss of the whole global batch.
    step_lr
        the learning rate of parameter group 0 used by that step.
    epochs
        per-epoch series, one value per completed epoch: ``"train_loss"`` (the mean of that epoch's
        step losses, weighted by batch size), ``"val_loss"`` when there is a validation set, and
        ``"train_<name>"`` / ``"val_<name>"`` for each metric.
    best_epoch
        the epoch (counted from 1) whose monitored value early stopping kept as its best, or None.
    stopped_epoch
        the epoch (counted from 1) after which early stopping ended the run, or None.

    Epochs are counted from 1: ``history.epochs["val_loss"][history.best_epoch - 1]`` is the best
    validation loss, and ``history.epoch`` is the number of completed epochs.

    Why the per-step losses are not Python floats straight away: turning a GPU tensor into a float
    waits for the GPU to finish (a device synchronisation), which on every step would stall the
    pipeline of queued kernels. ``fit`` therefore keeps each step's detached loss tensor on the
    device and converts the whole epoch with one ``torch.stack(...).tolist()`` at the end of the
    epoch (:meth:`extend_steps`).

    Example::

        history = fit(model, loss_fn, optimizer, (X, y), val=(Xv, yv), epochs=20, batch_size=32)
        history.epochs["val_loss"][-1], len(history.step_loss), history.plot()

    Explained in: book/minibatch.md
    """

    step_loss: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    epochs: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_epoch: int | None = None

    @property
    def epoch(self) -> int:
        """The number of completed epochs."""
        return len(self.epochs.get("train_loss", []))

    @property
    def steps(self) -> int:
        """The number of completed optimizer steps."""
        return len(self.step_loss)

    def extend_steps(self, losses, lrs) -> None:
        """Append one epoch of step losses and learning rates.

        ``losses`` may be a list of 0-d device tensors (converted with one synchronisation), a
        1-D tensor, or a list of floats.
        """
        if isinstance(losses, torch.Tensor):
            values = losses.tolist()
        elif losses and isinstance(losses[0], torch.Tensor):
            values = torch.stack(list(losses)).tolist()
        else:
            values = list(losses)
        if len(values) != len(lrs):
            raise ValueError(f"got {len(values)} step losses but {len(lrs)} learning rates")
        self.step_loss.extend(float(v) for v in values)
        self.step_lr.extend(float(v) for v in lrs)

    def log_epoch(self, values: dict[str, float]) -> None:
        """Append one value per series for a completed epoch."""
        for key, value in values.items():
            self.epochs.setdefault(key, []).append(float(value))

    def plot(self, **kwargs):
        """Plot the curves with :func:`nnbolts.plot.plot_histories` (keyword arguments go to it)."""
        from nnbolts.plot import plot_histories

        return plot_histories({"run": self}, **kwargs)

    def to_dict(self) -> dict:
        """Plain Python containers only: a checkpoint then loads with ``weights_only=True``."""
        return {
            "step_loss": list(self.step_loss),
            "step_lr": list(self.step_lr),
            "epochs": {key: list(values) for key, values in self.epochs.items()},
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a dict made by History.to_dict, got {type(data).__name__}")
        missing = {"step_loss", "step_lr", "epochs"} - set(data)
        if missing:
            raise ValueError(f"History.from_dict: missing keys {sorted(missing)}")
        return cls(
            step_loss=[float(v) for v in data["step_loss"]],
            step_lr=[float(v) for v in data["step_lr"]],
            epochs={str(k): [float(v) for v in vs] for k, vs in data["epochs"].items()},
            best_epoch=data.get("best_epoch"),
            stopped_epoch=data.get("stopped_epoch"),
        )

    def __repr__(self) -> str:
        last = ", ".join(f"{key}={values[-1]:.4g}" for key, values in self.epochs.items() if values)
        return (
            f"History(epochs={self.epoch}, steps={self.steps}, best_epoch={self.best_epoch}, "
            f"stopped_epoch={self.stopped_epoch}{', ' + last if last else ''})"
        )
