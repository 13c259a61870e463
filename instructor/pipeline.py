"""The instructor's pipeline: generate -> autograde -> feedback -> export, in one command.

Usage (the Makefile's ``make exercises`` and ``make grade`` call these)::

    python -m instructor.pipeline exercises
    python -m instructor.pipeline grade [--submissions DIR] [--jobs N] [--course-dir DIR]
                                     [--grades-csv FILE] [--cell-timeout S]
                                     [--submission-timeout S] [--memory-limit-mb M]
    python -m instructor.pipeline export [--course-dir DIR] [--grades-csv FILE] [--no-feedback]

``grade`` takes a folder in nbgrader's layout ``<student>/<assignment>/<notebook>.ipynb`` (an
optional ``timestamp.txt`` next to the notebooks is nbgrader's submission time). Students are
registered from the folder names. The steps:

1. **generate** -- ``solutions/*.md`` to the course's ``source/``, ``nbgrader generate_assignment``
   (the gradebook learns every cell, its checksum and its points);
2. **collect** -- the submissions are copied to ``<course>/submitted/`` by the intake
   (``instructor/intake.py``: no link followed, no FIFO or device opened, only regular files
   within the limits; every folder or file not taken is reported, every name escaped);
3. **autograde**, in three phases so that only one process ever writes the gradebook:
   a. *prepare* (serial): every notebook is read and restored against the gradebook
      (``instructor/integrity.py``: deleted, stripped or edited test cells score 0 and are flagged;
      a notebook made from an earlier release, by its release id checked against that release's
      checksums (``instructor/releases.py``), is graded on the cells it has, those added since
      at 0 and not flagged; an unreadable file is graded as the blank release, all 0, and
      flagged);
   b. *execute*: each notebook in its own sandboxed kernel (``student_side/sandbox.py``,
      ``instructor/execute.py``) with per-cell and per-notebook time limits and a memory limit; a
      kernel that dies or hangs costs that student the cells that did not run, nobody else
      anything;
   c. *record*: once every notebook of an assignment has run, nbgrader's own ``Autograde``
      converter, with execution switched off, reads that assignment's executed notebooks and
      stores the scores (``SaveAutoGrades``, late penalties), in the recorder: one process that
      records one assignment after another and is the gradebook's only writer;
4. **feedback** -- hidden tests and their tracebacks are removed from a copy of each autograded
   notebook (``instructor/feedback.py``), then ``nbgrader generate_feedback`` renders the HTML,
   student by student in a pool of ``--jobs`` processes, as soon as the assignment is recorded.

5. **export** -- nbgrader's CSV export plugin writes ``grades.csv``, its columns as they are, and
   a column ``status``: ``missing`` (no submission: nbgrader's 0), ``unreadable`` (graded
   as the blank release because a notebook could not be collected or read) or ``submitted``;
   then ``auto_score``, ``manual_score``, ``manual_max_score`` and ``manual_ungraded``: the
   points of the answers the instructor reads (nbgrader's manually graded cells,
   ``instructor/manual.py``) apart from the grader's, and how many are not read yet;
6. **similarity** -- ``instructor/similarity.py`` compares the students' own code, assignment by
   assignment, and writes ``<course>/.pipeline/similarity.html``: reported, never scored.

Steps 3b, 3c and 4 overlap: kernels, the recorder and the renderers share ``--jobs`` slots
(recording and rendering first), so the kernels go on with the next assignments while the first
ones are recorded, and ``--jobs 1`` does one thing at a time.

The ``export`` command does step 5 alone, from the gradebook as it is: after the instructor has
graded the written answers in nbgrader's formgrader, it writes ``grades.csv`` again and renders
the feedback of the submissions that have such answers, without regrading. A regrade keeps every
manual score (nbgrader's ``SaveAutoGrades`` never writes one).

It prints a table of scores (``missing`` where nothing was submitted), the written answers left
to read, the flagged submissions
with their reasons, the most similar pairs of each assignment and the time each notebook took,
and writes ``<course>/.pipeline/report.json``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import collections
import contextlib
import heapq
import itertools
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from instructor import course, feedback, intake, integrity, manual, policy, similarity, trusted
from instructor import limits as defaults
from instructor.execute import KernelWorkers, Limits
from instructor.releases import RELEASES
from instructor.releases import load as release_records
from student_side import sandbox

DEMO_SUBMISSIONS = course.REPO / "instructor" / "demo_submissions"
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
    confinement: str = ""  # what bounded the kernel's process tree, and its user
    release: str = ""  # made from an earlier release: what it means (reported, not flagged)

    @property
    def label(self) -> str:
        return f"{self.student}/{self.assignment}/{self.notebook}"


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------


def generate(config, assignment_ids: list[str], solutions: Path = course.SOLUTIONS) -> None:
    course.stage_sources(config, assignment_ids, solutions)
    course.generate(config, assignment_ids)


def collect(config, submissions: Path, assignment_ids: list[str],
            limits: intake.IntakeLimits | None = None) -> tuple[list[Job], list[str]]:
    """Copy the submissions into the course (``instructor/intake.py``: nothing followed, only
    regular files within the limits); one :class:`Job` per notebook to grade, and the report's
    lines about what was not collected."""
    submitted = course.course_root(config) / "submitted"
    known = {a: list(course.release_notebooks(config, a)) for a in assignment_ids}
    entries, skipped = intake.collect(submissions, submitted, known,
                                      limits or intake.limits(config))
    jobs = [Job(e.student, e.assignment, e.notebook, e.path, flags=list(e.notes))
            for e in entries]
    return jobs, skipped


def graded_names(ref: integrity.Reference) -> list[str]:
    """The functions the students write: those defined in the solution cells of the source."""
    return sorted({m.group(1) for c in ref.cells if c.solution
                   for m in re.finditer(r"^def\s+(\w+)", c.source, re.MULTILINE)})


def _student_cells(nb) -> list[tuple[str, dict]]:
    """``(where, {"source"})`` for every code cell the student could edit."""
    items = []
    for index, cell in enumerate(nb.cells):
        md = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not md.get("locked"):
            where = md.get("grade_id") or f"added cell {index}"
            items.append((where, {"source": cell.source}))
    return items


def apply_policy(jobs: list[Job], notebooks: dict, max_chars: int | None = None) -> None:
    """The torch-use policy (``instructor/policy.py``), read on the trusted side from the code of
    every cell the student could edit: a test cell whose functions use what the exercise rules
    out scores 0 with the reason. At most ``max_chars`` characters of each notebook's code are
    read (the rest is flagged as not read); a fault flags its notebook and grading goes on."""
    for job in (j for j in jobs if j.executed):
        nb = notebooks[job.label]
        items = _student_cells(nb)
        if max_chars is not None:
            items, left = intake.audit_budget(items, max_chars)
            if left:
                job.flags.append(left)
        tests = {}
        for cell in nb.cells:
            md = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and md.get("grade") and not md.get("solution"):
                tests[md.get("grade_id")] = trusted.hidden_block(cell.source) or ""
        try:
            found = policy.check(job.assignment, [i["source"] for _, i in items], tests)
        except Exception as exc:  # a fault of the check must not stop the grading
            job.flags.append(f"the torch-use policy could not be checked ({type(exc).__name__})")
            continue
        job.flags.extend(found.flags)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in found.zero and integrity.MARK not in cell.metadata:
                integrity.zero(cell, found.zero[gid])
                job.flags.append(f"test cell {gid!r}: {found.zero[gid]}")


def prepare(config, jobs: list[Job], limits: intake.IntakeLimits | None = None,
            releases_root: Path | None = None) -> tuple[dict, dict]:
    """Phase a: read (``instructor/intake.py``) and restore every notebook against the gradebook;
    one that could not be collected or read is graded as the blank release, flagged. Release
    records (``instructor/releases.py``) are read from ``releases_root`` (``releases/``).

    Returns ``{label: notebook}`` and ``{label: names of the graded functions}``.
    """
    limits = limits or intake.limits(config)
    from nbgrader.api import Gradebook

    prepared, graded = {}, {}
    references = {}
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        for job in jobs:
            key = (job.assignment, job.notebook)
            if key not in references:
                release = course.release_notebooks(config, job.assignment)[job.notebook]
                references[key] = integrity.load_reference(gb, job.assignment, job.notebook,
                                                           release, release_records(
                                                               job.assignment, releases_root
                                                               or RELEASES))
            ref = references[key]
            if not job.path:  # not collected: the reason is in its flags
                prepared[job.label] = integrity.blank_submission(ref, "the submitted file could "
                                                                 "not be collected")
                continue
            try:
                result, repairs = intake.restore(job.path, ref, limits.max_file_bytes,
                                                 integrity.prepare)
            except ValueError as exc:
                job.flags.append(f"{exc}; graded as a blank notebook")
                prepared[job.label] = integrity.blank_submission(ref, "the submitted file could "
                                                                 "not be read")
                continue
            job.flags.extend(repairs)
            for issue in result.issues:
                job.flags.append(issue.text + (" (scores 0)" if issue.zeroed else ""))
            job.release = result.release
            job.executed = True
            prepared[job.label] = result.nb
            graded[job.label] = graded_names(ref)
    return prepared, graded


class _Slots:
    """At most ``n`` of the grader's processes busy at once: kernels, the recorder and the
    feedback renderers share them, so ``--jobs 1`` grades one thing at a time. A freed slot goes
    to the waiter with the lowest priority number, the earliest first among equals."""

    def __init__(self, n: int):
        self._free = max(1, n)
        self._waiting: list[tuple[int, int, asyncio.Future]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def hold(self, priority: int):
        if self._free and not self._waiting:
            self._free -= 1
        else:
            handed = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), handed))
            await handed  # a releasing holder passes its slot on
        try:
            yield
        finally:
            while self._waiting:
                handed = heapq.heappop(self._waiting)[2]
                if not handed.done():
                    handed.set_result(None)
                    break
            else:
                self._free += 1


@dataclass
class _Stage:
    """Seconds of the execute-record-feedback stage."""

    executed: float = 0.0  # from its start until the last kernel ended
    recorded: float = 0.0  # ... until the last assignment was recorded
    record: float = 0.0  # time the recorder was busy
    feedback: float = 0.0  # time the renderers were busy
    wall: float = 0.0  # the whole stage


def _fork_pool(workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    # forked now, before any kernel's ZeroMQ context exists and before a gradebook connection
    # of this stage is opened; the workers share the grader's imports (nbgrader, nbconvert)
    for future in [pool.submit(time.sleep, 0) for _ in range(workers)]:
        future.result()
    return pool


async def _grade_stage(config, jobs: list[Job], notebooks: dict, limits: Limits, n_jobs: int,
                       quiet: bool, workers: KernelWorkers,
                       seed: int, read: dict | None = None) -> _Stage:
    """Steps 3b, 3c and 4, overlapped: each notebook runs in its kernel; as soon as every
    notebook of a student's submission has run, the recorder (one process, the only writer of
    the gradebook) records that submission, and then its feedback is rendered in a pool of
    renderers, while the kernels go on with the next notebooks. Recording and rendering go
    before waiting kernels, so the stage ends soon after its last kernel (recording whole
    assignments left one slot idle while the last assignment was recorded)."""
    root = course.course_root(config)
    work = root / WORK
    executed_dir, public = work / "executed", work / "feedback_input"
    for folder in (executed_dir, public):
        shutil.rmtree(folder, ignore_errors=True)
    executed_rel, public_rel = (str(p.relative_to(root)) for p in (executed_dir, public))
    slots, stage, started = _Slots(n_jobs), _Stage(), time.monotonic()
    loop = asyncio.get_running_loop()
    waiting = collections.Counter((j.assignment, j.student) for j in jobs)
    later: list[asyncio.Task] = []
    feedback.page_resources()  # (made once, before the renderers are forked; see _grade)
    recorder, renderers = _fork_pool(1), _fork_pool(max(1, n_jobs))

    async def busy(pool, fn, *args) -> float:
        t0 = time.monotonic()
        await loop.run_in_executor(pool, fn, *args)
        return time.monotonic() - t0

    async def render(assignment: str, student: str) -> None:
        async with slots.hold(0):
            stage.feedback += await busy(renderers, _feedback_one, config, assignment, student,
                                         public_rel)

    async def record_submission(assignment: str, student: str) -> None:
        async with slots.hold(0):
            stage.record += await busy(recorder, record, config, assignment, executed_rel,
                                       read, student)
        stage.recorded = time.monotonic() - started
        for done in _sanitized_copies(root, public, assignment, [student], read):
            later.append(asyncio.create_task(render(assignment, done)))

    async def grade_one(job: Job) -> None:
        if job.executed:
            async with slots.hold(1):
                await _execute_one(job, notebooks[job.label], limits, work, quiet, workers,
                                   seed)
        stage.executed = time.monotonic() - started
        _write_executed(job, notebooks[job.label], executed_dir)
        waiting[job.assignment, job.student] -= 1
        if not waiting[job.assignment, job.student]:
            later.append(asyncio.create_task(record_submission(job.assignment, job.student)))

    try:
        # in order, assignment by assignment; each submission is recorded once it has run
        await asyncio.gather(*(grade_one(job) for job in
                               sorted(jobs, key=lambda j: (j.assignment, j.student, j.notebook))))
        while later:
            await later.pop(0)
    finally:
        for pool in (recorder, renderers):
            pool.shutdown(cancel_futures=True)
    stage.wall = time.monotonic() - started
    return stage


async def _execute_one(job: Job, nb, limits: Limits, work: Path, quiet: bool,
                       workers: KernelWorkers, seed: int) -> None:
    log_path = work / "logs" / f"{job.student}__{job.assignment}__{job.notebook}.log"
    try:
        executed, outcome = await workers.execute(nb, limits, log_path=log_path,
                                                  scratch_root=str(work / "scratch"), seed=seed)
        nb.update(executed)  # the worker ran a copy
    except Exception as exc:  # a fault of the grader must not stop the others
        job.events.append(f"the grader failed on this notebook ({type(exc).__name__}: "
                          f"{exc}); its tests score 0")
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade"):
                integrity.zero(cell, "This test cell scores 0: the grader failed on "
                                     "this notebook.")
        return
    job.seconds = outcome.seconds
    job.sandbox = outcome.sandboxed
    job.confinement = outcome.confinement
    job.events.extend(outcome.events)
    job.flags.extend(outcome.flags)
    if not quiet:
        print(f"  {intake.shown_text(job.label):<58} {outcome.seconds:5.1f} s", flush=True)


def _write_executed(job: Job, nb, executed_dir: Path) -> None:
    """Phase c's input: the executed notebook (and nbgrader's timestamp), after the flags its
    outputs reveal have been read."""
    _scan_outputs(job, nb)
    dest = executed_dir / job.student / job.assignment
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest / f"{job.notebook}.ipynb"))
    stamp = Path(job.path).parent / "timestamp.txt"
    if job.path and stamp.is_file():  # (no path: not collected, graded blank, no penalty)
        shutil.copyfile(stamp, dest / "timestamp.txt")


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


def record(config, assignment: str, executed_dir: str, read: dict | None = None,
           student: str = "*") -> None:
    """Phase c: nbgrader's Autograde converter on the executed notebooks of one assignment
    (of one ``student``, or of all), without executing them; then the instructor's scores of
    written answers (``read``: :func:`manual.scores_of` before this run) go back to the
    submissions that lost them."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import AssignLatePenalties, LimitOutput, SaveAutoGrades

    root = course.course_root(config)
    coursedir = course.course_directory(config, assignment, student)
    coursedir.submitted_directory = executed_dir
    # (a student id has no glob character: instructor/intake.py's student_id)
    for student_dir in (root / executed_dir).glob(student):
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
    mine = {k: v for k, v in (read or {}).items() if student in ("*", k[0])}
    if mine:
        manual.restore(config, assignment, mine)


