"""Loss functions from maximum likelihood, and their gradients written by hand.

The mean squared error is the negative log-likelihood of a Gaussian, the cross-entropy that of a
categorical distribution whose probabilities are the softmax of the logits, and the
Kullback–Leibler divergence from the targets to the model differs from the cross-entropy by the
targets' entropy, which does not depend on the network. Every function here is written out in
plain torch operations and matches its ``torch.nn.functional`` equivalent (mean reductions):

* :func:`mse` / :func:`mse_grad`: ``F.mse_loss(pred, target)`` and its gradient with respect to
  ``pred``;
* :func:`log_softmax`: ``F.log_softmax(z, dim)`` through the max shift (log-sum-exp), so that no
  logit overflows;
* :func:`cross_entropy` / :func:`cross_entropy_grad`: ``F.cross_entropy(logits, targets)`` with
  integer class targets, and its gradient with respect to the logits, ``(softmax − one-hot) / N``;
* :func:`kl_div`: ``F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)``, the
  divergence ``D_KL(q ‖ p)`` from the target ``q`` to the model ``p``, both given as
  log-probabilities.

Notation as in the book: ``N`` examples (the rows), ``K`` classes, logits ``z``, ``p`` the
model's distribution and ``q`` the target's.

Explained in: book/backprop.md (section "Loss functions from maximum likelihood")
"""

from __future__ import annotations

import torch

from nnbolts._checks import check_floating, check_like

__all__ = [
    "cross_entropy",
    "cross_entropy_grad",
    "kl_div",
    "log_softmax",
    "mse",
    "mse_grad",
]


