"""Run a student's kernel with as little reach as the operating system allows, without Docker.

This file is two things:

* a **launcher**: ``python student_side/sandbox.py '<json spec>' -- python -m
  ipykernel_launcher -f ...`` applies the limits below to its own process and then ``exec``s
  the kernel, which inherits them;
* the grader-side helpers that build that spec (:func:`kernel_spec_for`) and a Jupyter kernel
  manager that starts every kernel through the launcher (:class:`SandboxedKernelManager`).

The launcher imports only the standard library, so it starts in a few milliseconds.

What the launcher applies, in this order (each step is inherited by ``execve`` and by every child
the student's code may spawn):

1. resource limits (``setrlimit``): address space (``RLIMIT_AS``; on a machine with an NVIDIA
   driver ``RLIMIT_DATA`` instead, because the CUDA driver reserves far more virtual address space
   than it ever touches), the largest file it may write (``RLIMIT_FSIZE``), no core dumps;
2. ``PR_SET_PDEATHSIG``: the kernel is killed if the grader dies;
3. ``PR_SET_NO_NEW_PRIVS``, then a **Landlock** ruleset (Linux >= 5.13): the process may read
   only the Python installation, the packages on its import path and a few system directories,
   and may write only inside its own scratch directory. With Landlock ABI >= 4 it may neither bind
   nor connect TCP sockets (the kernel talks to the grader over Unix sockets in its scratch
   directory); with ABI >= 6 it may not signal processes outside its sandbox (the grader, other
   students' kernels) nor reach abstract Unix sockets. Landlock also forbids ``ptrace`` of any
   process outside the sandbox, which is what ``/proc/<pid>/environ``, ``/proc/<pid>/mem`` of the
   grader would need;
4. a scrubbed environment (``HOME``, ``TMPDIR``, ``IPYTHONDIR`` and the Jupyter directories all
   point into the scratch directory; nothing else of the grader's environment is passed on) and the
   scratch directory as working directory.

If the running kernel has no Landlock, step 3 is skipped and the report says so: the kernel then
runs with the grader's file permissions.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import resource
import signal
import sys
import time

# --------------------------------------------------------------------------------------------
# Landlock, through raw system calls (x86-64 and arm64 share these numbers)
# --------------------------------------------------------------------------------------------

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 4, 36, 37


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The Landlock ABI version the running kernel offers; 0 when it has none."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                              ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _apply_landlock(read_paths, write_paths, abi: int) -> None:
    libc = _libc()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled_access_fs=handled)
    size = 8
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP  # and no port is allowed
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    fd = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                      ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")

    def allow(path: str, rights: int) -> None:
        try:
            path_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # a path that does not exist on this machine needs no rule
        try:
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            rule = _PathBeneathAttr(allowed_access=rights & handled, parent_fd=path_fd)
            if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH),
                            ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        finally:
            os.close(path_fd)

    for path in read_paths:
        allow(path, _READ)
    for path in write_paths:
        allow(path, handled)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) < 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(fd)


def _user_tasks(uid: int) -> int:
    """Processes and threads that ``uid`` owns now (what ``RLIMIT_NPROC`` counts)."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
        except (OSError, KeyError, ValueError):
            continue
    return count


def _apply_limits(spec: dict) -> None:
    memory = spec.get("memory_bytes")
    if memory:
        which = resource.RLIMIT_DATA if spec.get("memory_rlimit") == "data" else resource.RLIMIT_AS
        resource.setrlimit(which, (memory, memory))
    file_size = spec.get("file_size_bytes")
    if file_size:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    cpu = spec.get("cpu_seconds")
    if cpu:  # SIGXCPU at the soft limit, SIGKILL at the hard one
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _limit_processes(spec: dict) -> None:
    """``RLIMIT_NPROC`` counts every task of the real user: the kernel may start
    ``max_processes`` more than that user has now. It never binds uid 0."""
    most = spec.get("max_processes")
    if most and os.getuid() != 0:
        limit = _user_tasks(os.getuid()) + int(most)
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))


