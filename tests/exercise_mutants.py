'''Wrong implementations of every graded function of the exercises, each a realistic mistake.

``tests/test_exercise_mutants.py`` runs an assignment's source notebook (solutions/<NN-topic>/)
with one mutant at a time and requires the notebook to lose points on the trusted side: at least
one graded test cell's hidden block, judged by ``grading.trusted``, must fail (or the torch-use
policy must zero it). When ``hint`` is set, some failing cell must say it: in the trusted
verdict's message (the grader's "This looks like: ..." diagnosis, the policy's reason) or in
what the cell's visible asserts raise in the notebook, the explanation a student sees when
running it. ``hint=None`` means only that the mutant must lose points (the message just shows
the expected and received values).

A mutant is a snippet executed right after the solution cell that defines ``function``, so it
replaces the solution's definition for every cell that follows, including other solution cells
that call it (a wrong ``sigmoid`` also makes ``silu`` wrong, as it would in a student's
notebook). The snippet redefines only the function it is named after; it sees the setup cell's
imports (``math``, ``torch``, ``F``, ...) and the solution's other functions.

Long functions (the optimizer steps, the training loop, the checkpoint pair) are written once
as a template of the solution with named slots, and each mutant fills one slot wrongly, e.g.
``_adam(update="return param - lr * m / (torch.sqrt(v) + eps), new")``, so that an entry shows
only its mistake. Mistakes that only a GPU reveals (a tensor left on the CPU) are not listed:
the catalogue must fail on the CPU-only machines that run the test suite.

To add a mutant, append ``(function, label, code, hint)`` to its assignment's ``_group(...)``:

* ``label`` is short and unique for its function (the test id is ``assignment:function:label``);
* ``code`` is the whole ``def`` of ``function`` (with any import it needs) with one mistake a
  student would make, short and readable, or a template filled with one wrong slot;
* ``hint`` is a phrase of the message the student should get, or ``None``.

A new graded function needs at least three mutants (a conceptual question ``q_*``, one or two
wrong answers). If a mutant passes every test cell, the notebook has a grading gap: tighten the
visible or hidden test in solutions/ and run ``make exercises``, rather than drop the mutant.
'''

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """One wrong implementation of one graded function of one assignment."""

    assignment: str
    function: str
    label: str
    code: str
    hint: str | None = None

    @property
    def id(self) -> str:
        return f"{self.assignment}:{self.function}:{self.label}"


def _group(assignment: str, *entries: tuple) -> list[Mutant]:
    """Mutants of one assignment from (function, label, code, hint) tuples; code is dedented."""
    return [Mutant(assignment, function, label, textwrap.dedent(code).strip() + "\n", hint)
            for function, label, code, hint in entries]


def _answer(function: str, value: str) -> str:
    return f"def {function}():\n    return {value}\n"


ACTIVATIONS = _group(
    "01-activations",
    ("sigmoid", "sign-flipped", """
        def sigmoid(z):
            return 1 / (1 + torch.exp(z))
        """, None),
    ("sigmoid", "torch-sigmoid", """
        def sigmoid(z):
            return torch.sigmoid(z)
        """, "sigmoid uses torch's sigmoid, which this exercise asks you to implement yourself"),
    ("sigmoid", "math-exp-loop", """
        def sigmoid(z):
            values = [1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))
                      for v in z.flatten().tolist()]
            return torch.tensor(values).reshape(z.shape)
        """, "keep the dtype"),
    ("sigmoid_grad", "returns-sigmoid", """
        def sigmoid_grad(z):
            return sigmoid(z)
        """, None),
    ("sigmoid_grad", "formula-on-z", """
        def sigmoid_grad(z):
            return z * (1 - z)
        """, None),
    ("sigmoid_grad", "tanh-rule", """
        def sigmoid_grad(z):
            s = sigmoid(z)
            return 1 - s * s
        """, None),
    ("tanh_grad", "formula-on-z", """
        def tanh_grad(z):
            return 1 - z ** 2
        """, None),
    ("tanh_grad", "square-missing", """
        def tanh_grad(z):
            return 1 - torch.tanh(z)
        """, None),
    ("tanh_grad", "exp-overflow", """
        def tanh_grad(z):
            e = torch.exp(2 * z)
            return 4 * e / (1 + e) ** 2
        """, "tanh_grad([-1e4, 1e4]) gave"),
    ("relu", "returns-mask", """
        def relu(z):
            return (z > 0).to(z.dtype)
        """, None),
    ("relu", "clamp-wrong-side", """
        def relu(z):
            return torch.clamp(z, max=0)
        """, None),
    ("relu", "in-place", """
        def relu(z):
            z[z < 0] = 0
            return z
        """, "modified its argument"),
    ("relu_grad", "one-at-zero", """
        def relu_grad(z):
            return (z >= 0).to(z.dtype)
        """, None),
    ("relu_grad", "bool-tensor", """
        def relu_grad(z):
            return z > 0
        """, "not a bool tensor"),
    ("relu_grad", "always-float32", """
        def relu_grad(z):
            return (z > 0).float()
        """, "returned a float32 tensor for float64 input"),
    ("leaky_relu", "slope-hard-coded", """
        def leaky_relu(z, negative_slope=0.01):
            return torch.where(z > 0, z, 0.01 * z)
        """, None),
    ("leaky_relu", "wrong-default", """
        def leaky_relu(z, negative_slope=0.1):
            return torch.where(z > 0, z, negative_slope * z)
        """, "leaky_relu([-2, 3]) gave"),
    ("leaky_relu", "plain-relu", """
        def leaky_relu(z, negative_slope=0.01):
            return torch.where(z > 0, z, torch.zeros_like(z))
        """, None),
    ("elu", "alpha-missing", """
        def elu(z, alpha=1.0):
            return torch.where(z > 0, z, torch.expm1(torch.clamp(z, max=0)))
        """, "elu([-1], alpha=2) gave"),
    ("elu", "minus-one-missing", """
        def elu(z, alpha=1.0):
            return torch.where(z > 0, z, alpha * torch.exp(torch.clamp(z, max=0)))
        """, None),
    ("elu", "bracket-flipped", """
        def elu(z, alpha=1.0):
            return torch.where(z > 0, z, alpha * (1 - torch.exp(torch.clamp(z, max=0))))
        """, None),
    ("silu", "factor-z-missing", """
        def silu(z):
            return sigmoid(z)
        """, None),
    ("silu", "sign-flipped", """
        def silu(z):
            return z * sigmoid(-z)
        """, None),
    ("silu", "torch-silu", """
        def silu(z):
            return torch.nn.functional.silu(z)
        """, "silu uses torch's silu"),
    ("silu_grad", "product-rule-incomplete", """
        def silu_grad(z):
            return sigmoid(z)
        """, None),
    ("silu_grad", "sigmoid-derivative", """
        def silu_grad(z):
            return sigmoid(z) * sigmoid(-z)
        """, None),
    ("silu_grad", "second-term-sign", """
        def silu_grad(z):
            return sigmoid(z) * (1 - z * sigmoid(-z))
        """, None),
    ("softmax", "no-max-shift", """
        def softmax(z, dim=-1):
            e = torch.exp(z)
            return e / e.sum(dim=dim, keepdim=True)
        """, "softmax([0, 0, 1e4]) gave"),
    ("softmax", "ignores-dim", """
        def softmax(z, dim=-1):
            e = torch.exp(z - torch.amax(z, dim=-1, keepdim=True))
            return e / e.sum(dim=-1, keepdim=True)
        """, "with dim=0 each column must sum to 1"),
    ("softmax", "global-max", """
        def softmax(z, dim=-1):
            e = torch.exp(z - z.max())
            return e / e.sum(dim=dim, keepdim=True)
        """, None),
    ("softmax", "keepdim-missing", """
        def softmax(z, dim=-1):
            e = torch.exp(z - torch.amax(z, dim=dim, keepdim=True))
            return e / e.sum(dim=dim)
        """, None),
    ("saturated_sigmoid_derivative", "depends", _answer("saturated_sigmoid_derivative", '"D"'),
     "not the right choice"),
    ("saturated_sigmoid_derivative", "one-quarter",
     _answer("saturated_sigmoid_derivative", '"C"'), "not the right choice"),
    ("largest_sigmoid_slope", "one-half", _answer("largest_sigmoid_slope", "0.5"),
     "not the right value"),
    ("largest_sigmoid_slope", "one", _answer("largest_sigmoid_slope", "1.0"),
     "not the right value"),
    ("dead_unit_activation", "sigmoid", _answer("dead_unit_activation", '"A"'),
     "not the right choice"),
    ("dead_unit_activation", "lowercase", _answer("dead_unit_activation", '"c"'),
     "answer with one letter"),
)

# clip_grad_norm_ with its scaling factor (an expression of total, norms, grads, g) as a slot
_CLIP = """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])
    total = torch.linalg.vector_norm(norms, norm_type)
    for g in grads:
        g.mul_({factor})
    return total
"""

