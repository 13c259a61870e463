"""Execute one prepared notebook in a sandboxed kernel, with a per-cell and a per-notebook limit.

A small executor on top of ``jupyter_client`` rather than nbclient's, because grading needs what
a notebook runner does not:

* the kernel's own verdict for every cell (``execute_reply`` status): an exception swallowed by a
  custom IPython exception handler still counts as an error;
* a cell that never ran -- the kernel died, or the notebook ran out of time -- is an error, not an
  empty (and so, for nbgrader, full-marks) output;
* after a timeout the kernel is interrupted and, if it does not come back within a few seconds,
  killed; either way grading of this notebook ends in a bounded time and other notebooks go on;
* output is capped, so a submission that prints gigabytes cannot exhaust the grader's memory;
* in a test cell, failures are moved before any result a student's code may have displayed,
  which nbgrader would otherwise read as partial credit.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
import zmq
from nbformat import NotebookNode

from instructor import limits as defaults
from instructor import trusted
from instructor.integrity import MARK
from student_side import sandbox

NOT_RUN = "CellNotExecuted"
MAX_OUTPUT_CHARS = defaults.OUTPUT_CHARS_PER_CELL
_INTERRUPT_GRACE = 5.0  # seconds a timed-out kernel gets to answer an interrupt
_MAX_ERROR_CHARS = 20_000  # an error is always kept (it decides a score), this much of it


@dataclass
class Limits:
    """What one notebook may use; the defaults are instructor/limits.py's."""

    cell_timeout: float = defaults.CELL_TIMEOUT_S
    submission_timeout: float = defaults.SUBMISSION_TIMEOUT_S
    memory_bytes: int | None = defaults.MEMORY_LIMIT_MB * 2**20
    file_size_bytes: int | None = defaults.FILE_SIZE_LIMIT_MB * 2**20
    threads: int = defaults.KERNEL_THREADS
    max_processes: int | None = defaults.MAX_PROCESSES
    cpu_seconds: int | None = defaults.CPU_TIME_S
    cpu_share: float | None = defaults.CPU_SHARE
    output_chars_per_cell: int = defaults.OUTPUT_CHARS_PER_CELL
    output_chars_per_notebook: int = defaults.OUTPUT_CHARS_PER_NOTEBOOK
    startup_timeout: float = 60.0
    use_landlock: bool = True
    use_cgroups: bool = True
    user: str | None = defaults.UNPRIVILEGED_USER  # the kernels' user when the grader is root
    preload: tuple[str, ...] = ()  # modules imported at kernel start, before any student code


@dataclass
class Outcome:
    """What happened while executing one notebook."""

    events: list[str] = field(default_factory=list)  # for the report: timeouts, crashes, ...
    kernel_died: bool = False
    timed_out: bool = False
    seconds: float = 0.0
    sandboxed: str = ""
    confinement: str = ""  # cgroup or subreaper; the kernel's user
    flags: list[str] = field(default_factory=list)  # decided by the trusted side
    judged: int = 0  # test cells decided by the trusted side


class _KernelGone(Exception):
    pass


class _CellTimeout(Exception):
    pass


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[f"{ename}: {evalue}"])


class _Budget:
    """Output characters left to keep, in this cell and in the whole notebook."""

    def __init__(self, per_cell: int, per_notebook: int):
        self.per_cell, self.notebook, self.cell = per_cell, per_notebook, per_cell
        self.per_notebook_limit = per_notebook
        self.noted = False

    def start_cell(self) -> None:
        self.cell, self.noted = self.per_cell, False


def _output_size(out: NotebookNode) -> int:
    return (len(str(out.get("text", ""))) + sum(len(str(v)) for v in out.get("data", {}).values())
            + len(str(out.get("evalue", ""))) + sum(len(str(t)) for t in out.get("traceback", [])))


