"""Known mistakes of backpropagation by hand and of the finite-difference gradient check
(``nnbolts.backprop``), each with its hint.

Registered by ``_mistakes._build`` for the references in ``nnbolts.backprop``. The variants are
written out in plain torch; hints name the idea that is off, in the book's words.
"""

from __future__ import annotations

import torch

from ._mistakes import Mistake


def _output_delta(Z2, y):
    """(softmax(Z2) - one-hot(y)) / N, through the stable log-softmax."""
    shifted = Z2 - Z2.amax(dim=1, keepdim=True)
    probs = torch.exp(shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True)))
    one_hot = torch.zeros_like(Z2).scatter_(1, y.long().unsqueeze(1), 1.0)
    return (probs - one_hot) / Z2.shape[0]


def _backward(cache, params, y, *, delta=None, hidden=None, scale=1.0):
    X, Z1, A1, Z2 = cache["X"], cache["Z1"], cache["A1"], cache["Z2"]
    G2 = _output_delta(Z2, y) * scale if delta is None else delta(Z2, y)
    derivative = 1 - A1 * A1 if hidden is None else hidden(Z1, A1)
    G1 = (G2 @ params["W2"]) * derivative
    return {"W1": G1.T @ X, "b1": G1.sum(0), "W2": G2.T @ A1, "b2": G2.sum(0)}


def _many(cache, *_):
    return cache["X"].shape[0] > 1


def _forward(X, params, *, hidden=torch.tanh, output=None, bias=True, keep_z=False):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    Z1 = X @ W1.T + (b1 if bias else 0)
    A1 = hidden(Z1)
    Z2 = A1 @ W2.T + (b2 if bias else 0)
    if output is not None:
        Z2 = output(Z2)
    return Z2, {"X": X, "Z1": Z1, "A1": Z1 if keep_z else A1, "Z2": Z2}


def _forward_difference(f, x, h=1e-6):
    flat = x.detach().reshape(-1)
    base = f(x.detach().clone())
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        plus = flat.clone()
        plus[i] += h
        grad[i] = (f(plus.view_as(x)) - base) / h
    return grad.view_as(x)


def _central(f, x, h=1e-6):
    from nnbolts.backprop import numerical_gradient

    return numerical_gradient(f, x, h)


def _all_at_once(f, x, h=1e-6):
    value = (f(x + h) - f(x - h)) / (2 * h)
    return torch.full_like(x, float(value))


def _relative(estimate, exact, denominator="max"):
    exact = exact.to(estimate.dtype)
    diff = (estimate - exact).norm().item()
    if denominator == "exact":
        scale = exact.norm().item()
    elif denominator == "sum":
        scale = estimate.norm().item() + exact.norm().item()
    else:
        scale = max(estimate.norm().item(), exact.norm().item())
    return diff / scale if scale else 0.0


def backprop_mistakes():
    """``(name of the nnbolts.backprop function, [Mistake, ...])`` pairs."""
    mlp_forward = [
        Mistake("the biases b1 and b2 are left out",
                "each layer is Z = A W^T + b: add the bias after the matrix product",
                lambda X, params: _forward(X, params, bias=False)),
        Mistake("tanh is applied to the output as well: the logits are squashed into (-1, 1)",
                "the network returns the logits Z2 = A1 W2^T + b2, with no activation on the "
                "output (the softmax belongs to the loss)",
                lambda X, params: _forward(X, params, output=torch.tanh)),
        Mistake("the hidden layer uses a ReLU instead of tanh",
                "A1 = tanh(Z1)", lambda X, params: _forward(X, params, hidden=torch.relu)),
        Mistake("the cache's A1 holds the pre-activation Z1",
                "keep both Z1 and A1 = tanh(Z1) in the cache: the backward pass needs A1",
                lambda X, params: _forward(X, params, keep_z=True)),
    ]
    mlp_backward = [
        Mistake("the 1/N of the mean is missing from the output deltas",
                "the loss is a mean over the N examples: G2 = (softmax(Z2) − one-hot) / N, and "
                "the 1/N reaches every gradient through G2",
                lambda cache, params, y: _backward(cache, params, y,
                                                   scale=cache["Z2"].shape[0]),
                applies=_many),
        Mistake("tanh's derivative is evaluated at the pre-activation: 1 − Z1² instead of "
                "1 − A1²",
                "tanh'(z) = 1 − tanh(z)²: use the activation A1 = tanh(Z1) from the cache",
                lambda cache, params, y: _backward(cache, params, y,
                                                   hidden=lambda Z1, A1: 1 - Z1 * Z1)),
        Mistake("the derivative of the hidden activation is missing",
                "G1 = (G2 W2) ⊙ φ'(Z1): multiply elementwise by tanh'(Z1) = 1 − A1²",
                lambda cache, params, y: _backward(cache, params, y,
                                                   hidden=lambda Z1, A1: torch.ones_like(A1))),
        Mistake("the activation is used instead of its derivative: A1 in place of 1 − A1²",
                "G1 = (G2 W2) ⊙ tanh'(Z1), and tanh'(Z1) = 1 − A1²",
                lambda cache, params, y: _backward(cache, params, y,
                                                   hidden=lambda Z1, A1: A1)),
        Mistake("the sign is flipped: one-hot minus softmax",
                "the output deltas are softmax(Z2) − one-hot(y), divided by N",
                lambda cache, params, y: _backward(cache, params, y, scale=-1.0)),
    ]
    numerical_gradient = [
        Mistake("a forward difference (f(x + h) − f(x)) / h instead of the central one",
                "use the central difference (f(x + h eᵢ) − f(x − h eᵢ)) / (2h): its error is of "
                "order h², the forward difference's of order h", _forward_difference),
        Mistake("the central difference is divided by h instead of 2h",
                "the two points x + h eᵢ and x − h eᵢ are 2h apart",
                lambda f, x, h=1e-6: 2 * _central(f, x, h)),
        Mistake("every coordinate is perturbed at once",
                "perturb one coordinate at a time (x ± h eᵢ): moving all of them gives a "
                "directional derivative, the same number everywhere", _all_at_once,
                applies=lambda f, x, h=1e-6: x.numel() > 1),
    ]
    gradient_check = [
        Mistake("the error is divided by ‖analytic‖ only",
                "the relative error is ‖ĝ − g‖ / max(‖ĝ‖, ‖g‖)",
                lambda f, x, analytic, h=1e-6: _relative(_central(f, x, h), analytic, "exact")),
        Mistake("the error is divided by the sum of the norms",
                "the relative error is ‖ĝ − g‖ / max(‖ĝ‖, ‖g‖), the larger of the two norms",
                lambda f, x, analytic, h=1e-6: _relative(_central(f, x, h), analytic, "sum")),
        Mistake("the absolute error ‖ĝ − g‖, not divided by anything",
                "divide by max(‖ĝ‖, ‖g‖), so that the error does not depend on the scale of f",
                lambda f, x, analytic, h=1e-6: (_central(f, x, h) - analytic).norm().item()),
        Mistake("the largest elementwise difference instead of the relative error",
                "the relative error is ‖ĝ − g‖ / max(‖ĝ‖, ‖g‖), with 2-norms",
                lambda f, x, analytic, h=1e-6: (_central(f, x, h) - analytic).abs().max().item()),
    ]
    return [("mlp_forward", mlp_forward), ("mlp_backward", mlp_backward),
            ("numerical_gradient", numerical_gradient), ("gradient_check", gradient_check)]
