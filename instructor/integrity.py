"""Put a submitted notebook back into the shape the instructor released, and say what was changed.

nbgrader's own ``OverwriteCells`` restores locked cells it can find by their ``grade_id``, but a
test cell that was deleted, or whose nbgrader metadata was removed, is simply not there for it: the
grade stays empty and nobody is told. :func:`prepare` compares the submission with the gradebook's
source cells (ids, types, sources, checksums) and the released notebook instead:

=====================================  ======================================================
what the submission did                what happens
=====================================  ======================================================
left a locked cell as released         restored to the instructor's source (hidden tests
                                       back in), silently: this is the normal case, so no
                                       spurious "checksum has changed" warning
edited a locked test cell              restored, scores 0, flagged
deleted a test cell                    put back, scores 0, flagged
removed a test cell's nbgrader         recognised by its source, metadata put back, scores 0,
metadata                               flagged
edited / deleted a read-only cell      restored / put back, flagged (no score attached)
changed points, type, lock, ids        metadata reset from the gradebook
duplicated a cell id, or invented one  the copy / the invented cell loses its nbgrader metadata
=====================================  ======================================================

A submission made from an earlier release (its ``course_release`` id checked against that
release's own checksums by ``instructor/releases.py``) is graded on the cells it has: its
read-only and test cells are those of its release, so none is "edited"; a cell added in a later
release is put in and, if it is a test cell, scores 0 with "made from release N" (not flagged);
a cell a later release removed loses its nbgrader metadata, silently. A claim that does not
match its release, or an unknown id, is flagged and the submission is checked against the
current release, as one without an id is.

A cell that scores 0 this way is not executed: it carries an error output that says why, which is
what nbgrader's ``SaveAutoGrades`` reads as 0 points, and what the student sees in the feedback.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode

from instructor import releases

# Our marker in a cell's metadata: the pipeline gives the cell 0 and does not execute it.
MARK = "grading_pipeline"
INTEGRITY_ERROR = "GradingIntegrityError"


@dataclass
class RefCell:
    """One nbgrader cell of the instructor's notebook, as the gradebook and the release know it."""

    grade_id: str
    cell_type: str
    source: str  # the instructor's source, hidden tests included
    released: str  # what the student received
    checksum: str
    locked: bool
    grade: bool
    solution: bool
    task: bool
    points: float | None


@dataclass
class Reference:
    """What a submission of one notebook is checked against."""

    cells: list[RefCell]
    kernelspec: dict
    release: NotebookNode  # the blank released notebook (graded in place of an unreadable one)
    assignment: str = ""
    notebook: str = ""
    records: list[dict] | None = None  # the assignment's release records (releases.load)
    current: list[dict] = field(default_factory=list)  # releases.notebook_cells(release)

    @property
    def grade_ids(self) -> list[str]:
        return [c.grade_id for c in self.cells if c.grade]

    def metadata(self, ref: RefCell) -> dict:
        md = {"grade": ref.grade, "grade_id": ref.grade_id, "locked": ref.locked,
              "schema_version": 3, "solution": ref.solution, "task": ref.task,
              "cell_type": ref.cell_type, "checksum": ref.checksum}
        if ref.grade or ref.task:
            md["points"] = ref.points
        return md


@dataclass
class Issue:
    """Something the submission did to the notebook's structure."""

    grade_id: str
    kind: str  # "edited", "deleted", "stripped", "duplicate", "invented", "retyped"
    text: str
    zeroed: bool = False


