"""Tamper resistance: genuine primitives, integrity checks, watching student calls, time limits.

Everything here is about *not trusting the process we run in*: by the time a hidden test runs,
the student's cells have run in the same interpreter and may have replaced anything reachable
from Python. The defences, and what each one does not cover, are listed in the package docstring
(:mod:`nnbolts.grading`, section "Anti-cheat and its limits").

This module is imported first by the package, so that its captures happen as early as possible.
"""

from __future__ import annotations

import ast
import builtins
import dis
import functools
import inspect
import math
import os
import signal
import sys
import threading
import time
import types
from contextlib import contextmanager

import numpy
import numpy.testing
import torch
import torch.testing

# --------------------------------------------------------------------------------------------
# genuine primitives
# --------------------------------------------------------------------------------------------

# torch._C.TensorBase is a static (immutable) C type: its methods cannot be replaced from
# Python, so these are the real implementations whatever a submission did to torch.Tensor.
TENSOR_BASE = torch._C.TensorBase
TENSOR = torch.Tensor
PARAMETER = torch.nn.Parameter
DISABLE_TORCH_FUNCTION = torch._C.DisableTorchFunction
T_TOLIST = TENSOR_BASE.tolist
T_DETACH = TENSOR_BASE.detach
T_CLONE = TENSOR_BASE.clone
T_RESHAPE = TENSOR_BASE.reshape
T_CPU = TENSOR_BASE.cpu

_STATIC_TYPE_FLAG = 1 << 9  # Py_TPFLAGS_HEAPTYPE: set for classes made by Python code


def _package_dir(module) -> str:
    return os.path.dirname(os.path.abspath(module.__file__)) + os.sep


TORCH_DIR = _package_dir(torch)
NUMPY_DIR = _package_dir(numpy)
NNBOLTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
GRADING_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep

# The comparison and inspection functions a submission might patch to fool a checker. Nothing
# in nnbolts.grading *uses* them for a verdict; they are watched so that tampering is reported.
PROTECTED = (
    "torch.allclose", "torch.isclose", "torch.equal", "torch.eq", "torch.ne", "torch.isnan",
    "torch.isfinite", "torch.abs", "torch.max", "torch.all", "torch.any",
    "torch.testing.assert_close", "torch.testing.assert_allclose",
    "torch.Tensor", "torch.Tensor.__eq__", "torch.Tensor.__ne__", "torch.Tensor.__bool__",
    "torch.Tensor.allclose", "torch.Tensor.isclose", "torch.Tensor.equal", "torch.Tensor.eq",
    "torch.Tensor.tolist", "torch.Tensor.item", "torch.Tensor.sub", "torch.Tensor.abs",
    "torch.Tensor.max", "torch.Tensor.all", "torch.Tensor.any", "torch.Tensor.__float__",
    "numpy.allclose", "numpy.isclose", "numpy.array_equal", "numpy.array_equiv",
    "numpy.testing.assert_allclose", "numpy.testing.assert_array_equal",
    "numpy.testing.assert_array_almost_equal", "numpy.testing.assert_almost_equal",
    "numpy.testing.assert_equal", "numpy.testing.assert_array_less",
    "math.isclose", "math.isnan", "math.isinf", "math.isfinite", "math.fabs",
    "builtins.abs", "builtins.max", "builtins.min", "builtins.len", "builtins.isinstance",
    "builtins.float", "builtins.int", "builtins.round", "builtins.sum", "builtins.all",
    "builtins.any", "builtins.type", "builtins.range", "builtins.zip",
)
_ROOTS = {"torch": torch, "numpy": numpy, "math": math, "builtins": builtins}
_MISSING = object()


def _resolve(dotted: str):
    root, *rest = dotted.split(".")
    obj = _ROOTS[root]
    for part in rest:
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


def _owner_dir(dotted: str) -> str:
    return {"torch": TORCH_DIR, "numpy": NUMPY_DIR}.get(dotted.split(".")[0], _STDLIB_DIR)


def _describe_object(obj) -> str:
    """Where a replacement came from, for the cheating message."""
    code = getattr(obj, "__code__", None)
    module = getattr(obj, "__module__", None) or type(obj).__module__
    if code is not None:
        return f"a function defined in {module} ({code.co_filename}, line {code.co_firstlineno})"
    return f"a {type(obj).__name__} from {module}"


