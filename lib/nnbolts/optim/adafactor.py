r"""Adafactor (Shazeer & Stern, 2018): Adam-like scaling whose second moment of a matrix is stored
as one row vector and one column vector, in PyTorch's form (``torch.optim.Adafactor``).

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import _to_scalar

from .._checks import check_floating, check_like, check_number, check_tensor
from ._base import RuleOptimizer, check_lr, check_state, check_weight_decay, copy_state

__all__ = ["Adafactor", "adafactor_init", "adafactor_step"]


def _item(t: torch.Tensor) -> float:
    """A 0-d tensor's value as a Python float, as torch's Adafactor reads it (one device
    synchronisation). A meta tensor has no value: 1.0 stands in, so that a step on ``meta``
    still produces every state tensor with the right shape, dtype and device."""
    return 1.0 if t.device.type == "meta" else t.item()


def _check_adafactor(lr, beta2_decay, eps, d, weight_decay):
    check_lr(lr)
    check_number("beta2_decay value", beta2_decay, high=0.0)
    if not isinstance(eps, (tuple, list)) or len(eps) != 2:
        raise ValueError(f"Invalid eps: {eps!r} (expected a pair (eps1 or None, eps2))")
    if eps[0] is not None:
        check_number("eps[0] (epsilon1) value", eps[0], low=0.0)
    check_number("eps[1] (epsilon2) value", eps[1], low=0.0)
    check_number("clipping threshold d", d, low=1.0)
    check_weight_decay(weight_decay)


def _factored_shapes(param: torch.Tensor):
    """Shapes of the row and column factors of a tensor with two or more dimensions."""
    row_shape, col_shape = list(param.shape), list(param.shape)
    row_shape[-1] = 1
    col_shape[-2] = 1
    return row_shape, col_shape


def _adafactor_(param, grad, state, *, lr, beta2_decay, eps1, eps2, d, weight_decay, maximize):
    """In-place Adafactor kernel: the math of :func:`adafactor_step`, with the operations, their
    order and their Python-float scalars of torch's single-tensor Adafactor (so trajectories agree
    bit for bit). Like torch's, it reads two norms to the host per tensor."""
    g = grad.neg() if maximize else grad
    if eps1 is None:
        eps1 = torch.finfo(param.dtype).eps
    step = state["step"] = state["step"] + 1
    step_float = float(step)

    one_minus_beta2_t = step_float ** beta2_decay               # 1 − β̂₂,t = t^c
    rho_t = min(lr, 1 / (step_float ** 0.5))                    # relative step min(η, 1/√t)
    # the step is relative to the parameter's RMS, never below eps2
    scale = max(eps2, _item(param.norm(2)) / (param.numel() ** 0.5)) * rho_t

    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)                       # θ ← (1 − ηλ)θ

    if g.dim() > 1:
        row_var, col_var = state["row_var"], state["col_var"]
        # mean of g² over the last dimension (rows) and over the one before (columns)
        row_mean = torch.norm(g, dim=-1, keepdim=True).square_().div_(g.size(-1))
        row_var.lerp_(row_mean, one_minus_beta2_t)
        col_mean = torch.norm(g, dim=-2, keepdim=True).square_().div_(g.size(-2))
        col_var.lerp_(col_mean, one_minus_beta2_t)
        # the rank-one estimate v̂ = r cᵀ / mean(r)
        var_estimate = row_var @ col_var
        var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
    else:
        variance = state["variance"]
        variance.lerp_(g * g, one_minus_beta2_t)
        var_estimate = variance.clone()

    update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_()      # 1 / max(√v̂, eps1)
    update.mul_(g)                                              # u = g / max(√v̂, eps1)
    # clip: divide by max(1, RMS(u)/d)
    denom = max(1.0, _item(update.norm(2)) / ((update.numel() ** 0.5) * d))
    param.add_(update, alpha=-scale / denom)


def adafactor_init(param: torch.Tensor) -> dict:
    """State of Adafactor for one tensor, as torch creates it: ``step`` 0 and, for a tensor with
    two or more dimensions, zero row and column factors ``row_var`` (last dimension reduced to 1)
    and ``col_var`` (second-to-last reduced to 1); for a vector or scalar, a zero ``variance`` of
    its shape. All on the parameter's device and dtype."""
    check_tensor("param", param)
    if param.dim() > 1:
        row_shape, col_shape = _factored_shapes(param)
        return {"step": 0, "row_var": param.new_zeros(row_shape),
                "col_var": param.new_zeros(col_shape)}
    return {"step": 0, "variance": torch.zeros_like(param, memory_format=torch.preserve_format)}


def _check_adafactor_step_inputs(param, grad, state):
    check_floating("param", param)
    check_like("grad", grad, "param", param)
    if not isinstance(state, dict):
        raise TypeError(f"expected state to be a dict, got {type(state).__name__}")
    if param.dim() > 1:
        keys = ("step", "row_var", "col_var")
        row_shape, col_shape = _factored_shapes(param)
        shapes = {"row_var": row_shape, "col_var": col_shape}
    else:
        keys = ("step", "variance")
        shapes = {"variance": list(param.shape)}
    check_state(state, keys, "adafactor_init(param)")
    for key, shape in shapes.items():
        value = check_tensor(f"state[{key!r}]", state[key])
        if list(value.shape) != shape:
            raise ValueError(f"state[{key!r}] has shape {tuple(value.shape)} but a param of shape "
                             f"{tuple(param.shape)} needs {tuple(shape)}")
        if value.device != param.device:
            raise ValueError(f"state[{key!r}] is on {value.device} but param is on {param.device}")
        if value.dtype != param.dtype:
            raise TypeError(
                f"state[{key!r}] has dtype {value.dtype} but param has dtype {param.dtype}")


