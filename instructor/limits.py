"""Every default limit of the grading pipeline, declared once.

Standard library only, and importable by file path: ``instructor/execute.py`` (:class:`Limits`),
``instructor/pipeline.py`` (options and ``nbgrader_config.py`` overrides), ``nbgrader_config.py``
(nbgrader's own per-cell timeout) and the Makefile's ``JOBS`` (checked by tests/test_limits.py)
all read these values. ``nbgrader_config.py``'s ``c.GradingPipeline.<name>`` overrides one for a
course; the pipeline's command-line options override both.
"""

CELL_TIMEOUT_S = 60.0  # wall-clock seconds per cell (nbgrader's ExecutePreprocessor.timeout)
SUBMISSION_TIMEOUT_S = 300.0  # wall-clock seconds per notebook, kernel start included
MEMORY_LIMIT_MB = 4096  # the kernel's whole process tree (cgroup) and each of its processes
FILE_SIZE_LIMIT_MB = 64  # RLIMIT_FSIZE: the largest file student code may write
KERNEL_THREADS = 1  # OMP/MKL threads per kernel: jobs run side by side
MAX_PROCESSES = 256  # processes and threads of one kernel's tree (pids.max; RLIMIT_NPROC)
CPU_TIME_S = 330  # RLIMIT_CPU, CPU seconds of each process of a kernel (SIGXCPU, then SIGKILL)
CPU_SHARE = 1.0  # CPUs one kernel's tree may use at once (cgroup cpu.max / cfs_quota_us);
# raise it with KERNEL_THREADS, or the kernel's threads share one CPU
OUTPUT_CHARS_PER_CELL = 200_000  # outputs kept per cell
OUTPUT_CHARS_PER_NOTEBOOK = 2_000_000  # outputs kept per notebook, all cells together
JOBS = 2  # notebooks graded at once (the Makefile's JOBS)
UNPRIVILEGED_USER = "nobody"  # kernels run as this user when the grader runs as root
SIMILARITY_THRESHOLD = 0.8  # the similarity report lists pairs at or above this (never scored)
