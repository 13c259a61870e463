"""The trusted checks of the exercise notebooks catch every mutant of the catalogue.

``tests/exercise_mutants.py`` lists wrong implementations of every graded function; this file
runs each assignment's source notebook with one of them and checks that the notebook loses
points, and that the failing cell's message carries the mutant's hint.

What decides a test cell here is what decides it when ``make grade`` runs: the cell's hidden
block, judged on the trusted side by ``grading.trusted.judge`` (fresh cases from ``SEED``; every
student function it calls is a proxy, every call an observation), and the exercise's torch-use
policy (``instructor/policy.py``) read from the student's cells. The student's side is not a
Jupyter kernel (a kernel costs seconds per notebook) but ``trusted.LocalChannel``: the same wire
format and dispatcher, answering from a dict that stands for the notebook's globals. The code
cells run in order with ``exec`` in a fresh namespace, as a kernel would run them, test cells
included, without their hidden block (the visible asserts, for the student's own runs); then the
trusted side judges the cell. Each run starts from a fresh namespace rather than a copy of a
shared one: the solution cells call one another (``silu`` calls ``sigmoid``, ``adamw_step``
calls ``adam_step``), and a function's ``__globals__`` would still point at the original
namespace in a copy, hiding the mutant from its callers; executing the solution cells again
costs milliseconds.

The visible asserts decide nothing on the trusted path, but they are recorded too: a last test
requires that every mutant the visible asserts kill, the trusted checks kill.

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
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from exercise_mutants import CONTROLS, MUTANTS, Mutant

from instructor import course, policy, trusted

ROOT = Path(__file__).resolve().parents[1]



ASSIGNMENTS = course.assignments()
SEED = 0
"""The run seed the trusted side draws the cases from (``make grade`` draws a fresh one)."""


@dataclass(frozen=True)
class Cell:
    """One code cell of a source notebook, compiled once."""

    grade_id: str
    code: object  # a code object: what the kernel runs (a test cell without its hidden block)
    points: float  # > 0 for a graded test cell
    defines: tuple[str, ...]  # the functions a solution cell defines
    names: frozenset[str]  # every global name the cell's code (nested functions included) reads
    source: str  # the cell's source as the student sees it (a solution cell: what they edit)
    solution: bool  # a cell the student writes
    hidden: object = None  # a test cell's hidden block, trusted.prepare()-d
    hidden_source: str = ""  # and its source


@dataclass
class Outcome:
    """A test cell's result on the trusted side (the points it scored of its maximum, and why
    it failed) and what its visible asserts said in the notebook."""

    grade_id: str
    score: float
    max_score: float
    error: str | None  # the trusted verdict's "ename: message", or the policy's reason
    visible_error: str | None = None  # what the cell's visible part raised in the notebook
    flag: str | None = None  # a flag the trusted side raised (a broken protocol)


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
            source, hidden, hidden_source = cell.source, None, ""
            found = trusted.HIDDEN.search(source)
            if found is not None:
                hidden_source = found.group(1)
                hidden = trusted.prepare(hidden_source)
                assert not isinstance(hidden, trusted.Verdict), (cell.id, hidden.message)
                source = source[:found.start()] + source[found.end():]
            assert not points or hidden is not None, f"{cell.id}: a test cell without hidden tests"
            code = _compile(source, f"<{assignment}:{cell.id}>")
            names = _names(_compile(cell.source, f"<{assignment}:{cell.id}:instructor>"))
            cells.append(Cell(cell.id, code, points, defines, names, source,
                              bool(meta.get("solution")), hidden, hidden_source))
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


def _policy(assignment: str, mutant: Mutant | None) -> dict[str, str]:
    """The test cells the torch-use policy zeroes (grade_id -> reason), read as the pipeline
    reads it: from every cell the student could edit, the mutant written into its cell."""
    cells = notebook_cells(assignment)
    sources = [c.source + (f"\n\n{mutant.code}" if mutant is not None
                           and mutant.function in c.defines else "")
               for c in cells if c.solution]
    tests = {c.grade_id: c.hidden_source for c in cells if c.points}
    return policy.check(assignment, sources, tests).zero


@functools.cache
def run_notebook(assignment: str, mutant: Mutant | None = None) -> tuple[Outcome, ...]:
    """Execute the notebook and return the outcome of every graded test cell that ran (and of any
    other cell that raised). With a mutant, ``mutant.code`` runs right after the solution cell
    that defines ``mutant.function``, and only the test cells it can reach run."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    channel = trusted.LocalChannel(namespace)
    torch.manual_seed(0)  # a kernel starts from a random seed; a fixed one keeps runs repeatable
    reached = reached_by(assignment, mutant.function) if mutant is not None else None
    zeroed = _policy(assignment, mutant)
    outcomes = []
    for cell in notebook_cells(assignment):
        if reached is not None and cell.points and not cell.names & reached:
            continue  # a test cell the mutant cannot reach: it passes as in the solution
        error = None
        try:
            exec(cell.code, namespace)
        except (Exception, SystemExit) as raised:  # what the notebook shows as an error output
            error = f"{type(raised).__name__}: {raised}"
        if cell.points:
            verdict = trusted.judge(cell.hidden, channel, seed=SEED)
            decided = None if verdict.passed else f"{verdict.ename}: {verdict.message}"
            if decided is None and cell.grade_id in zeroed:
                decided = f"policy: {zeroed[cell.grade_id]}"
            outcomes.append(Outcome(cell.grade_id, 0.0 if decided else cell.points, cell.points,
                                    decided, error, verdict.flag))
        elif error is not None:
            # a setup or solution cell that fails would fail every cell after it: report it
            outcomes.append(Outcome(cell.grade_id, 0.0, 0.0, error))
        if mutant is not None and mutant.function in cell.defines:
            exec(_compile(mutant.code, f"<mutant {mutant.id}>"), namespace)
    return tuple(outcomes)


