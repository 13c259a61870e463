"""The comparison engine shared by every ``check_*`` function.

A :class:`Session` runs one hidden test: it vets the student's function and the reference,
runs the reference (recording which nnbolts code it needs) and the student's code (watched,
timed, with cloned inputs), and turns every problem into a :class:`GradingFailure` whose message
names the function, the device, the dtype, the case and the call.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import linecache
import os
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import _guard, _remote
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
from ._guard import (
    GRADING_DIR,
    NNBOLTS_DIR,
    TENSOR_BASE,
    TORCH_DIR,
    CheatingSuspected,
    GradingFailure,
    GradingSetupError,
    StudentTimeout,
    Watch,
    integrity_check,
    qualified_name,
)
from ._mistakes import Mistake, known_mistakes

DEFAULT_TIMEOUT = 10.0
"""Seconds one call of a student's function may take before it is stopped."""

DEFAULT_BUDGET = 30.0
"""Seconds all calls of a student's function in one hidden test may take together."""


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
        return _guard.clone_tensor(x)
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


def fail(name: str, problem: str, where: Where, lines=(), *, cheating=False):
    head = f"{name}: {problem}"
    if where.text():
        head += f" ({where.text()})"
    message = "\n  ".join([head, *[line for line in lines if line]])
    if cheating:
        raise CheatingSuspected(message)
    raise GradingFailure(message)


def _student_frame(tb) -> str | None:
    """The innermost traceback line that is the student's own code."""
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        path = frame.f_code.co_filename
        if path.startswith((TORCH_DIR, NNBOLTS_DIR, _guard.NUMPY_DIR)) or path == __file__:
            continue
        if path.startswith(os.path.dirname(os.__file__)):
            continue
        source = linecache.getline(path, lineno).strip()
        found = f"line {lineno}, in {frame.f_code.co_name}" + (f": {source}" if source else "")
    return found


# --------------------------------------------------------------------------------------------
# the student's function: where it comes from
# --------------------------------------------------------------------------------------------

def unwrap(fn):
    """The function behind partials, bound methods and ``functools.wraps`` wrappers."""
    seen = set()
    while id(fn) not in seen:
        seen.add(id(fn))
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif isinstance(fn, types.MethodType):
            fn = fn.__func__
        elif getattr(fn, "__wrapped__", None) is not None and not isinstance(fn, type):
            fn = fn.__wrapped__
        else:
            break
    return fn


def _in_nnbolts(path: str) -> bool:
    return path.startswith(NNBOLTS_DIR) and not path.startswith(GRADING_DIR)


def public_name(fn) -> str:
    """``nnbolts.optim.adam_step`` rather than ``nnbolts.optim.adam.adam_step`` where the
    package re-exports it."""
    module = getattr(fn, "__module__", None) or ""
    qual = getattr(fn, "__qualname__", getattr(fn, "__name__", "?"))
    parent = module.rpartition(".")[0]
    if parent:
        import sys

        package = sys.modules.get(parent)
        if package is not None and getattr(package, qual, None) is fn:
            return f"{parent}.{qual}"
    return f"{module}.{qual}" if module else qual


# --------------------------------------------------------------------------------------------
# torch's own implementations of graded functions (discouraged: a plain failure)
# --------------------------------------------------------------------------------------------

_TORCH_ALIASES = {
    "sigmoid": ("sigmoid", "sigmoid_", "expit"),
    "tanh": ("tanh", "tanh_"),
    "relu": ("relu", "relu_"),
    "leaky_relu": ("leaky_relu", "leaky_relu_"),
    "elu": ("elu", "elu_"),
    "silu": ("silu", "silu_"),
    "softmax": ("softmax", "_softmax"),
    "log_softmax": ("log_softmax", "_log_softmax"),
}


def _module_codes(module) -> list[types.CodeType]:
    """Code objects of the functions and methods defined in ``module``'s own file."""
    path = getattr(module, "__file__", None)
    found = []

    def add(obj):
        obj = inspect.unwrap(obj) if callable(obj) else obj
        code = getattr(obj, "__code__", None)
        if code is not None and code.co_filename == path:
            found.append(code)

    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
            for member in vars(value).values():
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                add(member)
        elif callable(value):
            add(value)
    return found


# --------------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------------

