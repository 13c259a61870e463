"""nnbolts.grading, the module every hidden test calls: the references pass against themselves,
honest student code passes with every anti-cheat measure on, every mutant in the catalogue
fails with its hint, and tampering is caught or contained."""

import builtins
import inspect
import math
import signal
import sys
import threading
import time
import types
from pathlib import Path

import grading_mutants as M
import jupytext
import numpy
import numpy.testing
import pytest
import torch
import torch.testing

import nnbolts.activations as A
import nnbolts.data as D
import nnbolts.init as I
import nnbolts.optim as O
import nnbolts.schedules as S
from nnbolts import grading as G
from nnbolts.grading import (
    DTYPES,
    RULES,
    Call,
    CheatingSuspected,
    GradingFailure,
    audit_source,
    cases,
    check_elementwise,
    check_function,
    check_initializer,
    check_minibatches,
    check_rule,
    check_schedule,
    devices,
    integrity_check,
    tolerance,
)
from nnbolts.grading._compare import compare
from nnbolts.grading._guard import Watch, _fingerprint, nested_codes

REPO = Path(__file__).resolve().parents[1]
NNBOLTS_ROOT = REPO / "lib" / "nnbolts"

ACTIVATION_NAMES = ["sigmoid", "sigmoid_grad", "tanh", "tanh_grad", "relu", "relu_grad",
                    "leaky_relu", "leaky_relu_grad", "elu", "elu_grad", "silu", "silu_grad",
                    "softmax", "log_softmax", "softmax_grad", "log_softmax_grad"]
INIT_NAMES = ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
              "lecun_uniform_", "lecun_normal_", "zeros_"]


def raises_failure(fn, *args, **kwargs) -> str:
    """Run a check that must fail; return its message."""
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# devices, dtypes, cases, tolerances
# --------------------------------------------------------------------------------------------

def test_devices_dtypes_and_tolerances():
    assert devices()[0] == torch.device("cpu")
    assert (torch.device("cuda", 0) in devices()) == torch.cuda.is_available()
    assert DTYPES == (torch.float32, torch.float64)
    assert tolerance(torch.float32) == (1.3e-6, 1e-5)
    assert tolerance(torch.float64, 2) == (2e-7, 2e-9)


def test_cases_are_seeded_and_equal_across_dtypes():
    first = cases(seed=3, n=4, devices=["cpu"])
    again = cases(seed=3, n=4, devices=["cpu"])
    assert len(first) == 8  # 4 cases x 2 dtypes
    for a, b in zip(first, again):
        assert torch.equal(a.activation_input(), b.activation_input())
    f32, f64 = first[1], first[5]
    assert (f32.dtype, f64.dtype, f32.index, f64.index) == (torch.float32, torch.float64, 1, 1)
    assert torch.allclose(f32.randn(3, 4).double(), f64.randn(3, 4), atol=1e-6)
    special = first[0].activation_input()
    assert 0.0 in special.tolist() and 1e4 in special.tolist()


# --------------------------------------------------------------------------------------------
# the references graded against themselves
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_reference_activation_passes(name):
    fn = getattr(A, name)
    check_elementwise(fn, fn, anti_cheat=False)


@pytest.mark.parametrize("name", INIT_NAMES)
def test_reference_initializer_passes(name):
    fn = getattr(I, name)
    check_initializer(fn, fn, anti_cheat=False)


def test_reference_initializers_with_options_pass():
    check_initializer(I.constant_, I.constant_, kwargs=[{"val": 0.3}], anti_cheat=False)
    check_initializer(I.kaiming_normal_, I.kaiming_normal_, anti_cheat=False,
                      kwargs=[{"nonlinearity": "relu"}, {"a": 0.2, "mode": "fan_out"}])
    check_initializer(I.xavier_uniform_, I.xavier_uniform_, kwargs=[{"gain": 4.0}],
                      requires_grad=True, anti_cheat=False)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_reference_rule_passes(rule):
    spec = RULES[rule]
    check_rule(spec.init, spec.step, rule=rule, anti_cheat=False)


def test_reference_schedules_minibatches_and_fans_pass():
    check_schedule(S.cosine, S.cosine, configs=[dict(lr=0.1, total_steps=50)], steps=80,
                   anti_cheat=False)
    check_schedule(S.step_decay(0.1, 5, 0.5), S.step_decay(0.1, 5, 0.5), anti_cheat=False)
    check_schedule(S.warmup(S.cosine(0.1, 20), 5), S.warmup(S.cosine(0.1, 20), 5), steps=40,
                   anti_cheat=False)
    check_minibatches(D.minibatches, anti_cheat=False)
    check_function(I.fan_in_and_fan_out, I.fan_in_and_fan_out,
                   lambda case: case.randn(*case.shape(min_dims=2)), anti_cheat=False)
    check_function(I.calculate_gain, I.calculate_gain,
                   lambda case: Call(case.choice(["relu", "tanh", "leaky_relu"]), 0.2),
                   devices=["cpu"], dtypes=[torch.float64], anti_cheat=False)


