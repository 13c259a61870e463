"""Limits per notebook, not per process (instructor/limits.py, student_side/sandbox.py,
instructor/execute.py).

Every process a kernel starts -- 50 forks, a ``setsid`` double fork, a detached ``sleep`` -- is
gone when its notebook ends, with a cgroup or with the subreaper alone, and when the kernel dies;
the output of all cells together is capped per notebook; the report says which confinement
applied; the pipeline refuses to grade unconfined; every default is declared once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from instructor import limits as defaults
from instructor.execute import Limits, Outcome, Zygote, execute, runtime_root
from student_side import sandbox

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _nb(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def _alive_with(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` (zombies have none)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def _spawning_cells(marker: str) -> list[str]:
    sleep = f"['/bin/sleep', '{marker}']"
    return [
        # 50 sleeping children
        "import os, subprocess\npids = []\nfor _ in range(50):\n    pid = os.fork()\n"
        f"    if pid == 0:\n        os.execv('/bin/sleep', {sleep})\n    pids.append(pid)\n"
        "print(len(pids))",
        # a daemon: fork, setsid, fork again, the middle process exits
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', {sleep})\n    os._exit(0)\nprint('daemon')",
        # a detached process in a new session
        f"subprocess.Popen({sleep}, start_new_session=True, stdout=subprocess.DEVNULL,\n"
        "                 stderr=subprocess.DEVNULL)\nprint('detached')",
    ]


def _marker() -> str:
    return f"1000.{secrets.randbelow(10**9)}"  # /bin/sleep takes fractions: unique per test


def _gone(marker: str, within: float = 3.0) -> list[int]:
    end = time.monotonic() + within
    while (alive := _alive_with(marker)) and time.monotonic() < end:
        time.sleep(0.02)
    return alive


@pytest.fixture(scope="module")
def zygote():
    scratch = tempfile.mkdtemp()
    z = Zygote((), scratch)
    assert z.wait_ready(120)
    yield z
    z.close()


def _run(nb, limits: Limits, **kwargs) -> Outcome:
    return asyncio.run(execute(nb, limits, **kwargs))


@pytest.mark.parametrize("how", ["zygote", "zygote-no-cgroup", "launcher-no-cgroup"])
def test_no_process_outlives_its_notebook(how, request):
    marker = _marker()
    nb = _nb(*_spawning_cells(marker), "print('done')")
    zyg = request.getfixturevalue("zygote") if how.startswith("zygote") else None
    outcome = _run(nb, Limits(use_cgroups=not how.endswith("no-cgroup")), zygote=zyg)
    assert not outcome.events, outcome.events
    assert [c.outputs[0]["text"].strip() for c in nb.cells] == ["50", "daemon", "detached",
                                                                 "done"]
    assert not _alive_with(marker), f"left alive after the notebook: {_alive_with(marker)}"
    assert "subreaper" in outcome.confinement


def test_no_process_outlives_a_kernel_that_killed_its_supervisor(zygote):
    """Without Landlock nothing stops the kernel from killing its supervisor: the kernel dies
    with it (parent-death signal) and the orphans reach the zygote, which kills them."""
    marker = _marker()
    cells = _spawning_cells(marker)
    nb = _nb(*cells, "import signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\n"
             "time.sleep(30)", "print('never')")
    limits = Limits(use_cgroups=False, use_landlock=False, cell_timeout=20)
    outcome = _run(nb, limits, zygote=zygote)
    assert outcome.kernel_died
    assert not _gone(marker)


def test_cgroup_counts_every_process_of_the_tree(zygote):
    cgroup = sandbox.Cgroup.create(None, 40, None)
    if cgroup is None:
        pytest.skip("no writable cgroup on this machine")
    cgroup.destroy()
    marker = _marker()
    nb = _nb("import os\nmade = 0\ntry:\n    for _ in range(60):\n        if os.fork() == 0:\n"
             f"            os.execv('/bin/sleep', ['/bin/sleep', '{marker}'])\n"
             "        made += 1\nexcept OSError as exc:\n    print('refused', type(exc).__name__)\n"
             "print(made)")
    outcome = _run(nb, Limits(max_processes=40), zygote=zygote)
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "refused" in text and int(text.split()[-1]) < 40, text
    assert "pids 40" in outcome.confinement
    assert not _gone(marker)


def test_cpu_time_is_limited_per_process(zygote):
    nb = _nb("while True:\n    pass", "print('after')")
    outcome = _run(nb, Limits(cpu_seconds=1, cell_timeout=30, use_cgroups=False), zygote=zygote)
    assert outcome.kernel_died and outcome.seconds < 15
    assert "SIGXCPU" in " ".join(outcome.events) or "SIGKILL" in " ".join(outcome.events)


def test_output_is_capped_per_notebook(zygote):
    cells = ["print('x' * 60_000)"] * 12 + ["raise ValueError('the test failed')"]
    nb = _nb(*cells)
    limits = Limits(output_chars_per_notebook=250_000, use_cgroups=False)
    _run(nb, limits, zygote=zygote)
    kept = sum(len(o.get("text", "")) for c in nb.cells for o in c.outputs)
    assert 200_000 <= kept <= 260_000 + 2_000
    notes = [o.text for c in nb.cells for o in c.outputs if "limit of 250,000" in o.get("text", "")]
    assert len(notes) == 1 and "all cells together" in notes[0]
    assert not nb.cells[-2].outputs  # past the limit, nothing more is kept ...
    assert nb.cells[-1].outputs[-1].ename == "ValueError"  # ... but an error always is


def test_long_course_path_gets_a_short_runtime_folder(zygote, tmp_path):
    deep = tmp_path / ("a-long-course-folder-name-" * 4) / ("b" * 60)
    deep.mkdir(parents=True)
    assert len(str(deep)) > 107
    root = runtime_root(str(deep), None)
    assert len(root) + len("/grade-XXXXXXXX/kernel-65535") <= 107
    nb = _nb("print('started')")
    outcome = _run(nb, Limits(use_cgroups=False), zygote=zygote, scratch_root=str(deep))
    assert not outcome.events and nb.cells[0].outputs[0].text == "started\n"


def _in_child(spec: dict) -> dict:
    """Apply ``spec`` in a forked child and report what it became."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            sandbox.apply(spec)
            status = dict(line.split(":", 1) for line in open("/proc/self/status"))
            out = {"uid": os.getuid(), "caps": status["CapEff"].strip(),
                   "bounding": status["CapBnd"].strip(),
                   "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1],
                   "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0]}
        except BaseException as exc:
            out = {"error": repr(exc)}
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.skipif(os.getuid() != 0, reason="the grader is not root")
def test_root_grader_runs_kernels_as_nobody_or_without_capabilities():
    import pwd

    base = {"workdir": "/", "landlock_abi": 0, "cpu_seconds": 7, "max_processes": 33}
    nobody = pwd.getpwnam("nobody")
    got = _in_child({**base, "run_as": [nobody.pw_uid, nobody.pw_gid]})
    assert got["uid"] == nobody.pw_uid and int(got["caps"], 16) == 0, got
    assert got["cpu"] == 7 and got["nproc"] >= 33  # RLIMIT_NPROC binds this user
    got = _in_child({**base, "run_as": None})
    assert got["uid"] == 0 and int(got["caps"], 16) == 0 and int(got["bounding"], 16) == 0, got


def test_report_says_which_confinement_applied(capsys):
    from instructor import pipeline

    line = "cgroup v1 (memory 4096 MiB, pids 256, cpu 1) + subreaper; user nobody (uid 65534)"
    report = {"assignments": [], "students": [], "scores": {}, "skipped": [],
              "submissions": [], "confinement": [line], "grades_csv": "g.csv",
              "feedback_dir": "f", "timings": {k: 0.0 for k in (
                  "median_notebook", "mean_notebook", "execute", "generate", "prepare",
                  "stage", "record", "feedback", "total")} | {"notebooks": 0, "jobs": 2}}
    pipeline.print_report(report)
    assert f"Confinement: {line}" in capsys.readouterr().out


def test_pipeline_refuses_to_grade_unconfined(monkeypatch, tmp_path, capsys):
    from instructor import pipeline

    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    monkeypatch.setattr(sandbox, "subreaper_available", lambda: False)
    args = ["grade", "--submissions", str(tmp_path), "--course-dir", str(tmp_path / "course")]
    assert pipeline.main(args) == 2
    assert "--allow-unconfined" in capsys.readouterr().err


def test_every_default_is_declared_once():
    from instructor import course, pipeline

    limits = Limits()
    assert limits.cell_timeout == defaults.CELL_TIMEOUT_S
    assert limits.memory_bytes == defaults.MEMORY_LIMIT_MB * 2**20
    assert limits.max_processes == defaults.MAX_PROCESSES
    assert course.load_config().ExecutePreprocessor.timeout == defaults.CELL_TIMEOUT_S
    makefile = (ROOT / "mk" / "grading.mk").read_text()
    assert int(re.search(r"^JOBS \?= (\d+)", makefile, re.MULTILINE).group(1)) == defaults.JOBS
    parser_jobs = pipeline.main.__code__  # the option's default is read from instructor/limits.py
    assert "defaults" in parser_jobs.co_names or "JOBS" in str(parser_jobs.co_consts)
    config = (ROOT / "nbgrader_config.py").read_text()
    assert not re.search(r"^c\.GradingPipeline\.(submission_timeout|memory_limit_mb|"
                         r"file_size_limit_mb|kernel_threads)\s*=", config, re.MULTILINE)