class Session:
    """One hidden test: the student's functions against the references.

    ``references`` are the reference callables (their own code, and the private nnbolts code
    they run, become forbidden to the student); ``torch_names`` are names of torch built-ins the
    student must not call (torch's own version of the graded function); ``torch_modules`` and
    ``torch_functions`` the same for Python code in torch.
    """

    def __init__(self, name: str, references, *, timeout=DEFAULT_TIMEOUT,
                 budget=DEFAULT_BUDGET, forbid=(), allow=(), torch_names=(),
                 torch_functions=(), torch_modules=(), anti_cheat=True):
        self.name = name
        self.anti_cheat = anti_cheat
        self.timeout, self.budget = timeout, budget
        self.used, self.calls = 0.0, 0
        self.watch = Watch()
        self.recorder = _guard.Recorder()
        self.references = [r for r in references if r is not None]
        self._reference_files = set()
        for ref in self.references:
            self._vet_reference(ref)
            code = getattr(unwrap(ref), "__code__", None)
            if code is not None:
                self.watch.forbid_code(code, public_name(unwrap(ref)), core=True)
                self._reference_files.add(code.co_filename)
        for item in forbid:
            self._forbid(item)
        for item in allow:
            code = getattr(unwrap(item), "__code__", None)
            if code is not None:
                self.watch.allow_code(code)
        self._allowed = {getattr(unwrap(a), "__code__", None) for a in allow}
        label = f"torch's own {name.split('(')[0]}"
        for tname in torch_names:
            self.watch.discouraged_builtins[tname] = label
        for fn in torch_functions:
            code = getattr(inspect.unwrap(fn), "__code__", None)
            if code is not None:
                self.watch.discourage_code(code, public_name(fn))
        for module in torch_modules:
            for code in _module_codes(module):
                self.watch.discourage_code(code, f"{module.__name__} (torch's implementation)")

    # -- the hidden test's own inputs ------------------------------------------------------
    def _vet_reference(self, ref) -> None:
        """A reference from nnbolts must still be nnbolts' own code (a rebound module
        attribute is caught by :func:`integrity_check`; this catches a swapped ``__code__``
        and a reference object that is not nnbolts' at all)."""
        target = unwrap(ref)
        module = getattr(target, "__module__", "") or ""
        code = getattr(target, "__code__", None)
        if module.startswith("nnbolts.") and code is not None:
            captured = _guard.REFERENCE_CODES.get(id(target))
            if not _in_nnbolts(code.co_filename) or (
                    captured is not None and captured[1] is not code):
                raise CheatingSuspected(
                    f"the reference {public_name(target)} has been replaced (its code now comes "
                    f"from {code.co_filename}). Submissions must not modify nnbolts.")

    def _forbid(self, item) -> None:
        target = unwrap(item)
        code = getattr(target, "__code__", None)
        if code is not None:
            if _in_nnbolts(code.co_filename):
                self.watch.forbid_code(code, public_name(target), core=True)
            else:
                self.watch.discourage_code(code, public_name(target))
        elif callable(target):
            self.watch.discouraged_builtins[getattr(target, "__name__", "?")] = public_name(
                target)

    # -- vetting the student's function ----------------------------------------------------
    def vet_student(self, fn, role: str | None = None) -> None:
        """Fail before running anything if the student's function *is* a library function."""
        role = role or self.name
        if not callable(fn):
            fail(role, f"is {describe_value(fn)}, not a function", Where())
        if not self.anti_cheat or _remote.active():
            return
        target = unwrap(fn)
        code = getattr(target, "__code__", None)
        if code is None and not isinstance(target, (types.BuiltinFunctionType, type)):
            code = getattr(vars(type(target)).get("__call__"), "__code__", None)
            if type(target).__module__.startswith("nnbolts.") and not type(
                    target).__module__.startswith("nnbolts.grading"):
                fail(role, f"is an object of nnbolts' own {type(target).__qualname__} class: "
                     "the submission returns the reference implementation instead of its own",
                     Where(), cheating=True)
        if code is not None and _in_nnbolts(code.co_filename):
            fail(role, f"is nnbolts' own {qualified_name(code)}: the submission uses the "
                 "reference implementation instead of its own", Where(), cheating=True)
        if code is not None and code in self.watch.forbidden:
            fail(role, f"is a copy of the reference {self.watch.forbidden[code]}",
                 Where(), cheating=True)
        if code is not None and code in self.watch.discouraged:
            fail(role, f"is {self.watch.discouraged[code]}, which this exercise asks you to "
                 "implement yourself", Where())
        if isinstance(target, types.BuiltinFunctionType):
            name = getattr(target, "__name__", "")
            if name in self.watch.discouraged_builtins:
                fail(role, f"is torch's own {name}, which this exercise asks you to implement "
                     "yourself", Where())

    # -- running code ----------------------------------------------------------------------
    def reference(self, fn, *args, **kwargs):
        """Call a reference (recording the nnbolts code it runs, which the student may then
        not call). An exception here is the hidden test's fault, not the student's."""
        try:
            with self.recorder.recording():
                return fn(*args, **kwargs)
        except Exception as exc:
            raise GradingSetupError(
                f"the reference {getattr(fn, '__name__', fn)} raised "
                f"{type(exc).__name__}: {exc} -- the hidden test passes invalid arguments") from exc
        finally:
            self._forbid_footprint()

    def _forbid_footprint(self) -> None:
        for code in list(self.recorder.codes):
            if code in self.watch.forbidden or code in self._allowed:
                continue
            qual = getattr(code, "co_qualname", code.co_name)
            private = any(part.startswith("_") and not part.startswith("_check")
                          for part in qual.split(".") if part != "<locals>")
            if private and not code.co_filename.endswith(os.sep + "_checks.py"):
                self.watch.forbid_code(code, core=code.co_filename in self._reference_files)
        self.recorder.codes.clear()

    def student(self, thunk: Callable, where: Where, call_text: str, role: str | None = None):
        """Run ``thunk()`` (which calls the student's code) watched and timed; turn an
        exception, a timeout, a use of the reference or of torch's implementation into a
        failure."""
        role = role or self.name
        self.watch.hits.clear()
        start = time.monotonic()
        outcome, error = None, None
        remote = _remote.active()
        watching = (self.watch.watching() if self.anti_cheat and not remote
                    else contextlib.nullcontext())
        deadline = None
        limit = self._time_left()
        if not remote and limit is not None and (
                threading.current_thread() is not threading.main_thread()):
            self.watch.deadline = start + limit
        try:
            if remote:  # the student's code runs in its kernel; the channel keeps the time
                token = _remote.DEADLINE.set(limit)
                try:
                    outcome = thunk()
                finally:
                    _remote.DEADLINE.reset(token)
            else:
                # the watch outside the time limit: the limit is disarmed before the watch is
                # taken down, so a late alarm cannot leave the profiler installed
                with watching, _guard.time_limit(limit) as deadline:
                    outcome = thunk()
        except StudentTimeout:
            error = "timeout"
        except (KeyboardInterrupt, GradingSetupError, CheatingSuspected,
                _remote.ObservationError):
            raise
        except BaseException as exc:  # SystemExit from a student's code is a failure too
            error = exc
        finally:
            self.watch.deadline = None
            elapsed = time.monotonic() - start
            self.used += elapsed
            self.calls += 1
        if (deadline is not None and deadline.fired) or self.watch.expired:
            # also when the student's code caught the exception; an alarm that lands inside
            # the profile callback makes CPython drop the profiler, which is then no tampering
            error = "timeout"
        elif self.watch.tampered:
            fail(role, "the submission removed the grader's call watcher (sys.setprofile)",
                 where, [f"call: {call_text}"], cheating=True)
        self.watch.tampered = False
        self._report_hits(role, where, call_text)
        if error == "timeout":
            limit = self._limit_text()
            fail(role, f"did not finish within {limit} (an infinite loop, or far too slow)",
                 where, [f"call: {call_text}"])
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

    def _report_hits(self, role, where, call_text) -> None:
        hits = self.watch.hits
        for kind, what in hits:
            if kind == "reference":
                fail(role, f"the submission calls the reference implementation {what}",
                     where, [f"call: {call_text}", "submissions must implement the function "
                             "themselves, not call nnbolts'"], cheating=True)
            if kind == "copy":
                fail(role, f"the submission runs a verbatim copy of the reference {what}",
                     where, [f"call: {call_text}"], cheating=True)
        for kind, what in hits:
            if kind == "torch":
                fail(role, f"uses {what}, which this exercise asks you to implement yourself",
                     where, [f"call: {call_text}"])

    # -- bracketing a whole hidden test ------------------------------------------------------
    def run(self, body: Callable[[], None]) -> None:
        """Run a hidden test's ``body`` between two integrity checks. Tampering found at the
        end replaces any other verdict."""
        if _remote.active():  # judged outside the student's process: nothing to protect
            body()
            return
        integrity_check()
        try:
            body()
        finally:
            integrity_check()


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
                   budget=DEFAULT_BUDGET, forbid=(), allow=(), torch_names=(),
                   torch_functions=(), anti_cheat=True) -> None:
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
    shows the input element at the first differing index. ``forbid`` lists further functions
    the student may not call (nnbolts ones count as cheating, others as a plain failure),
    ``allow`` nnbolts functions they may call; ``torch_names`` names torch built-ins they may
    not call. ``timeout`` limits each call, ``budget`` all calls together (seconds).
    ``anti_cheat=False`` turns off the checks that the student's function is not the
    reference and does not call it (vetting and the call watcher): only for testing the
    grader by grading a reference against itself. Hidden tests leave it on.

    Example hidden-test cell: ``check_function(fan_in_and_fan_out, nnbolts.init.fan_in_and_fan_out,
    lambda case: case.randn(*case.shape(min_dims=2)), dtypes=[torch.float64])``
    """
    name = name or getattr(reference, "__name__", "function")
    session = Session(name, [reference], timeout=timeout, budget=budget, forbid=forbid,
                      allow=allow, torch_names=torch_names, torch_functions=torch_functions,
                      anti_cheat=anti_cheat)
    catalogue = list(known_mistakes(reference)) + list(mistakes)
    names = parameter_names(reference)
    chosen_devices = _devices_or_default(devices)
    chosen_dtypes = _resolve_dtypes(dtypes)

    def body():
        session.vet_student(student)
        for device in chosen_devices:
            for dtype in chosen_dtypes:
                r, a = tolerance(dtype, tolerance_scale)
                r = rtol if rtol is not None else r
                a = atol if atol is not None else a
                for index in range(n_cases):
                    case = Case(seed, index, device, dtype)
                    call = Call.of(make_inputs(case))
                    _one_call(session, student, reference, call, case, r, a, n_cases, names,
                              catalogue, elementwise, pure)

    session.run(body)


def _one_call(session, student, reference, call, case, rtol, atol, n_cases, names, catalogue,
              elementwise, pure):
    name = session.name
    where = Where(case.device, case.dtype, case.index, n_cases)
    call_text = describe_call(name, names, call.args, call.kwargs)
    ref_call, stu_call, snapshot = call.clone(), call.clone(), call.clone()
    expected = session.reference(reference, *ref_call.args, **ref_call.kwargs)
    got = session.student(lambda: student(*stu_call.args, **stu_call.kwargs), where, call_text)
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
                      budget=DEFAULT_BUDGET, forbid=(), allow=(), torch_equivalents=True,
                      anti_cheat=True) -> None:
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
    softmax without the max shift, ...), says which. With ``torch_equivalents`` the student may
    not call torch's own function of the same name (``torch.sigmoid`` in ``sigmoid``).
    Other arguments as in :func:`check_function`.

    Example hidden-test cell: ``check_elementwise(sigmoid_grad, nnbolts.activations.sigmoid_grad)``
    """
    name = name or reference.__name__
    make, elementwise = _activation_inputs(reference, params, large)
    torch_names, torch_functions = (), ()
    if torch_equivalents:
        torch_names = _TORCH_ALIASES.get(reference.__name__, ())
        fn = getattr(torch.nn.functional, reference.__name__, None)
        if isinstance(fn, types.FunctionType):
            torch_functions = (fn,)
    check_function(student, reference, make, name=name, n_cases=n_cases, devices=devices,
                   dtypes=dtypes, seed=seed, rtol=rtol, atol=atol,
                   tolerance_scale=tolerance_scale, mistakes=mistakes, elementwise=elementwise,
                   timeout=timeout, budget=budget, forbid=forbid, allow=allow,
                   torch_names=torch_names, torch_functions=torch_functions,
                   anti_cheat=anti_cheat)
