"""The comparison engine shared by every ``check_*`` function.

A :class:`Session` runs one hidden test on the trusted side: it runs the reference and the
student's code (each on its own clone of the inputs; a call of a proxy from ``_remote`` is one
observation of the student's kernel, timed by the channel), and turns every problem into a
:class:`GradingFailure` whose message names the function, the device, the dtype, the case and
the call.
"""

from __future__ import annotations

import inspect
import linecache
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import _remote
from ._cases import DTYPES, Case, _devices_or_default
from ._compare import (
    Mismatch,
    compare,
    device_name,
    dtype_name,
    first_change,
    fmt_index,
    fmt_number,
    tolerance,
    values,
    with_article,
)
from ._errors import GradingFailure, GradingSetupError, StudentTimeout
from ._mistakes import Mistake, known_mistakes
from ._tensors import TENSOR_BASE, clone_tensor

DEFAULT_TIMEOUT = 10.0
"""Seconds one call of a student's function in its kernel may take before it is stopped."""

DEFAULT_BUDGET = 30.0
"""Seconds all calls of a student's function in one hidden test may take together."""


def _package_dir(module) -> str:
    return os.path.dirname(os.path.abspath(module.__file__)) + os.sep


# Frames in these folders are not the student's (for "in your code: line ..." of an exception
# raised by a local function; an exception from the kernel carries its own line).
_LIBRARY_DIRS = tuple(_package_dir(m) for m in (torch, os)) + (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)


# --------------------------------------------------------------------------------------------
# calls and their description
# --------------------------------------------------------------------------------------------

class Call:
    """The arguments of one call: what a ``make_inputs(case)`` function returns.

    ``make_inputs`` may also return a tuple (positional arguments), a dict (keyword arguments)
    or a single value (one positional argument).

    Example hidden-test cell: ``check_function(softmax, nnbolts.activations.softmax,
    lambda case: Call(case.logits(), dim=0))``
    """

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    @classmethod
    def of(cls, made) -> Call:
        if isinstance(made, Call):
            return made
        if isinstance(made, tuple):
            return cls(*made)
        if isinstance(made, dict):
            return cls(**made)
        return cls(made)

    def clone(self) -> Call:
        return Call(*clone_value(self.args), **clone_value(self.kwargs))