@dataclass
class Prepared:
    nb: NotebookNode
    issues: list[Issue] = field(default_factory=list)
    release: str = ""  # made from an earlier release: what that means (reported, not flagged)


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def load_reference(gradebook, assignment: str, notebook: str, release_path,
                   records: list[dict] | None = None) -> Reference:
    """Build the :class:`Reference` of one notebook from an open nbgrader ``Gradebook``; with
    ``records`` (``releases.load(assignment)``) submissions of earlier releases are recognised."""
    release = nbformat.read(str(release_path), as_version=4)
    released = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in release.cells}
    nb = gradebook.find_notebook(notebook, assignment)
    points = {c.name: c.max_score for c in nb.grade_cells}
    task_points = {c.name: c.max_score for c in nb.task_cells}
    solutions = {c.name for c in nb.solution_cells}
    cells = []
    # source_cells are unordered in the database: follow the order of the released notebook
    order = {gid: i for i, gid in enumerate(released)}
    for sc in sorted(nb.source_cells, key=lambda c: order.get(c.name, len(order))):
        cells.append(RefCell(
            grade_id=sc.name, cell_type=sc.cell_type, source=sc.source,
            released=released.get(sc.name, sc.source), checksum=sc.checksum, locked=sc.locked,
            grade=sc.name in points, solution=sc.name in solutions, task=sc.name in task_points,
            points=points.get(sc.name, task_points.get(sc.name))))
    return Reference(cells=cells, kernelspec=dict(release.metadata.get("kernelspec", {})),
                     release=release, assignment=assignment, notebook=notebook,
                     records=records or None,  # (none recorded: ids cannot be checked)
                     current=releases.notebook_cells(release) if records else [])


MAX_NOTEBOOK_BYTES = 50 * 2**20


