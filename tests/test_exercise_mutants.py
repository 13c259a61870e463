"""The exercise notebooks' own test cells (visible and hidden) catch every mutant of the catalogue.

``tests/exercise_mutants.py`` lists wrong implementations of every graded function; this file
runs each assignment's source notebook with one of them and checks that the notebook loses
points, and that the failing cell's message carries the mutant's hint.

The notebooks are executed in this process, not in a Jupyter kernel (a kernel costs seconds per
notebook): the code cells run in order with ``exec`` in a fresh namespace, like a kernel would,
and a graded test cell scores its points iff it raises nothing, as nbgrader scores it. The
hidden tests call ``nnbolts.grading``, which works in-process (its timeouts use ``SIGALRM`` in
the main thread, where pytest and its xdist workers run tests). Each run starts from a fresh
namespace rather than a copy of a shared one: the solution cells call one another (``silu``
calls ``sigmoid``, ``adamw_step`` calls ``adam_step``), and a function's ``__globals__`` would
still point at the original namespace in a copy, hiding the mutant from its callers; executing
the solution cells again costs milliseconds.

With a mutant, only the test cells that can see it run: those naming the mutated function or a
solution function that calls it (directly or through others, as ``silu`` calls ``sigmoid``). A
skipped test cell would run exactly as in the unmodified notebook, which scores full marks (the
first test below checks it in this runner), so skipping it changes no score; it keeps the
schedule and training assignments, whose hidden tests take seconds each, within the time budget.
A failure by ``NameError`` is refused: it would mean that a skipped cell defined a name a later
cell needs, or that the mutant itself is broken, not that the notebook caught its mistake.
"""

from __future__ import annotations

import ast
import builtins
import functools
import linecache
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exercise_mutants import CONTROLS, MUTANTS, Mutant  # noqa: E402

from grading import course  # noqa: E402

ASSIGNMENTS = course.assignments()


@dataclass(frozen=True)
class Cell:
    """One code cell of a source notebook, compiled once."""

    grade_id: str
    code: object  # a code object
    points: float  # > 0 for a graded test cell
    defines: tuple[str, ...]  # the functions a solution cell defines
    names: frozenset[str]  # every global name the cell's code (nested functions included) reads


@dataclass
class Outcome:
    """A test cell's result: the points it scored of its maximum, and the error it raised."""

    grade_id: str
    score: float
    max_score: float
    error: str | None


def _names(code) -> frozenset[str]:
    """The names a code object and the functions, lambdas and classes nested in it look up."""
    found = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            found |= _names(const)
    return frozenset(found)


def _compile(source: str, filename: str):
    # register the source so that tracebacks and the grader's "line N: ..." show the code
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(source, filename, "exec")


@functools.cache
def notebook_cells(assignment: str) -> tuple[Cell, ...]:
    """The code cells of the assignment's source notebook(s), in order."""
    cells = []
    for md in sorted((course.SOLUTIONS / assignment).glob("*.md")):
        for cell in course.notebook_from_markdown(md).cells:
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("nbgrader", {})
            defines = ()
            if meta.get("solution"):
                defines = tuple(node.name for node in ast.parse(cell.source).body
                                if isinstance(node, ast.FunctionDef))
            points = float(meta.get("points", 0)) if meta.get("grade") else 0.0
            code = _compile(cell.source, f"<{assignment}:{cell.id}>")
            cells.append(Cell(cell.id, code, points, defines, _names(code)))
    return tuple(cells)


@functools.cache
def reached_by(assignment: str, function: str) -> frozenset[str]:
    """``function`` and every solution function that calls it, directly or through others."""
    calls = {const.co_name: _names(const) for cell in notebook_cells(assignment)
             for const in cell.code.co_consts if getattr(const, "co_name", None) in cell.defines}
    reached, grew = {function}, True
    while grew:
        callers = {name for name, names in calls.items() if names & reached}
        grew = not callers <= reached
        reached |= callers
    return frozenset(reached)


def graded_functions(assignment: str) -> dict[str, str]:
    """Every function defined in a solution cell, with the grade_id of its cell."""
    return {name: cell.grade_id for cell in notebook_cells(assignment) for name in cell.defines}