def clone_value(x):
    """A deep copy of tensors (detached), dicts, lists and tuples; generators are copied with
    their state; anything else is shared (numbers, strings, None)."""
    if isinstance(x, TENSOR_BASE):
        return clone_tensor(x)
    if isinstance(x, dict):
        return {k: clone_value(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clone_value(v) for v in x]
    if isinstance(x, tuple):
        return tuple(clone_value(v) for v in x)
    if isinstance(x, torch.Generator):
        copy = torch.Generator(device=x.device)
        copy.set_state(x.get_state())
        return copy
    return x


def describe_value(x) -> str:
    """How a value is shown in a message: shapes, dtypes and devices, never the data."""
    if isinstance(x, TENSOR_BASE):
        return (f"{with_article(dtype_name(x.dtype))} tensor of shape {tuple(x.shape)} on "
                f"{device_name(x.device)}")
    if isinstance(x, dict):
        keys = ", ".join(repr(k) for k in x)
        step = f" and step={x['step']!r}" if "step" in x and not isinstance(
            x["step"], TENSOR_BASE) else ""
        return f"a dict with keys {keys or '(none)'}{step}" if keys else "an empty dict"
    if isinstance(x, torch.Generator):
        return f"a torch.Generator on {device_name(x.device)} seeded by the test"
    if isinstance(x, (list, tuple)) and any(isinstance(v, TENSOR_BASE) for v in x):
        return f"a {type(x).__name__} of {len(x)} tensors"
    return repr(x)


def _inline(x) -> bool:
    return not isinstance(x, (TENSOR_BASE, dict, torch.Generator)) and not (
        isinstance(x, (list, tuple)) and any(isinstance(v, TENSOR_BASE) for v in x))


def _short(x) -> str:
    if isinstance(x, float):
        return fmt_number(x)
    if isinstance(x, tuple):
        return "(" + ", ".join(_short(v) for v in x) + ("," if len(x) == 1 else "") + ")"
    return repr(x)


def parameter_names(fn) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def describe_call(name: str, names: list[str], args, kwargs, notes=None) -> str:
    """``adam_step(param, grad, state, lr=0.05) where param is a float32 tensor ...``."""
    shown, where = [], []
    for i, arg in enumerate(args):
        label = names[i] if i < len(names) else f"arg{i}"
        if _inline(arg):
            shown.append(_short(arg))
        else:
            shown.append(label)
            where.append(f"{label} is {(notes or {}).get(label) or describe_value(arg)}")
    for key, arg in kwargs.items():
        if _inline(arg):
            shown.append(f"{key}={_short(arg)}")
        else:
            shown.append(f"{key}={key}")
            where.append(f"{key} is {(notes or {}).get(key) or describe_value(arg)}")
    text = f"{name}({', '.join(shown)})"
    if where:
        text += " where " + "; ".join(where)
    return text


# --------------------------------------------------------------------------------------------
# where a failure happened, and the message
# --------------------------------------------------------------------------------------------

@dataclass
class Where:
    device: torch.device | None = None
    dtype: torch.dtype | None = None
    case: int | None = None
    n_cases: int | None = None
    extra: str = ""

    def text(self) -> str:
        parts = []
        if self.device is not None:
            parts.append(f"on {device_name(self.device)}")
        if self.dtype is not None:
            parts.append(dtype_name(self.dtype))
        if self.case is not None:
            parts.append(f"case {self.case + 1} of {self.n_cases}" if self.n_cases else
                         f"case {self.case + 1}")
        if self.extra:
            parts.append(self.extra)
        return ", ".join(parts)


def mistake_lines(matched: list[Mistake]) -> list[str]:
    return [f"This looks like: {m.name} (hint: {m.hint})" for m in matched]


def mismatch_lines(mismatch: Mismatch, rtol: float, atol: float, *, label: str = "",
                   input_value=None, input_name: str = "z") -> list[str]:
    """The detail lines of a value mismatch: index, expected vs got, error summary."""
    lines = []
    if mismatch.what in ("values", "nonfinite") and mismatch.index is not None:
        at = f"at index {fmt_index(mismatch.index)}"
        if input_value is not None:
            at += f" ({input_name} = {fmt_number(input_value)})"
        lines.append(f"first difference{label} {at}: expected {fmt_number(mismatch.expected)}, "
                     f"got {fmt_number(mismatch.got)}")
        lines.append(f"{mismatch.count} of {mismatch.total} elements differ; max abs error "
                     f"{fmt_number(mismatch.max_abs)}, max rel error "
                     f"{fmt_number(mismatch.max_rel)} (tolerance rtol={rtol:.3g}, "
                     f"atol={atol:.3g})")
    elif mismatch.what == "values":
        lines.append(f"expected {fmt_number(mismatch.expected)}, got {fmt_number(mismatch.got)}"
                     + (f" (max rel error {fmt_number(mismatch.max_rel)}, tolerance "
                        f"rtol={rtol:.3g})" if isinstance(mismatch.expected, float) else ""))
    return lines


def fail(name: str, problem: str, where: Where, lines=()):
    head = f"{name}: {problem}"
    if where.text():
        head += f" ({where.text()})"
    message = "\n  ".join([head, *[line for line in lines if line]])
    raise GradingFailure(message)


def _student_frame(tb) -> str | None:
    """The innermost traceback line that is the student's own code."""
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        path = frame.f_code.co_filename
        if path.startswith(_LIBRARY_DIRS) or path == __file__:
            continue
        source = linecache.getline(path, lineno).strip()
        found = f"line {lineno}, in {frame.f_code.co_name}" + (f": {source}" if source else "")
    return found


# --------------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------------

class Session:
    """One hidden test: the student's functions against the references.

    ``timeout`` limits each call of a student's function in its kernel and ``budget`` all of
    them together (seconds): the channel stops a call after the smaller of ``timeout`` and what
    is left of ``budget`` (``_remote.DEADLINE``), and the calls' total is checked against
    ``budget`` after each one. A local function (the grader's own tests) simply runs.
    """

    def __init__(self, name: str, *, timeout=DEFAULT_TIMEOUT, budget=DEFAULT_BUDGET):
        self.name = name
        self.timeout, self.budget = timeout, budget
        self.used, self.calls = 0.0, 0

    def vet_student(self, fn, role: str | None = None) -> None:
        """Fail before running anything if the student's answer is not a function."""
        if not callable(fn):
            fail(role or self.name, f"is {describe_value(fn)}, not a function", Where())

    # -- running code ----------------------------------------------------------------------
    def reference(self, fn, *args, **kwargs):
        """Call a reference. An exception here is the hidden test's fault, not the student's."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise GradingSetupError(
                f"the reference {getattr(fn, '__name__', fn)} raised "
                f"{type(exc).__name__}: {exc} -- the hidden test passes invalid arguments") from exc

    def student(self, thunk: Callable, where: Where, call_text: str, role: str | None = None):
        """Run ``thunk()`` (which calls the student's code); turn an exception, a timeout or a
        test that takes more than its ``budget`` into a failure."""
        role = role or self.name
        start = time.monotonic()
        outcome, error = None, None
        token = _remote.DEADLINE.set(self._time_left())  # read by the channel, if any
        try:
            outcome = thunk()
        except StudentTimeout:
            error = "timeout"
        except (KeyboardInterrupt, GradingSetupError, _remote.ObservationError):
            raise
        except BaseException as exc:  # SystemExit from a student's code is a failure too
            error = exc
        finally:
            _remote.DEADLINE.reset(token)
            self.used += time.monotonic() - start
            self.calls += 1
        if error == "timeout":
            fail(role, f"did not finish within {self._limit_text()} (an infinite loop, or far "
                 "too slow)", where, [f"call: {call_text}"])
        if error is not None:
            origin = getattr(error, "where", None) or _student_frame(error.__traceback__)
            message = str(error)
            if isinstance(error, SystemExit):
                message = f"the function called exit({error.code!r})"
            fail(role, f"raised {type(error).__name__}: {message}", where,
                 [f"call: {call_text}", f"in your code: {origin}" if origin else ""])
        if self.budget is not None and self.used > self.budget:
            fail(role, f"is too slow: {self.calls} calls took {self.used:.1f} s in total, more "
                 f"than the {self.budget:g} s this test allows (a Python loop over elements?)",
                 where)
        return outcome

    def _time_left(self):
        limits = [x for x in (self.timeout, None if self.budget is None else max(
            self.budget - self.used, 0.05)) if x is not None]
        return min(limits) if limits else None

    def _limit_text(self) -> str:
        if self.budget is not None and self.timeout is not None and (
                self.budget - self.used) < self.timeout:
            return f"the {self.budget:g} s this test allows in total"
        return f"{self.timeout:g} s"


# --------------------------------------------------------------------------------------------
# generic front-end
# --------------------------------------------------------------------------------------------

def _resolve_dtypes(dtypes):
    return tuple(dtypes) if dtypes is not None else DTYPES


def matching_mistakes(mistakes, call: Call, got, rtol, atol) -> list[Mistake]:
    """The known mistakes whose output equals the student's ``got`` for this call."""
    found = []
    for mistake in mistakes:
        try:
            if mistake.applies is not None and not mistake.applies(*call.args, **call.kwargs):
                continue
            variant = call.clone()
            out = mistake.fn(*variant.args, **variant.kwargs)
        except Exception:
            continue
        if compare(out, got, rtol, atol) is None:
            found.append(mistake)
    return found


def check_function(student, reference, make_inputs, *, name=None, n_cases=6, devices=None,
                   dtypes=None, seed=0, rtol=None, atol=None, tolerance_scale=1.0,
                   mistakes=(), elementwise=False, pure=True, timeout=DEFAULT_TIMEOUT,
                   budget=DEFAULT_BUDGET) -> None:
    """Compare ``student`` with ``reference`` over seeded random cases on every device and
    dtype; return ``None`` if they agree, raise :class:`GradingFailure` (an AssertionError)
    describing the first disagreement otherwise.

    ``make_inputs(case)`` builds one call's arguments from a :class:`Case` (returning a
    :class:`Call`, a tuple of positional arguments, a dict of keyword arguments or a single
    argument). Both sides get their own clone; with ``pure`` the student's inputs must be
    unchanged afterwards. Outputs may be tensors, numbers, tuples/lists, dicts, None or str,
    nested; tensors must have the reference's shape, device and dtype.

    ``rtol``/``atol`` default to :func:`tolerance` of the case's dtype times
    ``tolerance_scale``. ``mistakes`` adds :class:`Mistake` variants to those nnbolts knows for
    ``reference``: when the student's output equals one, the message says so. ``elementwise``
    shows the input element at the first differing index. ``timeout`` limits each call of
    the student's function in its kernel, ``budget`` all calls together (seconds; see
    :class:`Session`).

    Example hidden-test cell: ``check_function(fan_in_and_fan_out, nnbolts.init.fan_in_and_fan_out,
    lambda case: case.randn(*case.shape(min_dims=2)), dtypes=[torch.float64])``
    """
    name = name or getattr(reference, "__name__", "function")
    session = Session(name, timeout=timeout, budget=budget)
    catalogue = list(known_mistakes(reference)) + list(mistakes)
    names = parameter_names(reference)
    chosen_devices = _devices_or_default(devices)
    chosen_dtypes = _resolve_dtypes(dtypes)
    session.vet_student(student)
    cases = []
    for device in chosen_devices:
        for dtype in chosen_dtypes:
            r, a = tolerance(dtype, tolerance_scale)
            r = rtol if rtol is not None else r
            a = atol if atol is not None else a
            for index in range(n_cases):
                case = Case(seed, index, device, dtype)
                cases.append((case, Call.of(make_inputs(case)), r, a))
    observed = _observe_all(session, student, [call for _, call, _, _ in cases])
    for (case, call, r, a), observation in zip(cases, observed):
        _one_call(session, student, reference, call, case, r, a, n_cases, names,
                  catalogue, elementwise, pure, observation)


_BATCH_ELEMENTS = 2**20
"""Tensor elements in one batch of observed calls: its reply (results and arguments after the
calls) stays far below what the channel accepts in one reply."""


def _elements(x) -> int:
    if isinstance(x, TENSOR_BASE):
        return x.numel()
    if isinstance(x, dict):
        return sum(_elements(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return sum(_elements(v) for v in x)
    return 0


def _observe_all(session: Session, student, calls: list[Call]) -> list:
    """The student's calls of one check made in its kernel a batch at a time (one round trip
    per batch instead of one per call), each as a function of the grader's copy of its
    arguments (``RemoteCallable.calls``); ``None`` for a call to be made on its own: every call
    of a local function, and those after a batch that ran past one call's time limit (made one
    by one again, so that the limit is reported for the call that exceeds it)."""
    if not (isinstance(student, _remote.RemoteCallable) and _remote.active()) or len(calls) < 2:
        return [None] * len(calls)
    batches, batch, size = [], [], 0
    for call in calls:
        n = _elements((call.args, call.kwargs))
        if batch and size + n > _BATCH_ELEMENTS:
            batches.append(batch)
            batch, size = [], 0
        batch.append(call)
        size += n
    batches.append(batch)
    observed: list = []
    for batch in batches:
        token = _remote.DEADLINE.set(session._time_left())
        start = time.monotonic()
        try:
            observed += student.calls([(list(c.args), c.kwargs) for c in batch])
        except StudentTimeout:
            break
        finally:
            _remote.DEADLINE.reset(token)
        session.used += time.monotonic() - start
    return observed + [None] * (len(calls) - len(observed))


def _one_call(session, student, reference, call, case, rtol, atol, n_cases, names, catalogue,
              elementwise, pure, observation=None):
    name = session.name
    where = Where(case.device, case.dtype, case.index, n_cases)
    call_text = describe_call(name, names, call.args, call.kwargs)
    ref_call, stu_call, snapshot = call.clone(), call.clone(), call.clone()
    expected = session.reference(reference, *ref_call.args, **ref_call.kwargs)
    got = session.student(
        (lambda: student(*stu_call.args, **stu_call.kwargs)) if observation is None else
        (lambda: observation(stu_call.args, stu_call.kwargs)), where, call_text)
    first_tensor = next((a for a in call.args if isinstance(a, TENSOR_BASE)), None)
    found = compare(expected, got, rtol, atol, input_dtype=case.dtype,
                    input_device=first_tensor.device if first_tensor is not None else None)
    if found is not None:
        path, mismatch = found
        input_value = None
        if (elementwise and mismatch.index is not None and first_tensor is not None
                and tuple(first_tensor.shape) == tuple(expected.shape)):
            flat = 0
            for i, size in zip(mismatch.index, expected.shape):
                flat = flat * size + i
            input_value = values(first_tensor)[flat]
        matched = matching_mistakes(catalogue, call, got, rtol, atol) if mismatch.what in (
            "values", "nonfinite") else []
        problem = mismatch.text if mismatch.what not in ("values", "nonfinite") else (
            "returned a non-finite value" if mismatch.what == "nonfinite" else "wrong values")
        if path:
            problem += f" in the return value{path}"
        lines = [f"call: {call_text}"]
        if mismatch.what == "nonfinite":
            lines.append(mismatch.text)
        lines += mismatch_lines(mismatch, rtol, atol, input_value=input_value,
                                input_name=names[0] if names else "z")
        lines += mistake_lines(matched)
        fail(name, problem, where, lines)
    if pure:
        for label, before, after in _labelled(names, snapshot, stu_call):
            change = first_change(before, after, label)
            if change:
                fail(name, f"modified its argument {label}", where, [
                    f"call: {call_text}", change,
                    "a pure function must not change its inputs: work on a copy or use "
                    "out-of-place operations (x.add(...) instead of x.add_(...))"])


def _labelled(names, before: Call, after: Call):
    for i, (b, a) in enumerate(zip(before.args, after.args)):
        yield (names[i] if i < len(names) else f"arg{i}"), b, a
    for key in before.kwargs:
        yield key, before.kwargs[key], after.kwargs.get(key)


# --------------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------------

def _activation_inputs(reference, params, large):
    sig = inspect.signature(reference)
    takes_dim = "dim" in sig.parameters
    takes_grad_output = "grad_output" in sig.parameters
    params = list(params) if params else [{}]

    def make(case: Case) -> Call:
        if takes_dim:
            z = case.logits(large=large)
        else:
            z = case.activation_input(large=large)
        kwargs = dict(params[case.index % len(params)])
        args = [z]
        if takes_grad_output:
            args.append(case.randn(*z.shape))
        if takes_dim and "dim" not in kwargs:
            kwargs["dim"] = (-1, 0, 1)[case.index % 3]
        return Call(*args, **kwargs)

    return make, not (takes_dim or takes_grad_output)


def check_elementwise(student, reference, *, name=None, params=None, n_cases=6, large=True,
                      devices=None, dtypes=None, seed=0, rtol=None, atol=None,
                      tolerance_scale=1.0, mistakes=(), timeout=DEFAULT_TIMEOUT,
                      budget=DEFAULT_BUDGET) -> None:
    """Grade an activation or its derivative against the nnbolts reference.

    Inputs come from :meth:`Case.activation_input`: the special values (0, ±1e−7, the
    saturated tails, and ±100 … ±1e4 when ``large``: nnbolts promises no overflow there),
    moderate, saturated and huge normal draws, a fifth of some cases exactly 0. References that
    take ``dim`` (softmax, log_softmax) get 2-D/3-D scores from :meth:`Case.logits` with
    ``dim`` cycling over −1, 0, 1; those that take ``grad_output`` (softmax_grad,
    log_softmax_grad) get a random one. ``params`` is a list of keyword-argument dicts used in
    turn (``[{"negative_slope": 0.2}]``).

    The message shows the input element at the first differing index and, where the output
    matches a known mistake (sigmoid_grad returning σ, tanh_grad as 1 − z², relu_grad 1 at 0,
    softmax without the max shift, ...), says which. Whether the student may call torch's own
    function of the same name (``torch.sigmoid`` in ``sigmoid``) is the exercise's torch-use
    policy, read from the notebook's source by the pipeline, not a matter of this check.
    Other arguments as in :func:`check_function`.

    Example hidden-test cell: ``check_elementwise(sigmoid_grad, nnbolts.activations.sigmoid_grad)``
    """
    name = name or reference.__name__
    make, elementwise = _activation_inputs(reference, params, large)
    check_function(student, reference, make, name=name, n_cases=n_cases, devices=devices,
                   dtypes=dtypes, seed=seed, rtol=rtol, atol=atol,
                   tolerance_scale=tolerance_scale, mistakes=mistakes, elementwise=elementwise,
                   timeout=timeout, budget=budget)