def _shortened_error(out: NotebookNode) -> NotebookNode:
    evalue = str(out.get("evalue", ""))[:_MAX_ERROR_CHARS]
    tb, size = [], 0
    for line in out.get("traceback", []):
        size += len(str(line))
        if size > _MAX_ERROR_CHARS:
            tb.append("... traceback truncated by the grader ...")
            break
        tb.append(str(line))
    return nbformat.v4.new_output("error", ename=str(out.get("ename", "Error"))[:200],
                                  evalue=evalue, traceback=tb)


def _add_output(cell: NotebookNode, out: NotebookNode, budget: _Budget) -> None:
    size = _output_size(out)
    if out.output_type == "error":  # always kept: an error decides a test cell's score
        if size > min(budget.cell, budget.notebook, _MAX_ERROR_CHARS):
            out = _shortened_error(out)
        budget.cell -= size
        budget.notebook -= size
        cell.outputs.append(out)
        return
    if budget.cell <= 0 or budget.notebook <= 0:
        return
    budget.cell -= size
    budget.notebook -= size
    if budget.notebook <= 0:
        if not budget.noted:
            budget.noted = True
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stdout", text=(
                    "\n... output truncated by the grader: this notebook's outputs reached "
                    f"its limit of {budget.per_notebook_limit:,} characters (all cells "
                    "together); later output is not kept ...\n")))
        return
    if budget.cell <= 0:
        cell.outputs.append(nbformat.v4.new_output(
            "stream", name="stdout", text=(
                "\n... output truncated by the grader: this cell's outputs reached its limit "
                f"of {budget.per_cell:,} characters ...\n")))
        return
    if (out.output_type == "stream" and cell.outputs and cell.outputs[-1].output_type == "stream"
            and cell.outputs[-1].name == out.name):
        cell.outputs[-1].text += out.text
    else:
        cell.outputs.append(out)


async def _run_cell(km, kc, cell: NotebookNode, timeout: float,
                    budget: _Budget | None = None) -> dict:
    """Execute ``cell`` and fill its outputs; return the ``execute_reply`` content."""
    msg_id = kc.execute(cell.source, store_history=True, allow_stdin=False, stop_on_error=False)
    cell.outputs = []
    if budget is None:
        budget = _Budget(MAX_OUTPUT_CHARS, MAX_OUTPUT_CHARS)
    budget.start_cell()
    deadline = time.monotonic() + timeout
    reply, idle = None, False
    clear_pending = False
    next_alive_check = time.monotonic() + 1.0
    while reply is None or not idle:
        now = time.monotonic()
        if now > deadline:
            raise _CellTimeout
        if now > next_alive_check:
            next_alive_check = now + 1.0
            if not await km.is_alive():
                raise _KernelGone
        if reply is None:
            # the reply usually comes just before the final "idle": once idle, wait on it
            try:
                msg = await kc.get_shell_msg(timeout=0.05 if idle else 0)
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply = msg["content"]
            except Empty:
                pass
        if idle:
            continue
        try:
            msg = await kc.get_iopub_msg(timeout=0.05)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status":
            idle = content.get("execution_state") == "idle"
        elif kind == "execute_input":
            cell.execution_count = content.get("execution_count")
        elif kind == "clear_output":
            if content.get("wait"):
                clear_pending = True
            else:
                cell.outputs = []
        elif kind in ("stream", "display_data", "execute_result", "error"):
            if clear_pending:
                cell.outputs, clear_pending = [], False
            _add_output(cell, nbformat.v4.output_from_msg(msg), budget)
    return reply


def _failures_first(cell: NotebookNode) -> None:
    """Put errors and stderr before any other output of a test cell.

    nbgrader scores a test cell by its *first* telling output: an error or stderr gives 0, but a
    number shown as a result (``execute_result``) gives that many points. Student code can emit
    such a result (``get_ipython().displayhook(1)``) before the test fails; moving the failures
    to the front makes the failure count.
    """
    cell.outputs.sort(key=lambda o: not (o.output_type == "error" or (
        o.output_type == "stream" and o.get("name") == "stderr")))


