"""nnbolts — the reference library of the course *Training Neural Networks*.

Submodules: ``activations``, ``init``, ``losses``, ``optim``, ``schedules``, ``backprop`` (a
small network's gradients by hand, finite differences) and ``parallel`` (data parallelism
simulated in one process: shards, averaged gradients, accumulation, a ring all-reduce) — the
library core — and ``data``, ``models``, ``train``, ``diagnostics``, ``landscapes``, ``plot``,
``explore`` (the training layer and the book's figures).
"""

__version__ = "0.1.0"