def _check_targets(logits: torch.Tensor, targets) -> torch.Tensor:
    check_floating("logits", logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D (N examples, K classes), got shape "
                         f"{tuple(logits.shape)}")
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (
            torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError("targets must be an integer tensor of class indices")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must have shape ({logits.shape[0]},), got "
                         f"{tuple(targets.shape)}")
    if targets.device != logits.device:
        raise ValueError(f"targets are on {targets.device}, logits on {logits.device}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ValueError(f"class indices must lie in [0, {logits.shape[1]})")
    return targets.long()


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The mean squared error, averaged over every element.

    Formula: ``L = (1/n) sum_i (pred_i - target_i)^2`` over the ``n = pred.numel()`` elements
    (for one output per example, ``n = N`` and this is the book's
    ``MSE(θ) = (1/N) sum_i (f(x_i; θ) - y_i)^2``). It is the negative log-likelihood of a Gaussian
    with a fixed variance, up to a constant and a positive factor.

    Torch equivalent: ``torch.nn.functional.mse_loss(pred, target)`` (``reduction="mean"``).

    Explained in: book/backprop.md

    Example:
        >>> mse(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(2.5000)
    """
    check_floating("pred", pred)
    check_like("target", target, "pred", pred)
    return ((pred - target) ** 2).mean()


def mse_grad(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The gradient of :func:`mse` with respect to ``pred``.

    Formula: ``dL/dpred_i = 2 (pred_i - target_i) / n`` with ``n = pred.numel()``: the factor 2
    from the square, and ``1/n`` from the mean.

    Torch equivalent: ``torch.autograd.grad(F.mse_loss(pred, target), pred)[0]``.

    Explained in: book/backprop.md

    Example:
        >>> mse_grad(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor([1., 2.])
    """
    check_floating("pred", pred)
    check_like("target", target, "pred", pred)
    return 2 * (pred - target) / max(pred.numel(), 1)


def log_softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""The logarithm of the softmax along ``dim``, with the max shift: no exp overflows.

    Formula: ``log softmax(z)_k = z_k - logsumexp(z)``, where
    ``logsumexp(z) = m + log sum_j exp(z_j - m)`` and ``m = max_j z_j``. Subtracting ``m`` makes
    the largest exponent ``exp(0) = 1``, so the sum lies in ``[1, K]`` and its logarithm is
    finite for any finite logits (``log(softmax(z))`` would give ``-inf`` where the softmax
    underflows).

    Torch equivalent: ``torch.nn.functional.log_softmax(z, dim=dim)``.

    Explained in: book/backprop.md (and book/activations.md)

    Example:
        >>> log_softmax(torch.tensor([0.0, 0.0, 1e4]))
        tensor([-10000., -10000.,      0.])
    """
    check_floating("z", z)
    if z.numel() == 0:
        return torch.empty_like(z)
    shifted = z - z.amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""The categorical cross-entropy of logits against integer class targets, averaged over
    the batch.

    Formula: ``L = -(1/N) sum_i log softmax(z_i)_{y_i} = (1/N) sum_i (-z_{i,y_i} + logsumexp(z_i))``
    for logits ``z`` of shape ``(N, K)`` and targets ``y`` of shape ``(N,)`` with values in
    ``0 .. K-1``: the negative log-likelihood of the observed classes under the categorical
    distribution ``softmax(z_i)``, computed through :func:`log_softmax` so that no logit
    overflows. The mean is over the ``N`` examples, not over the ``N K`` entries.

    Torch equivalent: ``torch.nn.functional.cross_entropy(logits, targets)``.

    Explained in: book/backprop.md

    Example:
        >>> cross_entropy(torch.tensor([[0.0, 0.0], [1e4, 0.0]]), torch.tensor([0, 0]))
        tensor(0.3466)
    """
    targets = _check_targets(logits, targets)
    if logits.shape[0] == 0:
        return logits.new_tensor(float("nan"))
    picked = log_softmax(logits, dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)
    return -picked.mean()


def cross_entropy_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""The gradient of :func:`cross_entropy` with respect to the logits.

    Formula: ``dL/dz_{ik} = (softmax(z_i)_k - [k = y_i]) / N``: the predicted probabilities minus
    the one-hot target, divided by the batch size ``N`` of the mean. Each row sums to 0.

    Torch equivalent: ``torch.autograd.grad(F.cross_entropy(logits, targets), logits)[0]``.

    Explained in: book/backprop.md

    Example:
        >>> cross_entropy_grad(torch.tensor([[0.0, 0.0]]), torch.tensor([1]))
        tensor([[ 0.5000, -0.5000]])
    """
    targets = _check_targets(logits, targets)
    n = logits.shape[0]
    if n == 0:
        return torch.empty_like(logits)
    probs = torch.exp(log_softmax(logits, dim=1))
    one_hot = torch.zeros_like(logits).scatter_(1, targets.unsqueeze(1), 1.0)
    return (probs - one_hot) / n


def kl_div(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    r"""The Kullback–Leibler divergence ``D_KL(q ‖ p)`` from the target ``q`` to the model ``p``,
    both given as log-probabilities, summed over the classes and averaged over the batch.

    Formula: ``(1/N) sum_i sum_k q_{ik} (log q_{ik} - log p_{ik})`` with ``q = exp(log_q)`` and
    ``N = log_p.shape[0]`` (torch's ``"batchmean"``). The first argument is the model's, as in
    torch: the divergence is taken *from* the second argument, ``q``, the distribution the
    expectation is over. A term with ``q_{ik} = 0`` is 0 (``0 log 0 = 0``), whatever ``p`` is;
    a term with ``p_{ik} = 0 < q_{ik}`` is ``+inf``. With ``q`` the data's distribution this is
    the cross-entropy ``H(q, p)`` minus the entropy ``H(q)``.

    Torch equivalent:
    ``torch.nn.functional.kl_div(log_p, log_q, reduction="batchmean", log_target=True)``, which
    agrees wherever ``log_q`` is finite; where ``log_q = -inf`` (``q = 0`` exactly) torch
    computes ``0 * (-inf) = nan`` and this function the limit, 0.

    Explained in: book/backprop.md (section "The Kullback–Leibler view")

    Example:
        >>> kl_div(torch.tensor([[0.9, 0.1]]).log(), torch.tensor([[0.5, 0.5]]).log())
        tensor(0.5108)
    """
    check_floating("log_p", log_p)
    check_like("log_q", log_q, "log_p", log_p)
    if log_p.dim() == 0:
        raise ValueError("log_p must have a batch dimension (dim 0)")
    if log_p.shape[0] == 0:
        return log_p.new_tensor(float("nan"))
    q = torch.exp(log_q)
    terms = torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q))
    return terms.sum() / log_p.shape[0]
