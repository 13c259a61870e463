"""The instructor pipeline on the bundled demo submissions (instructor/demo.py lists who does what).

One run of ``python -m instructor.pipeline grade`` with two jobs grades every demo student; the
tests below read what it left: the report, the gradebook, grades.csv, the feedback HTML, the
executed notebooks. Short time limits keep the run well under three minutes.
"""

from __future__ import annotations

import copy
import csv
import fcntl
import html
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from instructor import course, demo, feedback, integrity

ROOT = Path(__file__).resolve().parents[1]


ASSIGNMENTS = ["01-activations", "02-initializers", "03-gradient-descent",
               "04-adaptive-optimizers", "05-schedules", "06-minibatch", "07-losses",
               "08-backprop", "09-scaling"]
CSV_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
               "email", "raw_score", "late_submission_penalty", "score", "max_score"]
STATUS_COLUMN = "status"  # appended after nbgrader's own columns
# then the points split by who decides them (instructor/manual.py)
MANUAL_COLUMNS = ["auto_score", "manual_score", "manual_max_score", "manual_ungraded"]

# student -> words one of its flags must contain (decided on the trusted side)
CHEATERS = {
    "cheat_reference": "uses the course library",
    "cheat_deleted": "was deleted",
    "cheat_stripped": "metadata of test cell",
    "cheat_edited": "was edited",
    "loop": "time limit",
    "crash": "kernel exited",
    "corrupt": "unreadable notebook",
    "memory_hog": "memory limit",
    "snoop": "outside its sandbox",
    "cheat_optim_reference": "builds names at run time",
}

# attacks on the old in-kernel checks that the trusted verdict makes inert: a patched
# torch.allclose, a result displayed for nbgrader's partial credit, an exception handler that
# hides failures. No flag is needed: they score what their functions earn (the committed
# table), which is no more than the same notebook without the attack.
INERT = {"cheat_allclose": "01-activations", "cheat_partial_credit": "01-activations",
         "cheat_swallow": "01-activations"}

# honest students whose answers are written unlike the instructor's: full marks, no flag
HONEST = {
    "honest_adam": "04-adaptive-optimizers",  # adamw_init is one line calling its own adam_init
    "honest_schedules": "05-schedules",  # schedules as callable objects, lambda, partial
    "honest_training": "06-minibatch",  # Tensor.split batches, a while loop, deepcopy
}


@pytest.fixture(scope="module")
def run(request, tmp_path_factory):
    # Under pytest-xdist every worker would run this module fixture: the first one to take the
    # lock grades, the others wait and read its results from the session's shared folder.
    base = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):
        base = base.parent
    out = base / "pipeline-run"
    with open(base / "pipeline-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = out / "done.json"
        if not done.exists():
            out.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(
                [sys.executable, "-m", "instructor.pipeline", "grade",
                 "--submissions", str(demo.DEMO), "--jobs", "2",
                 "--course-dir", str(out / "course"), "--grades-csv", str(out / "grades.csv"),
                 "--cell-timeout", "10", "--submission-timeout", "90", "--quiet"],
                cwd=ROOT, capture_output=True, text=True, timeout=600)
            done.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                        "stderr": proc.stderr}))
    proc = json.loads(done.read_text())
    assert proc["returncode"] == 0, proc["stdout"] + proc["stderr"]
    report = json.loads((out / "course" / ".pipeline" / "report.json").read_text())
    return {"dir": out, "course": out / "course", "proc": proc, "report": report}


def _score(run, student, assignment):
    value = run["report"]["scores"][student][assignment]
    assert value is not None, f"{student} has no grade for {assignment}"
    return value


def _flags(run, student) -> list[str]:
    return [f for s in run["report"]["submissions"] if s["student"] == student
            for f in s["flags"]]


def _full_marks(run, student, assignment) -> None:
    """Every point the grader decides; written answers are read by the instructor
    (instructor/manual.py) and count 0 until they are."""
    score, max_score = _score(run, student, assignment)
    written = run["report"]["manual"][student][assignment]
    assert written["auto_score"] == written["auto_max_score"] > 0, (student, assignment)
    assert score == written["auto_score"] + written["manual_score"]
    assert max_score == written["auto_max_score"] + written["manual_max_score"]


