"""Release records: what each release of an assignment gave students, kept outside nbgrader.

nbgrader's gradebook knows one version of each notebook, the current one, and refuses to add or
remove cells once submissions exist. A submission made from an earlier release would then be
graded against cells it never had: every test cell added since is "deleted" and flagged. So
``make exercises`` (``python -m instructor.pipeline exercises``) keeps its own record of every
release, one JSON file per release under ``releases/<assignment>/release-<N>.json`` at the
repository root (instructor-only: checksums, no source, no secret)::

    {"assignment": "05-schedules", "release": 2, "digest": "<16 hex digits>",
     "notebooks": {"schedules": [{"grade_id": "setup", "kind": "readonly",
                                  "checksum": "<nbgrader's md5>", "normalized": "<sha256>"},
                                 {"grade_id": "test_step_decay", "kind": "test", "points": 2.0,
                                  "checksum": "...", "normalized": "..."},
                                 {"grade_id": "step_decay", "kind": "solution"}, ...]}}

and writes the release's id into every released notebook's metadata (``course_release``:
assignment, release number, digest). The record holds, for every nbgrader cell in order, its
``grade_id``, its kind (``test``, ``manual``, ``solution``, ``task``, ``readonly``), its points,
and for every cell the student may not edit (read-only and test cells) nbgrader's checksum of the
cell as released and a SHA-256 of its whitespace-normalised source (what the grader compares, so
that an editor that strips trailing spaces changes nothing). Nothing in it depends on time: an
unchanged assignment gives the same record, and regenerating it records nothing new.

A new record is written only when what students receive changed (a hidden test alone is not part
of it: the grader always runs the current hidden tests). Earlier records are never rewritten, with
one exception for drafts: a latest record that git does not track yet (never committed, so never
published from a commit) is replaced instead of followed by another one.

Grading (``instructor/integrity.py``) reads a submission's claimed id with :func:`claim`, and
:func:`resolve` checks it against that release's own checksums: every read-only and test cell of
the claimed release must be in the submission, unedited, and the submission may hold no locked
cell the claimed release did not have. A claim that passes selects the cells the submission is
graded on; one that does not, or an unknown id, is reported and graded against the current
release, as a submission without an id is.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.utils import compute_checksum

REPO = Path(__file__).resolve().parents[1]
RELEASES = REPO / "releases"
META_KEY = "course_release"  # the released notebook's metadata entry
LOCKED_KINDS = ("readonly", "test")


def _norm(source: str) -> str:
    # the same normalisation as instructor.integrity: line ends and surrounding blank lines
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def kind(md: dict) -> str | None:
    """The kind of a cell from its nbgrader metadata, or ``None`` for a cell nbgrader ignores."""
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


def _normalized(cell) -> str:
    return hashlib.sha256(f"{cell.cell_type}\n{_norm(cell.source)}".encode()).hexdigest()


def notebook_cells(nb) -> list[dict]:
    """The record of one released notebook: one entry per nbgrader cell, in order."""
    cells = []
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        what = kind(md)
        if what is None:
            continue
        entry = {"grade_id": md["grade_id"], "kind": what}
        if md.get("grade") or md.get("task"):
            entry["points"] = float(md.get("points", 0))
        if what in LOCKED_KINDS:
            entry["checksum"] = compute_checksum(cell)  # nbgrader's, of the cell as released
            entry["normalized"] = _normalized(cell)
        cells.append(entry)
    return cells


def digest(notebooks: dict) -> str:
    text = json.dumps(notebooks, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content(notebooks: dict[str, Path]) -> dict:
    """``{notebook name: its cells}`` of a generated release (``{name: released .ipynb}``)."""
    return {name: notebook_cells(nbformat.read(str(path), as_version=4))
            for name, path in sorted(notebooks.items())}


def load(assignment: str, root: Path = RELEASES) -> list[dict]:
    """Every record of ``assignment``, by release number (empty if it has none)."""
    folder = root / assignment
    records = []
    for path in folder.glob("release-*.json") if folder.is_dir() else []:
        record = json.loads(path.read_text())
        if (record.get("assignment") == assignment
                and path.name == f"release-{record['release']}.json"):
            records.append(record)
    return sorted(records, key=lambda r: r["release"])


def _path(root: Path, assignment: str, number: int) -> Path:
    return root / assignment / f"release-{number}.json"


def _tracked(path: Path) -> bool:
    """Whether git tracks ``path`` (``True`` where git cannot tell: then it is never replaced)."""
    try:
        done = subprocess.run(["git", "ls-files", "--error-unmatch", path.name],
                              cwd=path.parent, capture_output=True, timeout=30)
        if done.returncode == 0:
            return True
        # not tracked: a draft, if this is a git work tree at all
        inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"],
                                cwd=path.parent, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return True
    return not (inside.returncode == 0 and inside.stdout.strip() == "true")


def record(assignment: str, notebooks: dict[str, Path], root: Path = RELEASES) -> dict:
    """The record of the release just generated (``{name: released .ipynb}``): the latest one if
    nothing students receive changed, else a new one, written (see the module docstring)."""
    cells = content(notebooks)
    new = {"assignment": assignment, "digest": digest(cells), "notebooks": cells}
    records = load(assignment, root)
    if records and records[-1]["digest"] == new["digest"]:
        return records[-1]
    number = records[-1]["release"] + 1 if records else 1
    if records and not _tracked(_path(root, assignment, records[-1]["release"])):
        number = records[-1]["release"]  # a draft nobody received from a commit: replaced
    new = {"assignment": assignment, "release": number, **{k: new[k] for k in
                                                          ("digest", "notebooks")}}
    path = _path(root, assignment, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
    return new


def stamp(nb, rec: dict) -> None:
    """Write the release id of ``rec`` into a released notebook's metadata."""
    nb.metadata[META_KEY] = {"assignment": rec["assignment"], "release": rec["release"],
                             "digest": rec["digest"]}


