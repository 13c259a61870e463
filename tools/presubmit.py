"""Check a notebook before you hand it in: will the grader find it, and grade every cell?

Run it from the folder it came in (the student edition's root), on one notebook or a folder::

    python presubmit.py exercises/05-schedules/schedules.ipynb
    python presubmit.py exercises/            # every notebook below the folder

It reads your notebook and changes nothing. It checks, for each notebook:

* **name and place**: the grader looks for ``<assignment>/<notebook>.ipynb`` exactly as
  released (e.g. ``05-schedules/schedules.ipynb``); a renamed copy or one in another folder is
  not graded, so the check says which path it must have;
* **the graded cells are intact**: every test cell, read-only cell and answer cell of the
  release is still there, with its identity (nbgrader's ``grade_id``) and, for the cells you may
  not edit, its text as released (a deleted or edited test cell scores 0);
* **the limits**: the file's size (a larger file is not collected at all) and the outputs it
  stores; it also prints the time and memory limits your notebook will be run with;
* and it prints what decides your score.

It needs only Python (3.10 or later) and ``presubmit.json`` next to it, which the student
edition's build writes from the released notebooks and the grader's limits. Exit status 0: no
problem found; 1: at least one problem (each one is printed with what to do).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import textwrap
from pathlib import Path

CONFIG_NAME = "presubmit.json"
STUBS = ("not answered yet: replace this line", "YOUR ANSWER HERE")
KIND_WORDS = {"test": "test cell", "readonly": "read-only cell", "solution": "answer cell",
              "manual": "written answer cell", "task": "task cell"}


# --- what the build writes into presubmit.json ---------------------------------------------------

def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


def _norm(source: str) -> str:
    """Line ends and surrounding blank lines do not count (the grader's own comparison)."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def normalized(cell: dict) -> str:
    """The SHA-256 of a cell's type and whitespace-normalised text."""
    text = f"{cell.get('cell_type')}\n{_norm(_text(cell.get('source')))}"
    return hashlib.sha256(text.encode()).hexdigest()


def kind(md) -> str | None:
    """What an nbgrader cell is, from its metadata (``None``: a cell nbgrader ignores)."""
    if not isinstance(md, dict) or not md.get("grade_id"):
        return None
    if md.get("task"):
        return "task"
    if md.get("grade"):
        return "manual" if md.get("solution") else "test"
    if md.get("solution"):
        return "solution"
    if md.get("locked"):
        return "readonly"
    return None


def notebook_record(nb: dict) -> list[dict]:
    """One entry per nbgrader cell of a released notebook, in order: its id, kind, points and,
    for the cells a student may not edit, the hash of its text."""
    cells = []
    for cell in nb.get("cells", []):
        md = cell.get("metadata", {}).get("nbgrader")
        what = kind(md)
        if what is None:
            continue
        entry = {"grade_id": md["grade_id"], "kind": what}
        if md.get("points") is not None and what in ("test", "manual", "task"):
            entry["points"] = float(md["points"])
        if what in ("test", "readonly"):
            entry["normalized"] = normalized(cell)
        cells.append(entry)
    return cells


def build_config(exercises: Path, limits: dict, older: dict | None = None) -> dict:
    """The checker's configuration: every released notebook of ``exercises/<assignment>/`` and
    the grader's ``limits``; ``older``: ``{assignment: {release: {notebook: cells}}}`` of
    earlier releases (a notebook that carries their id is checked against them)."""
    assignments: dict = {}
    for path in sorted(exercises.glob("*/*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        release = (nb.get("metadata", {}).get("course_release") or {}).get("release")
        entry = assignments.setdefault(path.parent.name, {"notebooks": {}, "releases": {}})
        entry["notebooks"][path.stem] = notebook_record(nb)
        if release is not None:
            entry["current"] = str(release)
    for assignment, releases in (older or {}).items():
        if assignment in assignments:
            for release, notebooks in releases.items():
                assignments[assignment]["releases"][str(release)] = notebooks
    return {"version": 1, "limits": dict(limits), "assignments": assignments}


# --- the checks ------------------------------------------------------------------------------

class Result:
    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []
        self.notes: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)


def _identify(nb: dict, path: Path, config: dict) -> tuple[str, str] | None:
    """Which released notebook this is: by its place if that is a released one, else by its
    cells' ids (the most shared)."""
    assignments = config["assignments"]
    here = (path.parent.name, path.stem)
    if here[0] in assignments and here[1] in assignments[here[0]]["notebooks"]:
        return here
    claimed = nb.get("metadata", {}).get("course_release") or {}
    ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.get("cells", [])
           if isinstance(c.get("metadata", {}).get("nbgrader"), dict)} - {None}
    best, shared = None, 0
    for assignment, entry in assignments.items():
        for name, cells in entry["notebooks"].items():
            n = len(ids & {c["grade_id"] for c in cells})
            if claimed.get("assignment") == assignment:
                n += 1
            if n > shared:
                best, shared = (assignment, name), n
    return best


def check_notebook(path: Path, config: dict) -> Result:
    result = Result(path)
    limits = config["limits"]
    size = path.stat().st_size
    max_bytes = int(limits["max_file_mb"] * 2**20)
    if size > max_bytes:
        result.problem(f"the file is {size / 2**20:.1f} MB; the grader does not collect a file "
                       f"larger than {limits['max_file_mb']:g} MB. Clear the outputs (Edit > "
                       "Clear Outputs of All Cells), save, and check again.")
        return result
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no list of cells")
    except (ValueError, UnicodeDecodeError, AttributeError) as exc:
        result.problem(f"this is not a readable notebook ({type(exc).__name__}: "
                       f"{str(exc)[:200]}); it would be graded as a blank notebook. Open the "
                       "last good copy in Jupyter and save it again.")
        return result

    found = _identify(nb, path, config)
    if found is None:
        result.problem("this notebook is none of the released ones (none of their graded "
                       "cells is in it): the grader would not grade it.")
        return result
    assignment, name = found
    expected = f"{assignment}/{name}.ipynb"
    if (path.parent.name, path.stem) != found:
        result.problem(f"this is the notebook {expected} under another name or in another "
                       f"folder: the grader looks only for {expected} and would skip this "
                       f"file. Rename or move it to {expected}.")
    entry = config["assignments"][assignment]
    cells = entry["notebooks"][name]
    claimed = nb.get("metadata", {}).get("course_release") or {}
    release = str(claimed.get("release")) if claimed.get("release") is not None else None
    if release is not None and release != entry.get("current") and \
            name in entry["releases"].get(release, {}):
        cells = entry["releases"][release][name]
        result.note(f"made from release {release} of {assignment} (the current one is "
                    f"{entry.get('current')}): it is graded on the cells it has; cells added "
                    "since score 0.")
    _check_cells(nb, cells, result)
    _check_outputs(nb, limits, result)
    unanswered = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                  for c in nb["cells"] if kind(c.get("metadata", {}).get("nbgrader")) in
                  ("solution", "manual") and any(s in _text(c.get("source")) for s in STUBS)]
    if unanswered:
        result.note(f"not answered yet: {', '.join(map(str, unanswered))} (each scores 0 as it "
                    "is).")
    return result