def _feedback_one(config, assignment: str, student: str, public: str) -> None:
    from nbgrader.converters import GenerateFeedback

    coursedir = course.course_directory(config, assignment, student)
    coursedir.autograded_directory = public
    # the safe template: no student script runs, MathJax inline, nothing fetched, lines wrap
    converter = GenerateFeedback(coursedir=coursedir, config=feedback.converter_config(config),
                                 log=log)
    converter.force = True
    converter.start()


def _sanitized_copies(root: Path, public: Path, assignment: str, students: list[str],
                      read: dict | None = None) -> list:
    """Step 4's input for one assignment: copies of the autograded notebooks without hidden
    tests (instructor/feedback.py), a note above each answer the instructor reads
    (instructor/manual.py; ``read``: :func:`manual.scores_of`); returns the students who have
    one."""
    done, read = [], read or {}
    for student in students:
        src = root / "autograded" / student / assignment
        if not src.is_dir():
            continue
        dest = public / student / assignment
        shutil.rmtree(dest, ignore_errors=True)  # (export renders the feedback again)
        dest.mkdir(parents=True)
        for path in src.iterdir():
            if path.suffix == ".ipynb":
                nb = nbformat.read(str(path), as_version=4)
                manual.annotate(nb, {k[3]: v["score"] for k, v in read.items()
                                     if k[:3] == (student, assignment, path.stem)})
                nbformat.write(feedback.sanitize(nb), str(dest / path.name))
            elif path.is_file() and path.name == "timestamp.txt":
                shutil.copyfile(path, dest / path.name)
        shutil.rmtree(root / "feedback" / student / assignment, ignore_errors=True)
        (root / "feedback" / student).mkdir(parents=True, exist_ok=True)
        done.append(student)
    return done


