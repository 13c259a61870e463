"""Attacks on the grader by a student who has read this repository, end to end.

One ``python -m instructor.pipeline grade`` run grades, side by side, honest demo students and one
submission per class of attack (issue 10's list, and what the trusted design invites). Each
attack is an extra cell in a demo notebook of assignment 01 whose score without the attack is
known (tests/demo_expected_scores.csv: blank 0, partial 13). What must hold:

* no attack scores more than the same notebook without it;
* the pipeline finishes and every other student's grade is what it is without attackers;
* the flags are the trusted side's: text a submission prints ("CHEATING SUSPECTED: ...",
  a fake report line) never becomes a flag, of its own or of anyone else;
* neither hidden-test source nor a quiz key reaches any output, whatever the kernel prints.

The in-process attacks on the verdict itself (lookup tables against fresh seeds, values that
lie about their type, malformed replies) are in tests/test_trusted.py; those on the intake
(symlinks, FIFOs, bad JSON) in tests/test_intake.py; on limits in tests/test_limits.py.
"""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "instructor" / "demo_submissions"
A1 = "01-activations"

# attack -> (demo student whose notebook it changes, its code). The code goes in a cell of its
# own right after the setup cell, or, where it defines a graded function, at the end of that
# function's solution cell (SOLUTION_CELL), so that it replaces the student's own version.
SOLUTION_CELL = {"reference": "sigmoid", "snoop_memory": "sigmoid",
                 "exit_on_observation": "relu"}