def _check_cells(nb: dict, cells: list[dict], result: Result) -> None:
    by_id: dict[str, list[dict]] = {}
    for cell in nb["cells"]:
        md = cell.get("metadata", {}).get("nbgrader")
        if isinstance(md, dict) and md.get("grade_id"):
            by_id.setdefault(str(md["grade_id"]), []).append(cell)
    hashes = {normalized(c) for c in nb["cells"]}
    for ref in cells:
        gid, what = ref["grade_id"], KIND_WORDS.get(ref["kind"], "cell")
        mine = by_id.get(gid, [])
        if len(mine) > 1:
            result.problem(f"{len(mine)} cells claim to be {what} {gid!r}; only the first one "
                           "counts. Delete the copies you made.")
        if not mine:
            if ref.get("normalized") in hashes:
                result.problem(f"{what} {gid!r} lost its nbgrader metadata (copied and pasted?): "
                               "the grader treats it as deleted"
                               + (" and it scores 0" if ref["kind"] == "test" else "")
                               + ". Take the cell from a fresh copy of the release.")
            elif ref["kind"] in ("solution", "manual"):
                result.problem(f"{what} {gid!r} was deleted: the grader grades your answer only "
                               "in that cell. Take it from a fresh copy of the release and put "
                               "your answer back in it.")
            else:
                result.problem(f"{what} {gid!r} was deleted"
                               + (f": it scores 0 ({ref.get('points', 0):g} points)"
                                  if ref["kind"] == "test" else "")
                               + ". Take it from a fresh copy of the release.")
            continue
        cell = mine[0]
        if ref.get("normalized") and normalized(cell) != ref["normalized"]:
            result.problem(f"{what} {gid!r} was edited"
                           + (f": it scores 0 ({ref.get('points', 0):g} points)"
                              if ref["kind"] == "test" else "")
                           + ". Undo the edit (take the cell from a fresh copy of the release); "
                           "write your own checks in a new cell instead.")
    known = {c["grade_id"] for c in cells}
    for gid, mine in by_id.items():
        md = mine[0].get("metadata", {}).get("nbgrader", {})
        if gid not in known and md.get("grade"):
            result.problem(f"a cell claims to be graded cell {gid!r}, which this notebook does "
                           "not have: it is not graded.")


