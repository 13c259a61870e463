"""The grader's kernel workers (instructor/execute.py ``KernelWorkers``): one process per job
runs a notebook's kernel and judges its test cells; one zygote serves them all; a worker that
dies is replaced (with the zygote) and the notebook it ran is run again; the zygotes end with
the pool."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time

import nbformat
import pytest

from instructor.execute import KernelWorkers, Limits

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _nb(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])


def _children(pid: int) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:  # gone meanwhile
        return ""


def _zygotes(pids) -> list[int]:
    return [p for p in pids if "student_side.zygote" in _cmdline(p)]


def test_workers_run_notebooks_and_survive_a_dead_worker():
    workers = KernelWorkers(2, (), tempfile.mkdtemp(), zygote=True)
    try:
        async def run(source):
            return await workers.execute(_nb(source), Limits())

        async def both():
            return await asyncio.gather(run("import os; print(os.getpid() * 0 + 6 * 7)"),
                                        run("print('second')"))

        (first, outcome), (second, _) = asyncio.run(both())
        assert first.cells[0].outputs[0]["text"] == "42\n", first.cells[0].outputs
        assert second.cells[0].outputs[0]["text"] == "second\n"
        assert not outcome.kernel_died and outcome.seconds > 0
        # one zygote for both workers, the grader's child; the kernels are the zygote's
        zygotes = _zygotes(_children(os.getpid()))
        assert len(zygotes) == 1, zygotes
        for worker in workers._pool._processes:
            assert not _zygotes(_children(worker))
        victims = list(workers._pool._processes)
        os.kill(victims[0], signal.SIGKILL)
        time.sleep(0.2)
        # both notebooks of the next round run: the first to see the dead worker replaces the
        # pool, the other waits for it
        async def next_round():
            return await asyncio.gather(run("print('after')"), run("print('too')"))

        (again, _), (other, _) = asyncio.run(next_round())
        assert again.cells[0].outputs[0]["text"] == "after\n"
        assert other.cells[0].outputs[0]["text"] == "too\n"
        assert workers.warnings.count("a kernel worker died; the workers were restarted") == 1
        replaced = _zygotes(_children(os.getpid()))
        assert len(replaced) == 1 and replaced != zygotes, (zygotes, replaced)
        assert not _zygotes(zygotes), "the broken pool's zygote outlived it"
        zygotes += replaced
    finally:
        workers.close()
    end = time.monotonic() + 10
    while _zygotes(zygotes) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _zygotes(zygotes), "a zygote outlived its worker"


def test_what_an_observed_function_prints_is_not_the_cells_output():
    """A student's function that prints while the grader observes it (2 MB a call here): the
    cell is judged as usual and its output is the grader's verdict, none of the prints."""
    solution = nbformat.v4.new_code_cell(
        "import torch\ndef sigmoid(z):\n    print('x' * 2_000_000)\n"
        "    return 1 / (1 + torch.exp(-z))")
    test = nbformat.v4.new_code_cell(
        "### BEGIN HIDDEN TESTS\nfrom nnbolts import activations as A, grading\n"
        "grading.check_elementwise(sigmoid, A.sigmoid, large=False)\n### END HIDDEN TESTS\n")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 1}
    nb = nbformat.v4.new_notebook(cells=[solution, test])
    workers = KernelWorkers(1, (), tempfile.mkdtemp(), zygote=True)
    try:
        executed, outcome = asyncio.run(workers.execute(nb, Limits(), seed=3))
    finally:
        workers.close()
    assert outcome.judged == 1 and not outcome.kernel_died, outcome
    outputs = executed.cells[1].outputs
    assert len(outputs) == 1 and outputs[0]["text"].startswith("All of the grader's checks"), \
        outputs


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def test_a_worker_judges_with_the_kernels_thread_count():
    """torch's default in a worker is one thread per core, whose spinning took the core the
    other job's kernel needed: a worker computes with as many threads as a kernel may use."""
    workers = KernelWorkers(2, (), tempfile.mkdtemp(), threads=1, zygote=False)
    try:
        counts = {workers._pool.submit(_torch_threads).result() for _ in range(4)}
    finally:
        workers.close()
    assert counts == {1}, counts


def _affinity(pause: float = 0.0) -> tuple[int, set[int]]:
    time.sleep(pause)  # (so that two calls at once go to two workers)
    return os.getpid(), os.sched_getaffinity(0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_two_jobs_run_on_a_cpu_each_and_their_kernels_with_them():
    """With a CPU per job, each worker is pinned to its own, and the kernels it starts run on
    that CPU (a kernel reads its own affinity); one job is not pinned."""
    cpus = sorted(os.sched_getaffinity(0))
    workers = KernelWorkers(2, (), tempfile.mkdtemp(), zygote=True)
    try:
        calls = [workers._pool.submit(_affinity, 0.5) for _ in range(2)]
        pinned = dict(call.result() for call in calls)
        assert sorted(map(sorted, pinned.values())) == [[cpus[0]], [cpus[1]]], pinned

        async def both():
            source = "import os; print(sorted(os.sched_getaffinity(0)))"
            return await asyncio.gather(*(workers.execute(_nb(source), Limits())
                                          for _ in range(4)))

        seen = {nb.cells[0].outputs[0]["text"] for nb, _ in asyncio.run(both())}
        assert seen <= {f"[{cpus[0]}]\n", f"[{cpus[1]}]\n"}, seen
    finally:
        workers.close()
    single = KernelWorkers(1, (), tempfile.mkdtemp(), zygote=False)
    try:
        assert single._pool.submit(_affinity).result()[1] == set(cpus)
    finally:
        single.close()
