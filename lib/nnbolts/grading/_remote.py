"""The student's functions as the trusted side sees them: proxies that ask the student's kernel
for observations through a :class:`Channel`.

A hidden test runs in the grader's own process (``grading.trusted``); every name it reads that
the test does not define -- ``adam_step``, ``answer`` -- is fetched from the student's kernel:
plain values (numbers, strings, tensors, containers) by copy, functions and other objects as
proxies (:class:`RemoteCallable`, :class:`RemoteObject`) whose calls travel over the channel
with the arguments encoded by ``student_side/observe.py``'s wire format and the results decoded
with every type and size checked. An argument the student's function changed in place comes
back and is written into the grader's own copy, so the engine's checks ("modified its
argument", "did not fill the tensor it was given") work as on a local function.

Nothing the kernel sends is executed: a malformed reply raises :class:`ObservationError`, and
the cell scores 0.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import typing

import torch

from ._errors import GradingSetupError, StudentTimeout

try:  # the wire format: one module, which the kernel runs too (the course's student side)
    from student_side import observe as wire
except ImportError:  # nnbolts without the course's grader installed: checks run in-process only
    wire = None
ProtocolError = wire.ProtocolError if wire is not None else ValueError


def harness_source() -> str:
    """The source the kernel runs to answer observations (public protocol)."""
    with open(wire.__file__, encoding="utf-8") as f:
        return f.read()


class ObservationError(Exception):
    """The kernel gave no valid observation: a malformed reply, a dead kernel, no answer."""


class StudentError(Exception):
    """An exception raised by the student's code in the kernel (its type's name is kept)."""

    where: str | None = None


_ERROR_TYPES: dict[str, type] = {}


def _student_error(name: str, message: str, where) -> BaseException:
    if not name.isidentifier():
        name = "Error"
    klass = _ERROR_TYPES.get(name)
    if klass is None:
        klass = _ERROR_TYPES[name] = type(name, (StudentError,), {"__module__": "student"})
    exc = klass(message)
    exc.where = where if isinstance(where, str) else None
    return exc


# The seconds the current student call may still take (set by the engine around each call).
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)
# The channel of the notebook being judged (set by the trusted runner).
CHANNEL: contextvars.ContextVar = contextvars.ContextVar("channel", default=None)
# The harness classes of the cell being judged, by name (their instances travel by attributes).
HARNESS_CLASSES: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "harness_classes", default=frozenset())


class Channel(typing.Protocol):
    """What the trusted side needs of a kernel (``instructor.trusted.KernelChannel``, and
    ``LocalChannel`` for tests): ``request(message, timeout) -> reply``, which raises
    :class:`TimeoutError` when no reply came within ``timeout`` seconds (the implementation has
    interrupted the kernel by then) and :class:`ObservationError` when the kernel is gone or its
    reply is not a JSON object; and ``install()``, which loads the harness into the kernel."""

    def request(self, message: dict, timeout: float | None) -> dict: ...

    def install(self) -> None: ...


def active() -> bool:
    return CHANNEL.get() is not None


def _channel() -> Channel:
    channel = CHANNEL.get()
    if channel is None:
        raise ObservationError("no student kernel to observe")
    return channel


def _ask(message: dict, timeout: float | None = None) -> dict:
    if timeout is None:
        timeout = DEADLINE.get()
    message = {"protocol": wire.PROTOCOL, **message}
    try:
        with _waiting():
            reply = _channel().request(message, timeout)
    except TimeoutError:
        raise StudentTimeout() from None
    if not isinstance(reply, dict):
        raise ObservationError("the kernel's reply is not an object")
    if "protocol_error" in reply:
        raise ObservationError(f"the kernel could not answer: {str(reply['protocol_error'])[:300]}")
    return reply


def _decode(data, refs=None):
    def handle(hid, kind):
        return RemoteCallable(hid, kind) if kind == "callable" else RemoteObject(hid, kind)

    def resolve(path):
        if refs is None:
            raise ProtocolError("a reference where none is expected")
        value = refs
        try:
            for step in path:
                value = value[step]
        except (KeyError, IndexError, TypeError) as exc:
            raise ProtocolError("a reference to nothing") from exc
        return value

    def harness(cls, attributes):  # what became of a harness object the grader sent: data
        return wire.HarnessObject(cls, attributes)

    try:
        return wire.decode(data, handle=handle, refs=resolve, harness=harness)
    except ProtocolError as exc:
        raise ObservationError(f"malformed reply from the kernel: {exc}") from None
    except (ValueError, TypeError, OverflowError, RuntimeError) as exc:
        raise ObservationError(f"malformed reply from the kernel: {type(exc).__name__}") from None


def _encode(value):
    try:
        return wire.encode(value, harness_classes=HARNESS_CLASSES.get())
    except ProtocolError as exc:
        raise GradingSetupError(f"the hidden test passes a value the kernel cannot receive: "
                                f"{exc}") from None


def _outcome(reply: dict, refs=None):
    if "raised" in reply:
        raised = reply["raised"]
        if not isinstance(raised, dict):
            raise ObservationError("malformed reply from the kernel: a bad error report")
        raise _student_error(str(raised.get("error", "Error"))[:100],
                             str(raised.get("message", ""))[:2000], raised.get("where"))
    if "stop" in reply:
        raise StopIteration
    if "ok" not in reply:
        raise ObservationError("malformed reply from the kernel: no result")
    return _decode(reply["ok"], refs)


def _write_back(local, after) -> None:
    """What the student's code did to its arguments, into the grader's own copies."""
    if isinstance(local, torch.Tensor):
        if not isinstance(after, torch.Tensor):
            raise ObservationError("malformed reply from the kernel: an argument changed kind")
        with torch.no_grad():
            if after.shape == local.shape and after.dtype == local.dtype:
                local.copy_(after.to(local.device))
            else:  # resized or re-typed in place (t.data = ...): show what it became
                local.data = after.to(local.device)
    elif isinstance(local, torch.Generator):
        if isinstance(after, torch.Generator):
            try:
                local.set_state(after.get_state())
            except RuntimeError as exc:
                raise ObservationError("malformed reply: a generator's state") from exc
    elif isinstance(local, (list, tuple)) and isinstance(after, (list, tuple)):
        if isinstance(local, list) and len(after) != len(local):
            local[:] = after
            return
        for a, b in zip(local, after):
            _write_back(a, b)
    elif isinstance(local, dict) and isinstance(after, dict):
        for key in list(local):  # what the student removed, changed or added, mirrored
            if key not in after:
                del local[key]
            elif isinstance(local[key], (torch.Tensor, torch.Generator, list, tuple, dict)):
                _write_back(local[key], after[key])
        for key in after:
            if key not in local:
                local[key] = after[key]


PREFETCH = 64
"""Items of a student's iterator fetched in one exchange."""


