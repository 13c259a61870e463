"""Multi-layer perceptrons whose activation and weight initialisation are chosen by name.

Explained in: book/initialization.md

:func:`mlp` builds a plain ``torch.nn.Sequential`` of ``Linear`` layers and :class:`Activation`
layers (which run the activation functions of :mod:`nnbolts.activations`), and initialises every
weight with an initializer of :mod:`nnbolts.init` scaled for the chosen activation. The
initialisation chapter builds the same network four times — zero, too small, appropriate and
too large initial weights — and compares how the signal and the gradients flow.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from nnbolts import init as nninit
from nnbolts._checks import check_int
from nnbolts.activations import get_activation

__all__ = ["Activation", "INITIALIZERS", "mlp"]


class Activation(nn.Module):
    """A layer applying an activation function of :mod:`nnbolts.activations` by name.

    Explained in: book/initialization.md

    ``Activation("relu")`` computes ``nnbolts.activations.relu(z)``; keyword arguments are passed
    on, e.g. ``Activation("leaky_relu", negative_slope=0.2)``. Autograd differentiates through
    it like through ``torch.nn.ReLU`` and friends; the layer has no parameters.

    >>> Activation("leaky_relu", negative_slope=0.2)
    Activation(leaky_relu, negative_slope=0.2)
    >>> Activation("tanh")(torch.zeros(2))
    tensor([0., 0.])
    """

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__()
        spec = get_activation(name)  # raises on an unknown name
        self.name = spec.name
        self.kwargs = dict(kwargs)
        self._fn = spec.fn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self._fn(z, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join([self.name, *(f"{k}={v!r}" for k, v in self.kwargs.items())])


# Initializers that take a gain: the network's activation decides it.
_XAVIER = {"xavier_uniform": nninit.xavier_uniform_, "xavier_normal": nninit.xavier_normal_}
_KAIMING = {"kaiming_uniform": nninit.kaiming_uniform_, "kaiming_normal": nninit.kaiming_normal_}
# Initializers used as given: LeCun has gain 1 by definition, the rest are plain fills.
_RANDOM = {
    "lecun_uniform": nninit.lecun_uniform_,
    "lecun_normal": nninit.lecun_normal_,
    "normal": nninit.normal_,
    "uniform": nninit.uniform_,
}
_FILLS = {"zeros": nninit.zeros_, "constant": nninit.constant_}

INITIALIZERS: tuple[str, ...] = tuple(sorted({**_XAVIER, **_KAIMING, **_RANDOM, **_FILLS}))
"""The initializer names :func:`mlp` accepts (each is ``nnbolts.init.<name>_``)."""

# The name calculate_gain knows for the activations whose layers are linear at the origin.
_LINEAR_AT_INIT = {"identity": "linear", "softmax": "linear", "log_softmax": "linear"}


def _default_option(activation: str, option: str):
    """The default value of an option of an activation function, e.g. leaky_relu's slope."""
    return inspect.signature(get_activation(activation).fn).parameters[option].default


def _split_spec(label: str, spec) -> tuple[object, dict]:
    """``"name"`` or ``("name", {options})`` -> (name, options)."""
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], Mapping):
        return spec[0], dict(spec[1])
    if isinstance(spec, tuple):
        raise TypeError(f"expected {label} as 'name' or ('name', {{options}}), got {spec!r}")
    return spec, {}


def _weight_initializer(init, options: dict, activation: str, act_options: dict) -> Callable:
    """A function ``fill(weight, generator)`` for the chosen initializer and activation."""
    if callable(init):
        return lambda w, generator: init(w, generator=generator, **options)
    if not isinstance(init, str) or init not in INITIALIZERS:
        raise ValueError(
            f"Unknown init: {init!r}; expected one of {list(INITIALIZERS)} or a callable"
        )
    nonlinearity = _LINEAR_AT_INIT.get(activation, activation)
    slope = None
    if activation == "leaky_relu":
        slope = act_options.get("negative_slope", _default_option(activation, "negative_slope"))
    if init in _XAVIER:
        options.setdefault("gain", nninit.calculate_gain(nonlinearity, slope))
        fn = _XAVIER[init]
    elif init in _KAIMING:
        options.setdefault("nonlinearity", nonlinearity)
        if slope is not None:
            options.setdefault("a", slope)
        fn = _KAIMING[init]
    elif init in _RANDOM:
        fn = _RANDOM[init]
    else:
        fill = _FILLS[init]
        return lambda w, generator: fill(w, **options)
    return lambda w, generator: fn(w, generator=generator, **options)


def _check_sizes(sizes) -> list[int]:
    if not isinstance(sizes, Sequence) or isinstance(sizes, str):
        raise TypeError(f"expected sizes to be a list of ints, got {type(sizes).__name__}")
    if len(sizes) < 2:
        raise ValueError(
            f"Invalid sizes: {list(sizes)} (need at least an input and an output size)"
        )
    return [check_int(f"sizes[{i}]", s, low=1) for i, s in enumerate(sizes)]


