r"""Muon (Jordan et al., 2024): momentum whose update matrix is orthogonalised by a Newton–Schulz
iteration, for the 2-D weights of hidden layers, in PyTorch's form (``torch.optim.Muon``).

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import math

import torch
from torch.optim.optimizer import _to_scalar

from .._checks import check_choice, check_int, check_number, check_tensor
from ._base import (
    RuleOptimizer,
    check_lr,
    check_state,
    check_step_inputs,
    check_weight_decay,
    pure_step,
)

__all__ = ["Muon", "muon_init", "muon_step", "newton_schulz"]

#: torch's (and Keller Jordan's) quintic coefficients, steps and normalising epsilon
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
EPS = 1e-7
_ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def _check_ns(ns_coefficients, ns_steps, eps):
    if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3:
        raise ValueError(
            f"Invalid ns_coefficients: {ns_coefficients!r} (expected three numbers (a, b, c))")
    for i, coefficient in enumerate(ns_coefficients):
        check_number(f"ns_coefficients[{i}] value", coefficient)
    ns_steps = check_int("ns_steps", ns_steps, low=0)
    if ns_steps >= 100:
        raise ValueError(f"Invalid ns_steps: {ns_steps} (must be < 100, as in torch)")
    check_number("epsilon value", eps, low=0.0)


def _check_muon(lr, weight_decay, momentum, ns_coefficients, eps, ns_steps, adjust_lr_fn):
    check_lr(lr)
    check_weight_decay(weight_decay)
    check_number("momentum value", momentum, low=0.0)
    _check_ns(ns_coefficients, ns_steps, eps)
    if adjust_lr_fn not in _ADJUST_LR_FNS:
        check_choice("adjust_lr_fn", adjust_lr_fn, {"original", "match_rms_adamw"})


def _check_2d(name, tensor):
    """Muon's restriction to matrices (anything that is not a tensor is left to the caller's own
    checks)."""
    if isinstance(tensor, torch.Tensor) and tensor.dim() != 2:
        raise ValueError(f"Muon only supports 2-D parameters; {name} has shape "
                         f"{tuple(tensor.shape)} (use AdamW or SGD for biases, embeddings and "
                         f"other tensors)")


def _newton_schulz(matrix, ns_coefficients, ns_steps, eps):
    """torch's ``_zeropower_via_newtonschulz``, operation for operation, without validation.

    One deliberate difference: torch's ``grad.bfloat16()`` returns the input itself when it is
    already bfloat16, so torch normalises a bfloat16 momentum buffer in place (with
    ``nesterov=False``); this copy never writes into its input (the fix proposed in
    pytorch/pytorch#194664)."""
    a, b, c = ns_coefficients
    x = matrix.bfloat16()
    if x is matrix:
        x = matrix.clone()
    tall = matrix.size(0) > matrix.size(1)
    if tall:
        x = x.T                                            # iterate on the wide orientation
    x.div_(x.norm().clamp(min=eps))                        # ‖X‖_F ≤ 1 bounds the spectral norm
    for _ in range(ns_steps):
        gram = x @ x.T                                     # A = X Xᵀ
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # b A + c A²
        x = torch.addmm(x, poly, x, beta=a)                # X ← a X + (b A + c A²) X
    return x.T if tall else x


def newton_schulz(matrix, *, ns_coefficients=NS_COEFFICIENTS, ns_steps=NS_STEPS, eps=EPS):
    r"""The Newton–Schulz orthogonalisation of a 2-D tensor that Muon applies to its update.

    With coefficients :math:`(c_1, c_2, c_3)` (``ns_coefficients``), in bfloat16:

    .. math::
        X_0 = \frac{G}{\max(\lVert G\rVert_F, \epsilon)}, \qquad
        X_{k+1} = c_1 X_k + \big(c_2 A_k + c_3 A_k^2\big) X_k, \quad A_k = X_k X_k^\top

    (on :math:`G^\top` when :math:`G` has more rows than columns, transposed back at the end).
    Each step pushes every singular value of :math:`X` towards 1 while keeping the singular
    vectors, so after ``ns_steps`` steps :math:`X \approx U S' V^\top` with :math:`S'` near the
    identity, where :math:`G = U S V^\top`. torch's default coefficients trade exact
    convergence for speed: the singular values end roughly in :math:`[0.7, 1.2]`.

    Equivalent torch call: ``torch.optim._muon._zeropower_via_newtonschulz(matrix,
    ns_coefficients, ns_steps, eps)`` (private). Returns a new bfloat16 tensor; the input is
    never modified. Explained in: book/optimizers.md.

    Example::

        >>> s = torch.linalg.svdvals(newton_schulz(torch.diag(torch.tensor([3.0, 0.5]))).float())
        >>> bool((s > 0.6).all() and (s < 1.3).all())
        True
    """
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"expected matrix to be a torch.Tensor, got {type(matrix).__name__}")
    if matrix.dim() != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(matrix.shape)}")
    _check_ns(ns_coefficients, ns_steps, eps)
    return _newton_schulz(matrix, ns_coefficients, ns_steps, eps)