class RemoteObject:
    """A value of the student's kernel that cannot travel (an iterator, an object)."""

    def __init__(self, hid: int, kind: str = "object", name: str | None = None):
        self.id, self.kind, self.name = hid, kind, name
        self._ahead: list[dict] = []  # an iterator's items the kernel sent ahead of need

    def __repr__(self) -> str:
        return f"<{self.name or self.kind} in the student's kernel>"

    def __iter__(self):
        reply = _ask({"op": "iter", "handle": self.id})
        return _outcome(reply)

    def __next__(self):
        # the next items in one exchange (up to the end, the first error, or about 4 MB): a
        # check reads an epoch's batches to the end, or fails
        if not self._ahead:
            self._ahead = _results(_ask({"op": "next", "handle": self.id, "count": PREFETCH}),
                                   PREFETCH, "the items of an iterator")
            self._ahead.reverse()
        item = self._ahead[-1]
        if len(self._ahead) > 1 or not ("stop" in item or "raised" in item):
            self._ahead.pop()  # the end and an error stay: asked again, they repeat
        return _outcome(item)

    def _wire(self):
        return wire.Handle(self.id, self.kind)


class RemoteCallable(RemoteObject):
    """A function of the student's kernel: calling it is one observation."""

    def __init__(self, hid: int | None, kind: str = "callable", name: str | None = None):
        super().__init__(hid, kind, name)

    def _address(self) -> dict:
        return {"handle": self.id} if self.id is not None else {"name": self.name}

    def __call__(self, *args, **kwargs):
        sent_args, sent_kwargs = _encode(_handles(list(args))), _encode(_handles(kwargs))
        reply = _ask({"op": "call", **self._address(), "args": sent_args,
                      "kwargs": sent_kwargs})
        return _observed(reply, list(args), kwargs)

    def calls(self, calls: list[tuple[list, dict]]) -> list:
        """Several calls in one exchange, made in order in the kernel up to the first that
        raises. Returns one function per call that takes the grader's own copy of that call's
        ``(args, kwargs)``, writes back what the call did to them, and returns the result or
        raises what the student's code raised; after the first exception the remaining ones
        raise it again (a check stops at the first failure anyway)."""
        reply = _ask({"op": "calls", **self._address(),
                      "calls": _encode([[_handles(list(a)), _handles(k)] for a, k in calls])})
        return _replay(_results(reply, len(calls), "several calls"), len(calls),
                       lambda item: lambda args, kwargs: _observed(item, list(args), kwargs))

    def chains(self, runs: list[dict], *, init: RemoteCallable | None = None) -> list[list]:
        """Optimizer runs in one exchange. Each run is a dict with ``param``, ``grads``,
        ``kwargs`` and either ``state`` or, with ``init`` (the rule's init function in the
        kernel), ``init_kwargs``: the kernel calls ``init(param, **init_kwargs)`` for the first
        state, then this step function on ``(param, grad, state)`` for each grad in turn, each
        time with the previous call's ``(new_param, new_state)``, and stops that run at its
        first exception or malformed result.

        Returns, per run, one function per call (init's first) that takes the grader's own copy
        of that call's positional arguments, writes back what the call did to them, and returns
        the result or raises what the student's code raised; when a run stopped early, the calls
        after it repeat its last (the engine fails there)."""
        sent = []
        for run in runs:
            one = {"param": _encode(_handles(run["param"])), "grads": _encode(list(run["grads"])),
                   "kwargs": _encode(_handles(run["kwargs"]))}
            if init is not None:
                one["init_kwargs"] = _encode(_handles(run["init_kwargs"]))
            else:
                one["state"] = _encode(_handles(run["state"]))
            sent.append(one)
        message = {"op": "chain", **self._address(), "runs": sent}
        if init is not None:
            message["init"] = init._address()
        results = _ask(message).get("results")
        if not isinstance(results, list) or len(results) != len(runs):
            raise ObservationError("malformed reply from the kernel: the runs of a chain")
        observed = []
        for run, items in zip(runs, results):
            count = len(run["grads"]) + (init is not None)
            items = _results({"results": items}, count, "the steps of a chain")
            # the keywords are the grader's: only the call's own arguments are written back
            keywords = [run.get("init_kwargs")] * (init is not None) + [run["kwargs"]] * len(
                run["grads"])
            observed.append(_replay(list(zip(items, keywords)), count, lambda pair: (
                lambda args: _observed(pair[0], list(args), pair[1], kwargs_back=False))))
        return observed

    def many(self, arglists: list[tuple]) -> list:
        """Thunks, one per argument list, that return the value or raise what the student's
        code raised: all calls in one exchange (a schedule's thousand steps). After the first
        exception the remaining thunks raise it again."""
        reply = _ask({"op": "map", **self._address(),
                      "args": _encode([list(a) for a in arglists])})
        return _replay(_results(reply, len(arglists), "the values of a map"), len(arglists),
                       lambda item: lambda: _outcome(item))