MISSING, SUBMITTED, UNREADABLE = "missing", "submitted", "unreadable"


def statuses(table: dict, jobs: list[Job]) -> dict:
    """``{student: {assignment: status}}``: ``missing`` where the gradebook has no submission
    (nbgrader's export writes 0 for it), ``unreadable`` where a notebook of this run's
    submission could not be collected or read (graded as the blank release), else
    ``submitted``."""
    unread = {(j.student, j.assignment) for j in jobs if not j.executed}
    return {student: {a: MISSING if value is None else
                      UNREADABLE if (student, a) in unread else SUBMITTED
                      for a, value in row.items()}
            for student, row in table.items()}


MANUAL_COLUMNS = ("auto_score", "manual_score", "manual_max_score", "manual_ungraded")


def export(config, path: Path, students: list[str], assignment_ids: list[str],
           status: dict | None = None, summaries: dict | None = None) -> None:
    """nbgrader's CSV export, its columns as they are; with ``status``
    (``{student: {assignment: status}}``, :func:`statuses`) a column, ``status``, tells a
    missing submission from a submitted one that scored 0; with ``summaries``
    (:func:`manual.summaries`) four more split ``score`` by who decides it (instructor/manual.py):
    ``auto_score`` (the grader's cells), ``manual_score`` and ``manual_max_score`` (the answers
    the instructor reads), and ``manual_ungraded``, the answers not read yet (their points are
    not in ``score`` yet)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(config=config, log=log)
    plugin.to = str(path)
    plugin.student = students
    plugin.assignment = assignment_ids
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        plugin.export(gb)
        if status is None:
            return
        # the plugin writes one line per (assignment, student), in the gradebook's order,
        # without quoting: the column is appended line by line in that same order
        order = [(a.name, s.id) for a in gb.assignments if a.name in assignment_ids
                 for s in gb.students if s.id in students]
    lines = path.read_text().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(order) + 1:
        raise RuntimeError(f"{path}: {len(lines) - 1} rows exported, {len(order)} expected")
    out = [lines[0] + ",status" + "".join(f",{c}" for c in MANUAL_COLUMNS if summaries)]
    for line, (assignment, student) in zip(lines[1:], order):
        if not line.startswith(f"{assignment},"):
            raise RuntimeError(f"{path}: a row of {assignment!r} expected, found {line!r}")
        line = f"{line},{status.get(student, {}).get(assignment, MISSING)}"
        if summaries is not None:
            found = summaries.get(student, {}).get(assignment) or manual.Summary()
            line += (f",{found.auto_score:g},{found.manual_score:g},"
                     f"{found.manual_max_score:g},{found.ungraded}")
        out.append(line)
    path.write_text("\n".join(out) + "\n")


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
    """The limits of this run: an option, else ``nbgrader_config.py``'s ``GradingPipeline``
    (and nbgrader's per-cell timeout), else instructor/limits.py's default."""
    pipe = config.GradingPipeline
    cell = args.cell_timeout or float(config.ExecutePreprocessor.get("timeout",
                                                                     defaults.CELL_TIMEOUT_S))
    memory = args.memory_limit_mb or pipe.get("memory_limit_mb", defaults.MEMORY_LIMIT_MB)
    return Limits(
        cell_timeout=cell,
        submission_timeout=args.submission_timeout or float(
            pipe.get("submission_timeout", defaults.SUBMISSION_TIMEOUT_S)),
        memory_bytes=int(memory) * 2**20 if memory else None,
        file_size_bytes=int(pipe.get("file_size_limit_mb", defaults.FILE_SIZE_LIMIT_MB)) * 2**20,
        threads=int(pipe.get("kernel_threads", defaults.KERNEL_THREADS)),
        max_processes=int(pipe.get("max_processes", defaults.MAX_PROCESSES)),
        cpu_seconds=int(pipe.get("cpu_time_s", defaults.CPU_TIME_S)),
        cpu_share=float(pipe.get("cpu_share", defaults.CPU_SHARE)),
        output_chars_per_cell=int(pipe.get("output_chars_per_cell",
                                           defaults.OUTPUT_CHARS_PER_CELL)),
        output_chars_per_notebook=int(pipe.get("output_chars_per_notebook",
                                               defaults.OUTPUT_CHARS_PER_NOTEBOOK)),
        user=pipe.get("kernel_user", defaults.UNPRIVILEGED_USER) or None,
        preload=tuple(pipe.get("kernel_preload", ())),
    )


def _provenance(seed: int | None) -> dict:
    """What decides this run's verdicts, so that a regrade can replay it: the seed of the
    trusted checks' cases (drawn fresh unless given), the grader's commit, torch's version and
    the devices the checks run on."""
    import secrets

    import torch

    from nnbolts.grading import devices

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"seed": secrets.randbelow(2**31) if seed is None else int(seed),
            "grader_commit": commit or "unknown", "torch": torch.__version__,
            "devices": [str(d) for d in devices()]}


def unconfined_reason(limits: Limits) -> str | None:
    """Why the kernels would run unconfined (no Landlock and no subreaper), or ``None``."""
    if limits.use_landlock and sandbox.landlock_abi():
        return None
    if sandbox.subreaper_available():
        return None
    return ("neither Landlock nor a subreaper is available on this system: student code "
            "would run with the grader's file permissions and could leave processes behind")


def grade(args) -> int:
    started = time.monotonic()
    submissions = Path(args.submissions).resolve()
    if not submissions.is_dir():
        print(f"no such folder: {submissions}", file=sys.stderr)
        return 2
    config = course.load_config(args.course_dir)
    root = course.course_root(config)
    root.mkdir(parents=True, exist_ok=True)
    available = course.assignments(_solutions(args))
    wanted = sorted(intake.assignment_names(submissions) & set(available))
    assignment_ids = args.assignments.split(",") if args.assignments else wanted
    unknown = sorted(set(assignment_ids) - set(available))
    if unknown:
        print(f"no such assignment in solutions/: {', '.join(unknown)}", file=sys.stderr)
        return 2
    limits = _limits(config, args)
    unconfined = unconfined_reason(limits)
    if unconfined and not args.allow_unconfined:
        print(f"refusing to grade: {unconfined}. Pass --allow-unconfined to grade anyway.",
              file=sys.stderr)
        return 2

    work = root / WORK
    (work / "logs").mkdir(parents=True, exist_ok=True)
    (work / "scratch").mkdir(parents=True, exist_ok=True)
    # the answers the instructor has read, before generate may have to start a changed
    # assignment's submissions afresh: the recorder gives them back, the feedback says so
    read = manual.scores_of(config)
    # Three things at once: generate in a forked process; the kernels' zygote importing torch
    # and IPython; this process importing what the trusted checks need, then forking the
    # kernel workers (which inherit it)
    generating = _forked(_timed, generate, config, assignment_ids, _solutions(args))
    workers = KernelWorkers(args.jobs, limits.preload, str(work / "scratch"), limits.threads,
                            zygote=config.GradingPipeline.get("kernel_zygote", True))
    try:
        return _grade(args, config, assignment_ids, limits, workers, started, generating, read)
    finally:
        workers.close()
        for warning in workers.warnings:
            print(f"kernel workers: {warning}", file=sys.stderr)


def _timed(fn, *args) -> float:
    """The seconds ``fn(*args)`` took."""
    t0 = time.monotonic()
    fn(*args)
    return time.monotonic() - t0


def _forked(fn, *args) -> Future:
    """``fn(*args)`` in a forked process of its own; the future of its result (or exception)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)  # the process ends once fn has
    return future