def _adjusted_lr(lr, adjust_lr_fn, shape):
    """torch's ``_adjust_lr``: scale η so that updates of rectangular matrices have a comparable
    size."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))             # Keller Jordan's √max(1, m/n)
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))           # Moonshot's 0.2·√max(m, n)
    else:
        ratio = 1.0
    return lr * ratio


def _muon_(param, grad, state, *, lr, weight_decay, momentum, nesterov, ns_coefficients, eps,
           ns_steps, adjust_lr_fn):
    """In-place Muon kernel: the math of :func:`muon_step`, in the operation order of torch's
    Muon (so trajectories agree bit for bit)."""
    buf = state["momentum_buffer"]
    buf.lerp_(grad, 1 - momentum)                          # b ← μ b + (1−μ) g
    update = grad.lerp(buf, momentum) if nesterov else buf  # (1−μ) g + μ b  or  b
    update = _newton_schulz(update, ns_coefficients, ns_steps, eps)
    adjusted_lr = _adjusted_lr(lr, adjust_lr_fn, param.shape)
    param.mul_(1 - lr * weight_decay)                      # θ ← (1 − ηλ)θ
    param.add_(update, alpha=-adjusted_lr)                 # θ ← θ − η' O


def muon_init(param: torch.Tensor) -> dict:
    """State of Muon for one 2-D tensor, as torch creates it: a zero ``momentum_buffer`` on the
    parameter's device and dtype (Muon keeps no step count)."""
    check_tensor("param", param)
    _check_2d("param", param)
    return {"momentum_buffer": torch.zeros_like(param, memory_format=torch.preserve_format)}


def muon_step(param, grad, state, *, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
              ns_coefficients=NS_COEFFICIENTS, eps=EPS, ns_steps=NS_STEPS, adjust_lr_fn=None):
    r"""One Muon update of one 2-D tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g`, learning rate :math:`\eta`, momentum :math:`\mu`, weight decay
    :math:`\lambda` and a matrix of shape :math:`m \times n`:

    .. math::
        b &\leftarrow \mu\, b + (1-\mu)\, g \\
        u &= (1-\mu)\, g + \mu\, b \quad(\text{nesterov; otherwise } u = b) \\
        O &= \operatorname{NS}(u) \quad(\text{see } \texttt{newton\_schulz}) \\
        \theta &\leftarrow (1-\eta\lambda)\,\theta - \eta'\, O, \qquad
        \eta' = \eta\sqrt{\max(1, m/n)}
        \quad(\texttt{"match\_rms\_adamw"}: \eta' = 0.2\,\eta\sqrt{\max(m, n)})

    The momentum is an average, not a sum (torch's code; its docstring writes
    :math:`b \leftarrow \mu b + g`, which differs only by the factor :math:`1-\mu` that the
    orthogonalisation removes anyway). The orthogonalised update has all singular values near 1,
    so every direction of the matrix moves by a similar amount however unequal the gradient's
    singular values are. The iteration runs in bfloat16, as torch's does.

    Equivalent torch call: ``torch.optim.Muon([p], lr=lr, weight_decay=weight_decay,
    momentum=momentum, nesterov=nesterov, ns_coefficients=ns_coefficients, eps=eps,
    ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn).step()``. State key is torch's:
    ``momentum_buffer``. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.zeros(2, 2), torch.eye(2)
        >>> p, s = muon_step(p, g, muon_init(p), lr=0.1)
        >>> bool(torch.allclose(p, -0.1 * torch.eye(2), atol=0.03))
        True
    """
    _check_muon(lr, weight_decay, momentum, ns_coefficients, eps, ns_steps, adjust_lr_fn)
    check_step_inputs(param, grad, state)
    _check_2d("param", param)
    check_state(state, ("momentum_buffer",), "muon_init(param)")
    return pure_step(_muon_, param, grad, state, dict(
        lr=_to_scalar(lr), weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
        ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
        adjust_lr_fn=adjust_lr_fn))


class Muon(RuleOptimizer):
    """Muon; a drop-in for ``torch.optim.Muon`` whose rule is :func:`muon_step`.

    Every parameter must be 2-D, as in torch (checked also for groups added later). Train
    biases, embeddings and the output layer with another optimizer, such as
    :class:`~nnbolts.optim.AdamW`. Trajectories equal torch's bit for bit, with one deliberate
    exception: torch 2.13 normalises a bfloat16 parameter's momentum buffer in place when
    ``nesterov=False`` (pytorch/pytorch#194664); nnbolts keeps the buffer an average.

    Example::

        >>> w = torch.nn.Parameter(torch.zeros(2, 2))
        >>> opt = Muon([w], lr=0.1, weight_decay=0.0)
        >>> w.grad = torch.eye(2); opt.step()
        >>> bool(torch.allclose(w.detach(), -0.1 * torch.eye(2), atol=0.03))
        True
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=NS_COEFFICIENTS, eps=EPS, ns_steps=NS_STEPS, adjust_lr_fn=None):
        _check_muon(lr, weight_decay, momentum, ns_coefficients, eps, ns_steps, adjust_lr_fn)
        super().__init__(params, dict(
            lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
            ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn))

    def add_param_group(self, param_group: dict) -> None:
        """Add a group, as ``torch.optim.Optimizer`` does, refusing tensors that are not 2-D."""
        super().add_param_group(param_group)
        try:
            for i, p in enumerate(self.param_groups[-1]["params"]):
                _check_2d(f"parameter {i} of group {len(self.param_groups) - 1}", p)
        except ValueError:
            self.param_groups.pop()
            raise

    def _init_state(self, param, group):
        if torch.is_complex(param):
            raise RuntimeError("Muon does not support complex parameters")
        return muon_init(param)

    def _update(self, param, grad, state, group):
        _muon_(param, grad, state, lr=group["lr"], weight_decay=group["weight_decay"],
               momentum=group["momentum"], nesterov=group["nesterov"],
               ns_coefficients=group["ns_coefficients"], eps=group["eps"],
               ns_steps=group["ns_steps"], adjust_lr_fn=group["adjust_lr_fn"])