def _stamp(cell: NotebookNode, reason: str) -> None:
    cell.outputs = [_error_output(NOT_RUN, reason)]


_SOCKET_PATH_MAX = 107  # bytes of a Unix socket's path (sun_path), its final NUL excluded
_LONGEST_SOCKET_NAME = len("/grade-XXXXXXXX/kernel-65535")


def runtime_root(scratch_root: str | None, run_as) -> str | None:
    """Where the kernel's private folder (working directory, connection file, IPC sockets) is
    made: ``scratch_root`` when the sockets' paths fit in ``sun_path`` and the kernel's user
    can reach it, else the system's temporary folder (``/tmp`` when even that is too long)."""
    fits = (lambda root: root is not None and
            len(os.fsencode(os.path.abspath(root))) + _LONGEST_SOCKET_NAME <= _SOCKET_PATH_MAX)
    if fits(scratch_root) and not run_as:
        return scratch_root
    temp = tempfile.gettempdir()
    return temp if fits(temp) else "/tmp"


def describe_confinement(cgroup, run_as, limits: Limits, why: str = "") -> str:
    """One line for the report: what bounds the kernel's tree and as whom it runs."""
    tree = (f"{cgroup.description} + subreaper" if cgroup is not None else
            "subreaper (no cgroup: memory, processes and CPU limited per process)"
            if sandbox.subreaper_available() else "unconfined tree (no cgroup, no subreaper)")
    if run_as:
        who = f"user {limits.user} (uid {run_as[0]}, no capabilities)"
    elif hasattr(os, "getuid") and os.getuid() == 0:
        who = (f"root without capabilities ({why}; RLIMIT_NPROC does not bind uid 0"
               + (", pids.max does)" if cgroup is not None and "pids" in str(cgroup.what)
                  else ")"))
    else:
        who = "grader's user (not root)"
    return f"{tree}; {who}"


