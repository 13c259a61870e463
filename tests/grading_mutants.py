"""Student-style implementations for testing ``nnbolts.grading``.

The first half are honest submissions, written the way a student would (not copied from
nnbolts): each must pass its hidden test. The second half,
``MUTANTS``, are deliberately wrong versions, each a realistic mistake, with the text its
failure message must contain (the known-mistake hint, or the problem it must name).
"""

from __future__ import annotations

import math

import torch

# --------------------------------------------------------------------------------------------
# honest submissions
# --------------------------------------------------------------------------------------------


def sigmoid(z):
    return 1 / (1 + torch.exp(-z))


def sigmoid_grad(z):
    s = 1 / (1 + torch.exp(-z))
    return s * (1 - s)


def tanh_grad(z):
    t = torch.tanh(z)
    return 1 - t * t


def relu_grad(z):
    return torch.where(z > 0, torch.ones_like(z), torch.zeros_like(z))


def softmax(z, dim=-1):
    shifted = z - z.max(dim=dim, keepdim=True).values
    e = shifted.exp()
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(z, dim=-1):
    m = z.max(dim=dim, keepdim=True).values
    return z - m - torch.log(torch.exp(z - m).sum(dim=dim, keepdim=True))


def adam_init(param, *, amsgrad=False):
    state = {"step": 0, "exp_avg": torch.zeros_like(param),
             "exp_avg_sq": torch.zeros_like(param)}
    if amsgrad:
        state["max_exp_avg_sq"] = torch.zeros_like(param)
    return state


def _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, decoupled, *,
          bias=True, shift=0, eps_inside=False, sign=1.0, ams_source="v", in_place=False):
    """One honest Adam/AdamW step with switches for the mutants below."""
    beta1, beta2 = betas
    new = state if in_place else dict(state)
    t = state["step"] + 1
    new["step"] = t
    g = grad
    p = param.clone()
    if weight_decay:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    m = beta1 * state["exp_avg"] + (1 - beta1) * g
    v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    new["exp_avg"], new["exp_avg_sq"] = m, v
    tb = t + shift
    m_hat = m / (1 - beta1 ** tb) if bias else m
    second = v
    if amsgrad:
        second = torch.maximum(state["max_exp_avg_sq"], v if ams_source == "v" else g * g)
        new["max_exp_avg_sq"] = second
    v_hat = second / (1 - beta2 ** tb) if bias else second
    denom = torch.sqrt(v_hat + eps) if eps_inside else torch.sqrt(v_hat) + eps
    return p - sign * lr * m_hat / denom, new


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False)


def adamw_init(param, *, amsgrad=False):
    return adam_init(param, amsgrad=amsgrad)


def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, True)


def sgd_init(param):
    return {}


def _sgd(param, grad, state, lr, momentum, dampening, weight_decay, nesterov, *,
         zero_start=False, use_wd=True):
    g = grad + weight_decay * param if (weight_decay and use_wd) else grad
    new = {}
    if momentum:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = torch.zeros_like(param) if zero_start else None
        buf = g.clone() if buf is None else momentum * buf + (1 - dampening) * g
        new["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return param - lr * g, new


def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False):
    return _sgd(param, grad, state, lr, momentum, dampening, weight_decay, nesterov)


def _fans(tensor):
    receptive = 1
    for size in tensor.shape[2:]:
        receptive *= size
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _gain(nonlinearity, a):
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    return 1.0


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_uniform_other_draws_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu",
                                 generator=None):
    """Right distribution, different draws: rand() rescaled, then copied in."""
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    u = torch.rand(tensor.shape[::-1], generator=generator, device=tensor.device,
                   dtype=tensor.dtype)
    u = u.permute(*reversed(range(u.dim())))
    with torch.no_grad():
        return tensor.copy_((2 * u - 1) * bound)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def cosine(lr, total_steps, final_lr=0.0):
    def schedule(step):
        t = min(step, total_steps)
        return final_lr + (lr - final_lr) * (1 + math.cos(math.pi * t / total_steps)) / 2
    return schedule


