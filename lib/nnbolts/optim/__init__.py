"""Optimizers: each update rule as a pure one-tensor pair ``*_init`` / ``*_step`` and as a
``torch.optim.Optimizer`` built on it. See :mod:`nnbolts.optim._base` for the conventions.

Explained in: book/optimizers.md.
"""

from ._base import RuleOptimizer
from .sgd import SGD, SGDVelocity, sgd_init, sgd_step, sgd_velocity_init, sgd_velocity_step

__all__ = [
    "RuleOptimizer",
    "SGD", "sgd_init", "sgd_step",
    "SGDVelocity", "sgd_velocity_init", "sgd_velocity_step",
]