async def _stop_supervisor(km, grace: float = 5.0) -> None:
    """Ask the notebook's supervisor to kill the kernel's tree and exit (``SIGTERM``); kill it
    if it has not within ``grace`` seconds."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is None or process.poll() is not None:
        return
    try:
        os.kill(process.pid, signal.SIGTERM)
    except OSError:
        return
    end = time.monotonic() + grace
    while process.poll() is None and time.monotonic() < end:
        await asyncio.sleep(0.003)
    if process.poll() is None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except OSError:
            pass


def _kill_group(km) -> None:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the kernel and whatever it started
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _exit_text(km) -> str:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "the kernel died"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else code
        return f"the kernel was killed by signal {name}"
    return f"the kernel exited with status {code}"


# --------------------------------------------------------------------------------------------
# kernels forked from a pre-loaded zygote (student_side/zygote.py)
# --------------------------------------------------------------------------------------------


class ZygoteProcess:
    """A running ``student_side.zygote``, shared by ``clients`` kernel workers: each gets a socket
    of its own (:attr:`channels`, handed to :class:`Zygote` in the process that uses it). The
    zygote imports torch and IPython once for all of them."""

    def __init__(self, preload: tuple[str, ...], scratch: str, threads: int = 1,
                 clients: int = 1):
        home = tempfile.mkdtemp(prefix="zygote-", dir=scratch)
        pairs = [socket.socketpair() for _ in range(clients)]
        ends = [zygote_end.fileno() for _, zygote_end in pairs]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "student_side.zygote", json.dumps(list(preload)),
             ",".join(map(str, ends))],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=ends,
            env=sandbox.kernel_env(home, threads),
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for _, zygote_end in pairs:
            zygote_end.close()
        self.channels = [ours for ours, _ in pairs]

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def lifeline(self) -> int:
        """The descriptor whose closing stops the zygote (a forked worker closes its copy)."""
        return self._proc.stdin.fileno()

    def close(self) -> None:
        """Stop the zygote (its kernels die with it) and wait for it, a few seconds at most."""
        for channel in self.channels:
            channel.close()
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class Zygote:
    """One worker's handle on a zygote: its requests and the zygote's answers go over
    ``channel``, a socket of a :class:`ZygoteProcess`. Without one, a zygote of its own is
    started (a single notebook run, the tests)."""

    def __init__(self, preload: tuple[str, ...] = (), scratch: str | None = None,
                 threads: int = 1, *, channel: socket.socket | None = None):
        self._own = None
        if channel is None:
            self._own = ZygoteProcess(preload, scratch or tempfile.mkdtemp(), threads)
            channel = self._own.channels[0]
        self._channel = channel
        self._ids = itertools.count()
        self._pending: dict[int, tuple] = {}
        self._exits: dict[int, int] = {}
        self._ready = threading.Event()
        self._gone = False
        self._write_lock = threading.Lock()
        self.warnings: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self._channel.makefile("rb"):
                msg = json.loads(line)
                if "ready" in msg:
                    self._ready.set()
                elif "warning" in msg:
                    self.warnings.append(msg["warning"])
                elif "exit" in msg:
                    self._exits[msg["exit"]] = msg["code"]
                elif "id" in msg and msg["id"] in self._pending:
                    loop, future = self._pending.pop(msg["id"])
                    loop.call_soon_threadsafe(future.set_result, msg)
        except (OSError, ValueError):  # closed under the reader
            pass
        self._gone = True
        self._ready.set()  # the zygote is gone: nobody waits for it any more

    @property
    def alive(self) -> bool:
        return not self._gone and (self._own is None or self._own.alive)

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout) and self.alive

    async def fork(self, request: dict, timeout: float = 30.0) -> int:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request_id = next(self._ids)
        self._pending[request_id] = (loop, future)
        with self._write_lock:
            self._channel.sendall((json.dumps({"id": request_id, **request}) + "\n").encode())
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise OSError(f"the zygote could not fork: {reply['error']}")
        return reply["pid"]

    def returncode(self, pid: int) -> int | None:
        if pid in self._exits:
            return self._exits[pid]
        return None if self.alive else -signal.SIGKILL

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
        else:
            self._channel.close()


class _ForkedProcess:
    """What jupyter_client's provisioner expects of a ``Popen``, for a kernel the zygote forked."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, zygote: Zygote):
        self.pid, self._zygote = pid, zygote

    @property
    def returncode(self) -> int | None:
        return self._zygote.returncode(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _zygote_provisioner(km, zygote: Zygote, spec: dict, log_path: str):
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class ZygoteProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd, **kwargs):
            pid = await zygote.fork({"spec": spec, "connection_file": km.connection_file,
                                     "log": log_path})
            self.process = _ForkedProcess(pid, zygote)
            self.pid = self.pgid = pid  # the child starts its own session
            self.cwd = spec["workdir"]
            return self.connection_info

    return ZygoteProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)


