r"""Adam and AdamW: bias-corrected moving averages of the gradient and of its square.

One kernel serves both rules: AdamW is Adam whose weight decay shrinks the parameter directly
instead of being added to the gradient (so it never enters the moving averages).

Where ϵ sits. PyTorch, the Adam paper and the Deep Learning book (algorithm 8.7) divide by
:math:`\sqrt{\hat v} + \epsilon`; a variant common in tutorials puts ϵ inside the root, as
RMSProp's algorithm 8.5 and AdaDelta do: :math:`\sqrt{\hat v + \epsilon}`. The default here
is PyTorch's; ``eps_inside_sqrt=True`` gives the variant. With the usual
:math:`\epsilon = 10^{-8}` the two agree to better than 1 % while the gradient's root mean square
stays above about :math:`10^{-3}`: outside the root ϵ is a floor of :math:`10^{-8}` on the
denominator, inside it the floor is :math:`\sqrt{\epsilon} = 10^{-4}`. Below that, the inside
form turns into plain momentum SGD with learning rate :math:`\eta/\sqrt\epsilon` (steps shrink
with the gradient), while torch's form keeps steps of size about :math:`\eta` however small the
gradient (sign-like). The relative gap is about :math:`\epsilon / (2\hat v)` inside versus
:math:`\epsilon/\sqrt{\hat v}` outside.

Explained in: book/optimizers.md.
"""

from __future__ import annotations

import torch

from ._base import (
    RuleOptimizer,
    check_betas,
    check_eps,
    check_lr,
    check_state,
    check_weight_decay,
    pure_step,
)

__all__ = [
    "Adam", "adam_init", "adam_step",
    "AdamW", "adamw_init", "adamw_step",
]


def _check_adam(lr, betas, eps, weight_decay, foreach=None):
    # torch's order, so that the first complaint is the same one torch would make; torch's
    # multi-tensor Adam refuses a tensor lr (without capturable, which nnbolts does not offer)
    check_lr(lr, foreach=foreach, foreach_takes_tensor=False)
    check_eps(eps)
    check_betas(betas)
    check_weight_decay(weight_decay)


def _check_adam_state(state, amsgrad, init_name):
    """The pure step's state must be one that ``*_init`` made (with the same ``amsgrad``)."""
    keys = ["step", "exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
    hint = f"{init_name}(param, amsgrad=True)" if amsgrad else f"{init_name}(param)"
    check_state(state, keys, hint)


# --------------------------------------------------------------------------------------------
# the kernels
# --------------------------------------------------------------------------------------------

def _adam_(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
           decoupled, eps_inside_sqrt):
    """In-place Adam/AdamW kernel: the math of :func:`adam_step`.

    The operations and their order are those of torch's single-tensor Adam, so that float64
    trajectories agree bit for bit; only temporaries are reused where torch allocates anew.
    """
    step = state["step"] = state["step"] + 1
    g = grad.neg() if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param.mul_(1 - lr * weight_decay)              # θ ← (1 − ηλ)θ   (AdamW)
        elif maximize:
            g.add_(param, alpha=weight_decay)              # g ← g + λθ (g is already a copy)
        else:
            g = grad.add(param, alpha=weight_decay)        # g ← g + λθ      (L2 penalty)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(g, 1 - beta1)                            # m ← β₁m + (1−β₁)g
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v ← β₂v + (1−β₂)g²
    # Bias corrections from the Python step, in Python floats: no device round trip.
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    second = exp_avg_sq
    if amsgrad:
        second = state["max_exp_avg_sq"]
        torch.maximum(second, exp_avg_sq, out=second)      # v_max ← max(v_max, v)
    if eps_inside_sqrt:
        denom = torch.div(second, bias_correction2).add_(eps).sqrt_()      # √(v̂ + ϵ)
    else:
        # √v / √(1−β₂ᵗ) + ϵ, divided in this order because torch does
        denom = torch.sqrt(second).div_(bias_correction2 ** 0.5).add_(eps)  # √v̂ + ϵ
    param.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))  # θ ← θ − η m̂ / denom


