"""Activation functions and their derivatives, written out in plain torch operations.

Each activation ``f`` comes with ``f_grad``, its derivative evaluated at the pre-activation ``z``
(the same ``z`` you pass to ``f``). For the elementwise activations the derivative is elementwise
too, so backpropagation through ``a = f(z)`` is ``grad_z = f_grad(z) * grad_a``.

``softmax`` and ``log_softmax`` are different: every output depends on every input along ``dim``,
so their derivative is a Jacobian matrix per slice, not a number per element. Building that matrix
costs ``n**2`` memory for ``n`` classes, and backpropagation only ever needs its product with the
incoming gradient, so ``softmax_grad`` and ``log_softmax_grad`` return the vector-Jacobian product
``J^T @ grad_output`` directly -- which is also what ``torch.autograd`` computes.

The formulas are rearranged so that no intermediate overflows: for ``|z|`` up to ``1e4`` (and far
beyond) in float32 and float64 the results are finite and match ``torch.nn.functional``.

The registry ``ACTIVATIONS`` maps a name to an :class:`Activation` bundling the function, its
derivative, and the initialisation that suits it (see ``nnbolts.init``).

Explained in: book/activations.md
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nnbolts._checks import check_floating, check_int, check_like, check_number
from nnbolts.init import calculate_gain

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "elu",
    "elu_grad",
    "get_activation",
    "identity",
    "identity_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "log_softmax",
    "log_softmax_grad",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "silu",
    "silu_grad",
    "softmax",
    "softmax_grad",
    "tanh",
    "tanh_grad",
]


def _check_dim(z: torch.Tensor, dim) -> int:
    check_int("dim", dim)
    ndim = max(z.dim(), 1)  # torch lets a 0-d tensor be reduced along dim 0 / -1
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
            f"but got {dim})"
        )
    return dim


# --------------------------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------------------------


def identity(z: torch.Tensor) -> torch.Tensor:
    r"""The identity ("linear") activation, used on regression output layers.

    Formula: ``f(z) = z``. Derivative: ``f'(z) = 1``.

    Returns a copy, so that changing the result in place never changes ``z``.

    Torch equivalent: ``torch.nn.Identity()(z)`` (which returns ``z`` itself).

    Explained in: book/activations.md

    Example:
        >>> identity(torch.tensor([-1.0, 2.0]))
        tensor([-1.,  2.])
    """
    check_floating("z", z)
    return z.clone()


def identity_grad(z: torch.Tensor) -> torch.Tensor:
    r"""Derivative of :func:`identity` at ``z``: ones of ``z``'s shape, device and dtype.

    Torch equivalent: ``torch.ones_like(z)``.

    Explained in: book/activations.md

    Example:
        >>> identity_grad(torch.tensor([-1.0, 2.0]))
        tensor([1., 1.])
    """
    check_floating("z", z)
    return torch.ones_like(z)


# --------------------------------------------------------------------------------------------
# sigmoid and tanh: the saturating pair
# --------------------------------------------------------------------------------------------


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    r"""The logistic sigmoid.

    Formula: ``sigmoid(z) = 1 / (1 + exp(-z))``.
    Derivative: ``sigmoid'(z) = sigmoid(z) * (1 - sigmoid(z))``, at most ``1/4`` (at ``z = 0``).

    ``exp(-z)`` overflows for very negative ``z``, so we only ever exponentiate ``-|z|`` (a number
    in ``(0, 1]``) and use ``sigmoid(z) = e / (1 + e)`` with ``e = exp(z)`` on the negative side.

    Torch equivalent: ``torch.sigmoid(z)`` (also ``torch.nn.functional.sigmoid``).

    Explained in: book/activations.md

    Example:
        >>> sigmoid(torch.tensor([0.0, 2.0, -1e4]))
        tensor([0.5000, 0.8808, 0.0000])
    """
    check_floating("z", z)
    e = torch.exp(-z.abs())
    return torch.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(z: torch.Tensor) -> torch.Tensor:
    r"""Derivative of :func:`sigmoid` at ``z``.

    Formula: ``sigmoid'(z) = sigmoid(z) * (1 - sigmoid(z)) = e / (1 + e)**2`` with
    ``e = exp(-|z|)``. The second form is even in ``z`` and never subtracts two nearly equal
    numbers, so it stays accurate in the tails where ``1 - sigmoid(z)`` would round to 0.

    Torch equivalent: ``torch.autograd.grad(torch.sigmoid(z).sum(), z)`` (``z`` requiring grad).

    Explained in: book/activations.md

    Example:
        >>> sigmoid_grad(torch.tensor([0.0, 2.0]))
        tensor([0.2500, 0.1050])
    """
    check_floating("z", z)
    e = torch.exp(-z.abs())
    return e / (1 + e) ** 2


def tanh(z: torch.Tensor) -> torch.Tensor:
    r"""The hyperbolic tangent, a sigmoid rescaled to ``(-1, 1)``: ``tanh(z) = 2 sigmoid(2z) - 1``.

    Formula: ``tanh(z) = (exp(z) - exp(-z)) / (exp(z) + exp(-z))``.
    Derivative: ``tanh'(z) = 1 - tanh(z)**2 = 4 / (exp(z) + exp(-z))**2``.

    Dividing through by ``exp(|z|)`` gives ``tanh(|z|) = (1 - e) / (1 + e)`` with
    ``e = exp(-2|z|)``, which cannot overflow; ``1 - e`` is computed as ``-expm1(-2|z|)`` so that
    small ``z`` keep their relative precision. The sign is put back with ``copysign``.

    Torch equivalent: ``torch.tanh(z)``.

    Explained in: book/activations.md

    Example:
        >>> tanh(torch.tensor([0.0, 1.0, -1e4]))
        tensor([ 0.0000,  0.7616, -1.0000])
    """
    check_floating("z", z)
    m = torch.expm1(-2 * z.abs())  # e - 1, in [-1, 0]
    return torch.copysign(-m / (2 + m), z)


def tanh_grad(z: torch.Tensor) -> torch.Tensor:
    r"""Derivative of :func:`tanh` at ``z``.

    Formula: ``tanh'(z) = 1 - tanh(z)**2 = 4 / (exp(z) + exp(-z))**2 = 4e / (1 + e)**2`` with
    ``e = exp(-2|z|)``; the last form cannot overflow and stays accurate for large ``|z|``.

    Torch equivalent: ``torch.autograd.grad(torch.tanh(z).sum(), z)``.

    Explained in: book/activations.md

    Example:
        >>> tanh_grad(torch.tensor([0.0, 1.0]))
        tensor([1.0000, 0.4200])
    """
    check_floating("z", z)
    e = torch.exp(-2 * z.abs())
    return 4 * e / (1 + e) ** 2


# --------------------------------------------------------------------------------------------
# the rectifier family
# --------------------------------------------------------------------------------------------


def relu(z: torch.Tensor) -> torch.Tensor:
    r"""The rectified linear unit.

    Formula: ``relu(z) = max(z, 0)``.
    Derivative: ``relu'(z) = 1 if z > 0 else 0`` (0 at ``z = 0``, see :func:`relu_grad`).

    Torch equivalent: ``torch.nn.functional.relu(z)``.

    Explained in: book/activations.md

    Example:
        >>> relu(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([0., 0., 3.])
    """
    check_floating("z", z)
    # Written as "z < 0 -> 0" rather than "z > 0 -> z" so that a NaN input stays NaN, as in torch.
    # `z > 0` (not `z < 0`) so that autograd, like torch, takes the derivative at 0 to be 0
    return torch.where(z > 0, z, 0.0)


def relu_grad(z: torch.Tensor) -> torch.Tensor:
    r"""Derivative of :func:`relu` at ``z``: 1 where ``z > 0``, else 0.

    relu has no derivative at ``z = 0``; any value in ``[0, 1]`` is a valid subgradient. We use 0,
    which is torch's convention (``autograd`` of ``relu`` gives 0 at 0), so results match torch.

    Torch equivalent: ``torch.autograd.grad(torch.nn.functional.relu(z).sum(), z)``.

    Explained in: book/activations.md

    Example:
        >>> relu_grad(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([0., 0., 1.])
    """
    check_floating("z", z)
    return (z > 0).to(z.dtype)


def leaky_relu(z: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    r"""The leaky ReLU: a small slope instead of zero for negative inputs.

    Formula: ``leaky_relu(z) = z if z > 0 else negative_slope * z``.
    Derivative: ``1 if z > 0 else negative_slope`` (``negative_slope`` at ``z = 0``, as in torch).

    Torch equivalent: ``torch.nn.functional.leaky_relu(z, negative_slope)``.

    Explained in: book/activations.md

    Example:
        >>> leaky_relu(torch.tensor([-2.0, 3.0]), negative_slope=0.1)
        tensor([-0.2000,  3.0000])
    """
    check_floating("z", z)
    check_number("negative_slope", negative_slope)
    return torch.where(z > 0, z, negative_slope * z)


def leaky_relu_grad(z: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    r"""Derivative of :func:`leaky_relu` at ``z``: 1 where ``z > 0``, else ``negative_slope``.

    At ``z = 0`` we return ``negative_slope``, matching torch's autograd.

    Torch equivalent:
    ``torch.autograd.grad(torch.nn.functional.leaky_relu(z, negative_slope).sum(), z)``.

    Explained in: book/activations.md

    Example:
        >>> leaky_relu_grad(torch.tensor([-2.0, 3.0]), negative_slope=0.1)
        tensor([0.1000, 1.0000])
    """
    check_floating("z", z)
    check_number("negative_slope", negative_slope)
    return torch.where(z > 0, 1.0, torch.full_like(z, negative_slope))


def elu(z: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    r"""The exponential linear unit: identity for positive inputs, saturating to ``-alpha`` below.

    Formula: ``elu(z) = z if z > 0 else alpha * (exp(z) - 1)``.
    Derivative: ``1 if z > 0 else alpha * exp(z)`` (``alpha`` at ``z = 0``, as in torch).

    ``exp(z) - 1`` is computed with ``expm1`` (accurate near 0), and only on ``min(z, 0)`` so the
    unused branch of ``where`` never overflows for large positive ``z``.

    Torch equivalent: ``torch.nn.functional.elu(z, alpha)``.

    Explained in: book/activations.md

    Example:
        >>> elu(torch.tensor([-1e4, -1.0, 2.0]))
        tensor([-1.0000, -0.6321,  2.0000])
    """
    check_floating("z", z)
    check_number("alpha", alpha, low=0)
    return torch.where(z > 0, z, alpha * torch.expm1(z.clamp(max=0)))


def elu_grad(z: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    r"""Derivative of :func:`elu` at ``z``: 1 where ``z > 0``, else ``alpha * exp(z)``.

    Torch equivalent: ``torch.autograd.grad(torch.nn.functional.elu(z, alpha).sum(), z)``.

    Explained in: book/activations.md

    Example:
        >>> elu_grad(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([0.3679, 1.0000, 1.0000])
    """
    check_floating("z", z)
    check_number("alpha", alpha, low=0)
    return torch.where(z > 0, 1.0, alpha * torch.exp(z.clamp(max=0)))


def silu(z: torch.Tensor) -> torch.Tensor:
    r"""The sigmoid-weighted linear unit (SiLU, also called swish): ``z`` gated by its sigmoid.

    Formula: ``silu(z) = z * sigmoid(z)``.
    Derivative: ``silu'(z) = sigmoid(z) * (1 + z * (1 - sigmoid(z)))``, which rearranges to the
    regrouped form ``silu(z) + sigmoid(z) * (1 - silu(z))`` that reuses the forward outputs.

    Torch equivalent: ``torch.nn.functional.silu(z)``.

    Explained in: book/activations.md

    Example:
        >>> silu(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([-0.2689,  0.0000,  1.7616])
    """
    check_floating("z", z)
    return z * sigmoid(z)


def silu_grad(z: torch.Tensor) -> torch.Tensor:
    r"""Derivative of :func:`silu` at ``z``.

    Formula: ``silu'(z) = sigmoid(z) * (1 + z * sigmoid(-z))``, using ``1 - sigmoid(z) =
    sigmoid(-z)``. This form never forms ``z * sigmoid(z)`` and subtracts it again, so it is
    accurate for large ``|z|`` where the regrouped form ``silu + sigmoid * (1 - silu)`` cancels.

    Torch equivalent: ``torch.autograd.grad(torch.nn.functional.silu(z).sum(), z)``.

    Explained in: book/activations.md

    Example:
        >>> silu_grad(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([0.0723, 0.5000, 1.0908])
    """
    check_floating("z", z)
    return sigmoid(z) * (1 + z * sigmoid(-z))


# --------------------------------------------------------------------------------------------
# softmax and log-softmax: not elementwise
# --------------------------------------------------------------------------------------------


def softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""The softmax along ``dim``: turns scores into probabilities that sum to 1.

    Formula: ``softmax(z)_i = exp(z_i) / sum_j exp(z_j)``.
    Derivative: a Jacobian, ``d softmax_i / d z_j = s_i * (delta_ij - s_j)``; see
    :func:`softmax_grad`.

    Softmax is unchanged when a constant is added to every ``z_j``. Subtracting the maximum makes
    the largest exponent ``exp(0) = 1``: nothing overflows, and the sum is at least 1.

    Torch equivalent: ``torch.nn.functional.softmax(z, dim=dim)``.

    Explained in: book/activations.md

    Example:
        >>> softmax(torch.tensor([1.0, 2.0, 1e4]))
        tensor([0., 0., 1.])
    """
    check_floating("z", z)
    _check_dim(z, dim)
    if z.numel() == 0:
        return torch.empty_like(z)
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""The logarithm of :func:`softmax` along ``dim``, computed without forming the softmax.

    Formula: ``log_softmax(z)_i = z_i - logsumexp(z)``, with ``logsumexp(z) = m + log(sum_j
    exp(z_j - m))`` and ``m = max_j z_j`` (the same max shift as in softmax). Taking ``log`` of a
    softmax that underflowed to 0 would give ``-inf``; this form stays finite.
    Derivative: a Jacobian, ``d log_softmax_i / d z_j = delta_ij - s_j``; see
    :func:`log_softmax_grad`.

    Torch equivalent: ``torch.nn.functional.log_softmax(z, dim=dim)``.

    Explained in: book/activations.md

    Example:
        >>> log_softmax(torch.tensor([0.0, 0.0, 1e4]))
        tensor([-10000., -10000.,      0.])
    """
    check_floating("z", z)
    _check_dim(z, dim)
    if z.numel() == 0:
        return torch.empty_like(z)
    shifted = z - z.amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def softmax_grad(z: torch.Tensor, grad_output: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Backpropagate ``grad_output`` through :func:`softmax`: the vector-Jacobian product.

    Each output ``s_i`` depends on every ``z_j`` along ``dim``, so the derivative is the Jacobian
    ``J_ij = s_i * (delta_ij - s_j)``, i.e. ``J = diag(s) - s s^T`` (symmetric). Rather than
    build this ``n x n`` matrix we return ``J^T g`` directly:

    ``(J^T g)_j = s_j * (g_j - sum_i g_i s_i)``.

    The result sums to 0 along ``dim``: softmax's outputs always sum to 1, so no change of ``z``
    can move their total.

    Torch equivalent: ``torch.autograd.grad(torch.nn.functional.softmax(z, dim), z, grad_output)``.

    Explained in: book/activations.md

    Example:
        >>> softmax_grad(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
        tensor([ 0.2500, -0.2500])
    """
    check_floating("z", z)
    check_like("grad_output", grad_output, "z", z)
    s = softmax(z, dim=dim)
    return s * (grad_output - (grad_output * s).sum(dim=dim, keepdim=True))


def log_softmax_grad(z: torch.Tensor, grad_output: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Backpropagate ``grad_output`` through :func:`log_softmax`: the vector-Jacobian product.

    The Jacobian is ``J_ij = delta_ij - s_j`` with ``s = softmax(z)`` (every output depends on
    every input along ``dim``), so

    ``(J^T g)_j = g_j - s_j * sum_i g_i``.

    With ``g`` the gradient of the cross-entropy loss, ``-onehot(y)``, this is the familiar
    ``softmax(z) - onehot(y)``.

    Torch equivalent:
    ``torch.autograd.grad(torch.nn.functional.log_softmax(z, dim), z, grad_output)``.

    Explained in: book/activations.md

    Example:
        >>> log_softmax_grad(torch.tensor([0.0, 0.0]), torch.tensor([-1.0, 0.0]))
        tensor([-0.5000,  0.5000])
    """
    check_floating("z", z)
    check_like("grad_output", grad_output, "z", z)
    s = softmax(z, dim=dim)
    return grad_output - s * grad_output.sum(dim=dim, keepdim=True)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    """An activation function together with what a layer using it needs to know.

    Attributes:
        name: the registry key, also the ``torch.nn.functional`` name where torch has one.
        fn: the activation, ``fn(z, ...) -> a``.
        grad: its derivative. For elementwise activations ``grad(z, ...)`` is ``da/dz`` at ``z``;
            for softmax / log_softmax it is the vector-Jacobian product
            ``grad(z, grad_output, dim=-1)`` (see ``elementwise``).
        gain: the recommended initialisation gain, ``nnbolts.init.calculate_gain(name)`` (equal
            to ``torch.nn.init.calculate_gain`` where torch knows the name), default parameters.
        init: the name of the recommended initializer in ``nnbolts.init`` (without the trailing
            underscore), to be called with ``gain=gain`` (xavier) or ``nonlinearity=name``
            (kaiming; for leaky_relu also ``a=negative_slope``, since kaiming's default ``a`` is 0
            while ``gain`` is computed for the activation's default slope 0.01).
        elementwise: whether ``grad`` is an elementwise derivative (False for softmax, whose
            derivative is a Jacobian).
    """

    name: str
    fn: Callable[..., torch.Tensor]
    grad: Callable[..., torch.Tensor]
    gain: float
    init: str
    elementwise: bool = True


def _registry() -> dict[str, Activation]:
    # (name, function, derivative, name for calculate_gain, recommended initializer).
    # The saturating activations keep Glorot/Xavier; the rectifier family uses He/Kaiming.
    # Output-layer activations (identity, softmax) are linear at initialisation: gain 1.
    rows = [
        ("identity", identity, identity_grad, "linear", "xavier_uniform"),
        ("sigmoid", sigmoid, sigmoid_grad, "sigmoid", "xavier_uniform"),
        ("tanh", tanh, tanh_grad, "tanh", "xavier_uniform"),
        ("relu", relu, relu_grad, "relu", "kaiming_normal"),
        ("leaky_relu", leaky_relu, leaky_relu_grad, "leaky_relu", "kaiming_normal"),
        ("elu", elu, elu_grad, "elu", "kaiming_normal"),
        ("silu", silu, silu_grad, "silu", "kaiming_normal"),
        ("softmax", softmax, softmax_grad, "linear", "xavier_uniform"),
        ("log_softmax", log_softmax, log_softmax_grad, "linear", "xavier_uniform"),
    ]
    return {
        name: Activation(
            name=name,
            fn=fn,
            grad=grad,
            gain=calculate_gain(gain_name),
            init=init,
            elementwise=name not in ("softmax", "log_softmax"),
        )
        for name, fn, grad, gain_name, init in rows
    }


ACTIVATIONS: dict[str, Activation] = _registry()

# Other names people use for the same function; get_activation accepts them too.
_ALIASES = {"linear": "identity", "swish": "silu"}


def get_activation(name: str) -> Activation:
    """Look up an activation by name (``"relu"``, ``"tanh"``, ... or an alias such as ``"linear"``).

    Raises ``ValueError`` naming the unknown name and listing the known ones.

    Explained in: book/activations.md

    Example:
        >>> act = get_activation("tanh")
        >>> act.fn(torch.tensor([0.0])), act.init, round(act.gain, 4)
        (tensor([0.]), 'xavier_uniform', 1.6667)
    """
    if not isinstance(name, str):
        raise TypeError(f"expected name to be a str, got {type(name).__name__}: {name!r}")
    key = _ALIASES.get(name, name)
    if key not in ACTIVATIONS:
        known = sorted([*ACTIVATIONS, *_ALIASES])
        raise ValueError(f"Unknown activation: {name!r}; expected one of {known}")
    return ACTIVATIONS[key]
