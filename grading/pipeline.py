"""The instructor's pipeline: generate -> autograde -> feedback -> export, in one command.

Usage (the Makefile's ``make exercises`` and ``make grade`` call these)::

    python -m grading.pipeline exercises
    python -m grading.pipeline grade [--submissions DIR] [--jobs N] [--course-dir DIR]
                                     [--grades-csv FILE] [--cell-timeout S]
                                     [--submission-timeout S] [--memory-limit-mb M]

``grade`` takes a folder in nbgrader's layout ``<student>/<assignment>/<notebook>.ipynb`` (an
optional ``timestamp.txt`` next to the notebooks is nbgrader's submission time). Students are
registered from the folder names. The steps:

1. **generate** -- ``solutions/*.md`` to the course's ``source/``, ``nbgrader generate_assignment``
   (the gradebook learns every cell, its checksum and its points);
2. **collect** -- the submissions are copied to ``<course>/submitted/`` (kept as received);
3. **autograde**, in three phases so that only one process ever writes the gradebook:
   a. *prepare* (serial): every notebook is read and restored against the gradebook
      (``grading/integrity.py``: deleted, stripped or edited test cells score 0 and are flagged;
      an unreadable file is graded as the blank release, all 0, and flagged);
   b. *execute* (``--jobs`` at a time): each notebook in its own sandboxed kernel
      (``grading/sandbox.py``, ``grading/execute.py``) with per-cell and per-notebook time limits
      and a memory limit; a kernel that dies or hangs costs that student the cells that did not
      run, nobody else anything;
   c. *record* (serial): nbgrader's own ``Autograde`` converter, with execution switched off,
      reads the executed notebooks and stores the scores (``SaveAutoGrades``, late penalties);
4. **feedback** -- hidden tests and their tracebacks are removed from a copy of each autograded
   notebook (``grading/feedback.py``), then ``nbgrader generate_feedback`` renders the HTML,
   ``--jobs`` at a time, each assignment as soon as step 3c has recorded it;
5. **export** -- nbgrader's CSV export plugin writes ``grades.csv``.

It prints a table of scores, the flagged submissions with their reasons and the time each
notebook took, and writes ``<course>/.pipeline/report.json``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import logging
import os
import re
import shutil
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from grading import course, feedback, integrity
from grading.execute import Limits, Zygote, execute

DEMO_SUBMISSIONS = course.REPO / "grading" / "demo_submissions"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
WORK = ".pipeline"  # the pipeline's own folder inside the course root

log = course.log

# nbgrader 0.9.6's Gradebook.add_submission builds its objects in a way SQLAlchemy 2 warns about;
# the rows are written correctly (the gradebook is checked by tests/test_pipeline.py).
warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session")


@dataclass
class Job:
    """One submitted notebook and what became of it."""

    student: str
    assignment: str
    notebook: str
    path: str
    flags: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    executed: bool = False
    sandbox: str = ""

    @property
    def label(self) -> str:
        return f"{self.student}/{self.assignment}/{self.notebook}"


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------


def generate(config, assignment_ids: list[str]) -> None:
    course.stage_sources(config, assignment_ids)
    course.generate(config, assignment_ids)


def collect(config, submissions: Path, assignment_ids: list[str]) -> tuple[list[Job], list[str]]:
    """Copy the submissions into the course; one :class:`Job` per submitted notebook."""
    root = course.course_root(config)
    submitted = root / "submitted"
    jobs, skipped = [], []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        student = student_dir.name
        if student.startswith("."):
            continue
        if not STUDENT_ID.match(student):
            skipped.append(f"{student}: not a valid student id (letters, digits, _ . @ + -)")
            continue
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            assignment = assignment_dir.name
            if assignment not in assignment_ids:
                skipped.append(f"{student}/{assignment}: no such assignment")
                continue
            dest = submitted / student / assignment
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(assignment_dir, dest, symlinks=False,
                            ignore=shutil.ignore_patterns(".*"))
            known = course.release_notebooks(config, assignment)
            if not any(dest.glob("*.ipynb")):
                skipped.append(f"{student}/{assignment}: no notebook in the folder")
            for nb_path in sorted(dest.glob("*.ipynb")):
                if nb_path.stem not in known:
                    skipped.append(f"{student}/{assignment}/{nb_path.name}: not part of the "
                                   "assignment")
                    continue
                jobs.append(Job(student, assignment, nb_path.stem, str(nb_path)))
    return jobs, skipped


def graded_names(ref: integrity.Reference) -> list[str]:
    """The functions the students write: those defined in the solution cells of the source."""
    return sorted({m.group(1) for c in ref.cells if c.solution
                   for m in re.finditer(r"^def\s+(\w+)", c.source, re.MULTILINE)})


def _audit_items(nb, graded: list[str]) -> list[tuple[str, dict]]:
    """``(where, {"source", "graded"})`` for every code cell the student could edit."""
    items = []
    for index, cell in enumerate(nb.cells):
        md = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not md.get("locked"):
            where = md.get("grade_id") or f"added cell {index}"
            items.append((where, {"source": cell.source, "graded": graded}))
    return items


def audit(jobs: list[Job], notebooks: dict, graded: dict, zygote: Zygote | None) -> None:
    """Static audit of the student's code (``nnbolts.grading.audit_source``); adds flags."""
    plan = [(job, where, item) for job in jobs if job.executed
            for where, item in _audit_items(notebooks[job.label], graded[job.label])]
    items = [item for _, _, item in plan]
    if not items:
        return
    if zygote is not None and zygote.alive:
        findings = asyncio.run(zygote.audit(items))
    else:
        try:
            from nnbolts.grading import audit_source
        except ImportError:  # the course library is not installed: nothing to audit with
            return
        findings = [audit_source(i["source"], graded=i["graded"]) for i in items]
    for (job, where, _), found in zip(plan, findings):
        job.flags.extend(f"static audit of {where}: {finding}" for finding in found)