INITIALIZERS = _group(
    "02-initializers",
    ("fan_in_and_fan_out", "swapped", """
        def fan_in_and_fan_out(tensor):
            if tensor.dim() < 2:
                raise ValueError("fan_in and fan_out need at least 2 dimensions")
            kernel = math.prod(tensor.shape[2:])
            return tensor.shape[0] * kernel, tensor.shape[1] * kernel
        """, None),
    ("fan_in_and_fan_out", "kernel-ignored", """
        def fan_in_and_fan_out(tensor):
            if tensor.dim() < 2:
                raise ValueError("fan_in and fan_out need at least 2 dimensions")
            return tensor.shape[1], tensor.shape[0]
        """, "a (16, 3, 5, 5) convolution weight"),
    ("fan_in_and_fan_out", "last-kernel-dim-only", """
        def fan_in_and_fan_out(tensor):
            if tensor.dim() < 2:
                raise ValueError("fan_in and fan_out need at least 2 dimensions")
            kernel = tensor.shape[-1] if tensor.dim() > 2 else 1
            return tensor.shape[1] * kernel, tensor.shape[0] * kernel
        """, None),
    ("fan_in_and_fan_out", "no-value-error", """
        def fan_in_and_fan_out(tensor):
            kernel = math.prod(tensor.shape[2:])
            return tensor.shape[1] * kernel, tensor.shape[0] * kernel
        """, "IndexError"),
    ("calculate_gain", "relu-gain-two", """
        def calculate_gain(nonlinearity, param=None):
            if nonlinearity == "relu":
                return 2.0
            if nonlinearity == "tanh":
                return 5.0 / 3
            if nonlinearity == "leaky_relu":
                slope = 0.01 if param is None else param
                return math.sqrt(2.0 / (1 + slope**2))
            if nonlinearity == "selu":
                return 3.0 / 4
            return 1.0
        """, None),
    ("calculate_gain", "param-ignored", """
        def calculate_gain(nonlinearity, param=None):
            gains = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0,
                     "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4,
                     "leaky_relu": math.sqrt(2.0 / (1 + 0.01**2))}
            return gains[nonlinearity]
        """, None),
    ("calculate_gain", "selu-forgotten", """
        def calculate_gain(nonlinearity, param=None):
            if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
                return 1.0
            if nonlinearity == "tanh":
                return 5.0 / 3
            if nonlinearity == "relu":
                return math.sqrt(2.0)
            if nonlinearity == "leaky_relu":
                slope = 0.01 if param is None else param
                return math.sqrt(2.0 / (1 + slope**2))
            raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")
        """, None),
    ("calculate_gain", "param-or-default", """
        def calculate_gain(nonlinearity, param=None):
            if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
                return 1.0
            if nonlinearity == "tanh":
                return 5.0 / 3
            if nonlinearity == "relu":
                return math.sqrt(2.0)
            if nonlinearity == "leaky_relu":
                slope = param or 0.01
                return math.sqrt(2.0 / (1 + slope**2))
            if nonlinearity == "selu":
                return 3.0 / 4
            raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")
        """, None),
    ("xavier_uniform_", "fan-in-only", """
        def xavier_uniform_(tensor, gain=1.0, generator=None):
            fan_in, _ = fan_in_and_fan_out(tensor)
            bound = gain * math.sqrt(3.0 / fan_in)
            with torch.no_grad():
                return tensor.uniform_(-bound, bound, generator=generator)
        """, None),
    ("xavier_uniform_", "sqrt3-missing", """
        def xavier_uniform_(tensor, gain=1.0, generator=None):
            fan_in, fan_out = fan_in_and_fan_out(tensor)
            bound = gain * math.sqrt(2.0 / (fan_in + fan_out))
            with torch.no_grad():
                return tensor.uniform_(-bound, bound, generator=generator)
        """, None),
    ("xavier_uniform_", "gain-forgotten", """
        def xavier_uniform_(tensor, gain=1.0, generator=None):
            fan_in, fan_out = fan_in_and_fan_out(tensor)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            with torch.no_grad():
                return tensor.uniform_(-bound, bound, generator=generator)
        """, None),
    ("xavier_uniform_", "not-in-place", """
        def xavier_uniform_(tensor, gain=1.0, generator=None):
            fan_in, fan_out = fan_in_and_fan_out(tensor)
            bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
            return torch.empty_like(tensor).uniform_(-bound, bound, generator=generator)
        """, "initialise in place"),
    ("xavier_uniform_", "generator-dropped", """
        def xavier_uniform_(tensor, gain=1.0, generator=None):
            fan_in, fan_out = fan_in_and_fan_out(tensor)
            bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
            with torch.no_grad():
                return tensor.uniform_(-bound, bound)
        """, "same seed"),
    ("kaiming_normal_", "mode-ignored", """
        def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
            fan_in, _ = fan_in_and_fan_out(tensor)
            std = calculate_gain(nonlinearity, a) / math.sqrt(fan_in)
            with torch.no_grad():
                return tensor.normal_(0, std, generator=generator)
        """, None),
    ("kaiming_normal_", "variance-as-std", """
        def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
            fan_in, fan_out = fan_in_and_fan_out(tensor)
            fan = fan_in if mode == "fan_in" else fan_out
            std = calculate_gain(nonlinearity, a) ** 2 / fan
            with torch.no_grad():
                return tensor.normal_(0, std, generator=generator)
        """, None),
    ("kaiming_normal_", "slope-ignored", """
        def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
            fan_in, fan_out = fan_in_and_fan_out(tensor)
            fan = fan_in if mode == "fan_in" else fan_out
            std = calculate_gain(nonlinearity) / math.sqrt(fan)
            with torch.no_grad():
                return tensor.normal_(0, std, generator=generator)
        """, "the negative slope a is ignored in the gain"),
    ("kaiming_normal_", "uniform-draws", """
        def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
            fan_in, fan_out = fan_in_and_fan_out(tensor)
            fan = fan_in if mode == "fan_in" else fan_out
            bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
            with torch.no_grad():
                return tensor.uniform_(-bound, bound, generator=generator)
        """, "uniform draws instead of normal ones"),
    ("lecun_uniform_", "he-gain", """
        def lecun_uniform_(tensor, generator=None):
            fan_in, _ = fan_in_and_fan_out(tensor)
            bound = math.sqrt(6.0 / fan_in)
            with torch.no_grad():
                return tensor.uniform_(-bound, bound, generator=generator)
        """, None),
    ("lecun_uniform_", "fan-out", """
        def lecun_uniform_(tensor, generator=None):
            _, fan_out = fan_in_and_fan_out(tensor)
            bound = math.sqrt(3.0 / fan_out)
            with torch.no_grad():
                return tensor.uniform_(-bound, bound, generator=generator)
        """, None),
    ("lecun_uniform_", "sqrt3-missing", """
        def lecun_uniform_(tensor, generator=None):
            fan_in, _ = fan_in_and_fan_out(tensor)
            bound = 1.0 / math.sqrt(fan_in)
            with torch.no_grad():
                return tensor.uniform_(-bound, bound, generator=generator)
        """, None),
    ("lecun_uniform_", "normal-draws", """
        def lecun_uniform_(tensor, generator=None):
            fan_in, _ = fan_in_and_fan_out(tensor)
            with torch.no_grad():
                return tensor.normal_(0, 1.0 / math.sqrt(fan_in), generator=generator)
        """, None),
    ("clip_grad_norm_", "scales-up", _CLIP.format(factor="max_norm / (total + 1e-6)"),
     "gradients scaled up when the norm is below max_norm"),
    ("clip_grad_norm_", "each-tensor-alone", """
        def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
            grads = [p.grad for p in parameters if p.grad is not None]
            if not grads:
                return torch.tensor(0.0)
            norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])
            for g, norm in zip(grads, norms):
                g.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
            return torch.linalg.vector_norm(norms, norm_type)
        """, "each tensor clipped on its own"),
    ("clip_grad_norm_", "no-eps", _CLIP.format(factor="torch.clamp(max_norm / total, max=1.0)"),
     "the 1e-6 is missing from the factor"),
    ("clip_grad_norm_", "sum-of-norms", _CLIP.format(
        factor="torch.clamp(max_norm / (norms.sum() + 1e-6), max=1.0)"), None),
    ("clip_grad_norm_", "norm-type-ignored", """
        def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
            grads = [p.grad for p in parameters if p.grad is not None]
            if not grads:
                return torch.tensor(0.0)
            total = torch.cat([g.flatten() for g in grads]).norm()
            factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            for g in grads:
                g.mul_(factor)
            return total
        """, "norm_type ignored"),
    ("clip_grad_norm_", "walks-parameters-twice", """
        def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
            norms = [torch.linalg.vector_norm(p.grad, norm_type) for p in parameters
                     if p.grad is not None]
            if not norms:
                return torch.tensor(0.0)
            total = torch.linalg.vector_norm(torch.stack(norms), norm_type)
            factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            for p in parameters:
                if p.grad is not None:
                    p.grad.mul_(factor)
            return total
        """, "can be walked only once"),
    ("clip_grad_norm_", "returns-a-float", _CLIP.format(
        factor="torch.clamp(max_norm / (total + 1e-6), max=1.0)").replace(
        "return total", "return total.item()"), "0-d tensor"),
    ("clip_grad_norm_", "torch-clip", """
        def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
            return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type)
        """, "which this exercise asks you to implement yourself"),
    ("large_variance_outcome", "saturated-at-one", _answer("large_variance_outcome", '"A"'),
     "not the right choice"),
    ("large_variance_outcome", "not-saturated", _answer("large_variance_outcome", '"C"'),
     "not the right choice"),
    ("zero_init_outcome", "random-outgoing", _answer("zero_init_outcome", '"A"'),
     "not the right choice"),
    ("zero_init_outcome", "random-incoming", _answer("zero_init_outcome", '"C"'),
     "not the right choice"),
    ("zero_init_outcome", "random-biases", _answer("zero_init_outcome", '"D"'),
     "not the right choice"),
    ("sigmoid_layer_bound", "factor-four-missing",
     _answer("sigmoid_layer_bound", "math.sqrt(6 / (300 + 100))"), "not the right value"),
    ("sigmoid_layer_bound", "fan-in-only", _answer("sigmoid_layer_bound", "4 * math.sqrt(3 / 300)"),
     "not the right value"),
    ("glorot_normal_std", "fan-in-only", _answer("glorot_normal_std", "math.sqrt(1 / 200)"),
     "take its square root"),
    ("glorot_normal_std", "uniform-bound",
     _answer("glorot_normal_std", "math.sqrt(6 / (200 + 50))"), "not the right value"),
    ("glorot_normal_std", "variance", _answer("glorot_normal_std", "2 / (200 + 50)"),
     "take its square root"),
)

GRADIENT_DESCENT = _group(
    "03-gradient-descent",
    ("sgd_init", "zero-buffer", """
        def sgd_init(param):
            return {"momentum_buffer": torch.zeros_like(param)}
        """, "sgd_init must not create a buffer"),
    ("sgd_init", "step-counter", """
        def sgd_init(param):
            return {"step": 0}
        """, None),
    ("sgd_init", "velocity-key", """
        def sgd_init(param):
            return {"velocity": torch.zeros_like(param)}
        """, None),
    ("sgd_step", "maximize-after-weight-decay", """
        def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                     weight_decay=0.0, nesterov=False, maximize=False):
            g = grad
            if weight_decay != 0:
                g = g + weight_decay * param
            if maximize:
                g = -g
            new_state = dict(state)
            if momentum != 0:
                buf = state.get("momentum_buffer")
                buf = g.clone() if buf is None else momentum * buf + (1 - dampening) * g
                new_state["momentum_buffer"] = buf
                g = g + momentum * buf if nesterov else buf
            return param - lr * g, new_state
        """, None),
    ("sgd_step", "buffer-starts-at-zero", """
        def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                     weight_decay=0.0, nesterov=False, maximize=False):
            g = -grad if maximize else grad
            if weight_decay != 0:
                g = g + weight_decay * param
            new_state = dict(state)
            if momentum != 0:
                buf = state.get("momentum_buffer", torch.zeros_like(param))
                buf = momentum * buf + (1 - dampening) * g
                new_state["momentum_buffer"] = buf
                g = g + momentum * buf if nesterov else buf
            return param - lr * g, new_state
        """, "dampening does not apply at the first step"),
    ("sgd_step", "dampened-first-step", """
        def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                     weight_decay=0.0, nesterov=False, maximize=False):
            g = -grad if maximize else grad
            if weight_decay != 0:
                g = g + weight_decay * param
            new_state = dict(state)
            if momentum != 0:
                buf = state.get("momentum_buffer")
                buf = (1 - dampening) * g if buf is None else momentum * buf + (1 - dampening) * g
                new_state["momentum_buffer"] = buf
                g = g + momentum * buf if nesterov else buf
            return param - lr * g, new_state
        """, "dampening does not apply at the first step"),
    ("sgd_step", "decay-after-momentum", """
        def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                     weight_decay=0.0, nesterov=False, maximize=False):
            g = -grad if maximize else grad
            new_state = dict(state)
            if momentum != 0:
                buf = state.get("momentum_buffer")
                buf = g.clone() if buf is None else momentum * buf + (1 - dampening) * g
                new_state["momentum_buffer"] = buf
                g = g + momentum * buf if nesterov else buf
            return param - lr * (g + weight_decay * param), new_state
        """, "weight decay added after the momentum"),
    ("sgd_step", "in-place-update", """
        def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                     weight_decay=0.0, nesterov=False, maximize=False):
            g = -grad if maximize else grad
            if weight_decay != 0:
                g = g + weight_decay * param
            if momentum != 0:
                buf = state.get("momentum_buffer")
                buf = g.clone() if buf is None else momentum * buf + (1 - dampening) * g
                state["momentum_buffer"] = buf
                g = g + momentum * buf if nesterov else buf
            return param.sub_(lr * g), state
        """, "sgd_step modified its arguments"),
    ("sgd_step", "nesterov-ignored", """
        def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0,
                     weight_decay=0.0, nesterov=False, maximize=False):
            g = -grad if maximize else grad
            if weight_decay != 0:
                g = g + weight_decay * param
            new_state = dict(state)
            if momentum != 0:
                buf = state.get("momentum_buffer")
                buf = g.clone() if buf is None else momentum * buf + (1 - dampening) * g
                new_state["momentum_buffer"] = buf
                g = buf
            return param - lr * g, new_state
        """, "the look-ahead term is missing"),
    ("sgd_velocity_init", "float32-cpu-zeros", """
        def sgd_velocity_init(param):
            return {"velocity": torch.zeros(param.shape)}
        """, None),
    ("sgd_velocity_init", "python-zero", """
        def sgd_velocity_init(param):
            return {"velocity": 0.0}
        """, "the velocity starts as a zero tensor"),
    ("sgd_velocity_init", "pytorch-key", """
        def sgd_velocity_init(param):
            return {"momentum_buffer": torch.zeros_like(param)}
        """, "the velocity starts as a zero tensor"),
    ("sgd_velocity_step", "velocity-sign", """
        def sgd_velocity_step(param, grad, state, *, lr=1e-2, momentum=0.9, nesterov=False):
            v = momentum * state["velocity"] + lr * grad
            new_param = param - momentum * v - lr * grad if nesterov else param - v
            return new_param, {**state, "velocity": v}
        """, "check the sign"),
    ("sgd_velocity_step", "nesterov-old-velocity", """
        def sgd_velocity_step(param, grad, state, *, lr=1e-2, momentum=0.9, nesterov=False):
            v = momentum * state["velocity"] - lr * grad
            if nesterov:
                return param + momentum * state["velocity"] - lr * grad, {**state, "velocity": v}
            return param + v, {**state, "velocity": v}
        """, None),
    ("sgd_velocity_step", "in-place-velocity", """
        def sgd_velocity_step(param, grad, state, *, lr=1e-2, momentum=0.9, nesterov=False):
            v = state["velocity"].mul_(momentum).sub_(lr * grad)
            new_param = param + momentum * v - lr * grad if nesterov else param + v
            return new_param, {**state, "velocity": v}
        """, "sgd_velocity_step modified its arguments"),
    ("sgd_velocity_step", "nesterov-ignored", """
        def sgd_velocity_step(param, grad, state, *, lr=1e-2, momentum=0.9, nesterov=False):
            v = momentum * state["velocity"] - lr * grad
            return param + v, {**state, "velocity": v}
        """, None),
    ("descend_quartic", "decay-after-update", """
        def descend_quartic(x0, steps, *, lr, momentum=0.0, nesterov=False, decay=1.0):
            x, state, points = x0.clone(), sgd_init(x0), [x0.clone()]
            for _ in range(steps):
                x, state = sgd_step(x, quartic.gradient(x), state, lr=lr, momentum=momentum,
                                    nesterov=nesterov)
                lr = lr * decay
                points.append(x)
            return torch.stack(points)
        """, "the first update already uses"),
    ("descend_quartic", "start-missing", """
        def descend_quartic(x0, steps, *, lr, momentum=0.0, nesterov=False, decay=1.0):
            x, state, points = x0.clone(), sgd_init(x0), []
            for _ in range(steps):
                lr = lr * decay
                x, state = sgd_step(x, quartic.gradient(x), state, lr=lr, momentum=momentum,
                                    nesterov=nesterov)
                points.append(x)
            return torch.stack(points)
        """, "expected a float64 tensor of shape (4, 1)"),
    ("descend_quartic", "momentum-not-passed", """
        def descend_quartic(x0, steps, *, lr, momentum=0.0, nesterov=False, decay=1.0):
            x, state, points = x0.clone(), sgd_init(x0), [x0.clone()]
            for _ in range(steps):
                lr = lr * decay
                x, state = sgd_step(x, quartic.gradient(x), state, lr=lr)
                points.append(x)
            return torch.stack(points)
        """, None),
    ("descend_quartic", "float32-start", """
        def descend_quartic(x0, steps, *, lr, momentum=0.0, nesterov=False, decay=1.0):
            x = torch.tensor([x0.item()])
            state, points = sgd_init(x), [x]
            for _ in range(steps):
                lr = lr * decay
                x, state = sgd_step(x, quartic.gradient(x), state, lr=lr, momentum=momentum,
                                    nesterov=nesterov)
                points.append(x)
            return torch.stack(points)
        """, "expected a float64 tensor"),
    ("vanilla_gd_from_minus_five", "global", _answer("vanilla_gd_from_minus_five", '"A"'),
     "not the right choice"),
    ("vanilla_gd_from_minus_five", "hump", _answer("vanilla_gd_from_minus_five", '"B"'),
     "not the right choice"),
    ("momentum_from_minus_five", "nesterov-crosses", _answer("momentum_from_minus_five", '"B"'),
     "not the right choice"),
    ("momentum_from_minus_five", "both-global", _answer("momentum_from_minus_five", '"D"'),
     "not the right choice"),
    ("fast_decay_from_five", "reaches-minimum", _answer("fast_decay_from_five", '"B"'),
     "not the right choice"),
    ("fast_decay_from_five", "diverges", _answer("fast_decay_from_five", '"D"'),
     "not the right choice"),
    ("largest_stable_lr", "one-over-h-max", _answer("largest_stable_lr", "1 / 6"),
     "which eigenvalue limits"),
    ("largest_stable_lr", "two-over-h-min", _answer("largest_stable_lr", "2 / 1"),
     "which eigenvalue limits"),
    ("largest_stable_lr", "diagonal-entry", _answer("largest_stable_lr", "2 / 5"),
     "which eigenvalue limits"),
    ("noise_floor", "small-rate", _answer("noise_floor", """(
        lambda h: 0.1 * 4 / (2 * h))(12 * Quartic.coefficients[0] * x_global**2
                                     + 6 * Quartic.coefficients[1] * x_global
                                     + 2 * Quartic.coefficients[2])"""), "stops changing"),
    ("noise_floor", "standard-deviation", _answer("noise_floor", """(
        lambda h: 0.1 * 2 / (h * (2 - 0.1 * h)))(12 * Quartic.coefficients[0] * x_global**2
                                                 + 6 * Quartic.coefficients[1] * x_global
                                                 + 2 * Quartic.coefficients[2])"""),
     "square of the standard deviation"),
    ("noise_floor", "one-step", _answer("noise_floor", "0.1**2 * 2.0**2"), "stops changing"),
)

