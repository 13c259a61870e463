"""Answers read by the instructor, end to end, on a course of one tiny assignment.

The assignment (written here into a temporary ``solutions/``) has one autograded function
(``relu``, 1 point, decided by the trusted check) and one written answer graded by hand (a
markdown cell, ``solution: true, grade: true``, 2 points). Three students: ``alice`` answers
both, ``bob`` writes the function and leaves the written answer as released, ``carol`` gets the
function wrong and answers in writing.

1. ``grade``: the written answers of alice and carol are recorded as nbgrader records them (no
   automatic score, needing a manual grade), bob's as not answered (0); the report and each
   feedback page say so; ``grades.csv`` counts them as not read yet.
2. The instructor grades alice's answer through nbgrader's Gradebook API (what the formgrader
   stores), then ``export``: ``grades.csv`` adds her manual points to her automatic ones, and her
   feedback shows them -- without regrading.
3. ``grade`` again (a regrade): alice's manual score is still there.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from instructor import course, manual

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT, NOTEBOOK = "90-written", "written"

SOURCE = textwrap.dedent('''\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

    # A tiny assignment

    ```{code-cell} ipython3
    ---
    nbgrader:
      grade: false
      grade_id: setup
      locked: true
      schema_version: 3
      solution: false
      task: false
    ---
    import torch
    ```

    ```{code-cell} ipython3
    ---
    nbgrader:
      grade: false
      grade_id: relu
      locked: false
      schema_version: 3
      solution: true
      task: false
    ---
    def relu(z):
        ### BEGIN SOLUTION
        return torch.where(z > 0, z, torch.zeros_like(z))
        ### END SOLUTION
    ```

    ```{code-cell} ipython3
    ---
    nbgrader:
      grade: true
      grade_id: test_relu
      locked: true
      points: 1
      schema_version: 3
      solution: false
      task: false
    ---
    assert relu(torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    ### BEGIN HIDDEN TESTS
    from nnbolts import activations as reference, grading
    grading.check_elementwise(relu, reference.relu)
    ### END HIDDEN TESTS
    ```

    **Question (written, 2 points, read by the instructor).** Why is ReLU's derivative at 0 a
    matter of convention?

    +++ WRITTEN_METADATA

    The function has a kink at 0: its one-sided derivatives are 0 and 1.
    ''')
WRITTEN = {"grade": True, "grade_id": "written_relu", "locked": False, "points": 2,
           "schema_version": 3, "solution": True, "task": False}
SOURCE = SOURCE.replace("WRITTEN_METADATA", json.dumps({"nbgrader": WRITTEN}))

CHANGED_CELL = textwrap.dedent('''
    ```{code-cell} ipython3
    ---
    nbgrader:
      grade: true
      grade_id: test_relu_again
      locked: true
      points: 1
      schema_version: 3
      solution: false
      task: false
    ---
    assert relu(torch.tensor([3.0])).tolist() == [3.0]
    ### BEGIN HIDDEN TESTS
    from nnbolts import activations as reference, grading
    grading.check_elementwise(relu, reference.relu)
    ### END HIDDEN TESTS
    ```
    ''')

RIGHT = "def relu(z):\n    return torch.clamp(z, min=0)\n"
WRONG = "def relu(z):\n    return torch.abs(z)\n"
ANSWER = "At 0 the left derivative is 0 and the right one is 1, so any value in [0, 1] works."
STUDENTS = {"alice": (RIGHT, ANSWER), "bob": (RIGHT, None), "carol": (WRONG, ANSWER)}


def _grade(base: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "instructor.pipeline", "grade", "--submissions",
         str(base / "submissions"), "--solutions", str(base / "solutions"), "--course-dir",
         str(base / "course"), "--grades-csv", str(base / "grades.csv"), "--jobs", "1",
         "--cell-timeout", "20", "--submission-timeout", "90", "--quiet", "--seed", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((base / "course" / ".pipeline" / "report.json").read_text())
    return {"stdout": proc.stdout, "stderr": proc.stderr, "report": report,
            "csv": _rows(base / "grades.csv")}


def _export(base: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "instructor.pipeline", "export", "--course-dir",
         str(base / "course"), "--grades-csv", str(base / "grades.csv")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _rows(path: Path) -> dict:
    with open(path, newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _feedback(base: Path, student: str) -> str:
    return (base / "course" / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    base = tmp_path_factory.mktemp("manual")
    solutions = base / "solutions" / ASSIGNMENT
    solutions.mkdir(parents=True)
    (solutions / f"{NOTEBOOK}.md").write_text(SOURCE)
    released = course.build_exercises(base / "release-course", dest=base / "exercises",
                                      solutions=base / "solutions")
    release = nbformat.read(str(next(p for p in released if p.suffix == ".ipynb")), 4)
    for student, (code, answer) in STUDENTS.items():
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid == "relu":
                cell.source = code
            elif gid == "written_relu" and answer is not None:
                cell.source = answer
        folder = base / "submissions" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{NOTEBOOK}.ipynb"))
    out = {"base": base, "release": release, "first": _grade(base)}
    out["first_feedback"] = {s: _feedback(base, s) for s in STUDENTS}

    # the instructor reads alice's answer (what the formgrader stores), then exports
    from nbgrader.api import Gradebook

    config = course.load_config(base / "course")
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        grade = gb.find_grade("written_relu", NOTEBOOK, ASSIGNMENT, "alice")
        grade.manual_score = 1.5
        comment = gb.find_comment("written_relu", NOTEBOOK, ASSIGNMENT, "alice")
        comment.manual_comment = "Right; say which value autograd picks."
        gb.db.commit()
    out["export"] = _export(base)
    out["exported"] = _rows(base / "grades.csv")
    out["exported_feedback"] = {s: _feedback(base, s) for s in STUDENTS}
    out["second"] = _grade(base)  # a regrade
    out["second_feedback"] = _feedback(base, "alice")

    # the assignment changes after grading (a test cell added): its submissions must be
    # recorded afresh (course.clear_changed), and the instructor's scores come back
    source = (solutions / f"{NOTEBOOK}.md").read_text()
    added = CHANGED_CELL + "\n**Question (written"
    (solutions / f"{NOTEBOOK}.md").write_text(source.replace("\n**Question (written", added, 1))
    out["changed"] = _grade(base)
    out["changed_feedback"] = _feedback(base, "alice")
    return out


def test_the_release_holds_the_stub_not_the_model_answer(flow):
    written = next(c for c in flow["release"].cells
                   if c.metadata.get("nbgrader", {}).get("grade_id") == "written_relu")
    assert written.cell_type == "markdown" and "kink" not in written.source


def test_a_written_answer_is_recorded_as_needing_a_manual_grade(flow):
    from nbgrader.api import Gradebook

    config = course.load_config(flow["base"] / "course")
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        carol = gb.find_grade("written_relu", NOTEBOOK, ASSIGNMENT, "carol")
        assert carol.auto_score is None and carol.manual_score is None
        assert carol.needs_manual_grade
        bob = gb.find_grade("written_relu", NOTEBOOK, ASSIGNMENT, "bob")
        assert bob.auto_score == 0  # left as released: nbgrader's 0, nothing to read
    manual_report = flow["first"]["report"]["manual"]
    states = {s: [a["state"] for a in manual_report[s][ASSIGNMENT]["answers"]]
              for s in STUDENTS}
    assert states == {"alice": [manual.TO_READ], "bob": [manual.NOT_ANSWERED],
                      "carol": [manual.TO_READ]}
    assert "Read by the instructor: 3 written answers, 2 to read" in flow["first"]["stdout"]
    assert "1 not answered (to read: alice, carol)" in flow["first"]["stdout"]


def test_grades_csv_splits_automatic_and_manual_points(flow):
    rows = flow["first"]["csv"]
    assert {k: rows["alice"][k] for k in ("score", "max_score", "auto_score", "manual_score",
                                          "manual_max_score", "manual_ungraded", "status")} == {
        "score": "1.0", "max_score": "3.0", "auto_score": "1", "manual_score": "0",
        "manual_max_score": "2", "manual_ungraded": "1", "status": "submitted"}
    assert rows["bob"]["manual_ungraded"] == "0" and rows["bob"]["auto_score"] == "1"
    assert rows["carol"]["auto_score"] == "0" and rows["carol"]["manual_ungraded"] == "1"
    header = (flow["base"] / "grades.csv").read_text().splitlines()[0].split(",")
    assert header[-5:] == ["status", "auto_score", "manual_score", "manual_max_score",
                           "manual_ungraded"]


def test_feedback_says_the_answer_is_read_by_the_instructor(flow):
    pages = flow["first_feedback"]
    assert "has not been read yet" in pages["alice"] and "has not been read yet" in pages["carol"]
    assert "not answered, so 0 of 2 points" in pages["bob"]
    assert ANSWER.split(",")[0] in pages["alice"]


def test_export_adds_the_manual_score_without_regrading(flow):
    rows = flow["exported"]
    assert rows["alice"]["score"] == "2.5" and rows["alice"]["manual_score"] == "1.5"
    assert rows["alice"]["manual_ungraded"] == "0" and rows["alice"]["auto_score"] == "1"
    assert rows["carol"]["manual_ungraded"] == "1"  # still to read
    assert "+1 to read" in flow["export"] and "1 read" in flow["export"]
    page = flow["exported_feedback"]["alice"]
    assert "1.5 of 2 points" in page and "say which value autograd picks" in page
    assert "has not been read yet" in flow["exported_feedback"]["carol"]


def test_a_regrade_keeps_the_instructors_scores(flow):
    rows = flow["second"]["csv"]
    assert rows["alice"]["score"] == "2.5" and rows["alice"]["manual_score"] == "1.5"
    assert rows["alice"]["manual_ungraded"] == "0"
    assert rows["carol"]["manual_ungraded"] == "1"
    assert "1.5 of 2 points" in flow["second_feedback"]


def test_scores_survive_a_change_of_the_assignment(flow):
    """Cells added after grading: nbgrader cannot record the new release while the gradebook
    holds submissions, so they are removed and recorded again; the instructor's scores and
    comments of the answers still asked are given back."""
    changed = flow["changed"]
    assert "were removed" in changed["stderr"]  # the submissions were recorded afresh
    rows = changed["csv"]
    assert rows["alice"]["manual_score"] == "1.5" and rows["alice"]["manual_ungraded"] == "0"
    assert rows["carol"]["manual_ungraded"] == "1"
    assert rows["alice"]["max_score"] == "4.0"  # the new test cell counts
    page = flow["changed_feedback"]
    assert "1.5 of 2 points" in page and "say which value autograd picks" in page


def test_a_blank_assignment_folder_is_not_needed_for_export(flow, tmp_path):
    """``export`` on a course that was never graded says so instead of writing an empty file."""
    proc = subprocess.run([sys.executable, "-m", "instructor.pipeline", "export",
                           "--course-dir", str(tmp_path / "none"), "--grades-csv",
                           str(tmp_path / "g.csv")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "grade first" in proc.stderr
    assert not (tmp_path / "g.csv").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
