"""nnbolts.grading, the checks every hidden test calls: the references pass against
themselves, honest student code passes, every mutant in the catalogue fails with its hint, and
the messages name what went wrong (device, dtype, case, call, first difference, known mistake,
an exception's line, a timeout's limit).

The checks run here on local functions; ``tests/test_trusted.py`` and
``tests/test_exercise_mutants.py`` drive them through the trusted side's observation channel."""

import inspect
import math
import sys
import time
from pathlib import Path

import grading_mutants as M
import pytest
import torch

import nnbolts.activations as A
import nnbolts.data as D
import nnbolts.init as I
import nnbolts.schedules as S
from nnbolts import grading as G
from nnbolts.grading import (
    DTYPES,
    RULES,
    Call,
    GradingFailure,
    cases,
    check_elementwise,
    check_function,
    check_initializer,
    check_minibatches,
    check_rule,
    check_schedule,
    devices,
    tolerance,
)
from nnbolts.grading._compare import compare

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from instructor import trusted  # noqa: E402

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
    check_elementwise(fn, fn)


@pytest.mark.parametrize("name", INIT_NAMES)
def test_reference_initializer_passes(name):
    fn = getattr(I, name)
    check_initializer(fn, fn)


def test_reference_initializers_with_options_pass():
    check_initializer(I.constant_, I.constant_, kwargs=[{"val": 0.3}])
    check_initializer(I.kaiming_normal_, I.kaiming_normal_,
                      kwargs=[{"nonlinearity": "relu"}, {"a": 0.2, "mode": "fan_out"}])
    check_initializer(I.xavier_uniform_, I.xavier_uniform_, kwargs=[{"gain": 4.0}],
                      requires_grad=True)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_reference_rule_passes(rule):
    spec = RULES[rule]
    check_rule(spec.init, spec.step, rule=rule)


def test_reference_schedules_minibatches_and_fans_pass():
    check_schedule(S.cosine, S.cosine, configs=[dict(lr=0.1, total_steps=50)], steps=80)
    check_schedule(S.step_decay(0.1, 5, 0.5), S.step_decay(0.1, 5, 0.5))
    check_schedule(S.warmup(S.cosine(0.1, 20), 5), S.warmup(S.cosine(0.1, 20), 5), steps=40)
    check_minibatches(D.minibatches)
    check_function(I.fan_in_and_fan_out, I.fan_in_and_fan_out,
                   lambda case: case.randn(*case.shape(min_dims=2)))
    check_function(I.calculate_gain, I.calculate_gain,
                   lambda case: Call(case.choice(["relu", "tanh", "leaky_relu"]), 0.2),
                   devices=["cpu"], dtypes=[torch.float64])


# --------------------------------------------------------------------------------------------
# honest submissions pass
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
def test_class_based_schedules_pass(student, name):
    """An __init__ that stores the hyperparameters, a __call__ that forwards to a method, a
    __repr__ and a one- or two-line formula: schedules written as classes."""
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


def test_delegating_to_the_students_own_code_passes():
    """A one-line adamw_init/adamw_step that calls the student's own Adam (defined in the
    notebook), against the rule's reference and against a given ``reference=`` pair."""
    namespace = _exec_student_cell(_STUDENT_ADAMW, {"torch": torch})
    _exec_student_cell(inspect.getsource(M._adam), namespace)  # the student's own helper
    check_rule(namespace["adamw_init"], namespace["adamw_step"], rule="adamw")
    check_rule(namespace["adamw_init"], namespace["adamw_step"], rule="adamw",
               reference=(M.adamw_init, M.adamw_step))
    check_rule(namespace["adam_init"], M.adam_step, rule="adam")


def test_initializer_with_other_draws_is_accepted_statistically():
    """Right distribution, drawn in another order: accepted (unless exact draws are asked)."""
    check_initializer(M.kaiming_uniform_other_draws_, I.kaiming_uniform_,
                      kwargs=[{"nonlinearity": "relu"}])
    message = raises_failure(check_initializer, M.kaiming_uniform_other_draws_,
                             I.kaiming_uniform_, kwargs=[{"nonlinearity": "relu"}],
                             statistical=False)
    assert "wrong values" in message


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
# values that lie, loops, crashes
# --------------------------------------------------------------------------------------------

def test_tensor_subclass_is_refused():
    class Liar(torch.Tensor):
        pass

    message = raises_failure(check_elementwise, lambda z: M.sigmoid(z).as_subclass(Liar),
                             A.sigmoid, name="sigmoid")
    assert "returned a Liar (a tensor subclass); return a plain torch.Tensor" in message


def test_budget_limits_all_calls_together():
    def slow(z):
        time.sleep(0.05)
        return M.sigmoid(z)

    message = raises_failure(check_elementwise, slow, A.sigmoid, name="sigmoid", budget=0.2)
    assert "sigmoid: is too slow" in message
    assert "more than the 0.2 s this test allows" in message


class _Unanswered(trusted.LocalChannel):
    """A kernel that never answers a call of the student's function in time."""

    def __init__(self, namespace):
        super().__init__(namespace)
        self.timeouts = []

    def request(self, message, timeout):
        if message.get("op") in ("call", "calls"):
            self.timeouts.append(timeout)
            raise TimeoutError(f"no answer within {timeout} s")
        return super().request(message, timeout)


@pytest.mark.parametrize("limits, given, text", [
    ("timeout=0.3", 0.3, "did not finish within 0.3 s"),
    ("budget=0.2", 0.2, "did not finish within the 0.2 s this test allows in total"),
], ids=["timeout", "budget"])
def test_a_call_the_kernel_does_not_answer_in_time_fails_with_its_limit(limits, given, text):
    """The channel times each observation: the engine hands it the smaller of ``timeout=``
    and what is left of ``budget=``, and a timeout is a plain failure that names the limit."""
    block = ("from nnbolts import activations as reference, grading\n"
             f"grading.check_elementwise(sigmoid, reference.sigmoid, {limits})\n")
    channel = _Unanswered({"sigmoid": M.sigmoid})
    verdict = trusted.judge(block, channel, seed=0)
    assert not verdict.passed and verdict.ename == "GradingFailure", verdict
    assert f"sigmoid: {text} (an infinite loop, or far too slow) (on CPU, float32, case 1 of 6)" \
        in verdict.message
    # the cases' calls go in one batch first; after it times out they are made one by one, so
    # the limit is reported for the call that exceeds it
    assert channel.timeouts == [given, given]


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


# --------------------------------------------------------------------------------------------
# documentation
# --------------------------------------------------------------------------------------------

def test_docstrings_give_an_example_hidden_test_cell():
    for name in ["check_function", "check_elementwise", "check_initializer", "check_rule",
                 "check_schedule", "check_minibatches", "cases", "devices", "tolerance"]:
        doc = getattr(G, name).__doc__
        assert "Example" in doc and "cell" in doc, name