def _failures(outcomes) -> list[str]:
    return [f"{o.grade_id}: {o.error}" for o in outcomes if o.error is not None] + [
        f"{o.grade_id} (visible asserts): {o.visible_error}" for o in outcomes
        if o.visible_error is not None]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_scores_full_marks_in_this_runner(assignment):
    outcomes = run_notebook(assignment)
    assert outcomes, f"{assignment}: no graded test cell ran"
    failed = _failures(outcomes)
    assert not failed, "\n".join(failed)
    assert sum(o.score for o in outcomes) == sum(o.max_score for o in outcomes) > 0


@pytest.mark.parametrize("control", CONTROLS, ids=[c.id for c in CONTROLS])
def test_the_templates_of_the_catalogue_are_right(control):
    outcomes = run_notebook(control.assignment, control)
    assert outcomes, f"{control.id}: no test cell ran"
    failed = _failures(outcomes)
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


# Mutants the trusted side does not yet treat as the visible asserts do: why, and which tests
# of this file they fail ("catch", "visible"). Those tests are expected to fail, strictly: an
# entry whose test starts passing must be removed.
KNOWN_GAPS: dict = {}  # mutant id -> (why the trusted checks miss it, which tests xfail)


def _catalogue(test: str) -> list:
    params = []
    for m in MUTANTS:
        reason, tests = KNOWN_GAPS.get(m.id, ("", ()))
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if test in tests else []
        params.append(pytest.param(m, id=m.id, marks=marks))
    return params


@pytest.mark.parametrize("mutant", _catalogue("catch"))
def test_the_trusted_checks_catch_the_mutant(mutant):
    """On the trusted side the mutant loses points, no cell is flagged (an honest mistake is no
    broken protocol), and some failing cell says the mutant's hint: in its trusted verdict, or
    in what its visible asserts raise when the student runs the notebook."""
    outcomes = run_notebook(mutant.assignment, mutant)
    setup_errors = [f"{o.grade_id}: {o.error}" for o in outcomes if o.max_score == 0]
    assert not setup_errors, f"a non-graded cell failed: {setup_errors}"
    failed = [o for o in outcomes if o.error is not None]
    broken = [f"{o.grade_id}: {o.error}" for o in failed if o.error.startswith("NameError")]
    assert not broken, f"a NameError is no verdict on the mutant: {broken}"
    lost = sum(o.max_score - o.score for o in outcomes)
    assert failed and lost > 0, f"{mutant.id} survives: every test cell passes"
    messages = "\n\n".join(f"[{o.grade_id}] {o.error}\n  (visible asserts: {o.visible_error})"
                            for o in failed)
    flagged = [f"{o.grade_id}: {o.flag}" for o in outcomes if o.flag]
    assert not flagged, f"an honest mistake is flagged:\n{flagged}"
    if mutant.hint is not None:
        assert any(mutant.hint in o.error or mutant.hint in (o.visible_error or "")
                   for o in failed), f"no failing cell says {mutant.hint!r}:\n{messages}"


@pytest.mark.parametrize("mutant", _catalogue("visible"))
def test_the_trusted_checks_kill_every_mutant_the_visible_checks_kill(mutant):
    """The visible asserts of a test cell (its non-hidden part, run in the notebook) are for
    the student's own runs; the trusted side decides. Every mutant the visible asserts kill
    (some test cell's visible part raises), the trusted checks must kill too."""
    outcomes = run_notebook(mutant.assignment, mutant)
    visible = [f"{o.grade_id}: {o.visible_error}" for o in outcomes
               if o.visible_error is not None and not o.visible_error.startswith("NameError")]
    if visible:
        assert any(o.error is not None for o in outcomes), (
            f"{mutant.id}: the visible asserts kill it, the trusted checks do not:\n"
            + "\n".join(visible))


def test_the_visible_checks_kill_most_mutants():
    """The comparison above is not vacuous: most of the catalogue is caught by the visible
    asserts too (they are the student's first feedback)."""
    killed = [m.id for m in MUTANTS if any(
        o.visible_error is not None for o in run_notebook(m.assignment, m))]
    assert len(killed) >= len(MUTANTS) // 2, f"only {len(killed)} of {len(MUTANTS)}"
