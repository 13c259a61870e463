"""Release records (instructor/releases.py): a changed assignment never accuses earlier submitters.

The scenario of issue 13 on a small synthetic course in a temporary folder: release 1 of an
assignment, a fully correct submission made from it; the assignment then gets a new graded cell
(release 2). The old submission keeps its points on release 1's cells, scores 0 on the new cell
with "made from release 1" and is not flagged; a claimed id is checked against that release's
own checksums, so claiming an old id selects nothing easier; a submission without an id is
graded as before; an unknown id is reported. The end-to-end test grades such submissions with
``python -m instructor.pipeline grade`` in confined kernels, as for a class.
"""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from instructor import course, integrity, releases

ASSIGNMENT, NOTEBOOK = "01-tiny", "tiny"

HEADER = """\
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
"""


def _meta(gid: str, *, grade=False, solution=False, locked=False, points=None) -> str:
    lines = ["---", "nbgrader:", f"  grade: {str(grade).lower()}", f"  grade_id: {gid}",
             f"  locked: {str(locked).lower()}"]
    if points is not None:
        lines.append(f"  points: {points}")
    lines += ["  schema_version: 3", f"  solution: {str(solution).lower()}", "  task: false",
              "---"]
    return "\n".join(lines)


def _code(meta: str, body: str) -> str:
    return f"```{{code-cell}} ipython3\n{meta}\n{textwrap.dedent(body).strip()}\n```\n"


def _function(name: str, factor: int) -> str:
    solution = _code(_meta(name, solution=True), f"""
        def {name}(x):
            ### BEGIN SOLUTION
            return {factor} * x
            ### END SOLUTION
        """)
    test = _code(_meta(f"test_{name}", grade=True, locked=True, points=2), f"""
        assert {name}(2) == {2 * factor}
        ### BEGIN HIDDEN TESTS
        for value in (0, 1, -3, 7):
            assert {name}(value) == {factor} * value, value
        ### END HIDDEN TESTS
        """)
    return f"\n## {name}\n\n{solution}\n{test}"


def source(*, triple: bool, setup: str = "import math") -> str:
    """The assignment: a setup cell and ``double``; with ``triple`` a second graded function."""
    text = HEADER + "\n" + _code(_meta("setup", locked=True), setup) + _function("double", 2)
    return text + (_function("triple", 3) if triple else "")