def _results(reply: dict, count: int, what: str) -> list[dict]:
    """The per-call items of a reply to a request for ``count`` calls (at least one)."""
    results = reply.get("results")
    if not isinstance(results, list) or not results or len(results) > count or not all(
            isinstance(item, dict) for item in results):
        raise ObservationError(f"malformed reply from the kernel: {what}")
    return results


def _replay(results: list[dict], count: int, make) -> list:
    """One function per call, made by ``make(item)``; calls the kernel did not make (it stopped
    at an error) repeat the last one's."""
    functions = [make(item) for item in results]
    return functions + [functions[-1]] * (count - len(functions))


def _observed(item: dict, args: list, kwargs: dict, *, kwargs_back: bool = True):
    """One call's observation: what the call did to its arguments, written into the grader's
    copies ``args`` and ``kwargs``; then its result, or the student's exception raised."""
    if "after" in item:
        after = _decode(item["after"])
        if not isinstance(after, list) or len(after) != 2:
            raise ObservationError("malformed reply from the kernel: the arguments after a call")
        _write_back(args, after[0])
        if kwargs_back:
            _write_back(kwargs, after[1])
    return _outcome(item, refs=[args, kwargs])


def _handles(value):
    """Proxies among the arguments go back as the handles they stand for."""
    if isinstance(value, RemoteObject):
        if value.id is None:
            raise ObservationError("a named function cannot be passed back")
        return value._wire()
    if isinstance(value, list):
        return [_handles(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_handles(v) for v in value)
    if isinstance(value, dict):
        return {k: _handles(v) for k, v in value.items()}
    return value


def fetch(name: str):
    """The value of ``name`` in the student's notebook: a copy of a plain value, a proxy for a
    function or another object. Raises ``NameError`` when the notebook does not define it."""
    reply = _ask({"op": "get", "name": name}, timeout=10.0)
    if "raised" in reply:
        raise NameError(f"name {name!r} is not defined (the notebook has no {name})")
    value = _outcome(reply)
    if isinstance(value, RemoteObject):
        value.name = name
    return value


def in_kernel(fn):
    """A function of the public harness (marked ``@grading.harness``), called in the student's
    kernel when a hidden test is judged there, and as itself when the checks run in-process
    (tests of the grader): ``check_function(in_kernel(your_save_and_load), uninterrupted_run,
    ...)``."""
    if not active():
        return fn
    return RemoteCallable(None, "callable", fn.__name__)


# The trusted side judges several notebooks at once, in threads of one process, and its
# references share torch's global state (the global generator: a module's initial weights,
# dropout's masks; the default dtype). One judge computes at a time; a judge that waits for its
# kernel's answer lets the others compute meanwhile, so the kernels still work in parallel.
_TRUSTED = threading.Lock()
_holder = threading.local()


@contextlib.contextmanager
def judging():
    """Hold the trusted side's compute for a hidden test (``instructor/trusted.py``)."""
    with _TRUSTED:
        _holder.on = True
        try:
            yield
        finally:
            _holder.on = False


@contextlib.contextmanager
def _waiting():
    """Let other judges compute while this one waits for its kernel."""
    if not getattr(_holder, "on", False):
        yield
        return
    _holder.on = False
    _TRUSTED.release()
    try:
        yield
    finally:
        _TRUSTED.acquire()
        _holder.on = True


@contextlib.contextmanager
def exclusive():
    """Give torch's global random state back as it was after the block.

    For a reference that seeds and draws from torch's global generator (``torch.manual_seed``
    then dropout): the block runs while its judge holds the trusted side (it makes no call into
    the kernel), and the next check finds the generator as it left it."""
    with torch.random.fork_rng(devices=[]):
        yield


def harness(obj):
    """Marks a function or class of a hidden test as public harness code: the trusted runner
    also defines it in the student's kernel, where :func:`in_kernel` reaches it. On the trusted
    side it stays what it is."""
    return obj