def _check_outputs(nb: dict, limits: dict, result: Result) -> None:
    total = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            total += len(json.dumps(out))
    if total > limits["output_chars_per_notebook"]:
        result.note(f"the saved outputs hold {total:,} characters; when graded, a notebook keeps "
                    f"at most {limits['output_chars_per_notebook']:,} characters of output (and "
                    f"{limits['output_chars_per_cell']:,} per cell). Print less.")


def score_rules(limits: dict) -> str:
    """What decides a score, with this course's limits."""
    items = [
        "The grader runs your notebook from the top in a fresh Python, without nnbolts, one "
        f"cell after the other: each cell within {limits['cell_timeout_s']:g} s, the whole "
        f"notebook within {limits['submission_timeout_s']:g} s, in "
        f"{limits['memory_mb']:,} MB of memory. Run \"Restart Kernel and Run All Cells\" "
        "once before you hand it in.",
        "A test cell scores its points when all of the grader's own checks of it pass: it "
        "calls your functions itself, on more inputs than the visible checks, and compares "
        "them with its reference. An error, a wrong value or a time-out costs that cell's "
        "points; warnings and what your code prints cost nothing.",
        "Some exercises rule out PyTorch's own version of the function you write (the "
        "notebook's rules say which); a test cell whose function uses one scores 0.",
        "A deleted or edited test cell scores 0; a renamed or moved notebook is not graded.",
        "Written answers are read by your instructor, who gives their points by hand.",
    ]
    return "What decides your score\n" + "\n".join(
        textwrap.fill(item, 96, initial_indent="  * ", subsequent_indent="    ")
        for item in items)


def load_config(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"{path} not found: run this script from the student edition's folder "
                         f"(it needs the {CONFIG_NAME} beside it), or pass --config.")
    return json.loads(path.read_text(encoding="utf-8"))


def notebooks_in(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(p for p in target.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks or folders to check")
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name(CONFIG_NAME))
    args = parser.parse_args(argv)
    config = load_config(args.config)
    failed = 0
    checked = 0
    for target in args.paths:
        if not target.exists():
            print(f"{target}: no such file or folder")
            failed += 1
            continue
        found = notebooks_in(target)
        if not found:
            print(f"{target}: no notebook (.ipynb) in it")
            failed += 1
        for path in found:
            result = check_notebook(path, config)
            checked += 1
            print(f"{path}: {'PROBLEM' if result.problems else 'OK'}")
            for text in result.problems:
                print(f"  - problem: {text}")
            for text in result.notes:
                print(f"  - note: {text}")
            failed += bool(result.problems)
    print()
    print(score_rules(config["limits"]))
    print()
    print(f"{checked} notebook(s) checked: " + (f"{failed} with problems to fix before you hand "
                                                  "in." if failed else "no problem found."))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