def _grade(args, config, assignment_ids, limits, workers, started, generating: Future,
           read: dict) -> int:
    root = course.course_root(config)
    work = root / WORK
    submissions = Path(args.submissions).resolve()
    t_generate = generating.result()  # (the workers started meanwhile)
    # The feedback page's resources (MathJax gzipped: about a second, mostly outside the
    # interpreter lock) are made while this thread collects and prepares the submissions, once,
    # and inherited by every renderer the stage forks.
    resources = threading.Thread(target=feedback.page_resources, name="page resources",
                                 daemon=True)
    resources.start()

    intake_limits = intake.limits(config, args)
    jobs, skipped = collect(config, submissions, assignment_ids, intake_limits)
    students = sorted({job.student for job in jobs})
    if not jobs:
        print(f"nothing to grade in {submissions}", *skipped, sep="\n  ")
        return 1
    print(f"Grading {len(jobs)} notebooks of {len(students)} students "
          f"({', '.join(assignment_ids)}) with {args.jobs} job(s); limits: "
          f"{limits.cell_timeout:g} s per cell, {limits.submission_timeout:g} s per notebook, "
          f"{(limits.memory_bytes or 0) // 2**20} MiB, {limits.max_processes} processes and "
          f"{limits.cpu_share:g} CPU per kernel's tree, {limits.cpu_seconds} CPU s per process, "
          f"{limits.output_chars_per_notebook:,} output characters per notebook; intake: "
          f"{intake_limits.described}", flush=True)

    t0 = time.monotonic()
    # the release records beside the assignments' sources (releases/ beside solutions/)
    notebooks, graded = prepare(config, jobs, intake_limits, Path(
        getattr(args, "solutions", None) or course.SOLUTIONS).resolve().parent / "releases")
    apply_policy(jobs, notebooks, intake_limits.audit_max_chars)
    t_prepare = time.monotonic() - t0

    provenance = _provenance(args.seed)
    print(f"Trusted checks: seed {provenance['seed']} (replay with --seed "
          f"{provenance['seed']}), grader {provenance['grader_commit']}, torch "
          f"{provenance['torch']}, devices {', '.join(provenance['devices'])}", flush=True)
    resources.join()
    stage = asyncio.run(_grade_stage(config, jobs, notebooks, limits, args.jobs,
                                     args.quiet, workers, provenance["seed"], read))

    grades_csv = Path(args.grades_csv).resolve()
    table = scores(config, students, assignment_ids)
    status = statuses(table, jobs)
    summaries = manual.summaries(config, students, assignment_ids)
    export(config, grades_csv, students, assignment_ids, status, summaries)
    t0 = time.monotonic()
    similar = similarity_report(config, jobs, notebooks)
    t_similarity = time.monotonic() - t0
    total = time.monotonic() - started

    times = [j.seconds for j in jobs if j.executed]
    # execute/recorded/stage: seconds from the stage's start until its last kernel ended, its
    # last assignment was recorded, its last feedback was rendered; record/feedback: the
    # seconds the recorder and the renderers were busy (they overlap the kernels)
    timings = {"generate": t_generate, "prepare": t_prepare, "execute": stage.executed,
               "recorded": stage.recorded, "stage": stage.wall, "record": stage.record,
               "feedback": stage.feedback, "similarity": t_similarity, "total": total,
               "jobs": args.jobs, "notebooks": len(jobs),
               "mean_notebook": statistics.fmean(times) if times else 0.0,
               "median_notebook": statistics.median(times) if times else 0.0}
    report = {
        "course_dir": str(root), "grades_csv": str(grades_csv),
        "feedback_dir": str(root / "feedback"),
        "assignments": assignment_ids, "students": students,
        "scores": {s: {a: list(v) if v else None for a, v in row.items()}
                   for s, row in table.items()},
        "status": status,
        "manual": {s: {a: v.as_dict() if v else None for a, v in row.items()}
                   for s, row in summaries.items()},
        "similarity": similar,
        "submissions": [asdict(job) for job in jobs], "skipped": skipped, "timings": timings,
        "confinement": sorted({j.confinement for j in jobs if j.confinement}),
        "limits": {"cell_timeout_s": limits.cell_timeout,
                   "submission_timeout_s": limits.submission_timeout,
                   "memory_mb": (limits.memory_bytes or 0) // 2**20,
                   "max_processes": limits.max_processes, "cpu_time_s": limits.cpu_seconds,
                   "cpu_share": limits.cpu_share,
                   "output_chars_per_cell": limits.output_chars_per_cell,
                   "output_chars_per_notebook": limits.output_chars_per_notebook},
        "allow_unconfined": bool(args.allow_unconfined),
        "provenance": provenance,
    }
    (work / "report.json").write_text(json.dumps(report, indent=1))
    print_report(report)
    return 0


