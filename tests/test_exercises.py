"""exercises/ is generated from solutions/, leaks nothing, and every notebook behaves when run.

* regenerating the student notebooks gives exactly the committed files;
* no solution code, no hidden test and no nbgrader delimiter reaches exercises/;
* every graded function of an assignment has a hidden test that calls nnbolts.grading;
* the instructor's notebooks pass their own visible and hidden tests (nbclient);
* the blank release runs to the end with every test cell failing: a score of zero.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from instructor import course, feedback

ROOT = Path(__file__).resolve().parents[1]


ASSIGNMENTS = course.assignments()
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _source(assignment: str) -> list[tuple[Path, nbformat.NotebookNode]]:
    return [(md, course.notebook_from_markdown(md))
            for md in sorted((course.SOLUTIONS / assignment).glob("*.md"))]


def _solution_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if SOLUTION_MARKERS[0] in line:
            inside = True
        elif SOLUTION_MARKERS[1] in line:
            inside = False
        elif inside and len(line.strip()) > 12:
            lines.append(line.strip())
    return lines


def test_there_are_assignments():
    assert "01-activations" in ASSIGNMENTS and "02-initializers" in ASSIGNMENTS


def test_regenerating_gives_the_committed_exercises(tmp_path):
    written = course.build_exercises(tmp_path / "course", dest=tmp_path / "exercises")
    fresh = {p.relative_to(tmp_path / "exercises") for p in written}
    committed = {p.relative_to(course.EXERCISES) for p in course.EXERCISES.rglob("*")
                 if p.is_file()}
    assert fresh == committed, "run `make exercises` and commit exercises/"
    for rel in sorted(fresh):
        new = (tmp_path / "exercises" / rel).read_bytes()
        old = (course.EXERCISES / rel).read_bytes()
        if rel.suffix == ".ipynb":
            # nbformat writes keys sorted and indented, so equal JSON means equal text; compare
            # the parsed form first for a readable failure
            assert json.loads(new) == json.loads(old), f"{rel} is stale: run `make exercises`"
        assert new == old, f"{rel} is stale: run `make exercises`"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_hold_no_solution_and_no_hidden_test(assignment):
    released = sorted((course.EXERCISES / assignment).glob("*.ipynb"))
    assert released, f"no exercise notebook for {assignment}"
    text = "\n".join(p.read_text() for p in released)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    code = "\n".join(c.source for p in released for c in nbformat.read(str(p), 4).cells
                     if c.cell_type == "code")
    for md, nb in _source(assignment):
        outside = "\n".join(  # lines a solution shares with the visible text are not secrets
            c.source for c in nb.cells if "### BEGIN" not in c.source)
        for cell in nb.cells:
            for line in feedback.hidden_lines(cell.source):
                assert line not in code, f"{md.name}: hidden test line reached exercises/: {line}"
            for line in _solution_lines(cell.source):
                if line not in outside:
                    assert line not in code, f"{md.name}: solution line reached exercises/: {line}"
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.outputs:
                raise AssertionError(f"{md.name}: a source cell has stored outputs")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_function_has_a_hidden_test(assignment):
    for md, nb in _source(assignment):
        # a graded markdown cell is a written answer, graded by hand: no test, no hidden block
        tests = [c for c in nb.cells
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
        assert tests, f"{md.name} has no test cell"
        hidden = "\n".join("\n".join(feedback.hidden_lines(c.source)) for c in tests)
        graded = "\n".join(c.source for c in tests)
        for cell in tests:
            md_ = cell.metadata["nbgrader"]
            assert md_.get("locked") and not md_.get("solution") and md_["points"] > 0, md_
            assert feedback.hidden_lines(cell.source), f"{md_['grade_id']} has no hidden test"
        for cell in nb.cells:
            if not cell.metadata.get("nbgrader", {}).get("solution"):
                continue
            for name in re.findall(r"^def\s+(\w+)", cell.source, re.MULTILINE):
                assert re.search(rf"\b{name}\b", graded), f"{name} is never graded"
        assert "nnbolts.grading" in hidden or "grading." in hidden


def _run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    import nbclient

    client = nbclient.NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    return nb


def _failures(cell) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" if o.output_type == "error" else o.text
            for o in cell.get("outputs", [])
            if o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_pass_their_visible_and_hidden_tests(assignment):
    from nbgrader.utils import determine_grade

    for md, nb in _source(assignment):
        _run(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not _failures(cell), f"{md.name}: {cell.id}: {_failures(cell)}"
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                score, max_score = determine_grade(cell)
                assert score == max_score > 0, f"{md.name}: {cell.id} scores {score}/{max_score}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_runs_to_the_end_and_scores_zero(assignment):
    from nbgrader.utils import determine_grade

    for path in sorted((course.EXERCISES / assignment).glob("*.ipynb")):
        nb = _run(nbformat.read(str(path), as_version=4))
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[-1].execution_count is not None, "the kernel did not reach the last cell"
        assert not _failures(code[0]), f"the setup cell fails: {_failures(code[0])}"
        tests = [c for c in code if c.metadata.get("nbgrader", {}).get("grade")]
        assert tests
        for cell in tests:
            score, _ = determine_grade(cell)
            assert score == 0, f"{path.name}: blank {cell.id} scores {score}"
