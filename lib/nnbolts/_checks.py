"""Argument validation shared by every public function of nnbolts.

Errors are raised at the API boundary and name the argument and the offending value, using
PyTorch's wording where PyTorch has one (``ValueError: Invalid learning rate: -0.1``), so that a
student or a chapter never sees a silent NaN or a stack trace from deep inside torch.
"""

from __future__ import annotations

import math
import numbers

import torch


def check_tensor(name: str, value) -> torch.Tensor:
    """``value`` must be a ``torch.Tensor``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor, got {type(value).__name__}")
    return value


def check_floating(name: str, value) -> torch.Tensor:
    """``value`` must be a floating-point tensor (float16, bfloat16, float32, float64)."""
    check_tensor(name, value)
    if not value.is_floating_point():
        raise TypeError(f"expected a floating tensor for {name}, got {value.dtype}")
    return value


def check_like(name: str, value, ref_name: str, ref: torch.Tensor) -> torch.Tensor:
    """``value`` must be a tensor with the shape, device and dtype of ``ref``."""
    check_tensor(name, value)
    if value.shape != ref.shape:
        raise ValueError(
            f"{name} has shape {tuple(value.shape)} but {ref_name} has shape {tuple(ref.shape)}"
        )
    if value.device != ref.device:
        raise ValueError(f"{name} is on {value.device} but {ref_name} is on {ref.device}")
    if value.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {value.dtype} but {ref_name} has dtype {ref.dtype}")
    return value


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(label: str, value, *, low=None, high=None, low_open=False, high_open=False):
    """A real number within ``[low, high]`` (ends open where asked).

    ``label`` is the phrase of the message, in torch's style: ``"learning rate"`` gives
    ``ValueError: Invalid learning rate: -0.1``. Python numbers only: a tensor hyperparameter
    would force a device synchronisation on every check (:func:`check_number_or_tensor` takes
    one where torch does, as for the learning rate).
    """
    if _is_real(value):
        number = float(value)
    else:
        raise TypeError(f"Invalid {label}: expected a number, got {type(value).__name__}")
    if math.isnan(number):
        raise ValueError(f"Invalid {label}: {value}")
    if low is not None and (number < low or (low_open and number == low)):
        raise ValueError(f"Invalid {label}: {value}")
    if high is not None and (number > high or (high_open and number == high)):
        raise ValueError(f"Invalid {label}: {value}")
    return value


def check_number_or_tensor(label: str, name: str, value, **bounds):
    """:func:`check_number`, also accepting what torch accepts for a tensor hyperparameter such
    as ``lr``: a real tensor of one element (any shape; 0-d is the usual form).

    The bounds are checked on the tensor's value (one device synchronisation, at construction
    only, as torch's own ``0.0 <= lr`` does); a ``meta`` tensor has no value and is accepted
    unchecked. The tensor itself is returned unchanged: the caller keeps it, so an in-place
    change (a scheduler's ``fill_``) reaches the update. ``name`` is the argument's name, for
    torch's ``Tensor lr must be 1-element``.
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"Invalid {label}: expected a real number, got a {value.dtype} tensor")
        if value.device.type != "meta":
            check_number(label, value.item(), **bounds)
        return value
    return check_number(label, value, **bounds)


def check_int(name: str, value, *, low=None) -> int:
    """An integer (not a bool) no smaller than ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected {name} to be an int, got {type(value).__name__}: {value!r}")
    if low is not None and value < low:
        raise ValueError(f"Invalid {name}: {value} (must be >= {low})")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"Invalid {name}: {value!r}; expected one of {sorted(choices)}")
    return value