# --------------------------------------------------------------------------------------------
# honest submissions pass with every anti-cheat measure on
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("student, reference", [
    (M.sigmoid, A.sigmoid), (M.sigmoid_grad, A.sigmoid_grad), (M.tanh_grad, A.tanh_grad),
    (M.relu_grad, A.relu_grad), (M.softmax, A.softmax), (M.log_softmax, A.log_softmax),
], ids=lambda x: getattr(x, "__module__", "")[:7])
def test_honest_activation_passes(student, reference):
    check_elementwise(student, reference)


@pytest.mark.parametrize("init, step, rule", [
    (M.adam_init, M.adam_step, "adam"), (M.adamw_init, M.adamw_step, "adamw"),
    (M.sgd_init, M.sgd_step, "sgd")], ids=["adam", "adamw", "sgd"])
def test_honest_rule_passes(init, step, rule):
    check_rule(init, step, rule=rule)


def test_honest_initializers_schedule_and_minibatches_pass():
    check_initializer(M.kaiming_uniform_, I.kaiming_uniform_,
                      kwargs=[{"nonlinearity": "relu"}, {"a": 0.2, "mode": "fan_out"}])
    check_initializer(M.xavier_uniform_, I.xavier_uniform_, kwargs=[{}, {"gain": 4.0}])
    check_schedule(M.cosine, S.cosine, configs=[dict(lr=0.1, total_steps=50)], steps=60)
    check_minibatches(M.minibatches)


@pytest.mark.parametrize("name", ["step_decay", "exponential", "inverse_time", "linear",
                                  "cosine", "warmup"])
def test_honest_schedules_pass_with_the_hidden_tests_configurations(name):
    check_schedule(getattr(M, name), getattr(S, name), configs=M.SCHEDULE_CONFIGS[name],
                   steps=1000)


@pytest.mark.parametrize("student, name", [
    (M.cosine_class, "cosine"), (M.step_decay_class, "step_decay"),
    (M.linear_class, "linear")], ids=["cosine", "step_decay", "linear"])
def test_class_based_schedules_are_not_copies(student, name):
    """An __init__ that stores the hyperparameters, a __call__ that forwards to a method, a
    __repr__ and a one- or two-line formula: the shape of nnbolts' own schedule classes,
    written from the assignment's formulas, not copied."""
    check_schedule(student, getattr(S, name), configs=M.SCHEDULE_CONFIGS[name], steps=1000)


def _exec_student_cell(source: str, namespace: dict) -> dict:
    exec(compile(source, "<ipython-input-7-student>", "exec"), namespace)
    return namespace


_STUDENT_ADAMW = '''
def adam_init(param, *, amsgrad=False):
    state = {"step": 0, "exp_avg": torch.zeros_like(param),
             "exp_avg_sq": torch.zeros_like(param)}
    if amsgrad:
        state["max_exp_avg_sq"] = torch.zeros_like(param)
    return state

def adamw_init(param, *, amsgrad=False):
    return adam_init(param, amsgrad=amsgrad)

def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, weight_decay, amsgrad, True)
'''


def test_delegating_to_the_students_own_code_is_not_a_copy():
    """A one-line adamw_init/adamw_step that calls the student's own Adam (defined in the
    notebook) is the same delegation as a reference written that way: not a copy."""
    namespace = _exec_student_cell(_STUDENT_ADAMW, {"torch": torch})
    _exec_student_cell(inspect.getsource(M._adam), namespace)  # the student's own helper
    check_rule(namespace["adamw_init"], namespace["adamw_step"], rule="adamw")
    check_rule(namespace["adamw_init"], namespace["adamw_step"], rule="adamw",
               reference=(M.adamw_init, M.adamw_step))
    check_rule(namespace["adam_init"], M.adam_step, rule="adam")


def test_generic_bodies_have_no_fingerprint():
    namespace = _exec_student_cell('''
class Schedule:
    def __init__(self, lr, total_steps, final_lr=0.0):
        self.lr, self.total_steps, self.final_lr = lr, total_steps, final_lr

    def __call__(self, step):
        return float(self.value(check_int("step", step, low=0)))

    def __repr__(self):
        return f"schedule(lr={self.lr!r}, total_steps={self.total_steps!r})"

    def __eq__(self, other):
        return type(self) is type(other) and self.lr == other.lr and self.final_lr == 0

    def value(self, t):
        return self.final_lr + (self.lr - self.final_lr) * (1 + math.cos(math.pi * t)) / 2

def step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    return adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                     weight_decay=weight_decay, amsgrad=False, decoupled=True)
''', {})
    cls = namespace["Schedule"]
    for fn in [cls.__init__, cls.__call__, cls.__repr__, cls.__eq__, cls.value,
               namespace["step"]]:
        assert _fingerprint(fn.__code__) is None, fn.__qualname__
    assert _fingerprint(A.sigmoid_grad.__code__) is not None
    assert _fingerprint(S._Warmup.value.__code__) is not None


