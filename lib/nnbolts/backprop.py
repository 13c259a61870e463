"""Backpropagation by hand for a one-hidden-layer network, and a finite-difference gradient check.

* :func:`mlp_forward`: the forward pass of a tanh network with one hidden layer,
  ``Z1 = X W1^T + b1``, ``A1 = tanh(Z1)``, ``Z2 = A1 W2^T + b2`` (the logits), keeping the
  intermediate values the backward pass needs;
* :func:`mlp_backward`: the gradients of the mean cross-entropy of the logits against integer
  class labels with respect to ``W1, b1, W2, b2``, by the matrix form of backpropagation
  (``G2 = (softmax(Z2) - one-hot) / N``, ``dW2 = G2^T A1``, ``db2 = 1^T G2``,
  ``G1 = (G2 W2) * (1 - A1^2)``, ``dW1 = G1^T X``, ``db1 = 1^T G1``), without autograd;
* :func:`numerical_gradient`: the central difference ``(f(x + h e_i) - f(x - h e_i)) / (2h)`` of a
  scalar function, one coordinate at a time, leaving ``x`` as it was;
* :func:`relative_error` and :func:`gradient_check`: the relative error
  ``||g_hat - g|| / max(||g_hat||, ||g||)`` between a finite-difference estimate and a gradient
  computed otherwise (by hand, or by autograd).

Notation as in the book: a batch ``X`` of ``N`` examples (the rows), ``H`` hidden units, ``K``
classes, ``G_l = dL/dZ_l`` the back-propagated errors of layer ``l``, one row per example.

Explained in: book/backprop.md (sections "The algorithm in general" and "A two-layer sigmoid
classifier by hand") and book/tensors.md (sections "What backward computes: vector-Jacobian
products" and "Checking a gradient with finite differences")
"""

from __future__ import annotations

import math
import numbers

import torch

from nnbolts import losses
from nnbolts._checks import check_floating, check_tensor

__all__ = [
    "PARAMETERS",
    "gradient_check",
    "mlp_backward",
    "mlp_forward",
    "numerical_gradient",
    "relative_error",
]

PARAMETERS = ("W1", "b1", "W2", "b2")
"""The keys of the parameter dict of :func:`mlp_forward`, in order."""

_CACHE = ("X", "Z1", "A1", "Z2")


def _check_params(params) -> dict:
    if not isinstance(params, dict):
        raise TypeError(f"expected params to be a dict with keys {', '.join(PARAMETERS)}, got "
                        f"{type(params).__name__}")
    missing = [k for k in PARAMETERS if k not in params]
    if missing:
        raise ValueError(f"params has no {missing[0]!r} (it needs {', '.join(PARAMETERS)})")
    for key in PARAMETERS:
        check_floating(f"params[{key!r}]", params[key])
    W1, b1, W2, b2 = (params[k] for k in PARAMETERS)
    if W1.dim() != 2 or W2.dim() != 2 or b1.dim() != 1 or b2.dim() != 1:
        raise ValueError(f"params['W1'] and params['W2'] must be 2-D and the biases 1-D, got "
                         f"shapes W1 {tuple(W1.shape)}, b1 {tuple(b1.shape)}, W2 "
                         f"{tuple(W2.shape)}, b2 {tuple(b2.shape)}")
    if b1.shape[0] != W1.shape[0] or W2.shape[1] != W1.shape[0] or b2.shape[0] != W2.shape[0]:
        raise ValueError(f"params do not fit together: W1 {tuple(W1.shape)} (H, D), b1 "
                         f"{tuple(b1.shape)} (H,), W2 {tuple(W2.shape)} (K, H), b2 "
                         f"{tuple(b2.shape)} (K,)")
    for key in PARAMETERS[1:]:
        if params[key].dtype != W1.dtype or params[key].device != W1.device:
            raise ValueError(f"params[{key!r}] is a {params[key].dtype} tensor on "
                             f"{params[key].device}, params['W1'] a {W1.dtype} tensor on "
                             f"{W1.device}")
    return params