def _drop_privileges(spec: dict) -> None:
    """As root: become ``spec["run_as"]`` (uid, gid), with no supplementary groups; changing
    every uid away from 0 clears all capabilities (permitted, effective, ambient). As root
    without such a user: stay uid 0 but drop every capability, for good."""
    if os.getuid() != 0:
        return
    user = spec.get("run_as")
    if not user:
        _drop_capabilities()
        return
    uid, gid = user
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    """uid 0 with no capability left: none in the bounding or ambient set, none regained by
    ``execve`` (``SECBIT_NOROOT``, locked). Files owned by root stay root's (Landlock decides
    what may be written); ``RLIMIT_NPROC`` still does not bind uid 0 (the cgroup's pids.max
    does)."""
    libc = _libc()
    # SECBIT_NOROOT | _LOCKED | SECBIT_NO_SETUID_FIXUP | _LOCKED | SECBIT_KEEP_CAPS_LOCKED
    if libc.prctl(28, 0x2F, 0, 0, 0) != 0:  # PR_SET_SECUREBITS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECUREBITS) failed")
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (EINVAL past the last capability)
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def apply(spec: dict) -> None:
    """Confine the calling process as ``spec`` says (irreversibly); see the module docstring."""
    _apply_limits(spec)
    _drop_privileges(spec)
    _limit_processes(spec)
    libc = _libc()
    # SIGKILL when the parent (the supervisor) goes away; set after the change of user,
    # which clears it
    libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if spec.get("parent") and os.getppid() != spec["parent"]:
        os._exit(1)  # the supervisor died before the line above
    abi = spec.get("landlock_abi", 0)
    if abi:
        if spec.get("run_as"):
            # a change of user makes the process undumpable: its own /proc entry would belong
            # to root. Landlock keeps other kernels (other domains) from tracing it.
            libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
        # Only this process's own /proc entry (its pid survives execve): other processes'
        # environment and command lines stay unreadable, the grader's included.
        own_proc = f"/proc/{os.getpid()}"
        _apply_landlock([*spec["read_paths"], own_proc], spec["write_paths"], abi)
    os.chdir(spec["workdir"])


# --------------------------------------------------------------------------------------------
# the supervisor: one per notebook, the parent (and subreaper) of the kernel's whole tree
# --------------------------------------------------------------------------------------------

_SUPERVISOR_SIGNALS = {signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc: no process can leave the list by
    ``setsid``; an orphan below a subreaper is re-parented to it)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def kill_descendants(rounds: int = 10_000) -> int:
    """SIGKILL every process below the calling one (a subreaper) and reap them, until none is
    left; returns how many were killed."""
    me, killed = os.getpid(), 0
    for _ in range(rounds):
        pids = _descendants(me)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = -1
            if pid <= 0:
                break
        if not pids:
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return killed
        time.sleep(0.001)
    return killed


def _join_cgroups(spec: dict) -> None:
    for path in spec.get("cgroups", ()):
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


def supervise(spec: dict, run) -> None:
    """Run ``run()`` (the kernel) in a confined child of the calling process, which becomes
    the kernel tree's subreaper; never returns.

    The caller (a zygote's child or the launcher) stays unconfined and with its user: it joins
    the notebook's cgroups, hands the connection file to the kernel's user, forks the kernel,
    passes ``SIGINT`` (an interrupt) on to it, reaps every orphan of the tree, and when the
    kernel ends or it is told to stop (``SIGTERM``) kills every process below it, ``setsid``
    children and double forks included, then exits with the kernel's status.
    """
    if spec.get("cpus") and hasattr(os, "sched_setaffinity"):
        try:  # the supervisor's and the kernel's; a placement only, so a failure is no error
            os.sched_setaffinity(0, spec["cpus"])
        except (OSError, ValueError):
            pass
    if not subreaper_available() or not hasattr(signal, "sigtimedwait"):
        apply(spec)  # not Linux: no supervisor, the kernel's processes may outlive it
        run()
        os._exit(0)
    libc = _libc()
    libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _join_cgroups(spec)
    user = spec.get("run_as")
    if user and os.getuid() == 0:
        for path in spec.get("own_files", ()):
            if os.path.exists(path):
                os.chown(path, *user)
    signal.pthread_sigmask(signal.SIG_BLOCK, _SUPERVISOR_SIGNALS)
    spec = {**spec, "parent": os.getpid()}
    kernel = os.fork()
    if kernel == 0:
        code = 1
        try:
            os.setpgid(0, 0)  # the grader's signals to the supervisor's group skip the kernel
            for signum in _SUPERVISOR_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SUPERVISOR_SIGNALS)
            apply(spec)
            run()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    status = None
    while status is None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = -1
            if pid <= 0:
                break
            if pid == kernel:
                status = wait_status
        if status is not None:
            break
        info = signal.sigtimedwait(_SUPERVISOR_SIGNALS, 1.0)
        if info is None:
            continue
        if info.si_signo == signal.SIGINT:
            try:
                os.kill(kernel, signal.SIGINT)
            except OSError:
                pass
        elif info.si_signo in (signal.SIGTERM, signal.SIGHUP):
            break
    kill_descendants()
    code = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
    if code < 0:  # the kernel was killed by a signal: end the same way, so the grader can say
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(-code, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {-code})
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