def adafactor_step(param, grad, state, *, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                   weight_decay=0.0, maximize=False):
    r"""One Adafactor update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), step :math:`t` (after increment), learning
    rate :math:`\eta`, the pair :math:`(\epsilon_1, \epsilon_2)` (``eps``; :math:`\epsilon_1`
    defaults to the dtype's machine epsilon), clipping threshold :math:`d` and weight decay
    :math:`\lambda`:

    .. math::
        \hat\beta_{2,t} &= 1 - t^{\,\mathtt{beta2\_decay}} \quad(1 - t^{-0.8}), \qquad
        \eta_t = \max\big(\epsilon_2, \operatorname{RMS}(\theta)\big)\,\min(\eta, 1/\sqrt t) \\
        \theta &\leftarrow (1-\eta\lambda)\,\theta \\
        r_i &\leftarrow \hat\beta_{2,t}\, r_i
            + (1-\hat\beta_{2,t})\,\operatorname{mean}_j g_{ij}^2, \qquad
        c_j \leftarrow \hat\beta_{2,t}\, c_j
            + (1-\hat\beta_{2,t})\,\operatorname{mean}_i g_{ij}^2 \\
        \hat v_{ij} &= \frac{r_i\, c_j}{\max(\operatorname{mean}_i r_i,\ \epsilon_1)}
        \quad(\text{a vector keeps the full } v \leftarrow \hat\beta_{2,t} v
            + (1-\hat\beta_{2,t}) g^2,\ \hat v = v) \\
        u &= \frac{g}{\max(\sqrt{\hat v}, \epsilon_1)}, \qquad
        \theta \leftarrow \theta - \frac{\eta_t}{\max\big(1, \operatorname{RMS}(u)/d\big)}\, u

    For a tensor of two or more dimensions the second moment is factored over its last two
    dimensions (:math:`i` indexes the second-to-last, :math:`j` the last): ``row_var`` holds
    :math:`r` and ``col_var`` holds :math:`c`, so an :math:`n\times k` matrix stores
    :math:`n + k` numbers instead of :math:`nk`. :math:`\operatorname{RMS}(x)` is
    :math:`\lVert x\rVert_2/\sqrt{\text{numel}}`. The decay rate :math:`\hat\beta_{2,t}` grows
    towards 1 (it is 0 at the first step, so no bias correction is needed), and the effective rate
    :math:`\eta_t` is relative to the parameter's own scale: :math:`\eta` only caps it (and
    scales the decoupled decay).

    Equivalent torch call: ``torch.optim.Adafactor([p], lr=lr, beta2_decay=beta2_decay, eps=eps,
    d=d, weight_decay=weight_decay, maximize=maximize).step()``. State keys are torch's: ``step``
    (a Python int here), then ``row_var`` and ``col_var``, or ``variance``. Like torch's, each step
    reads two norms back to the host. Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.5])
        >>> p, s = adafactor_step(p, g, adafactor_init(p), lr=0.1)
        >>> p, s["step"]
        (tensor([ 0.9000, -1.1000]), 1)
    """
    _check_adafactor(lr, beta2_decay, eps, d, weight_decay)
    _check_adafactor_step_inputs(param, grad, state)
    new_param = param.detach().clone()
    new_state = copy_state(state)
    with torch.no_grad():
        _adafactor_(new_param, grad.detach(), new_state, lr=_to_scalar(lr), beta2_decay=beta2_decay,
                    eps1=eps[0], eps2=eps[1], d=d, weight_decay=weight_decay, maximize=maximize)
    return new_param, new_state


class Adafactor(RuleOptimizer):
    """Adafactor; a drop-in for ``torch.optim.Adafactor`` whose rule is :func:`adafactor_step`.

    ``foreach`` is accepted for compatibility and ignored: this rule has only the one-tensor
    path (torch too defaults to it, to save memory).

    Example::

        >>> w = torch.nn.Parameter(torch.ones(2, 3))
        >>> opt = Adafactor([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([[0.9000, 0.9000, 0.9000],
                [0.9000, 0.9000, 0.9000]])
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        _check_adafactor(lr, beta2_decay, eps, d, weight_decay)
        super().__init__(params, dict(
            lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d, weight_decay=weight_decay,
            foreach=foreach, maximize=maximize))

    group_defaults = dict(foreach=None, maximize=False)

    def _init_state(self, param, group):
        if torch.is_complex(param):
            raise RuntimeError("Adafactor does not support complex parameters")
        return adafactor_init(param)

    def _update(self, param, grad, state, group):
        eps1, eps2 = group["eps"]
        _adafactor_(param, grad, state, lr=group["lr"], beta2_decay=group["beta2_decay"],
                    eps1=eps1, eps2=eps2, d=group["d"], weight_decay=group["weight_decay"],
                    maximize=group["maximize"])