_ADAGRAD = """
    def adagrad_step(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                     maximize=False):
        t = state["step"] + 1
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + weight_decay * param
        s = {sum}
        lr_t = {lr_t}
        return param - lr_t * g / ({denom}), {{**state, "step": t, "sum": s}}
    """

_RMSPROP = """
    def rmsprop_step(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                     momentum=0.0, centered=False, maximize=False):
        new = {{**state, "step": state["step"] + 1}}
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + weight_decay * param
        r = new["square_avg"] = {square_avg}
        if centered:
            m = new["grad_avg"] = alpha * state["grad_avg"] + (1 - alpha) * g
            denom = {centered_denom}
        else:
            denom = {denom}
        if momentum > 0:
            {momentum}
        return param - lr * g / denom, new
    """

_ADAM = """
    def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                  amsgrad=False, maximize=False):
        beta1, beta2 = betas
        t = {t}
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + weight_decay * param
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        new = {{**state, "step": state["step"] + 1, "exp_avg": m, "exp_avg_sq": v}}
        if amsgrad:
            {amsgrad}
        {update}
    """
_ADAM_UPDATE = """m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return param - lr * m_hat / (torch.sqrt(v_hat) + eps), new"""
_AMSGRAD = 'v = new["max_exp_avg_sq"] = torch.maximum(state["max_exp_avg_sq"], v)'


_ADADELTA = """
def adadelta_step(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                  maximize=False):
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    r = rho * state["square_avg"] + (1 - rho) * g * g
    d = {d}
    u = rho * state["acc_delta"] + (1 - rho) * d * d
    return {update}, {{**state, "step": state["step"] + 1, "square_avg": r, "acc_delta": u}}
"""

_NADAM = """
def nadam_step(param, grad, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               momentum_decay=4e-3, maximize=False):
    beta1, beta2 = betas
    t = state["step"] + 1
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    mu = {mu}
    mu_next = {mu_next}
    product = {product}
    m = beta1 * state["exp_avg"] + (1 - beta1) * g
    v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    d = {d}
    new_param = (param - lr * (1 - mu) / (1 - product) * g / d
                 - lr * mu_next / (1 - product * mu_next) * m / d)
    return new_param, {{**state, "step": t, "mu_product": product, "exp_avg": m, "exp_avg_sq": v}}
"""

_RMSPROP_NESTEROV = """
def rmsprop_nesterov_step(param, grad, state, *, lr=1e-3, rho=0.9, momentum=0.9, eps=1e-6):
    r = {r}
    b = {b}
    return {new_param}, {{**state, "step": state["step"] + 1, "square_avg": r, "velocity": b}}
"""


def _adadelta(**parts: str) -> str:
    right = dict(d='torch.sqrt(state["acc_delta"] + eps) / torch.sqrt(r + eps) * g',
                 update="param - lr * d")
    return _ADADELTA.format(**{**right, **parts})


def _nadam(**parts: str) -> str:
    right = dict(mu="beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))",
                 mu_next="beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))",
                 product='state["mu_product"] * mu', d="torch.sqrt(v / (1 - beta2 ** t)) + eps")
    return _NADAM.format(**{**right, **parts})


def _rmsprop_nesterov(**parts: str) -> str:
    right = dict(r='rho * state["square_avg"] + (1 - rho) * grad * grad',
                 root="torch.sqrt(eps + r)", new_param="param + b")
    merged = {**right, **parts}
    merged.setdefault("b", 'momentum * state["velocity"] - lr * grad / ({root})'.format(**merged))
    return _RMSPROP_NESTEROV.format(**merged)


def _adagrad(**parts: str) -> str:
    right = dict(sum='state["sum"] + g * g', lr_t="lr / (1 + (t - 1) * lr_decay)",
                 denom="torch.sqrt(s) + eps")
    return _ADAGRAD.format(**{**right, **parts})


def _rmsprop(**parts: str) -> str:
    right = dict(square_avg='alpha * state["square_avg"] + (1 - alpha) * g * g',
                 centered_denom="torch.sqrt(r - m * m) + eps", denom="torch.sqrt(r) + eps",
                 momentum='b = new["momentum_buffer"] = momentum * state["momentum_buffer"] + g / '
                          'denom\n            return param - lr * b, new')
    return _RMSPROP.format(**{**right, **parts})


def _adam(**parts: str) -> str:
    right = dict(t='state["step"] + 1', amsgrad=_AMSGRAD, update=_ADAM_UPDATE)
    return _ADAM.format(**{**right, **parts})