def test_initializer_with_other_draws_is_accepted_statistically():
    """Right distribution, drawn in another order: accepted (unless exact draws are asked)."""
    check_initializer(M.kaiming_uniform_other_draws_, I.kaiming_uniform_,
                      kwargs=[{"nonlinearity": "relu"}])
    message = raises_failure(check_initializer, M.kaiming_uniform_other_draws_,
                             I.kaiming_uniform_, kwargs=[{"nonlinearity": "relu"}],
                             statistical=False)
    assert "wrong values" in message


def test_public_nnbolts_helper_is_allowed():
    def xavier_uniform_(tensor, gain=1.0, generator=None):
        fan_in, fan_out = I.fan_in_and_fan_out(tensor)
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        with torch.no_grad():
            return tensor.uniform_(-bound, bound, generator=generator)

    check_initializer(xavier_uniform_, I.xavier_uniform_)


def test_public_helper_whose_internals_the_reference_uses_is_allowed():
    """A reference that runs nnbolts' minibatches (a training loop, say) makes minibatches'
    private helpers forbidden to direct calls, but a student may still call minibatches."""
    def epoch_sums(X, y):
        generator = torch.Generator().manual_seed(0)
        return [xb.sum() for xb, _ in D.minibatches(X, y, 4, generator=generator)]

    def student(features, labels):
        sums = []
        for batch, _ in D.minibatches(features, labels, 4,
                                      generator=torch.Generator().manual_seed(0)):
            sums.append(batch.sum())
        return sums

    def make(case):
        return Call(case.randn(10, 3), torch.arange(10, device=case.device))

    check_function(student, epoch_sums, make, n_cases=2)

    def direct(X, y):
        order = D._permutation(10, torch.Generator().manual_seed(0), X.device)
        return [X[chunk].sum() for chunk in order.split(4)]

    with pytest.raises(CheatingSuspected, match="nnbolts.data._permutation"):
        check_function(direct, epoch_sums, make, n_cases=2)


# --------------------------------------------------------------------------------------------
# the mutant catalogue: every wrong implementation fails, with its hint
# --------------------------------------------------------------------------------------------

def _run_mutant(kind, fn, kwargs):
    kwargs = dict(kwargs)
    if kind == "rule":
        return check_rule(fn[0], fn[1], **kwargs)
    reference = kwargs.pop("reference", None)
    if kind == "elementwise":
        return check_elementwise(fn, getattr(A, reference), **kwargs)
    if kind == "init":
        return check_initializer(fn, getattr(I, reference), **kwargs)
    if kind == "schedule":
        return check_schedule(fn, getattr(S, reference), **kwargs)
    return check_minibatches(fn, **kwargs)


def test_the_catalogue_is_large_enough():
    assert len(M.MUTANTS) >= 15
    assert len({label for label, *_ in M.MUTANTS}) == len(M.MUTANTS)


@pytest.mark.parametrize("label, kind, fn, kwargs, texts", M.MUTANTS,
                         ids=[m[0] for m in M.MUTANTS])
def test_mutant_fails_with_its_hint(label, kind, fn, kwargs, texts):
    with pytest.raises(GradingFailure) as info:
        _run_mutant(kind, fn, kwargs)
    message = str(info.value)
    assert not isinstance(info.value, CheatingSuspected), message
    for text in texts:
        assert text in message, f"{text!r} missing from:\n{message}"


@pytest.mark.parametrize("configs", [None, [{"batch_size": 5, "drop_last": True}]],
                         ids=["default configs", "drop_last only"])
@pytest.mark.parametrize("global_seed", [0, 1, 42])
def test_ignored_generator_is_named_whatever_the_global_rng_holds(configs, global_seed):
    """An iterator that draws from the global RNG must be named as such even when an earlier
    cell seeded that RNG with a common seed, and when a different order also drops different
    samples (drop_last), which fails the sample check before the order check is reached."""
    torch.manual_seed(global_seed)
    with pytest.raises(GradingFailure, match="the generator is ignored"):
        check_minibatches(M.minibatches_ignores_generator, configs=configs)


@pytest.mark.parametrize("name", sorted(M.SCHEDULE_CONFIGS))
def test_every_schedule_of_assignment_05_has_known_mistakes(name):
    mistakes = G.known_mistakes(getattr(S, name))
    assert len(mistakes) >= 3
    assert len({m.name for m in mistakes}) == len(mistakes)
    assert all(m.hint and callable(m.fn) for m in mistakes)