def prepare(config, jobs: list[Job]) -> tuple[dict, dict]:
    """Phase a: restore every notebook against the gradebook.

    Returns ``{label: notebook}`` and ``{label: names of the graded functions}``.
    """
    from nbgrader.api import Gradebook

    prepared, graded = {}, {}
    references = {}
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        for job in jobs:
            key = (job.assignment, job.notebook)
            if key not in references:
                release = course.release_notebooks(config, job.assignment)[job.notebook]
                references[key] = integrity.load_reference(gb, job.assignment, job.notebook,
                                                           release)
            ref = references[key]
            try:
                nb = integrity.read_submission(job.path)
                result = integrity.prepare(nb, ref)
            except ValueError as exc:
                job.flags.append(f"{exc}; graded as a blank notebook")
                prepared[job.label] = integrity.blank_submission(ref, "the submitted file could "
                                                                 "not be read")
                continue
            for issue in result.issues:
                job.flags.append(issue.text + (" (scores 0)" if issue.zeroed else ""))
            job.executed = True
            prepared[job.label] = result.nb
            graded[job.label] = graded_names(ref)
    return prepared, graded


async def _execute_all(jobs: list[Job], notebooks: dict, limits: Limits, n_jobs: int,
                       log_dir: Path, scratch: Path, quiet: bool, zygote: Zygote | None) -> None:
    semaphore = asyncio.Semaphore(max(1, n_jobs))

    async def one(job: Job) -> None:
        async with semaphore:
            log_path = log_dir / f"{job.student}__{job.assignment}__{job.notebook}.log"
            try:
                outcome = await execute(notebooks[job.label], limits, log_path=log_path,
                                        scratch_root=str(scratch), zygote=zygote)
            except Exception as exc:  # a fault of the grader must not stop the others
                job.events.append(f"the grader failed on this notebook ({type(exc).__name__}: "
                                  f"{exc}); its tests score 0")
                for cell in notebooks[job.label].cells:
                    if cell.metadata.get("nbgrader", {}).get("grade"):
                        integrity.zero(cell, "This test cell scores 0: the grader failed on "
                                             "this notebook.")
                return
            job.seconds = outcome.seconds
            job.sandbox = outcome.sandboxed
            job.events.extend(outcome.events)
            if not quiet:
                print(f"  {job.label:<58} {outcome.seconds:5.1f} s", flush=True)

    await asyncio.gather(*(one(job) for job in jobs if job.executed))