def test_correct_student_gets_full_marks(run):
    for assignment in ASSIGNMENTS:
        _full_marks(run, "correct", assignment)
    assert _flags(run, "correct") == []


def test_blank_submission_scores_zero(run):
    for assignment in ASSIGNMENTS:
        assert _score(run, "blank", assignment)[0] == 0
    assert _flags(run, "blank") == []


def test_partly_wrong_submission_scores_in_between(run):
    for assignment in ASSIGNMENTS:
        score, max_score = _score(run, "partial", assignment)
        assert 0 < score < max_score, (assignment, score, max_score)
    assert _flags(run, "partial") == []


@pytest.mark.parametrize("student", sorted(HONEST))
def test_unusual_but_honest_answers_get_full_marks_unflagged(run, student):
    _full_marks(run, student, HONEST[student])
    assert _flags(run, student) == []


def test_a_warning_or_stderr_never_costs_a_point(run):
    """honest_warnings: the right answers, every function warning and printing to stderr when
    called. Full marks everywhere, no flag, and no test cell shows the noise: the trusted side
    writes their output."""
    for assignment in ASSIGNMENTS:
        _full_marks(run, "honest_warnings", assignment)
        nb = nbformat.read(str(run["course"] / ".pipeline" / "executed" / "honest_warnings" /
                               assignment / f"{demo.NOTEBOOK[assignment]}.ipynb"), 4)
        shown = [str(o) for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
                 and not c.metadata["nbgrader"].get("solution") for o in c.outputs]
        assert not [o for o in shown if "harmless" in o], (assignment, shown)
    assert _flags(run, "honest_warnings") == []


def _errors(run, student, assignment, notebook) -> dict[str, str]:
    """grade_id -> the error message each graded cell of an executed notebook ended with."""
    nb = nbformat.read(str(run["course"] / ".pipeline" / "executed" / student / assignment /
                           f"{notebook}.ipynb"), 4)
    return {c.metadata["nbgrader"]["grade_id"]: o.get("evalue", "")
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
            for o in c.outputs if o.output_type == "error"}


def test_torch_optim_in_an_answer_scores_nothing(run):
    # torch's own Adam is refused as not the student's work (the rules say so) but, unlike a
    # call to nnbolts, not reported as cheating
    errors = _errors(run, "torch_optim", "04-adaptive-optimizers", "adaptive_optimizers")
    for gid in ("test_adam", "test_adam_amsgrad", "test_adamw"):
        assert "uses torch's torch.optim" in errors.get(gid, ""), errors
    score, max_score = _score(run, "torch_optim", "04-adaptive-optimizers")
    assert 0 < score < max_score


@pytest.mark.parametrize("student", sorted(CHEATERS))
def test_each_cheater_is_flagged_and_loses_marks(run, student):
    flags = _flags(run, student)
    assert any(CHEATERS[student] in f for f in flags), flags
    for assignment, value in run["report"]["scores"][student].items():
        if value is not None:
            assert value[0] < value[1], f"{student} got full marks on {assignment}"


