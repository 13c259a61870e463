"""Known mistakes of the loss functions (``nnbolts.losses``), each with its hint.

Registered by ``_mistakes._build`` for the references in ``nnbolts.losses``. The variants are
written out in plain torch; hints name the idea that is off, in the book's words.
"""

from __future__ import annotations

import torch

from ._mistakes import Mistake


def _stable_log_softmax(z, dim=-1):
    shifted = z - z.amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def _naive_log_softmax(z, dim=-1):
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))


def _picked(z, y, log_softmax=_stable_log_softmax):
    return log_softmax(z, 1).gather(1, y.long().unsqueeze(1)).squeeze(1)


def _probs(z):
    return torch.exp(_stable_log_softmax(z, 1))


def _one_hot(z, y):
    return torch.zeros_like(z).scatter_(1, y.long().unsqueeze(1), 1.0)


def _other_dim(z, dim, which):
    return z.dim() > 1 and (dim % z.dim()) != (which % z.dim())


def _batch_of_many(z, *_):
    return z.shape[0] > 1


def loss_mistakes():
    """``(name of the nnbolts.losses function, [Mistake, ...])`` pairs."""
    mse = [
        Mistake("the sum of the squared errors instead of their mean",
                "the mean squared error divides the sum by the number of elements",
                lambda pred, target: ((pred - target) ** 2).sum(),
                applies=lambda pred, target: pred.numel() > 1),
        Mistake("the mean absolute error instead of the squared one",
                "square the differences", lambda pred, target: (pred - target).abs().mean()),
        Mistake("the mean taken over the rows only",
                "average over every element (pred.numel()), as F.mse_loss does",
                lambda pred, target: ((pred - target) ** 2).sum() / pred.shape[0],
                applies=lambda pred, target: pred.dim() > 1 and pred.numel() != pred.shape[0]),
        Mistake("the root of the mean squared error",
                "no square root: the loss is the mean of the squares",
                lambda pred, target: ((pred - target) ** 2).mean().sqrt()),
    ]
    mse_grad = [
        Mistake("the factor 2 of the square is missing",
                "the derivative of (pred − target)² is 2 (pred − target)",
                lambda pred, target: (pred - target) / pred.numel()),
        Mistake("the gradient of the sum, without the 1/n of the mean",
                "the mean divides by the number of elements, and so does its gradient",
                lambda pred, target: 2 * (pred - target),
                applies=lambda pred, target: pred.numel() > 1),
        Mistake("the sign is flipped: the gradient with respect to the target",
                "differentiate with respect to pred: 2 (pred − target) / n",
                lambda pred, target: 2 * (target - pred) / pred.numel()),
        Mistake("divided by the number of rows instead of the number of elements",
                "the mean in F.mse_loss is over every element (pred.numel())",
                lambda pred, target: 2 * (pred - target) / pred.shape[0],
                applies=lambda pred, target: pred.dim() > 1 and pred.numel() != pred.shape[0]),
    ]
    log_softmax = [
        Mistake("log_softmax without the max shift: exp overflows for large logits",
                "subtract the maximum along dim before exponentiating, and add it back",
                _naive_log_softmax),
        Mistake("log_softmax computed as log(softmax(z)): it underflows to −inf",
                "write log_softmax(z) as z minus the log-sum-exp of z (with the max shift), "
                "without forming the softmax",
                lambda z, dim=-1: torch.log(torch.exp(_stable_log_softmax(z, dim)))),
        Mistake("the log-sum-exp is taken over the whole tensor, not along dim",
                "each slice along dim is one distribution: reduce along dim with keepdim=True",
                lambda z, dim=-1: z - z.max() - torch.log(torch.exp(z - z.max()).sum())),
        Mistake("log_softmax ignores dim and always works along the last dimension",
                "reduce along the dim argument", lambda z, dim=-1: _stable_log_softmax(z, -1),
                applies=lambda z, dim=-1: _other_dim(z, dim, -1)),
    ]
    cross_entropy = [
        Mistake("cross_entropy without the max shift: exp overflows for large logits",
                "compute the log-softmax as z − max − log Σ exp(z − max): the max shift keeps "
                "every exponent ≤ 0",
                lambda z, y: -_picked(z, y, _naive_log_softmax).mean()),
        Mistake("the mean is over the N·K entries (classes too), not over the N examples",
                "average the per-example losses over the batch only: divide the sum by N",
                lambda z, y: -_picked(z, y).sum() / z.numel()),
        Mistake("the sum over the batch instead of the mean",
                "F.cross_entropy's default reduction is the mean over the N examples",
                lambda z, y: -_picked(z, y).sum(), applies=_batch_of_many),
        Mistake("the sign is flipped: the log-likelihood instead of its negative",
                "the loss is the negative log-probability of the observed class",
                lambda z, y: _picked(z, y).mean()),
        Mistake("the log-softmax is taken over the batch (dim 0), not over the classes",
                "each row is one example's distribution over the K classes: normalise along "
                "dim 1", lambda z, y: -_stable_log_softmax(z, 0).gather(
                    1, y.long().unsqueeze(1)).mean(), applies=_batch_of_many),
    ]
    cross_entropy_grad = [
        Mistake("the 1/N of the mean is missing",
                "the loss is a mean over the N examples, so each row of the gradient is "
                "divided by N", lambda z, y: _probs(z) - _one_hot(z, y), applies=_batch_of_many),
        Mistake("divided by N·K instead of N",
                "the mean is over the N examples only", lambda z, y: (
                    _probs(z) - _one_hot(z, y)) / z.numel()),
        Mistake("the sign is flipped: one-hot minus softmax",
                "the gradient of the loss is softmax(z) − one-hot(y) (divided by N): the "
                "observed class's logit must go up when you step against it",
                lambda z, y: (_one_hot(z, y) - _probs(z)) / z.shape[0]),
        Mistake("the one-hot target is missing: softmax(z) / N",
                "subtract 1 at each example's observed class",
                lambda z, y: _probs(z) / z.shape[0]),
    ]
    kl_div = [
        Mistake("the divergence in the wrong direction: D_KL(p ‖ q)",
                "F.kl_div(log_p, log_q, log_target=True) is D_KL(q ‖ p) = Σ q (log q − log p): "
                "the expectation is over the target q, the second argument",
                lambda log_p, log_q: (log_p.exp() * (log_p - log_q)).sum() / log_p.shape[0]),
        Mistake("the mean over every element instead of the batch mean",
                "sum over the classes and divide by the batch size N = log_p.shape[0] "
                "(torch's reduction=\"batchmean\")",
                lambda log_p, log_q: (log_q.exp() * (log_q - log_p)).mean(),
                applies=lambda log_p, log_q: log_p.numel() != log_p.shape[0]),
        Mistake("the sum over the batch instead of the batch mean",
                "divide the sum by the batch size N = log_p.shape[0]",
                lambda log_p, log_q: (log_q.exp() * (log_q - log_p)).sum(),
                applies=lambda log_p, log_q: log_p.shape[0] > 1),
        Mistake("the weights are log q instead of q = exp(log q)",
                "the arguments are log-probabilities: weight each term by q = exp(log q)",
                lambda log_p, log_q: (log_q * (log_q - log_p)).sum() / log_p.shape[0]),
    ]
    return [("mse", mse), ("mse_grad", mse_grad), ("log_softmax", log_softmax),
            ("cross_entropy", cross_entropy), ("cross_entropy_grad", cross_entropy_grad),
            ("kl_div", kl_div)]