@pytest.mark.parametrize("student, name", [
    (lambda lr, total_steps, final_lr=0.0: lambda step: lr * max(0.0, 1 - step / total_steps),
     "cosine"),
    (lambda lr, step_size, gamma=0.1: lambda step: lr * gamma ** math.sqrt(step), "step_decay"),
    (lambda schedule, warmup_steps, start_factor=0.0: lambda step: schedule(0) * min(
        1.0, (step / warmup_steps) ** 2), "warmup"),
    (lambda lr, decay_rate, decay_steps=1: lambda step: lr / math.sqrt(
        1 + decay_rate * step / decay_steps), "inverse_time"),
], ids=["linear for cosine", "sqrt step_decay", "quadratic warmup", "inverse sqrt"])
def test_an_unrelated_wrong_schedule_gets_no_hint(student, name):
    message = raises_failure(check_schedule, student, getattr(S, name),
                             configs=M.SCHEDULE_CONFIGS[name], steps=1000, name=name)
    assert "wrong learning rate" in message
    assert "This looks like" not in message, message


def test_schedule_mistakes_work_on_schedule_objects_and_extra_mistakes():
    """Without configs the catalogue is found from the schedule object; a hidden test can add
    its own mistakes, built from the reference's hyperparameters."""
    message = raises_failure(check_schedule, lambda step: 0.1 * 0.5 ** (step % 5),
                             S.step_decay(0.1, 5, 0.5))
    assert "This looks like: the exponent is step % step_size (a remainder)" in message
    squared = G.Mistake("the rate is squared", "return lr itself",
                        lambda lr, total_steps, final_lr: M.cosine(lr ** 2, total_steps,
                                                                   final_lr ** 2))
    message = raises_failure(check_schedule, lambda lr, total_steps: M.cosine(
        lr ** 2, total_steps), S.cosine, configs=[dict(lr=0.5, total_steps=50)], steps=60,
        mistakes=[squared], name="cosine")
    assert "This looks like: the rate is squared (hint: return lr itself)" in message


def test_message_names_function_device_dtype_case_index_and_values():
    message = raises_failure(check_elementwise, M.relu_grad_one_at_zero, A.relu_grad)
    first = message.splitlines()[0]
    assert first.startswith("relu_grad: wrong values (on CPU, float32, case 1 of 6)")
    assert "call: relu_grad(z) where z is a float32 tensor of shape (24,) on CPU" in message
    assert "first difference at index [0] (z = 0.0): expected 0.0, got 1.0" in message
    assert "max abs error 1.0" in message and "rtol=1.3e-06" in message
    # the hidden data is not printed in bulk
    assert "tensor([" not in message and "1000" not in message


def test_message_of_a_rule_names_step_and_hyperparameters():
    message = raises_failure(check_rule, M.adam_init, M.adam_no_bias_correction, rule="adam",
                             hyperparams=[{"lr": 0.05, "betas": (0.8, 0.99)}])
    first = message.splitlines()[0]
    assert first.startswith("adam_no_bias_correction: wrong values in new_param (on CPU, "
                            "float32, step 1 of 8, hyperparameter set 1 of 1: lr=0.05, "
                            "betas=(0.8, 0.99))")
    assert "first difference at index [0]: expected" in message


def test_a_function_wrong_only_in_float64_is_reported_in_float64():
    def sigmoid(z):
        return (1 / (1 + torch.exp(-z))).float()

    message = raises_failure(check_elementwise, sigmoid, A.sigmoid)
    assert "returned a float32 tensor for float64 input" in message
    assert "(on CPU, float64, case 1 of 6)" in message


def test_device_mismatch_is_named():
    expected = torch.zeros(3)
    mismatch = compare(expected, torch.zeros(3, device="meta"), 1e-6, 1e-6)[1]
    assert mismatch.text.startswith("returned a meta tensor for a CPU input")


def test_keys_message_names_what_was_expected():
    where, mismatch = compare({"step": 1}, {"step": 1, "sum": torch.zeros(2)}, 1e-6, 1e-6)
    assert (where, mismatch.what) == ("", "keys")
    assert mismatch.text == "unexpected key 'sum' (expected the keys 'step')"
    mismatch = compare({}, {"step": 1}, 1e-6, 1e-6)[1]
    assert mismatch.text == "unexpected key 'step' (expected an empty dict)"


