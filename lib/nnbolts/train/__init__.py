"""Training: the ``fit`` loop, its ``History``, early stopping, and saver/loader functions.

Explained in: book/minibatch.md

* :func:`fit` — minibatch training with validation, metrics, schedules, early stopping,
  checkpoints that resume bit-identically, and data-parallel workers;
* :class:`History` — per-step losses and learning rates, per-epoch losses and metrics;
* :class:`EarlyStopping` — stop when the validation curve stops improving, keep the best weights;
* :func:`save_checkpoint` / :func:`load_checkpoint` — atomic, safe, complete saver and loader.
"""

from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .early_stopping import EarlyStopping
from .fit import evaluate, fit
from .history import History
from .metrics import accuracy

__all__ = [
    "CheckpointError",
    "EarlyStopping",
    "History",
    "accuracy",
    "evaluate",
    "fit",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]
