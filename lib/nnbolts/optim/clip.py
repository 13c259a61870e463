r"""Gradient clipping by norm: rescale every gradient by one factor so that their total norm is
at most ``max_norm``.

Explained in: book/initialization.md.
"""

from __future__ import annotations

import torch

from .._checks import check_number

__all__ = ["clip_grad_norm_", "total_grad_norm"]

CLIP_EPS = 1e-6
"""Added to the total norm in the clipping factor, as torch does: ``max_norm / (norm + 1e-6)``."""


def _grads(parameters) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def total_grad_norm(grads, norm_type: float = 2.0) -> torch.Tensor:
    r"""The ``norm_type``-norm of the tensors ``grads`` seen as one long vector: the norm of the
    vector of their norms (for ``inf``, the largest absolute entry). A 0-d tensor on the first
    tensor's device, ``tensor(0.)`` for no tensors."""
    grads = list(grads)
    p = float(norm_type)
    if not grads:
        return torch.tensor(0.0)
    first = grads[0].device
    with torch.no_grad():
        norms = [torch.linalg.vector_norm(g, p) for g in grads]
        return torch.linalg.vector_norm(torch.stack([n.to(first) for n in norms]), p)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> torch.Tensor:
    r"""Scale the gradients of ``parameters`` in place so that their total norm is at most
    ``max_norm``; return the total norm *before* clipping.

    With :math:`g` all gradients concatenated, :math:`c` = ``max_norm`` and
    :math:`\|\cdot\|` the ``norm_type``-norm (``inf``: the largest absolute entry):

    .. math::
        g \leftarrow g \cdot \min\!\Big(1, \frac{c}{\|g\| + 10^{-6}}\Big)

    One factor for every tensor, so the direction of the whole gradient is kept (Pascanu,
    Mikolov and Bengio, 2013; Goodfellow, Bengio and Courville, 2016, §10.11.1). The factor is
    applied even when it is 1, as torch does. Parameters whose ``.grad`` is ``None`` are
    skipped; with none at all the result is ``tensor(0.)`` and nothing changes.
    ``error_if_nonfinite`` raises a ``RuntimeError`` when the total norm is ``nan`` or ``inf``;
    ``foreach`` is accepted for compatibility.

    Equivalent torch call: ``torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type)``.
    Explained in: book/initialization.md.

    Example::

        >>> w = torch.zeros(2, requires_grad=True)
        >>> w.grad = torch.tensor([3.0, 4.0])
        >>> clip_grad_norm_([w], max_norm=1.0), w.grad
        (tensor(5.), tensor([0.6000, 0.8000]))
    """
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    check_number("max norm", max_norm, low=0.0)
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"Invalid norm type: {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    total = total_grad_norm(grads, norm_type)
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped.")
    factor = torch.clamp(float(max_norm) / (total + CLIP_EPS), max=1.0)
    with torch.no_grad():
        for g in grads:
            g.mul_(factor.to(g.device))
    return total