@pytest.mark.parametrize("student", sorted(INERT))
def test_an_attack_on_the_old_in_kernel_checks_is_inert(run, student):
    """Its test cells hold only what the trusted side wrote: no displayed result, no hidden
    error; the wrong function it was hiding fails."""
    score, max_score = _score(run, student, INERT[student])
    assert score < max_score
    nb = nbformat.read(str(run["course"] / "autograded" / student / INERT[student] /
                           "activations.ipynb"), 4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            kinds = {o.output_type for o in cell.outputs}
            assert kinds in ({"stream"}, {"error"}), (cell.metadata["nbgrader"], kinds)


EXPECTED_SCORES = Path(__file__).with_name("demo_expected_scores.csv")


def expected_demo_scores() -> dict[tuple[str, str], tuple[float, float]]:
    """``{(student, assignment): (score, max_score)}`` from tests/demo_expected_scores.csv."""
    with open(EXPECTED_SCORES, newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {(r["student"], r["assignment"]): (float(r["score"]), float(r["max_score"]))
                for r in rows}


def test_demo_scores_match_the_committed_table(run):
    # every demo student x assignment, exactly as committed before the engine is redesigned
    got = {(s, a): tuple(v) for s, row in run["report"]["scores"].items()
           for a, v in row.items() if v is not None}
    assert got == expected_demo_scores()


def test_grading_continues_after_crash_timeout_and_corrupt_file(run):
    # the broken submissions are graded (cells that ran keep their points) ...
    assert _score(run, "crash", "01-activations")[0] > 0
    assert _score(run, "loop", "01-activations")[0] > 0
    assert _score(run, "corrupt", "02-initializers")[0] == 0
    # ... and every student got a grade for everything they submitted
    for sub in run["report"]["submissions"]:
        assert run["report"]["scores"][sub["student"]][sub["assignment"]] is not None


def test_sandbox_denied_every_attempt(run):
    nb = nbformat.read(str(run["course"] / ".pipeline" / "executed" / "snoop" /
                           "02-initializers" / "initializers.ipynb"), 4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "denied: ../../../gradebook.db" in text and "denied: ../../../source" in text
    assert "denied: writing the gradebook" in text and "denied: killing the grader" in text
    assert "\nread " not in "\n" + text, text


def test_grades_csv_has_nbgrader_export_columns(run):
    with open(run["dir"] / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [*CSV_COLUMNS, STATUS_COLUMN, *MANUAL_COLUMNS]
    students = run["report"]["students"]
    assert {(r["student_id"], r["assignment"]) for r in rows} == {
        (s, a) for s in students for a in ASSIGNMENTS}
    by_key = {(r["student_id"], r["assignment"]): r for r in rows}
    for assignment in ASSIGNMENTS:
        row = by_key[("correct", assignment)]
        # every point the grader decides; the written answers count once they are read
        assert float(row["auto_score"]) + float(row["manual_max_score"]) == float(
            row["max_score"]) > 0
        assert float(row["score"]) == float(row["auto_score"]) + float(row["manual_score"])
    assert float(by_key[("snoop", "01-activations")]["score"]) == 0  # nothing submitted
    # ... which the status column tells from a blank submission and an unreadable one
    assert by_key[("snoop", "01-activations")]["status"] == "missing"
    assert by_key[("snoop", "01-activations")]["timestamp"] == ""
    assert by_key[("blank", "01-activations")]["status"] == "submitted"
    assert float(by_key[("blank", "01-activations")]["score"]) == 0
    assert by_key[("corrupt", "02-initializers")]["status"] == "unreadable"
    assert by_key[("correct", "01-activations")]["status"] == "submitted"
    submitted = {(s["student"], s["assignment"]) for s in run["report"]["submissions"]}
    for (student, assignment), row in by_key.items():
        assert (row["status"] == "missing") == ((student, assignment) not in submitted)
        assert row["status"] == run["report"]["status"][student][assignment]


def test_report_shows_missing_apart_from_a_zero(run):
    assert run["report"]["scores"]["snoop"]["01-activations"] is None
    assert run["report"]["status"]["snoop"]["01-activations"] == "missing"
    assert run["report"]["status"]["blank"]["01-activations"] == "submitted"
    lines = run["proc"]["stdout"].splitlines()
    header = lines.index("Scores")
    table = lines[header + 2:lines.index("", header)]  # below the header, to the blank line
    rows = {line.split()[0]: line.split()[1:] for line in table}
    column = ASSIGNMENTS.index("01-activations")
    assert rows["snoop"][column] == "missing"
    assert rows["blank"][column].startswith("0/")
    assert "unreadable" in " ".join(rows["corrupt"])


def test_similarity_report_was_written(run):
    similar = run["report"]["similarity"]
    assert "error" not in similar, similar
    page = run["course"] / ".pipeline" / "similarity.html"
    assert similar["html"] == str(page) and page.is_file()
    text = page.read_text()
    # every demo student writes from the instructor's solution: the correct student is in a pair,
    # linked to its feedback; the blank one is never compared
    assert 'href="../feedback/correct/01-activations/activations.html"' in text
    activations = similar["assignments"]["01-activations"]
    assert activations["pairs_reported"] > 0 and "blank" in activations["not_compared"]
    for result in similar["assignments"].values():
        assert all("blank" not in (p["a"], p["b"]) for p in result["top"])
    assert "Similarity (reported, never scored)" in run["proc"]["stdout"]


def _submitted_text(relative: Path) -> str:
    """Every cell of a demo submission: the release's text and the student's code."""
    try:
        nb = nbformat.read(str(demo.DEMO / relative), 4)
    except ValueError:  # NotJSONError: the corrupt student's file: nothing of its own to exempt
        return ""
    return "\n".join(c.source for c in nb.cells)


def test_feedback_shows_scores_and_hints_but_no_hidden_test(run):
    secrets = []
    for assignment in ASSIGNMENTS:
        for md in (course.SOLUTIONS / assignment).glob("*.md"):
            for cell in course.notebook_from_markdown(md).cells:
                secrets += feedback.hidden_lines(cell.source)
    assert secrets
    pages = sorted((run["course"] / "feedback").rglob("*.html"))
    graded = {(s["student"], s["assignment"]) for s in run["report"]["submissions"]}
    assert len(pages) == len(graded)
    for page in pages:
        text = page.read_text()
        assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
        # a line the release or the student wrote too (``def __call__(self, step):``) is no leak
        own = _submitted_text(page.relative_to(run["course"] / "feedback").with_suffix(".ipynb"))
        for line in secrets:
            assert line not in text or line in own, f"{page}: {line}"
    partial = (run["course"] / "feedback" / "partial" / "01-activations" /
               "activations.html").read_text()
    assert "AssertionError" in partial and "Score" in partial
    # a known mistake is named, by a visible test (04) or by a hidden one's diagnosis (03)
    hints = {"04-adaptive-optimizers": "Adam without its bias correction",
             "03-gradient-descent": "This looks like: weight decay added after the momentum"}
    for assignment, hint in hints.items():
        page, = (run["course"] / "feedback" / "partial" / assignment).glob("*.html")
        assert hint in html.unescape(page.read_text()), f"{assignment}: {hint!r} not shown"


def test_gradebook_is_intact(run):
    db = run["course"] / "gradebook.db"
    assert b"all grades are 100" not in db.read_bytes()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = con.execute("SELECT count(*) FROM submitted_assignment").fetchone()[0]
    assert n == len(run["report"]["submissions"])


def test_no_spurious_checksum_warning(run):
    output = run["proc"]["stdout"] + run["proc"]["stderr"]
    assert "checksum" not in output.lower() and "has changed" not in output


def test_report_lists_times_and_flags(run):
    out = run["proc"]["stdout"]
    assert "Scores" in out and "Flagged submissions" in out and "per notebook" in out
    for student in CHEATERS:
        assert f"  {student}/" in out
    assert all(s["seconds"] > 0 for s in run["report"]["submissions"] if s["executed"])
    # which confinement applied (tests/test_limits.py tests each)
    assert run["report"]["confinement"] and "Confinement: " in out
    assert all("subreaper" in s["confinement"] for s in run["report"]["submissions"]
               if s["executed"])


def test_demo_submissions_are_up_to_date(tmp_path):
    written = demo.build(tmp_path / "demo", course_dir=tmp_path / "course")
    for path in written:
        rel = path.relative_to(tmp_path / "demo")
        assert (demo.DEMO / rel).read_bytes() == path.read_bytes(), (
            f"{rel} is stale: run `make demo-submissions`")


# --------------------------------------------------------------------------------------------
# the integrity step and the feedback filter on their own (no kernel)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(run):
    from nbgrader.api import Gradebook

    config = course.load_config(run["course"])
    release = course.release_notebooks(config, "01-activations")["activations"]
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        return integrity.load_reference(gb, "01-activations", "activations", release)


def _by_id(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}


def test_untouched_release_is_restored_silently(reference):
    prepared = integrity.prepare(copy.deepcopy(reference.release), reference)
    assert prepared.issues == []
    cell = _by_id(prepared.nb)["test_sigmoid"]
    assert "BEGIN HIDDEN TESTS" in cell.source and integrity.MARK not in cell.metadata


def test_integrity_catches_tampering(reference):
    nb = copy.deepcopy(reference.release)
    cells = _by_id(nb)
    nb.cells.remove(cells["test_relu"])
    cells["test_elu"].metadata = nbformat.NotebookNode()
    cells["test_softmax"].source = "pass"
    cells["test_silu"].metadata.nbgrader["points"] = 100
    twin = copy.deepcopy(cells["test_sigmoid"])
    twin["id"] = "twin"
    nb.cells.append(twin)
    prepared = integrity.prepare(nb, reference)
    kinds = {(i.grade_id, i.kind) for i in prepared.issues}
    assert {("test_relu", "deleted"), ("test_elu", "stripped"), ("test_softmax", "edited"),
            ("test_sigmoid", "duplicate")} <= kinds
    cells = _by_id(prepared.nb)
    for gid in ("test_relu", "test_elu", "test_softmax"):
        assert cells[gid].metadata[integrity.MARK]["zeroed"]
        assert cells[gid].outputs[0].ename == integrity.INTEGRITY_ERROR
    assert cells["test_silu"].metadata.nbgrader["points"] == 1
    assert integrity.MARK not in cells["test_silu"].metadata


def test_unreadable_notebook_is_refused(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [')
    with pytest.raises(ValueError, match="unreadable"):
        integrity.read_submission(path)


def test_feedback_filter_removes_hidden_tests_and_their_echo():
    test = nbformat.v4.new_code_cell(
        "assert f(1) == 2\n### BEGIN HIDDEN TESTS\ncheck_secretly(f, reference_f)\n"
        "### END HIDDEN TESTS")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": "t", "points": 1}
    test.outputs = [
        nbformat.v4.new_output("stream", name="stdout",
                               text="echo: check_secretly(f, reference_f)\n"),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="f: wrong at [0]",
                               traceback=["----> 3 check_secretly(f, reference_f)",
                                          "AssertionError: f: wrong at [0]"]),
    ]
    nb = feedback.sanitize(nbformat.v4.new_notebook(cells=[test]))
    text = json.dumps(nb)
    assert "check_secretly" not in text and "HIDDEN" not in text
    assert "f: wrong at [0]" in text and "assert f(1) == 2" in text


def test_notebook_wall_clock_limit_stops_a_slow_notebook():
    import asyncio

    from instructor.execute import NOT_RUN, Limits, execute

    cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(1.5)") for _ in range(6)]
    test = nbformat.v4.new_code_cell("assert True")
    test.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "points": 1, "locked": True,
                                 "solution": False}
    nb = nbformat.v4.new_notebook(cells=[*cells, test])
    outcome = asyncio.run(execute(nb, Limits(cell_timeout=20, submission_timeout=4)))
    assert outcome.timed_out and "time limit of 4 s" in " ".join(outcome.events)
    assert outcome.seconds < 15
    # the test cell never ran: it carries an error, so nbgrader scores it 0
    assert test.outputs[0].ename == NOT_RUN


# --------------------------------------------------------------------------------------------
# the slots that kernels, the recorder and the renderers share
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3])
def test_slots_bound_concurrency_and_let_recording_go_first(n):
    import asyncio

    from instructor.pipeline import _Slots

    async def scenario():
        slots, busy, peak, order = _Slots(n), [0], [0], []

        async def task(name, priority, seconds):
            async with slots.hold(priority):
                busy[0] += 1
                peak[0] = max(peak[0], busy[0])
                order.append(name)
                await asyncio.sleep(seconds)
                busy[0] -= 1

        kernels = [asyncio.create_task(task(f"kernel {i}", 1, 0.02)) for i in range(6)]
        await asyncio.sleep(0.005)  # the first n kernels hold every slot
        record = asyncio.create_task(task("record", 0, 0.01))
        await asyncio.gather(*kernels, record)
        return peak[0], order

    peak, order = asyncio.run(scenario())
    assert peak == n
    # the recording waited for one slot only: it came right after the first n kernels, before
    # the kernels that had been waiting longer
    assert order.index("record") == n
    assert sorted(order) == sorted([f"kernel {i}" for i in range(6)] + ["record"])


def _fails():
    raise ValueError("no such assignment source: 99-missing")


def test_a_step_run_in_a_forked_process_gives_back_its_result_or_its_error():
    """generate runs in a forked process while the kernel workers start: its seconds come back,
    and so does its error, as the same exception."""
    import time

    from instructor.pipeline import _forked, _timed

    assert 0.05 <= _forked(_timed, time.sleep, 0.05).result(timeout=60) < 30
    with pytest.raises(ValueError, match="99-missing"):
        _forked(_timed, _fails).result(timeout=60)