ATTACKS = {
    # turn every later cell that looks like a test into `pass` (IPython input transformer)
    "input_transformer": ("blank", '''
def _blind(lines):
    text = "".join(lines)
    return ["pass\\n"] if ("assert" in text or "grading" in text) else lines
get_ipython().input_transformers_post.append(_blind)
'''),
    # the same with an AST transformer
    "ast_transformer": ("blank", '''
import ast
class _Blind(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(_Blind())
'''),
    # replace the shell's run_code: exceptions swallowed, success reported
    "run_code": ("blank", '''
_ip = get_ipython()
_original = _ip.run_code
async def _run_code(code_obj, result=None, *, async_=False):
    try:
        return await _original(code_obj, result, async_=async_)
    except BaseException:
        return False
_ip.run_code = _run_code
'''),
    # replace the kernel's do_execute: every request "succeeds" without running anything
    "do_execute": ("blank", '''
_kernel = get_ipython().kernel
async def _do_execute(code, silent, store_history=True, user_expressions=None,
                      allow_stdin=False, *, cell_meta=None, cell_id=None):
    return {"status": "ok", "execution_count": 1, "user_expressions": {
        key: {"status": "ok", "data": {"text/plain": repr('{"ok": true}')}, "metadata": {}}
        for key in (user_expressions or {})}, "payload": []}
_kernel.do_execute = _do_execute
'''),
    # a custom exception handler that hides failures and prints fake flags about others
    "custom_exc": ("partial", '''
def _hide(shell, etype, value, tb, tb_offset=None):
    print("CHEATING SUSPECTED: student correct copied this notebook")
    return None
get_ipython().set_custom_exc((BaseException,), _hide)
print("Flagged submissions: 0\\n  correct/01-activations/activations\\n      - CHEATING SUSPECTED")
'''),
    # switch nnbolts.grading off: a fake package in sys.modules and an import hook
    "fake_grading": ("partial", '''
import builtins, sys, types
_fake = types.ModuleType("nnbolts.grading")
_fake.__getattr__ = lambda name: (lambda *a, **k: None)
sys.modules["nnbolts"] = types.ModuleType("nnbolts")
sys.modules["nnbolts"].grading = _fake
sys.modules["nnbolts.grading"] = _fake
_real_import = builtins.__import__
def _import(name, *args, **kwargs):
    if name.startswith("nnbolts"):
        return sys.modules["nnbolts"]
    return _real_import(name, *args, **kwargs)
builtins.__import__ = _import
'''),
    # use the reference: import it (the kernel cannot read the library) and use it unseen
    "reference": ("partial", '''
try:
    from nnbolts.activations import sigmoid as _reference
    sigmoid = _reference
except Exception as exc:
    print("no reference:", type(exc).__name__)
'''),
    # forge the grader's replies: replace the harness's dispatch whenever it is installed
    "forged_replies": ("blank", '''
import sys, json
class _Forge(dict):
    def __setitem__(self, key, module):
        if key == "_grading_observe":
            module.dispatch = lambda text: json.dumps({"ok": 0.25})
        dict.__setitem__(self, key, module)
sys.modules = _Forge(sys.modules)
'''),
    # look for the hidden tests and the quiz keys in the kernel's memory and print them
    "snoop_memory": ("partial", '''
import gc, sys, base64
def sigmoid(z):
    found = []
    frame = sys._getframe(1)
    while frame is not None:
        found.append(repr(frame.f_locals)[:2000])
        frame = frame.f_back
    found += [repr(o)[:200] for o in gc.get_objects() if isinstance(o, dict) and "answer" in o][:20]
    print(base64.b64encode("\\n".join(found).encode()).decode())
    print("\\n".join(found)[::-1])
    return 1 / (1 + (-z).exp())
'''),
    # kill the kernel when the grader observes a function
    "exit_on_observation": ("partial", '''
import os
def relu(z):
    os._exit(0)
'''),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    subs = base / "subs"
    for student in ("correct", "partial"):
        dest = subs / student / A1
        dest.mkdir(parents=True)
        (dest / "activations.ipynb").write_bytes(
            (DEMO / student / A1 / "activations.ipynb").read_bytes())
    for name, (base_student, code) in ATTACKS.items():
        nb = nbformat.read(str(DEMO / base_student / A1 / "activations.ipynb"), 4)
        nb = copy.deepcopy(nb)
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
        if name in SOLUTION_CELL:
            cell = nb.cells[ids.index(SOLUTION_CELL[name])]
            cell.source = cell.source.rstrip() + "\n\n\n" + code.strip() + "\n"
        else:
            nb.cells.insert(ids.index("setup") + 1, nbformat.v4.new_code_cell(code.strip()))
        dest = subs / f"attack_{name}" / A1
        dest.mkdir(parents=True)
        nbformat.write(nb, str(dest / "activations.ipynb"))
    proc = subprocess.run(
        [sys.executable, "-m", "instructor.pipeline", "grade", "--submissions", str(subs),
         "--jobs", "2", "--course-dir", str(base / "course"), "--grades-csv",
         str(base / "grades.csv"), "--cell-timeout", "10", "--submission-timeout", "60",
         "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((base / "course" / ".pipeline" / "report.json").read_text())
    return {"base": base, "report": report, "stdout": proc.stdout}


def _expected(student: str) -> float:
    with open(ROOT / "tests" / "demo_expected_scores.csv", newline="") as fh:
        for row in csv.reader(line for line in fh if not line.startswith("#")):
            if row[:2] == [student, A1]:
                return float(row[2])
    raise KeyError(student)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_no_attack_scores_more_than_its_notebook_without_it(graded, attack):
    score, _ = graded["report"]["scores"][f"attack_{attack}"][A1]
    assert score <= _expected(ATTACKS[attack][0]), (attack, score)


def test_the_honest_students_grades_are_unchanged_beside_the_attackers(graded):
    for student in ("correct", "partial"):
        assert graded["report"]["scores"][student][A1][0] == _expected(student)
        job = next(j for j in graded["report"]["submissions"] if j["student"] == student)
        assert job["flags"] == [], job["flags"]


def test_printed_text_never_becomes_a_flag(graded):
    for job in graded["report"]["submissions"]:
        for flag in job["flags"]:
            assert "copied this notebook" not in flag and "CHEATING SUSPECTED" not in flag, flag
    # the fake report lines stay inside the attacker's notebook output
    assert "student correct copied" not in graded["stdout"]


def test_no_hidden_test_or_quiz_key_reaches_any_output(graded):
    hidden = ["check_elementwise", "BEGIN HIDDEN", "not the right choice", "reference.sigmoid"]
    reversed_hidden = [h[::-1] for h in hidden]
    for path in (graded["base"] / "course" / "autograded").rglob("*.ipynb"):
        nb = nbformat.read(str(path), 4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade"):
                continue  # the instructor's copy of a test cell holds its source, as it should
            for out in cell.get("outputs", []):
                text = json.dumps(out)
                for needle in hidden + reversed_hidden:
                    assert needle not in text, (path, needle)
                import base64
                for word in text.split('"'):
                    try:
                        decoded = base64.b64decode(word, validate=True).decode("utf-8", "ignore")
                    except Exception:
                        continue
                    for needle in hidden:
                        assert needle not in decoded, (path, needle)


def test_a_killed_or_blinded_kernel_costs_only_its_own_notebook(graded):
    report = graded["report"]
    assert report["scores"]["attack_exit_on_observation"][A1][0] < _expected("partial")
    job = next(j for j in report["submissions"] if j["student"] == "attack_do_execute")
    assert any("no valid observation" in f for f in job["flags"]), job["flags"]
