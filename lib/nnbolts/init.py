"""Weight initialisation: Glorot/Xavier, He/Kaiming and LeCun, in place like ``torch.nn.init``.

Every initializer fills ``tensor`` in place (without recording autograd history) and returns it.
The random ones take ``generator=`` and, where ``torch.nn.init`` has the same function, draw
**bit-identical** values from the same generator: they compute the bound or standard deviation with
the same floating-point operations in the same order and make the same single call to
``tensor.uniform_`` / ``tensor.normal_``. ``lecun_uniform_`` and ``lecun_normal_`` have no torch
counterpart; they are He initialisation with gain 1.

Shapes follow torch's convention: a linear weight is ``(out_features, in_features)``, a
convolution weight ``(out_channels, in_channels, *kernel_size)``; see :func:`fan_in_and_fan_out`.

Bengio's (2012) rule for sigmoid layers (Glorot bound times 4) is ``xavier_uniform_(w,
gain=GLOROT_SIGMOID_GAIN)``; torch's ``calculate_gain("sigmoid")`` is 1. :func:`calculate_gain`
explains the difference.

Explained in: book/initialization.md
"""

from __future__ import annotations

import math

import torch

from nnbolts._checks import check_floating, check_number, check_tensor

__all__ = [
    "GLOROT_SIGMOID_GAIN",
    "calculate_gain",
    "constant_",
    "fan_in_and_fan_out",
    "init_bounds_table",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

GLOROT_SIGMOID_GAIN = 4.0
"""The ×4 Glorot gain for sigmoid layers (Bengio, 2012): 1 / sigmoid'(0). See calculate_gain."""

_LINEAR_NAMES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_NONLINEARITIES = (*_LINEAR_NAMES, "sigmoid", "tanh", "relu", "leaky_relu", "selu", "elu", "silu")
_MODES = ["fan_in", "fan_out"]


# --------------------------------------------------------------------------------------------
# gains and fans
# --------------------------------------------------------------------------------------------


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended gain for a layer followed by ``nonlinearity``.

    The gain multiplies the standard deviation of the Glorot or He initialisation to make up for
    how much the activation shrinks the signal:

    ====================================  =================================  ===============
    nonlinearity                          gain                               source
    ====================================  =================================  ===============
    linear, conv{1,2,3}d,                 1                                  torch
    conv_transpose{1,2,3}d
    sigmoid                               1                                  torch
    tanh                                  5/3                                torch
    relu                                  sqrt(2)                            torch
    leaky_relu (``param`` = slope,        sqrt(2 / (1 + slope**2))           torch
    default 0.01)
    selu                                  3/4                                torch
    elu, silu                             sqrt(2)                            nnbolts
    ====================================  =================================  ===============

    The values agree with ``torch.nn.init.calculate_gain`` for every name torch knows. ``elu``
    and ``silu`` are additions: torch raises for them. We give them He's ReLU gain sqrt(2), an
    nnbolts convention for the whole rectifier family (SiLU and ELU behave like ReLU for large z);
    it is a convention, not an exact variance-preserving value for these functions.

    **Sigmoid: torch says 1, the ×4 rule says 4.** Glorot and Bengio derived their bound for an
    activation that behaves like the identity near 0 (``tanh(z) ≈ z``), so each layer keeps the
    variance of both the forward signal and the backpropagated gradient. Sigmoid linearised
    around 0 is ``sigmoid(z) ≈ 1/2 + z/4``: its slope is 1/4, so every layer would divide the
    backpropagated standard deviation by 4. Multiplying the weights by 4 = 1 / sigmoid'(0) undoes
    that; this is the ``4 * sqrt(6 / (fan_in + fan_out))`` bound (Bengio, 2012,
    arXiv:1206.5533), available as ``xavier_uniform_(w, gain=GLOROT_SIGMOID_GAIN)``. Torch
    applies no slope correction for sigmoid and returns 1, which we keep as the default so
    results match torch.

    Likewise Glorot's paper uses gain 1 for tanh; torch's 5/3 is a heuristic that also makes up
    for tanh squashing large inputs.

    Torch equivalent: ``torch.nn.init.calculate_gain(nonlinearity, param)``.

    Explained in: book/initialization.md

    Example:
        >>> calculate_gain("relu")
        1.4142135623730951
        >>> calculate_gain("leaky_relu", 0.2)
        1.3867504905630728
    """
    if nonlinearity in _LINEAR_NAMES or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity in ("relu", "elu", "silu"):
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool) and param == param:
            negative_slope = param  # (param == param is False only for NaN)
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        # Same expression as torch, so kaiming_* bounds come out with the same bits.
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"Unsupported nonlinearity {nonlinearity}; expected one of {list(_NONLINEARITIES)}"
    )


def fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    r"""The number of inputs and outputs each weight of ``tensor`` connects.

    For a linear weight of shape ``(out_features, in_features)``: ``fan_in = in_features`` and
    ``fan_out = out_features``. For a convolution weight ``(out_channels, in_channels, *kernel)``
    every input channel is seen through the whole kernel: with ``k = prod(kernel)``,
    ``fan_in = in_channels * k`` and ``fan_out = out_channels * k``.

    Only the shape is read, so this works for tensors on any device, ``meta`` included.

    Torch equivalent: ``torch.nn.init._calculate_fan_in_and_fan_out(tensor)`` (private).

    Explained in: book/initialization.md

    Example:
        >>> fan_in_and_fan_out(torch.empty(64, 32))
        (32, 64)
        >>> fan_in_and_fan_out(torch.empty(16, 3, 5, 5))
        (75, 400)
    """
    check_tensor("tensor", tensor)
    if tensor.dim() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive_field = math.prod(tensor.shape[2:])  # 1 for a linear weight
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: torch.Tensor, mode: str) -> int:
    # Torch accepts the mode in any letter case; so do we.
    if not isinstance(mode, str) or mode.lower() not in _MODES:
        raise ValueError(f"Mode {mode} not supported, please use one of {_MODES}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return fan_in if mode.lower() == "fan_in" else fan_out


def _check_generator(generator, tensor: torch.Tensor) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"expected generator to be a torch.Generator or None, got {type(generator).__name__}"
        )
    # A meta tensor draws nothing, so any generator will do.
    if tensor.device.type != "meta" and generator.device.type != tensor.device.type:
        raise ValueError(f"generator is on {generator.device} but tensor is on {tensor.device}")


# --------------------------------------------------------------------------------------------
# constant and plain random fills
# --------------------------------------------------------------------------------------------


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    r"""Fill ``tensor`` with 0, in place; return it.

    Torch equivalent: ``torch.nn.init.zeros_(tensor)``.

    Explained in: book/initialization.md

    Example:
        >>> zeros_(torch.empty(2, 3))
        tensor([[0., 0., 0.],
                [0., 0., 0.]])
    """
    check_floating("tensor", tensor)
    with torch.no_grad():
        return tensor.zero_()


def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    r"""Fill ``tensor`` with the number ``val``, in place; return it.

    Torch equivalent: ``torch.nn.init.constant_(tensor, val)``.

    Explained in: book/initialization.md

    Example:
        >>> constant_(torch.empty(3), 0.1)
        tensor([0.1000, 0.1000, 0.1000])
    """
    check_floating("tensor", tensor)
    check_number("val", val)
    with torch.no_grad():
        return tensor.fill_(val)


def normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` in place with draws from ``N(mean, std**2)``; return it.

    Torch equivalent: ``torch.nn.init.normal_(tensor, mean, std, generator=generator)``
    (bit-identical under the same generator).

    Explained in: book/initialization.md

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> normal_(torch.empty(3), std=0.1, generator=g)
        tensor([ 0.1541, -0.0293, -0.2179])
    """
    check_floating("tensor", tensor)
    check_number("mean", mean)
    check_number("std", std, low=0)
    _check_generator(generator, tensor)
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def uniform_(
    tensor: torch.Tensor,
    a: float = 0.0,
    b: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` in place with draws from the uniform distribution ``U(a, b)``; return it.

    Torch equivalent: ``torch.nn.init.uniform_(tensor, a, b, generator=generator)``
    (bit-identical under the same generator).

    Explained in: book/initialization.md

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> uniform_(torch.empty(3), -1.0, 1.0, generator=g)
        tensor([-0.0075,  0.5364, -0.8230])
    """
    check_floating("tensor", tensor)
    for name, value in (("a", a), ("b", b)):
        check_number(name, value)
        if not math.isfinite(value):
            raise ValueError(f"Invalid {name}: {value}")
    if a > b:
        raise ValueError(f"Invalid uniform range: a={a} > b={b}")
    _check_generator(generator, tensor)
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


# --------------------------------------------------------------------------------------------
# Glorot / Xavier
# --------------------------------------------------------------------------------------------


def _xavier_std(tensor: torch.Tensor, gain: float, generator) -> float | None:
    check_floating("tensor", tensor)
    check_number("gain", gain, low=0)
    _check_generator(generator, tensor)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    if tensor.numel() == 0:
        return None  # nothing to fill, and fan_in + fan_out may be 0
    # Exactly torch's expression and order of operations, so the result has the same bits.
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def xavier_uniform_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Glorot/Xavier uniform initialisation, in place: ``U(-bound, bound)`` with

    ``bound = gain * sqrt(6 / (fan_in + fan_out))``  (standard deviation
    ``gain * sqrt(2 / (fan_in + fan_out))``; a uniform on ``[-b, b]`` has std ``b / sqrt(3)``).

    Averaging ``fan_in`` and ``fan_out`` is Glorot and Bengio's compromise between keeping the
    forward signal's variance (needs ``Var[w] = 1/fan_in``) and the backpropagated gradient's
    (needs ``Var[w] = 1/fan_out``).

    For sigmoid layers, torch's gain is 1 while the ×4 rule (Bengio, 2012) multiplies the bound
    by 4 (the inverse of sigmoid's slope 1/4 at 0, from ``sigmoid(z) ≈ 1/2 + z/4``): use
    ``xavier_uniform_(w, gain=GLOROT_SIGMOID_GAIN)``. See :func:`calculate_gain`.

    Torch equivalent: ``torch.nn.init.xavier_uniform_(tensor, gain, generator=generator)``
    (bit-identical under the same generator).

    Explained in: book/initialization.md

    Example:
        >>> w = xavier_uniform_(torch.empty(100, 50), gain=GLOROT_SIGMOID_GAIN)
        >>> bool(w.abs().max() <= 4 * (6 / 150) ** 0.5)
        True
    """
    std = _xavier_std(tensor, gain, generator)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def xavier_normal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Glorot/Xavier normal initialisation, in place: ``N(0, std**2)`` with

    ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    The ×4 sigmoid rule is ``xavier_normal_(w, gain=GLOROT_SIGMOID_GAIN)``; torch's
    ``calculate_gain("sigmoid")`` is 1 (see :func:`calculate_gain` and :func:`xavier_uniform_`).

    Torch equivalent: ``torch.nn.init.xavier_normal_(tensor, gain, generator=generator)``
    (bit-identical under the same generator).

    Explained in: book/initialization.md

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> xavier_normal_(torch.empty(2, 2), generator=g)
        tensor([[ 1.0896, -0.2075],
                [-1.5406,  0.4019]])
    """
    std = _xavier_std(tensor, gain, generator)
    if std is None:
        return tensor
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


# --------------------------------------------------------------------------------------------
# He / Kaiming and LeCun
# --------------------------------------------------------------------------------------------


def _kaiming_std(tensor: torch.Tensor, a, mode, nonlinearity, generator) -> float | None:
    check_floating("tensor", tensor)
    check_number("a", a)
    _check_generator(generator, tensor)
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    if tensor.numel() == 0:
        return None  # nothing to fill, and the fan may be 0
    return gain / math.sqrt(fan)


def kaiming_uniform_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""He/Kaiming uniform initialisation, in place: ``U(-bound, bound)`` with

    ``bound = gain * sqrt(3 / fan)``, i.e. standard deviation ``gain / sqrt(fan)``,

    where ``fan`` is ``fan_in`` (``mode="fan_in"``, keeps the forward signal's variance) or
    ``fan_out`` (keeps the backpropagated gradient's) and ``gain = calculate_gain(nonlinearity,
    a)``. ``a`` is the negative slope of a leaky ReLU, used only when ``nonlinearity`` is
    ``"leaky_relu"`` (the default, which with ``a=0`` is plain ReLU: gain sqrt(2)).

    ReLU zeroes half of a symmetric input, halving its second moment; the gain sqrt(2) puts that
    factor 2 back into the weights' variance.

    Zero-element tensors are returned unchanged (torch also warns).

    Torch equivalent: ``torch.nn.init.kaiming_uniform_(tensor, a, mode, nonlinearity,
    generator=generator)`` (bit-identical under the same generator).

    Explained in: book/initialization.md

    Example:
        >>> w = kaiming_uniform_(torch.empty(64, 48), nonlinearity="relu")
        >>> bool(w.abs().max() <= 2 ** 0.5 * (3 / 48) ** 0.5)
        True
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity, generator)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""He/Kaiming normal initialisation, in place: ``N(0, std**2)`` with

    ``std = gain / sqrt(fan)``, ``gain = calculate_gain(nonlinearity, a)``,

    ``fan`` chosen by ``mode`` as in :func:`kaiming_uniform_`. This is the usual choice for ReLU
    networks (``nonlinearity="relu"``: ``std = sqrt(2 / fan_in)``).

    Zero-element tensors are returned unchanged (torch also warns).

    Torch equivalent: ``torch.nn.init.kaiming_normal_(tensor, a, mode, nonlinearity,
    generator=generator)`` (bit-identical under the same generator).

    Explained in: book/initialization.md

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> kaiming_normal_(torch.empty(2, 2), nonlinearity="relu", generator=g)
        tensor([[ 1.5410, -0.2934],
                [-2.1788,  0.5684]])
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity, generator)
    if std is None:
        return tensor
    with torch.no_grad():
        return tensor.normal_(0, std, generator=generator)


def lecun_uniform_(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""LeCun uniform initialisation, in place: ``U(-bound, bound)`` with ``bound = sqrt(3 /
    fan_in)``, i.e. variance ``1 / fan_in``.

    This is He initialisation with gain 1: it keeps the forward variance of a layer followed by
    an activation that is the identity near 0 (and is the rule SELU's self-normalisation needs).
    It draws exactly what ``kaiming_uniform_(tensor, nonlinearity="linear")`` draws.

    Torch equivalent: none by this name;
    ``torch.nn.init.kaiming_uniform_(tensor, nonlinearity="linear", generator=generator)``
    gives the same values.

    Explained in: book/initialization.md

    Example:
        >>> w = lecun_uniform_(torch.empty(10, 75))
        >>> bool(w.abs().max() <= (3 / 75) ** 0.5)
        True
    """
    return kaiming_uniform_(tensor, mode="fan_in", nonlinearity="linear", generator=generator)


def lecun_normal_(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""LeCun normal initialisation, in place: ``N(0, std**2)`` with ``std = sqrt(1 / fan_in)``.

    A plain (not truncated) normal. Keras and JAX's ``lecun_normal`` draw from a truncated normal
    rescaled to the same standard deviation instead; the two agree in mean and variance but not
    in the tails. Plain normal is what torch recommends for SELU networks
    (``kaiming_normal_(w, nonlinearity="linear")``), and this function draws exactly that.

    Torch equivalent: none by this name;
    ``torch.nn.init.kaiming_normal_(tensor, nonlinearity="linear", generator=generator)``
    gives the same values.

    Explained in: book/initialization.md

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> lecun_normal_(torch.empty(2, 4), generator=g)
        tensor([[ 0.7705, -0.1467, -1.0894,  0.2842],
                [-0.5423, -0.6993,  0.2017,  0.4190]])
    """
    return kaiming_normal_(tensor, mode="fan_in", nonlinearity="linear", generator=generator)


# --------------------------------------------------------------------------------------------
# the book's table of bounds by activation
# --------------------------------------------------------------------------------------------

# Per initializer family: (rule, uniform bound, standard deviation), with "{g}" for the gain.
_FORMULAS = {
    "xavier": (
        "Glorot/Xavier",
        "{g}√(6 / (fan_in + fan_out))",
        "{g}√(2 / (fan_in + fan_out))",
    ),
    "kaiming": ("He/Kaiming (fan_in)", "{g}√(3 / fan_in)", "{g}√(1 / fan_in)"),
}


def _bounds_row(activation: str, init: str, gain: float) -> dict[str, object]:
    rule, bound, std = _FORMULAS[init.split("_")[0]]
    factor = "" if gain == 1 else f"{gain:.4g} · "
    return {
        "activation": activation,
        "rule": rule,
        "init": f"{init}_",
        "gain": gain,
        "uniform_bound": bound.format(g=factor),
        "std": std.format(g=factor),
    }


def init_bounds_table() -> list[dict[str, object]]:
    r"""The table of initialisation bounds by activation shown in the book.

    One row per entry of ``nnbolts.activations.ACTIVATIONS`` -- its recommended initializer and
    its gain, which comes from :func:`calculate_gain` -- plus the ×4 sigmoid row with
    ``GLOROT_SIGMOID_GAIN``. Each row is a dict with keys ``activation``, ``rule`` (e.g.
    ``"Glorot/Xavier"``), ``init`` (the function to call), ``gain`` (a float), and the formulas
    ``uniform_bound`` and ``std`` as text, with the gain written in.

    Torch equivalent: none (torch lists its gains in ``calculate_gain``'s docstring).

    Explained in: book/initialization.md

    Example:
        >>> row = next(r for r in init_bounds_table() if r["activation"] == "relu")
        >>> row["init"], row["uniform_bound"], row["std"]
        ('kaiming_normal_', '1.414 · √(3 / fan_in)', '1.414 · √(1 / fan_in)')
    """
    # Imported here because nnbolts.activations imports this module for its gains.
    from nnbolts.activations import ACTIVATIONS

    rows = []
    for act in ACTIVATIONS.values():
        rows.append(_bounds_row(act.name, act.init, act.gain))
        if act.name == "sigmoid":
            rows.append(_bounds_row("sigmoid (Bengio 2012, ×4)", act.init, GLOROT_SIGMOID_GAIN))
    return rows
