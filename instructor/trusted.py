"""The verdict, decided outside the student's kernel.

A graded test cell is never sent to the student's kernel. Its hidden tests (the block between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` of the instructor's source, which the
integrity step put back) run here, in the grader's process, which the confined kernel cannot
read, write, signal or trace. Every name the block reads and does not define is fetched from the
kernel (``nnbolts.grading._remote``): a copy of a plain value (``answer``), a proxy for a
function whose every call is one observation. The checks draw their cases from this run's seed
(``--seed``; fresh unless given), compute the reference here and decide.

What the kernel runs on the grader's behalf is public: ``student_side/observe.py`` (the wire format
and the dispatcher) and the block's functions and classes marked ``@grading.harness`` (how a
training loop's model is built from a recipe and a seed). The visible asserts of a test cell stay
in the notebook for the student's own runs; they decide nothing here.

A cell earns its points only when its block ran to the end here. A malformed reply, a timeout, a
dead kernel or a name the notebook does not define is 0 for that cell, with a message; flags (a
broken protocol, a grader fault) are decided here too, so nothing done in the kernel can hide or
forge one.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import json
import re
import time
from dataclasses import dataclass
from queue import Empty

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n(.*?)^[ \t]*### END HIDDEN TESTS",
                    re.S | re.M)
MAX_REPLY_CHARS = 64 * 2**20  # one observation's reply
DEFAULT_TIMEOUT = 60.0  # a request the engine does not time itself (fetching a name)
_INTERRUPT_GRACE = 5.0
_OBSERVE_MODULE = "_grading_observe"


@dataclass
class Verdict:
    """What the trusted side decided for one test cell."""

    passed: bool
    ename: str = ""
    message: str = ""
    flag: str | None = None  # for the instructor's report
    event: str | None = None  # a fault of the grader or of the kernel, for the report


def hidden_block(source: str) -> str | None:
    """The hidden tests of a test cell's instructor source, or ``None``."""
    found = HIDDEN.search(source)
    return found.group(1) if found else None


def _is_harness(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Attribute) and decorator.attr == "harness") or (
        isinstance(decorator, ast.Name) and decorator.id == "harness")


def harness_code(block: str) -> tuple[str, list[str], list[str]]:
    """The block's ``@grading.harness`` functions and classes: their source without the
    decorator, their names, and the names of the classes among them."""
    tree = ast.parse(block)
    lines = block.splitlines()
    parts, names, classes = [], [], []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and any(
                _is_harness(d) for d in node.decorator_list):
            parts.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
            names.append(node.name)
            if isinstance(node, ast.ClassDef):
                classes.append(node.name)
    return "\n\n\n".join(parts), names, classes


def _base_namespace() -> dict:
    import math
    import os
    import tempfile

    import torch
    import torch.nn.functional as F
    from torch import nn

    return {"__name__": "hidden_test", "__builtins__": builtins, "torch": torch, "F": F,
            "nn": nn, "math": math, "os": os, "tempfile": tempfile}


class StudentNamespace(dict):
    """The hidden test's globals: what it defines itself, the usual modules, and, for any
    other name, the student's value of that name, fetched from the kernel when first read."""

    def __missing__(self, name: str):
        if name.startswith("__") or hasattr(builtins, name):
            raise KeyError(name)
        from nnbolts.grading import _remote

        try:
            value = _remote.fetch(name)
        except NameError:
            raise KeyError(name) from None
        self[name] = value
        return value


@dataclass
class Prepared:
    """A hidden-test block, compiled, with its harness code."""

    code: object
    source: str
    names: list[str]
    classes: list[str]


def prepare(block: str) -> Prepared | Verdict:
    """Compile ``block`` (in the caller's thread: CPython 3.11's parser is not safe to run in
    two threads at once); a block that does not compile is a failed :class:`Verdict`."""
    try:
        code = compile(block, "<hidden test>", "exec")
        source, names, classes = harness_code(block)
    except (SyntaxError, ValueError) as exc:
        return Verdict(False, "GradingSetupError", f"the hidden test does not compile: {exc}",
                       event=f"a hidden test does not compile: {exc}")
    return Prepared(code, source, names, classes)


