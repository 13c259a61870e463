"""A kernel factory: import torch, IPython and the grader once, then fork one kernel per notebook.

Starting a Python kernel and importing torch takes seconds; most of a short notebook's grading
time. The zygote pays that once per grading run: it imports the heavy modules (and nothing
else: no thread, no socket, no CUDA context is created), then for each request forks a child
that confines itself (:func:`student_side.sandbox.apply`: limits, Landlock, its own scratch
directory and environment), and becomes an IPython kernel listening on the connection file it
was given.
Every child starts from the same pristine memory image, so no state passes from one student to
another; the zygote itself never runs student code.

It never imports the course's own code (``nnbolts``): what it has in memory, every kernel has.

Protocol (one JSON object per line): the grader writes
``{"id": n, "spec": {...}, "connection_file": ..., "log": ...}`` on the zygote's stdin; the
zygote answers ``{"id": n, "pid": p}`` (or ``{"id": n, "error": ...}``) on stdout, and later
``{"exit": p, "code": c}`` when that kernel has ended (``c < 0``: killed by signal ``-c``).
The zygote dies with the grader (``PR_SET_PDEATHSIG``), and its children die with it.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
import tempfile


def _child(request: dict) -> None:
    """In the forked child: become the notebook's supervisor (student_side.sandbox.supervise),
    whose own child confines itself and runs the kernel. Never returns."""
    code = 1
    try:
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 65536)  # the zygote's control pipes above all
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from student_side import sandbox

        spec = request["spec"]

        def kernel() -> None:
            os.environ.clear()
            os.environ.update(spec["env"])
            tempfile.tempdir = None  # re-read TMPDIR
            sys.path[:] = [p for p in sys.path if p and not sandbox.course_folder(p)]
            from ipykernel.kernelapp import IPKernelApp

            # no SQLite history: a database file written in the scratch home by every kernel,
            # about 20 ms of its start; the input history stays in memory (In, _i)
            IPKernelApp.launch_instance(argv=["-f", request["connection_file"],
                                              "--HistoryManager.enabled=False"])

        sandbox.supervise(spec, kernel)
    except BaseException:  # whatever happens, the child must not return
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)



# Imported for speed only, after the configured preload. The first torch.optim optimizer a process
# builds imports torch._dynamo (Optimizer's methods are wrapped in torch._disable_dynamo, which
# imports it on first call), and with it sympy and torch.distributed: about 800 modules, 1.7 s on
# one core and several seconds when the jobs share the cores. Paid here once, it is shared by
# every forked kernel. The import creates no thread and no CUDA context, so forking stays safe.
WARM = ("torch._dynamo",
        # every kernel builds an ipykernel Debugger, whose module imports debugpy and pydevd:
        # 0.09 s of each kernel's start, no thread, no trace function
        "ipykernel.debugger",
        # what IPKernelApp.initialize imports otherwise in every kernel (pdb, the completer,
        # the store magic, tornado's asyncio bridge): about 20 ms of each start
        "IPython.core.debugger", "IPython.core.completerlib", "IPython.extensions.storemagic",
        "tornado.platform.asyncio", "faulthandler")


def main(preload: list[str]) -> None:
    from student_side import sandbox

    sandbox._libc().prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the grader
    # PR_SET_CHILD_SUBREAPER: a process orphaned by a kernel whose supervisor was killed comes
    # here, and is killed (see _reap)
    sandbox._libc().prctl(36, 1, 0, 0, 0)
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(json.dumps({"warning": f"could not preload {name}: {exc}"}), flush=True)
    importlib.import_module("ipykernel.kernelapp")
    importlib.import_module("ipykernel.ipkernel")
    for name in WARM:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # an older torch: the kernels import what they need
            print(json.dumps({"warning": f"could not preload {name}: {exc}"}), flush=True)

    out = sys.stdout
    buffered = b""
    stdin = sys.stdin.buffer.raw
    # A kernel's end is reported the moment it happens: the grader's next kernel waits for it.
    # SIGCHLD writes a byte to this pipe, which wakes the select() below.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)
    print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
    while True:
        _reap(out)
        ready, _, _ = select.select([stdin, wake_r], [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 4096)
        if stdin not in ready:
            continue
        chunk = os.read(stdin.fileno(), 65536)
        if not chunk:
            # the grader closed the pipe: exit without tearing torch down (a second of
            # finalisation that the grader would wait for)
            sys.stdout.flush()
            os._exit(0)
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            request = json.loads(line)
            try:
                pid = os.fork()
            except OSError as exc:
                print(json.dumps({"id": request["id"], "error": str(exc)}), file=out, flush=True)
                continue
            if pid == 0:
                _child(request)
            _SUPERVISORS.add(pid)
            print(json.dumps({"id": request["id"], "pid": pid}), file=out, flush=True)


_SUPERVISORS: set[int] = set()  # the notebooks' supervisors this zygote forked and not reaped


def _reap(out) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            break
        if pid in _SUPERVISORS:
            _SUPERVISORS.discard(pid)
            print(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}),
                  file=out, flush=True)
    # any other child is an orphan of a kernel tree whose supervisor died: it must not live
    from student_side import sandbox

    for pid in sandbox._descendants(os.getpid()):
        if pid not in _SUPERVISORS and _parent(pid) == os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError):
        return -1


if __name__ == "__main__":
    main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else [])
