r"""SparseAdam: Adam restricted to the rows a sparse gradient touches (the rows of an embedding
table that a minibatch looked up), in PyTorch's form (``torch.optim.SparseAdam``).

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import math

import torch
from torch.optim.optimizer import _to_scalar

from .._checks import check_number, check_tensor
from ._base import RuleOptimizer, check_betas, check_lr, check_state, pure_step

__all__ = ["SparseAdam", "sparse_adam_init", "sparse_adam_step"]

_DENSE_GRAD = "SparseAdam does not support dense gradients, please consider Adam instead"


def _check_sparse_adam(lr, betas, eps):
    check_lr(lr)
    # torch's SparseAdam, unlike Adam, refuses a zero rate (a tensor one too; meta has no value)
    if not (isinstance(lr, torch.Tensor) and lr.device.type == "meta") and not lr > 0:
        raise ValueError(f"Invalid learning rate: {lr} (SparseAdam needs lr > 0)")
    check_number("epsilon value", eps, low=0.0, low_open=True)
    check_betas(betas)


def _sparse(like, indices, values):
    """A sparse tensor with ``like``'s indices and size holding ``values`` (unique indices)."""
    return torch.sparse_coo_tensor(indices, values, like.size(), is_coalesced=True,
                                   check_invariants=False)


def _sparse_adam_(param, grad, state, *, lr, beta1, beta2, eps, maximize):
    """In-place SparseAdam kernel: the math of :func:`sparse_adam_step`, in the operation order of
    torch's ``sparse_adam`` (so trajectories agree bit for bit). Only the rows in ``grad``'s
    indices are read or written."""
    step = state["step"] = state["step"] + 1     # counted even when the gradient is empty
    if param.device.type == "meta":
        return  # no values, and torch cannot coalesce a sparse meta tensor: the state is all
    g = -grad if maximize else grad
    g = g.coalesce()                              # the update is not linear: one entry per row
    indices, values = g._indices(), g._values()
    if values.numel() == 0:
        return
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

    # m_S ← m_S + (1−β₁)(g_S − m_S), v_S likewise with g², on the touched rows S only
    old_exp_avg = exp_avg.sparse_mask(g)._values()
    exp_avg_change = values.sub(old_exp_avg).mul_(1 - beta1)
    exp_avg.add_(_sparse(g, indices, exp_avg_change))
    old_exp_avg_sq = exp_avg_sq.sparse_mask(g)._values()
    exp_avg_sq_change = values.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2)
    exp_avg_sq.add_(_sparse(g, indices, exp_avg_sq_change))

    # the new moments of the rows, rebuilt from old + change rather than read back
    numer = exp_avg_change.add_(old_exp_avg)
    exp_avg_sq_change.add_(old_exp_avg_sq)
    denom = exp_avg_sq_change.sqrt_().add_(eps)
    del exp_avg_change, exp_avg_sq_change

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr * math.sqrt(bias_correction2) / bias_correction1
    param.add_(_sparse(g, indices, -step_size * numer.div_(denom)))


def sparse_adam_init(param: torch.Tensor) -> dict:
    """State of SparseAdam for one (dense) tensor, as torch creates it: ``step`` 0 and dense zero
    moments on the parameter's device and dtype; only the rows a gradient touches change."""
    if check_tensor("param", param).is_sparse:
        raise ValueError("SparseAdam requires a dense parameter tensor, got a sparse one")
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)
    return {"step": 0, "exp_avg": zeros(), "exp_avg_sq": zeros()}