def step_decay(lr, step_size, gamma=0.1):
    def schedule(step):
        return lr * gamma ** (step // step_size)
    return schedule


def exponential(lr, gamma):
    def schedule(step):
        return lr * gamma ** step
    return schedule


def inverse_time(lr, decay_rate, decay_steps=1):
    def schedule(step):
        return lr / (1 + decay_rate * step / decay_steps)
    return schedule


def linear(lr, final_lr, total_steps):
    def schedule(step):
        alpha = min(step, total_steps) / total_steps
        return (1 - alpha) * lr + alpha * final_lr
    return schedule


def warmup(schedule, warmup_steps, start_factor=0.0):
    def warmed_up(step):
        if step >= warmup_steps:
            return schedule(step - warmup_steps)
        return schedule(0) * (start_factor + (1 - start_factor) * step / warmup_steps)
    return warmed_up


class Decay:
    """A plain schedule of the student's own for a warmup to wrap."""

    def __init__(self, lr, gamma, every):
        self.lr, self.gamma, self.every = lr, gamma, every

    def __call__(self, step):
        return self.lr * self.gamma ** (step // self.every)


# Class-based schedules, the other way a student writes them: an __init__ that stores the
# hyperparameters, a __call__ (or a method it forwards to) with the formula, a __repr__.

class CosineSchedule:
    def __init__(self, lr, total_steps, final_lr=0.0):
        self.lr, self.total_steps, self.final_lr = lr, total_steps, final_lr

    def __call__(self, step):
        t = min(step, self.total_steps)
        return self.final_lr + (self.lr - self.final_lr) * (
            1 + math.cos(math.pi * t / self.total_steps)) / 2

    def __repr__(self):
        return f"cosine(lr={self.lr}, total_steps={self.total_steps}, final_lr={self.final_lr})"


def cosine_class(lr, total_steps, final_lr=0.0):
    return CosineSchedule(lr, total_steps, final_lr)


class StepDecaySchedule:
    def __init__(self, lr, step_size, gamma):
        self.lr = lr
        self.step_size = step_size
        self.gamma = gamma

    def __call__(self, step):
        return self.value(step)

    def value(self, t):
        return self.lr * self.gamma ** (t // self.step_size)


def step_decay_class(lr, step_size, gamma=0.1):
    return StepDecaySchedule(lr, step_size, gamma)


class LinearSchedule:
    def __init__(self, lr, final_lr, total_steps):
        self.lr, self.final_lr, self.total_steps = lr, final_lr, total_steps

    def value(self, t):
        alpha = min(t, self.total_steps) / self.total_steps
        return (1.0 - alpha) * self.lr + alpha * self.final_lr

    def __call__(self, step):
        return float(self.value(step))


def linear_class(lr, final_lr, total_steps):
    return LinearSchedule(lr, final_lr, total_steps)


def minibatches(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
    n = X.shape[0]
    if shuffle:
        order = torch.randperm(n, generator=generator).to(X.device)
    else:
        order = torch.arange(n, device=X.device)
    size = n if batch_size is None else batch_size
    for start in range(0, n, size):
        index = order[start:start + size]
        if drop_last and len(index) < size:
            break
        yield X[index], y[index]


# --------------------------------------------------------------------------------------------
# the mutants
# --------------------------------------------------------------------------------------------


def adam_no_bias_correction(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False, bias=False)


def adam_eps_inside_sqrt(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                         weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False,
                 eps_inside=True)


def adam_wrong_sign(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                    weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False, sign=-1.0)


def adam_step_plus_one(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                       weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False, shift=1)


def adam_step_minus_one(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False, shift=-1)


def adam_amsgrad_wrong_max(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False,
                 ams_source="g2")


def adam_mutates_state(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                       weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False,
                 in_place=True)


def adamw_l2_instead_of_decoupled(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=1e-2, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, False)


def sgd_buffer_from_zero(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                         weight_decay=0.0, nesterov=False):
    return _sgd(param, grad, state, lr, momentum, dampening, weight_decay, nesterov,
                zero_start=True)


def sgd_forgets_weight_decay(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                             weight_decay=0.0, nesterov=False):
    return _sgd(param, grad, state, lr, momentum, dampening, weight_decay, nesterov,
                use_wd=False)


def sigmoid_grad_returns_sigmoid(z):
    return 1 / (1 + torch.exp(-z))


def tanh_grad_of_z(z):
    return 1 - z * z


def relu_grad_one_at_zero(z):
    return (z >= 0).to(z.dtype)


def softmax_no_shift(z, dim=-1):
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax_of_softmax(z, dim=-1):
    return torch.log(softmax(z, dim))


def sigmoid_cpu_float64(z):
    return torch.tensor((1 / (1 + torch.exp(-z.double()))).cpu().tolist(), dtype=torch.float64)


def sigmoid_in_place(z):
    return z.neg_().exp_().add_(1).reciprocal_()


def xavier_fan_in_only_(tensor, gain=1.0, generator=None):
    fan_in, _ = _fans(tensor)
    bound = gain * math.sqrt(3.0 / fan_in)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def xavier_no_receptive_field_(tensor, gain=1.0, generator=None):
    bound = gain * math.sqrt(6.0 / (tensor.shape[0] + tensor.shape[1]))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_gain_one_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    fan_in, fan_out = _fans(tensor)
    bound = math.sqrt(3.0 / (fan_in if mode == "fan_in" else fan_out))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_without_sqrt3_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu",
                           generator=None):
    fan_in, fan_out = _fans(tensor)
    bound = _gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_fan_out_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    _, fan_out = _fans(tensor)
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan_out)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_shuffled_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu",
                             generator=None):
    """Normal draws with the right standard deviation, in another order than torch's."""
    fan_in, fan_out = _fans(tensor)
    std = _gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    z = torch.randn(tensor.shape[::-1], generator=generator, device=tensor.device,
                    dtype=tensor.dtype)
    with torch.no_grad():
        return tensor.copy_(z.permute(*reversed(range(z.dim()))) * std)


def cosine_off_by_one(lr, total_steps, final_lr=0.0):
    def schedule(step):
        t = min(step + 1, total_steps)
        return final_lr + (lr - final_lr) * (1 + math.cos(math.pi * t / total_steps)) / 2
    return schedule


class CountingSchedule:
    """Counts its own calls instead of using the step: right values only in order."""

    def __init__(self, lr, total_steps, final_lr=0.0):
        self.lr, self.total, self.final, self.calls = lr, total_steps, final_lr, 0

    def __call__(self, step):
        t = min(self.calls, self.total)
        self.calls += 1
        return self.final + (self.lr - self.final) * (1 + math.cos(math.pi * t / self.total)) / 2


# Learning-rate schedules: each a realistic slip in one of assignment 05's factories, written as
# the rate a student's closure returns. The hidden tests' configurations grade them.

def _factory(rate):
    """A schedule factory whose closure returns ``rate(step, **hyperparameters)``."""
    def factory(**hyperparameters):
        def schedule(step):
            return rate(step, **hyperparameters)
        return schedule
    return factory


def _warmup_factory(ramp, after=lambda schedule, step, w: schedule(step - w)):
    """A warmup whose rate is ``ramp(schedule, step, w, f)`` for the first ``w`` steps."""
    def warmup(schedule, warmup_steps, start_factor=0.0):
        def warmed_up(step):
            if step >= warmup_steps:
                return after(schedule, step, warmup_steps)
            return ramp(schedule, step, warmup_steps, start_factor)
        return warmed_up
    return warmup


def _lerp(lr, final_lr, alpha):
    return (1 - alpha) * lr + alpha * final_lr


def _cos(lr, final_lr, angle):
    return final_lr + (lr - final_lr) * (1 + math.cos(angle)) / 2


SCHEDULE_CONFIGS = {  # the configurations of assignment 05's hidden tests
    "step_decay": [dict(lr=0.1, step_size=100), dict(lr=0.5, step_size=7, gamma=0.5),
                   dict(lr=1.0, step_size=1, gamma=0.99)],
    "exponential": [dict(lr=0.1, gamma=0.995), dict(lr=2.0, gamma=0.9)],
    "inverse_time": [dict(lr=0.1, decay_rate=0.5), dict(lr=1.0, decay_rate=2.0,
                                                         decay_steps=100)],
    "linear": [dict(lr=0.1, final_lr=0.001, total_steps=800),
               dict(lr=0.01, final_lr=0.1, total_steps=37),
               dict(lr=0.5, final_lr=0.0, total_steps=1000)],
    "cosine": [dict(lr=0.1, total_steps=600), dict(lr=1.0, total_steps=999, final_lr=0.01),
               dict(lr=0.3, total_steps=250, final_lr=0.05)],
    "warmup": [dict(schedule=Decay(0.1, 0.995, 1), warmup_steps=100),
               dict(schedule=Decay(0.05, 0.1, 300), warmup_steps=50, start_factor=0.1),
               dict(schedule=Decay(1.0, 0.5, 7), warmup_steps=1)],
}

# (reference, label, the student's factory, the name of the mistake the message must give)
SCHEDULE_MUTANTS = [
    ("step_decay", "ceil", _factory(
        lambda step, lr, step_size, gamma=0.1: lr * gamma ** math.ceil(step / step_size)),
     "the exponent is rounded up (ceil) instead of down"),
    ("step_decay", "remainder", _factory(
        lambda step, lr, step_size, gamma=0.1: lr * gamma ** (step % step_size)),
     "the exponent is step % step_size (a remainder) instead of step // step_size"),
    ("step_decay", "every step", _factory(
        lambda step, lr, step_size, gamma=0.1: lr * gamma ** step),
     "the rate decays at every step instead of every step_size steps"),
    ("step_decay", "true division", _factory(
        lambda step, lr, step_size, gamma=0.1: lr * gamma ** (step / step_size)),
     "the decay is continuous instead of a staircase"),
    ("step_decay", "step + 1", _factory(
        lambda step, lr, step_size, gamma=0.1: lr * gamma ** ((step + 1) // step_size)),
     "off by one step: schedule(t) gives the rate of step t + 1"),
    ("exponential", "gamma times t", _factory(lambda step, lr, gamma: lr * gamma * step),
     "γ·t instead of γᵗ (the step multiplies instead of being the exponent)"),
    ("exponential", "gamma as k", _factory(
        lambda step, lr, gamma: lr * math.exp(-gamma * step)),
     "γ used as the rate k of η₀·e^(−kt)"),
    ("exponential", "one minus gamma", _factory(lambda step, lr, gamma: lr * (1 - gamma) ** step),
     "the factor per step is 1 − γ instead of γ"),
    ("exponential", "step + 1", _factory(lambda step, lr, gamma: lr * gamma ** (step + 1)),
     "off by one step: schedule(t) gives the rate of step t + 1"),
    ("inverse_time", "floor division", _factory(
        lambda step, lr, decay_rate, decay_steps=1: lr / (1 + decay_rate * step // decay_steps)),
     "the decay term k·t / n is computed with integer division (//)"),
    ("inverse_time", "staircase", _factory(
        lambda step, lr, decay_rate, decay_steps=1: lr / (
            1 + decay_rate * (step // decay_steps))),
     "t // decay_steps (a staircase) instead of t / decay_steps"),
    ("inverse_time", "decay_steps ignored", _factory(
        lambda step, lr, decay_rate, decay_steps=1: lr / (1 + decay_rate * step)),
     "decay_steps is ignored (k·t instead of k·t / n)"),
    ("inverse_time", "swapped", _factory(
        lambda step, lr, decay_rate, decay_steps=1: lr / (1 + decay_steps * step / decay_rate)),
     "decay_rate and decay_steps swapped"),
    ("linear", "one step short", _factory(
        lambda step, lr, final_lr, total_steps: _lerp(
            lr, final_lr, min(step, total_steps - 1) / total_steps)),
     "linear never reaches final_lr: it stops one step short"),
    ("linear", "ends a step early", _factory(
        lambda step, lr, final_lr, total_steps: _lerp(
            lr, final_lr, min(step / (total_steps - 1), 1))),
     "linear reaches final_lr at step total_steps − 1 instead of total_steps"),
    ("linear", "overshoots", _factory(
        lambda step, lr, final_lr, total_steps: _lerp(lr, final_lr, step / total_steps)),
     "linear keeps going past total_steps instead of holding final_lr"),
    ("linear", "integer alpha", _factory(
        lambda step, lr, final_lr, total_steps: _lerp(
            lr, final_lr, min(step, total_steps) // total_steps)),
     "α is computed with integer division (//), so it stays 0 until total_steps"),
    ("linear", "swapped", _factory(
        lambda step, lr, final_lr, total_steps: _lerp(
            final_lr, lr, min(step, total_steps) / total_steps)),
     "lr and final_lr are swapped in the interpolation"),
    ("linear", "max clamp", _factory(
        lambda step, lr, final_lr, total_steps: max(
            lr + (final_lr - lr) * step / total_steps, final_lr)),
     "the rate is clamped with max(…, final_lr), which fails when final_lr > lr"),
    ("cosine", "period 4T", _factory(
        lambda step, lr, total_steps, final_lr=0.0: _cos(
            lr, final_lr, math.pi * min(step, total_steps) / (2 * total_steps))),
     "the cosine is stretched over 2·total_steps (π·t / 2T): it only gets halfway down"),
    ("cosine", "full wave", _factory(
        lambda step, lr, total_steps, final_lr=0.0: _cos(
            lr, final_lr, 2 * math.pi * min(step, total_steps) / total_steps)),
     "a full cosine wave (2π·t / T) instead of half a wave: the rate comes back up to lr"),
    ("cosine", "final_lr ignored", _factory(
        lambda step, lr, total_steps, final_lr=0.0: lr * (
            1 + math.cos(math.pi * min(step, total_steps) / total_steps)) / 2),
     "final_lr is ignored (the rate anneals to 0)"),
    ("cosine", "scaled by lr", _factory(
        lambda step, lr, total_steps, final_lr=0.0: final_lr + lr * (
            1 + math.cos(math.pi * min(step, total_steps) / total_steps)) / 2),
     "the cosine term is scaled by lr instead of lr − final_lr"),
    ("cosine", "not clamped", _factory(
        lambda step, lr, total_steps, final_lr=0.0: _cos(
            lr, final_lr, math.pi * step / total_steps)),
     "the rate climbs back up after total_steps (the step is not clamped)"),
    ("cosine", "half missing", _factory(
        lambda step, lr, total_steps, final_lr=0.0: final_lr + (lr - final_lr) * (
            1 + math.cos(math.pi * min(step, total_steps) / total_steps))),
     "the factor ½ is missing: (1 + cos) goes from 2 to 0"),
    ("cosine", "integer ratio", _factory(
        lambda step, lr, total_steps, final_lr=0.0: _cos(
            lr, final_lr, math.pi * (min(step, total_steps) // total_steps))),
     "min(t, T) // T: the cosine's argument is computed with integer division"),
    ("cosine", "pi missing", _factory(
        lambda step, lr, total_steps, final_lr=0.0: _cos(
            lr, final_lr, min(step, total_steps) / total_steps)),
     "π is missing from the cosine's argument"),
    ("cosine", "floored angle", _factory(
        lambda step, lr, total_steps, final_lr=0.0: _cos(
            lr, final_lr, math.pi * min(step, total_steps) // total_steps)),
     "π·t // T: the cosine's argument is rounded down by integer division"),
    ("warmup", "one step ahead", _warmup_factory(
        lambda s, step, w, f: s(0) * (f + (1 - f) * (step + 1) / w)),
     "the warmup ramp is one step ahead (t + 1 instead of t)"),
    ("warmup", "clock not restarted", _warmup_factory(
        lambda s, step, w, f: s(0) * (f + (1 - f) * step / w),
        after=lambda s, step, w: s(step)),
     "the wrapped schedule's clock is not restarted: s(t) instead of s(t − warmup_steps)"),
    ("warmup", "ramp times s(t)", _warmup_factory(
        lambda s, step, w, f: s(step) * (f + (1 - f) * step / w)),
     "the ramp multiplies s(t) instead of s(0)"),
    ("warmup", "start_factor ignored", _warmup_factory(lambda s, step, w, f: s(0) * step / w),
     "start_factor is ignored (the ramp starts at 0)"),
    ("warmup", "slope without 1 - f", _warmup_factory(
        lambda s, step, w, f: s(0) * (f + step / w)),
     "the ramp's slope ignores start_factor: f + t / w instead of f + (1 − f)·t / w"),
    ("warmup", "ramp one step short", _warmup_factory(
        lambda s, step, w, f: s(0) * (f + (1 - f) * step / max(w - 1, 1))),
     "the ramp reaches s(0) one step early"),
    ("warmup", "integer ramp", _warmup_factory(
        lambda s, step, w, f: s(0) * (f + (1 - f) * (step // w))),
     "t / warmup_steps is computed with integer division (//)"),
]


def minibatches_drop_partial(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
    n = X.shape[0]
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    size = n if batch_size is None else batch_size
    for start in range(0, n - size + 1, size):
        index = order[start:start + size].to(X.device)
        yield X[index], y[index]


def minibatches_with_replacement(X, y, batch_size, *, shuffle=True, drop_last=False,
                                 generator=None):
    n = X.shape[0]
    size = n if batch_size is None else batch_size
    for start in range(0, n, size):
        count = min(size, n - start)
        if drop_last and count < size:
            break
        index = torch.randint(0, n, (count,), generator=generator).to(X.device) if shuffle else (
            torch.arange(start, start + count, device=X.device))
        yield X[index], y[index]


def minibatches_ignores_generator(X, y, batch_size, *, shuffle=True, drop_last=False,
                                  generator=None):
    return minibatches(X, y, batch_size, shuffle=shuffle, drop_last=drop_last, generator=None)


# (label, kind, the student's function(s), keyword arguments of the check, required texts)
MUTANTS = [
    ("adam: no bias correction", "rule", (adam_init, adam_no_bias_correction), {"rule": "adam"},
     ["This looks like: no bias correction"]),
    ("adam: eps inside the square root", "rule", (adam_init, adam_eps_inside_sqrt),
     {"rule": "adam"}, ["This looks like: ε inside the square root"]),
    ("adam: wrong sign", "rule", (adam_init, adam_wrong_sign), {"rule": "adam"},
     ["This looks like: wrong sign (gradient ascent)"]),
    ("adam: bias correction with t + 1", "rule", (adam_init, adam_step_plus_one),
     {"rule": "adam"}, ["This looks like: off-by-one step count (bias correction with t + 1)"]),
    ("adam: bias correction with t - 1", "rule", (adam_init, adam_step_minus_one),
     {"rule": "adam"}, ["non-finite", "This looks like: off-by-one step count (bias correction "
                        "with t − 1"]),
    ("adam: amsgrad maximum of g²", "rule", (adam_init, adam_amsgrad_wrong_max),
     {"rule": "adam"}, ["This looks like: AMSGrad maximum taken with g² instead of v"]),
    ("adam: updates the state in place", "rule", (adam_init, adam_mutates_state),
     {"rule": "adam"}, ["modified its argument state", "state['step'] was 0 and is now 1"]),
    ("adamw: L2 instead of decoupled", "rule", (adamw_init, adamw_l2_instead_of_decoupled),
     {"rule": "adamw"}, ["This looks like: L2 penalty instead of decoupled weight decay"]),
    ("sgd: momentum buffer from zero", "rule", (sgd_init, sgd_buffer_from_zero),
     {"rule": "sgd"}, ["This looks like: momentum buffer started at zero"]),
    ("sgd: weight decay forgotten", "rule", (sgd_init, sgd_forgets_weight_decay),
     {"rule": "sgd"}, ["This looks like: weight decay forgotten"]),
    ("sigmoid_grad returns sigmoid", "elementwise", sigmoid_grad_returns_sigmoid,
     {"reference": "sigmoid_grad"}, ["This looks like: sigmoid_grad returns σ(z) itself"]),
    ("tanh_grad as 1 - z²", "elementwise", tanh_grad_of_z, {"reference": "tanh_grad"},
     ["This looks like: tanh_grad computes 1 − z²"]),
    ("relu_grad is 1 at 0", "elementwise", relu_grad_one_at_zero, {"reference": "relu_grad"},
     ["This looks like: relu_grad is 1 at z = 0", "(z = 0.0)"]),
    ("softmax without the max shift", "elementwise", softmax_no_shift,
     {"reference": "softmax"}, ["non-finite", "This looks like: softmax without the max shift"]),
    ("log_softmax as log of softmax", "elementwise", log_softmax_of_softmax,
     {"reference": "log_softmax"}, ["This looks like: log_softmax computed as log(softmax(z))"]),
    ("a CPU float64 result for float32 input", "elementwise", sigmoid_cpu_float64,
     {"reference": "sigmoid"}, ["returned a float64 tensor for float32 input"]),
    ("sigmoid changes its input", "elementwise", sigmoid_in_place, {"reference": "sigmoid"},
     ["modified its argument z"]),
    ("xavier with fan_in only", "init", xavier_fan_in_only_,
     {"reference": "xavier_uniform_"}, ["This looks like: the bound uses fan_in only"]),
    ("xavier without the receptive field", "init", xavier_no_receptive_field_,
     {"reference": "xavier_uniform_", "shapes": [(16, 8, 3, 3)]},
     ["This looks like: the fans ignore the kernel's receptive field"]),
    ("kaiming with gain 1", "init", kaiming_gain_one_,
     {"reference": "kaiming_uniform_", "kwargs": [{"nonlinearity": "relu"}]},
     ["This looks like: the gain is forgotten"]),
    ("kaiming bound without √3", "init", kaiming_without_sqrt3_,
     {"reference": "kaiming_uniform_", "kwargs": [{"nonlinearity": "relu"}]},
     ["This looks like: the bound is the standard deviation (the √3 is missing)"]),
    ("kaiming with fan_out", "init", kaiming_fan_out_,
     {"reference": "kaiming_uniform_", "kwargs": [{"nonlinearity": "relu"}]},
     ["This looks like: fan_out is used where the mode asks for fan_in"]),
    ("kaiming_uniform_ drawing normals", "init", kaiming_normal_shuffled_,
     {"reference": "kaiming_uniform_", "kwargs": [{"nonlinearity": "relu"}]},
     ["draws from the wrong distribution", "do not look uniform",
      "This looks like: normal draws instead of uniform ones"]),
    ("cosine schedule off by one step", "schedule", cosine_off_by_one,
     {"reference": "cosine", "configs": [{"lr": 0.1, "total_steps": 50}], "steps": 60},
     ["This looks like: off by one step"]),
    ("a schedule that counts its calls", "schedule", CountingSchedule,
     {"reference": "cosine", "configs": [{"lr": 0.1, "total_steps": 50}], "steps": 60},
     ["is not a pure function of the step"]),
    ("minibatches dropping the last partial batch", "minibatches", minibatches_drop_partial,
     {}, ["This looks like: the last, shorter batch is dropped"]),
    ("minibatches reusing samples", "minibatches", minibatches_with_replacement, {},
     ["This looks like: samples drawn with replacement"]),
    ("minibatches ignoring the generator", "minibatches", minibatches_ignores_generator, {},
     ["This looks like: the generator is ignored"]),
] + [
    (f"{reference}: {label}", "schedule", factory,
     {"reference": reference, "configs": SCHEDULE_CONFIGS[reference], "steps": 1000,
      "name": reference}, [f"This looks like: {mistake}"])
    for reference, label, factory, mistake in SCHEDULE_MUTANTS
]