def read_submission(path) -> NotebookNode:
    """Read a submitted notebook; raises ``ValueError`` with a one-line reason if it is unusable."""
    size = os.path.getsize(path)
    if size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"notebook too large ({size / 2**20:.0f} MB)")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # JSON errors, missing keys, wrong nbformat: all the same to us
        raise ValueError(f"unreadable notebook ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(nb.get("cells"), list):
        raise ValueError("unreadable notebook (no list of cells)")
    for cell in nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError("unreadable notebook (a cell without a valid cell_type)")
        if not isinstance(cell.get("source", ""), str):
            raise ValueError("unreadable notebook (a cell source that is not text)")
        cell.setdefault("metadata", NotebookNode())
    return nb


def _new_cell(ref: RefCell) -> NotebookNode:
    if ref.cell_type == "code":
        return nbformat.v4.new_code_cell(ref.source)
    return nbformat.v4.new_markdown_cell(ref.source)


def _set_type(cell: NotebookNode, cell_type: str) -> None:
    if cell.cell_type == cell_type:
        return
    cell.cell_type = cell_type
    if cell_type == "code":
        cell.outputs, cell.execution_count = [], None
        cell.pop("attachments", None)
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


def zero(cell: NotebookNode, reason: str) -> None:
    """Mark ``cell`` to score 0 without being executed, with ``reason`` as its error output."""
    cell.metadata[MARK] = {"zeroed": reason}
    if cell.cell_type == "code":
        cell.outputs = [nbformat.v4.new_output(
            "error", ename=INTEGRITY_ERROR, evalue=reason,
            traceback=[f"{INTEGRITY_ERROR}: {reason}"])]


def prepare(nb: NotebookNode, ref: Reference) -> Prepared:
    """Restore ``nb`` (a submission, changed in place) against ``ref``; see the module docstring."""
    out = Prepared(nb=nb)
    issues = out.issues
    by_id = {c.grade_id: c for c in ref.cells}
    made = releases.Resolution()
    if ref.records is not None:
        made = releases.resolve(nb, ref.assignment, ref.notebook, ref.records, ref.current)
        if made.flag:
            issues.append(Issue("", "release", made.flag))
        out.release = made.note
    older = {c["grade_id"] for c in made.older} if made.older is not None else None

    nb.metadata["kernelspec"] = copy.deepcopy(ref.kernelspec)
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop(MARK, None)  # only the pipeline may set this

    # 1. which submitted cell claims which id
    found: dict[str, NotebookNode] = {}
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader")
        if not isinstance(md, dict):
            cell.metadata.pop("nbgrader", None)
            continue
        gid = md.get("grade_id")
        if gid is None or gid not in by_id:
            if md.get("grade") and gid is not None and not (older and gid in older):
                issues.append(Issue(str(gid), "invented",
                                    f"a cell claims to be graded cell {gid!r}, which the "
                                    "assignment does not have; it is not graded"))
            cell.metadata.pop("nbgrader", None)
        elif gid in found:
            issues.append(Issue(gid, "duplicate",
                                f"a second cell claims id {gid!r}; only the first one counts"))
            cell.metadata.pop("nbgrader", None)
        else:
            found[gid] = cell

    # 2. every cell of the reference, in order
    previous = None  # the submitted cell that holds the reference cell before this one
    for ref_cell in ref.cells:
        gid = ref_cell.grade_id
        cell = found.get(gid)
        what = "test cell" if ref_cell.grade else "read-only cell"
        if cell is None and older is not None and gid not in older:
            # added after the release the submission was made from: not the student's doing
            if ref_cell.solution and not ref_cell.grade:
                continue  # (its solution never goes into a student's notebook)
            cell = _new_cell(ref_cell)
            if ref_cell.solution:
                cell.source = ref_cell.released
            index = nb.cells.index(previous) + 1 if previous is not None else 0
            nb.cells.insert(index, cell)
            if ref_cell.grade:
                zero(cell, releases.added_text(made.later.get(gid), made.number))
        elif cell is None and (ref_cell.locked or ref_cell.grade):
            cell = _find_stripped(nb, ref_cell)
            if cell is not None:
                issues.append(Issue(gid, "stripped",
                                    f"the nbgrader metadata of {what} {gid!r} was removed",
                                    zeroed=ref_cell.grade))
            else:
                cell = _new_cell(ref_cell)
                index = nb.cells.index(previous) + 1 if previous is not None else 0
                nb.cells.insert(index, cell)
                issues.append(Issue(gid, "deleted", f"{what} {gid!r} was deleted",
                                    zeroed=ref_cell.grade))
            cell.source = ref_cell.source
        elif cell is None:
            continue  # a solution cell whose metadata is gone: its code still runs ungraded
        else:
            if cell.cell_type != ref_cell.cell_type:
                issues.append(Issue(gid, "retyped", f"cell {gid!r} was changed to "
                                    f"{cell.cell_type}; changed back"))
            if ref_cell.locked:
                # (a cell of a verified earlier release matches that release's checksums)
                if _norm(cell.source) not in (_norm(ref_cell.released), _norm(ref_cell.source)) \
                        and not (older is not None and gid in older):
                    issues.append(Issue(gid, "edited", f"{what} {gid!r} was edited",
                                        zeroed=ref_cell.grade))
                cell.source = ref_cell.source
        _set_type(cell, ref_cell.cell_type)
        cell.metadata["nbgrader"] = ref.metadata(ref_cell)
        if ref_cell.locked:
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        previous = cell

    for issue in issues:
        if issue.zeroed:
            cell = next(c for c in nb.cells
                        if c.metadata.get("nbgrader", {}).get("grade_id") == issue.grade_id)
            zero(cell, f"This test cell scores 0: {issue.text} in the submission.")

    _unique_ids(nb)
    nbformat.validate(nb)
    return out


def _find_stripped(nb: NotebookNode, ref_cell: RefCell) -> NotebookNode | None:
    """A submitted cell without nbgrader metadata whose source is ``ref_cell``'s."""
    wanted = (_norm(ref_cell.released), _norm(ref_cell.source))
    for cell in nb.cells:
        if "nbgrader" not in cell.metadata and _norm(cell.source) in wanted and _norm(cell.source):
            return cell
    return None


def _unique_ids(nb: NotebookNode) -> None:
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        wanted = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id") or ""
        cell_id = wanted if wanted and wanted not in seen and len(wanted) <= 64 else ""
        if not cell_id or not all(ch.isalnum() or ch in "-_" for ch in cell_id):
            cell_id = f"cell-{index:03d}"
            while cell_id in seen:
                cell_id += "x"
        cell["id"] = cell_id
        seen.add(cell_id)


def blank_submission(ref: Reference, reason: str) -> NotebookNode:
    """The release with every test cell at 0: what an unreadable submission is graded as."""
    nb = copy.deepcopy(ref.release)
    prepared = prepare(nb, ref)
    for cell in prepared.nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            zero(cell, f"This test cell scores 0: {reason}.")
    return prepared.nb
