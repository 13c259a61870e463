"""Seconds per notebook of make grade with 1 and 2 jobs, against stock nbgrader autograde.

``make grade`` (instructor/pipeline.py) and stock ``nbgrader autograde`` grade the same submissions
in the same run.

Three ways to grade one set of submissions, each in a fresh course folder under a temporary
directory:

* **stock**: a plain nbgrader course of its own (its own ``nbgrader_config.py``, not the repo's):
  the same sources, ``nbgrader generate_assignment``, the students registered with
  ``nbgrader db student import``, the submissions in ``submitted/``, then
  ``nbgrader autograde <assignment>`` once per assignment -- nbgrader's default of one fresh kernel
  per notebook, one notebook at a time. Only the autograde commands are timed.
* **make grade --jobs 1** and **--jobs 2**: ``python -m instructor.pipeline grade``, the command
  ``make grade`` runs, timed whole: generate, autograde, feedback HTML and ``grades.csv``.

Both use the same per-cell time limit (``--cell-timeout``, default the course's
``ExecutePreprocessor.timeout``) and ``OMP_NUM_THREADS=1``. Stock nbgrader gets the pipeline's
memory limit as ``RLIMIT_DATA`` (it has none of its own): with ``--all`` a demo student allocates
64 GB, which must not take a shared machine down.

Which submissions: whatever ``instructor/demo_submissions/<student>/<assignment>/`` holds when the
script runs. By default only the honest students (``correct``, ``partial``, ``blank`` and any
``honest_*``; see instructor/demo.py), so the head-to-head is about speed: stock nbgrader cannot
grade the others sanely (a loop that ignores interrupts, a 64 GB allocation, a kernel that kills
itself or the grader, a corrupt file). ``--all`` adds them; stock's outcome for each is then
reported as it came (graded, or not graded: nbgrader gave up, the command was killed by
``--stock-cap`` or by a student).

Each round runs stock, jobs 1 and jobs 2 once; with ``--repeat k`` the median of k rounds is
reported. Targets: jobs 1 at most 0.4x stock's seconds per notebook; jobs 2 at least 1.8x the
throughput of jobs 1, on at least 60 notebooks (``--copies``, default 3, grades each chosen
student that many times).

Usage: ``python benchmarks/bench_grading.py [--assignments 01-activations] [--repeat 3] [--all]``.
A script, not a test: timings depend on the machine; on a shared machine run it when it is quiet.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from instructor import course
from instructor import limits as grading_limits

REPO = Path(__file__).resolve().parents[1]


DEMO = REPO / "instructor" / "demo_submissions"
# The demo students (instructor/demo.py) that neither cheat nor attack the grader: these, and any
# whose name starts with HONEST_PREFIX (demo.py's convention for further honest answers).
HONEST = ("correct", "partial", "blank")
HONEST_PREFIX = "honest_"
TARGET_SPEED = 0.4  # jobs 1: seconds per notebook at most this times stock's
TARGET_SCALING = 1.8  # jobs 2: throughput at least this times jobs 1's


@dataclass
class Run:
    """One timed grading of every selected notebook."""

    seconds: float
    scores: dict  # {(student, assignment): score or None}
    notes: dict = field(default_factory=dict)  # {(student, assignment): what went wrong}
    autograde: float | None = None  # the pipeline's prepare + execute + record
    timings: dict = field(default_factory=dict)  # the pipeline's report: seconds per step


# --------------------------------------------------------------------------------------------
# the submissions
# --------------------------------------------------------------------------------------------


def discover(demo: Path) -> dict[str, dict[str, list[str]]]:
    """``{student: {assignment: [notebook names]}}`` as the folder holds them now."""
    found: dict[str, dict[str, list[str]]] = {}
    for student in sorted(p for p in demo.iterdir() if p.is_dir()):
        for assignment in sorted(p for p in student.iterdir() if p.is_dir()):
            names = sorted(nb.stem for nb in assignment.glob("*.ipynb"))
            if names:
                found.setdefault(student.name, {})[assignment.name] = names
    return found


def select(found, students, assignments) -> dict[str, dict[str, list[str]]]:
    return {s: {a: nbs for a, nbs in plan.items() if a in assignments}
            for s, plan in found.items() if s in students
            and any(a in assignments for a in plan)}


COPY_MARK = "__copy"  # <demo student>__copy<k>: the k-th copy of a demo student's submissions


def demo_student(name: str) -> str:
    """The demo student whose submissions ``name`` grades (itself, or the one it copies)."""
    return name.split(COPY_MARK)[0]


def with_copies(chosen: dict, copies: int) -> dict:
    """Every chosen student ``copies`` times (``--copies``): enough notebooks for a throughput
    that one slow notebook does not decide."""
    return {f"{s}{COPY_MARK}{k}" if k else s: plan for k in range(copies)
            for s, plan in chosen.items()}


def copy_submissions(chosen, dest: Path) -> None:
    for student, plan in chosen.items():
        for assignment in plan:
            shutil.copytree(DEMO / demo_student(student) / assignment,
                            dest / student / assignment)


# --------------------------------------------------------------------------------------------
# stock nbgrader
# --------------------------------------------------------------------------------------------

STOCK_CONFIG = """\
# Written by benchmarks/bench_grading.py: a stock nbgrader course, only what the comparison needs.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "bench-stock"
c.CourseDirectory.root = {root!r}
c.ClearSolutions.code_stub = {code_stub!r}
c.ClearSolutions.text_stub = {text_stub!r}
c.ExecutePreprocessor.timeout = {timeout!r}
c.Execute.timeout = {timeout!r}
"""


def subprocess_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    # nbgrader starts `alembic` when it creates a gradebook; it lives beside this Python
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nbgrader(args: list[str], cwd: Path, log, limit_bytes=None, timeout=None) -> str:
    """Run ``nbgrader ARGS`` in ``cwd``; returns "ok", "error (status N)", "timeout" or "killed".

    The command gets a session of its own, so that whatever is left of it and of its kernels
    afterwards can be killed as a group.
    """
    def limits():
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))

    proc = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=cwd,
                            env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=limits, start_new_session=True)
    try:
        code = proc.wait(timeout=timeout)
        outcome = "ok" if code == 0 else ("killed" if code < 0 else f"error (status {code})")
    except subprocess.TimeoutExpired:
        outcome = "timeout"
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the timed-out command and its children
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    kill_kernels_in(cwd)
    return outcome


def kill_kernels_in(root: Path) -> None:
    """Kill the kernels that a killed nbgrader left behind.

    jupyter_client starts each kernel in a session of its own, out of reach of ``killpg``, and a
    kernel whose grader died does not always exit (one in an endless loop never does). nbgrader
    starts every kernel in the notebook's folder, inside this temporary course: a process whose
    working directory lies there was started by this benchmark.
    """
    inside = str(root.resolve()) + os.sep
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.readlink(entry / "cwd").startswith(inside):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:  # gone already, or not ours to read
            pass


def stock_template(root: Path, chosen, assignments, timeout: float) -> None:
    """A stock nbgrader course with sources, releases, students and submissions, not graded."""
    repo_config = course.load_config(root)  # the repo's config, root moved here (stubs only)
    stubs = repo_config.ClearSolutions
    root.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(STOCK_CONFIG.format(
        root=str(root), code_stub=dict(stubs.get("code_stub", {})),
        text_stub=str(stubs.get("text_stub", "YOUR ANSWER HERE")), timeout=int(timeout)))
    course.stage_sources(repo_config, assignments)
    with open(root / "setup.log", "w") as log:
        for assignment in assignments:
            outcome = nbgrader(["generate_assignment", assignment, "--force"], root, log)
            if outcome != "ok":
                raise SystemExit(f"stock nbgrader generate_assignment {assignment}: {outcome}; "
                                 f"see {root / 'setup.log'}")
        with open(root / "students.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "first_name", "last_name", "email"])
            writer.writerows([s, s, "demo", ""] for s in chosen)
        if nbgrader(["db", "student", "import", "students.csv"], root, log) != "ok":
            raise SystemExit(f"stock nbgrader db student import failed; see {root / 'setup.log'}")
    copy_submissions(chosen, root / "submitted")


def stock_scores(root: Path, chosen) -> dict:
    """``{(student, assignment): score or None}`` from the stock gradebook, if it can be read."""
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    try:
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "bench-stock") as gb:
            for student, plan in chosen.items():
                for assignment in plan:
                    try:
                        out[student, assignment] = gb.find_submission(assignment, student).score
                    except MissingEntry:
                        out[student, assignment] = None
    except Exception as exc:  # a student may have written into this gradebook (--all)
        print(f"  (stock gradebook unreadable: {type(exc).__name__}: {exc})")
        out = {(s, a): None for s, plan in chosen.items() for a in plan}
    return out


def stock_outcome(root: Path, student: str, assignment: str, names: list[str], log: str,
                  ended: str) -> str | None:
    """What stock nbgrader made of one submission: None when it graded it, else why not.

    Read from the command's log and the autograded files: nbgrader logs each student as it
    starts, logs an error for a submission it gives up on, and makes an autograded notebook
    read-only only once the notebook is executed and scored.
    """
    where = f"/submitted/{student}/{assignment}"
    if any("There was an error processing" in line and line.rstrip().endswith(where)
           for line in log.splitlines()):
        return "not graded: nbgrader gave up on it (error in its log)"
    paths = [root / "autograded" / student / assignment / f"{nb}.ipynb" for nb in names]
    if all(p.is_file() and not p.stat().st_mode & 0o222 for p in paths):
        timeouts = sum(p.read_text().count('"ename": "CellTimeoutError"') for p in paths)
        return f"graded; {timeouts} cell(s) hit the time limit" if timeouts else None
    if f"student with ID '{student}'" in log:
        return f"not graded: the autograde command ended ({ended}) while it ran"
    return f"not graded: the autograde command ended ({ended}) before it"


def run_stock(template: Path, work: Path, chosen, assignments, cap, memory_bytes) -> Run:
    root = work / "stock"
    shutil.copytree(template, root)
    config = (root / "nbgrader_config.py").read_text().replace(str(template), str(root))
    (root / "nbgrader_config.py").write_text(config)
    ended, seconds = {}, 0.0
    for assignment in assignments:
        count = sum(len(plan.get(assignment, [])) for plan in chosen.values())
        with open(root / f"autograde-{assignment}.log", "w") as log:
            start = time.perf_counter()
            ended[assignment] = nbgrader(["autograde", assignment], root, log, memory_bytes,
                                         timeout=cap * count if cap else None)
            seconds += time.perf_counter() - start
    scores = stock_scores(root, chosen)
    notes = {}
    for student, plan in chosen.items():
        for assignment, names in plan.items():
            log = (root / f"autograde-{assignment}.log").read_text(errors="replace")
            note = stock_outcome(root, student, assignment, names, log, ended[assignment])
            if note:
                notes[student, assignment] = note
    return Run(seconds, scores, notes)


# --------------------------------------------------------------------------------------------
# make grade
# --------------------------------------------------------------------------------------------


def run_pipeline(submissions: Path, work: Path, jobs: int, timeout: float) -> Run:
    root = work / f"pipeline-{jobs}"
    command = [sys.executable, "-m", "instructor.pipeline", "grade", "--submissions",
               str(submissions), "--jobs", str(jobs), "--course-dir", str(root),
               "--grades-csv", str(root / "grades.csv"), "--cell-timeout", str(timeout),
               "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"make grade --jobs {jobs} failed (status {done.returncode}):\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report = json.loads((root / ".pipeline" / "report.json").read_text())
    scores = {(s, a): (v[0] if v else None)
              for s, row in report["scores"].items() for a, v in row.items()}
    notes = {}
    for sub in report["submissions"]:
        if sub["flags"]:
            key = (sub["student"], sub["assignment"])
            notes[key] = f"{len(sub['flags'])} flag(s): {sub['flags'][0][:70]}"
    t = report["timings"]
    # prepare, then execution and recording until the last assignment is recorded (they overlap)
    return Run(seconds, scores, notes, autograde=t["prepare"] + t["recorded"], timings=t)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


def median_run(runs: list[Run]) -> Run:
    """Median times of ``runs``, with the scores and notes of the middle one (by total time)."""
    middle = sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]
    autograde = [r.autograde for r in runs if r.autograde is not None]
    return Run(statistics.median(r.seconds for r in runs), middle.scores, middle.notes,
               statistics.median(autograde) if autograde else None, middle.timings)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", default="",
                        help="comma-separated assignment ids (default: every one submitted)")
    parser.add_argument("--students", default="",
                        help="comma-separated demo students (default: the honest ones, "
                             + ", ".join(HONEST) + f" and {HONEST_PREFIX}*)")
    parser.add_argument("--all", action="store_true",
                        help="every demo student, the cheats and grader attacks included")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is reported")
    parser.add_argument("--copies", type=int, default=3,
                        help="grade every chosen student this many times (default 3: the 21 "
                             "honest demo notebooks become 63)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="per-cell limit in seconds for both (default: the course's)")
    parser.add_argument("--stock-cap", type=float, default=None,
                        help="seconds per notebook allowed to a stock autograde command before "
                             "it is killed (default: the pipeline's submission timeout). With "
                             "--all, the student whose loop ignores interrupts makes stock wait "
                             "out the cell timeout in every later cell: a small --cell-timeout "
                             "and --stock-cap keep such a run short")
    parser.add_argument("--keep", action="store_true", help="keep the temporary course folders")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.all and args.students:
        parser.error("--all and --students exclude each other")

    config = course.load_config()
    timeout = args.cell_timeout or float(config.ExecutePreprocessor.get("timeout", 60))
    if timeout <= 0:
        parser.error(f"--cell-timeout must be positive, got {timeout:g}")
    pipe = config.GradingPipeline
    cap = args.stock_cap or float(pipe.get("submission_timeout",
                                           grading_limits.SUBMISSION_TIMEOUT_S))
    memory_mb = pipe.get("memory_limit_mb", grading_limits.MEMORY_LIMIT_MB)

    found = discover(DEMO)
    available = set(course.assignments())
    submitted = sorted({a for plan in found.values() for a in plan} & available)
    assignments = args.assignments.split(",") if args.assignments else submitted
    missing = [a for a in assignments if a not in submitted]
    if missing:
        parser.error(f"--assignments: no demo submissions for {', '.join(missing)} "
                     f"(have: {', '.join(submitted)})")
    if args.all:
        students = list(found)
    else:
        students = (args.students.split(",") if args.students else
                    [s for s in found if s in HONEST or s.startswith(HONEST_PREFIX)])
        unknown = [s for s in students if s not in found]
        if unknown:
            parser.error(f"--students: no demo student {', '.join(unknown)} "
                         f"(have: {', '.join(found)})")
    chosen = select(found, students, assignments)
    if not chosen:
        parser.error("no demo submission matches these --students and --assignments")
    if args.copies < 1:
        parser.error(f"--copies must be at least 1, got {args.copies}")
    chosen = with_copies(chosen, args.copies)
    notebooks = sum(len(nbs) for plan in chosen.values() for nbs in plan.values())

    print(f"Grading benchmark: {notebooks} notebooks of {len(chosen)} students, assignments "
          f"{', '.join(assignments)}; {timeout:g} s per cell; OMP_NUM_THREADS=1; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
          f"load average {os.getloadavg()[0]:.2f}; median of {args.repeat} round(s)")
    for student, plan in chosen.items():
        print(f"  included {student}: " + ", ".join(f"{a}/{nb}" for a, nbs in plan.items()
                                                  for nb in nbs))
    left_out = sorted(set(found) - set(chosen))
    if left_out:
        print(f"  left out: {', '.join(left_out)}" + ("" if args.all else " (--all adds them)"))

    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        submissions = work / "submissions"
        copy_submissions(chosen, submissions)
        template = work / "stock-template"
        stock_template(template, chosen, assignments, timeout)
        runs: dict[str, list[Run]] = {"stock": [], "1": [], "2": []}
        for round_ in range(args.repeat):
            round_dir = work / f"round-{round_}"
            round_dir.mkdir()
            runs["stock"].append(run_stock(template, round_dir, chosen, assignments, cap,
                                           int(memory_mb) * 2**20 if memory_mb else None))
            for jobs in (1, 2):
                runs[str(jobs)].append(run_pipeline(submissions, round_dir, jobs, timeout))
            print(f"  round {round_ + 1}: stock {runs['stock'][-1].seconds:.1f} s, jobs 1 "
                  f"{runs['1'][-1].seconds:.1f} s, jobs 2 {runs['2'][-1].seconds:.1f} s",
                  flush=True)
        report(chosen, notebooks, {k: median_run(v) for k, v in runs.items()}, args.all)
    finally:
        if args.keep:
            print(f"course folders kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(chosen, notebooks: int, best: dict[str, Run], everyone: bool) -> None:
    stock, one, two = best["stock"], best["1"], best["2"]
    per = {k: r.seconds / notebooks for k, r in best.items()}
    rows = [("stock nbgrader autograde (1 kernel at a time)", stock, per["stock"]),
            ("make grade --jobs 1", one, per["1"]),
            ("make grade --jobs 2", two, per["2"])]
    print()
    header = (f"{'how':<46} {'total s':>8} {'notebooks':>9} {'s/notebook':>10} "
              f"{'vs stock':>8} {'throughput vs jobs 1':>20}")
    print(header)
    print("-" * len(header))
    for name, run, seconds in rows:
        scaling = f"{per['1'] / seconds:.2f}x" if run is not stock else "-"
        print(f"{name:<46} {run.seconds:>8.1f} {notebooks:>9} {seconds:>10.2f} "
              f"{seconds / per['stock']:>8.2f} {scaling:>20}")
    print()
    print("vs stock = seconds per notebook / stock's (lower is faster); make grade is timed whole "
          "(generate, autograde, feedback, export), stock only its autograde commands.")
    print(f"Of make grade, the autograde steps (prepare, then execute and record until the "
          f"last assignment is recorded) took "
          f"{one.autograde:.1f} s with 1 job ({one.autograde / notebooks:.2f} s/notebook) and "
          f"{two.autograde:.1f} s with 2 ({two.autograde / notebooks:.2f} s/notebook).")
    steps = ("generate", "prepare", "execute", "record", "feedback", "similarity", "total")
    for jobs, run in (("1", one), ("2", two)):
        if run.timings:  # where the seconds went (record and feedback overlap the kernels)
            print(f"  --jobs {jobs}: " + ", ".join(
                f"{k} {run.timings[k]:.1f} s" for k in steps if k in run.timings))

    disagree = []
    for student, plan in chosen.items():
        for assignment in plan:
            key = (student, assignment)
            ours, theirs = one.scores.get(key), stock.scores.get(key)
            if ours != theirs or key in stock.notes or (everyone and key in one.notes):
                disagree.append(f"  {student}/{assignment}: make grade {fmt(ours)}"
                                f"{' (' + one.notes[key] + ')' if key in one.notes else ''}; "
                                f"stock {fmt(theirs)}"
                                f"{' (' + stock.notes[key] + ')' if key in stock.notes else ''}")
    if disagree:
        print("Where the two differ (scores of the median runs):")
        print("\n".join(disagree))
    else:
        print("Scores: make grade and stock nbgrader agree on every included notebook.")
    print()
    fast = per["1"] <= TARGET_SPEED * per["stock"]
    scaling = per["1"] / per["2"]
    print(f"{'PASS' if fast else 'FAIL'}: make grade --jobs 1 takes {per['1']:.2f} s per notebook, "
          f"{per['1'] / per['stock']:.2f}x stock's {per['stock']:.2f} s, target <= {TARGET_SPEED}x")
    print(f"{'PASS' if scaling >= TARGET_SCALING else 'FAIL'}: make grade --jobs 2 has "
          f"{scaling:.2f}x the throughput of --jobs 1, target >= {TARGET_SCALING}x")


def fmt(score) -> str:
    return "-" if score is None else f"{score:g}"


if __name__ == "__main__":
    sys.exit(main())