def test_wrong_state_keys_and_step_type_are_reported():
    def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                  weight_decay=0.0, amsgrad=False):
        new_param, new_state = M.adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                                           weight_decay=weight_decay, amsgrad=amsgrad)
        return new_param, {"t": new_state["step"], "m": new_state["exp_avg"],
                           "v": new_state["exp_avg_sq"]}

    message = raises_failure(check_rule, M.adam_init, adam_step, rule="adam")
    assert "missing keys 'step', 'exp_avg', 'exp_avg_sq'" in message

    def adam_init(param, *, amsgrad=False):
        state = M.adam_init(param, amsgrad=amsgrad)
        state["step"] = torch.tensor(0.0)
        return state

    message = raises_failure(check_rule, adam_init, M.adam_step, rule="adam")
    assert "adam_init: returned a wrong state: state['step']" in message
    assert "expected a Python int" in message


def test_nonfinite_output_is_reported_as_such():
    message = raises_failure(check_elementwise, M.softmax_no_shift, A.softmax)
    assert "returned a non-finite value" in message
    assert "nan or inf where the reference is finite" in message


def test_a_broken_hidden_test_is_not_the_students_fault():
    with pytest.raises(G.GradingSetupError, match="the hidden test passes invalid arguments"):
        check_rule(M.adam_init, M.adam_step, rule="adam", hyperparams=[{"lr": -1.0}])


def test_blank_release_fails_cleanly():
    # the course's release stub (nbgrader_config.py) raises RuntimeError in place of the answer
    def sigmoid_grad(z):
        raise RuntimeError("replace this line with your answer")

    message = raises_failure(check_elementwise, sigmoid_grad, A.sigmoid_grad)
    assert "sigmoid_grad: raised RuntimeError" in message


# --------------------------------------------------------------------------------------------
# cheats: patched comparison functions
# --------------------------------------------------------------------------------------------

def _always_true(*args, **kwargs):
    return True


def _silent(*args, **kwargs):
    return None


PATCHES = [
    ("torch.allclose", torch, "allclose", _always_true),
    ("torch.testing.assert_close", torch.testing, "assert_close", _silent),
    ("torch.equal", torch, "equal", _always_true),
    ("torch.isclose", torch, "isclose", lambda a, b, *r, **k: torch.ones_like(a, dtype=bool)),
    ("torch.Tensor.__eq__", torch.Tensor, "__eq__", lambda self, other: True),
    ("torch.Tensor.tolist", torch.Tensor, "tolist", lambda self: [0.0]),
    ("numpy.allclose", numpy, "allclose", _always_true),
    ("numpy.testing.assert_allclose", numpy.testing, "assert_allclose", _silent),
    ("math.isclose", math, "isclose", _always_true),
    ("builtins.abs", builtins, "abs", lambda x: 0),
]


@pytest.mark.parametrize("name, owner, attr, fake", PATCHES, ids=[p[0] for p in PATCHES])
def test_patched_comparison_function_is_flagged_and_changes_nothing(monkeypatch, name, owner,
                                                                    attr, fake):
    monkeypatch.setattr(owner, attr, fake)
    # the comparison itself is not fooled ...
    assert compare(torch.zeros(3), torch.ones(3), 1e-6, 1e-6) is not None
    # ... a wrong answer still fails, and the tampering is flagged
    with pytest.raises(CheatingSuspected) as info:
        check_elementwise(M.sigmoid_grad_returns_sigmoid, A.sigmoid_grad)
    assert str(info.value).startswith("CHEATING SUSPECTED:")
    assert f"{name} has been replaced" in str(info.value)
    with pytest.raises(CheatingSuspected, match=f"{name} has been replaced"):
        integrity_check()
    monkeypatch.undo()
    integrity_check()


