"""Optimizers: each update rule as a pure one-tensor pair ``*_init`` / ``*_step`` and as a
``torch.optim.Optimizer`` built on it. See :mod:`nnbolts.optim._base` for the conventions.

Explained in: book/optimizers.md.
"""

from ._base import RuleOptimizer, has_modes, needs_closure
from .adabound import AdaBound, adabound_bounds, adabound_init, adabound_step
from .adadelta import Adadelta, adadelta_init, adadelta_step
from .adafactor import Adafactor, adafactor_init, adafactor_step
from .adagrad import Adagrad, adagrad_init, adagrad_step
from .adam import Adam, AdamW, adam_init, adam_step, adamw_init, adamw_step
from .adamax import Adamax, adamax_init, adamax_step
from .asgd import ASGD, asgd_init, asgd_step
from .clip import clip_grad_norm_, total_grad_norm
from .lbfgs import LBFGS
from .lion import Lion, lion_init, lion_step
from .lookahead import Lookahead, lookahead_init, lookahead_step
from .muon import Muon, muon_init, muon_step, newton_schulz
from .nadam import NAdam, nadam_init, nadam_step
from .radam import RAdam, radam_init, radam_rectification, radam_step
from .rmsprop import RMSprop, rmsprop_init, rmsprop_step
from .rmsprop_nesterov import (
    rmsprop_nesterov_init,
    rmsprop_nesterov_lookahead,
    rmsprop_nesterov_step,
)
from .rprop import Rprop, rprop_init, rprop_step
from .schedule_free import (
    ScheduleFreeAdamW,
    schedule_free_adamw_init,
    schedule_free_adamw_step,
    schedule_free_adamw_x,
)
from .sgd import SGD, SGDVelocity, sgd_init, sgd_step, sgd_velocity_init, sgd_velocity_step
from .sparse_adam import SparseAdam, sparse_adam_init, sparse_adam_step

__all__ = [
    "RuleOptimizer", "needs_closure", "has_modes",
    "SGD", "sgd_init", "sgd_step",
    "SGDVelocity", "sgd_velocity_init", "sgd_velocity_step",
    "Adagrad", "adagrad_init", "adagrad_step",
    "RMSprop", "rmsprop_init", "rmsprop_step",
    "rmsprop_nesterov_init", "rmsprop_nesterov_step", "rmsprop_nesterov_lookahead",
    "Adadelta", "adadelta_init", "adadelta_step",
    "Adam", "adam_init", "adam_step",
    "AdamW", "adamw_init", "adamw_step",
    "NAdam", "nadam_init", "nadam_step",
    "Adamax", "adamax_init", "adamax_step",
    "RAdam", "radam_init", "radam_step", "radam_rectification",
    "ASGD", "asgd_init", "asgd_step",
    "Rprop", "rprop_init", "rprop_step",
    "AdaBound", "adabound_init", "adabound_step", "adabound_bounds",
    "Lookahead", "lookahead_init", "lookahead_step",
    "Adafactor", "adafactor_init", "adafactor_step",
    "Muon", "muon_init", "muon_step", "newton_schulz",
    "SparseAdam", "sparse_adam_init", "sparse_adam_step",
    "LBFGS",
    "clip_grad_norm_", "total_grad_norm",
    "Lion", "lion_init", "lion_step",
    "ScheduleFreeAdamW", "schedule_free_adamw_init", "schedule_free_adamw_step",
    "schedule_free_adamw_x",
]