def _is_genuine(dotted: str, obj) -> bool:
    """Whether ``obj`` looks like the library's own object rather than a student's replacement.

    C-implemented callables (their type is a static C type) cannot be written in Python; Python
    functions must come from a file inside the package they belong to.
    """
    if dotted == "torch.Tensor":
        return isinstance(obj, type) and TENSOR_BASE in obj.__mro__ and obj.__module__ == "torch"
    kind = type(obj)
    if isinstance(obj, functools.partial):
        return False
    if isinstance(obj, types.MethodType):
        return _is_genuine(dotted, obj.__func__)
    if isinstance(obj, types.FunctionType):
        # a deprecation wrapper (typing_extensions.deprecated) lives elsewhere: look inside
        inner = inspect.unwrap(obj)
        return isinstance(inner, types.FunctionType) and inner.__code__.co_filename.startswith(
            _owner_dir(dotted))
    if isinstance(obj, type):
        return not obj.__flags__ & _STATIC_TYPE_FLAG or obj.__module__.startswith(
            dotted.split(".")[0])
    return not kind.__flags__ & _STATIC_TYPE_FLAG


GENUINE = {name: obj for name in PROTECTED if (obj := _resolve(name)) is not _MISSING}
_ALREADY_REPLACED = {name: obj for name, obj in GENUINE.items() if not _is_genuine(name, obj)}

_DEVICE_CONTEXT = None
try:  # torch.set_default_device pushes one of these: harmless, and not a student's trick
    from torch.utils._device import DeviceContext as _DEVICE_CONTEXT
except ImportError:  # pragma: no cover - older torch
    pass


class GradingFailure(AssertionError):
    """A student's function disagrees with its reference. The message is the student's feedback.

    An ``AssertionError``, so that nbgrader scores the hidden-test cell as failed.
    """


class CheatingSuspected(GradingFailure):
    """A submission tampered with the grader or used the reference; the message starts with
    ``"CHEATING SUSPECTED:"`` so that the pipeline can list flagged submissions."""

    PREFIX = "CHEATING SUSPECTED:"

    def __init__(self, message: str):
        if not message.startswith(self.PREFIX):
            message = f"{self.PREFIX} {message}"
        super().__init__(message)


class GradingSetupError(RuntimeError):
    """The hidden test itself is wrong (bad arguments, a reference that raises): not the
    student's fault, so not an ``AssertionError``."""


_REFERENCE_MODULES = (
    "nnbolts.activations", "nnbolts.init", "nnbolts.schedules", "nnbolts.data", "nnbolts.optim",
    "nnbolts.optim._base", "nnbolts.optim.adabound", "nnbolts.optim.adadelta",
    "nnbolts.optim.adagrad", "nnbolts.optim.adam", "nnbolts.optim.lookahead",
    "nnbolts.optim.nadam", "nnbolts.optim.rmsprop", "nnbolts.optim.sgd",
)


def _capture_nnbolts():
    """The functions (and methods of classes) of nnbolts' reference modules with their code
    objects, as they are when nnbolts.grading is imported: ``{"nnbolts.init.zeros_": (fn,
    code)}``. Rebinding one later, or swapping its ``__code__``, is tampering; so is a public
    name (in ``__all__``) that already points outside nnbolts."""
    import importlib

    bindings, suspicious = {}, []
    for module_name in _REFERENCE_MODULES:
        module = importlib.import_module(module_name)
        public = set(getattr(module, "__all__", ()))
        for attr, value in list(vars(module).items()):
            if attr.startswith("__"):
                continue
            if isinstance(value, types.FunctionType):
                bindings[f"{module_name}.{attr}"] = (value, value.__code__)
                if attr in public and not value.__code__.co_filename.startswith(NNBOLTS_DIR):
                    suspicious.append(f"{module_name}.{attr}")
            elif isinstance(value, type) and value.__module__ == module_name:
                for member, func in list(vars(value).items()):
                    if isinstance(func, types.FunctionType):
                        bindings[f"{module_name}.{attr}.{member}"] = (func, func.__code__)
    return bindings, suspicious


NNBOLTS_BINDINGS, _NNBOLTS_ALREADY_REPLACED = _capture_nnbolts()
REFERENCE_CODES = {id(fn): (fn, code) for fn, code in NNBOLTS_BINDINGS.values()}