def test_torch_function_mode_is_flagged():
    from torch.overrides import TorchFunctionMode

    class Liar(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    mode = Liar()
    mode.__enter__()
    try:
        message = raises_failure(check_elementwise, M.sigmoid, A.sigmoid)
    finally:
        mode.__exit__(None, None, None)
    assert message.startswith("CHEATING SUSPECTED:") and "torch function mode" in message
    integrity_check()


def test_tensor_subclass_is_refused():
    class Liar(torch.Tensor):
        pass

    message = raises_failure(check_elementwise, lambda z: M.sigmoid(z).as_subclass(Liar),
                             A.sigmoid, name="sigmoid")
    assert "returned a Liar (a tensor subclass); return a plain torch.Tensor" in message


def test_replaced_reference_is_flagged(monkeypatch):
    monkeypatch.setattr(A, "sigmoid_grad", M.sigmoid_grad_returns_sigmoid)
    message = raises_failure(check_elementwise, M.sigmoid_grad_returns_sigmoid, A.sigmoid_grad,
                             name="sigmoid_grad")
    assert message.startswith("CHEATING SUSPECTED:")
    assert "nnbolts.activations.sigmoid_grad has been replaced" in message


def test_swapped_reference_code_is_flagged(monkeypatch):
    original = A.sigmoid_grad
    monkeypatch.setattr(original, "__code__", M.sigmoid_grad_returns_sigmoid.__code__)
    message = raises_failure(check_elementwise, M.sigmoid_grad, original)
    assert message.startswith("CHEATING SUSPECTED:")
    monkeypatch.undo()
    integrity_check()


# --------------------------------------------------------------------------------------------
# cheats: using the reference
# --------------------------------------------------------------------------------------------

def _wrapper(param, grad, state, **hp):
    return O.adam_step(param, grad, state, **hp)


def _via_kernel(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                amsgrad=False):
    from nnbolts.optim import adam
    from nnbolts.optim._base import pure_step

    return pure_step(adam._adam_, param, grad, state, dict(
        lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, maximize=False, decoupled=False, eps_inside_sqrt=False))


def _rebuilt():
    ref = O.adam_step
    fn = types.FunctionType(ref.__code__, ref.__globals__, "adam_step", ref.__defaults__)
    fn.__kwdefaults__ = ref.__kwdefaults__
    return fn


def _exec_copy():
    namespace = dict(vars(A))
    exec(compile(inspect.getsource(A.sigmoid_grad), "<student cell>", "exec"), namespace)
    return namespace["sigmoid_grad"]


REFERENCE_CHEATS = [
    ("wrapper", lambda: check_rule(M.adam_init, _wrapper, rule="adam"),
     "calls the reference implementation nnbolts.optim.adam_step"),
    ("alias", lambda: check_rule(M.adam_init, O.adam_step, rule="adam"),
     "is nnbolts' own nnbolts.optim.adam.adam_step"),
    ("init alias", lambda: check_rule(O.adam_init, M.adam_step, rule="adam"),
     "is nnbolts' own nnbolts.optim.adam.adam_init"),
    ("kernel", lambda: check_rule(M.adam_init, _via_kernel, rule="adam"),
     "calls the reference implementation nnbolts.optim.adam._adam_"),
    ("rebuilt code", lambda: check_rule(M.adam_init, _rebuilt(), rule="adam"),
     "is nnbolts' own nnbolts.optim.adam.adam_step"),
    ("exec'd copy", lambda: check_elementwise(_exec_copy(), A.sigmoid_grad),
     "runs a verbatim copy of the reference nnbolts.activations.sigmoid_grad"),
    ("registry", lambda: check_elementwise(lambda z: A.ACTIVATIONS["tanh"].grad(z), A.tanh_grad,
                                           name="tanh_grad"),
     "calls the reference implementation nnbolts.activations.tanh_grad"),
    ("schedule object", lambda: check_schedule(lambda lr, total_steps: S.cosine(
        lr, total_steps), S.cosine, configs=[dict(lr=0.1, total_steps=10)], name="cosine"),
     "calls the reference implementation nnbolts.schedules.cosine"),
    ("minibatches", lambda: check_minibatches(
        lambda X, y, b, **k: D.minibatches(X, y, b, **k)),
     "calls the reference implementation nnbolts.data.minibatches"),
    ("initializer", lambda: check_initializer(lambda t, **k: I.kaiming_uniform_(t, **k),
                                              I.kaiming_uniform_, name="kaiming_uniform_"),
     "calls the reference implementation nnbolts.init.kaiming_uniform_"),
]


@pytest.mark.parametrize("label, run, text", REFERENCE_CHEATS, ids=[c[0] for c in REFERENCE_CHEATS])
def test_using_the_reference_is_flagged(label, run, text):
    with pytest.raises(CheatingSuspected) as info:
        run()
    message = str(info.value)
    assert message.startswith("CHEATING SUSPECTED:")
    assert text in message, message


def _warmup_copy():
    """nnbolts' _Warmup class pasted into the notebook, on a small base class of the student's."""
    namespace = _exec_student_cell(
        "class Schedule:\n    def __call__(self, step):\n        return self.value(step)\n", {})
    _exec_student_cell(inspect.getsource(S._Warmup), namespace)
    return lambda schedule, warmup_steps, start_factor=0.0: namespace["_Warmup"](
        schedule, warmup_steps, start_factor)


def test_a_pasted_schedule_method_is_flagged():
    with pytest.raises(CheatingSuspected) as info:
        check_schedule(_warmup_copy(), S.warmup, configs=M.SCHEDULE_CONFIGS["warmup"],
                       steps=200, name="warmup")
    assert "runs a verbatim copy of the reference nnbolts.schedules._Warmup.value" in str(
        info.value)


def _code_cells(path):
    """The code cells of a MyST notebook, with IPython magics and shell lines commented out."""
    notebook = jupytext.read(path, fmt="md:myst")
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            yield i, "\n".join(("# " + line) if line.lstrip().startswith(("%", "!")) else line
                               for line in cell.source.splitlines())


def _reference_watch() -> Watch:
    """A watch that forbids every function of nnbolts (outside the grader), compiled from its
    files: the largest set of references any hidden test can forbid."""
    watch = Watch()
    for path in sorted(NNBOLTS_ROOT.rglob("*.py")):
        if "grading" in path.relative_to(NNBOLTS_ROOT).parts:
            continue
        module = compile(path.read_text(), str(path), "exec")
        for code in module.co_consts:
            if isinstance(code, types.CodeType):
                watch.forbid_code(code)
    return watch


def test_no_solution_code_is_a_copy_of_the_reference():
    """Every function of the six solutions (and of the honest and mutant submissions used in
    these tests) runs past the copy detector unflagged, while a pasted reference is caught."""
    watch = _reference_watch()
    assert len(watch.fingerprints) > 50
    pasted = compile(inspect.getsource(A.sigmoid_grad), "<student cell>", "exec")
    assert [watch.copy_of(c) for c in nested_codes(pasted)][1] == (
        "nnbolts.activations.sigmoid_grad")
    flagged, scanned = [], 0
    sources = [(f"{md.parent.name}/{md.name} cell {i}", text)
               for md in sorted((REPO / "solutions").glob("*/*.md")) for i, text in _code_cells(md)]
    sources.append(("grading_mutants.py", inspect.getsource(M)))
    assert len({name.split("/")[0] for name, _ in sources}) == 7
    for name, text in sources:
        for code in nested_codes(compile(text, f"<{name}>", "exec")):
            scanned += 1
            if watch.copy_of(code) is not None:
                flagged.append(f"{name}: {code.co_name} looks like {watch.copy_of(code)}")
    assert scanned > 100
    assert not flagged, "\n".join(flagged)


@pytest.mark.parametrize("student, reference, text", [
    (lambda z: torch.sigmoid(z), A.sigmoid, "uses torch's own sigmoid"),
    (torch.sigmoid, A.sigmoid, "is torch's own sigmoid"),
    (lambda z: torch.nn.functional.silu(z), A.silu, "uses torch.nn.functional.silu"),
], ids=["torch.sigmoid", "alias of torch.sigmoid", "F.silu"])
def test_torch_implementation_fails_without_a_cheating_flag(student, reference, text):
    with pytest.raises(GradingFailure) as info:
        check_elementwise(student, reference, name=reference.__name__)
    assert not isinstance(info.value, CheatingSuspected)
    assert text in str(info.value)


def test_torch_nn_init_fails_without_a_cheating_flag():
    with pytest.raises(GradingFailure) as info:
        check_initializer(lambda t, **k: torch.nn.init.kaiming_uniform_(t, **k),
                          I.kaiming_uniform_, name="kaiming_uniform_")
    assert not isinstance(info.value, CheatingSuspected)
    assert "uses torch.nn.init.kaiming_uniform_" in str(info.value)


def _torch_adam_step(optimizer, p, grad, state, amsgrad):
    """One step of a torch optimizer on ``p`` from the pure state ``state``; the new state."""
    p.grad = grad.clone()
    optimizer.state.clear()
    if state["step"]:
        optimizer.state[p] = {"step": torch.tensor(float(state["step"])),
                              "exp_avg": state["exp_avg"].clone(),
                              "exp_avg_sq": state["exp_avg_sq"].clone()}
        if amsgrad:
            optimizer.state[p]["max_exp_avg_sq"] = state["max_exp_avg_sq"].clone()
    optimizer.step()
    new = {key: value for key, value in optimizer.state[p].items() if key != "step"}
    new["step"] = int(optimizer.state[p]["step"])
    return p.detach(), new


def _adamw_via_torch(how):
    """A student's adamw_step that runs torch's AdamW on a copy of the parameter: built in
    the step (``"AdamW"``), as Adam with decoupled decay (``"Adam"``), or built once when the
    cell ran and only stepped inside (``"prebuilt"``)."""
    prebuilt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])

    def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=1e-2, amsgrad=False):
        p = torch.nn.Parameter(param.detach().clone())
        hp = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        if how == "AdamW":
            optimizer = torch.optim.AdamW([p], **hp)
        elif how == "Adam":
            optimizer = torch.optim.Adam([p], **hp, decoupled_weight_decay=True)
        else:
            optimizer = prebuilt
            optimizer.param_groups[0].update(params=[p], **hp)
        return _torch_adam_step(optimizer, p, grad, state, amsgrad)
    return adamw_step