def mlp_forward(X: torch.Tensor, params: dict) -> tuple[torch.Tensor, dict]:
    r"""The forward pass of a one-hidden-layer tanh network: the logits and the cache.

    Formula (one example per row of ``X``, of shape ``(N, D)``; ``W1`` of shape ``(H, D)``, ``b1``
    ``(H,)``, ``W2`` ``(K, H)``, ``b2`` ``(K,)``, as ``nn.Linear`` stores them)::

        Z1 = X W1^T + b1,   A1 = tanh(Z1),   Z2 = A1 W2^T + b2

    Returns ``(Z2, cache)`` with ``cache = {"X": X, "Z1": Z1, "A1": A1, "Z2": Z2}``: the values
    kept for the backward sweep (the Deep Learning book's Algorithm 6.1 keeps every intermediate
    value). ``Z2`` holds the logits, one row per example.

    Torch equivalent: ``nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, K))`` with these
    weights, i.e. ``F.linear(torch.tanh(F.linear(X, W1, b1)), W2, b2)``.

    Explained in: book/backprop.md (section "The algorithm in general")

    Example:
        >>> params = {"W1": torch.eye(2), "b1": torch.zeros(2), "W2": torch.eye(2),
        ...           "b2": torch.zeros(2)}
        >>> mlp_forward(torch.zeros(1, 2), params)[0]
        tensor([[0., 0.]])
    """
    check_floating("X", X)
    _check_params(params)
    W1, b1, W2, b2 = (params[k] for k in PARAMETERS)
    if X.dim() != 2 or X.shape[1] != W1.shape[1]:
        raise ValueError(f"X must have shape (N, {W1.shape[1]}) to fit params['W1'] of shape "
                         f"{tuple(W1.shape)}, got {tuple(X.shape)}")
    if X.dtype != W1.dtype or X.device != W1.device:
        raise ValueError(f"X is a {X.dtype} tensor on {X.device}, params['W1'] a {W1.dtype} "
                         f"tensor on {W1.device}")
    Z1 = X @ W1.T + b1
    A1 = torch.tanh(Z1)
    Z2 = A1 @ W2.T + b2
    return Z2, {"X": X, "Z1": Z1, "A1": A1, "Z2": Z2}


def mlp_backward(cache: dict, params: dict, targets: torch.Tensor) -> dict:
    r"""The gradients of the mean cross-entropy of :func:`mlp_forward`'s logits, by hand.

    Formula: with ``L = -(1/N) sum_i log softmax(Z2_i)_{y_i}`` (``F.cross_entropy``) and the
    cache of :func:`mlp_forward`::

        G2 = (softmax(Z2) - onehot(y)) / N          # dL/dZ2, nnbolts.losses.cross_entropy_grad
        dW2 = G2^T A1,   db2 = 1^T G2
        G1 = (G2 W2) * (1 - A1^2)                   # tanh'(Z1) = 1 - tanh(Z1)^2
        dW1 = G1^T X,    db1 = 1^T G1

    two matrix products per layer. Returns ``{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}``,
    each of its parameter's shape, dtype and device. The softmax comes from the stable
    log-softmax (:func:`nnbolts.losses.cross_entropy_grad`): large logits are harmless.

    Torch equivalent: ``torch.autograd.grad(F.cross_entropy(logits, targets), [W1, b1, W2, b2])``
    for logits computed from leaves that require gradients.

    Explained in: book/backprop.md (sections "The algorithm in general" and "A two-layer sigmoid
    classifier by hand", whose output delta sigma(z) - y becomes softmax(z) - one-hot here)

    Example:
        >>> params = {"W1": torch.ones(1, 1), "b1": torch.zeros(1), "W2": torch.zeros(2, 1),
        ...           "b2": torch.zeros(2)}
        >>> logits, cache = mlp_forward(torch.zeros(1, 1), params)
        >>> mlp_backward(cache, params, torch.tensor([0]))["b2"]
        tensor([-0.5000,  0.5000])
    """
    _check_params(params)
    if not isinstance(cache, dict):
        raise TypeError(f"expected cache to be the dict mlp_forward returns, got "
                        f"{type(cache).__name__}")
    missing = [k for k in _CACHE if k not in cache]
    if missing:
        raise ValueError(f"cache has no {missing[0]!r} (mlp_forward's cache holds "
                         f"{', '.join(_CACHE)})")
    X, A1, Z2 = cache["X"], cache["A1"], cache["Z2"]
    for key in _CACHE:
        check_floating(f"cache[{key!r}]", cache[key])
    W2 = params["W2"]
    n, hidden, classes = X.shape[0], params["W1"].shape[0], W2.shape[0]
    if A1.shape != (n, hidden) or Z2.shape != (n, classes):
        raise ValueError(f"cache does not fit params: A1 {tuple(A1.shape)} should be "
                         f"({n}, {hidden}) and Z2 {tuple(Z2.shape)} ({n}, {classes})")
    G2 = losses.cross_entropy_grad(Z2, targets)
    G1 = (G2 @ W2) * (1 - A1 * A1)
    return {"W1": G1.T @ X, "b1": G1.sum(0), "W2": G2.T @ A1, "b2": G2.sum(0)}