def launch(argv: list[str]) -> None:
    """Entry point of the launcher: ``sandbox.py SPEC_JSON -- COMMAND...``; never returns."""
    spec = json.loads(argv[0])
    command = argv[argv.index("--") + 1:]
    supervise(spec, lambda: os.execve(command[0], command, spec["env"]))


# --------------------------------------------------------------------------------------------
# grader side
# --------------------------------------------------------------------------------------------

# System locations a CPython + torch kernel reads. /etc is not listed whole (it may hold
# secrets readable by the grader's user); only the files the dynamic loader, time zone and
# user look-ups need.
_SYSTEM_READ_PATHS = (
    "/usr", "/lib", "/lib32", "/lib64", "/bin", "/opt/conda",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/alternatives",
    "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/sys/kernel", "/proc/sys/vm",
    "/proc/driver/nvidia", "/sys",
    # NVIDIA user-space driver locations outside /usr (container runtimes mount them here)
    "/usr/local/nvidia", "/usr/local/cuda", "/etc/OpenCL",
)


def _device_write_paths() -> list[str]:
    paths = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]
    # CUDA opens its device files read-write and drives them with ioctl
    if os.path.isdir("/dev"):
        paths += [os.path.join("/dev", name) for name in sorted(os.listdir("/dev"))
                  if name.startswith("nvidia")]
        if os.path.isdir("/dev/dri"):
            paths.append("/dev/dri")
    return paths


def has_nvidia_driver() -> bool:
    return os.path.exists("/dev/nvidiactl")


@functools.cache
def python_read_paths() -> list[str]:
    """What the kernel's interpreter imports from: its installation and its import path.

    Asked of a fresh interpreter started the way the kernel is (same executable, clean
    environment), so that nothing of the grader's own ``sys.path`` -- its working directory,
    a test runner's root -- becomes readable to student code.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as empty:
        out = subprocess.run(
            [sys.executable, "-c", "import json, sys; print(json.dumps(sys.path))"],
            env=kernel_env(empty), cwd=empty, capture_output=True, text=True, check=True,
        ).stdout
        here = os.path.realpath(empty)
        entries = [e for e in json.loads(out) if e and os.path.realpath(e) != here]
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
             os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(os.path.realpath(e) for e in entries if os.path.exists(e) and
                 not course_folder(e))
    return sorted(paths)


REPOSITORY = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def course_folder(path: str) -> bool:
    """Whether ``path`` is one of the course's own folders (the library, the solutions, the
    grader), which a kernel may neither read nor import from. The Python installation may live
    inside the repository (a ``.venv``): that stays readable."""
    real = os.path.realpath(path)
    inside = lambda root: real == root or real.startswith(root + os.sep)  # noqa: E731
    return inside(REPOSITORY) and not inside(os.path.realpath(sys.prefix))


def kernel_env(workdir: str, threads: int = 1) -> dict[str, str]:
    """A fresh environment for the kernel: nothing of the grader's except what a kernel needs."""
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": workdir,
        "TMPDIR": os.path.join(workdir, "tmp"),
        "IPYTHONDIR": os.path.join(workdir, "ipython"),
        "JUPYTER_CONFIG_DIR": os.path.join(workdir, "jupyter"),
        "JUPYTER_DATA_DIR": os.path.join(workdir, "jupyter"),
        "JUPYTER_RUNTIME_DIR": os.path.join(workdir, "jupyter"),
        "MPLCONFIGDIR": os.path.join(workdir, "matplotlib"),
        "MPLBACKEND": "agg",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "MALLOC_ARENA_MAX": "2",
        "NBGRADER_EXECUTION": "autograde",
        # ipykernel imports debugpy, which otherwise warns on every start that frozen
        # modules may hide breakpoints (nobody debugs a graded kernel)
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # torch.cuda.is_available() asks NVML instead of initialising CUDA, so that a process
        # that only checks (the zygote never does) can still fork CUDA-capable children
        "PYTORCH_NVML_BASED_CUDA_CHECK": "1",
    }
    for name in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@functools.cache