def judge(block: str | Prepared, channel, *, seed: int) -> Verdict:
    """Run one hidden-test block against the kernel behind ``channel`` (synchronous; the
    grader calls it from a worker thread, with the block :func:`prepare`-d beforehand)."""
    from nnbolts.grading import _remote

    prepared = prepare(block) if isinstance(block, str) else block
    if isinstance(prepared, Verdict):
        return prepared
    code, source, names, classes = (prepared.code, prepared.source, prepared.names,
                                    prepared.classes)
    # one judge computes at a time; it lets the others compute while it waits for its kernel
    with _remote.judging():
        return _judge(code, source, names, classes, channel, seed)


def _judge(code, source, names, classes, channel, seed) -> Verdict:
    from nnbolts.grading import GradingFailure, GradingSetupError, _cases, _remote

    tokens = [(_remote.CHANNEL, _remote.CHANNEL.set(channel)),
              (_cases.RUN_SEED, _cases.RUN_SEED.set(seed)),
              (_remote.HARNESS_CLASSES, _remote.HARNESS_CLASSES.set(frozenset(classes)))]
    try:
        channel.install()
        if names:
            reply = channel.request({"protocol": _remote.wire.PROTOCOL, "op": "define",
                                     "source": source, "names": names}, DEFAULT_TIMEOUT)
            if "ok" not in reply:
                raise _remote.ObservationError(
                    "the kernel could not define the grader's harness: "
                    + str(reply.get("protocol_error", reply))[:300])
        exec(code, StudentNamespace(_base_namespace()))
        return Verdict(True)
    except GradingSetupError as exc:
        return Verdict(False, "GradingSetupError", f"the grader failed on this test: {exc}",
                       event=f"grader fault: {exc}"[:300])
    except GradingFailure as exc:
        return Verdict(False, "GradingFailure", str(exc))
    except _remote.ObservationError as exc:
        return Verdict(False, "ObservationError",
                       f"the grader got no valid answer from your notebook: {exc}",
                       flag=f"no valid observation: {exc}"[:300])
    except TimeoutError as exc:
        return Verdict(False, "TimeoutError", f"the grader's request timed out: {exc}")
    except NameError as exc:
        return Verdict(False, "NameError", f"{exc} (define it and run the notebook from the "
                       "top before submitting)")
    except AssertionError as exc:
        return Verdict(False, "AssertionError", str(exc) or "the check failed")
    except _remote.StudentError as exc:
        where = f" ({exc.where})" if exc.where else ""
        return Verdict(False, type(exc).__name__, f"your code raised {type(exc).__name__}: "
                       f"{exc}{where}")
    except Exception as exc:  # anything else that the student's values made fail here
        return Verdict(False, type(exc).__name__,
                       f"the check could not use your answer: {type(exc).__name__}: {exc}"[
                           :2000])
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class KernelChannel:
    """Requests to one kernel, made from the judging thread, answered through the kernel's
    ``user_expressions`` (the reply is :func:`harness.observe.dispatch`'s JSON text)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, km, kc, deadline: float):
        self.loop, self.km, self.kc, self.deadline = loop, km, kc, deadline
        self.dead: str | None = None  # why the kernel cannot answer any more
        self.installed = False
        self.requests = 0

    # -- called from the judging thread ----------------------------------------------------
    def install(self) -> None:
        """Load the observation harness into the kernel, once per notebook (reloading it before
        every cell would protect nothing: the student's functions run inside it anyway, and a
        harness the student's code broke fails that student's own cells)."""
        from nnbolts.grading import _remote

        if self.installed:
            return

        source = _remote.harness_source()
        # one expression, so that the student's namespace gains no name
        install = ("(lambda source: (lambda module: (exec(compile(source, '<grading harness>', "
                   "'exec'), module.__dict__), __import__('sys').modules.__setitem__("
                   f"{_OBSERVE_MODULE!r}, module), 'installed')[-1])(__import__('types')."
                   f"ModuleType({_OBSERVE_MODULE!r})))({source!r})")
        reply = self._run(self._exchange("", install, DEFAULT_TIMEOUT, raw=True))
        if reply != "installed":
            raise _remote.ObservationError("the kernel did not load the grader's harness")
        self.installed = True

    def request(self, message: dict, timeout: float | None) -> dict:
        text = json.dumps(message)
        expr = f"__import__('sys').modules[{_OBSERVE_MODULE!r}].dispatch({text!r})"
        return self._run(self._exchange("", expr, DEFAULT_TIMEOUT if timeout is None
                                        else timeout))

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    # -- in the event loop -----------------------------------------------------------------
    async def _exchange(self, code: str, expression: str, timeout: float, raw: bool = False):
        from nnbolts.grading import _remote

        if self.dead:
            raise _remote.ObservationError(self.dead)
        self.requests += 1
        timeout = max(0.0, min(timeout, self.deadline - time.monotonic()))
        msg_id = self.kc.execute(code, silent=True, store_history=False,
                                 user_expressions={"r": expression}, allow_stdin=False,
                                 stop_on_error=False)
        reply = await self._reply(msg_id, timeout)
        if reply is None:
            await self._interrupt(msg_id)
            raise TimeoutError(f"no answer within {timeout:g} s")
        result = (reply.get("user_expressions") or {}).get("r")
        if reply.get("status") != "ok" or not isinstance(result, dict):
            raise _remote.ObservationError(
                "the kernel did not run the grader's request ("
                f"{str(reply.get('ename') or reply.get('status'))[:80]})")
        if result.get("status") != "ok":
            raise _remote.ObservationError(
                "the grader's request failed in the kernel ("
                f"{str(result.get('ename'))[:80]}: {str(result.get('evalue'))[:200]})")
        text = (result.get("data") or {}).get("text/plain")
        if not isinstance(text, str) or len(text) > MAX_REPLY_CHARS:
            raise _remote.ObservationError("the kernel's reply is missing or too large")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise _remote.ObservationError("the kernel's reply is not a string") from None
        if not isinstance(value, str):
            raise _remote.ObservationError("the kernel's reply is not a string")
        if raw:
            return value
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            raise _remote.ObservationError("the kernel's reply is not JSON") from None
        if not isinstance(decoded, dict):
            raise _remote.ObservationError("the kernel's reply is not an object")
        return decoded

    async def _reply(self, msg_id: str, timeout: float) -> dict | None:
        from nnbolts.grading import _remote

        end = time.monotonic() + timeout
        while True:
            await self._drain_output()
            remaining = end - time.monotonic()
            if remaining <= 0:
                return None
            try:
                msg = await self.kc.get_shell_msg(timeout=min(0.5, remaining))
            except Empty:
                if not await self.km.is_alive():
                    self.dead = "the kernel died while the grader was observing it"
                    raise _remote.ObservationError(self.dead) from None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg.get("content") or {}

    async def _drain_output(self) -> None:
        """Drop what the kernel published meanwhile (what the student's functions print while
        observed, the kernel's busy/idle): the trusted side writes the test cell's output, and
        unread messages would pile up in the grader's memory."""
        while True:
            try:
                await self.kc.get_iopub_msg(timeout=0)
            except Empty:
                return

    async def _interrupt(self, msg_id: str) -> None:
        try:
            await self.km.interrupt_kernel()
            if await self._reply(msg_id, _INTERRUPT_GRACE) is not None:
                return
        except Exception:
            pass
        self.dead = "the kernel did not respond after a timeout"


class LocalChannel:
    """The same protocol within one process, for tests: the "kernel" is ``namespace`` (a dict
    standing for the notebook's globals), answered by a private copy of the harness. Nothing
    is timed or confined: use it to drive the trusted checks quickly, never to grade."""

    def __init__(self, namespace: dict):
        import importlib.util

        from nnbolts.grading import _remote

        spec = importlib.util.spec_from_file_location("_grading_observe_local",
                                                      _remote.wire.__file__)
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.namespace = namespace
        self.requests = 0

    def install(self) -> None:
        self.module._objects.clear()
        self.module._harness.clear()
        self.module._namespace = self.namespace

    def request(self, message: dict, timeout: float | None) -> dict:
        self.requests += 1
        return json.loads(self.module.dispatch(json.dumps(message)))
