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

One zygote serves every kernel worker of a grading run (``instructor/execute.py``), each over a
socket of its own whose descriptor the command line names. Protocol (one JSON object per line,
on that socket): the zygote says ``{"ready": pid}`` once it has imported everything (after any
``{"warning": ...}``); a worker writes ``{"id": n, "spec": {...}, "connection_file": ...,
"log": ...}``; the zygote answers ``{"id": n, "pid": p}`` (or ``{"id": n, "error": ...}``), and
later ``{"exit": p, "code": c}`` when that kernel has ended (``c < 0``: killed by signal ``-c``),
on the socket that asked for it. The zygote exits when the grader closes its stdin or every
socket is closed; it dies with the grader (``PR_SET_PDEATHSIG``), and its children die with it.
"""

from __future__ import annotations

import gc
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


def main(preload: list[str], clients: list[int]) -> None:
    from student_side import sandbox

    sandbox._libc().prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the grader
    # PR_SET_CHILD_SUBREAPER: a process orphaned by a kernel whose supervisor was killed comes
    # here, and is killed (see _reap)
    sandbox._libc().prctl(36, 1, 0, 0, 0)
    warnings = []
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            warnings.append(f"could not preload {name}: {exc}")
    importlib.import_module("ipykernel.kernelapp")
    importlib.import_module("ipykernel.ipkernel")
    for name in WARM:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # an older torch: the kernels import what they need
            warnings.append(f"could not preload {name}: {exc}")
    # Every kernel's collections would otherwise walk (and so copy, page by page) the whole
    # inherited heap: frozen, the objects imported above stay shared with the kernels.
    gc.collect()
    gc.freeze()

    open_clients = {fd: b"" for fd in clients}  # each client's unfinished line
    owner: dict[int, int] = {}  # supervisor pid -> the client that asked for it

    def send(fd: int, message: dict) -> None:
        if fd in open_clients:
            try:
                os.write(fd, (json.dumps(message) + "\n").encode())
            except OSError:  # that client is gone: its requests end with it
                open_clients.pop(fd, None)

    stdin = sys.stdin.buffer.raw  # the grader's lifeline: it closes it to stop the zygote
    # A kernel's end is reported the moment it happens: the grader's next kernel waits for it.
    # SIGCHLD writes a byte to this pipe, which wakes the select() below.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)
    for fd in clients:
        for warning in warnings:
            send(fd, {"warning": warning})
        send(fd, {"ready": os.getpid()})
    while True:
        for pid, code in _reap():
            send(owner.pop(pid, -1), {"exit": pid, "code": code})
        ready, _, _ = select.select([stdin, wake_r, *open_clients], [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 4096)
        if stdin in ready and not os.read(stdin.fileno(), 4096):
            # the grader closed the pipe: exit without tearing torch down (a second of
            # finalisation that the grader would wait for)
            os._exit(0)
        for fd in [fd for fd in ready if fd in open_clients]:
            chunk = os.read(fd, 65536)
            if not chunk:  # that client closed its end
                del open_clients[fd]
                continue
            open_clients[fd] += chunk
            while b"\n" in open_clients.get(fd, b""):
                line, open_clients[fd] = open_clients[fd].split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:
                    send(fd, {"id": request["id"], "error": str(exc)})
                    continue
                if pid == 0:
                    _child(request)
                _SUPERVISORS.add(pid)
                owner[pid] = fd
                send(fd, {"id": request["id"], "pid": pid})
        if not open_clients:
            os._exit(0)


_SUPERVISORS: set[int] = set()  # the notebooks' supervisors this zygote forked and not reaped


def _reap() -> list[tuple[int, int]]:
    """The supervisors that ended since the last call, with their exit codes."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid in _SUPERVISORS:
            _SUPERVISORS.discard(pid)
            ended.append((pid, os.waitstatus_to_exitcode(status)))
    # any other child is an orphan of a kernel tree whose supervisor died: it must not live
    from student_side import sandbox

    for pid in sandbox._descendants(os.getpid()):
        if pid not in _SUPERVISORS and _parent(pid) == os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return ended


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError):
        return -1


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), [int(fd) for fd in sys.argv[2].split(",")])