def _adam_many_(params, grads, states, *, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                decoupled, eps_inside_sqrt):
    """Multi-tensor Adam/AdamW: the rule of :func:`_adam_` with one ``torch._foreach_*`` call per
    operation over the whole list. ``states`` are the per-parameter state dicts, updated in place.

    Gradients are never modified: a negated or decayed gradient is a new list of tensors.
    On CUDA each call is one fused launch when all tensors share a device and dtype (the class
    groups them so); elsewhere it loops over the same per-tensor operations as :func:`_adam_`.
    """
    exp_avgs = [s["exp_avg"] for s in states]
    exp_avg_sqs = [s["exp_avg_sq"] for s in states]
    steps = []
    for s in states:
        s["step"] += 1
        steps.append(s["step"])

    g = torch._foreach_neg(grads) if maximize else grads
    if weight_decay != 0:
        if decoupled:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        elif maximize:
            torch._foreach_add_(g, params, alpha=weight_decay)
        else:
            g = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, g, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, g, g, 1 - beta2)
    del g  # free a copied gradient list before allocating the denominators

    second = exp_avg_sqs
    if amsgrad:
        second = [s["max_exp_avg_sq"] for s in states]
        torch._foreach_maximum_(second, exp_avg_sqs)

    # Parameters of one group normally share their step count: then one set of Python scalars
    # serves every tensor (and avoids the scalar-list overloads, which copy lists to the device).
    if steps.count(steps[0]) == len(steps):
        t = steps[0]
        bc2 = 1 - beta2 ** t
        bc2_root = bc2 ** 0.5
        step_size = -(lr / (1 - beta1 ** t))
    else:
        bc2 = [1 - beta2 ** t for t in steps]
        bc2_root = [b ** 0.5 for b in bc2]
        step_size = [-(lr / (1 - beta1 ** t)) for t in steps]

    if eps_inside_sqrt:
        denom = torch._foreach_div(second, bc2)
        torch._foreach_add_(denom, eps)
        torch._foreach_sqrt_(denom)
    else:
        denom = torch._foreach_sqrt(second)
        torch._foreach_div_(denom, bc2_root)
        torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)


# --------------------------------------------------------------------------------------------
# the pure pairs
# --------------------------------------------------------------------------------------------

def adam_init(param: torch.Tensor, *, amsgrad: bool = False) -> dict:
    """State of Adam for one tensor, as torch creates it: ``step`` 0 and zero moments
    (plus ``max_exp_avg_sq`` with ``amsgrad``), on the parameter's device and dtype."""
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)
    state = {"step": 0, "exp_avg": zeros(), "exp_avg_sq": zeros()}
    if amsgrad:
        state["max_exp_avg_sq"] = zeros()
    return state


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
              amsgrad=False, maximize=False, decoupled_weight_decay=False,
              eps_inside_sqrt=False):
    r"""One Adam update of one tensor; returns ``(new_param, new_state)`` and changes nothing.

    With gradient :math:`g` (negated if ``maximize``), step count :math:`t` (after increment),
    learning rate :math:`\eta`, decay rates :math:`\beta_1, \beta_2`, weight decay
    :math:`\lambda`:

    .. math::
        g &\leftarrow g + \lambda\theta
            \quad(\text{or } \theta \leftarrow (1-\eta\lambda)\theta
            \text{ if decoupled\_weight\_decay}) \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \hat m &= m / (1-\beta_1^t), \qquad
        \hat v = v / (1-\beta_2^t)
            \quad(\text{with amsgrad: } v_{\max} \leftarrow \max(v_{\max}, v),\
            \hat v = v_{\max}/(1-\beta_2^t)) \\
        \theta &\leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)
            \quad(\text{or } \eta\, \hat m / \sqrt{\hat v + \epsilon}
            \text{ if eps\_inside\_sqrt})

    Equivalent torch call: ``torch.optim.Adam([p], lr=lr, betas=betas, eps=eps,
    weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
    decoupled_weight_decay=decoupled_weight_decay).step()`` (torch has no ``eps_inside_sqrt``).
    State keys are torch's: ``step`` (a Python int here), ``exp_avg``, ``exp_avg_sq``,
    ``max_exp_avg_sq`` (amsgrad only). Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = adam_step(p, g, adam_init(p), lr=0.1)
        >>> p, s["step"], s["exp_avg"]
        (tensor([0.9000]), 1, tensor([0.0500]))
    """
    _check_adam(lr, betas, eps, weight_decay)
    _check_adam_state(state, amsgrad, "adam_init")
    return pure_step(_adam_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, maximize=maximize, decoupled=decoupled_weight_decay,
        eps_inside_sqrt=eps_inside_sqrt))


def adamw_init(param: torch.Tensor, *, amsgrad: bool = False) -> dict:
    """State of AdamW for one tensor: the same as :func:`adam_init`."""
    return adam_init(param, amsgrad=amsgrad)