ADAPTIVE = _group(
    "04-adaptive-optimizers",
    ("adagrad_init", "accumulator-value-ignored", """
        def adagrad_init(param, *, initial_accumulator_value=0.0):
            return {"step": 0, "sum": torch.zeros_like(param)}
        """, "initial_accumulator_value fills the sum"),
    ("adagrad_init", "step-starts-at-one", """
        def adagrad_init(param, *, initial_accumulator_value=0.0):
            return {"step": 1, "sum": torch.full_like(param, initial_accumulator_value)}
        """, "the state starts as step 0"),
    ("adagrad_init", "step-as-tensor", """
        def adagrad_init(param, *, initial_accumulator_value=0.0):
            return {"step": torch.tensor(0),
                    "sum": torch.full_like(param, initial_accumulator_value)}
        """, "the Python int 1"),
    ("adagrad_step", "eps-inside-root", _adagrad(denom="torch.sqrt(s + eps)"),
     "ε belongs outside the square root"),
    ("adagrad_step", "last-square-only", _adagrad(sum="g * g"),
     "the sum accumulates every g ⊙ g"),
    ("adagrad_step", "decay-off-by-one", _adagrad(lr_t="lr / (1 + t * lr_decay)"),
     "step 1 uses γ"),
    ("adagrad_step", "in-place-sum", _adagrad(sum='state["sum"].add_(g * g)'),
     "adagrad_step modified its arguments"),
    ("rmsprop_init", "every-buffer", """
        def rmsprop_init(param, *, momentum=0.0, centered=False):
            return {"step": 0, "square_avg": torch.zeros_like(param),
                    "momentum_buffer": torch.zeros_like(param), "grad_avg": torch.zeros_like(param)}
        """, "the state is step and square_avg only"),
    ("rmsprop_init", "centered-ignored", """
        def rmsprop_init(param, *, momentum=0.0, centered=False):
            state = {"step": 0, "square_avg": torch.zeros_like(param)}
            if momentum > 0:
                state["momentum_buffer"] = torch.zeros_like(param)
            return state
        """, "with centered=True the state holds a zero grad_avg"),
    ("rmsprop_init", "float32-cpu-zeros", """
        def rmsprop_init(param, *, momentum=0.0, centered=False):
            state = {"step": 0, "square_avg": torch.zeros(param.shape)}
            if momentum > 0:
                state["momentum_buffer"] = torch.zeros(param.shape)
            if centered:
                state["grad_avg"] = torch.zeros(param.shape)
            return state
        """, "returned a float32 tensor for float64 input"),
    ("rmsprop_step", "eps-inside-root", _rmsprop(denom="torch.sqrt(r + eps)"),
     "ε belongs outside the square root"),
    ("rmsprop_step", "alpha-swapped", _rmsprop(
        square_avg='(1 - alpha) * state["square_avg"] + alpha * g * g'), None),
    ("rmsprop_step", "momentum-of-raw-gradient", _rmsprop(
        momentum='b = new["momentum_buffer"] = momentum * state["momentum_buffer"] + g\n'
                 '            return param - lr * b / denom, new'),
     "b = 0.9·0 + g / (√r + ε)"),
    ("rmsprop_step", "not-centered", _rmsprop(centered_denom="torch.sqrt(r) + eps"),
     "d = √(r − m²) + ε"),
    ("adam_init", "amsgrad-ignored", """
        def adam_init(param, *, amsgrad=False):
            return {"step": 0, "exp_avg": torch.zeros_like(param),
                    "exp_avg_sq": torch.zeros_like(param)}
        """, "with amsgrad the state holds a zero max_exp_avg_sq"),
    ("adam_init", "always-max", """
        def adam_init(param, *, amsgrad=False):
            zeros = torch.zeros_like(param)
            return {"step": 0, "exp_avg": zeros, "exp_avg_sq": zeros, "max_exp_avg_sq": zeros}
        """, "the state is step 0 and two zero moments"),
    ("adam_init", "step-as-tensor", """
        def adam_init(param, *, amsgrad=False):
            state = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(param),
                     "exp_avg_sq": torch.zeros_like(param)}
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(param)
            return state
        """, "the Python int 1"),
    ("adam_step", "no-bias-correction", _adam(
        update="return param - lr * m / (torch.sqrt(v) + eps), new"),
     "Adam without its bias correction"),
    ("adam_step", "eps-inside-root", _adam(
        update="return param - lr * (m / (1 - beta1 ** t)) / torch.sqrt(v / (1 - beta2 ** t) "
               "+ eps), new"), "ε outside the root"),
    ("adam_step", "step-before-increment", _adam(t='state["step"]'), None),
    ("adam_step", "maximize-after-weight-decay", _adam().replace(
        "g = -grad if maximize else grad\n        if weight_decay != 0:\n"
        "            g = g + weight_decay * param",
        "g = grad\n        if weight_decay != 0:\n            g = g + weight_decay * param\n"
        "        if maximize:\n            g = -g"), None),
    ("adam_step", "amsgrad-max-of-vhat", _adam(
        amsgrad='v = new["max_exp_avg_sq"] = torch.maximum(state["max_exp_avg_sq"], '
                'v / (1 - beta2 ** t)) * (1 - beta2 ** t)'), None),
    ("adam_step", "betas-swapped", _adam().replace("beta1, beta2 = betas", "beta2, beta1 = betas"),
     None),
    ("adamw_init", "amsgrad-ignored", """
        def adamw_init(param, *, amsgrad=False):
            return adam_init(param)
        """, None),
    ("adamw_init", "decay-in-state", """
        def adamw_init(param, *, amsgrad=False):
            return {**adam_init(param, amsgrad=amsgrad), "weight_decay": 1e-2}
        """, "AdamW's state is Adam's"),
    ("adamw_init", "float32-cpu-zeros", """
        def adamw_init(param, *, amsgrad=False):
            state = {"step": 0, "exp_avg": torch.zeros(param.shape),
                     "exp_avg_sq": torch.zeros(param.shape)}
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros(param.shape)
            return state
        """, "returned a float32 tensor for float64 input"),
    ("adamw_step", "l2-penalty", """
        def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                       weight_decay=1e-2, amsgrad=False, maximize=False):
            return adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                             weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        """, "that is Adam's L2 penalty"),
    ("adamw_step", "decay-without-lr", """
        def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                       weight_decay=1e-2, amsgrad=False, maximize=False):
            return adam_step(param * (1 - weight_decay), grad, state, lr=lr, betas=betas, eps=eps,
                             amsgrad=amsgrad, maximize=maximize)
        """, None),
    ("adamw_step", "decay-after-step", """
        def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                       weight_decay=1e-2, amsgrad=False, maximize=False):
            new_param, new_state = adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                                             amsgrad=amsgrad, maximize=maximize)
            return new_param * (1 - lr * weight_decay), new_state
        """, None),
    ("adamw_step", "no-default-decay", """
        def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                       weight_decay=0.0, amsgrad=False, maximize=False):
            return adam_step(param * (1 - lr * weight_decay), grad, state, lr=lr, betas=betas,
                             eps=eps, amsgrad=amsgrad, maximize=maximize)
        """, "the default weight_decay is 1e-2"),
    ("adadelta_init", "step-as-tensor", """
        def adadelta_init(param):
            return {"step": torch.tensor(0.0), "square_avg": torch.zeros_like(param),
                    "acc_delta": torch.zeros_like(param)}
        """, "the Python int 1"),
    ("adadelta_init", "float32-cpu-zeros", """
        def adadelta_init(param):
            return {"step": 0, "square_avg": torch.zeros(param.shape),
                    "acc_delta": torch.zeros(param.shape)}
        """, "returned a float32 tensor for float64 input"),
    ("adadelta_init", "rmsprop-keys", """
        def adadelta_init(param):
            return {"step": 0, "square_avg": torch.zeros_like(param),
                    "momentum_buffer": torch.zeros_like(param)}
        """, "AdaDelta's state is step, square_avg and acc_delta"),
    ("adadelta_step", "no-eps-in-numerator", _adadelta(
        d='torch.sqrt(state["acc_delta"]) / torch.sqrt(r + eps) * g'),
     "ε missing from the numerator's root"),
    ("adadelta_step", "eps-outside-roots", _adadelta(
        d='(torch.sqrt(state["acc_delta"]) + eps) / (torch.sqrt(r) + eps) * g'),
     "ε outside the roots"),
    ("adadelta_step", "new-u-in-numerator", """
        def adadelta_step(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                          maximize=False):
            g = -grad if maximize else grad
            if weight_decay != 0:
                g = g + weight_decay * param
            r = rho * state["square_avg"] + (1 - rho) * g * g
            u = rho * state["acc_delta"] + (1 - rho) * g * g
            d = torch.sqrt(u + eps) / torch.sqrt(r + eps) * g
            return param - lr * d, {**state, "step": state["step"] + 1, "square_avg": r,
                                    "acc_delta": u}
        """, None),
    ("adadelta_step", "lr-ignored", _adadelta(update="param - d"),
     "the learning rate is ignored"),
    ("adadelta_step", "maximize-after-weight-decay", _adadelta().replace(
        "g = -grad if maximize else grad\n    if weight_decay != 0:\n"
        "        g = g + weight_decay * param",
        "g = grad + weight_decay * param\n    if maximize:\n        g = -g"),
     "negate the gradient first, then add λθ"),
    ("nadam_init", "step-as-tensor", """
        def nadam_init(param):
            return {"step": torch.tensor(0.0), "mu_product": 1.0,
                    "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
        """, "the Python int 1"),
    ("nadam_init", "product-starts-at-zero", """
        def nadam_init(param):
            return {"step": 0, "mu_product": 0.0, "exp_avg": torch.zeros_like(param),
                    "exp_avg_sq": torch.zeros_like(param)}
        """, "mu_product starts as the Python float 1.0"),
    ("nadam_init", "product-as-tensor", """
        def nadam_init(param):
            return {"step": 0, "mu_product": torch.ones_like(param),
                    "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
        """, "mu_product starts as the Python float 1.0"),
    ("nadam_step", "mu-now-in-look-ahead", _nadam(mu_next="mu"),
     "the look-ahead uses μ_t instead of μ_{t+1}"),
    ("nadam_step", "no-v-bias-correction", _nadam(d="torch.sqrt(v) + eps"),
     "no bias correction of v"),
    ("nadam_step", "no-warm-up", _nadam(mu="beta1", mu_next="beta1"), None),
    ("nadam_step", "product-not-updated", _nadam(product='state["mu_product"]'), None),
    ("nadam_step", "maximize-after-weight-decay", _nadam().replace(
        "g = -grad if maximize else grad\n    if weight_decay != 0:\n"
        "        g = g + weight_decay * param",
        "g = grad + weight_decay * param\n    if maximize:\n        g = -g"),
     "negate the gradient first, then add λθ"),
    ("rmsprop_nesterov_init", "step-as-tensor", """
        def rmsprop_nesterov_init(param):
            return {"step": torch.tensor(0.0), "square_avg": torch.zeros_like(param),
                    "velocity": torch.zeros_like(param)}
        """, "the Python int 1"),
    ("rmsprop_nesterov_init", "float32-cpu-zeros", """
        def rmsprop_nesterov_init(param):
            return {"step": 0, "square_avg": torch.zeros(param.shape),
                    "velocity": torch.zeros(param.shape)}
        """, "returned a float32 tensor for float64 input"),
    ("rmsprop_nesterov_init", "torch-keys", """
        def rmsprop_nesterov_init(param):
            return {"step": 0, "square_avg": torch.zeros_like(param),
                    "momentum_buffer": torch.zeros_like(param)}
        """, "the state is step, square_avg and velocity"),
    ("rmsprop_nesterov_lookahead", "minus", """
        def rmsprop_nesterov_lookahead(param, state, *, momentum=0.9):
            return param - momentum * state["velocity"]
        """, "the interim point θ + μb"),
    ("rmsprop_nesterov_lookahead", "momentum-forgotten", """
        def rmsprop_nesterov_lookahead(param, state, *, momentum=0.9):
            return param + state["velocity"]
        """, "the interim point θ + μb"),
    ("rmsprop_nesterov_lookahead", "in-place", """
        def rmsprop_nesterov_lookahead(param, state, *, momentum=0.9):
            return param.add_(momentum * state["velocity"])
        """, "modified its argument"),
    ("rmsprop_nesterov_step", "eps-outside-root", _rmsprop_nesterov(
        root="torch.sqrt(r) + eps"), "ε outside the root"),
    ("rmsprop_nesterov_step", "previous-r", _rmsprop_nesterov(
        root='torch.sqrt(eps + state["square_avg"])'),
     "the velocity divides by the root of the previous r"),
    ("rmsprop_nesterov_step", "from-interim-point", _rmsprop_nesterov(
        new_param='param + momentum * state["velocity"] + b'),
     "the step starts from θ, not from the interim point"),
    ("rmsprop_nesterov_step", "one-minus-rho-missing", _rmsprop_nesterov(
        r='rho * state["square_avg"] + grad * grad'), "(1 − ρ) missing from the accumulation"),
    ("rmsprop_nesterov_step", "plain-momentum", _rmsprop_nesterov(
        b='momentum * state["velocity"] + grad / torch.sqrt(eps + r)',
        new_param="param - lr * b"), None),
    ("why_bias_correction", "shrinking-step", _answer("why_bias_correction", '"A"'),
     "not the right choice"),
    ("why_bias_correction", "denominator", _answer("why_bias_correction", '"B"'),
     "not the right choice"),
    ("adagrad_step_ratio", "without-root", _answer("adagrad_step_ratio", "100.0"),
     "not the right value"),
    ("adagrad_step_ratio", "inverted", _answer("adagrad_step_ratio", "0.1"),
     "not the right value"),
    ("eps_outside_the_root", "far-less", _answer("eps_outside_the_root", '"C"'),
     "not the right choice"),
    ("eps_outside_the_root", "same", _answer("eps_outside_the_root", '"A"'),
     "not the right choice"),
    ("why_bias_correction", "undo-momentum", _answer("why_bias_correction", '"C"'),
     "not the right choice"),
    ("adam_first_update", "no-correction-both", _answer(
        "adam_first_update", "(-0.01 * 0.05 / 0.00025**0.5, -0.01 * 0.05 / 0.00025**0.5)"),
     "the corrections divide them"),
    ("adam_first_update", "magnitudes", _answer(
        "adam_first_update", "(0.01, 0.01 * 0.05 / 0.00025**0.5)"), "moves against the gradient"),
    ("adam_first_update", "swapped", _answer(
        "adam_first_update", "(-0.01 * 0.05 / 0.00025**0.5, -0.01)"), "not the right pair"),
    ("adam_first_update", "m-corrected-only", _answer(
        "adam_first_update", "(-0.01 * 0.5 / 0.00025**0.5, -0.01 * 0.05 / 0.00025**0.5)"),
     "the corrections divide them"),
)

def _schedule(factory: str, rate: str) -> str:
    """A factory whose closure returns ``rate``, an expression of ``step`` and the arguments."""
    return (f"def {factory}:\n    def schedule(step):\n        return {rate}\n\n"
            "    return schedule\n")


def _range_test(rate="lr_min * (lr_max / lr_min) ** (t / (steps - 1))",
                smoothed="average / (1 - beta ** (t + 1))",
                set_rate='for group in optimizer.param_groups:\n            group["lr"] = lr',
                order="before") -> str:
    """The solution's range test with one slot filled wrongly; ``order="after"`` records the
    loss of the batch after the optimizer's step."""
    after = ("\n        with torch.no_grad():\n            loss = loss_fn(model(inputs), targets)"
             if order == "after" else "")
    return f"""def range_test(recipe, lr_min, lr_max, steps, *, seed=0, beta=0.8):
    import torch
    model, optimizer, loss_fn, batches = recipe(seed)
    lrs, smoothed, average = [], [], 0.0
    for t in range(steps):
        lr = {rate}
        {set_rate}
        inputs, targets = batches[t % len(batches)]
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(){after}
        average = beta * average + (1 - beta) * loss.item()
        lrs.append(lr)
        smoothed.append({smoothed})
    return lrs, smoothed
"""


