"""The pre-submission check students run themselves (tools/presubmit.py, shipped in the student
edition as presubmit.py with its presubmit.json).

A good notebook passes; a renamed or misplaced one, one with a deleted or stripped test cell, one
with an edited read-only cell and one too large each fail with a message that says what to do.
The limits it prints and checks are the grader's (instructor/limits.py as nbgrader_config.py sets
them for the course), copied by the edition's build, and the checker needs only the standard
library.
"""

from __future__ import annotations

import ast
import copy
import json
import sys
from pathlib import Path

import pytest

from instructor import course, intake
from instructor import limits as defaults
from tools import presubmit, student_edition

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT, NAME = "01-activations", "activations"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{NAME}.ipynb"


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("presubmit") / presubmit.CONFIG_NAME
    config = presubmit.build_config(ROOT / "exercises", student_edition.presubmit_limits())
    path.write_text(json.dumps(config))
    return path


def _release() -> dict:
    return json.loads(RELEASE.read_text())


def _cell(nb: dict, grade_id: str) -> dict:
    return next(c for c in nb["cells"]
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def _answered() -> dict:
    nb = _release()
    _cell(nb, "sigmoid")["source"] = "def sigmoid(z):\n    return 1 / (1 + torch.exp(-z))\n"
    return nb


def _write(folder: Path, nb: dict, name: str = f"{NAME}.ipynb",
           assignment: str = ASSIGNMENT) -> Path:
    path = folder / assignment / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def _run(config_path: Path, capsys, *paths: Path) -> tuple[int, str]:
    code = presubmit.main([str(p) for p in paths] + ["--config", str(config_path)])
    return code, capsys.readouterr().out


def test_a_good_notebook_passes(config_path, tmp_path, capsys):
    code, out = _run(config_path, capsys, _write(tmp_path, _answered()))
    assert code == 0, out
    assert ": OK" in out and "no problem found" in out
    assert "not answered yet: sigmoid_grad" in out  # a note, not a problem
    assert "What decides your score" in out and "60 s" in out


def test_every_released_notebook_passes_as_released(config_path, capsys):
    code, out = _run(config_path, capsys, ROOT / "exercises")
    assert code == 0, out
    assert out.count(": OK") == len(list((ROOT / "exercises").glob("*/*.ipynb")))


@pytest.mark.parametrize("where", ["renamed", "misplaced", "flat"])
def test_a_renamed_or_misplaced_notebook_fails_with_the_expected_path(config_path, tmp_path,
                                                                       capsys, where):
    path = {"renamed": lambda: _write(tmp_path, _answered(), f"{NAME} (1).ipynb"),
            "misplaced": lambda: _write(tmp_path, _answered(), assignment="my-work"),
            "flat": lambda: _write(tmp_path, _answered(), assignment="")}[where]()
    code, out = _run(config_path, capsys, path)
    assert code == 1, out
    assert f"the grader looks only for {ASSIGNMENT}/{NAME}.ipynb" in out
    assert f"Rename or move it to {ASSIGNMENT}/{NAME}.ipynb" in out


def test_a_deleted_test_cell_fails(config_path, tmp_path, capsys):
    nb = _answered()
    nb["cells"].remove(_cell(nb, "test_sigmoid"))
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 1
    assert "test cell 'test_sigmoid' was deleted: it scores 0 (2 points)" in out


def test_a_deleted_answer_cell_fails(config_path, tmp_path, capsys):
    nb = _answered()
    nb["cells"].remove(_cell(nb, "sigmoid"))
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 1 and "answer cell 'sigmoid' was deleted" in out


def test_a_test_cell_without_its_metadata_fails(config_path, tmp_path, capsys):
    nb = _answered()
    _cell(nb, "test_sigmoid")["metadata"] = {}
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 1 and "test cell 'test_sigmoid' lost its nbgrader metadata" in out


def test_an_edited_read_only_cell_fails(config_path, tmp_path, capsys):
    nb = _answered()
    _cell(nb, "setup")["source"] = "import math\nimport torch\nimport numpy as np\n"
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 1 and "read-only cell 'setup' was edited" in out


def test_an_edited_test_cell_fails_but_whitespace_does_not_count(config_path, tmp_path, capsys):
    nb = _answered()
    cell = _cell(nb, "test_sigmoid")
    source = "".join(cell["source"])
    cell["source"] = "\n" + source.replace("\n", "   \n") + "\n\n"  # trailing spaces only
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 0, out
    cell["source"] = source.replace("atol=1e-6", "atol=1e-1")
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 1 and "test cell 'test_sigmoid' was edited: it scores 0 (2 points)" in out


def test_a_duplicated_test_cell_fails(config_path, tmp_path, capsys):
    nb = _answered()
    nb["cells"].append(copy.deepcopy(_cell(nb, "test_sigmoid")))
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 1 and "2 cells claim to be test cell 'test_sigmoid'" in out


def test_a_notebook_too_large_fails(config_path, tmp_path, capsys):
    limit_mb = json.loads(config_path.read_text())["limits"]["max_file_mb"]
    nb = _answered()
    _cell(nb, "sigmoid")["outputs"] = [{"output_type": "stream", "name": "stdout",
                                        "text": "x" * int((limit_mb + 1) * 2**20)}]
    code, out = _run(config_path, capsys, _write(tmp_path, nb))
    assert code == 1
    assert f"the grader does not collect a file larger than {limit_mb:g} MB" in out
    assert "Clear Outputs of All Cells" in out


def test_an_unreadable_notebook_fails(config_path, tmp_path, capsys):
    path = tmp_path / ASSIGNMENT / f"{NAME}.ipynb"
    path.parent.mkdir()
    path.write_text('{"cells": [')
    code, out = _run(config_path, capsys, path)
    assert code == 1 and "not a readable notebook" in out


def test_a_folder_is_checked_notebook_by_notebook(config_path, tmp_path, capsys):
    _write(tmp_path, _answered())
    broken = _answered()
    broken["cells"].remove(_cell(broken, "test_sigmoid"))
    _write(tmp_path, broken, f"{NAME}-copy.ipynb")
    code, out = _run(config_path, capsys, tmp_path)
    assert code == 1
    assert out.count(": OK") == 1 and out.count(": PROBLEM") == 1


def test_a_notebook_of_an_earlier_release_is_checked_against_it(config_path, tmp_path, capsys):
    """A notebook that carries an earlier release's id is checked against that release's
    record: the cells added since are not asked for."""
    config = json.loads(config_path.read_text())
    entry = config["assignments"][ASSIGNMENT]
    earlier = [c for c in entry["notebooks"][NAME] if c["grade_id"] != "test_tanh_grad"]
    entry["releases"] = {"1": {NAME: earlier}}
    entry["current"] = "2"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    nb = _answered()
    nb["cells"].remove(_cell(nb, "test_tanh_grad"))
    nb["metadata"]["course_release"] = {"assignment": ASSIGNMENT, "release": 1}
    code, out = _run(path, capsys, _write(tmp_path, nb))
    assert code == 0, out
    assert "made from release 1" in out
    nb["metadata"]["course_release"]["release"] = 2  # the current release has the cell
    code, out = _run(path, capsys, _write(tmp_path, nb))
    assert code == 1 and "'test_tanh_grad' was deleted" in out


def test_the_limits_are_the_graders():
    limits = student_edition.presubmit_limits()
    config = course.load_config()
    pipe = config.GradingPipeline
    assert limits["max_file_mb"] * 2**20 == intake.limits(config).max_file_bytes
    assert limits["cell_timeout_s"] == config.ExecutePreprocessor.timeout
    assert limits["submission_timeout_s"] == pipe.get("submission_timeout",
                                                      defaults.SUBMISSION_TIMEOUT_S)
    assert limits["memory_mb"] == pipe.get("memory_limit_mb", defaults.MEMORY_LIMIT_MB)
    assert limits["output_chars_per_notebook"] == pipe.get(
        "output_chars_per_notebook", defaults.OUTPUT_CHARS_PER_NOTEBOOK)
    assert limits["output_chars_per_cell"] == pipe.get("output_chars_per_cell",
                                                        defaults.OUTPUT_CHARS_PER_CELL)


def test_the_edition_ships_the_checker_with_the_graders_limits(tmp_path):
    out = student_edition.build(tmp_path / "student", book=False)
    shipped = json.loads((out / presubmit.CONFIG_NAME).read_text())
    assert shipped["limits"] == student_edition.presubmit_limits()
    assert (out / "presubmit.py").read_bytes() == (ROOT / "tools" / "presubmit.py").read_bytes()
    assert sorted(shipped["assignments"]) == sorted(
        p.name for p in (ROOT / "exercises").iterdir() if any(p.glob("*.ipynb")))
    assert "presubmit.py" in (out / "README.md").read_text()
    # no source of any cell in it: only ids, kinds, points and hashes
    text = (out / presubmit.CONFIG_NAME).read_text()
    assert "torch" not in text and "def " not in text


def test_the_checker_needs_only_the_standard_library():
    tree = ast.parse((ROOT / "tools" / "presubmit.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