def similarity_report(config, jobs: list[Job], notebooks: dict) -> dict:
    """The similarity report (``instructor/similarity.py``: reported, never scored) of the
    notebooks that were read; written to ``<course>/.pipeline/similarity.html``. A fault of it
    is reported and grading goes on."""
    root = course.course_root(config)
    threshold = float(config.GradingPipeline.get("similarity_threshold", similarity.THRESHOLD))
    graded = [(j.student, j.assignment, j.notebook, notebooks[j.label]) for j in jobs
              if j.executed]
    assignments = sorted({j.assignment for j in jobs})
    try:
        return similarity.run(root, graded,
                              {a: course.release_notebooks(config, a) for a in assignments},
                              threshold)
    except Exception as exc:  # reported, never scored: it must not stop the grading
        return {"error": f"{type(exc).__name__}: {exc}", "assignments": {}}


_MAX_FLAGS_SHOWN, _MAX_FLAG_CHARS = 30, 1000  # per notebook, per flag (report.json has all)


def print_report(report: dict) -> None:
    assignments = report["assignments"]
    shown = intake.shown
    width = max([len("student")] + [len(shown(s)) for s in report["students"]])
    print()
    print("Scores")
    print("  " + "student".ljust(width) + "".join(f"  {a:>16}" for a in assignments)
          + f"  {'total':>12}")
    for student in report["students"]:
        row, got, out_of = report["scores"][student], 0.0, 0.0
        status = report.get("status", {}).get(student, {})
        cells = []
        for a in assignments:
            value = row.get(a)
            if value is None:
                cells.append(f"  {MISSING:>16}")
            else:
                got, out_of = got + value[0], out_of + value[1]
                text = f"{value[0]:g}/{value[1]:g}"
                if status.get(a) == UNREADABLE:
                    text += " unreadable"
                cells.append(f"  {text:>16}")
        print("  " + shown(student).ljust(width) + "".join(cells)
              + f"  {f'{got:g}/{out_of:g}':>12}")
    print_manual(report)
    older = [s for s in report["submissions"] if s.get("release")]
    if older:
        print()
        print(f"Made from an earlier release (not flagged): {len(older)}")
        for sub in older:
            print(f"  {shown(sub['student'])}/{shown(sub['assignment'])}/"
                  f"{shown(sub['notebook'])}: {intake.shown_text(sub['release'])}")
    flagged = [s for s in report["submissions"] if s["flags"]]
    print()
    print(f"Flagged submissions: {len(flagged)}")
    for sub in flagged:
        print(f"  {shown(sub['student'])}/{shown(sub['assignment'])}/{shown(sub['notebook'])}")
        for flag in sub["flags"][:_MAX_FLAGS_SHOWN]:
            print(f"      - {intake.shown_text(flag)[:_MAX_FLAG_CHARS]}")
        if len(sub["flags"]) > _MAX_FLAGS_SHOWN:
            print(f"      - ... {len(sub['flags']) - _MAX_FLAGS_SHOWN} more in report.json")
    if report["skipped"]:
        print()
        print(f"Intake notes: {len(report['skipped'])} (what was not collected or not graded, "
              "and ids mapped)")
    for item in report["skipped"]:
        print(f"  - {intake.shown_text(item)}")
    _print_similarity(report.get("similarity") or {})
    t = report["timings"]
    sandboxes = sorted({s["sandbox"] for s in report["submissions"] if s["sandbox"]})
    print()
    print(f"Autograde: {t['median_notebook']:.2f} s per notebook (median; mean "
          f"{t['mean_notebook']:.2f} s), kernel start to shutdown; {t['execute']:.1f} s until "
          f"the last of "
          f"{t['notebooks']} notebooks with {t['jobs']} job(s); sandbox: "
          f"{', '.join(sandboxes) or '-'}")
    print(f"Steps: generate {t['generate']:.1f} s, prepare {t['prepare']:.1f} s, then "
          f"{t['stage']:.1f} s for execute, record and feedback together (kernels done after "
          f"{t['execute']:.1f} s; recording took {t['record']:.1f} s, rendering "
          f"{t['feedback']:.1f} s of process time); total {t['total']:.1f} s")
    for line in report.get("confinement", []):
        print(f"Confinement: {line}")
    if report.get("allow_unconfined"):
        print("Confinement: --allow-unconfined was given")
    print(f"grades: {report['grades_csv']}   feedback: {report['feedback_dir']}")