def _ends_in_expression(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and isinstance(body[-1], ast.Expr)


def _scan_outputs(job: Job, nb) -> None:
    """Flags that the executed notebook's outputs reveal."""
    seen = set()
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        kinds = {o.output_type for o in cell.get("outputs", [])}
        # a result beside an error, or from a cell that ends in a statement, was not the
        # test's own: student code displayed it, for nbgrader's partial credit
        if md.get("grade") and "execute_result" in kinds and (
                "error" in kinds or not _ends_in_expression(cell.source)):
            job.flags.append(f"test cell {md.get('grade_id')!r} showed a result its code does not "
                             "produce (an attempt at nbgrader's partial credit)")
        for out in cell.get("outputs", []):
            text = ""
            if out.output_type == "error":
                text = f"{out.ename}: {out.evalue}"
            elif out.output_type == "stream":
                text = out.text
            for line in text.splitlines():
                if "CHEATING SUSPECTED" in line:
                    message = line[line.index("CHEATING SUSPECTED"):].strip()
                    if message not in seen:
                        seen.add(message)
                        job.flags.append(message[:300])
            if "Permission denied" in text or "Operation not permitted" in text:
                if "sandbox" not in seen:
                    seen.add("sandbox")
                    job.flags.append("tried to reach files, processes or the network outside "
                                     "its sandbox (denied)")
            if out.output_type == "error" and (
                    out.ename == "MemoryError" or "can't allocate memory" in out.evalue
                    or "DefaultCPUAllocator" in out.evalue):
                if "memory" not in seen:
                    seen.add("memory")
                    job.flags.append("ran into the memory limit")
    job.flags.extend(job.events)


def record(config, assignment: str, executed_dir: str) -> None:
    """Phase c: nbgrader's Autograde converter on one assignment's executed notebooks, without
    executing them."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import AssignLatePenalties, LimitOutput, SaveAutoGrades

    root = course.course_root(config)
    coursedir = course.course_directory(config, assignment)
    coursedir.submitted_directory = executed_dir
    for student_dir in (root / executed_dir).iterdir():
        shutil.rmtree(root / "autograded" / student_dir.name / assignment, ignore_errors=True)
    converter = Autograde(coursedir=coursedir, config=config, log=log)
    converter.force = True
    # No Execute (done in the sandbox), no ClearOutput / OverwriteCells (prepare() restored
    # the cells from the gradebook, without the spurious checksum warnings), no
    # CheckCellMetadata (prepare() wrote every cell's metadata from the gradebook; the
    # schema validation was a third of this step's time).
    converter.sanitize_preprocessors = []
    converter.autograde_preprocessors = [LimitOutput, SaveAutoGrades, AssignLatePenalties]
    converter.start()


def _feedback_one(config, assignment: str, student: str, public: str) -> None:
    from nbgrader.converters import GenerateFeedback

    coursedir = course.course_directory(config, assignment, student)
    coursedir.autograded_directory = public
    converter = GenerateFeedback(coursedir=coursedir, config=config, log=log)
    converter.force = True
    converter.start()


def _sanitized_copies(root: Path, public: Path, assignment: str, students: list[str]) -> list:
    """Step 4's input for one assignment: copies of the autograded notebooks without hidden
    tests (grading/feedback.py); returns the students who have one."""
    done = []
    for student in students:
        src = root / "autograded" / student / assignment
        if not src.is_dir():
            continue
        dest = public / student / assignment
        dest.mkdir(parents=True)
        for path in src.iterdir():
            if path.suffix == ".ipynb":
                nb = nbformat.read(str(path), as_version=4)
                nbformat.write(feedback.sanitize(nb), str(dest / path.name))
            elif path.is_file() and path.name == "timestamp.txt":
                shutil.copyfile(path, dest / path.name)
        shutil.rmtree(root / "feedback" / student / assignment, ignore_errors=True)
        (root / "feedback" / student).mkdir(parents=True, exist_ok=True)
        done.append(student)
    return done


def record_and_feedback(config, assignment_ids: list[str], executed_dir: str,
                        students: list[str], jobs: int = 1) -> tuple[float, float]:
    """Phase c and step 4, overlapped: this process records one assignment after another in
    the gradebook (the only writer), and as soon as an assignment is recorded its feedback HTML
    is rendered by ``jobs`` worker processes, which only read the gradebook. Recording is serial
    and rendering is not, so with two jobs the renderers fill the core the recorder leaves idle.

    Returns ``(record_seconds, feedback_seconds)``: the time spent recording, and the rest of
    the phase's wall time (rendering that was not hidden behind recording)."""
    root = course.course_root(config)
    public = root / WORK / "feedback_input"
    shutil.rmtree(public, ignore_errors=True)
    rel = str(public.relative_to(root))
    started, recording = time.monotonic(), 0.0
    pool = None
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # forked before the first gradebook connection of this phase is opened, so no worker
        # inherits one
        # niced: recording is the phase's critical path, rendering fills the cores around it
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                   initializer=os.nice, initargs=(10,))
        for future in [pool.submit(time.sleep, 0) for _ in range(jobs)]:
            future.result()
    try:
        futures = []
        for assignment in assignment_ids:
            if not any((root / executed_dir).glob(f"*/{assignment}/*.ipynb")):
                continue
            t0 = time.monotonic()
            record(config, assignment, executed_dir)
            recording += time.monotonic() - t0
            for student in _sanitized_copies(root, public, assignment, students):
                if pool is None:
                    _feedback_one(config, assignment, student, rel)
                else:
                    futures.append(pool.submit(_feedback_one, config, assignment, student, rel))
        for future in futures:
            future.result()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return recording, time.monotonic() - started - recording