def _build(tmp: Path, name: str, text: str) -> tuple[Path, Path]:
    """Write the source, build the release into ``tmp/<name>``; the course and the records are
    shared by every build of one test (a course evolving in time)."""
    solutions = tmp / "solutions"
    (solutions / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
    (solutions / ASSIGNMENT / f"{NOTEBOOK}.md").write_text(text)
    dest = tmp / name
    course.build_exercises(tmp / "course", dest=dest, solutions=solutions,
                           releases_dir=tmp / "releases")
    return dest / ASSIGNMENT / f"{NOTEBOOK}.ipynb", tmp / "releases" / ASSIGNMENT


def _answer(path: Path) -> nbformat.NotebookNode:
    """A fully correct submission made from the released notebook at ``path``."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in ("double", "triple"):
            factor = 2 if gid == "double" else 3
            cell.source = f"def {gid}(x):\n    return {factor} * x\n"
    return nb


@pytest.fixture(scope="module")
def course_v2(tmp_path_factory):
    """Release 1 (``double``), then release 2 (``triple`` added): the released notebooks and the
    bytes of the first record as they were when it was written."""
    tmp = tmp_path_factory.mktemp("releases")
    v1, records = _build(tmp, "ex1", source(triple=False))
    first = (records / "release-1.json").read_bytes()
    v2, _ = _build(tmp, "ex2", source(triple=True))
    return {"tmp": tmp, "v1": v1, "v2": v2, "records": records, "first": first}


def _reference(tmp: Path) -> integrity.Reference:
    config = course.load_config(tmp / "course")
    release = course.release_notebooks(config, ASSIGNMENT)[NOTEBOOK]
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        return integrity.load_reference(gb, ASSIGNMENT, NOTEBOOK, release,
                                        releases.load(ASSIGNMENT, tmp / "releases"))


def _zeroed(nb) -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata[integrity.MARK]["zeroed"]
            for c in nb.cells if integrity.MARK in c.metadata}


def _prepare(course_v2, nb):
    return integrity.prepare(copy.deepcopy(nb), _reference(course_v2["tmp"]))


# --- the records -----------------------------------------------------------------------------


def test_each_release_is_recorded_and_stamped(course_v2):
    records = releases.load(ASSIGNMENT, course_v2["tmp"] / "releases")
    assert [r["release"] for r in records] == [1, 2]
    first, second = (r["notebooks"][NOTEBOOK] for r in records)
    assert [c["grade_id"] for c in first] == ["setup", "double", "test_double"]
    assert [c["grade_id"] for c in second] == ["setup", "double", "test_double", "triple",
                                               "test_triple"]
    assert [c["kind"] for c in second] == ["readonly", "solution", "test", "solution", "test"]
    assert second[2]["points"] == 2.0 and "checksum" not in second[1]
    # nbgrader's checksum of each locked cell as released, as in the released notebook
    v2 = nbformat.read(str(course_v2["v2"]), as_version=4)
    released = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["checksum"]
                for c in v2.cells if "nbgrader" in c.metadata}
    for entry in second:
        if entry["kind"] in releases.LOCKED_KINDS:
            assert entry["checksum"] == released[entry["grade_id"]]
    for path, number in ((course_v2["v1"], 1), (course_v2["v2"], 2)):
        stamp = nbformat.read(str(path), as_version=4).metadata[releases.META_KEY]
        assert stamp == {"assignment": ASSIGNMENT, "release": number,
                         "digest": records[number - 1]["digest"]}
    # nothing secret in a record: no source at all, so no solution and no hidden test
    text = (course_v2["records"] / "release-2.json").read_text()
    assert "return 3" not in text and "HIDDEN" not in text and "value" not in text


def test_earlier_records_are_never_rewritten(course_v2):
    assert (course_v2["records"] / "release-1.json").read_bytes() == course_v2["first"]


def test_regenerating_an_unchanged_assignment_records_nothing(tmp_path):
    text = source(triple=False)
    first, records = _build(tmp_path, "a", text)
    written = (records / "release-1.json").read_bytes()
    again, _ = _build(tmp_path, "b", text)
    assert sorted(p.name for p in records.iterdir()) == ["release-1.json"]
    assert (records / "release-1.json").read_bytes() == written  # no time in it
    assert first.read_bytes() == again.read_bytes()
    # a change students do not see (a hidden test) is no new release either
    _build(tmp_path, "c", text.replace("(0, 1, -3, 7)", "(0, 1, -3, 7, 11)"))
    assert sorted(p.name for p in records.iterdir()) == ["release-1.json"]
    # a change they see is
    _build(tmp_path, "d", source(triple=False, setup="import math\nimport cmath"))
    assert sorted(p.name for p in records.iterdir()) == ["release-1.json", "release-2.json"]


def test_committed_records_match_the_committed_exercises():
    """Every assignment's latest record is the release in exercises/ (run `make exercises`, and
    commit releases/ with exercises/)."""
    for assignment in course.assignments():
        records = releases.load(assignment)
        assert records, f"{assignment} has no release record: run `make exercises`"
        cells = releases.content({p.stem: p for p in
                                  sorted((course.EXERCISES / assignment).glob("*.ipynb"))})
        assert records[-1]["notebooks"] == cells, f"{assignment}: run `make exercises`"
        for path in sorted((course.EXERCISES / assignment).glob("*.ipynb")):
            stamp = nbformat.read(str(path), as_version=4).metadata.get(releases.META_KEY)
            assert stamp == {"assignment": assignment, "release": records[-1]["release"],
                             "digest": records[-1]["digest"]}, path


# --- grading a submission ----------------------------------------------------------------------


def test_a_submission_of_release_1_is_graded_on_its_cells_and_not_flagged(course_v2):
    result = _prepare(course_v2, _answer(course_v2["v1"]))
    assert result.issues == []
    zeroed = _zeroed(result.nb)
    assert list(zeroed) == ["test_triple"]
    assert "made from release 1" in zeroed["test_triple"]
    assert "added in release 2" in zeroed["test_triple"]
    assert result.release.startswith("made from release 1") and "test_triple" in result.release
    # its own test cell is restored to the instructor's source (hidden tests back in), to run
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in result.nb.cells
             if "nbgrader" in c.metadata}
    assert "BEGIN HIDDEN TESTS" in cells["test_double"].source
    assert cells["double"].source.strip() == "def double(x):\n    return 2 * x"
    # the cells added since are in, the new solution cell is not (its solution is secret)
    assert "triple" not in cells and cells["test_triple"].metadata["nbgrader"]["points"] == 2


def test_a_submission_of_release_2_is_graded_as_usual(course_v2):
    result = _prepare(course_v2, _answer(course_v2["v2"]))
    assert result.issues == [] and _zeroed(result.nb) == {} and result.release == ""


def test_without_a_release_id_it_is_graded_as_before(course_v2):
    nb = _answer(course_v2["v1"])
    del nb.metadata[releases.META_KEY]
    result = _prepare(course_v2, nb)
    assert [i.kind for i in result.issues] == ["deleted"]
    assert _zeroed(result.nb).keys() == {"test_triple"} and result.release == ""


@pytest.mark.parametrize("forged", [
    {"assignment": ASSIGNMENT, "release": 1, "digest": "0" * 16},   # wrong digest
    {"assignment": ASSIGNMENT, "release": 9, "digest": "0" * 16},   # no such release
    {"assignment": "02-other", "release": 1, "digest": "0" * 16},   # another assignment
    {"assignment": ASSIGNMENT, "release": "1", "digest": 5},        # malformed
    "release 1",                                                    # not even a mapping
])
def test_an_unknown_id_is_reported_and_graded_against_the_current_release(course_v2, forged):
    nb = _answer(course_v2["v1"])
    nb.metadata[releases.META_KEY] = forged
    result = _prepare(course_v2, nb)
    kinds = [i.kind for i in result.issues]
    assert kinds == ["release", "deleted"], kinds
    assert "graded against the current release" in result.issues[0].text
    assert _zeroed(result.nb).keys() == {"test_triple"} and result.release == ""


def test_claiming_release_1_while_holding_release_2_selects_nothing(course_v2):
    records = releases.load(ASSIGNMENT, course_v2["tmp"] / "releases")
    nb = _answer(course_v2["v2"])
    releases.stamp(nb, records[0])
    result = _prepare(course_v2, nb)
    assert [i.kind for i in result.issues] == ["release"]
    assert "'test_triple' not in that release" in result.issues[0].text
    # graded against the current release: every test cell runs, as for an honest release 2
    assert _zeroed(result.nb) == {} and result.release == ""


def test_claiming_release_1_with_an_edited_read_only_cell_is_not_advantaged(course_v2):
    nb = _answer(course_v2["v1"])
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_double":
            cell.source = "assert True"  # an easier test, under release 1's id
    result = _prepare(course_v2, nb)
    kinds = [i.kind for i in result.issues]
    assert kinds == ["release", "edited", "deleted"], kinds
    assert "'test_double' edited" in result.issues[0].text
    # as today: the edited cell and the "deleted" new one score 0 -- more than an honest
    # release-1 submission loses
    assert _zeroed(result.nb).keys() == {"test_double", "test_triple"}


def test_a_cell_removed_in_a_later_release_is_dropped_silently(tmp_path):
    """Release 2 removes ``triple``: a release-1 submission that has it is not flagged for it."""
    v1, _ = _build(tmp_path, "a", source(triple=True))
    _build(tmp_path, "b", source(triple=False))
    result = integrity.prepare(_answer(v1), _reference(tmp_path))
    assert result.issues == [] and _zeroed(result.nb) == {}
    assert result.release == "made from release 1"
    graded = [c.metadata["nbgrader"]["grade_id"] for c in result.nb.cells
              if "nbgrader" in c.metadata]
    assert graded == ["setup", "double", "test_double"]


# --- nbgrader's refusal, and the whole grading run --------------------------------------------


GRADE = """
import sys
from pathlib import Path
from instructor import pipeline
tmp = Path(sys.argv[1])  # its releases/ beside its solutions/
sys.exit(pipeline.main(["grade", "--submissions", str(tmp / "submissions"), "--jobs", "1",
                        "--solutions", str(tmp / "solutions"),
                        "--course-dir", str(tmp / "course"), "--grades-csv",
                        str(tmp / "grades.csv"), "--cell-timeout", "30", "--quiet",
                        "--seed", "1"]))