SCHEDULES = _group(
    "05-schedules",
    ("step_decay", "continuous", _schedule(
        "step_decay(lr, step_size, gamma=0.1)", "lr * gamma ** (step / step_size)"), None),
    ("step_decay", "decays-at-step-zero", _schedule(
        "step_decay(lr, step_size, gamma=0.1)", "lr * gamma ** (step // step_size + 1)"),
     "the first update uses schedule(0)"),
    ("step_decay", "counts-calls", """
        def step_decay(lr, step_size, gamma=0.1):
            calls = []

            def schedule(step):
                calls.append(step)
                return lr * gamma ** ((len(calls) - 1) // step_size)

            return schedule
        """, None),
    ("step_decay", "tensor-rate", "import torch\n\n" + _schedule(
        "step_decay(lr, step_size, gamma=0.1)", "lr * torch.tensor(gamma) ** (step // step_size)"),
     "return a Python float"),
    ("exponential", "exponent-ahead", _schedule(
        "exponential(lr, gamma)", "lr * gamma ** (step + 1)"), "is the exponent one step ahead?"),
    ("exponential", "gamma-as-rate", _schedule(
        "exponential(lr, gamma)", "lr * math.exp(-gamma * step)"), None),
    ("exponential", "decays-in-place", """
        def exponential(lr, gamma):
            def schedule(step):
                nonlocal lr
                lr = lr * gamma
                return lr

            return schedule
        """, None),
    ("inverse_time", "decay-steps-ignored", _schedule(
        "inverse_time(lr, decay_rate, decay_steps=1)", "lr / (1 + decay_rate * step)"), None),
    ("inverse_time", "staircase", _schedule(
        "inverse_time(lr, decay_rate, decay_steps=1)",
        "lr / (1 + decay_rate * (step // decay_steps))"), None),
    ("inverse_time", "one-missing", _schedule(
        "inverse_time(lr, decay_rate, decay_steps=1)",
        "lr / (decay_rate * step / decay_steps)"), "ZeroDivisionError"),
    ("linear", "no-clamp", _schedule(
        "linear(lr, final_lr, total_steps)",
        "(1 - step / total_steps) * lr + step / total_steps * final_lr"),
     "after total_steps the rate must stay at final_lr"),
    ("linear", "book-k", _schedule(
        "linear(lr, final_lr, total_steps)",
        "(1 - min(step + 1, total_steps) / total_steps) * lr "
        "+ min(step + 1, total_steps) / total_steps * final_lr"),
     "the book's epsilon_k is our schedule(k - 1)"),
    ("linear", "integer-division", _schedule(
        "linear(lr, final_lr, total_steps)",
        "(1 - min(step, total_steps) // total_steps) * lr "
        "+ min(step, total_steps) // total_steps * final_lr"), None),
    ("linear", "ends-swapped", _schedule(
        "linear(lr, final_lr, total_steps)",
        "(1 - min(step, total_steps) / total_steps) * final_lr "
        "+ min(step, total_steps) / total_steps * lr"), None),
    ("cosine", "climbs-back", _schedule(
        "cosine(lr, total_steps, final_lr=0.0)",
        "final_lr + (lr - final_lr) * (1 + math.cos(math.pi * step / total_steps)) / 2"),
     "the cosine must not climb back up"),
    ("cosine", "pi-missing", _schedule(
        "cosine(lr, total_steps, final_lr=0.0)",
        "final_lr + (lr - final_lr) * (1 + math.cos(min(step, total_steps) / total_steps)) / 2"),
     None),
    ("cosine", "floor-ignored", _schedule(
        "cosine(lr, total_steps, final_lr=0.0)",
        "lr * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)) / 2"),
     "with final_lr=0.01"),
    ("cosine", "half-missing", _schedule(
        "cosine(lr, total_steps, final_lr=0.0)",
        "final_lr + (lr - final_lr) * (1 + math.cos(math.pi * min(step, total_steps) "
        "/ total_steps))"),
     "the first update uses schedule(0)"),
    ("warmup", "clock-not-shifted", """
        def warmup(schedule, warmup_steps, start_factor=0.0):
            def warmed_up(step):
                if step >= warmup_steps:
                    return schedule(step)
                return schedule(0) * (start_factor + (1 - start_factor) * step / warmup_steps)

            return warmed_up
        """, "shift its clock by warmup_steps"),
    ("warmup", "ramps-the-schedule", """
        def warmup(schedule, warmup_steps, start_factor=0.0):
            def warmed_up(step):
                if step >= warmup_steps:
                    return schedule(step - warmup_steps)
                return schedule(step) * (start_factor + (1 - start_factor) * step / warmup_steps)

            return warmed_up
        """, None),
    ("warmup", "ramp-one-step-short", """
        def warmup(schedule, warmup_steps, start_factor=0.0):
            def warmed_up(step):
                if step >= warmup_steps:
                    return schedule(step - warmup_steps)
                ramp = step / max(warmup_steps - 1, 1)
                return schedule(0) * (start_factor + (1 - start_factor) * ramp)

            return warmed_up
        """, None),
    ("warmup", "start-factor-ignored", """
        def warmup(schedule, warmup_steps, start_factor=0.0):
            def warmed_up(step):
                if step >= warmup_steps:
                    return schedule(step - warmup_steps)
                return schedule(0) * step / warmup_steps

            return warmed_up
        """, "start_factor=0.2"),
    ("polynomial", "power-on-elapsed", _schedule(
        "polynomial(lr, total_steps, final_lr=0.0, power=1.0)",
        "(lr - final_lr) * (1 - (min(step, total_steps) / total_steps) ** power) + final_lr"),
     "the remaining fraction of the run"),
    ("polynomial", "floor-ignored", _schedule(
        "polynomial(lr, total_steps, final_lr=0.0, power=1.0)",
        "lr * (1 - min(step, total_steps) / total_steps) ** power"), "with final_lr=0.01"),
    ("polynomial", "scaled-by-lr", _schedule(
        "polynomial(lr, total_steps, final_lr=0.0, power=1.0)",
        "lr * (1 - min(step, total_steps) / total_steps) ** power + final_lr"),
     "scaled by lr instead of lr − final_lr"),
    ("polynomial", "no-clamp", _schedule(
        "polynomial(lr, total_steps, final_lr=0.0, power=1.0)",
        "(lr - final_lr) * abs(1 - step / total_steps) ** power + final_lr"),
     "the rate stays at final_lr after total_steps"),
    ("inverse_sqrt", "warmup-ignored", _schedule(
        "inverse_sqrt(lr, warmup_steps=0)", "lr / math.sqrt(step + 1)"),
     "warmup_steps is ignored"),
    ("inverse_sqrt", "no-root", _schedule(
        "inverse_sqrt(lr, warmup_steps=0)",
        "lr * max(warmup_steps, 1) / (step + max(warmup_steps, 1))"),
     "the square root is missing"),
    ("inverse_sqrt", "plus-one", _schedule(
        "inverse_sqrt(lr, warmup_steps=0)",
        "lr * math.sqrt(max(warmup_steps, 1) / (step + 1))"),
     "√(w / (t + 1)) instead of √(w / (t + w))"),
    ("inverse_sqrt", "sqrt-of-t", _schedule(
        "inverse_sqrt(lr, warmup_steps=0)", "lr / math.sqrt(max(step, 1))"), None),
    ("cosine_restarts", "mult-ignored", _schedule(
        "cosine_restarts(lr, first_period, period_mult=1, final_lr=0.0)",
        "final_lr + (lr - final_lr) * (1 + math.cos(math.pi * (step % first_period) "
        "/ first_period)) / 2"),
     "period_mult is ignored"),
    ("cosine_restarts", "linear-periods", """
        def cosine_restarts(lr, first_period, period_mult=1, final_lr=0.0):
            def schedule(step):
                i, t = 0, step
                while t >= first_period * (1 + i * (period_mult - 1)):
                    t -= first_period * (1 + i * (period_mult - 1))
                    i += 1
                period = first_period * (1 + i * (period_mult - 1))
                return final_lr + (lr - final_lr) * (1 + math.cos(math.pi * t / period)) / 2

            return schedule
        """, "the periods last 2, 4, 8, 16 steps"),
    ("cosine_restarts", "reaches-floor", """
        def cosine_restarts(lr, first_period, period_mult=1, final_lr=0.0):
            def schedule(step):
                period, t = first_period, step
                while t >= period:
                    t -= period
                    period *= period_mult
                span = max(period - 1, 1)
                return final_lr + (lr - final_lr) * (1 + math.cos(math.pi * t / span)) / 2

            return schedule
        """, "one step before its restart"),
    ("cosine_restarts", "floor-ignored", """
        def cosine_restarts(lr, first_period, period_mult=1, final_lr=0.0):
            def schedule(step):
                period, t = first_period, step
                while t >= period:
                    t -= period
                    period *= period_mult
                return lr * (1 + math.cos(math.pi * t / period)) / 2

            return schedule
        """, "final_lr is ignored"),
    ("one_cycle", "peak-one-late", """
        def one_cycle(max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
            start_lr, peak, last = max_lr / div_factor, pct_start * total_steps, total_steps - 1
            min_lr = start_lr / final_div_factor

            def schedule(step):
                if step >= last:
                    return min_lr
                lr_from, lr_to, f = ((start_lr, max_lr, step / peak) if step <= peak
                                     else (max_lr, min_lr, (step - peak) / (last - peak)))
                return lr_to + (lr_from - lr_to) / 2 * (1 + math.cos(math.pi * f))

            return schedule
        """, "the peak is at step u = 0.5 * 10 - 1 = 4"),
    ("one_cycle", "final-from-max", """
        def one_cycle(max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
            start_lr, peak, last = max_lr / div_factor, pct_start * total_steps - 1, total_steps - 1
            min_lr = max_lr / final_div_factor

            def schedule(step):
                if step >= last:
                    return min_lr
                lr_from, lr_to, f = ((start_lr, max_lr, step / peak) if step <= peak
                                     else (max_lr, min_lr, (step - peak) / (last - peak)))
                return lr_to + (lr_from - lr_to) / 2 * (1 + math.cos(math.pi * f))

            return schedule
        """, "max_lr / final_div_factor instead of max_lr / div_factor / final_div_factor"),
    ("one_cycle", "linear-phases", """
        def one_cycle(max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
            start_lr, peak, last = max_lr / div_factor, pct_start * total_steps - 1, total_steps - 1
            min_lr = start_lr / final_div_factor

            def schedule(step):
                if step >= last:
                    return min_lr
                lr_from, lr_to, f = ((start_lr, max_lr, step / peak) if step <= peak
                                     else (max_lr, min_lr, (step - peak) / (last - peak)))
                return lr_from + (lr_to - lr_from) * f

            return schedule
        """, "straight lines instead of half cosines"),
    ("one_cycle", "ends-at-total-steps", """
        def one_cycle(max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
            start_lr, peak, last = max_lr / div_factor, pct_start * total_steps - 1, total_steps
            min_lr = start_lr / final_div_factor

            def schedule(step):
                if step >= last:
                    return min_lr
                lr_from, lr_to, f = ((start_lr, max_lr, step / peak) if step <= peak
                                     else (max_lr, min_lr, (step - peak) / (last - peak)))
                return lr_to + (lr_from - lr_to) / 2 * (1 + math.cos(math.pi * f))

            return schedule
        """, "the descent ends at step total_steps instead of total_steps − 1"),
    ("range_test", "linear-rates", _range_test(
        rate="lr_min + (lr_max - lr_min) * t / (steps - 1)"),
     "the rates are spaced linearly instead of geometrically"),
    ("range_test", "never-reaches-max", _range_test(
        rate="lr_min * (lr_max / lr_min) ** (t / steps)"), "never reaches lr_max"),
    ("range_test", "no-bias-correction", _range_test(smoothed="average"),
     "not bias-corrected"),
    ("range_test", "raw-losses", _range_test(smoothed="loss.item()"),
     "the losses are not smoothed"),
    ("range_test", "rate-not-set", _range_test(set_rate="pass"), None),
    ("range_test", "loss-after-step", _range_test(order="after"), None),
    ("robbins_monro_schedules", "with-inverse-sqrt",
     _answer("robbins_monro_schedules", '{"C", "D"}'), "not the right set"),
    ("robbins_monro_schedules", "with-cosine-to-zero",
     _answer("robbins_monro_schedules", '{"C", "F"}'), "not the right set"),
    ("exponential_budget", "first-term-missing", _answer("exponential_budget", "0.9"),
     "not the right value"),
    ("exponential_budget", "lr-forgotten", _answer("exponential_budget", "10.0"),
     "not the right value"),
    ("too_large_learning_rate", "too-small", _answer("too_large_learning_rate", '"A"'),
     "not the right choice"),
    ("too_large_learning_rate", "batch-size", _answer("too_large_learning_rate", '"B"'),
     "not the right choice"),
    ("too_large_learning_rate", "about-right", _answer("too_large_learning_rate", '"D"'),
     "not the right choice"),
)