async def execute(nb: NotebookNode, limits: Limits, *, log_path: Path | None = None,
                  scratch_root: str | None = None, zygote: Zygote | None = None,
                  seed: int | None = None) -> Outcome:
    """Run the code cells of ``nb`` in order, in place, skipping those the integrity step zeroed.

    With a ``seed``, test cells are not run in the kernel: the trusted side decides each one
    (``instructor/trusted.py``) from fresh cases drawn with that seed, observing the kernel, and
    writes its outputs. Without one, every cell runs in the kernel (a plain notebook run)."""
    outcome = Outcome()
    start = time.monotonic()
    deadline = start + limits.submission_timeout
    run_as, not_dropped = sandbox.unprivileged_user(limits.user)
    workdir = tempfile.mkdtemp(prefix="grade-", dir=runtime_root(scratch_root, run_as))
    os.chmod(workdir, 0o700)
    cgroup = (sandbox.Cgroup.create(limits.memory_bytes, limits.max_processes, limits.cpu_share)
              if limits.use_cgroups else None)
    manager_class = sandbox.SandboxedKernelManager
    km = manager_class(transport="ipc", ip=os.path.join(workdir, "kernel"))
    km.connection_file = os.path.join(workdir, "connection.json")
    km.sandbox_spec = sandbox.kernel_spec_for(
        workdir, memory_bytes=limits.memory_bytes, file_size_bytes=limits.file_size_bytes,
        threads=limits.threads, use_landlock=limits.use_landlock,
        cpu_seconds=limits.cpu_seconds, max_processes=limits.max_processes, run_as=run_as,
        cgroups=cgroup.paths if cgroup else [], own_files=[km.connection_file],
        cpus=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None)
    abi = km.sandbox_spec["landlock_abi"]
    outcome.sandboxed = f"landlock ABI {abi}" if abi else "no landlock (rlimits and clean env only)"
    outcome.confinement = describe_confinement(cgroup, run_as, limits, not_dropped)
    log_file = str(log_path) if log_path else os.devnull
    if zygote is not None and zygote.alive:
        km.kernel_id = os.path.basename(workdir)
        km.provisioner = _zygote_provisioner(km, zygote, km.sandbox_spec, log_file)
        outcome.sandboxed += ", forked from a pre-loaded zygote"
    log = open(log_file, "ab")
    kc = None
    stop_reason = None
    budget = _Budget(limits.output_chars_per_cell, limits.output_chars_per_notebook)
    channel = None  # the trusted side's line to the kernel, made at the first test cell
    try:
        try:
            # exec_lines run before the first cell, so these modules see torch and the
            # builtins as they were before any student code (nnbolts.grading captures the
            # genuine comparison functions at import); __import__ binds no name.
            extra = [f'--IPKernelApp.exec_lines=__import__("{m}")' for m in limits.preload]
            # The client connects before the kernel has bound its sockets; ZeroMQ retries every
            # 100 ms by default, a pause of up to a tenth of a second in every notebook.
            km.context.setsockopt(zmq.RECONNECT_IVL, 5)
            await km.start_kernel(stdout=log, stderr=log, cwd=workdir, extra_arguments=extra)
            kc = km.client()
            kc.start_channels()
            await _wait_ready(km, kc, min(limits.startup_timeout, limits.submission_timeout))
        except Exception as exc:
            stop_reason = f"the kernel did not start ({type(exc).__name__}: {exc})"
            outcome.kernel_died = True
            outcome.events.append(stop_reason)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or MARK in cell.metadata:
                continue
            if stop_reason is not None:
                _stamp(cell, f"This cell was not executed: {stop_reason}.")
                continue
            if not cell.source.strip():
                continue
            remaining = deadline - time.monotonic()
            timeout = min(limits.cell_timeout, remaining)
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            label = f"cell {gid}" if gid else f"added cell {index}"
            md = cell.metadata.get("nbgrader", {})
            if seed is not None and md.get("grade") and not md.get("solution"):
                if channel is None:  # one per notebook: the harness is loaded once
                    channel = trusted.KernelChannel(asyncio.get_running_loop(), km, kc, deadline)
                why = await _judge_cell(channel, cell, seed, outcome, label)
                if why is not None:
                    stop_reason = why
                    outcome.events.append(f"{why} (in {label})")
                continue
            try:
                if timeout <= 0:
                    raise _CellTimeout
                reply = await _run_cell(km, kc, cell, timeout, budget)
            except _CellTimeout:
                if remaining <= limits.cell_timeout:
                    stop_reason = (f"the notebook ran past its time limit of "
                                   f"{limits.submission_timeout:g} s")
                    outcome.timed_out = True
                    outcome.events.append(f"{stop_reason} (in {label})")
                    cell.outputs.append(_error_output("TimeoutError", stop_reason))
                    continue
                outcome.events.append(f"{label} ran past the per-cell time limit of "
                                      f"{limits.cell_timeout:g} s")
                cell.outputs.append(_error_output(
                    "TimeoutError", f"this cell ran past its time limit of "
                    f"{limits.cell_timeout:g} s and was interrupted"))
                if not await _recover(km, kc, deadline):
                    stop_reason = "the kernel did not respond after a timeout and was stopped"
                    outcome.timed_out = True
                    outcome.events.append(stop_reason)
                continue
            except _KernelGone:
                stop_reason = f"{_exit_text(km)} while running {label}"
                outcome.kernel_died = True
                outcome.events.append(stop_reason)
                cell.outputs.append(_error_output("DeadKernelError", stop_reason))
                continue
            if reply.get("status") != "ok" and not any(
                    o.output_type == "error" for o in cell.outputs):
                ename = reply.get("ename") or "Error"
                evalue = reply.get("evalue") or "the kernel reported an error that was not shown"
                cell.outputs.append(_error_output(ename, evalue))
                outcome.events.append(f"{label} raised {ename} but the error was hidden "
                                      "from the notebook's output")
            if gid:
                _failures_first(cell)
    finally:
        if kc is not None:
            kc.stop_channels()
        await _stop_supervisor(km)  # it kills the kernel's whole tree, then exits
        try:
            await asyncio.wait_for(km.shutdown_kernel(now=True), timeout=10)
        except Exception:
            pass
        _kill_group(km)
        if cgroup is not None:
            if cgroup.memory_exceeded():
                outcome.events.append("the kernel's processes ran into the memory limit of "
                                      f"{(limits.memory_bytes or 0) // 2**20} MiB (all "
                                      "together) and one was killed")
            cgroup.destroy()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
        outcome.seconds = time.monotonic() - start
    return outcome