def stamp_files(notebooks: dict[str, Path], rec: dict) -> None:
    for path in notebooks.values():
        nb = nbformat.read(str(path), as_version=4)
        stamp(nb, rec)
        nbformat.write(nb, str(path))


def claim(nb) -> tuple[dict | None, str]:
    """The id a submission claims: ``(claim, "")``, ``(None, "")`` when it has none, or
    ``(None, why)`` when its metadata entry is malformed (a student's file: anything goes)."""
    raw = nb.metadata.get(META_KEY) if isinstance(nb.metadata, dict) else None
    if raw is None:
        return None, ""
    if (not isinstance(raw, dict) or not isinstance(raw.get("assignment"), str)
            or type(raw.get("release")) is not int or not isinstance(raw.get("digest"), str)):
        return None, f"a malformed release id ({str(raw)[:80]!r})"
    return {"assignment": raw["assignment"][:100], "release": raw["release"],
            "digest": raw["digest"][:64]}, ""


@dataclass
class Resolution:
    """What a submission of one notebook is graded as."""

    older: list[dict] | None = None  # the cells of the (older) release it was made from
    number: int | None = None  # that release's number
    later: dict | None = None  # {grade_id: release that added it} for cells it does not have
    flag: str = ""  # why its claim was not accepted (empty: accepted, or no claim)
    note: str = ""  # made from an older release: what that means for its score


def _mismatches(nb, cells: list[dict]) -> list[str]:
    """Why ``nb`` is not a notebook of a release with these ``cells`` (empty: it is)."""
    wanted = {c["grade_id"]: c for c in cells}
    seen: dict[str, object] = {}
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader") if isinstance(cell.metadata, dict) else None
        gid = md.get("grade_id") if isinstance(md, dict) else None
        if isinstance(gid, str) and gid not in seen:
            seen[gid] = cell
    problems = []
    for entry in cells:
        if entry["kind"] not in LOCKED_KINDS:
            continue
        cell = seen.get(entry["grade_id"])
        if cell is None:
            problems.append(f"{entry['grade_id']!r} missing")
            continue
        if _normalized(cell) != entry["normalized"]:
            problems.append(f"{entry['grade_id']!r} edited")
    for gid, cell in seen.items():
        md = cell.metadata["nbgrader"]
        if gid not in wanted and (md.get("locked") or md.get("grade")):
            problems.append(f"{gid!r} not in that release")
    return problems


def resolve(nb, assignment: str, notebook: str, records: list[dict],
            current: list[dict]) -> Resolution:
    """Check the release id ``nb`` claims against ``records`` (this assignment's) and the
    ``current`` cells of ``notebook``; see the module docstring."""
    found, malformed = claim(nb)
    if found is None:
        return Resolution(flag=f"{malformed}; graded against the current release"
                          if malformed else "")
    shown = f"release {found['release']} ({found['digest'][:16]})"
    rec = next((r for r in records if r["release"] == found["release"]), None)
    if (found["assignment"] != assignment or rec is None or rec["digest"] != found["digest"]
            or notebook not in rec["notebooks"]):
        return Resolution(flag=f"claims {shown} of {found['assignment']!r}, which was never "
                               f"released as {assignment}/{notebook}; graded against the "
                               "current release")
    cells = rec["notebooks"][notebook]
    if cells == current:
        return Resolution()  # the current release: the usual checks say what was changed
    problems = _mismatches(nb, cells)
    if problems:
        listed = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more"
                                            if len(problems) > 5 else "")
        return Resolution(flag=f"claims release {rec['release']}, but its read-only and test "
                               f"cells do not match that release's checksums ({listed}); "
                               "graded against the current release")
    had = {c["grade_id"] for c in cells}
    later = {}
    for entry in current:
        if entry["grade_id"] in had:
            continue
        added = next((r["release"] for r in records if r["release"] > rec["release"]
                      and any(c["grade_id"] == entry["grade_id"]
                              for c in r["notebooks"].get(notebook, []))), None)
        later[entry["grade_id"]] = added
    graded = [g for g in later if any(c["grade_id"] == g and c["kind"] in ("test", "manual")
                                      for c in current)]
    now = {c["grade_id"]: c.get("normalized") for c in current}
    changed = [c["grade_id"] for c in cells if c["kind"] in LOCKED_KINDS
               and c["grade_id"] in now and now[c["grade_id"]] != c["normalized"]]
    note = f"made from release {rec['release']}"
    if graded:
        note += (f": {len(graded)} test cell(s) added since score 0 ("
                 + ", ".join(repr(g) for g in graded) + ")")
    if changed:
        # its cells as that release wrote them, graded by the current hidden tests: a question
        # whose wording or key changed deserves a look
        note += ("; changed since, graded with the current checks: "
                 + ", ".join(repr(g) for g in changed))
    return Resolution(older=cells, number=rec["release"], later=later, note=note)


def added_text(number: int | None, made_from: int) -> str:
    """The reason a cell added after release ``made_from`` scores 0 (feedback and report)."""
    when = f"in release {number}" if number else f"after release {made_from}"
    return (f"This test cell scores 0: it was added {when}, and this notebook was made from "
            f"release {made_from}.")