_TRAIN = """
    def train_with_early_stopping(model, loss_fn, optimizer, train, val, *, epochs, batch_size,
                                  patience, generator):
        X, y = train
        history = {{"train_loss": [], "val_loss": []}}
        best_loss, best_epoch, best_weights, stopped_epoch, waited = math.inf, None, None, None, 0
        for epoch in {epochs}:
            model.train()
            losses = []
            for xb, yb in minibatches(X, y, batch_size, generator=generator):
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                optimizer.step()
                losses.append((loss.item(), xb.shape[0]))
            history["train_loss"].append({train_loss})
            model.eval()
            with torch.no_grad():
                val_loss = loss_fn(model(val[0]), val[1]).item()
            history["val_loss"].append(val_loss)
            if val_loss < best_loss:
                best_loss, best_epoch, waited = val_loss, epoch, 0
                best_weights = {best_weights}
            else:
                waited += 1
                if waited {stop} patience:
                    stopped_epoch = epoch
                    break
        {restore}
        return best_epoch, stopped_epoch, history
    """


def _train(**parts: str) -> str:
    right = dict(epochs="range(1, epochs + 1)",
                 train_loss="sum(v * n for v, n in losses) / sum(n for _, n in losses)",
                 best_weights="{k: t.detach().clone() for k, t in model.state_dict().items()}",
                 stop=">=", restore="model.load_state_dict(best_weights)")
    return _TRAIN.format(**{**right, **parts})


_SAVE = """
    def save_checkpoint(path, *, model, optimizer, epoch, generator):
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        torch.save({{"epoch": {epoch}, "model": {model}, "optimizer": {optimizer},
                    "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                    "cuda_rng": cuda_rng}}, path)
    """

_LOAD = """
    def load_checkpoint(path, *, model, optimizer, generator):
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["model"])
        {restore}
        return saved["epoch"]
    """

_RESTORE = ('optimizer.load_state_dict(saved["optimizer"])',
            'generator.set_state(saved["generator"])', 'torch.set_rng_state(saved["torch_rng"])',
            'if saved["cuda_rng"] is not None:\n'
            '            torch.cuda.set_rng_state_all(saved["cuda_rng"])')


def _save(**parts: str) -> str:
    right = dict(epoch="epoch", model="model.state_dict()", optimizer="optimizer.state_dict()")
    return _SAVE.format(**{**right, **parts})


def _load(forgets: str | None = None) -> str:
    """The loader without the restoring lines that mention ``forgets``."""
    kept = [line for line in _RESTORE if forgets is None or forgets not in line]
    return _LOAD.format(restore="\n        ".join(kept))


MINIBATCH = _group(
    "06-minibatch",
    ("minibatches", "last-batch-dropped", """
        def minibatches(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
            n = X.shape[0]
            size = n if batch_size is None else batch_size
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            for start in range(0, n - size + 1, size):
                yield X[order[start:start + size]], y[order[start:start + size]]
        """, "is the last, shorter batch missing?"),
    ("minibatches", "generator-ignored", """
        def minibatches(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
            n = X.shape[0]
            size = n if batch_size is None else batch_size
            order = torch.randperm(n) if shuffle else torch.arange(n)
            end = n - n % size if drop_last else n
            for start in range(0, end, size):
                yield X[order[start:start + size]], y[order[start:start + size]]
        """, "one torch.randperm(n, generator=generator)"),
    ("minibatches", "shuffled-separately", """
        def minibatches(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
            n = X.shape[0]
            size = n if batch_size is None else batch_size
            x_order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            y_order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            end = n - n % size if drop_last else n
            for start in range(0, end, size):
                yield X[x_order[start:start + size]], y[y_order[start:start + size]]
        """, "the rows of X_batch and y_batch do not belong together"),
    ("minibatches", "with-replacement", """
        def minibatches(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
            n = X.shape[0]
            size = n if batch_size is None else batch_size
            for start in range(0, n - size + 1 if drop_last else n, size):
                if shuffle:
                    index = torch.randint(n, (min(size, n - start),), generator=generator)
                else:
                    index = torch.arange(start, min(start + size, n))
                yield X[index], y[index]
        """, "sampling without replacement"),
    ("minibatches", "drops-a-full-last-batch", """
        def minibatches(X, y, batch_size, *, shuffle=True, drop_last=False, generator=None):
            n = X.shape[0]
            size = n if batch_size is None else batch_size
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            for start in range(0, n - size if drop_last else n, size):
                yield X[order[start:start + size]], y[order[start:start + size]]
        """, "batch sizes [5, 5, 5], expected [5, 5, 5, 5]"),
    ("train_with_early_stopping", "best-not-restored", _train(restore=""),
     "the best epoch's weight (1.0) must be loaded back"),
    ("train_with_early_stopping", "one-epoch-late", _train(stop=">"), "(then stop)"),
    ("train_with_early_stopping", "epochs-from-zero", _train(epochs="range(epochs)"),
     "epochs count from 1"),
    ("train_with_early_stopping", "unweighted-mean", _train(
        train_loss="sum(v for v, _ in losses) / len(losses)"), "weighted by batch size"),
    ("train_with_early_stopping", "weights-not-cloned", _train(
        best_weights="model.state_dict()"), "must be loaded back"),
    ("save_checkpoint", "whole-model", _save(model="model"), "refuses the checkpoint"),
    ("save_checkpoint", "optimizer-object", _save(optimizer="optimizer"),
     "refuses the checkpoint"),
    ("save_checkpoint", "epoch-as-tensor", _save(epoch="torch.tensor(epoch)"),
     "must return the saved epoch"),
    ("save_checkpoint", "weights-only", """
        def save_checkpoint(path, *, model, optimizer, epoch, generator):
            torch.save(model.state_dict(), path)
        """, None),
    ("load_checkpoint", "optimizer-forgotten", _load("optimizer"),
     "the optimizer's state (Adam's moments and step counts) was not restored"),
    ("load_checkpoint", "generator-forgotten", _load("generator"),
     "the data-order generator was not restored"),
    ("load_checkpoint", "global-rng-forgotten", _load("torch.set_rng_state"),
     "torch's global random generator was not restored"),
    ("load_checkpoint", "next-epoch", """
        def load_checkpoint(path, *, model, optimizer, generator):
            saved = torch.load(path, weights_only=True)
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            return saved["epoch"] + 1
        """, "must return the saved epoch"),
    ("updates_per_epoch", "both-rounded-up", _answer("updates_per_epoch", "(16, 16)"),
     "not the right pair"),
    ("updates_per_epoch", "swapped", _answer("updates_per_epoch", "(15, 16)"),
     "not the right pair"),
    ("unseen_fraction", "one-half", _answer("unseen_fraction", "0.5"), "not the right value"),
    ("unseen_fraction", "seen-fraction", _answer("unseen_fraction", "1 - math.exp(-1)"),
     "not the right value"),
    ("checkpoint_contents", "weights-and-optimizer",
     _answer("checkpoint_contents", '{"A", "B"}'), "not the right set"),
    ("checkpoint_contents", "with-gradients",
     _answer("checkpoint_contents", '{"A", "B", "C", "D", "F"}'), "not the right set"),
    ("scaled_learning_rate", "square-root-rule",
     _answer("scaled_learning_rate", "0.1 * math.sqrt(8)"), "what rate must that one step use"),
    ("scaled_learning_rate", "unchanged", _answer("scaled_learning_rate", "0.1"),
     "what rate must that one step use"),
    ("scaled_learning_rate", "divided", _answer("scaled_learning_rate", "0.1 / 8"),
     "what rate must that one step use"),
    ("run_with_too_large_lr", "overfitting-run", _answer("run_with_too_large_lr", '"D"'),
     "not the right run"),
    ("run_with_too_large_lr", "fine-run", _answer("run_with_too_large_lr", '"C"'),
     "not the right run"),
    ("run_with_too_small_lr", "overfitting-run", _answer("run_with_too_small_lr", '"D"'),
     "not the right run"),
    ("run_with_too_small_lr", "fine-run", _answer("run_with_too_small_lr", '"C"'),
     "not the right run"),
    ("fix_for_run_d", "smaller-rate", _answer("fix_for_run_d", '"B"'), "not the right choice"),
    ("fix_for_run_d", "nothing", _answer("fix_for_run_d", '"C"'), "not the right choice"),
    ("fix_for_run_d", "larger-rate", _answer("fix_for_run_d", '"A"'), "not the right choice"),
)