def print_manual(report: dict) -> None:
    """The report's "Read by the instructor" lines: the answers nbgrader left to a person."""
    found = report.get("manual") or {}
    answers = [(student, a, answer) for student, row in found.items()
               for a, summary in row.items() if summary for answer in summary["answers"]]
    if not answers:
        return
    print()
    to_read = [x for x in answers if x[2]["state"] == manual.TO_READ]
    print(f"Read by the instructor: {len(answers)} written answers, {len(to_read)} to read "
          f"(their points are not in the scores above until they are graded)")
    for assignment in sorted({a for _, a, _ in answers}):
        mine = [x[2] for x in answers if x[1] == assignment]
        counts = {state: sum(x["state"] == state for x in mine)
                  for state in (manual.TO_READ, manual.READ, manual.NOT_ANSWERED)}
        waiting = sorted({s for s, a, x in answers
                          if a == assignment and x["state"] == manual.TO_READ})
        print(f"  {intake.shown(assignment)}: " + ", ".join(
            f"{n} {state}" for state, n in counts.items())
            + (f" (to read: {', '.join(intake.shown(s) for s in waiting)})" if waiting else ""))
    if to_read:
        where = f" --course-dir {report['course_dir']}" if report.get("course_dir") else ""
        print("  Grade them in nbgrader's formgrader (Manual Grading), then run "
              f"`python -m instructor.pipeline export{where}` to write grades.csv and the "
              "feedback again (instructor guide, \"Answers read by the instructor\").")


