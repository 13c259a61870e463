"""The trusted checks are stable across seeds: every solution passes, and every demo student
scores the same, under 20 different run seeds.

Each run of the grader draws a fresh seed for its cases (``--seed`` replays one), so a verdict
must not depend on it: a correct notebook must not fail a rare case by rounding, and a wrong one
must not slip through one. The notebooks' cells run in this process and the hidden tests are
judged through ``grading.trusted.LocalChannel``: the same trusted code and wire format as in a
real grading run, without a kernel's start-up (tests/test_pipeline.py grades the demo students
end to end, at a fresh seed each time).
"""

from __future__ import annotations

import builtins
import contextlib
import io

import nbformat
import pytest
import torch

from instructor import course, trusted

SEEDS = range(1, 21)
DEMO = course.REPO / "instructor" / "demo_submissions"
# partial and honest-but-unusual students (the demo's "correct" student is the solution, checked
# above; cheaters and crashes are end-to-end cases, tests/test_pipeline.py and test_attacks.py)
STUDENTS = ("partial", "honest_adam", "honest_schedules", "honest_training")


def _tests(nb) -> dict[str, str]:
    found = {}
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and md.get("grade") and not md.get("solution"):
            found[md["grade_id"]] = cell.source
    return found


def _namespace(nb) -> dict:
    """The notebook's globals after its code cells, test cells excepted, ran in order."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    torch.manual_seed(0)
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or (md.get("grade") and not md.get("solution")):
            continue
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            exec(compile(cell.source, f"<{md.get('grade_id', 'cell')}>", "exec"), namespace)
    return namespace


def _verdicts(nb, sources: dict[str, str], seeds) -> dict[int, dict[str, bool]]:
    namespace = _namespace(nb)
    prepared = {gid: trusted.prepare(trusted.hidden_block(src) or "") for gid, src in
                sources.items()}
    out = {}
    for seed in seeds:
        out[seed] = {}
        for gid, block in prepared.items():
            verdict = trusted.judge(block, trusted.LocalChannel(namespace), seed=seed)
            out[seed][gid] = verdict.passed
    return out


@pytest.mark.parametrize("assignment", course.assignments())
def test_the_solution_passes_every_test_under_20_seeds(assignment):
    for md in sorted((course.SOLUTIONS / assignment).glob("*.md")):
        nb = course.notebook_from_markdown(md)
        verdicts = _verdicts(nb, _tests(nb), SEEDS)
        failed = [(seed, gid) for seed, row in verdicts.items() for gid, ok in row.items()
                  if not ok]
        assert not failed, failed


def _demo_notebooks():
    for student in STUDENTS:
        for path in sorted((DEMO / student).glob("*/*.ipynb")):
            yield pytest.param(student, path, id=f"{student}-{path.parent.name}")


@pytest.mark.parametrize("student, path", list(_demo_notebooks()))
def test_a_demo_student_scores_the_same_under_20_seeds(student, path):
    submitted = nbformat.read(str(path), 4)
    source = course.notebook_from_markdown(
        next((course.SOLUTIONS / path.parent.name).glob("*.md")))
    # the test cells as the grader restores them: the instructor's, hidden tests included
    verdicts = _verdicts(submitted, _tests(source), SEEDS)
    first = verdicts[SEEDS[0]]
    differs = {seed: {g for g in row if row[g] != first[g]} for seed, row in verdicts.items()}
    assert not any(differs.values()), {s: d for s, d in differs.items() if d}
    if student != "partial":
        assert all(first.values()), [g for g, ok in first.items() if not ok]