@pytest.mark.parametrize("how, module", [("AdamW", "torch.optim.adamw"),
                                         ("Adam", "torch.optim.adam"),
                                         ("prebuilt", "torch.optim.adam")])
def test_torch_adamw_is_caught_by_the_adamw_rule(how, module):
    """AdamW subclasses Adam, and its step runs torch/optim/adam.py: the rule watches both."""
    step = _adamw_via_torch(how)
    check_rule(M.adamw_init, step, rule="adamw", anti_cheat=False)  # right values
    with pytest.raises(GradingFailure) as info:
        check_rule(M.adamw_init, step, rule="adamw")
    assert not isinstance(info.value, CheatingSuspected)
    assert f"uses {module} (torch's implementation)" in str(info.value)


# --------------------------------------------------------------------------------------------
# cheats and accidents: loops, crashes, tampering with the watchers
# --------------------------------------------------------------------------------------------

def _loop(z):
    while True:
        pass


def _swallowing_loop(z):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass


def _sleeper(z):
    time.sleep(60)


@pytest.mark.parametrize("student", [_loop, _swallowing_loop, _sleeper],
                         ids=["loop", "loop that swallows exceptions", "sleep"])
def test_infinite_loop_fails_within_the_time_limit(student):
    start = time.monotonic()
    message = raises_failure(check_elementwise, student, A.sigmoid, name="sigmoid", timeout=0.3)
    assert time.monotonic() - start < 3
    assert "sigmoid: did not finish within 0.3 s" in message
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None, signal.default_int_handler) \
        or callable(signal.getsignal(signal.SIGALRM))
    assert sys.getprofile() is None


