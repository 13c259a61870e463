"""The bundled demo submissions (``grading/demo_submissions/``) and how they are made.

``make grade`` with no ``SUBMISSIONS=`` grades these; ``tests/test_pipeline.py`` checks what the
pipeline makes of each. They are built from the released notebooks and the instructor's
solutions, so ``python -m grading.demo`` (``make demo-submissions``) refreshes them after an
assignment changes; a test fails while they are out of date.

======================  =====  ==========================================================
student                 which  what the submission does
======================  =====  ==========================================================
correct                 both   every answer right
partial                 both   some answers right, some with a classic mistake
blank                   both   the release, untouched
cheat_allclose          01     wrong sigmoid, with torch.allclose / assert_close patched
cheat_reference         01     sigmoid calls nnbolts, sigmoid_grad wraps it
cheat_partial_credit    01     a wrong relu that displays "1" first: nbgrader's partial credit
cheat_deleted           01     deletes the softmax test cell
cheat_stripped          01     removes the nbgrader metadata of the sigmoid_grad test
cheat_swallow           01     installs an IPython handler that hides AssertionError
loop                    01     an infinite loop that ignores KeyboardInterrupt
crash                   01     kills its own kernel with os._exit halfway through
cheat_edited            02     replaces the xavier_uniform_ test with ``pass``
corrupt                 02     a truncated, unreadable notebook file
memory_hog              02     lecun_uniform_ allocates 64 GB first
snoop                   02     reads the instructor's files and the gradebook, signals the
                               grader; answers nothing itself
======================  =====  ==========================================================
"""

from __future__ import annotations

import copy
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat

from grading import course

DEMO = course.REPO / "grading" / "demo_submissions"
_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _solution_code(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in _MARKERS)


def _by_id(nb) -> dict:
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def _answered(release, source):
    """The release with every solution cell filled in from the instructor's source."""
    nb = copy.deepcopy(release)
    answers = _by_id(source)
    for gid, cell in _by_id(nb).items():
        if cell.metadata["nbgrader"].get("solution"):
            cell.source = _solution_code(answers[gid].source)
    return nb


def _replace(nb, grade_id: str, old: str, new: str) -> None:
    cell = _by_id(nb)[grade_id]
    if old not in cell.source:
        raise ValueError(f"demo: {old!r} is not in cell {grade_id!r}; update grading/demo.py")
    cell.source = cell.source.replace(old, new)


def _insert_after(nb, grade_id: str, code: str) -> None:
    index = nb.cells.index(_by_id(nb)[grade_id])
    cell = nbformat.v4.new_code_cell(code)
    cell["id"] = f"added-after-{grade_id}"  # new_code_cell draws a random id
    nb.cells.insert(index + 1, cell)


def _delete(nb, grade_id: str) -> None:
    nb.cells.remove(_by_id(nb)[grade_id])


# --------------------------------------------------------------------------------------------
# the students: each takes (release, source, correct) and returns a notebook, or bytes
# --------------------------------------------------------------------------------------------


def _partial_01(release, source, nb):
    _replace(nb, "sigmoid_grad", "return e / (1 + e) ** 2", "return 1 / (1 + e)")
    _replace(nb, "relu", "return (z > 0).to(z.dtype)", "return (z >= 0).to(z.dtype)")
    _replace(nb, "softmax", "e = torch.exp(z - torch.amax(z, dim=dim, keepdim=True))",
             "e = torch.exp(z)")
    _replace(nb, "q_saturated", 'return "A"', 'return "C"')
    return nb


def _partial_02(release, source, nb):
    _replace(nb, "fan_in_and_fan_out", "kernel = math.prod(tensor.shape[2:])", "kernel = 1")
    _replace(nb, "q_zero_init", 'return "A"', 'return "B"')
    return nb


def _cheat_allclose(release, source, nb):
    _replace(nb, "sigmoid", "e = torch.exp(-torch.abs(z))\n", "")
    _replace(nb, "sigmoid", "return torch.where(z >= 0, 1 / (1 + e), e / (1 + e))",
             "return z")
    _insert_after(nb, "setup", "torch.allclose = lambda *args, **kwargs: True\n"
                               "torch.testing.assert_close = lambda *args, **kwargs: None")
    return nb


def _cheat_reference(release, source, nb):
    cell = _by_id(nb)["sigmoid"]
    cell.source = ('def sigmoid(z):\n    import nnbolts.activations\n'
                   '    return nnbolts.activations.sigmoid(z)\n')
    _by_id(nb)["sigmoid_grad"].source = (
        "import importlib\n\n_lib = importlib.import_module('nnb' + 'olts.activations')\n\n"
        "def sigmoid_grad(z):\n    return _lib.sigmoid_grad(z * 1)\n")
    return nb


def _cheat_partial_credit(release, source, nb):
    _replace(nb, "relu", "return torch.where(z > 0, z, torch.zeros_like(z))",
             "get_ipython().displayhook(1)  # nbgrader reads a shown number as points\n"
             "    return z")
    return nb


