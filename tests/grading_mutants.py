"""Student-style implementations for testing ``nnbolts.grading``.

The first half are honest submissions, written the way a student would (not copied from
nnbolts): each must pass its hidden test with the anti-cheat measures on. The second half,
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
]