def test_infinite_loop_is_stopped_outside_the_main_thread():
    result = {}

    def work():
        try:
            check_elementwise(_loop, A.sigmoid, name="sigmoid", timeout=0.3)
        except AssertionError as exc:
            result["message"] = str(exc)

    thread = threading.Thread(target=work, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(5)
    assert time.monotonic() - start < 5
    assert "did not finish within 0.3 s" in result["message"]
    check_elementwise(M.sigmoid, A.sigmoid)  # the interpreter is fine afterwards


def test_budget_limits_all_calls_together():
    def slow(z):
        time.sleep(0.05)
        return M.sigmoid(z)

    message = raises_failure(check_elementwise, slow, A.sigmoid, name="sigmoid", budget=0.2)
    assert "the 0.2 s this test allows in total" in message


def test_exception_is_reported_with_type_message_and_line():
    def sigmoid(z):
        scale = 1 / 0
        return scale * z

    message = raises_failure(check_elementwise, sigmoid, A.sigmoid)
    assert "sigmoid: raised ZeroDivisionError: division by zero (on CPU, float32" in message
    assert "in your code: line" in message and "scale = 1 / 0" in message


def test_exit_is_contained():
    message = raises_failure(check_elementwise, lambda z: sys.exit(3), A.sigmoid,
                             name="sigmoid")
    assert "raised SystemExit: the function called exit(3)" in message


def test_removing_the_call_watcher_is_flagged():
    def sigmoid(z):
        sys.setprofile(None)
        return M.sigmoid(z)

    message = raises_failure(check_elementwise, sigmoid, A.sigmoid)
    assert message.startswith("CHEATING SUSPECTED:") and "call watcher" in message


def test_replacing_the_alarm_handler_is_flagged():
    def sigmoid(z):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        return M.sigmoid(z)

    message = raises_failure(check_elementwise, sigmoid, A.sigmoid)
    assert message.startswith("CHEATING SUSPECTED:") and "SIGALRM" in message


def test_cheat_and_crash_counts():
    """The catalogue of cheats exercised above (for the closing report)."""
    assert len(PATCHES) + len(REFERENCE_CHEATS) >= 20


# --------------------------------------------------------------------------------------------
# static audit for the pipeline
# --------------------------------------------------------------------------------------------

def test_audit_source_flags_tampering():
    source = "\n".join([
        "import torch as t",
        "import numpy as np",
        "from nnbolts.optim import adam_step",
        "import nnbolts.grading",
        "%matplotlib inline",
        "t.allclose = lambda *a, **k: True",
        "setattr(np.testing, 'assert_allclose', print)",
        "import sys",
        "sys.setprofile(None)",
        "sys.modules['nnbolts.grading'] = None",
        "def f(): pass",
        "f.__code__ = (lambda: 1).__code__",
    ])
    findings = "\n".join(audit_source(source, graded=["adam_step"]))
    for text in ["line 3: imports the reference nnbolts.optim.adam_step",
                 "line 4: imports nnbolts.grading", "line 6: assigns torch.allclose",
                 "line 7: setattr on numpy.testing", "line 9: calls sys.setprofile",
                 "line 10: uses sys.modules", "line 12: assigns a function's __code__"]:
        assert text in findings, findings
    assert audit_source("def sigmoid(z):\n    return 1 / (1 + torch.exp(-z))\n") == []


def test_docstrings_give_an_example_hidden_test_cell():
    for name in ["check_function", "check_elementwise", "check_initializer", "check_rule",
                 "check_schedule", "check_minibatches", "integrity_check", "cases", "devices",
                 "tolerance", "audit_source"]:
        doc = getattr(G, name).__doc__
        assert "Example" in doc and "cell" in doc or "Example (pipeline" in doc, name