def _cheat_deleted(release, source, nb):
    _delete(nb, "test_softmax")
    return nb


def _cheat_stripped(release, source, nb):
    cell = _by_id(nb)["test_sigmoid_grad"]
    cell.metadata = nbformat.NotebookNode()
    return nb


def _cheat_swallow(release, source, nb):
    _replace(nb, "tanh_grad", "return 4 * e / (1 + e) ** 2", "return e")
    _insert_after(nb, "setup", "get_ipython().set_custom_exc((AssertionError,), "
                               "lambda shell, etype, value, tb, tb_offset=None: None)")
    return nb


def _loop(release, source, nb):
    _insert_after(nb, "silu", "import time\n\nwhile True:  # ignores the interrupt, forever\n"
                              "    try:\n        time.sleep(0.1)\n"
                              "    except KeyboardInterrupt:\n        pass")
    return nb


def _crash(release, source, nb):
    _insert_after(nb, "leaky_relu_elu", "import os\n\nos._exit(3)")
    return nb


def _cheat_edited(release, source, nb):
    _by_id(nb)["test_xavier_uniform_"].source = "pass  # the test always passes now"
    _replace(nb, "xavier_uniform_", "bound = math.sqrt(3.0) * gain", "bound = gain")
    return nb


def _corrupt(release, source, nb):
    text = nbformat.writes(nb)
    return text[: len(text) // 2].encode()


def _memory_hog(release, source, nb):
    _replace(nb, "kaiming_lecun", "    fan_in, _ = fan_in_and_fan_out(tensor)\n",
             "    scratch = torch.ones(2**34)  # 64 GB\n"
             "    fan_in, _ = fan_in_and_fan_out(tensor)\n")
    return nb


_SNOOP = '''\
import os
import pathlib

# The kernel runs in <course>/.pipeline/scratch/<random>/: try the instructor's files around it,
# the other students' work and the gradebook, then the grader process itself.
for guess in ["../../../source", "../../../submitted", "../../../gradebook.db", "/root", "/home"]:
    path = pathlib.Path(guess)
    try:
        found = sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()[:16]
        print("read", guess, found)
    except OSError as exc:
        print("denied:", guess, exc)
try:
    with open("../../../gradebook.db", "ab") as db:
        db.write(b"all grades are 100")
except OSError as exc:
    print("denied: writing the gradebook:", exc)
try:
    os.kill(os.getppid(), 9)
except OSError as exc:
    print("denied: killing the grader:", exc)'''


def _snoop(release, source, nb):
    nb = copy.deepcopy(release)
    _insert_after(nb, "setup", _SNOOP)
    return nb


STUDENTS: dict[str, dict[str, Callable]] = {
    "correct": {"01-activations": lambda r, s, nb: nb, "02-initializers": lambda r, s, nb: nb},
    "partial": {"01-activations": _partial_01, "02-initializers": _partial_02},
    "blank": {"01-activations": lambda r, s, nb: copy.deepcopy(r),
              "02-initializers": lambda r, s, nb: copy.deepcopy(r)},
    "cheat_allclose": {"01-activations": _cheat_allclose},
    "cheat_reference": {"01-activations": _cheat_reference},
    "cheat_partial_credit": {"01-activations": _cheat_partial_credit},
    "cheat_deleted": {"01-activations": _cheat_deleted},
    "cheat_stripped": {"01-activations": _cheat_stripped},
    "cheat_swallow": {"01-activations": _cheat_swallow},
    "loop": {"01-activations": _loop},
    "crash": {"01-activations": _crash},
    "cheat_edited": {"02-initializers": _cheat_edited},
    "corrupt": {"02-initializers": _corrupt},
    "memory_hog": {"02-initializers": _memory_hog},
    "snoop": {"02-initializers": _snoop},
}

NOTEBOOK = {"01-activations": "activations", "02-initializers": "initializers"}


def build(dest: Path = DEMO, course_dir: Path | None = None) -> list[Path]:
    """Write every demo submission under ``dest``; returns the files written."""
    config = course.load_config(course_dir)
    ids = [a for a in NOTEBOOK if a in course.assignments()]
    course.stage_sources(config, ids)
    course.generate(config, ids)
    if dest.exists():
        shutil.rmtree(dest)
    written = []
    for student, plan in STUDENTS.items():
        for assignment, make in plan.items():
            name = NOTEBOOK[assignment]
            release = nbformat.read(str(course.release_notebooks(config, assignment)[name]), 4)
            source = nbformat.read(str(course.source_notebooks(config, assignment)[name]), 4)
            result = make(release, source, _answered(release, source))
            path = dest / student / assignment / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(result, bytes):
                path.write_bytes(result)
            else:
                nbformat.write(result, str(path))
            written.append(path)
    return written


if __name__ == "__main__":
    for written_path in build(course_dir=Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(f"wrote {written_path.relative_to(course.REPO)}")