def run_notebook(assignment: str, mutant: Mutant | None = None) -> list[Outcome]:
    """Execute the notebook and return the outcome of every graded test cell that ran (and of any
    other cell that raised). With a mutant, ``mutant.code`` runs right after the solution cell
    that defines ``mutant.function``, and only the test cells it can reach run."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    torch.manual_seed(0)  # a kernel starts from a random seed; a fixed one keeps runs repeatable
    reached = reached_by(assignment, mutant.function) if mutant is not None else None
    outcomes = []
    for cell in notebook_cells(assignment):
        if reached is not None and cell.points and not cell.names & reached:
            continue  # a test cell the mutant cannot reach: it passes as in the solution
        error = None
        try:
            exec(cell.code, namespace)
        except (Exception, SystemExit) as raised:  # what nbgrader records as an error output
            error = f"{type(raised).__name__}: {raised}"
        if cell.points:
            outcomes.append(Outcome(cell.grade_id, 0.0 if error else cell.points, cell.points,
                                    error))
        elif error is not None:
            # a setup or solution cell that fails would fail every cell after it: report it
            outcomes.append(Outcome(cell.grade_id, 0.0, 0.0, error))
        if mutant is not None and mutant.function in cell.defines:
            exec(_compile(mutant.code, f"<mutant {mutant.id}>"), namespace)
    return outcomes


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_scores_full_marks_in_this_runner(assignment):
    outcomes = run_notebook(assignment)
    assert outcomes, f"{assignment}: no graded test cell ran"
    failed = [f"{o.grade_id}: {o.error}" for o in outcomes if o.error is not None]
    assert not failed, "\n".join(failed)
    assert sum(o.score for o in outcomes) == sum(o.max_score for o in outcomes) > 0


@pytest.mark.parametrize("control", CONTROLS, ids=[c.id for c in CONTROLS])
def test_the_templates_of_the_catalogue_are_right(control):
    outcomes = run_notebook(control.assignment, control)
    assert outcomes, f"{control.id}: no test cell ran"
    failed = [f"{o.grade_id}: {o.error}" for o in outcomes if o.error is not None]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_function_has_its_mutants(assignment):
    functions = graded_functions(assignment)
    assert functions, f"{assignment}: no solution cell defines a function"
    mine = [m for m in MUTANTS if m.assignment == assignment]
    for name, grade_id in functions.items():
        count = sum(m.function == name for m in mine)
        needed = 1 if grade_id.startswith("q_") else 3  # a question needs only wrong answers
        assert count >= needed, f"{assignment}: {name} has {count} mutants, needs {needed}"
    unknown = {m.function for m in mine} - set(functions)
    assert not unknown, f"{assignment}: mutants of functions no solution cell defines: {unknown}"


def test_mutant_ids_are_unique_and_each_mutant_redefines_its_function():
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    for m in [*MUTANTS, *CONTROLS]:
        defined = [node.name for node in ast.parse(m.code).body
                   if isinstance(node, ast.FunctionDef)]
        assert m.function in defined, f"{m.id}: the snippet does not define {m.function}"
        assert not re.search(r"\bnnbolts\b", m.code), f"{m.id}: a mutant must not use nnbolts"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_the_notebook_catches_the_mutant(mutant):
    outcomes = run_notebook(mutant.assignment, mutant)
    setup_errors = [f"{o.grade_id}: {o.error}" for o in outcomes if o.max_score == 0]
    assert not setup_errors, f"a non-graded cell failed: {setup_errors}"
    failed = [o for o in outcomes if o.error is not None]
    broken = [f"{o.grade_id}: {o.error}" for o in failed if o.error.startswith("NameError")]
    assert not broken, f"a NameError is no verdict on the mutant: {broken}"
    lost = sum(o.max_score - o.score for o in outcomes)
    assert failed and lost > 0, f"{mutant.id} survives: every test cell passes"
    messages = "\n\n".join(f"[{o.grade_id}] {o.error}" for o in failed)
    assert not any(o.error.startswith("CheatingSuspected") or "CHEATING SUSPECTED" in o.error
                   for o in failed), (
        f"an honest mistake is flagged as cheating:\n{messages}")
    if mutant.hint is not None:
        assert any(mutant.hint in o.error for o in failed), (
            f"no failing cell says {mutant.hint!r}:\n{messages}")