def _resolve_nnbolts(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is not None:
            obj = module
            for part in parts[cut:]:
                obj = vars(obj).get(part, _MISSING) if isinstance(obj, type) else getattr(
                    obj, part, _MISSING)
                if obj is _MISSING:
                    return _MISSING
            return obj
    return _MISSING


def tampering() -> list[str]:
    """The integrity problems of this process, one sentence each (empty when all is well)."""
    problems = []
    for name in _NNBOLTS_ALREADY_REPLACED:
        problems.append(f"the reference {name} had been replaced before nnbolts.grading was "
                        "imported")
    for name, (fn, code) in NNBOLTS_BINDINGS.items():
        current = _resolve_nnbolts(name)
        if current is _MISSING:
            problems.append(f"the reference {name} has been deleted")
        elif current is not fn:
            problems.append(f"the reference {name} has been replaced by "
                            f"{_describe_object(current)}")
        elif fn.__code__ is not code:
            problems.append(f"the code of the reference {name} has been swapped")
    for name, genuine in GENUINE.items():
        current = _resolve(name)
        if name in _ALREADY_REPLACED:
            problems.append(f"{name} had been replaced before nnbolts.grading was imported "
                            f"(it is {_describe_object(genuine)})")
        elif current is _MISSING:
            problems.append(f"{name} has been deleted")
        elif current is not genuine:
            problems.append(f"{name} has been replaced by {_describe_object(current)}")
    if sys.modules.get("torch") is not torch:
        problems.append("sys.modules['torch'] has been replaced")
    modes = torch._C._len_torch_function_stack()
    if modes:
        try:
            from torch.overrides import _get_current_function_mode_stack
            stack = _get_current_function_mode_stack()
        except ImportError:  # pragma: no cover - private API moved
            stack = [None] * modes
        odd = [m for m in stack if _DEVICE_CONTEXT is None or not isinstance(m, _DEVICE_CONTEXT)]
        if odd:
            names = ", ".join(type(m).__name__ for m in odd)
            problems.append(f"a torch function mode is active ({names}): it can change the "
                            "result of every torch call")
    if torch._C._len_torch_dispatch_stack():
        problems.append("a torch dispatch mode is active: it can change the result of every "
                        "torch operation")
    return problems


def integrity_check() -> None:
    """Raise :class:`CheatingSuspected` if torch's, numpy's or Python's comparison functions
    have been replaced, or a torch function/dispatch mode has been pushed; return otherwise.

    Every ``check_*`` function calls it before and after running the student's code; a hidden
    test may call it on its own too.

    Example hidden-test cell: ``nnbolts.grading.integrity_check()``
    """
    problems = tampering()
    if problems:
        raise CheatingSuspected(
            "the grader's environment was tampered with: " + "; ".join(problems)
            + ". Submissions must not modify torch, numpy or Python built-ins.")


# --------------------------------------------------------------------------------------------
# reading tensors without trusting anything patchable
# --------------------------------------------------------------------------------------------

def plain_tensor(x):
    """``x`` as a plain ``torch.Tensor`` if it is one (or an ``nn.Parameter``), else ``None``.

    A tensor *subclass* is refused: its ``__torch_function__`` could lie to every comparison.
    """
    kind = type(x)
    if kind is TENSOR:
        return x
    if kind is PARAMETER:
        with DISABLE_TORCH_FUNCTION():
            return T_DETACH(x)
    return None


def values(t) -> list:
    """The elements of a plain tensor as a flat list of Python numbers (row-major).

    Uses only ``torch._C.TensorBase`` methods (immutable) with torch functions disabled, so
    neither a patched ``torch.Tensor`` nor a torch function mode can change what is read.
    """
    with DISABLE_TORCH_FUNCTION():
        flat = T_RESHAPE(T_DETACH(t), (-1,))
        return T_TOLIST(flat)


def clone_tensor(t):
    with DISABLE_TORCH_FUNCTION():
        return T_CLONE(T_DETACH(t))


# --------------------------------------------------------------------------------------------
# watching the student's code while it runs
# --------------------------------------------------------------------------------------------

_SKIP_OPS = {"CACHE", "RESUME", "PRECALL", "PUSH_NULL", "NOP", "EXTENDED_ARG", "KW_NAMES",
             "COPY_FREE_VARS", "MAKE_CELL"}
_SAME_OPS = {"LOAD_METHOD": "LOAD_ATTR", "CALL_METHOD": "CALL", "CALL_FUNCTION": "CALL",
             "CALL_FUNCTION_KW": "CALL", "JUMP_BACKWARD_NO_INTERRUPT": "JUMP_BACKWARD"}
_JUMPS = set(dis.hasjrel) | set(dis.hasjabs)
# A body must be this substantial before matching it can mean "copied": short bodies (``return
# lr * gamma ** t``, ``alpha = ...; return ...``) are what an honest student writes from the
# formula in the assignment, with the argument names the assignment gives.
_MIN_FINGERPRINT_OPS = 12
_MIN_FINGERPRINT_STATEMENTS = 3
# Instructions that end a statement (an assignment, an expression statement, a return, a
# raise, the test of an ``if``/``while``): counted once per source line, they count statements
# however the source was wrapped.
_STATEMENT_ENDS = {"STORE_FAST", "STORE_DEREF", "STORE_GLOBAL", "STORE_NAME", "STORE_ATTR",
                   "STORE_SUBSCR", "STORE_FAST_STORE_FAST", "STORE_FAST_LOAD_FAST",
                   "DELETE_FAST", "DELETE_DEREF", "DELETE_GLOBAL", "DELETE_NAME", "DELETE_ATTR",
                   "DELETE_SUBSCR", "POP_TOP", "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS"}
# Plumbing: loading, calling, storing and returning, with no computation of its own. A body
# made only of these (``return adam_init(param, amsgrad=amsgrad)``, an ``__init__`` that
# stores its arguments, ``__call__`` forwarding to ``self.value(step)``) delegates to code that
# is examined on its own when it runs, so it is never a copy.
_PLUMBING_OPS = {"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_LOAD_FAST", "LOAD_DEREF",
                 "LOAD_CLOSURE", "LOAD_CLASSDEREF", "LOAD_CONST", "LOAD_GLOBAL", "LOAD_NAME",
                 "LOAD_ATTR", "LOAD_SUPER_ATTR", "CALL", "CALL_KW", "CALL_FUNCTION_EX",
                 "BUILD_TUPLE", "DICT_MERGE", "LIST_EXTEND", "LIST_TO_TUPLE", "STORE_FAST",
                 "STORE_DEREF", "STORE_ATTR", "STORE_FAST_STORE_FAST", "STORE_FAST_LOAD_FAST",
                 "UNPACK_SEQUENCE", "SWAP", "COPY", "POP_TOP", "RETURN_VALUE", "RETURN_CONST"}
# Python's class protocol (``__repr__``, ``__eq__``, ``__hash__``, dataclass-generated methods,
# ...) is boilerplate that many classes share; ``__init__`` and ``__call__`` are judged by
# their bodies like any other function.
_JUDGED_DUNDERS = {"__init__", "__call__"}
_FINGERPRINTS: dict = {}


def _line(ins, previous):
    """The source line of an instruction (``positions`` from Python 3.11, ``starts_line``
    before), or ``previous`` when it has none of its own."""
    positions = getattr(ins, "positions", None)
    if positions is not None and positions.lineno is not None:
        return positions.lineno
    start = getattr(ins, "starts_line", None)
    return start if type(start) is int else previous


def _is_protocol_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4 and (
        name not in _JUDGED_DUNDERS)


def _fingerprint(code: types.CodeType):
    """What identifies a function's body, whatever file it was compiled from and whichever
    equivalent instruction forms the compiler chose: the instructions (jump targets left out)
    with the names and constants they use, the variable names and the argument counts. A
    verbatim copy of a reference's source (``exec(inspect.getsource(...))``) has the same
    fingerprint.

    ``None`` (never a copy) for bodies that an honest student can write identically: fewer
    than three statements or twelve instructions, pure plumbing (loads, calls, stores and
    returns with no computation: delegation, an ``__init__`` that stores its arguments, a
    ``__call__`` that forwards) and the dunder methods of Python's class protocol."""
    if code in _FINGERPRINTS:
        return _FINGERPRINTS[code]
    ops, statements, plumbing = _instructions(code)
    found = None
    if (len(ops) >= _MIN_FINGERPRINT_OPS and statements >= _MIN_FINGERPRINT_STATEMENTS
            and not plumbing and not _is_protocol_dunder(code.co_name)):
        found = (ops, code.co_varnames, code.co_argcount, code.co_kwonlyargcount)
    if len(_FINGERPRINTS) < 100_000:
        _FINGERPRINTS[code] = found
    return found


def _instructions(code: types.CodeType) -> tuple[tuple, int, bool]:
    """``(ops, statements, plumbing)``: the normalised instructions (a nested function or
    lambda stands for its own instructions and variable names, so that two bodies that differ
    only inside a lambda differ), the number of statements, and whether the body is only
    plumbing (:data:`_PLUMBING_OPS`)."""
    ops, statement_lines, plumbing, line = [], set(), True, None
    for ins in dis.get_instructions(code):
        line = _line(ins, line)
        if ins.opname in _SKIP_OPS:
            continue
        opname = _SAME_OPS.get(ins.opname, ins.opname)
        if opname in _STATEMENT_ENDS or "JUMP_IF" in opname or opname.startswith("POP_JUMP"):
            statement_lines.add(line)
        plumbing = plumbing and opname in _PLUMBING_OPS
        arg = None if ins.opcode in _JUMPS else ins.argval
        if isinstance(arg, types.CodeType):
            arg = (arg.co_name, _instructions(arg)[0], arg.co_varnames)
        ops.append((opname, repr(arg)))
    return tuple(ops), len(statement_lines), plumbing


# library code is never a student's copy: not worth fingerprinting
_LIBRARY_DIRS = (TORCH_DIR, NUMPY_DIR, NNBOLTS_DIR, _STDLIB_DIR)


def nested_codes(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from nested_codes(const)


def qualified_name(code: types.CodeType) -> str:
    """``nnbolts.optim.adam._adam_`` for a code object of nnbolts (best effort)."""
    path = code.co_filename
    if path.startswith(NNBOLTS_DIR):
        rel = path[len(NNBOLTS_DIR):-3].replace(os.sep, ".")
        module = "nnbolts" if rel == "__init__" else "nnbolts." + rel.removesuffix(".__init__")
    elif path.startswith(TORCH_DIR):
        rel = path[len(TORCH_DIR):-3].replace(os.sep, ".")
        module = "torch" if rel == "__init__" else "torch." + rel.removesuffix(".__init__")
    else:
        module = os.path.basename(path)
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


_NOTHING, _HIT, _PUBLIC_HELPER = 0, 1, 2
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class Watch:
    """A profiler installed (``sys.setprofile`` and ``threading.setprofile``) only while the
    student's code runs. It records

    * calls into *forbidden code objects* (the reference and the private helpers it ran),
      reported as cheating;
    * calls to a function whose body is a verbatim copy of a forbidden one (same bytecode,
      names and constants, compiled elsewhere), reported as cheating; short, delegating and
      boilerplate bodies never count (:func:`_fingerprint`);
    * while a public nnbolts function the student may use runs (``fan_in_and_fan_out``,
      ``minibatches`` inside a training loop), only the *core* forbidden code counts: the
      reference and the private code of its own module;
    * calls into *discouraged* code or built-ins (torch's own implementation of the graded
      function, e.g. ``torch.sigmoid`` in a student's ``sigmoid``), reported as a plain failure;

    and whether the student's code removed the profiler. Calls made while an *allowed* function
    runs (one the exercise lets students use) are not examined.
    """

    def __init__(self):
        self.forbidden: dict[types.CodeType, str] = {}
        # the reference itself and the private code of its own module: forbidden even while a
        # public nnbolts helper runs (other forbidden code only counts when the student's own
        # code calls it, so that public helpers stay usable)
        self.core: set[types.CodeType] = set()
        self.fingerprints: dict = {}
        self.discouraged: dict[types.CodeType, str] = {}
        self.discouraged_builtins: dict[str, str] = {}
        self.allowed: set[types.CodeType] = set()
        self.hits: list[tuple[str, str]] = []  # (kind, what): kind "reference" or "torch"
        self.tampered = False
        # Off the main thread there is no SIGALRM: the profile callback enforces the deadline
        # itself (a time.monotonic() value), for every loop that calls anything.
        self.deadline: float | None = None
        self.expired = False
        self._seen: dict[types.CodeType, bool] = {}
        self._allowed_frames: list = []
        self._fn = self._profile  # one bound-method object, to compare with sys.getprofile()

    # -- configuration -----------------------------------------------------------------------
    def forbid_code(self, code: types.CodeType, name: str | None = None, *,
                    core: bool = False) -> None:
        for inner in nested_codes(code):
            if core:
                self.core.add(inner)
            if inner in self.forbidden:
                continue
            self.forbidden[inner] = name or qualified_name(inner)
            fingerprint = _fingerprint(inner)
            if fingerprint is not None:
                self.fingerprints[fingerprint] = self.forbidden[inner]
            self._seen.pop(inner, None)

    def discourage_code(self, code: types.CodeType, name: str) -> None:
        for inner in nested_codes(code):
            self.discouraged.setdefault(inner, name)

    def allow_code(self, code: types.CodeType) -> None:
        self.allowed.add(code)

    # -- the profile function ----------------------------------------------------------------
    def _profile(self, frame, event, arg):
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.expired, self.deadline = True, None  # once: the grader's cleanup runs next
            raise StudentTimeout
        if event == "call":
            code = frame.f_code
            if self._allowed_frames:
                if code in self.core:
                    self._record(code)
                return
            if code in self.allowed:
                self._allowed_frames.append(frame)
                return
            verdict = self._seen.get(code)
            if verdict is None:
                verdict = self._seen[code] = self._examine(code)
            if verdict == _HIT:
                self._record(code)
            elif verdict == _PUBLIC_HELPER:
                self._allowed_frames.append(frame)
        elif event == "return":
            if self._allowed_frames and frame is self._allowed_frames[-1]:
                self._allowed_frames.pop()
        elif event == "c_call" and not self._allowed_frames and self.discouraged_builtins:
            name = getattr(arg, "__name__", None)
            if name in self.discouraged_builtins:
                owner = getattr(arg, "__self__", None)
                if owner is None:
                    owner = getattr(arg, "__objclass__", None)
                module = getattr(arg, "__module__", None) or ""
                if isinstance(owner, TENSOR_BASE) or owner in _TORCH_NAMESPACES or (
                        isinstance(owner, type) and issubclass(owner, TENSOR_BASE)) or (
                        owner is None and module.startswith("torch")):
                    self.hits.append(("torch", self.discouraged_builtins[name]))

    def _examine(self, code) -> int:
        if code in self.forbidden and code not in self.core and code.co_flags & _RESUMABLE:
            # a generator made by a public helper (minibatches' batches) is resumed from the
            # student's own loop: that is using the helper, not calling its insides
            return _NOTHING
        if code in self.forbidden or code in self.discouraged:
            return _HIT
        path = code.co_filename
        if path.startswith(NNBOLTS_DIR) and not path.startswith(GRADING_DIR):
            qual = getattr(code, "co_qualname", code.co_name)
            if not any(part.startswith("_") for part in qual.split(".") if part != "<locals>"):
                return _PUBLIC_HELPER
            return _NOTHING
        return _HIT if self.copy_of(code) is not None else _NOTHING

    def copy_of(self, code: types.CodeType) -> str | None:
        """The name of the forbidden code that ``code`` is a verbatim copy of, or ``None``.
        Library code is never a copy; neither is a body too short or too generic to tell
        (see :func:`_fingerprint`)."""
        if not self.fingerprints or code.co_filename.startswith(_LIBRARY_DIRS):
            return None
        fingerprint = _fingerprint(code)
        return None if fingerprint is None else self.fingerprints.get(fingerprint)

    def _record(self, code) -> None:
        if code in self.forbidden:
            self.hits.append(("reference", self.forbidden[code]))
        elif code in self.discouraged:
            self.hits.append(("torch", self.discouraged[code]))
        else:
            self.hits.append(("copy", self.copy_of(code)))

    # -- use -------------------------------------------------------------------------------
    @contextmanager
    def watching(self):
        previous, previous_threads = sys.getprofile(), threading.getprofile()
        self._allowed_frames.clear()
        self.expired = False
        threading.setprofile(self._fn)
        sys.setprofile(self._fn)
        try:
            yield self
        finally:
            if sys.getprofile() is not self._fn:
                self.tampered = True
            sys.setprofile(previous)
            threading.setprofile(previous_threads)


_TORCH_NAMESPACES = tuple(
    ns for ns in (getattr(torch._C, name, None) for name in (
        "_VariableFunctions", "_VariableFunctionsClass", "_nn", "_special", "_linalg"))
    if ns is not None)


class Recorder:
    """Records which code objects of nnbolts a reference call runs (its *footprint*)."""

    def __init__(self):
        self.codes: set[types.CodeType] = set()
        self._fn = self._profile

    def _profile(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code.co_filename.startswith(NNBOLTS_DIR) and not code.co_filename.startswith(
                    GRADING_DIR):
                self.codes.add(code)

    @contextmanager
    def recording(self):
        previous = sys.getprofile()
        sys.setprofile(self._fn)
        try:
            yield self
        finally:
            sys.setprofile(previous)


# --------------------------------------------------------------------------------------------
# time limits
# --------------------------------------------------------------------------------------------

class StudentTimeout(BaseException):
    """Raised inside the student's code when its time is up. A ``BaseException`` so that an
    ``except Exception`` in the student's loop does not swallow it."""


_REPEAT_S = 0.05  # after the deadline the alarm keeps firing, in case the student swallowed it


class Deadline:
    """What :func:`time_limit` yields: ``fired`` is true once the time was up (even if the
    student's code caught the exception)."""

    def __init__(self):
        self.fired = False


@contextmanager
def time_limit(seconds: float | None):
    """Interrupt the block with :class:`StudentTimeout` after ``seconds`` of wall-clock time.

    In the main thread of a POSIX process this is ``SIGALRM`` via ``setitimer`` (it also wakes
    ``time.sleep``); the previous handler and any running timer are restored afterwards.
    Elsewhere an exception is injected into the thread with ``PyThreadState_SetAsyncExc``.
    Either way Python only notices between bytecodes: a single long C call (one huge matrix
    product) finishes first. The notebook-level timeout of the pipeline is the backstop.
    Yields a :class:`Deadline`.
    """
    deadline = Deadline()
    if seconds is None or seconds <= 0:
        yield deadline
        return
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _alarm(seconds, deadline):
            yield deadline
    else:
        with _async_exception(seconds, deadline):
            yield deadline


def _is_students(code) -> bool:
    return not code.co_filename.startswith(_LIBRARY_DIRS)


@contextmanager
def _alarm(seconds, deadline):
    armed = [True]
    previous_trace = sys.gettrace()

    def killer(frame, event, arg):
        # Raises at the next line of the student's code, so also inside an ``except`` block
        # that swallowed the alarm: the exception then leaves that block. CPython turns a
        # tracer off once it raises, so a second, enclosing ``except`` that swallows it too
        # wins (until the notebook's own timeout).
        if not armed[0] or not _is_students(frame.f_code):
            return None
        if event != "line":  # "call", "exception", "return": keep tracing this frame
            return killer
        raise StudentTimeout

    def handler(signum, frame):
        if not armed[0]:
            return
        deadline.fired = True
        sys.settrace(killer)
        f = frame
        while f is not None and not f.f_code.co_filename.startswith(GRADING_DIR):
            if _is_students(f.f_code):
                f.f_trace, f.f_trace_lines = killer, True
            f = f.f_back
        raise StudentTimeout

    previous_handler = signal.signal(signal.SIGALRM, handler)
    previous_delay, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds, _REPEAT_S)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        if deadline.fired:
            sys.settrace(previous_trace)
        changed = signal.getsignal(signal.SIGALRM) is not handler
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:
            left = max(previous_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, previous_interval)
        if changed:
            raise CheatingSuspected("the submission replaced the SIGALRM handler that limits "
                                    "its running time")


@contextmanager
def _async_exception(seconds, deadline):
    import ctypes

    target = ctypes.c_ulong(threading.get_ident())
    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    lock, done, armed = threading.Lock(), threading.Event(), [True]

    def fire():
        # this thread inherited the grader's call watcher (threading.setprofile): drop it
        sys.setprofile(None)
        wait = seconds
        while not done.wait(wait):
            with lock:
                if not armed[0]:
                    return
                deadline.fired = True
                set_async(target, ctypes.py_object(StudentTimeout))
            wait = _REPEAT_S

    threading.Thread(target=fire, daemon=True, name="nnbolts-grading-timer").start()
    try:
        yield
    finally:
        # Disarm under the lock: afterwards no exception is scheduled, and at most one is
        # still pending. Let it arrive here, where it is caught. (Never "clear" it with
        # PyThreadState_SetAsyncExc(id, NULL): CPython 3.11 then leaves the interpreter's
        # eval breaker set for good, and the next profiled call spins at its first line.)
        for _ in range(1000):
            try:
                with lock:
                    armed[0] = False
                done.set()
                _drain()
                break
            except StudentTimeout:
                continue


def _drain() -> None:
    """A few function calls: each is a point where a pending asynchronous exception lands."""
    for _ in range(3):
        _nothing()


def _nothing() -> None:
    return None


# --------------------------------------------------------------------------------------------
# static audit of a submission's source
# --------------------------------------------------------------------------------------------

_PATCH_ROOTS = {"torch", "numpy", "np", "math", "builtins", "nnbolts", "sys", "signal",
                "threading", "unittest", "pytest"}
_SUSPICIOUS_CALLS = {
    "sys.setprofile": "removes or replaces the grader's call watcher",
    "sys.settrace": "installs a tracer (can interfere with the grader)",
    "threading.setprofile": "replaces the grader's call watcher in threads",
    "signal.signal": "changes a signal handler (the grader's time limit uses SIGALRM)",
    "signal.setitimer": "changes the interval timer the grader's time limit uses",
    "signal.alarm": "changes the alarm the grader's time limit uses",
    "ctypes.pythonapi": "reaches into the interpreter's C API",
    "gc.get_referrers": "searches the interpreter's memory for other objects",
    "gc.get_objects": "searches the interpreter's memory for other objects",
    "importlib.reload": "reloads a module",
    "os.kill": "sends a signal to a process",
}
_SUSPICIOUS_NAMES = {
    "TorchFunctionMode": "defines a torch function mode (it can rewrite every torch call)",
    "TorchDispatchMode": "defines a torch dispatch mode (it can rewrite every torch operation)",
    "__torch_function__": "overrides __torch_function__ (a tensor that lies to comparisons)",
    "__torch_dispatch__": "overrides __torch_dispatch__",
}


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def audit_source(source: str, graded=()) -> list[str]:
    """Scan a submission's code (the student's cells, joined) for constructs that tamper with
    grading; return one finding per line, e.g. ``"line 3: assigns torch.allclose"``.

    It flags assignments to (or ``setattr``/``delattr`` on) attributes of torch, numpy, math,
    builtins, sys, nnbolts and their aliases; any use of ``nnbolts.grading``; imports of the
    reference functions named in ``graded`` from nnbolts; ``sys.modules``; profilers, tracers,
    signal handlers and timers; ``ctypes``; ``gc`` object searches; ``__code__`` assignment;
    ``inspect.getsource`` of nnbolts; torch function/dispatch modes and ``__torch_function__``.
    This is static and can be evaded (``exec`` of a computed string, ``getattr`` with a computed
    name); it complements the run-time checks, it does not replace them. IPython magics and
    shell lines (``%``, ``!``) are ignored; a source that does not parse gives no findings.

    Example (pipeline, not a hidden test): ``findings = audit_source(code, graded=["adam_step"])``
    """
    lines = [("# " + line) if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    aliases = {}  # local name -> dotted module name
    findings = []
    graded = set(graded)

    def note(node, text):
        findings.append(f"line {getattr(node, 'lineno', '?')}: {text}")

    def resolve(dotted):
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        base = aliases.get(head, head)
        return f"{base}.{rest}" if rest else base

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[(alias.asname or alias.name).split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
                if alias.name.startswith("nnbolts.grading"):
                    note(node, f"imports {alias.name} (the grader)")
                if alias.name == "ctypes":
                    note(node, "imports ctypes")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if node.module.startswith("nnbolts.grading") or (
                        node.module == "nnbolts" and alias.name == "grading"):
                    note(node, f"imports from {node.module} (the grader)")
                elif node.module.startswith("nnbolts") and alias.name in graded:
                    note(node, f"imports the reference {node.module}.{alias.name}")
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            name = resolve(_dotted(target)) if isinstance(target, ast.Attribute) else None
            if name and name.split(".")[0] in _PATCH_ROOTS:
                note(node, f"assigns {name}")
            if isinstance(target, ast.Attribute) and target.attr == "__code__":
                note(node, "assigns a function's __code__")
        if isinstance(node, ast.Call):
            func = resolve(_dotted(node.func))
            if func in ("setattr", "delattr") and node.args:
                owner = resolve(_dotted(node.args[0]))
                if owner and owner.split(".")[0] in _PATCH_ROOTS:
                    note(node, f"{func} on {owner}")
            elif func in _SUSPICIOUS_CALLS:
                note(node, f"calls {func}: {_SUSPICIOUS_CALLS[func]}")
            elif func == "inspect.getsource" and node.args:
                arg = resolve(_dotted(node.args[0])) or ""
                if arg.startswith("nnbolts"):
                    note(node, f"reads the source of {arg}")
        if isinstance(node, ast.Attribute):
            name = resolve(_dotted(node))
            if name == "sys.modules":
                note(node, "uses sys.modules")
            elif name and name.startswith("nnbolts.grading"):
                note(node, f"uses {name} (the grader)")
            elif name and name.startswith("nnbolts.") and node.attr in graded:
                note(node, f"uses the reference {name}")
            elif node.attr in _SUSPICIOUS_NAMES:
                note(node, _SUSPICIOUS_NAMES[node.attr])
        elif isinstance(node, ast.Name) and node.id in _SUSPICIOUS_NAMES:
            note(node, _SUSPICIOUS_NAMES[node.id])
        elif isinstance(node, ast.FunctionDef) and node.name in _SUSPICIOUS_NAMES:
            note(node, _SUSPICIOUS_NAMES[node.name])
        elif isinstance(node, ast.Name) and node.id in ("__builtins__",):
            note(node, "uses __builtins__")
    seen, unique = set(), []
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            unique.append(finding)
    return unique