PASSED = "All of the grader's checks of this cell passed.\n"


async def _judge_cell(channel: trusted.KernelChannel, cell: NotebookNode, seed: int,
                      outcome: Outcome, label: str) -> str | None:
    """Decide one test cell on the trusted side and write its outputs; return why the
    kernel cannot be used any more, or ``None``."""
    block = trusted.hidden_block(cell.source)
    if block is None:
        verdict = trusted.Verdict(False, "GradingSetupError", "this test cell has no hidden "
                                  "tests, so the grader cannot decide it", event=f"{label} has "
                                  "no hidden tests: scored 0")
    else:
        loop = asyncio.get_running_loop()
        prepared = trusted.prepare(block)
        verdict = prepared if isinstance(prepared, trusted.Verdict) else (
            await loop.run_in_executor(None, functools.partial(trusted.judge, prepared, channel,
                                                               seed=seed)))
    outcome.judged += 1
    if verdict.passed:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=PASSED)]
    else:
        message = verdict.message[:_MAX_ERROR_CHARS]
        cell.outputs = [nbformat.v4.new_output("error", ename=verdict.ename or "Error",
                                               evalue=message, traceback=message.splitlines())]
    if verdict.flag:
        outcome.flags.append(f"{label}: {verdict.flag}")
    if verdict.event:
        outcome.events.append(f"{label}: {verdict.event}")
    return channel.dead


async def _wait_ready(km, kc, timeout: float) -> None:
    """Return once the kernel answers on its shell channel and its output reaches us.

    ``kc.wait_for_ready`` does the same, but after a reply whose output was published before
    the subscription was connected it waits 0.2 s before asking again; here a missed output
    costs 0.02 s."""
    deadline = time.monotonic() + timeout
    while True:
        msg_id = kc.kernel_info()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"the kernel did not answer within {timeout:g} s")
            try:
                msg = await kc.get_shell_msg(timeout=min(0.5, remaining))
            except Empty:
                if not await km.is_alive():
                    raise RuntimeError("the kernel died before it answered") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        # the kernel publishes its busy/idle status for the request: seeing it proves that the
        # output channel is connected, so no output of the first cell can be lost
        try:
            while time.monotonic() < deadline:
                msg = await kc.get_iopub_msg(timeout=0.02)
                if msg["parent_header"].get("msg_id") == msg_id:
                    return
        except Empty:
            continue


