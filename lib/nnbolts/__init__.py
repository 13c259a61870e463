"""nnbolts — the reference library of the course *Training Neural Networks*.

Submodules: ``activations``, ``init``, ``losses``, ``optim``, ``schedules`` (the library core) and
``data``, ``models``, ``train``, ``diagnostics``, ``landscapes``, ``plot``, ``explore`` (the
training layer and the book's figures).
"""

__version__ = "0.1.0"