def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False, maximize=False, eps_inside_sqrt=False):
    r"""One AdamW update of one tensor (Loshchilov & Hutter's decoupled weight decay); returns
    ``(new_param, new_state)`` and changes nothing.

    The parameter shrinks before the Adam update, and the decay never enters the moments:

    .. math::
        \theta &\leftarrow (1-\eta\lambda)\,\theta \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \theta &\leftarrow \theta - \eta\, \frac{m/(1-\beta_1^t)}
            {\sqrt{v/(1-\beta_2^t)} + \epsilon}

    With L2 weight decay (:func:`adam_step`) the penalty's gradient :math:`\lambda\theta` is
    divided by :math:`\sqrt{\hat v}` like the rest, so weights with large gradients are barely
    decayed; decoupled, every weight shrinks by the same factor. ``amsgrad``, ``maximize`` and
    ``eps_inside_sqrt`` act as in :func:`adam_step`.

    Equivalent torch call: ``torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps,
    weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize).step()``.
    Explained in: book/optimizers.md.

    Example::

        >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
        >>> p, s = adamw_step(p, g, adamw_init(p), lr=0.1, weight_decay=0.1)
        >>> p
        tensor([0.8900])
    """
    _check_adam(lr, betas, eps, weight_decay)
    _check_adam_state(state, amsgrad, "adamw_init")
    return pure_step(_adam_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, maximize=maximize, decoupled=True, eps_inside_sqrt=eps_inside_sqrt))


# --------------------------------------------------------------------------------------------
# the optimizers
# --------------------------------------------------------------------------------------------

def _by_device_and_dtype(params):
    """Index lists of ``params`` sharing a device and dtype (one list in the usual case)."""
    first = params[0]
    device, dtype = first.device, first.dtype
    if all(p.dtype == dtype and p.device == device for p in params):
        return None
    groups: dict = {}
    for i, p in enumerate(params):
        groups.setdefault((p.device, p.dtype), []).append(i)
    return list(groups.values())


class Adam(RuleOptimizer):
    """Adam; a drop-in for ``torch.optim.Adam`` whose rule is :func:`adam_step`.

    ``foreach=None`` picks the multi-tensor path where torch picks its own (CUDA);
    ``True``/``False`` force it. ``eps_inside_sqrt=True`` puts ϵ inside the root (a common
    variant; no torch equivalent). ``capturable``, ``differentiable`` and ``fused`` are not offered.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = Adam([w], lr=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """

    has_foreach = True
    foreach_takes_tensor_lr = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, decoupled_weight_decay=False,
                 eps_inside_sqrt=False):
        _check_adam(lr, betas, eps, weight_decay, foreach)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, decoupled_weight_decay=decoupled_weight_decay,
            eps_inside_sqrt=eps_inside_sqrt))

    # torch.optim.Adam saves no textbook switch (eps_inside_sqrt); older torch saves less
    group_defaults = dict(amsgrad=False, maximize=False, foreach=None, decoupled_weight_decay=False,
                          eps_inside_sqrt=False)

    @staticmethod
    def _hp(group):
        beta1, beta2 = group["betas"]
        return dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
                    maximize=group["maximize"], decoupled=group["decoupled_weight_decay"],
                    eps_inside_sqrt=group["eps_inside_sqrt"])

    def _init_state(self, param, group):
        return adam_init(param, amsgrad=group["amsgrad"])

    def _update(self, param, grad, state, group):
        _adam_(param, grad, state, **self._hp(group))

    def _update_many(self, params, grads, states, group):
        hp = self._hp(group)
        split = _by_device_and_dtype(params)
        if split is None:
            _adam_many_(params, grads, states, **hp)
            return
        for idx in split:
            _adam_many_([params[i] for i in idx], [grads[i] for i in idx],
                        [states[i] for i in idx], **hp)


class AdamW(Adam):
    """AdamW (Adam with decoupled weight decay); a drop-in for ``torch.optim.AdamW`` whose rule is
    :func:`adamw_step`. Options as in :class:`Adam`; the weight decay defaults to 0.01.

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = AdamW([w], lr=0.1, weight_decay=0.1)
        >>> (w ** 2).sum().backward(); opt.step()
        >>> w.detach()
        tensor([0.8900, 0.8900, 0.8900])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, eps_inside_sqrt=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, decoupled_weight_decay=True,
                         eps_inside_sqrt=eps_inside_sqrt)

    def __setstate__(self, state):
        super().__setstate__(state)
        # whatever was saved (an Adam state dict, say), AdamW decays decoupled, as torch's does
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
