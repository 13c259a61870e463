"""Reading tensors without trusting subclasses.

A value the checks compare is a plain ``torch.Tensor`` (or an ``nn.Parameter``, read as its
data): a tensor *subclass* is refused, because its ``__torch_function__`` decides what every
torch call on it returns. Reading goes through the methods of ``torch._C.TensorBase`` (a C type)
with torch functions disabled, so the numbers are the tensor's own.
"""

from __future__ import annotations

import torch

TENSOR_BASE = torch._C.TensorBase
_TENSOR = torch.Tensor
_PARAMETER = torch.nn.Parameter
_DISABLE_TORCH_FUNCTION = torch._C.DisableTorchFunction


def plain_tensor(x):
    """``x`` as a plain ``torch.Tensor`` if it is one (or an ``nn.Parameter``), else ``None``
    (a tensor subclass, or not a tensor)."""
    kind = type(x)
    if kind is _TENSOR:
        return x
    if kind is _PARAMETER:
        with _DISABLE_TORCH_FUNCTION():
            return TENSOR_BASE.detach(x)
    return None


def values(t) -> list:
    """The elements of a plain tensor as a flat list of Python numbers (row-major)."""
    with _DISABLE_TORCH_FUNCTION():
        return TENSOR_BASE.tolist(TENSOR_BASE.reshape(TENSOR_BASE.detach(t), (-1,)))


def clone_tensor(t):
    """A detached copy of ``t``."""
    with _DISABLE_TORCH_FUNCTION():
        return TENSOR_BASE.clone(TENSOR_BASE.detach(t))