def _check_step(h) -> float:
    if isinstance(h, bool) or not isinstance(h, numbers.Real):
        raise TypeError(f"expected h to be a number, got {type(h).__name__}")
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"Invalid step h: {h} (it must be positive and finite)")
    return float(h)


def numerical_gradient(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    r"""The gradient of a scalar function by central differences, one coordinate at a time.

    Formula: ``g_hat_i = (f(x + h e_i) - f(x - h e_i)) / (2 h)`` for every element ``i`` of ``x``
    (``e_i`` the ``i``-th unit vector of x's shape): accurate to second order in ``h``, where
    the forward difference ``(f(x + h e_i) - f(x)) / h`` is accurate to first order only. It
    costs ``2 P`` evaluations of ``f`` for ``P = x.numel()``. ``x`` itself is never changed:
    every evaluation gets a perturbed copy. ``f(x)`` must return a scalar (a number or a
    one-element tensor); the result has x's shape, dtype and device. Run it in float64 with
    ``h`` near ``eps^(1/3)`` (``1e-6`` to ``1e-5``): truncation grows like ``h^2``, rounding like
    ``eps / h``.

    Torch equivalent: the numerical Jacobian inside ``torch.autograd.gradcheck`` (its ``eps``
    is this ``h``, default ``1e-6``).

    Explained in: book/tensors.md (section "Checking a gradient with finite differences")

    Example:
        >>> numerical_gradient(lambda v: (v ** 2).sum(), torch.tensor([1.0, -2.0],
        ...                    dtype=torch.float64), h=1e-3).round(decimals=9)
        tensor([ 2., -4.], dtype=torch.float64)
    """
    if not callable(f):
        raise TypeError(f"expected f to be a function, got {type(f).__name__}")
    check_floating("x", x)
    h = _check_step(h)
    flat = x.detach().reshape(-1)
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += h
        minus[i] -= h
        up, down = f(plus.view_as(x)), f(minus.view_as(x))
        if isinstance(up, torch.Tensor) and up.numel() != 1:
            raise ValueError(f"f must return a scalar, got a tensor of shape {tuple(up.shape)}")
        grad[i] = (up - down) / (2 * h)
    return grad.view_as(x)


def relative_error(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    r"""The relative error ``||estimate - exact|| / max(||estimate||, ||exact||)`` (2-norms over
    all elements), 0 when both are 0.

    It does not depend on the scale of the loss: below about ``1e-7`` in float64 a gradient is
    right, around ``1e-2`` or larger something is wrong.

    Torch equivalent: none (``torch.autograd.gradcheck`` compares elementwise with ``atol`` and
    ``rtol``).

    Explained in: book/tensors.md (section "Checking a gradient with finite differences")

    Example:
        >>> relative_error(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 4.0]))
        0.0
    """
    check_floating("estimate", estimate)
    check_tensor("exact", exact)
    if exact.shape != estimate.shape:
        raise ValueError(f"exact has shape {tuple(exact.shape)} but estimate has shape "
                         f"{tuple(estimate.shape)}")
    exact = exact.to(estimate.device, estimate.dtype)
    scale = max(estimate.norm().item(), exact.norm().item())
    if scale == 0:
        return 0.0
    return (estimate - exact).norm().item() / scale


def gradient_check(f, x: torch.Tensor, analytic: torch.Tensor, h: float = 1e-6) -> float:
    r"""The relative error between ``analytic``, a gradient of ``f`` at ``x`` computed otherwise
    (by hand, by autograd), and the central-difference estimate :func:`numerical_gradient`.

    Formula: ``||g_hat - g|| / max(||g_hat||, ||g||)`` with ``g_hat = numerical_gradient(f, x, h)``
    and ``g = analytic`` (:func:`relative_error`). In float64 with ``h = 1e-6`` a right gradient
    gives about ``1e-10``; a wrong one ``1e-2`` or more.

    Torch equivalent: ``torch.autograd.gradcheck(f, (x,))`` asks the same question of autograd's
    gradient and answers True/False with elementwise tolerances.

    Explained in: book/tensors.md (section "A gradient check, and one that fails")

    Example:
        >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64)
        >>> gradient_check(lambda v: (v ** 2).sum(), x, 2 * x) < 1e-8
        True
    """
    check_floating("x", x)
    check_tensor("analytic", analytic)
    if analytic.shape != x.shape:
        raise ValueError(f"analytic has shape {tuple(analytic.shape)} but x has shape "
                         f"{tuple(x.shape)}")
    return relative_error(numerical_gradient(f, x, h), analytic)