LOSSES = _group(
    "07-losses",
    ("mse", "sum-not-mean", """
        def mse(pred, target):
            return ((pred - target) ** 2).sum()
        """, "the sum of the squared errors instead of their mean"),
    ("mse", "absolute-error", """
        def mse(pred, target):
            return (pred - target).abs().mean()
        """, "the mean absolute error instead of the squared one"),
    ("mse", "mean-over-rows", """
        def mse(pred, target):
            return ((pred - target) ** 2).sum() / pred.shape[0]
        """, "average over pred.numel(), not over the rows"),
    ("mse", "torch-mse-loss", """
        def mse(pred, target):
            return F.mse_loss(pred, target)
        """, "which this exercise asks you to implement yourself"),
    ("mse_grad", "no-factor-2", """
        def mse_grad(pred, target):
            return (pred - target) / pred.numel()
        """, "the factor 2 of the square is missing"),
    ("mse_grad", "gradient-of-the-sum", """
        def mse_grad(pred, target):
            return 2 * (pred - target)
        """, "without the 1/n of the mean"),
    ("mse_grad", "sign-flipped", """
        def mse_grad(pred, target):
            return 2 * (target - pred) / pred.numel()
        """, "the sign is flipped"),
    ("mse_grad", "per-row", """
        def mse_grad(pred, target):
            return 2 * (pred - target) / pred.shape[0]
        """, "divides by pred.numel() = 10"),
    ("mse_grad", "autograd", """
        def mse_grad(pred, target):
            pred = pred.detach().clone().requires_grad_()
            ((pred - target) ** 2).mean().backward()
            return pred.grad
        """, "which this exercise asks you to implement yourself"),
    ("log_softmax", "no-max-shift", """
        def log_softmax(z, dim=-1):
            return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))
        """, "without the max shift"),
    ("log_softmax", "log-of-softmax", """
        def log_softmax(z, dim=-1):
            e = torch.exp(z - z.amax(dim=dim, keepdim=True))
            return torch.log(e / e.sum(dim=dim, keepdim=True))
        """, "do not take the log of a softmax that underflowed"),
    ("log_softmax", "whole-tensor-max-and-sum", """
        def log_softmax(z, dim=-1):
            shifted = z - z.max()
            return shifted - torch.log(torch.exp(shifted).sum())
        """, "the log-sum-exp is taken over the whole tensor"),
    ("log_softmax", "last-dim-only", """
        def log_softmax(z, dim=-1):
            shifted = z - z.amax(dim=-1, keepdim=True)
            return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))
        """, "each column is a distribution"),
    ("log_softmax", "torch-logsumexp", """
        def log_softmax(z, dim=-1):
            return z - torch.logsumexp(z, dim=dim, keepdim=True)
        """, "which this exercise asks you to implement yourself"),
    ("cross_entropy", "no-max-shift", """
        def cross_entropy(logits, targets):
            log_p = logits - torch.log(torch.exp(logits).sum(dim=1, keepdim=True))
            return -log_p[torch.arange(logits.shape[0]), targets].mean()
        """, "use your stable log_softmax"),
    ("cross_entropy", "mean-over-classes", """
        def cross_entropy(logits, targets):
            picked = log_softmax(logits, dim=1)[torch.arange(logits.shape[0]), targets]
            return -picked.sum() / logits.numel()
        """, "the mean is over the N·K entries"),
    ("cross_entropy", "sum-not-mean", """
        def cross_entropy(logits, targets):
            picked = log_softmax(logits, dim=1)[torch.arange(logits.shape[0]), targets]
            return -picked.sum()
        """, "the sum over the batch instead of the mean"),
    ("cross_entropy", "sign-flipped", """
        def cross_entropy(logits, targets):
            picked = log_softmax(logits, dim=1)[torch.arange(logits.shape[0]), targets]
            return picked.mean()
        """, "the sign is flipped"),
    ("cross_entropy", "normalised-over-the-batch", """
        def cross_entropy(logits, targets):
            picked = log_softmax(logits, dim=0)[torch.arange(logits.shape[0]), targets]
            return -picked.mean()
        """, "normalise along dim 1"),
    ("cross_entropy", "torch-cross-entropy", """
        def cross_entropy(logits, targets):
            return F.cross_entropy(logits, targets)
        """, "which this exercise asks you to implement yourself"),
    ("cross_entropy_grad", "no-1-over-N", """
        def cross_entropy_grad(logits, targets):
            probs = torch.exp(log_softmax(logits, dim=1))
            one_hot = torch.zeros_like(logits)
            one_hot[torch.arange(logits.shape[0]), targets] = 1.0
            return probs - one_hot
        """, "(softmax - one-hot) / N with N = 2"),
    ("cross_entropy_grad", "divided-by-NK", """
        def cross_entropy_grad(logits, targets):
            probs = torch.exp(log_softmax(logits, dim=1))
            one_hot = torch.zeros_like(logits)
            one_hot[torch.arange(logits.shape[0]), targets] = 1.0
            return (probs - one_hot) / logits.numel()
        """, "divided by N·K instead of N"),
    ("cross_entropy_grad", "sign-flipped", """
        def cross_entropy_grad(logits, targets):
            probs = torch.exp(log_softmax(logits, dim=1))
            one_hot = torch.zeros_like(logits)
            one_hot[torch.arange(logits.shape[0]), targets] = 1.0
            return (one_hot - probs) / logits.shape[0]
        """, "one-hot minus softmax"),
    ("cross_entropy_grad", "no-one-hot", """
        def cross_entropy_grad(logits, targets):
            return torch.exp(log_softmax(logits, dim=1)) / logits.shape[0]
        """, "the one-hot target is missing"),
    ("cross_entropy_grad", "naive-softmax", """
        def cross_entropy_grad(logits, targets):
            e = torch.exp(logits)
            probs = e / e.sum(dim=1, keepdim=True)
            one_hot = torch.zeros_like(logits)
            one_hot[torch.arange(logits.shape[0]), targets] = 1.0
            return (probs - one_hot) / logits.shape[0]
        """, "returned a non-finite value"),
    ("cross_entropy_grad", "autograd", """
        def cross_entropy_grad(logits, targets):
            logits = logits.detach().clone().requires_grad_()
            return torch.autograd.grad(cross_entropy(logits, targets), logits)[0]
        """, "which this exercise asks you to implement yourself"),
    ("kl_div", "wrong-direction", """
        def kl_div(log_p, log_q):
            return (torch.exp(log_p) * (log_p - log_q)).sum() / log_p.shape[0]
        """, "the other direction"),
    ("kl_div", "mean-over-elements", """
        def kl_div(log_p, log_q):
            return (torch.exp(log_q) * (log_q - log_p)).mean()
        """, "the mean over every element instead of the batch mean"),
    ("kl_div", "sum-over-batch", """
        def kl_div(log_p, log_q):
            return (torch.exp(log_q) * (log_q - log_p)).sum()
        """, "divide by the 5 rows"),
    ("kl_div", "log-weights", """
        def kl_div(log_p, log_q):
            return (log_q * (log_q - log_p)).sum() / log_p.shape[0]
        """, "the weights are log q instead of q"),
    ("kl_div", "torch-kl-div", """
        def kl_div(log_p, log_q):
            return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)
        """, "which this exercise asks you to implement yourself"),
    ("initial_loss", "probability", _answer("initial_loss", "0.1"), "not the right value"),
    ("initial_loss", "bits", _answer("initial_loss", "math.log2(10)"), "not the right value"),
    ("initial_loss", "zero", _answer("initial_loss", "0.0"), "not the right value"),
    ("logit_gradient", "no-1-over-N", _answer("logit_gradient", "(-0.3, 0.2, 0.1)"),
     "not the right gradient"),
    ("logit_gradient", "sign-flipped", _answer("logit_gradient", "(0.075, -0.05, -0.025)"),
     "not the right gradient"),
    ("logit_gradient", "probabilities-over-N", _answer("logit_gradient", "(0.175, 0.05, 0.025)"),
     "not the right gradient"),
    ("kl_both_ways", "swapped", _answer("kl_both_ways", "(0.3680642, 0.5108256)"),
     "not the right pair"),
    ("kl_both_ways", "bits", _answer("kl_both_ways", "(0.7369656, 0.5310044)"),
     "not the right pair"),
    ("kl_both_ways", "symmetric", _answer("kl_both_ways", "(0.5108256, 0.5108256)"),
     "not the right pair"),
)

_RING = '''
def ring_all_reduce(tensors, send):
    k = len(tensors)
    chunks = [list(t.reshape(-1).clone().tensor_split(k)) for t in tensors]
    for s in range(k - 1):  # reduce-scatter
        received = [send(r, {peer}, chunks[r][{scatter}]) for r in range(k)]
        for r, payload in enumerate(received):
            dst, c = {peer}, {scatter}
            chunks[dst][c] = chunks[dst][c] + payload
    for s in range(k - 1):  # all-gather
        received = [send(r, {peer}, chunks[r][{gather}]) for r in range(k)]
        for r, payload in enumerate(received):
            dst, c = {peer}, {gather}
            chunks[dst][c] = {store}
    return [torch.cat(c).reshape(tensors[0].shape) for c in chunks]
'''
"""The ring all-reduce of exercise 09 with its neighbour, its chunk schedule and what the
all-gather does with a chunk as slots."""


SCALING = _group(
    "09-scaling",
    ("shard", "strided", """
        def shard(X, y, rank, world_size):
            return X[rank::world_size], y[rank::world_size]
        """, "rank 0 gets rows 0-2"),
    ("shard", "floor-blocks-rest-last", """
        def shard(X, y, rank, world_size):
            size = X.shape[0] // world_size
            end = X.shape[0] if rank == world_size - 1 else (rank + 1) * size
            return X[rank * size:end], y[rank * size:end]
        """, "one row longer"),
    ("shard", "torch-chunk", """
        def shard(X, y, rank, world_size):
            return X.chunk(world_size)[rank], y.chunk(world_size)[rank]
        """, "one row longer"),
    ("shard", "floor-blocks-rows-lost", """
        def shard(X, y, rank, world_size):
            size = X.shape[0] // world_size
            return X[rank * size:(rank + 1) * size], y[rank * size:(rank + 1) * size]
        """, "one row longer"),
    ("sharded_gradient", "plain-average", """
        def sharded_gradient(model, loss_fn, X, y, world_size):
            params = list(model.parameters())
            total = [torch.zeros_like(p) for p in params]
            shards = [shard(X, y, r, world_size) for r in range(world_size)]
            shards = [(a, b) for a, b in shards if a.shape[0] > 0]
            for X_r, y_r in shards:
                for t, g in zip(total, torch.autograd.grad(loss_fn(model(X_r), y_r), params)):
                    t += g / len(shards)
            return total
        """, "the plain average weights the rows unequally"),
    ("sharded_gradient", "sum-of-means", """
        def sharded_gradient(model, loss_fn, X, y, world_size):
            params = list(model.parameters())
            total = [torch.zeros_like(p) for p in params]
            for r in range(world_size):
                X_r, y_r = shard(X, y, r, world_size)
                if X_r.shape[0] > 0:
                    for t, g in zip(total, torch.autograd.grad(loss_fn(model(X_r), y_r), params)):
                        t += g
            return total
        """, "each shard's gradient is already a mean"),
    ("sharded_gradient", "sizes-not-shares", """
        def sharded_gradient(model, loss_fn, X, y, world_size):
            params = list(model.parameters())
            total = [torch.zeros_like(p) for p in params]
            for r in range(world_size):
                X_r, y_r = shard(X, y, r, world_size)
                if X_r.shape[0] > 0:
                    for t, g in zip(total, torch.autograd.grad(loss_fn(model(X_r), y_r), params)):
                        t += g * X_r.shape[0]
            return total
        """, "divide by the n rows of the global batch"),
    ("sharded_gradient", "weighted-then-averaged", """
        def sharded_gradient(model, loss_fn, X, y, world_size):
            params = list(model.parameters())
            total = [torch.zeros_like(p) for p in params]
            for r in range(world_size):
                X_r, y_r = shard(X, y, r, world_size)
                if X_r.shape[0] > 0:
                    for t, g in zip(total, torch.autograd.grad(loss_fn(model(X_r), y_r), params)):
                        t += g * (X_r.shape[0] / X.shape[0]) / world_size
            return total
        """, "do not divide by k as well"),
    ("sharded_gradient", "stale-grad", """
        def sharded_gradient(model, loss_fn, X, y, world_size):
            total = [torch.zeros_like(p) for p in model.parameters()]
            for r in range(world_size):
                X_r, y_r = shard(X, y, r, world_size)
                if X_r.shape[0] > 0:
                    (loss_fn(model(X_r), y_r) * (X_r.shape[0] / X.shape[0])).backward()
            return [p.grad.clone() for p in model.parameters()]
        """, "what an earlier step left there must not count"),
    ("accumulated_gradient", "unscaled", """
        def accumulated_gradient(model, loss_fn, X, y, micro_batch):
            model.zero_grad()
            for start in range(0, X.shape[0], micro_batch):
                X_j, y_j = X[start:start + micro_batch], y[start:start + micro_batch]
                loss_fn(model(X_j), y_j).backward()
            return [p.grad.clone() for p in model.parameters()]
        """, "twice too large"),
    ("accumulated_gradient", "divided-by-count", """
        def accumulated_gradient(model, loss_fn, X, y, micro_batch):
            model.zero_grad()
            count = math.ceil(X.shape[0] / micro_batch)
            for start in range(0, X.shape[0], micro_batch):
                (loss_fn(model(X[start:start + micro_batch]), y[start:start + micro_batch])
                 / count).backward()
            return [p.grad.clone() for p in model.parameters()]
        """, "dividing by the number of micro-batches"),
    ("accumulated_gradient", "zeroed-inside-the-loop", """
        def accumulated_gradient(model, loss_fn, X, y, micro_batch):
            n = X.shape[0]
            for start in range(0, n, micro_batch):
                model.zero_grad()
                X_j, y_j = X[start:start + micro_batch], y[start:start + micro_batch]
                (loss_fn(model(X_j), y_j) * (X_j.shape[0] / n)).backward()
            return [p.grad.clone() for p in model.parameters()]
        """, None),
    ("accumulated_gradient", "not-zeroed-first", """
        def accumulated_gradient(model, loss_fn, X, y, micro_batch):
            n = X.shape[0]
            for start in range(0, n, micro_batch):
                X_j, y_j = X[start:start + micro_batch], y[start:start + micro_batch]
                (loss_fn(model(X_j), y_j) * (X_j.shape[0] / n)).backward()
            return [p.grad.clone() for p in model.parameters()]
        """, "what an earlier step left there must not count"),
    ("ring_all_reduce", "no-messages", """
        def ring_all_reduce(tensors, send):
            total = torch.stack(list(tensors)).sum(0)
            return [total.clone() for _ in tensors]
        """, "the sum must travel through send"),
    ("ring_all_reduce", "left-neighbour", _RING.format(
        peer="(r - 1) % k", scatter="(r + s) % k", gather="(r + s - 1) % k",
        store="payload.clone()"), "right neighbour"),
    ("ring_all_reduce", "no-all-gather", _RING.format(
        peer="(r + 1) % k", scatter="(r - s) % k", gather="(r + 1 - s) % k",
        store="payload.clone()").replace("for s in range(k - 1):  # all-gather",
                                         "for s in range(0):  # all-gather"),
     "every worker holds the sum"),
    ("ring_all_reduce", "all-gather-adds", _RING.format(
        peer="(r + 1) % k", scatter="(r - s) % k", gather="(r + 1 - s) % k",
        store="chunks[dst][c] + payload"), "do not add it"),
    ("ring_all_reduce", "inputs-modified", _RING.format(
        peer="(r + 1) % k", scatter="(r - s) % k", gather="(r + 1 - s) % k",
        store="payload.clone()").replace("t.reshape(-1).clone()", "t.reshape(-1)").replace(
            "chunks[dst][c] = chunks[dst][c] + payload", "chunks[dst][c] += payload"),
     "leave the inputs unchanged"),
    ("ring_all_reduce", "torch-chunk", _RING.format(
        peer="(r + 1) % k", scatter="(r - s) % k", gather="(r + 1 - s) % k",
        store="payload.clone()").replace(".tensor_split(k)", ".chunk(k)"), None),
    ("scaled_rate", "ratio-of-workers", _answer("scaled_rate", "0.2 * 24 / 4"),
     "not the right value"),
    ("scaled_rate", "per-worker-batch", _answer("scaled_rate", "0.2 * 32 / 64"),
     "not the right value"),
    ("scaled_rate", "unchanged", _answer("scaled_rate", "0.2"), "not the right value"),
    ("ring_bytes", "twice-the-gradient", _answer("ring_bytes", "2 * 25_000_000 * 4"),
     "not the right value"),
    ("ring_bytes", "numbers-not-bytes", _answer("ring_bytes", "2 * 7 / 8 * 25_000_000"),
     "not the right value"),
    ("ring_bytes", "one-phase", _answer("ring_bytes", "7 / 8 * 25_000_000 * 4"),
     "not the right value"),
    ("allreduce_seconds", "no-latency", _answer("allreduce_seconds", "1.5 * 1e8 / 1e10"),
     "not the right value"),
    ("allreduce_seconds", "one-latency", _answer("allreduce_seconds", "20e-6 + 1.5 * 1e8 / 1e10"),
     "not the right value"),
    ("allreduce_seconds", "whole-gradient-per-step",
     _answer("allreduce_seconds", "6 * 20e-6 + 6 * 1e8 / 1e10"), "not the right value"),
)

