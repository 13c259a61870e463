"""Run a student's kernel with as little reach as the operating system allows, without Docker.

This file is two things:

* a **launcher**: ``python grading/sandbox.py '<json spec>' -- python -m ipykernel_launcher -f ...``
  applies the limits below to its own process and then ``exec``s the kernel, which inherits them;
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
import sys

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


def _apply_limits(spec: dict) -> None:
    memory = spec.get("memory_bytes")
    if memory:
        which = resource.RLIMIT_DATA if spec.get("memory_rlimit") == "data" else resource.RLIMIT_AS
        resource.setrlimit(which, (memory, memory))
    file_size = spec.get("file_size_bytes")
    if file_size:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def apply(spec: dict) -> None:
    """Confine the calling process as ``spec`` says (irreversibly); see the module docstring."""
    _apply_limits(spec)
    libc = _libc()
    libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)  # SIGKILL when the parent goes away
    abi = spec.get("landlock_abi", 0)
    if abi:
        # Only this process's own /proc entry (its pid survives execve): other processes'
        # environment and command lines stay unreadable, the grader's included.
        own_proc = f"/proc/{os.getpid()}"
        _apply_landlock([*spec["read_paths"], own_proc], spec["write_paths"], abi)
    os.chdir(spec["workdir"])


def launch(argv: list[str]) -> None:
    """Entry point of the launcher: ``sandbox.py SPEC_JSON -- COMMAND...``; never returns."""
    spec = json.loads(argv[0])
    command = argv[argv.index("--") + 1:]
    apply(spec)
    os.execve(command[0], command, spec["env"])


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
    paths.update(os.path.realpath(e) for e in entries if os.path.exists(e))
    return sorted(paths)


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


def kernel_spec_for(workdir: str, *, memory_bytes: int | None, file_size_bytes: int | None,
                    threads: int = 1, use_landlock: bool = True) -> dict:
    """The launcher's spec for a kernel confined to ``workdir`` (which must exist)."""
    for sub in ("tmp", "ipython", "jupyter", "matplotlib"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    nvidia = has_nvidia_driver()
    return {
        "workdir": workdir,
        "env": kernel_env(workdir, threads),
        "memory_bytes": memory_bytes,
        "memory_rlimit": "data" if nvidia else "as",
        "file_size_bytes": file_size_bytes,
        "landlock_abi": landlock_abi() if use_landlock else 0,
        "read_paths": [*python_read_paths(), *_SYSTEM_READ_PATHS],
        "write_paths": [workdir] + _device_write_paths(),
    }


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
