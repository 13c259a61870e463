"""Known mistakes: deliberately wrong variants of the references, and the hint for each.

When a student's output disagrees with the reference but equals one of these variants (within
the same tolerance), the failure message adds "This looks like: <mistake> (hint: ...)". Hints
name the idea that is off, in the book's words; they do not give code.

Variants here are the grader's own implementations: written out in plain torch, or as the
reference called with a different option where nnbolts has that option.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

import nnbolts.activations as A
import nnbolts.init as I
import nnbolts.optim as O


@dataclass(frozen=True)
class Mistake:
    """A named wrong variant of a reference.

    ``fn`` has the reference's call signature (for an optimizer rule it is an ``(init, step)``
    pair; for a schedule it is a factory that takes the reference schedule's hyperparameters as
    keywords and returns the wrong schedule); ``applies(*args, **kwargs)``, if given, says
    whether the variant differs from the reference for these arguments at all (a forgotten
    weight decay cannot be seen without one).

    Example hidden-test cell: ``check_elementwise(relu, nnbolts.activations.relu, mistakes=[
    Mistake("returned z unchanged", "negative inputs must become 0", lambda z: z.clone())])``
    """

    name: str
    hint: str
    fn: Callable | tuple
    applies: Callable[..., bool] | None = None


_CATALOGUE: dict[int, tuple[object, list[Mistake]]] = {}


def known_mistakes(reference) -> list[Mistake]:
    """The known mistakes for ``reference`` (an nnbolts function, or a rule name such as
    ``"adam"``); empty if none are catalogued.

    Example hidden-test cell: ``[m.name for m in known_mistakes(nnbolts.activations.relu_grad)]``
    """
    if not _CATALOGUE:
        _build()
    key = reference if isinstance(reference, str) else id(reference)
    entry = _CATALOGUE.get(key)
    return list(entry[1]) if entry else []


def add_known_mistake(reference, mistake: Mistake) -> None:
    """Register ``mistake`` for ``reference`` (an nnbolts function or a rule name), so every
    later check against that reference recognises it. For exercise authors.

    Example (a locked setup cell): ``add_known_mistake(nnbolts.activations.elu, Mistake(...))``
    """
    if not _CATALOGUE:
        _build()
    key = reference if isinstance(reference, str) else id(reference)
    _CATALOGUE.setdefault(key, (reference, []))[1].append(mistake)


def _add(reference, *mistakes: Mistake) -> None:
    key = reference if isinstance(reference, str) else id(reference)
    _CATALOGUE.setdefault(key, (reference, []))[1].extend(mistakes)


# --------------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------------

def _naive_tanh(z):
    e, f = torch.exp(z), torch.exp(-z)
    return (e - f) / (e + f)


def _softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def _naive_softmax(z, dim=-1):
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)


def _other_dim(z, dim, which):
    """Whether normalising along ``which`` differs from along ``dim`` for this ``z``."""
    return z.dim() > 1 and (dim % z.dim()) != (which % z.dim())


def _activations() -> None:
    sig = torch.sigmoid
    _add(A.sigmoid, Mistake(
        "the sign in the exponential is flipped, giving σ(−z)",
        "σ(z) = 1 / (1 + e^(−z)) increases with z", lambda z: sig(-z)))
    _add(A.sigmoid_grad,
         Mistake("sigmoid_grad returns σ(z) itself instead of its derivative",
                 "differentiate σ and express the result through σ(z)", lambda z: sig(z)),
         Mistake("the derivative's formula is applied to z instead of to σ(z)",
                 "the factors of the derivative are built from the activation σ(z), not from "
                 "the input z", lambda z: z * (1 - z)),
         Mistake("σ(z)·(1 − z) mixes the activation and the input",
                 "both factors are built from σ(z)", lambda z: sig(z) * (1 - z)),
         Mistake("1 − σ(z)² is the rule for tanh, not for sigmoid",
                 "sigmoid's derivative is a product of σ(z) with another factor",
                 lambda z: 1 - sig(z) ** 2))
    _add(A.tanh, Mistake(
        "exp overflows for large |z| and inf / inf gives nan",
        "rewrite tanh so that only exp of a non-positive number is computed (e.g. through "
        "exp(−2|z|)) and put the sign back afterwards", _naive_tanh))
    _add(A.tanh_grad,
         Mistake("tanh_grad computes 1 − z², the formula applied to z instead of to tanh(z)",
                 "the derivative is written with the activation tanh(z), not the input z",
                 lambda z: 1 - z * z),
         Mistake("1 − tanh(z): the square is missing", "look again at the power of tanh(z) in "
                 "the derivative", lambda z: 1 - torch.tanh(z)),
         Mistake("tanh_grad returns tanh(z) itself", "return the derivative, not the activation",
                 torch.tanh),
         Mistake("exp overflows for large |z| and inf / inf gives nan",
                 "compute tanh (or the derivative) from exp of a non-positive number only",
                 lambda z: 1 - _naive_tanh(z) ** 2))
    _add(A.relu, Mistake("relu returns its derivative (a 0/1 mask) instead of max(z, 0)",
                         "relu passes positive inputs through unchanged",
                         lambda z: (z > 0).to(z.dtype)))
    _add(A.relu_grad,
         Mistake("relu_grad is 1 at z = 0",
                 "relu has no derivative at 0; the course, like torch, uses 0 there: the "
                 "derivative is 1 only where z > 0", lambda z: (z >= 0).to(z.dtype)),
         Mistake("relu_grad returns relu(z) instead of its derivative",
                 "the derivative is 0 or 1", lambda z: torch.relu(z)))
    _add(A.leaky_relu, Mistake(
        "negative inputs give 0, as in plain relu", "for z < 0 leaky relu returns "
        "negative_slope · z", lambda z, negative_slope=0.01: torch.relu(z),
        applies=lambda z, negative_slope=0.01: negative_slope != 0))
    _add(A.leaky_relu_grad,
         Mistake("leaky_relu_grad is 1 at z = 0",
                 "like torch, the course uses negative_slope at z = 0: the derivative is 1 only "
                 "where z > 0", lambda z, negative_slope=0.01: torch.where(
                     z >= 0, torch.ones_like(z), torch.full_like(z, negative_slope))),
         Mistake("leaky_relu_grad is 0 for negative z (relu's derivative)",
                 "for z < 0 the slope is negative_slope, not 0",
                 lambda z, negative_slope=0.01: (z > 0).to(z.dtype),
                 applies=lambda z, negative_slope=0.01: negative_slope != 0))
    _add(A.elu, Mistake(
        "α is missing on the negative side", "for z ≤ 0 elu is α·(e^z − 1)",
        lambda z, alpha=1.0: torch.where(z > 0, z, torch.expm1(z.clamp(max=0))),
        applies=lambda z, alpha=1.0: alpha != 1))
    _add(A.elu_grad,
         Mistake("elu_grad forgets α: exp(z) instead of α·exp(z)",
                 "the negative branch of elu is scaled by α, and so is its derivative",
                 lambda z, alpha=1.0: torch.where(z > 0, 1.0, torch.exp(z.clamp(max=0))),
                 applies=lambda z, alpha=1.0: alpha != 1),
         Mistake("elu_grad returns elu(z) on the negative side",
                 "differentiate α(e^z − 1): the −1 disappears",
                 lambda z, alpha=1.0: torch.where(z > 0, 1.0, alpha * torch.expm1(
                     z.clamp(max=0)))),
         Mistake("elu_grad is 1 at z = 0",
                 "like torch, the course uses the negative branch at z = 0 (value α)",
                 lambda z, alpha=1.0: torch.where(z >= 0, 1.0, alpha * torch.exp(
                     z.clamp(max=0))), applies=lambda z, alpha=1.0: alpha != 1))
    _add(A.silu, Mistake("silu returns σ(z) without the factor z", "silu(z) = z · σ(z)",
                         lambda z: sig(z)))
    _add(A.silu_grad,
         Mistake("silu_grad returns σ(z): the product rule is incomplete",
                 "silu(z) = z·σ(z) is a product; the product rule gives two terms",
                 lambda z: sig(z)),
         Mistake("silu_grad returns σ(z)(1 − σ(z)), which is sigmoid's derivative",
                 "silu(z) = z·σ(z): apply the product rule", lambda z: sig(z) * (1 - sig(z))),
         Mistake("silu_grad keeps only one term of the product rule (z·σ'(z))",
                 "the product rule gives two terms; one is missing",
                 lambda z: z * sig(z) * (1 - sig(z))))
    _add(A.softmax,
         Mistake("softmax without the max shift: exp overflows for large inputs",
                 "softmax is unchanged when the same constant is subtracted from every score "
                 "along dim; subtract the maximum before exponentiating", _naive_softmax),
         Mistake("softmax ignores dim and always normalises along the last dimension",
                 "sum along the dim argument, keeping that dimension so the division "
                 "broadcasts", lambda z, dim=-1: _softmax(z, -1),
                 applies=lambda z, dim=-1: _other_dim(z, dim, -1)),
         Mistake("softmax ignores dim and always normalises along the first dimension",
                 "sum along the dim argument, keeping that dimension so the division "
                 "broadcasts", lambda z, dim=-1: _softmax(z, 0),
                 applies=lambda z, dim=-1: _other_dim(z, dim, 0)),
         Mistake("softmax normalises over all elements instead of along dim",
                 "each slice along dim must sum to 1",
                 lambda z, dim=-1: torch.exp(z - z.max()) / torch.exp(z - z.max()).sum()))
    _add(A.log_softmax,
         Mistake("log_softmax computed as log(softmax(z)): it underflows to −inf",
                 "write log_softmax(z) as z minus the log-sum-exp of z (with the max shift), "
                 "without forming the softmax", lambda z, dim=-1: torch.log(_softmax(z, dim))),
         Mistake("log_softmax without the max shift: exp overflows for large inputs",
                 "subtract the maximum along dim before exponentiating, and add it back",
                 lambda z, dim=-1: z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))),
         Mistake("log_softmax ignores dim and always works along the last dimension",
                 "reduce along the dim argument",
                 lambda z, dim=-1: torch.log_softmax(z, -1),
                 applies=lambda z, dim=-1: _other_dim(z, dim, -1)))

    def _s(z, dim):
        return _softmax(z, dim)

    _add(A.softmax_grad,
         Mistake("softmax_grad uses only the diagonal of the Jacobian, s(1 − s)·g",
                 "every output of softmax depends on every input along dim, so the "
                 "vector-Jacobian product needs a sum over dim",
                 lambda z, g, dim=-1: _s(z, dim) * (1 - _s(z, dim)) * g),
         Mistake("softmax_grad sums grad_output instead of grad_output · s",
                 "the subtracted term is the s-weighted sum of grad_output along dim",
                 lambda z, g, dim=-1: _s(z, dim) * (g - g.sum(dim=dim, keepdim=True))),
         Mistake("softmax_grad uses log_softmax's rule",
                 "log_softmax and softmax have different Jacobians",
                 lambda z, g, dim=-1: g - _s(z, dim) * g.sum(dim=dim, keepdim=True)))
    _add(A.log_softmax_grad,
         Mistake("log_softmax_grad returns g − s: the sum of grad_output is missing",
                 "the subtracted term is s times the sum of grad_output along dim (it is just "
                 "s only when grad_output sums to 1)", lambda z, g, dim=-1: g - _s(z, dim)),
         Mistake("log_softmax_grad uses softmax's rule",
                 "log_softmax and softmax have different Jacobians",
                 lambda z, g, dim=-1: _s(z, dim) * (g - (g * _s(z, dim)).sum(
                     dim=dim, keepdim=True))))


# --------------------------------------------------------------------------------------------
# initializers
# --------------------------------------------------------------------------------------------

def _fans(t):
    return I.fan_in_and_fan_out(t)


def _bare_fans(t):
    """Fans without the receptive field of a convolution kernel."""
    return t.shape[1], t.shape[0]


def _uniform(bound):
    def fill(tensor, *args, generator=None, **kwargs):
        b = bound(tensor, *args, **kwargs)
        with torch.no_grad():
            return tensor.uniform_(-b, b, generator=generator)
    return fill


def _normal(std):
    def fill(tensor, *args, generator=None, **kwargs):
        s = std(tensor, *args, **kwargs)
        with torch.no_grad():
            return tensor.normal_(0.0, s, generator=generator)
    return fill


def _is_conv(tensor, *args, **kwargs) -> bool:
    return tensor.dim() > 2


def _gain_not_one(tensor, gain=1.0, **kwargs) -> bool:
    return gain != 1


def _kaiming_gain(a=0, nonlinearity="leaky_relu"):
    return I.calculate_gain(nonlinearity, a)


def _kaiming_fan(tensor, mode="fan_in", fans=_fans):
    fan_in, fan_out = fans(tensor)
    return fan_in if mode.lower() == "fan_in" else fan_out


def _other_mode(mode):
    return "fan_out" if mode.lower() == "fan_in" else "fan_in"


def _initializers() -> None:
    def xavier_std(t, gain=1.0, fans=_fans, **_):
        fan_in, fan_out = fans(t)
        return gain * math.sqrt(2.0 / (fan_in + fan_out))

    fan_in_only = "Glorot's rule averages fan_in and fan_out"
    _add(I.xavier_uniform_,
         Mistake("the bound uses fan_in only", fan_in_only,
                 _uniform(lambda t, gain=1.0: gain * math.sqrt(3.0 / _fans(t)[0]))),
         Mistake("the bound uses fan_out only", fan_in_only,
                 _uniform(lambda t, gain=1.0: gain * math.sqrt(3.0 / _fans(t)[1]))),
         Mistake("the bound is the standard deviation (the √3 is missing)",
                 "a uniform distribution on [−b, b] has standard deviation b/√3",
                 _uniform(lambda t, gain=1.0: xavier_std(t, gain))),
         Mistake("the gain is forgotten", "the bound is multiplied by gain (4 for the course's "
                 "sigmoid rule)", _uniform(lambda t, gain=1.0: math.sqrt(3.0) * xavier_std(t)),
                 applies=_gain_not_one),
         Mistake("the fans ignore the kernel's receptive field",
                 "for a convolution weight both fans are multiplied by the kernel size",
                 _uniform(lambda t, gain=1.0: math.sqrt(3.0) * xavier_std(t, gain, _bare_fans)),
                 applies=_is_conv),
         Mistake("normal draws instead of uniform ones",
                 "this initializer draws from a uniform distribution",
                 _normal(lambda t, gain=1.0: xavier_std(t, gain))))
    _add(I.xavier_normal_,
         Mistake("the standard deviation uses fan_in only", fan_in_only,
                 _normal(lambda t, gain=1.0: gain * math.sqrt(1.0 / _fans(t)[0]))),
         Mistake("the standard deviation uses fan_out only", fan_in_only,
                 _normal(lambda t, gain=1.0: gain * math.sqrt(1.0 / _fans(t)[1]))),
         Mistake("the uniform bound is used as the standard deviation",
                 "the normal version's standard deviation is the uniform bound divided by √3",
                 _normal(lambda t, gain=1.0: math.sqrt(3.0) * xavier_std(t, gain))),
         Mistake("the variance is used as the standard deviation (a square root is missing)",
                 "Glorot's rule gives the variance 2 / (fan_in + fan_out)",
                 _normal(lambda t, gain=1.0: gain * 2.0 / sum(_fans(t)))),
         Mistake("the gain is forgotten", "the standard deviation is multiplied by gain",
                 _normal(lambda t, gain=1.0: xavier_std(t)), applies=_gain_not_one),
         Mistake("the fans ignore the kernel's receptive field",
                 "for a convolution weight both fans are multiplied by the kernel size",
                 _normal(lambda t, gain=1.0: xavier_std(t, gain, _bare_fans)),
                 applies=_is_conv),
         Mistake("uniform draws instead of normal ones",
                 "this initializer draws from a normal distribution",
                 _uniform(lambda t, gain=1.0: math.sqrt(3.0) * xavier_std(t, gain))))

    def he_std(t, a=0, mode="fan_in", nonlinearity="leaky_relu", fans=_fans):
        return _kaiming_gain(a, nonlinearity) / math.sqrt(_kaiming_fan(t, mode, fans))

    def leaky_with_slope(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
        return nonlinearity == "leaky_relu" and a != 0

    def gain_not_one(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
        return _kaiming_gain(a, nonlinearity) != 1

    for reference, draw, scale in ((I.kaiming_uniform_, _uniform, math.sqrt(3.0)),
                                   (I.kaiming_normal_, _normal, 1.0)):
        mistakes = [
            Mistake("fan_out is used where the mode asks for fan_in (or the reverse)",
                    "mode='fan_in' (the default) keeps the forward signal's variance and divides "
                    "by fan_in", draw(lambda t, a=0, mode="fan_in", nonlinearity="leaky_relu",
                                      _s=scale: _s * he_std(t, a, _other_mode(mode),
                                                            nonlinearity))),
            Mistake("the gain is forgotten (gain 1)",
                    "He's rule multiplies by the activation's gain, √2 for relu",
                    draw(lambda t, a=0, mode="fan_in", nonlinearity="leaky_relu", _s=scale:
                         _s / math.sqrt(_kaiming_fan(t, mode))), applies=gain_not_one),
            Mistake("the negative slope a is ignored in the gain",
                    "for leaky_relu the gain is √(2 / (1 + a²))",
                    draw(lambda t, a=0, mode="fan_in", nonlinearity="leaky_relu", _s=scale:
                         _s * math.sqrt(2.0) / math.sqrt(_kaiming_fan(t, mode))),
                    applies=leaky_with_slope),
            Mistake("Glorot's fan average is used instead of a single fan",
                    "He's rule divides by one fan, chosen by mode",
                    draw(lambda t, a=0, mode="fan_in", nonlinearity="leaky_relu", _s=scale:
                         _s * _kaiming_gain(a, nonlinearity) * math.sqrt(2.0 / sum(_fans(t))))),
            Mistake("the fans ignore the kernel's receptive field",
                    "for a convolution weight the fan is multiplied by the kernel size",
                    draw(lambda t, a=0, mode="fan_in", nonlinearity="leaky_relu", _s=scale:
                         _s * he_std(t, a, mode, nonlinearity, _bare_fans)), applies=_is_conv),
        ]
        if draw is _uniform:
            mistakes += [
                Mistake("the bound is the standard deviation (the √3 is missing)",
                        "a uniform distribution on [−b, b] has standard deviation b/√3",
                        _uniform(he_std)),
                Mistake("normal draws instead of uniform ones",
                        "this initializer draws from a uniform distribution", _normal(he_std))]
        else:
            mistakes += [
                Mistake("the variance is used as the standard deviation (a square root is "
                        "missing)", "He's rule gives the variance gain² / fan",
                        _normal(lambda t, a=0, mode="fan_in", nonlinearity="leaky_relu":
                                he_std(t, a, mode, nonlinearity) ** 2)),
                Mistake("uniform draws instead of normal ones",
                        "this initializer draws from a normal distribution",
                        _uniform(lambda t, a=0, mode="fan_in", nonlinearity="leaky_relu":
                                 math.sqrt(3.0) * he_std(t, a, mode, nonlinearity)))]
        _add(reference, *mistakes)

    lecun = [
        (I.lecun_uniform_, _uniform, math.sqrt(3.0)), (I.lecun_normal_, _normal, 1.0)]
    for reference, draw, scale in lecun:
        mistakes = [
            Mistake("fan_out is used instead of fan_in", "LeCun's rule divides by fan_in",
                    draw(lambda t, _s=scale: _s / math.sqrt(_fans(t)[1]))),
            Mistake("He's gain √2 is used", "LeCun's rule has gain 1 (variance 1 / fan_in)",
                    draw(lambda t, _s=scale: _s * math.sqrt(2.0 / _fans(t)[0]))),
            Mistake("the fans ignore the kernel's receptive field",
                    "for a convolution weight fan_in is multiplied by the kernel size",
                    draw(lambda t, _s=scale: _s / math.sqrt(_bare_fans(t)[0])),
                    applies=_is_conv)]
        if draw is _uniform:
            mistakes.append(Mistake(
                "the bound is the standard deviation (the √3 is missing)",
                "a uniform distribution on [−b, b] has standard deviation b/√3",
                _uniform(lambda t: 1.0 / math.sqrt(_fans(t)[0]))))
        else:
            mistakes.append(Mistake(
                "uniform draws instead of normal ones",
                "this initializer draws from a normal distribution",
                _uniform(lambda t: math.sqrt(3.0 / _fans(t)[0]))))
        _add(reference, *mistakes)

    _add(I.fan_in_and_fan_out,
         Mistake("fan_in and fan_out are swapped",
                 "a linear weight has shape (out_features, in_features): fan_in is the size of "
                 "dimension 1", lambda t: tuple(reversed(I.fan_in_and_fan_out(t)))),
         Mistake("the kernel's receptive field is ignored",
                 "for a convolution weight both fans are multiplied by the kernel size",
                 lambda t: (t.shape[1], t.shape[0]), applies=_is_conv))


# --------------------------------------------------------------------------------------------
# optimizer rules: (init, step) pairs
# --------------------------------------------------------------------------------------------

def _zeros_state(*keys):
    def init(param, **_):
        state = {"step": 0}
        for key in keys:
            state[key] = torch.zeros_like(param)
        return state
    return init


def _adam_init(param, *, amsgrad=False, **_):
    state = {"step": 0, "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
    if amsgrad:
        state["max_exp_avg_sq"] = torch.zeros_like(param)
    return state


def _adam_variant(decoupled_default: bool, default_wd: float, *, bias=True, shift=0,
                  eps_inside=False, ascent=False, wd_mode="as_asked", ams="ok", swap=False,
                  late_maximize=False):
    """Adam/AdamW written out plainly, with one mistake switched on."""
    def step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
             weight_decay=default_wd, amsgrad=False, maximize=False,
             decoupled_weight_decay=decoupled_default, eps_inside_sqrt=False, **_):
        beta1, beta2 = (betas[1], betas[0]) if swap else betas
        t = state["step"] + 1
        g = -grad if maximize and not late_maximize else grad
        p = param.clone()
        mode = wd_mode
        if mode == "as_asked":
            mode = "decoupled" if decoupled_weight_decay else "l2"
        if weight_decay:
            if mode == "l2":
                g = g + weight_decay * param
            elif mode == "decoupled":
                p = p * (1 - lr * weight_decay)
            elif mode == "decoupled_no_lr":
                p = p * (1 - weight_decay)
        if maximize and late_maximize:
            g = -g
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        new = {"step": t, "exp_avg": m, "exp_avg_sq": v}
        tb = t + shift
        bc1 = 1 - beta1 ** tb if bias else 1.0
        bc2 = 1 - beta2 ** tb if bias else 1.0
        v_hat = v / bc2
        if amsgrad:
            old = state["max_exp_avg_sq"]
            if ams == "ok":
                new["max_exp_avg_sq"] = torch.maximum(old, v)
                v_hat = new["max_exp_avg_sq"] / bc2
            elif ams == "vhat":
                new["max_exp_avg_sq"] = torch.maximum(old, v / bc2)
                v_hat = new["max_exp_avg_sq"]
            elif ams == "g2":
                new["max_exp_avg_sq"] = torch.maximum(old, g * g)
                v_hat = new["max_exp_avg_sq"] / bc2
            else:  # kept but unused
                new["max_exp_avg_sq"] = torch.maximum(old, v)
        inside = eps_inside != eps_inside_sqrt
        denom = torch.sqrt(v_hat + eps) if inside else torch.sqrt(v_hat) + eps
        update = lr * (m / bc1) / denom
        return (p + update if ascent else p - update), new
    return _adam_init, step


def _hp(kwargs, key, default):
    return kwargs.get(key, default)


def _adam_family(rule: str) -> list[Mistake]:
    decoupled = rule == "adamw"
    default_wd = 1e-2 if decoupled else 0.0

    def V(**flags):
        return _adam_variant(decoupled, default_wd, **flags)

    def wd(**kw):
        return _hp(kw, "weight_decay", default_wd) != 0

    def ams(**kw):
        return bool(kw.get("amsgrad"))

    def is_decoupled(**kw):
        return wd(**kw) and (decoupled or kw.get("decoupled_weight_decay", False))

    def is_l2(**kw):
        return wd(**kw) and not is_decoupled(**kw)

    step_hint = ("state['step'] counts completed updates: increment it first, then use the new "
                 "value t (1 at the first update) in both bias corrections")
    return [
        Mistake("no bias correction", "m and v start at 0, so their early averages are too "
                "small; divide them by (1 − β₁ᵗ) and (1 − β₂ᵗ)", V(bias=False)),
        Mistake("ε inside the square root", "the course's (and PyTorch's) form adds ε after "
                "the square root: √v̂ + ε", V(eps_inside=True)),
        Mistake("wrong sign (gradient ascent)", "the update moves the parameter against the "
                "gradient", V(ascent=True)),
        Mistake("off-by-one step count (bias correction with t + 1)", step_hint, V(shift=1)),
        Mistake("off-by-one step count (bias correction with t − 1, the count before this "
                "update)", step_hint, V(shift=-1)),
        Mistake("β₁ and β₂ swapped", "betas = (β₁, β₂): β₁ averages the gradient, β₂ its square",
                V(swap=True), applies=lambda *a, **kw: len(set(_hp(kw, "betas", (0, 1)))) > 1),
        Mistake("weight decay forgotten", "weight_decay adds λθ to the gradient (Adam) or "
                "shrinks θ by (1 − γλ) (AdamW)", V(wd_mode="none"),
                applies=lambda *a, **kw: wd(**kw)),
        Mistake("L2 penalty instead of decoupled weight decay", "AdamW shrinks the parameter "
                "directly, θ ← (1 − γλ)θ; the decay must not go through the moving averages",
                V(wd_mode="l2"), applies=lambda *a, **kw: is_decoupled(**kw)),
        Mistake("decoupled weight decay instead of an L2 penalty", "Adam's weight_decay adds "
                "λθ to the gradient before the moving averages", V(wd_mode="decoupled"),
                applies=lambda *a, **kw: is_l2(**kw)),
        Mistake("decoupled decay without the learning rate, θ ← (1 − λ)θ", "the shrink factor "
                "is 1 − γλ", V(wd_mode="decoupled_no_lr"),
                applies=lambda *a, **kw: is_decoupled(**kw)),
        Mistake("AMSGrad maximum taken over the bias-corrected v̂", "keep the maximum of the "
                "raw second moments v and bias-correct it afterwards", V(ams="vhat"),
                applies=lambda *a, **kw: ams(**kw)),
        Mistake("AMSGrad maximum taken with g² instead of v", "AMSGrad keeps the running "
                "maximum of the second-moment average v", V(ams="g2"),
                applies=lambda *a, **kw: ams(**kw)),
        Mistake("AMSGrad maximum kept but not used", "with amsgrad the denominator uses the "
                "maximum, not the current v", V(ams="unused"),
                applies=lambda *a, **kw: ams(**kw)),
        Mistake(*_LATE_MAXIMIZE, V(late_maximize=True),
                applies=lambda *a, **kw: bool(kw.get("maximize")) and is_l2(**kw)),
    ]


def _sgd_variant(*, zero_start=False, ema=False, ascent=False, no_wd=False,
                 nesterov_missing=False, wd_after=False, late_maximize=False):
    def init(param, **_):
        return {}

    def step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, **_):
        g = -grad if maximize and not late_maximize else grad
        if weight_decay and not no_wd and not wd_after:
            g = g + weight_decay * param
        if maximize and late_maximize:
            g = -g
        new, d = {}, g
        if momentum:
            buf = state.get("momentum_buffer")
            damp = momentum if ema else dampening
            if buf is None and (zero_start or ema):
                buf = torch.zeros_like(param)
            buf = g.clone() if buf is None else momentum * buf + (1 - damp) * g
            new["momentum_buffer"] = buf
            d = g + momentum * buf if nesterov and not nesterov_missing else buf
        if wd_after and weight_decay:
            d = d + weight_decay * param
        return (param + lr * d if ascent else param - lr * d), new
    return init, step


_LATE_MAXIMIZE = ("maximize negates the gradient after the weight decay is added",
                  "negate the gradient first and then add λθ: maximising f is minimising −f, "
                  "and the decay still pulls θ toward 0")


def _both(*keys):
    return lambda *a, **kw: all(bool(kw.get(k)) for k in keys)


def _sgd() -> list[Mistake]:
    def has(key):
        return lambda *a, **kw: bool(kw.get(key))

    return [
        Mistake("wrong sign (gradient ascent)", "the update moves the parameter against the "
                "gradient", _sgd_variant(ascent=True)),
        Mistake("momentum buffer started at zero instead of the first gradient",
                "PyTorch starts the buffer as a copy of the first gradient, with no dampening "
                "at the first step", _sgd_variant(zero_start=True),
                applies=lambda *a, **kw: bool(kw.get("momentum")) and bool(kw.get("dampening"))),
        Mistake("momentum as a moving average, b ← μb + (1 − μ)g",
                "torch's buffer is b ← μb + (1 − τ)g with τ = dampening (0 by default), started "
                "at the first gradient", _sgd_variant(ema=True), applies=has("momentum")),
        Mistake("weight decay forgotten", "weight_decay adds λθ to the gradient first",
                _sgd_variant(no_wd=True), applies=has("weight_decay")),
        Mistake("weight decay added after the momentum", "the decay term λθ is added to the "
                "gradient before it enters the momentum buffer", _sgd_variant(wd_after=True),
                applies=lambda *a, **kw: bool(kw.get("weight_decay")) and bool(
                    kw.get("momentum"))),
        Mistake("Nesterov look-ahead missing", "with nesterov=True the step uses g + μb "
                "rather than b", _sgd_variant(nesterov_missing=True), applies=has("nesterov")),
        Mistake(*_LATE_MAXIMIZE, _sgd_variant(late_maximize=True),
                applies=_both("maximize", "weight_decay")),
    ]


def _sgd_velocity() -> list[Mistake]:
    def variant(ascent=False, nesterov_missing=False):
        def init(param, **_):
            return {"velocity": torch.zeros_like(param)}

        def step(param, grad, state, *, lr=1e-2, momentum=0.9, nesterov=False, **_):
            sign = -1 if ascent else 1
            v = momentum * state["velocity"] - sign * lr * grad
            if nesterov and not nesterov_missing:
                p = param + momentum * v - sign * lr * grad
            else:
                p = param + v
            return p, {"velocity": v}
        return init, step

    return [
        Mistake("wrong sign (gradient ascent)", "the velocity accumulates −εg",
                variant(ascent=True)),
        Mistake("Nesterov look-ahead missing", "with nesterov=True the stored parameter is the "
                "look-ahead point, which moves by αv − εg", variant(nesterov_missing=True),
                applies=lambda *a, **kw: bool(kw.get("nesterov"))),
    ]


def _adagrad() -> list[Mistake]:
    def variant(eps_inside=False, no_accum=False, decay_shift=0, ascent=False, no_wd=False,
                no_sqrt=False):
        def init(param, *, initial_accumulator_value=0.0, **_):
            return {"step": 0, "sum": torch.full_like(param, initial_accumulator_value)}

        def step(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                 maximize=False, **_):
            t = state["step"] + 1
            g = -grad if maximize else grad
            if weight_decay and not no_wd:
                g = g + weight_decay * param
            clr = lr / (1 + (t - 1 + decay_shift) * lr_decay)
            s = g * g if no_accum else state["sum"] + g * g
            if no_sqrt:
                denom = s + eps
            else:
                denom = torch.sqrt(s + eps) if eps_inside else torch.sqrt(s) + eps
            update = clr * g / denom
            return (param + update if ascent else param - update), {"step": t, "sum": s}
        return init, step

    return [
        Mistake("ε inside the square root", "torch's AdaGrad (and the course's) adds ε after "
                "the square root: √s + ε", variant(eps_inside=True)),
        Mistake("squared gradients are not accumulated (only the last one is used)",
                "AdaGrad's s is the running *sum* of all squared gradients",
                variant(no_accum=True)),
        Mistake("square root missing in the denominator", "divide by √s + ε, not s + ε",
                variant(no_sqrt=True)),
        Mistake("learning-rate decay off by one, γ / (1 + t·η)", "the first update uses the "
                "full rate: γ_t = γ / (1 + (t − 1)η)", variant(decay_shift=1),
                applies=lambda *a, **kw: bool(kw.get("lr_decay"))),
        Mistake("wrong sign (gradient ascent)", "the update moves the parameter against the "
                "gradient", variant(ascent=True)),
        Mistake("weight decay forgotten", "weight_decay adds λθ to the gradient first",
                variant(no_wd=True), applies=lambda *a, **kw: bool(kw.get("weight_decay"))),
    ]


def _rmsprop() -> list[Mistake]:
    def variant(eps_inside=False, plain_sum=False, swapped=False, ascent=False, no_wd=False,
                no_sqrt=False, not_centered=False, momentum_first=False):
        def init(param, *, momentum=0.0, centered=False, **_):
            state = {"step": 0, "square_avg": torch.zeros_like(param)}
            if momentum > 0:
                state["momentum_buffer"] = torch.zeros_like(param)
            if centered:
                state["grad_avg"] = torch.zeros_like(param)
            return state

        def step(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, maximize=False, eps_inside_sqrt=False, **_):
            g = -grad if maximize else grad
            if weight_decay and not no_wd:
                g = g + weight_decay * param
            new = {"step": state["step"] + 1}
            if plain_sum:
                r = alpha * state["square_avg"] + g * g
            elif swapped:
                r = (1 - alpha) * state["square_avg"] + alpha * g * g
            else:
                r = alpha * state["square_avg"] + (1 - alpha) * g * g
            new["square_avg"] = r
            s = r
            if centered:
                m = alpha * state["grad_avg"] + (1 - alpha) * g
                new["grad_avg"] = m
                if not not_centered:
                    s = r - m * m
            inside = eps_inside != eps_inside_sqrt
            if no_sqrt:
                d = s + eps
            else:
                d = torch.sqrt(s + eps) if inside else torch.sqrt(s) + eps
            if momentum > 0:
                if momentum_first:
                    b = momentum * state["momentum_buffer"] + g
                    new["momentum_buffer"] = b
                    update = lr * b / d
                else:
                    b = momentum * state["momentum_buffer"] + g / d
                    new["momentum_buffer"] = b
                    update = lr * b
            else:
                update = lr * g / d
            return (param + update if ascent else param - update), new
        return init, step

    plain = lambda *a, **kw: not kw.get("nesterov")  # noqa: E731
    return [
        Mistake("ε inside the square root", "torch's form (the course's default) adds ε after "
                "the square root: √r + ε", variant(eps_inside=True), applies=plain),
        Mistake("the average of squared gradients is not weighted: r ← αr + g²",
                "a leaky average weights the new square by (1 − α)", variant(plain_sum=True),
                applies=plain),
        Mistake("α and 1 − α swapped in the average", "alpha (ρ in the book) is the weight of "
                "the old average, close to 1", variant(swapped=True), applies=plain),
        Mistake("square root missing in the denominator", "divide by √r + ε, not r + ε",
                variant(no_sqrt=True), applies=plain),
        Mistake("wrong sign (gradient ascent)", "the update moves the parameter against the "
                "gradient", variant(ascent=True), applies=plain),
        Mistake("weight decay forgotten", "weight_decay adds λθ to the gradient first",
                variant(no_wd=True),
                applies=lambda *a, **kw: plain(**kw) and bool(kw.get("weight_decay"))),
        Mistake("centered RMSProp without subtracting the squared mean gradient",
                "centered=True divides by the root of r − m², an estimate of the variance",
                variant(not_centered=True),
                applies=lambda *a, **kw: plain(**kw) and bool(kw.get("centered"))),
        Mistake("momentum accumulates the raw gradient, divided only at the end",
                "torch's buffer accumulates the already divided step g / d",
                variant(momentum_first=True),
                applies=lambda *a, **kw: plain(**kw) and bool(kw.get("momentum"))),
    ]


def _adadelta() -> list[Mistake]:
    def variant(no_eps_numerator=False, eps_outside=False, ascent=False, no_wd=False,
                no_lr=False):
        def step(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                 maximize=False, **_):
            g = -grad if maximize else grad
            if weight_decay and not no_wd:
                g = g + weight_decay * param
            r = rho * state["square_avg"] + (1 - rho) * g * g
            u = state["acc_delta"]
            if eps_outside:
                delta = (torch.sqrt(u) + eps) / (torch.sqrt(r) + eps) * g
            elif no_eps_numerator:
                delta = torch.sqrt(u) / torch.sqrt(r + eps) * g
            else:
                delta = torch.sqrt(u + eps) / torch.sqrt(r + eps) * g
            u = rho * u + (1 - rho) * delta * delta
            rate = 1.0 if no_lr else lr
            p = param + rate * delta if ascent else param - rate * delta
            return p, {"step": state["step"] + 1, "square_avg": r, "acc_delta": u}
        return _zeros_state("square_avg", "acc_delta"), step

    return [
        Mistake("ε missing from the numerator's root", "u starts at 0, so without ε in "
                "√(u + ε) the very first step is zero and nothing ever moves",
                variant(no_eps_numerator=True)),
        Mistake("ε outside the roots", "Adadelta adds ε inside both roots: √(u + ε) / √(r + ε)",
                variant(eps_outside=True)),
        Mistake("wrong sign (gradient ascent)", "the update moves the parameter against the "
                "gradient", variant(ascent=True)),
        Mistake("weight decay forgotten", "weight_decay adds λθ to the gradient first",
                variant(no_wd=True), applies=lambda *a, **kw: bool(kw.get("weight_decay"))),
        Mistake("the learning rate is ignored", "torch's Adadelta scales the step by lr "
                "(1.0 by default)", variant(no_lr=True),
                applies=lambda *a, **kw: kw.get("lr", 1.0) != 1.0),
    ]


def _nadam() -> list[Mistake]:
    def variant(ascent=False, mu_now=False, no_v_bias=False, wd_mode="as_asked"):
        def init(param, **_):
            return {"step": 0, "mu_product": 1.0, "exp_avg": torch.zeros_like(param),
                    "exp_avg_sq": torch.zeros_like(param)}

        def step(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                 maximize=False, **_):
            beta1, beta2 = betas
            t = state["step"] + 1
            g = -grad if maximize else grad
            p = param.clone()
            mode = wd_mode if wd_mode != "as_asked" else (
                "decoupled" if decoupled_weight_decay else "l2")
            if weight_decay:
                if mode == "l2":
                    g = g + weight_decay * param
                elif mode == "decoupled":
                    p = p * (1 - lr * weight_decay)
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
            if mu_now:
                mu_next = mu
            prod = state["mu_product"] * mu
            m = beta1 * state["exp_avg"] + (1 - beta1) * g
            v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
            v_hat = v if no_v_bias else v / (1 - beta2 ** t)
            denom = torch.sqrt(v_hat) + eps
            update = (lr * (1 - mu) / (1 - prod)) * g / denom + (
                lr * mu_next / (1 - prod * mu_next)) * m / denom
            p = p + update if ascent else p - update
            return p, {"step": t, "mu_product": prod, "exp_avg": m, "exp_avg_sq": v}
        return init, step

    return [
        Mistake("wrong sign (gradient ascent)", "the update moves the parameter against the "
                "gradient", variant(ascent=True)),
        Mistake("the look-ahead uses μ_t instead of μ_{t+1}", "Nesterov's look-ahead applies "
                "next step's momentum coefficient to m", variant(mu_now=True)),
        Mistake("no bias correction of v", "v starts at 0: divide it by (1 − β₂ᵗ) before the "
                "root", variant(no_v_bias=True)),
        Mistake("weight decay forgotten", "weight_decay adds λθ to the gradient first",
                variant(wd_mode="none"),
                applies=lambda *a, **kw: bool(kw.get("weight_decay"))),
    ]


def _rmsprop_nesterov() -> list[Mistake]:
    def variant(eps_outside=False, old_r=False, ascent=False, no_one_minus=False,
                from_lookahead=False):
        def step(param, grad, state, *, lr=1e-3, rho=0.9, momentum=0.9, eps=1e-6, **_):
            r = rho * state["square_avg"] + (1 if no_one_minus else 1 - rho) * grad * grad
            root = torch.sqrt(state["square_avg"] + eps) if old_r else (
                torch.sqrt(r) + eps if eps_outside else torch.sqrt(r + eps))
            v = momentum * state["velocity"] + (1 if ascent else -1) * lr * grad / root
            base = param + momentum * state["velocity"] if from_lookahead else param
            return base + v, {"step": state["step"] + 1, "square_avg": r, "velocity": v}
        return _zeros_state("square_avg", "velocity"), step

    return [
        Mistake("ε outside the root", "this rule divides by √(ε + r), with ε inside the root "
                "as in the book's RMSProp", variant(eps_outside=True),
                applies=lambda *a, **kw: kw.get("eps", 1e-6) > 0),
        Mistake("the velocity divides by the root of the previous r", "accumulate g ⊙ g into "
                "r first, then use the new r in the velocity", variant(old_r=True)),
        Mistake("wrong sign (gradient ascent)", "the velocity accumulates −η g / √(ε + r)",
                variant(ascent=True)),
        Mistake("(1 − ρ) missing from the accumulation", "r ← ρr + (1 − ρ) g ⊙ g",
                variant(no_one_minus=True)),
        Mistake("the new velocity added to the look-ahead point θ + μb",
                "the look-ahead is only where the gradient is taken: the step is θ ← θ + b",
                variant(from_lookahead=True), applies=lambda *a, **kw: kw.get(
                    "momentum", 0.9) != 0),
    ]


def _rules() -> None:
    _add("adam", *_adam_family("adam"))
    _add("adamw", *_adam_family("adamw"))
    _add("sgd", *_sgd())
    _add("sgd_velocity", *_sgd_velocity())
    _add("adagrad", *_adagrad())
    _add("rmsprop", *_rmsprop())
    _add("adadelta", *_adadelta())
    _add("nadam", *_nadam())
    _add("rmsprop_nesterov", *_rmsprop_nesterov())
    for rule, step in (("adam", O.adam_step), ("adamw", O.adamw_step), ("sgd", O.sgd_step),
                       ("sgd_velocity", O.sgd_velocity_step), ("adagrad", O.adagrad_step),
                       ("rmsprop", O.rmsprop_step), ("adadelta", O.adadelta_step),
                       ("nadam", O.nadam_step),
                       ("rmsprop_nesterov", O.rmsprop_nesterov_step)):
        _CATALOGUE[id(step)] = (step, _CATALOGUE[rule][1])


def _schedules() -> None:
    import nnbolts.schedules as S

    from ._schedule_mistakes import schedule_mistakes

    for name, mistakes in schedule_mistakes():
        _add(getattr(S, name), *mistakes)


def _losses() -> None:
    import nnbolts.losses as L

    from ._loss_mistakes import loss_mistakes

    for name, mistakes in loss_mistakes():
        _add(getattr(L, name), *mistakes)


def _backprop() -> None:
    import nnbolts.backprop as B

    from ._backprop_mistakes import backprop_mistakes

    for name, mistakes in backprop_mistakes():
        _add(getattr(B, name), *mistakes)


def _parallel() -> None:
    import nnbolts.parallel as P

    from ._parallel_mistakes import parallel_mistakes

    for name, mistakes in parallel_mistakes():
        _add(getattr(P, name), *mistakes)


def _build() -> None:
    _activations()
    _initializers()
    _rules()
    _schedules()
    _losses()
    _parallel()
    _backprop()
