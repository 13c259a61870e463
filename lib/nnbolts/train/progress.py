"""A one-line text progress bar on stderr, with no dependency, that stays quiet when nobody sees it.

Explained in: book/minibatch.md
"""

from __future__ import annotations

import os
import sys
import time

_WIDTH = 24
_REFRESH_SECONDS = 0.1


def progress_enabled(progress) -> bool:
    """Whether a bar should be drawn for the setting ``progress``.

    ``False``: never. ``"always"``: always. ``True``: only when stderr is a terminal and the
    environment variable ``CI`` is unset — so logs, notebooks run by the book build, pytest and CI
    jobs stay clean.
    """
    if progress is False:
        return False
    if progress == "always":
        return True
    if os.environ.get("CI"):
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressBar:
    """``epoch 3/10 [#########...............] 120/235 0:04 | train_loss 0.4312 val_loss 0.44``

    Redraws at most every 0.1 s, so the per-step cost is one clock read; the losses shown are those
    of the last completed epoch, which are already Python floats (showing the current step's loss
    would force a device synchronisation).
    """

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int):
        self.enabled = enabled
        self.epochs = epochs
        self.steps_per_epoch = max(steps_per_epoch, 1)
        self.summary = ""
        self.epoch = 0
        self.done = 0
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.drawn = False

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.done = epoch, 0
        self.started = time.monotonic()
        if self.enabled:
            self._draw()

    def step(self) -> None:
        self.done += 1
        if self.enabled:
            now = time.monotonic()
            if now - self.last_draw >= _REFRESH_SECONDS:
                self._draw(now)

    def end_epoch(self, values: dict[str, float]) -> None:
        self.summary = " ".join(f"{key} {value:.4g}" for key, value in values.items())
        if self.enabled:
            self._draw()

    def close(self) -> None:
        if self.enabled and self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.last_draw = now
        filled = min(_WIDTH, _WIDTH * self.done // self.steps_per_epoch)
        bar = "#" * filled + "." * (_WIDTH - filled)
        line = (
            f"epoch {self.epoch}/{self.epochs} [{bar}] {self.done}/{self.steps_per_epoch} "
            f"{_clock(now - self.started)}"
        )
        if self.summary:
            line += f" | {self.summary}"
        sys.stderr.write("\r" + line + "\x1b[K")
        sys.stderr.flush()
        self.drawn = True