def unprivileged_user(name: str | None) -> tuple[tuple[int, int] | None, str]:
    """``((uid, gid), "")`` of the user the kernels run as when the grader runs as root: ``name``
    when it exists, is not root and can read the kernel's Python installation and import path;
    else ``(None, why not)``, and the kernels keep the grader's user (as root: with every
    capability dropped, see :func:`_drop_capabilities`)."""
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return None, "the grader is not root"
    if not name:
        return None, "no unprivileged user configured"
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None, f"no user {name!r} on this machine"
    if entry.pw_uid == 0:
        return None, f"user {name!r} is root"
    for path in python_read_paths():
        if not _readable_by(path, entry.pw_uid, entry.pw_gid):
            return None, f"user {name!r} cannot read {path}"
    return (entry.pw_uid, entry.pw_gid), ""


def _readable_by(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` (no other group) may reach and read ``path``, by its mode bits."""
    import stat

    def allowed(st, bits: int) -> bool:  # bits: 4 read, 1 search
        shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
        return (st.st_mode >> shift) & bits == bits

    parts = os.path.realpath(path).split(os.sep)
    for i in range(1, len(parts)):
        folder = os.sep + os.path.join(*parts[1:i]) if i > 1 else os.sep
        try:
            if not allowed(os.stat(folder), 1):
                return False
        except OSError:
            return False
    try:
        st = os.stat(path)
    except OSError:
        return True  # nothing to read there
    return allowed(st, 5 if stat.S_ISDIR(st.st_mode) else 4)


def subreaper_available() -> bool:
    """Whether this system lets a process adopt its orphaned descendants (Linux >= 3.4)."""
    if not sys.platform.startswith("linux"):
        return False
    value = ctypes.c_int(0)
    return _libc().prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) == 0


def kernel_spec_for(workdir: str, *, memory_bytes: int | None, file_size_bytes: int | None,
                    threads: int = 1, use_landlock: bool = True, cpu_seconds: int | None = None,
                    max_processes: int | None = None, run_as: tuple[int, int] | None = None,
                    cgroups: list[str] = (), own_files: list[str] = (),
                    cpus: list[int] | None = None) -> dict:
    """The launcher's spec for a kernel confined to ``workdir`` (which must exist); with
    ``run_as``, ``workdir`` is handed to that user; with ``cpus``, its tree runs on those CPUs
    (the grader's worker's: a placement, not a limit — the kernel may widen its own)."""
    for sub in ("tmp", "ipython", "jupyter", "matplotlib"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    if run_as:
        for folder, subs, files in os.walk(workdir):
            for name in [folder, *(os.path.join(folder, n) for n in subs + files)]:
                os.chown(name, *run_as)
    nvidia = has_nvidia_driver()
    return {
        "workdir": workdir,
        "env": kernel_env(workdir, threads),
        "memory_bytes": memory_bytes,
        "memory_rlimit": "data" if nvidia else "as",
        "file_size_bytes": file_size_bytes,
        "cpu_seconds": cpu_seconds,
        "max_processes": max_processes,
        "run_as": list(run_as) if run_as else None,
        "cgroups": list(cgroups),
        "own_files": list(own_files),
        "cpus": list(cpus) if cpus else None,
        "landlock_abi": landlock_abi() if use_landlock else 0,
        "read_paths": [*python_read_paths(), *_SYSTEM_READ_PATHS],
        "write_paths": [workdir] + _device_write_paths(),
    }


# --------------------------------------------------------------------------------------------
# cgroups: one per notebook, for the memory, process count and CPU share of its whole tree
# --------------------------------------------------------------------------------------------

_CGROUP_ROOT = "/sys/fs/cgroup"
_CGROUP_COUNTER = iter(range(1, 1 << 62))


def _own_cgroups() -> dict[str, str]:
    """``{controller or "": path}`` of the calling process, from /proc/self/cgroup."""
    found = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    found[name] = path
    except OSError:
        pass
    return found


class Cgroup:
    """The notebook's cgroup(s); :meth:`create` returns ``None`` where none can be made."""

    def __init__(self, version: int, paths: list[str], what: list[str]):
        self.version, self.paths, self.what = version, paths, what

    @property
    def description(self) -> str:
        return f"cgroup v{self.version} ({', '.join(self.what)})"

    @classmethod
    def create(cls, memory_bytes: int | None, max_processes: int | None,
               cpu_share: float | None) -> Cgroup | None:
        if not sys.platform.startswith("linux") or not os.path.isdir(_CGROUP_ROOT):
            return None
        name = f"nbgrade-{os.getpid()}-{next(_CGROUP_COUNTER)}"
        own = _own_cgroups()
        made: list[str] = []
        try:
            if os.path.exists(os.path.join(_CGROUP_ROOT, "cgroup.controllers")):
                return cls._create_v2(name, own.get("", "/"), memory_bytes, max_processes,
                                      cpu_share, made)
            return cls._create_v1(name, own, memory_bytes, max_processes, cpu_share, made)
        except OSError:
            for path in reversed(made):
                try:
                    os.rmdir(path)
                except OSError:
                    pass
            return None

    @classmethod
    def _create_v2(cls, name, own, memory_bytes, max_processes, cpu_share, made):
        # a delegated subtree: the grader's own cgroup must offer the controllers to children
        parent = os.path.join(_CGROUP_ROOT, own.lstrip("/"))
        with open(os.path.join(parent, "cgroup.subtree_control")) as f:
            enabled = set(f.read().split())
        path = os.path.join(parent, name)
        os.mkdir(path)
        made.append(path)
        what = []
        if memory_bytes and "memory" in enabled:
            _write(path, "memory.max", memory_bytes)
            _write(path, "memory.swap.max", 0, optional=True)
            what.append(f"memory {memory_bytes // 2**20} MiB")
        if max_processes and "pids" in enabled:
            _write(path, "pids.max", max_processes)
            what.append(f"pids {max_processes}")
        if cpu_share and "cpu" in enabled:
            _write(path, "cpu.max", f"{int(cpu_share * 100_000)} 100000")
            what.append(f"cpu {cpu_share:g}")
        if not what:
            raise OSError("no controller delegated")
        return cls(2, [path], what)

    @classmethod
    def _create_v1(cls, name, own, memory_bytes, max_processes, cpu_share, made):
        paths, what = [], []
        wanted = [("memory", memory_bytes), ("pids", max_processes), ("cpu", cpu_share)]
        for controller, value in wanted:
            if not value:
                continue
            base = os.path.join(_CGROUP_ROOT, controller)
            if not os.path.isdir(base) or not os.access(base, os.W_OK):
                continue
            try:
                path = os.path.join(base, own.get(controller, "/").lstrip("/"), name)
                os.mkdir(path)
            except OSError:
                continue
            made.append(path)
            if controller == "memory":
                _write(path, "memory.limit_in_bytes", value)
                what.append(f"memory {value // 2**20} MiB")
            elif controller == "pids":
                _write(path, "pids.max", value)
                what.append(f"pids {value}")
            else:
                _write(path, "cpu.cfs_period_us", 100_000)
                _write(path, "cpu.cfs_quota_us", int(value * 100_000))
                what.append(f"cpu {value:g}")
            paths.append(path)
        if not paths:
            raise OSError("no writable cgroup controller")
        return cls(1, paths, what)

    def pids(self) -> set[int]:
        found = set()
        for path in self.paths:
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    found.update(int(line) for line in f if line.strip())
            except OSError:
                pass
        return found

    def memory_exceeded(self) -> bool:
        """Whether the tree ran into its memory limit (an OOM kill in the cgroup)."""
        for path in self.paths:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    with open(os.path.join(path, name)) as f:
                        for line in f:
                            parts = line.split()
                            if len(parts) == 2 and parts[0] == key and int(parts[1]) > 0:
                                return True
                except (OSError, ValueError):
                    continue
        return False

    def destroy(self) -> int:
        """Kill every process left in the cgroup(s) and remove them; how many were killed."""
        killed = 0
        if self.version == 2:
            for path in self.paths:
                _write(path, "cgroup.kill", 1, optional=True)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
            time.sleep(0.005)
        for path in self.paths:
            for _ in range(200):  # the last killed processes leave the cgroup soon after
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.005)
        return killed


def _write(path: str, name: str, value, optional: bool = False) -> None:
    try:
        with open(os.path.join(path, name), "w") as f:
            f.write(str(value))
    except OSError:
        if not optional:
            raise


@functools.cache
def _kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager

    class SandboxedKernelManager(AsyncKernelManager):
        """Starts the kernel through this file's launcher with ``sandbox_spec`` applied."""

        sandbox_spec: dict = {}

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            return [sys.executable, "-I", "-S", os.path.abspath(__file__),
                    json.dumps(self.sandbox_spec), "--", *cmd]

        async def _async_wait(self, pollinterval: float = 0.1) -> None:
            # jupyter_client checks every 0.1 s whether a killed kernel has gone; a killed
            # kernel goes within milliseconds, and each notebook's grading slot waited for
            # the next check (a tenth of the run's time on short notebooks)
            await super()._async_wait(pollinterval=min(pollinterval, 0.005))

    return SandboxedKernelManager


def __getattr__(name):  # the manager class needs jupyter_client, which the launcher must not import
    if name == "SandboxedKernelManager":
        return _kernel_manager_class()
    raise AttributeError(name)


if __name__ == "__main__":
    launch(sys.argv[1:])