async def _recover(km, kc, deadline: float) -> bool:
    """Interrupt a timed-out kernel and check that it answers again."""
    try:
        await km.interrupt_kernel()
    except Exception:
        return False
    probe = nbformat.v4.new_code_cell("None")
    grace = min(_INTERRUPT_GRACE, deadline - time.monotonic())
    if grace <= 0:
        return False
    try:
        reply = await _run_cell(km, kc, probe, grace)
    except (_CellTimeout, _KernelGone):
        await _stop_supervisor(km, grace=2.0)
        return False
    return reply is not None


# --------------------------------------------------------------------------------------------
# the grader's kernel workers: one process per job
# --------------------------------------------------------------------------------------------


class _Worker:
    """What one kernel worker process holds: its handle on the shared zygote (a handle's socket
    and reader thread belong to the process that uses them) and the warnings it gave."""

    zygote: Zygote | None = None
    warned = 0


# What the trusted checks import (instructor/trusted.py runs the hidden blocks, which build
# torch.optim optimizers, and with them torch._dynamo: about 3,000 modules, 2.2 s), imported
# once by the grader before it forks the workers, so that no worker imports them again.
JUDGE_PRELOAD = ("torch", "nnbolts", "nnbolts.grading", "nnbolts.activations", "nnbolts.init",
                 "nnbolts.optim", "nnbolts.schedules", "nnbolts.losses", "nnbolts.backprop",
                 "nnbolts.parallel", "nnbolts.data", "nnbolts.train", "nnbolts.landscapes",
                 "torch._dynamo")


def _start_worker(channels, lifeline: int | None, taken, threads: int,
                  cpus: list[int] | None) -> None:
    """In a new worker (the ``n``-th to start): torch's intra-op threads cut to the kernels'
    count; pinned to ``cpus[n]`` when the jobs have a CPU each; then the ``n``-th socket of the
    shared zygote kept and the others closed (and the zygote's lifeline), so that this worker
    holds only its own line to it.

    The trusted checks' tensors are small, and torch's default (one OpenMP thread per core)
    made each worker's threads spin after every operation on the core the other job needs:
    with two jobs on two cores the workers used about a fifth more CPU than with one. A pinned
    worker's kernels run on its CPU too (:func:`execute` hands its affinity to the kernel's
    spec): the judge and the kernel hand each request back and forth on one core, and its
    cache, and two jobs no longer wake up on each other's core."""
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # (the workers then need no torch either)
        pass
    with taken.get_lock():
        mine = taken.value
        taken.value += 1
    if cpus:
        try:
            os.sched_setaffinity(0, {cpus[mine % len(cpus)]})
        except OSError:  # (that CPU went away meanwhile) a placement only: run anywhere
            pass
    if not channels:
        return
    for index, channel in enumerate(channels):
        if index != mine:
            channel.close()
    os.close(lifeline)
    _Worker.zygote = Zygote(channel=channels[mine])