def mlp(
    sizes: Sequence[int],
    activation: str | tuple[str, Mapping] = "relu",
    init: str | tuple[str, Mapping] | Callable = "kaiming_normal",
    *,
    bias: bool = True,
    output_activation: str | tuple[str, Mapping] | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Explained in: book/initialization.md

    Layer ``l`` computes ``a_l = φ(W_l a_{l-1} + b_l)`` with ``φ`` = ``activation`` on every
    hidden layer; the last ``Linear`` is followed by ``output_activation`` (``None``: nothing, the
    network returns logits or regression values). ``sizes=[2, 16, 16, 1]`` gives
    ``Linear(2, 16), φ, Linear(16, 16), φ, Linear(16, 1)``.

    **Activations** are names from :mod:`nnbolts.activations` (``"relu"``, ``"tanh"``,
    ``"sigmoid"``, ``"leaky_relu"``, ``"elu"``, ``"silu"``, ``"identity"``, ...), optionally with
    options: ``("leaky_relu", {"negative_slope": 0.2})``.

    **Initialisation.** Every weight matrix is filled by ``init`` (the same rule for all layers,
    as one would write ``for m in model: init(m.weight)`` in torch), every bias is set to **zero**
    — the weights' randomness already breaks the symmetry between units, and zero biases keep
    the signal centred. ``init`` is one of

    * ``"xavier_uniform"``, ``"xavier_normal"`` — Glorot, with the gain of ``activation``
      (``nnbolts.init.calculate_gain``: 5/3 for tanh, √2 for relu, 1 for sigmoid; the ×4
      sigmoid rule is ``("xavier_uniform", {"gain": 4.0})``);
    * ``"kaiming_uniform"``, ``"kaiming_normal"`` — He, with ``nonlinearity=activation`` (and the
      leaky slope as ``a``); options such as ``{"mode": "fan_out"}`` pass through;
    * ``"lecun_uniform"``, ``"lecun_normal"`` — variance ``1 / fan_in`` (gain 1);
    * ``"normal"`` (``{"std": 0.01}``; default ``N(0, 1)``), ``"uniform"`` (``{"a": -0.1,
      "b": 0.1}``; default ``U(0, 1)``), ``"zeros"``, ``"constant"`` (``{"val": 0.5}``) — fixed
      scales that ignore the layer sizes, for the zero / too small / too large demonstrations;
    * a callable ``fill(weight, generator=...)`` that fills the weight in place.

    Options given as ``(name, {options})`` override the automatic gain / nonlinearity.

    **Randomness** comes only from ``generator`` (torch's global generator is not touched when
    one is given): the same seed gives identical weights. The weights are drawn on the
    generator's device and moved to ``device`` afterwards when the two differ, so a CPU
    generator gives the same network on every device.

    Torch equivalent of ``mlp([2, 16, 1], "tanh", "xavier_uniform")``::

        net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
        for layer in (net[0], net[2]):
            nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(layer.bias)

    >>> g = torch.Generator().manual_seed(0)
    >>> net = mlp([2, 16, 1], "tanh", "xavier_uniform", generator=g)
    >>> net
    Sequential(
      (0): Linear(in_features=2, out_features=16, bias=True)
      (1): Activation(tanh)
      (2): Linear(in_features=16, out_features=1, bias=True)
    )
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5, 1])
    """
    sizes = _check_sizes(sizes)
    act_name, act_options = _split_spec("activation", activation)
    hidden = Activation(act_name, **act_options)
    output = None
    if output_activation is not None:
        out_name, out_options = _split_spec("output_activation", output_activation)
        output = Activation(out_name, **out_options)
    init_name, init_options = _split_spec("init", init)
    fill = _weight_initializer(init_name, init_options, hidden.name, act_options)
    if not isinstance(bias, bool):
        raise TypeError(f"expected bias to be a bool, got {type(bias).__name__}: {bias!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"expected generator to be a torch.Generator or None, got {type(generator).__name__}"
        )
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"expected a floating torch.dtype for dtype, got {dtype!r}")
    device = torch.device(device)
    build_on = device
    if generator is not None and device.type not in (generator.device.type, "meta"):
        build_on = generator.device

    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        # skip_init: no default initialisation, so torch's global generator is left untouched.
        linear = nn.utils.skip_init(
            nn.Linear, fan_in, fan_out, bias=bias, device=build_on, dtype=dtype
        )
        fill(linear.weight, generator)
        if bias:
            nninit.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(Activation(hidden.name, **hidden.kwargs))
    if output is not None:
        layers.append(output)
    return nn.Sequential(*layers).to(device)