def _print_similarity(similar: dict) -> None:
    print()
    if similar.get("error"):
        print(f"Similarity: not computed ({intake.shown_text(similar['error'])})")
        return
    found = similar.get("assignments", {})
    threshold = next((v["threshold"] for v in found.values()), similarity.THRESHOLD)
    print(f"Similarity (reported, never scored): pairs of students at or above {threshold:g}; "
          f"all of them in {intake.shown_text(similar.get('html', '-'))}")
    for assignment, result in found.items():
        print(f"  {intake.shown(assignment)}: {result['pairs_reported']} pairs among "
              f"{result['compared']} students compared"
              + (f" ({len(result['not_compared'])} with too little code of their own)"
                 if result["not_compared"] else ""))
        for pair in result["top"]:
            cells = ", ".join(f"{intake.shown_text(k)} {v:.2f}" for k, v in pair["cells"])
            print(f"      {pair['score']:.3f}  {intake.shown(pair['a'])} ~ "
                  f"{intake.shown(pair['b'])}  ({cells})")


def _solutions(args) -> Path:
    return Path(getattr(args, "solutions", None) or course.SOLUTIONS).resolve()


def export_only(args) -> int:
    """``export``: ``grades.csv`` (and the feedback of the submissions with answers read by the
    instructor) again from the gradebook as it is now, without grading anything: after manual
    grading in nbgrader's formgrader. ``status`` comes from the last grading run's report
    (``unreadable`` stays so); a submission it does not know is ``submitted``."""
    from nbgrader.api import Gradebook

    config = course.load_config(args.course_dir)
    root = course.course_root(config)
    if not (root / "gradebook.db").is_file():
        print(f"no gradebook in {root}: grade first (make grade)", file=sys.stderr)
        return 2
    previous = {}
    report_path = root / WORK / "report.json"
    if report_path.is_file():
        previous = json.loads(report_path.read_text())
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        known_students = [s.id for s in gb.students]
        known_assignments = [a.name for a in gb.assignments]
    students = args.students.split(",") if args.students else sorted(
        previous.get("students") or known_students)
    assignment_ids = args.assignments.split(",") if args.assignments else sorted(
        previous.get("assignments") or known_assignments)
    unknown = sorted(set(assignment_ids) - set(known_assignments))
    if unknown:
        print(f"no such assignment in the gradebook: {', '.join(unknown)}", file=sys.stderr)
        return 2
    table = scores(config, students, assignment_ids)
    before = previous.get("status") or {}
    status = {s: {a: MISSING if value is None else
                  before.get(s, {}).get(a) if before.get(s, {}).get(a) in (SUBMITTED, UNREADABLE)
                  else SUBMITTED for a, value in row.items()} for s, row in table.items()}
    summaries = manual.summaries(config, students, assignment_ids)
    grades_csv = Path(args.grades_csv).resolve()
    export(config, grades_csv, students, assignment_ids, status, summaries)
    rendered = 0
    if not args.no_feedback:
        public = root / WORK / "feedback_input"
        read = manual.scores_of(config)
        for assignment in assignment_ids:
            with_answers = [s for s in students if (summaries[s][assignment] or
                                                    manual.Summary()).answers]
            for student in _sanitized_copies(root, public, assignment, with_answers, read):
                _feedback_one(config, assignment, student, str(public.relative_to(root)))
                rendered += 1
    report = {"assignments": assignment_ids, "students": students, "course_dir": str(root),
              "manual": {s: {a: v.as_dict() if v else None for a, v in row.items()}
                         for s, row in summaries.items()}}
    for student in students:
        cells = []
        for a in assignment_ids:
            value, found = table[student][a], summaries[student][a]
            if value is None:
                continue  # (missing: in grades.csv)
            text = f"{value[0]:g}/{value[1]:g}"
            if found and found.ungraded:
                text += f" +{found.ungraded} to read"
            cells.append(f"{a} {text}")
        print(f"  {intake.shown(student)}: " + ", ".join(cells))
    print_manual(report)
    print(f"grades: {grades_csv}" + (f"   feedback rendered again: {rendered} submission(s) in "
                                     f"{root / 'feedback'}" if rendered else ""))
    return 0