def _job_cpus(n: int) -> list[int] | None:
    """A CPU for each of ``n`` workers, where two or more jobs have one each (of those this
    process may use); else None, and the workers run wherever the scheduler puts them (one job
    may use a second core for its kernel's and judge's other threads)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    available = sorted(os.sched_getaffinity(0))
    return available[:n] if 2 <= n <= len(available) else None


def _worker_ready() -> int:
    return os.getpid()


def _execute_in_worker(nb: NotebookNode, limits: Limits, log_path, scratch_root, seed):
    zygote = _Worker.zygote
    warnings = []
    if zygote is not None and not zygote.wait_ready(limits.startup_timeout):
        warnings.append("the kernel zygote did not start; this worker starts every kernel from "
                        "scratch")
        _Worker.zygote = zygote = None
    outcome = asyncio.run(execute(nb, limits, log_path=log_path, scratch_root=scratch_root,
                                  zygote=zygote, seed=seed))
    if zygote is not None:
        warnings += zygote.warnings[_Worker.warned:]
        _Worker.warned = len(zygote.warnings)
    return nb, outcome, warnings


class KernelWorkers:
    """The processes that run the students' kernels and judge their test cells, one per job.

    Each notebook's kernel, its test cells' trusted checks and the traffic between them live in
    one worker process, so that ``--jobs N`` notebooks are judged on N interpreters rather than
    on threads of the grader's one interpreter, whose lock let two jobs grade only about 1.6
    times as fast as one. One zygote (``student_side/zygote.py``) serves them all: started
    first, it imports torch and IPython while the grader imports what the trusted checks need
    (:data:`JUDGE_PRELOAD`) and then forks the workers, which inherit it. A worker that dies
    (the grader's fault, never a student's: the kernels are other processes) is replaced, with
    the zygote, and the notebook it was running is run once more."""

    def __init__(self, n: int, preload: tuple[str, ...], scratch: str, threads: int = 1,
                 zygote: bool = True):
        self._n, self._threads = max(1, n), threads
        self._zygote_args = (tuple(preload), scratch, threads) if zygote else None
        self.warnings: list[str] = []
        self._zygote: ZygoteProcess | None = None
        self._pool = self._start()

    def _start(self):
        import importlib
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._zygote_args:
            self._zygote = ZygoteProcess(*self._zygote_args, clients=self._n)
        for name in JUDGE_PRELOAD:  # imported once; a replacement finds them imported
            try:
                importlib.import_module(name)
            except ImportError:  # an older torch: the workers import what they need
                pass
        # Frozen, the 380,000 objects imported so far are left out of every collection of the
        # processes forked from here on (a worker's full collections walked them all, about 10
        # times a run, copying the pages they lie on): the workers, the recorder, the renderers.
        gc.freeze()
        context = multiprocessing.get_context("fork")
        channels = self._zygote.channels if self._zygote else []
        lifeline = self._zygote.lifeline if self._zygote else None
        pool = ProcessPoolExecutor(self._n, mp_context=context, initializer=_start_worker,
                                   initargs=(channels, lifeline, context.Value("i", 0),
                                             self._threads, _job_cpus(self._n)))
        for future in [pool.submit(_worker_ready) for _ in range(self._n)]:
            future.result()
        return pool

    async def execute(self, nb: NotebookNode, limits: Limits, *, log_path: Path | None = None,
                      scratch_root: str | None = None, seed: int | None = None
                      ) -> tuple[NotebookNode, Outcome]:
        """:func:`execute` in a worker: the executed notebook (a copy of ``nb``) and its
        outcome."""
        from concurrent.futures.process import BrokenProcessPool

        loop = asyncio.get_running_loop()
        run = functools.partial(_execute_in_worker, nb, limits, log_path, scratch_root, seed)
        pool = self._pool
        try:
            executed, outcome, warnings = await loop.run_in_executor(pool, run)
        except BrokenProcessPool:
            if pool is self._pool:
                # the first to notice replaces the pool and the zygote, in this thread: the
                # zygote dies with the thread that started it (PR_SET_PDEATHSIG), and the
                # others, blocked meanwhile, then find the new pool
                self.warnings.append("a kernel worker died; the workers were restarted")
                self._replace(pool)
            executed, outcome, warnings = await loop.run_in_executor(self._pool, run)
        self.warnings.extend(w for w in warnings if w not in self.warnings)
        return executed, outcome

    def _replace(self, broken) -> None:
        broken.shutdown(wait=False)
        if self._zygote is not None:
            self._zygote.close()
        self._pool = self._start()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._zygote is not None:
            self._zygote.close()