def sparse_adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                     maximize=False):
    r"""One SparseAdam update of one dense tensor with a sparse gradient; returns
    ``(new_param, new_state)`` and changes nothing.

    ``grad`` is a sparse COO tensor (the gradient of ``nn.Embedding(..., sparse=True)``, say);
    let :math:`S` be the set of its stored indices (the touched rows, duplicates summed). With
    gradient :math:`g` (negated if ``maximize``), step :math:`t` (after increment), learning rate
    :math:`\eta`, decay rates :math:`\beta_1, \beta_2`, on the rows in :math:`S` only:

    .. math::
        m_S &\leftarrow \beta_1 m_S + (1-\beta_1) g_S, \qquad
        v_S \leftarrow \beta_2 v_S + (1-\beta_2) g_S^2 \\
        \theta_S &\leftarrow \theta_S
            - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m_S}{\sqrt{v_S} + \epsilon}

    Rows outside :math:`S` keep their parameters and their moments: a row's averages decay only
    on the steps that use it, while :math:`t` counts every step (so the bias corrections are
    those of the whole run, as in torch). :math:`\epsilon` sits outside the uncorrected root,
    :math:`\sqrt{v}`, so it acts as :math:`\epsilon/\sqrt{1-\beta_2^t}` next to
    :math:`\sqrt{\hat v}`. There is no weight decay: it would touch every row.

    Equivalent torch call: ``torch.optim.SparseAdam([p], lr=lr, betas=betas, eps=eps,
    maximize=maximize).step()``. State keys are torch's: ``step`` (a Python int, as in torch),
    ``exp_avg``, ``exp_avg_sq`` (dense). Explained in: book/optimizers.md.

    Example::

        >>> p = torch.zeros(3, 2)
        >>> g = torch.sparse_coo_tensor([[1]], [[0.5, -0.5]], (3, 2))
        >>> p, s = sparse_adam_step(p, g, sparse_adam_init(p), lr=0.1)
        >>> p
        tensor([[ 0.0000,  0.0000],
                [-0.1000,  0.1000],
                [ 0.0000,  0.0000]])
    """
    _check_sparse_adam(lr, betas, eps)
    if isinstance(grad, torch.Tensor) and not grad.is_sparse:
        raise RuntimeError(_DENSE_GRAD)
    check_state(state, ("step", "exp_avg", "exp_avg_sq"), "sparse_adam_init(param)")
    return pure_step(_sparse_adam_, param, grad, state, dict(
        lr=_to_scalar(lr), beta1=betas[0], beta2=betas[1], eps=eps, maximize=maximize))


class SparseAdam(RuleOptimizer):
    """SparseAdam; a drop-in for ``torch.optim.SparseAdam`` whose rule is
    :func:`sparse_adam_step`. Every gradient must be sparse (``nn.Embedding(sparse=True)``);
    parameters must be dense and real.

    Example::

        >>> emb = torch.nn.Embedding(4, 2, sparse=True)
        >>> opt = SparseAdam(emb.parameters(), lr=0.1)
        >>> before = emb.weight.detach().clone()
        >>> emb(torch.tensor([2])).sum().backward(); opt.step()
        >>> (emb.weight.detach() != before).any(dim=1).tolist()
        [False, False, True, False]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        _check_sparse_adam(lr, betas, eps)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))
        sparse, complex_ = [], []
        for i, group in enumerate(self.param_groups):
            for j, p in enumerate(group["params"]):
                if p.is_sparse:
                    sparse.append([i, j])
                if p.is_complex():
                    complex_.append([i, j])
        if sparse:
            raise ValueError(
                f"Sparse params at indices {sparse}: SparseAdam requires dense parameter tensors")
        if complex_:
            raise ValueError(f"Complex params at indices {complex_}: SparseAdam does not "
                             f"support complex parameters")

    group_defaults = dict(maximize=False)

    def _init_state(self, param, group):
        return sparse_adam_init(param)

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        _sparse_adam_(param, grad, state, lr=_to_scalar(group["lr"]), beta1=beta1, beta2=beta2,
                      eps=group["eps"], maximize=group["maximize"])

    @torch.no_grad()
    def step(self, closure=None):
        """Update the touched rows of every parameter that has a (sparse) gradient.

        ``closure`` re-evaluates the model and returns the loss, as in ``torch.optim``. A dense
        gradient raises before anything changes.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            live = [p for p in group["params"] if p.grad is not None]
            if any(not p.grad.is_sparse for p in live):
                raise RuntimeError(_DENSE_GRAD)
            for p in live:
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p, group))
                self._update(p, p.grad, state, group)
        return loss