def exercises(args) -> int:
    def latest() -> dict:
        return {a: (r[-1]["release"], r[-1]["digest"]) if r else None
                for a in course.assignments() for r in [release_records(a)]}

    before = latest()
    written = course.build_exercises(args.course_dir, dest=Path(args.dest).resolve())
    for path in written:
        print(f"wrote {os.path.relpath(path, course.REPO)}")
    for assignment, now in latest().items():  # (instructor/releases.py)
        if now and now != before.get(assignment):
            print(f"recorded release {now[0]} of {assignment}: "
                  f"releases/{assignment}/release-{now[0]}.json (commit it with exercises/)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exercises", help="regenerate exercises/ from solutions/")
    ex.add_argument("--course-dir", default=None, help="staging course (default .nbgrader_course)")
    ex.add_argument("--dest", default=str(course.EXERCISES))
    gr = sub.add_parser("grade", help="generate, autograde, feedback and export")
    gr.add_argument("--submissions", default=None,
                    help="<student>/<assignment>/<notebook>.ipynb (default: the demo submissions)")
    gr.add_argument("--jobs", type=int, default=defaults.JOBS,
                    help=f"notebooks executed at once (default {defaults.JOBS})")
    gr.add_argument("--course-dir", default=None,
                    help="course root (default .nbgrader_course; .nbgrader_course/demo for the "
                         "demo submissions, so that they never mix with a real class)")
    gr.add_argument("--grades-csv", default=str(course.REPO / "grades.csv"))
    gr.add_argument("--assignments", default="", help="comma-separated (default: all submitted)")
    gr.add_argument("--cell-timeout", type=float, default=None)
    gr.add_argument("--submission-timeout", type=float, default=None)
    gr.add_argument("--memory-limit-mb", type=int, default=None)
    gr.add_argument("--max-file-mb", type=float, default=None,
                    help="collect: largest file copied (default: nbgrader_config.py)")
    gr.add_argument("--max-files", type=int, default=None,
                    help="collect: files copied per assignment folder (default: "
                         "nbgrader_config.py)")
    gr.add_argument("--audit-max-chars", type=int, default=None,
                    help="static audit: characters of code read per notebook (default: "
                         "nbgrader_config.py)")
    gr.add_argument("--seed", type=int, default=None,
                    help="seed of the trusted checks' random cases (default: drawn fresh; the "
                         "report records it, so a regrade can replay a run)")
    gr.add_argument("--solutions", default=None,
                    help="the assignments' sources (default solutions/)")
    gr.add_argument("--quiet", action="store_true", help="no line per notebook")
    gr.add_argument("--allow-unconfined", action="store_true",
                    help="grade even where the kernels can be neither sandboxed (Landlock) nor "
                         "followed to their last process (subreaper)")
    xp = sub.add_parser("export", help="grades.csv (and the feedback of answers read by the "
                        "instructor) again from the gradebook, without grading: after manual "
                        "grading")
    xp.add_argument("--course-dir", default=None,
                    help="course root (default .nbgrader_course; the demo's: "
                         ".nbgrader_course/demo)")
    xp.add_argument("--grades-csv", default=str(course.REPO / "grades.csv"))
    xp.add_argument("--assignments", default="",
                    help="comma-separated (default: those of the last grading run)")
    xp.add_argument("--students", default="",
                    help="comma-separated (default: those of the last grading run)")
    xp.add_argument("--no-feedback", action="store_true",
                    help="write grades.csv only; do not render the feedback again")
    args = parser.parse_args(argv)
    if args.command == "grade" and args.submissions is None:
        args.submissions = str(DEMO_SUBMISSIONS)
        args.course_dir = args.course_dir or str(course.DEFAULT_COURSE / "demo")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for handler in logging.getLogger().handlers:  # log lines name students' files: escaped
        handler.setFormatter(intake.EscapingFormatter("%(levelname)s: %(message)s"))
    if args.command == "export":
        return export_only(args)
    return exercises(args) if args.command == "exercises" else grade(args)


if __name__ == "__main__":
    status = main()
    # Everything is written and every process it started has ended: skip the interpreter's
    # teardown of torch and torch._dynamo (the trusted checks' imports), about a second.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