def export(config, path: Path, students: list[str], assignment_ids: list[str]) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(config=config, log=log)
    plugin.to = str(path)
    plugin.student = students
    plugin.assignment = assignment_ids
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        plugin.export(gb)


def scores(config, students: list[str], assignment_ids: list[str]) -> dict:
    """``{student: {assignment: (score, max_score) or None}}`` from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    table: dict[str, dict] = {}
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        maxima = {a: gb.find_assignment(a).max_score for a in assignment_ids}
        for student in students:
            row = table.setdefault(student, {})
            for assignment in assignment_ids:
                try:
                    sub = gb.find_submission(assignment, student)
                except MissingEntry:
                    row[assignment] = None
                else:
                    row[assignment] = (max(0.0, sub.score - sub.late_submission_penalty),
                                       maxima[assignment])
    return table


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------


def _limits(config, args) -> Limits:
    pipe = config.GradingPipeline
    cell = args.cell_timeout or float(config.ExecutePreprocessor.get("timeout", 60))
    memory = args.memory_limit_mb or pipe.get("memory_limit_mb", 4096)
    return Limits(
        cell_timeout=cell,
        submission_timeout=args.submission_timeout or float(pipe.get("submission_timeout", 300)),
        memory_bytes=int(memory) * 2**20 if memory else None,
        file_size_bytes=int(pipe.get("file_size_limit_mb", 64)) * 2**20,
        threads=int(pipe.get("kernel_threads", 1)),
        preload=tuple(pipe.get("kernel_preload", ())),
    )


def grade(args) -> int:
    started = time.monotonic()
    submissions = Path(args.submissions).resolve()
    if not submissions.is_dir():
        print(f"no such folder: {submissions}", file=sys.stderr)
        return 2
    config = course.load_config(args.course_dir)
    root = course.course_root(config)
    root.mkdir(parents=True, exist_ok=True)
    available = course.assignments()
    wanted = sorted({p.name for p in submissions.glob("*/*") if p.is_dir()} & set(available))
    assignment_ids = args.assignments.split(",") if args.assignments else wanted
    unknown = sorted(set(assignment_ids) - set(available))
    if unknown:
        print(f"no such assignment in solutions/: {', '.join(unknown)}", file=sys.stderr)
        return 2
    limits = _limits(config, args)

    work = root / WORK
    (work / "logs").mkdir(parents=True, exist_ok=True)
    (work / "scratch").mkdir(parents=True, exist_ok=True)
    # started first: its imports (torch, IPython, the grader) overlap with the steps below
    zygote = None
    if config.GradingPipeline.get("kernel_zygote", True):
        zygote = Zygote(limits.preload, str(work / "scratch"), limits.threads)
    try:
        return _grade(args, config, assignment_ids, limits, zygote, started)
    finally:
        if zygote is not None:
            for warning in zygote.warnings:
                print(f"zygote: {warning}", file=sys.stderr)
            zygote.close()


def _grade(args, config, assignment_ids, limits, zygote, started) -> int:
    root = course.course_root(config)
    work = root / WORK
    submissions = Path(args.submissions).resolve()
    t0 = time.monotonic()
    generate(config, assignment_ids)
    t_generate = time.monotonic() - t0

    jobs, skipped = collect(config, submissions, assignment_ids)
    students = sorted({job.student for job in jobs})
    if not jobs:
        print(f"nothing to grade in {submissions}", *skipped, sep="\n  ")
        return 1
    print(f"Grading {len(jobs)} notebooks of {len(students)} students "
          f"({', '.join(assignment_ids)}) with {args.jobs} job(s); limits: "
          f"{limits.cell_timeout:g} s per cell, {limits.submission_timeout:g} s per notebook, "
          f"{(limits.memory_bytes or 0) // 2**20} MiB per kernel", flush=True)

    executed_dir = work / "executed"
    shutil.rmtree(executed_dir, ignore_errors=True)

    t0 = time.monotonic()
    notebooks, graded = prepare(config, jobs)
    if zygote is not None and not zygote.wait_ready(limits.startup_timeout):
        print("the kernel zygote did not start; starting every kernel from scratch",
              file=sys.stderr)
        zygote = None
    audit(jobs, notebooks, graded, zygote)
    t_prepare = time.monotonic() - t0

    t0 = time.monotonic()
    asyncio.run(_execute_all(jobs, notebooks, limits, args.jobs, work / "logs",
                             work / "scratch", args.quiet, zygote))
    if zygote is not None:
        # before the feedback step forks its workers; its exit (a second, for a process
        # holding torch) is waited for at the very end
        zygote.stop()
    t_execute = time.monotonic() - t0

    for job in jobs:
        nb = notebooks[job.label]
        _scan_outputs(job, nb)
        dest = executed_dir / job.student / job.assignment
        dest.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(dest / f"{job.notebook}.ipynb"))
        stamp = Path(job.path).parent / "timestamp.txt"
        if stamp.is_file():
            shutil.copyfile(stamp, dest / "timestamp.txt")

    t_record, t_feedback = record_and_feedback(
        config, assignment_ids, str(executed_dir.relative_to(root)), students, args.jobs)

    grades_csv = Path(args.grades_csv).resolve()
    export(config, grades_csv, students, assignment_ids)
    table = scores(config, students, assignment_ids)
    total = time.monotonic() - started

    times = [j.seconds for j in jobs if j.executed]
    timings = {"generate": t_generate, "prepare": t_prepare, "execute": t_execute,
               "record": t_record, "feedback": t_feedback, "total": total,
               "jobs": args.jobs, "notebooks": len(jobs),
               "mean_notebook": statistics.fmean(times) if times else 0.0,
               "median_notebook": statistics.median(times) if times else 0.0}
    report = {
        "course_dir": str(root), "grades_csv": str(grades_csv),
        "feedback_dir": str(root / "feedback"),
        "assignments": assignment_ids, "students": students,
        "scores": {s: {a: list(v) if v else None for a, v in row.items()}
                   for s, row in table.items()},
        "submissions": [asdict(job) for job in jobs], "skipped": skipped, "timings": timings,
    }
    (work / "report.json").write_text(json.dumps(report, indent=1))
    print_report(report)
    return 0


def print_report(report: dict) -> None:
    assignments = report["assignments"]
    width = max([len("student")] + [len(s) for s in report["students"]])
    print()
    print("Scores")
    print("  " + "student".ljust(width) + "".join(f"  {a:>16}" for a in assignments)
          + f"  {'total':>12}")
    for student in report["students"]:
        row, got, out_of = report["scores"][student], 0.0, 0.0
        cells = []
        for a in assignments:
            value = row.get(a)
            if value is None:
                cells.append(f"  {'-':>16}")
            else:
                got, out_of = got + value[0], out_of + value[1]
                cells.append(f"  {f'{value[0]:g}/{value[1]:g}':>16}")
        print("  " + student.ljust(width) + "".join(cells) + f"  {f'{got:g}/{out_of:g}':>12}")
    flagged = [s for s in report["submissions"] if s["flags"]]
    print()
    print(f"Flagged submissions: {len(flagged)}")
    for sub in flagged:
        print(f"  {sub['student']}/{sub['assignment']}/{sub['notebook']}")
        for flag in sub["flags"]:
            print(f"      - {flag}")
    for item in report["skipped"]:
        print(f"  skipped: {item}")
    t = report["timings"]
    sandboxes = sorted({s["sandbox"] for s in report["submissions"] if s["sandbox"]})
    print()
    print(f"Autograde: {t['median_notebook']:.2f} s per notebook (median; mean "
          f"{t['mean_notebook']:.2f} s), kernel start to shutdown; {t['execute']:.1f} s for "
          f"{t['notebooks']} notebooks with {t['jobs']} job(s); sandbox: "
          f"{', '.join(sandboxes) or '-'}")
    print(f"Steps: generate {t['generate']:.1f} s, prepare {t['prepare']:.1f} s, execute "
          f"{t['execute']:.1f} s, record {t['record']:.1f} s, feedback {t['feedback']:.1f} s; "
          f"total {t['total']:.1f} s")
    print(f"grades: {report['grades_csv']}   feedback: {report['feedback_dir']}")


def exercises(args) -> int:
    written = course.build_exercises(args.course_dir, dest=Path(args.dest).resolve())
    for path in written:
        print(f"wrote {os.path.relpath(path, course.REPO)}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exercises", help="regenerate exercises/ from solutions/")
    ex.add_argument("--course-dir", default=None, help="staging course (default .nbgrader_course)")
    ex.add_argument("--dest", default=str(course.EXERCISES))
    gr = sub.add_parser("grade", help="generate, autograde, feedback and export")
    gr.add_argument("--submissions", default=None,
                    help="<student>/<assignment>/<notebook>.ipynb (default: the demo submissions)")
    gr.add_argument("--jobs", type=int, default=1, help="notebooks executed at once")
    gr.add_argument("--course-dir", default=None,
                    help="course root (default .nbgrader_course; .nbgrader_course/demo for the "
                         "demo submissions, so that they never mix with a real class)")
    gr.add_argument("--grades-csv", default=str(course.REPO / "grades.csv"))
    gr.add_argument("--assignments", default="", help="comma-separated (default: all submitted)")
    gr.add_argument("--cell-timeout", type=float, default=None)
    gr.add_argument("--submission-timeout", type=float, default=None)
    gr.add_argument("--memory-limit-mb", type=int, default=None)
    gr.add_argument("--quiet", action="store_true", help="no line per notebook")
    args = parser.parse_args(argv)
    if args.command == "grade" and args.submissions is None:
        args.submissions = str(DEMO_SUBMISSIONS)
        args.course_dir = args.course_dir or str(course.DEFAULT_COURSE / "demo")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    return exercises(args) if args.command == "exercises" else grade(args)


if __name__ == "__main__":
    sys.exit(main())