def _mlp_forward(z1='X @ params["W1"].T + params["b1"]', a1="torch.tanh(Z1)",
                 z2='A1 @ params["W2"].T + params["b2"]',
                 cache='{"X": X, "Z1": Z1, "A1": A1, "Z2": Z2}'):
    return f"""\
def mlp_forward(X, params):
    Z1 = {z1}
    A1 = {a1}
    Z2 = {z2}
    return Z2, {cache}
"""


def _mlp_backward(probs="torch.softmax(Z2, dim=1)",
                  g2="(probs - F.one_hot(targets, Z2.shape[1]).to(Z2.dtype)) / X.shape[0]",
                  g1='(G2 @ params["W2"]) * (1 - A1 * A1)',
                  grads='{"W1": G1.T @ X, "b1": G1.sum(0), "W2": G2.T @ A1, "b2": G2.sum(0)}'):
    return f"""\
def mlp_backward(cache, params, targets):
    X, Z1, A1, Z2 = cache["X"], cache["Z1"], cache["A1"], cache["Z2"]
    probs = {probs}
    G2 = {g2}
    G1 = {g1}
    return {grads}
"""
"""Exercise 08's forward and backward passes as slots: each mutant fills one wrongly."""


BACKPROP = _group(
    "08-backprop",
    ("mlp_forward", "no-bias", _mlp_forward(z1='X @ params["W1"].T',
                                            z2='A1 @ params["W2"].T'), "a bias left out"),
    ("mlp_forward", "tanh-on-output",
     _mlp_forward(z2='torch.tanh(A1 @ params["W2"].T + params["b2"])'),
     "tanh is applied to the output as well"),
    ("mlp_forward", "relu-hidden", _mlp_forward(a1="torch.relu(Z1)"),
     "the hidden layer uses a ReLU instead of tanh"),
    ("mlp_forward", "cache-pre-activation",
     _mlp_forward(cache='{"X": X, "Z1": Z1, "A1": Z1, "Z2": Z2}'), "the cache's A1 is tanh(Z1)"),
    ("mlp_forward", "weights-not-transposed",
     _mlp_forward(z1='X @ params["W1"] + params["b1"]', z2='A1 @ params["W2"] + params["b2"]'),
     None),
    ("mlp_backward", "no-1/N",
     _mlp_backward(g2="probs - F.one_hot(targets, Z2.shape[1]).to(Z2.dtype)"),
     "the 1/N of the mean is missing"),
    ("mlp_backward", "derivative-at-Z1", _mlp_backward(g1='(G2 @ params["W2"]) * (1 - Z1 * Z1)'),
     "evaluated at the pre-activation"),
    ("mlp_backward", "no-derivative", _mlp_backward(g1='G2 @ params["W2"]'),
     "the derivative of the hidden activation is missing"),
    ("mlp_backward", "activation-for-derivative", _mlp_backward(g1='(G2 @ params["W2"]) * A1'),
     "the activation is used instead of its derivative"),
    ("mlp_backward", "sign-flipped",
     _mlp_backward(g2="(F.one_hot(targets, Z2.shape[1]).to(Z2.dtype) - probs) / X.shape[0]"),
     "the sign is flipped"),
    ("mlp_backward", "transposes-swapped",
     _mlp_backward(grads='{"W1": X.T @ G1, "b1": G1.sum(0), "W2": A1.T @ G2, "b2": G2.sum(0)}'),
     "a transpose swapped"),
    ("mlp_backward", "no-max-shift",
     _mlp_backward(probs="torch.exp(Z2) / torch.exp(Z2).sum(dim=1, keepdim=True)"), "non-finite"),
    ("mlp_backward", "autograd", """
        def mlp_backward(cache, params, targets):
            leaves = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
            A1 = torch.tanh(cache["X"] @ leaves["W1"].T + leaves["b1"])
            F.cross_entropy(A1 @ leaves["W2"].T + leaves["b2"], targets).backward()
            return {k: v.grad for k, v in leaves.items()}
        """, "which this exercise asks you to implement yourself"),
    ("numerical_gradient", "forward-difference", """
        def numerical_gradient(f, x, h=1e-6):
            flat = x.detach().reshape(-1)
            grad = torch.zeros_like(flat)
            base = f(x)
            for i in range(flat.numel()):
                plus = flat.clone()
                plus[i] += h
                grad[i] = (f(plus.view_as(x)) - base) / h
            return grad.view_as(x)
        """, "a forward difference"),
    ("numerical_gradient", "divided-by-h", """
        def numerical_gradient(f, x, h=1e-6):
            flat = x.detach().reshape(-1)
            grad = torch.zeros_like(flat)
            for i in range(flat.numel()):
                plus, minus = flat.clone(), flat.clone()
                plus[i] += h
                minus[i] -= h
                grad[i] = (f(plus.view_as(x)) - f(minus.view_as(x))) / h
            return grad.view_as(x)
        """, "divided by h instead of 2h"),
    ("numerical_gradient", "all-at-once", """
        def numerical_gradient(f, x, h=1e-6):
            return torch.full_like(x, ((f(x + h) - f(x - h)) / (2 * h)).item())
        """, "every coordinate is perturbed at once"),
    ("numerical_gradient", "x-left-perturbed", """
        def numerical_gradient(f, x, h=1e-6):
            grad = torch.zeros_like(x)
            flat, out = x.view(-1), grad.view(-1)
            for i in range(flat.numel()):
                flat[i] += h
                up = f(x)
                flat[i] -= 2 * h
                out[i] = (up - f(x)) / (2 * h)
            return grad
        """, "x must hold its values afterwards"),
    ("numerical_gradient", "restored-by-adding-h", """
        def numerical_gradient(f, x, h=1e-6):
            grad = torch.zeros_like(x)
            flat, out = x.view(-1), grad.view(-1)
            for i in range(flat.numel()):
                flat[i] += h
                up = f(x)
                flat[i] -= 2 * h
                down = f(x)
                flat[i] += h
                out[i] = (up - down) / (2 * h)
            return grad
        """, "modified its argument x"),
    ("numerical_gradient", "autograd", """
        def numerical_gradient(f, x, h=1e-6):
            leaf = x.detach().clone().requires_grad_()
            return torch.autograd.grad(f(leaf), leaf)[0]
        """, "which this exercise asks you to implement yourself"),
    ("gradient_check", "divided-by-analytic", """
        def gradient_check(f, x, analytic, h=1e-6):
            estimate = numerical_gradient(f, x, h)
            return ((estimate - analytic).norm() / analytic.norm()).item()
        """, "divided by ‖analytic‖ only"),
    ("gradient_check", "sum-of-norms", """
        def gradient_check(f, x, analytic, h=1e-6):
            estimate = numerical_gradient(f, x, h)
            return ((estimate - analytic).norm() / (estimate.norm() + analytic.norm())).item()
        """, "divided by the sum of the norms"),
    ("gradient_check", "absolute-error", """
        def gradient_check(f, x, analytic, h=1e-6):
            return (numerical_gradient(f, x, h) - analytic).norm().item()
        """, "the absolute error"),
    ("gradient_check", "largest-difference", """
        def gradient_check(f, x, analytic, h=1e-6):
            return (numerical_gradient(f, x, h) - analytic).abs().max().item()
        """, "the largest elementwise difference"),
    ("gradient_check", "returns-a-tensor", """
        def gradient_check(f, x, analytic, h=1e-6):
            estimate = numerical_gradient(f, x, h)
            return (estimate - analytic).norm() / torch.maximum(estimate.norm(), analytic.norm())
        """, "return a Python float"),
    ("evaluations", "one-sided", _answer("evaluations", "784 * 100 + 100 + 100 * 10 + 10 + 1"),
     "not the right count"),
    ("evaluations", "no-biases", _answer("evaluations", "2 * (784 * 100 + 100 * 10)"),
     "not the right count"),
    ("evaluations", "parameters-only", _answer("evaluations", "784 * 100 + 100 + 100 * 10 + 10"),
     "not the right count"),
    ("pair_relative_error", "over-the-estimate", _answer("pair_relative_error", "0.5 / 5.0"),
     "not the right value"),
    ("pair_relative_error", "over-the-sum",
     _answer("pair_relative_error", "0.5 / (5.0 + math.hypot(3.0, 4.5))"), "not the right value"),
    ("pair_relative_error", "absolute", _answer("pair_relative_error", "0.5"),
     "not the right value"),
    ("weight_gradient", "sign-flipped", _answer("weight_gradient", "-0.7142832"),
     "not the right derivative"),
    ("weight_gradient", "no-tanh-derivative",
     _answer("weight_gradient", "2 * (1 - 1 / (1 + math.exp(-2 * math.tanh(0.25))))"),
     "not the right derivative"),
    ("weight_gradient", "stops-at-the-output",
     _answer("weight_gradient", "1 - 1 / (1 + math.exp(-2 * math.tanh(0.25)))"),
     "not the right derivative"),
)

CONTROLS = [
    Mutant("08-backprop", "mlp_forward", "template", _mlp_forward()),
    Mutant("08-backprop", "mlp_backward", "template", _mlp_backward()),
    Mutant("04-adaptive-optimizers", "adagrad_step", "template", textwrap.dedent(_adagrad())),
    Mutant("04-adaptive-optimizers", "rmsprop_step", "template", textwrap.dedent(_rmsprop())),
    Mutant("04-adaptive-optimizers", "adam_step", "template", textwrap.dedent(_adam())),
    Mutant("04-adaptive-optimizers", "adadelta_step", "template", _adadelta()),
    Mutant("04-adaptive-optimizers", "nadam_step", "template", _nadam()),
    Mutant("04-adaptive-optimizers", "rmsprop_nesterov_step", "template", _rmsprop_nesterov()),
    Mutant("02-initializers", "clip_grad_norm_", "template",
           _CLIP.format(factor="torch.clamp(max_norm / (total + 1e-6), max=1.0)")),
    Mutant("06-minibatch", "train_with_early_stopping", "template", textwrap.dedent(_train())),
    Mutant("06-minibatch", "save_checkpoint", "template", textwrap.dedent(_save())),
    Mutant("06-minibatch", "load_checkpoint", "template", textwrap.dedent(_load())),
    Mutant("09-scaling", "ring_all_reduce", "template", _RING.format(
        peer="(r + 1) % k", scatter="(r - s) % k", gather="(r + 1 - s) % k",
        store="payload.clone()")),
]
"""The templates filled with the right slots: correct implementations, so each must score full
marks, and a mutant made from a template fails because of its one wrong slot."""

MUTANTS: list[Mutant] = [*ACTIVATIONS, *INITIALIZERS, *GRADIENT_DESCENT, *ADAPTIVE, *SCHEDULES,
                         *MINIBATCH, *LOSSES, *SCALING, *BACKPROP]