"""


def _grade(tmp: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", GRADE, str(tmp)], capture_output=True,
                          text=True, timeout=600, cwd=course.REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp / "course" / ".pipeline" / "report.json").read_text())
    report["stdout"], report["stderr"] = proc.stdout, proc.stderr
    return report


@pytest.mark.slow
def test_grading_a_class_across_a_change_of_the_assignment(tmp_path, caplog):
    """Grade release-1 submissions; add a graded cell (release 2: nbgrader's gradebook, which
    holds their submissions, refuses to add it unless they are removed first); grade the class
    again, with a submission of each release and one without an id."""
    v1, _ = _build(tmp_path, "ex1", source(triple=False))
    subs = tmp_path / "submissions"

    def submit(student: str, nb) -> None:
        (subs / student / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(subs / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"))

    old = _answer(v1)
    submit("early", old)
    first = _grade(tmp_path)
    assert first["scores"]["early"][ASSIGNMENT] == [2.0, 2.0]

    with caplog.at_level(logging.WARNING, logger="grading"):
        v2, _ = _build(tmp_path, "ex2", source(triple=True))  # the same course: it has grades
    assert "submissions of 1 student(s) were removed so that nbgrader records the new " \
           "release: grade them again (early)" in caplog.text
    submit("late", _answer(v2))
    unstamped = copy.deepcopy(old)
    del unstamped.metadata[releases.META_KEY]
    submit("before_ids", unstamped)
    second = _grade(tmp_path)
    scores = second["scores"]
    assert scores["early"][ASSIGNMENT] == [2.0, 4.0]  # full marks on release 1's cells
    assert scores["late"][ASSIGNMENT] == [4.0, 4.0]
    assert scores["before_ids"][ASSIGNMENT] == [2.0, 4.0]  # as before this change
    jobs = {j["student"]: j for j in second["submissions"]}
    assert jobs["early"]["flags"] == [] and jobs["late"]["flags"] == []
    assert jobs["early"]["release"].startswith("made from release 1")
    assert any("was deleted" in f for f in jobs["before_ids"]["flags"])
    assert "Made from an earlier release (not flagged): 1" in second["stdout"]
    feedback = (tmp_path / "course" / "feedback" / "early" / ASSIGNMENT
                / f"{NOTEBOOK}.html").read_text()
    assert "made from release 1" in feedback


def test_without_any_record_ids_are_not_checked(course_v2):
    """A course whose records are missing grades every submission as before, without
    accusing every notebook of an unknown id."""
    config = course.load_config(course_v2["tmp"] / "course")
    release = course.release_notebooks(config, ASSIGNMENT)[NOTEBOOK]
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        ref = integrity.load_reference(gb, ASSIGNMENT, NOTEBOOK, release, [])
    result = integrity.prepare(_answer(course_v2["v1"]), ref)
    assert [i.kind for i in result.issues] == ["deleted"]


def test_cells_changed_since_are_named_in_the_note(tmp_path):
    """Release 2 rewords the read-only setup cell: a release-1 submission is not flagged for it,
    and the note names the cell (it was graded with the current checks)."""
    v1, _ = _build(tmp_path, "a", source(triple=False))
    _build(tmp_path, "b", source(triple=False, setup="import math\nimport cmath"))
    result = integrity.prepare(_answer(v1), _reference(tmp_path))
    assert result.issues == [] and _zeroed(result.nb) == {}
    assert result.release == ("made from release 1; changed since, graded with the current "
                              "checks: 'setup'")


# --- every assignment of the course -------------------------------------------------------------


@pytest.fixture(scope="module")
def the_course(tmp_path_factory):
    """Every assignment of solutions/ generated into a course of its own (as ``make grade``
    does), with its gradebook."""
    tmp = tmp_path_factory.mktemp("course")
    config = course.load_config(tmp / "course")
    ids = course.assignments()
    course.stage_sources(config, ids)
    course.generate(config, ids)
    return config, ids


def test_every_assignment_grades_an_earlier_release_without_a_flag(the_course):
    """For each assignment, a release 1 without its last test cell, then the current one as
    release 2: a notebook made from release 1 is not flagged, and only that cell scores 0,
    with the reason; the same notebook without an id is flagged as before."""
    config, ids = the_course
    for assignment in ids:
        with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
            for name, path in course.release_notebooks(config, assignment).items():
                current = nbformat.read(str(path), as_version=4)
                last = [c for c in current.cells
                        if releases.kind(c.metadata.get("nbgrader")) == "test"][-1]
                dropped = last.metadata["nbgrader"]["grade_id"]
                old = copy.deepcopy(current)
                old.cells = [c for c in old.cells
                             if c.metadata.get("nbgrader", {}).get("grade_id") != dropped]
                records = []
                for number, nb in ((1, old), (2, current)):
                    cells = {name: releases.notebook_cells(nb)}
                    records.append({"assignment": assignment, "release": number,
                                    "digest": releases.digest(cells), "notebooks": cells})
                releases.stamp(old, records[0])
                ref = integrity.load_reference(gb, assignment, name, path, records)
                result = integrity.prepare(copy.deepcopy(old), ref)
                where = f"{assignment}/{name}"
                assert result.issues == [], (where, [i.text for i in result.issues])
                zeroed = _zeroed(result.nb)
                assert list(zeroed) == [dropped], (where, zeroed)
                assert "made from release 1" in zeroed[dropped], where
                del old.metadata[releases.META_KEY]
                before = integrity.prepare(old, ref)
                assert [i.kind for i in before.issues] == ["deleted"], where


def test_make_exercises_says_which_release_it_recorded(tmp_path, monkeypatch, capsys):
    from instructor import pipeline

    solutions = tmp_path / "solutions"
    (solutions / ASSIGNMENT).mkdir(parents=True)
    monkeypatch.setattr(pipeline, "release_records",
                        lambda a: releases.load(a, tmp_path / "releases"))
    monkeypatch.setattr(course, "assignments", lambda solutions=None: [ASSIGNMENT])
    build = course.build_exercises
    monkeypatch.setattr(course, "build_exercises", lambda course_dir, dest: build(
        tmp_path / "course", dest=dest, solutions=solutions))
    for triple, expected in ((False, 1), (False, None), (True, 2)):
        (solutions / ASSIGNMENT / f"{NOTEBOOK}.md").write_text(source(triple=triple))
        assert pipeline.main(["exercises", "--dest", str(tmp_path / "ex")]) == 0
        said = [line for line in capsys.readouterr().out.splitlines()
                if line.startswith("recorded")]
        assert said == ([] if expected is None else [
            f"recorded release {expected} of {ASSIGNMENT}: releases/{ASSIGNMENT}/"
            f"release-{expected}.json (commit it with exercises/)"])


def test_an_uncommitted_record_is_a_draft(tmp_path):
    """In a git work tree, a latest record never committed is replaced by the next change; once
    committed, the next change is a new release."""
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    _, records = _build(tmp_path, "a", source(triple=False))
    first = (records / "release-1.json").read_text()
    _build(tmp_path, "b", source(triple=True))  # a draft: release 1 again
    assert sorted(p.name for p in records.iterdir()) == ["release-1.json"]
    assert (records / "release-1.json").read_text() != first
    git("add", "releases")
    git("commit", "-q", "-m", "release 1")
    _build(tmp_path, "c", source(triple=True, setup="import cmath"))
    assert sorted(p.name for p in records.iterdir()) == ["release-1.json", "release-2.json"]


def test_generating_stamps_a_recorded_release(tmp_path):
    """``course.generate`` (what ``make grade`` and the demo submissions start from) writes the
    id of the release ``releases/`` recorded, and none for one it did not record."""
    _build(tmp_path, "a", source(triple=False))
    config = course.load_config(tmp_path / "fresh")
    course.stage_sources(config, [ASSIGNMENT], tmp_path / "solutions")
    course.generate(config, [ASSIGNMENT], tmp_path / "releases")
    path = course.release_notebooks(config, ASSIGNMENT)[NOTEBOOK]
    stamp = nbformat.read(str(path), as_version=4).metadata[releases.META_KEY]
    assert stamp["release"] == 1
    (tmp_path / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.md").write_text(source(triple=True))
    course.stage_sources(config, [ASSIGNMENT], tmp_path / "solutions")
    course.generate(config, [ASSIGNMENT], tmp_path / "releases")
    assert releases.META_KEY not in nbformat.read(str(path), as_version=4).metadata
