"""Answers read by the instructor: nbgrader's manually graded cells, from grading to grades.csv.

A *manually graded answer* is an nbgrader cell that is both a solution cell and a grade cell
(``solution: true, grade: true``; a markdown cell for a written answer, or a code cell), or a
task cell. The grader never decides one; nbgrader's ``SaveAutoGrades`` (step *record* of the
pipeline) stores it as

* ``auto_score = 0`` when the answer was left as released (its checksum unchanged): *not
  answered*, nothing to read;
* ``auto_score = None, needs_manual_grade = True`` otherwise: *to read*.

The instructor reads it in nbgrader's formgrader (``nbgrader formgrader``, "Manual Grading"),
which stores ``manual_score`` (and a comment) in the gradebook -- or, from a script, through
``Gradebook.find_grade(grade_id, notebook, assignment, student).manual_score = points``, which is
what the formgrader does. ``python -m instructor.pipeline export`` then writes ``grades.csv`` again
without regrading. A later ``grade`` (regrade) keeps every ``manual_score``: ``SaveAutoGrades``
only writes ``auto_score`` and ``needs_manual_grade`` (it sets the latter again on a cell that
has a manual score, so the formgrader asks for a second look; the score stays).

This module reads those states (:func:`summarize`, :func:`scores_of`); the pipeline turns them
into the columns of ``grades.csv``, the report's "Read by the instructor" lines and a note above
each such answer in the student's feedback (:func:`note`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

NOT_ANSWERED, TO_READ, READ = "not answered", "to read", "read"


@dataclass
class Answer:
    """One manually graded answer of one submission."""

    notebook: str
    grade_id: str
    max_score: float
    state: str  # NOT_ANSWERED, TO_READ or READ
    score: float | None  # the points it counts now (None: to read, counts 0 until read)


@dataclass
class Summary:
    """One student's submission of one assignment, its points split by who decides them."""

    auto_score: float = 0.0  # the points of the cells the grader decides
    auto_max_score: float = 0.0
    manual_score: float = 0.0  # the points of the answers read (or not answered: 0)
    manual_max_score: float = 0.0
    answers: list[Answer] = field(default_factory=list)

    @property
    def ungraded(self) -> int:
        """Answers still to read: their points are not in ``score`` yet."""
        return sum(a.state == TO_READ for a in self.answers)

    def as_dict(self) -> dict:
        return {**asdict(self), "ungraded": self.ungraded}


def manual_cells(notebook) -> set[str]:
    """The grade ids of a gradebook ``Notebook``'s manually graded answers (and its tasks)."""
    solutions = {c.name for c in notebook.solution_cells}
    return ({c.name for c in notebook.grade_cells if c.name in solutions}
            | {c.name for c in notebook.task_cells})


def state_of(grade) -> tuple[str, float | None]:
    """The state of one nbgrader ``Grade`` of a manually graded answer, and its points."""
    if grade.manual_score is not None:
        return READ, float(grade.manual_score) + float(grade.extra_credit or 0.0)
    if grade.auto_score is not None:  # left as released: nbgrader scored it 0 itself
        return NOT_ANSWERED, float(grade.auto_score)
    return TO_READ, None


def summarize(gb, assignment: str, student: str) -> Summary | None:
    """The :class:`Summary` of one submission in an open ``Gradebook``, or ``None`` if there is
    no submission."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    out = Summary()
    for nb in submission.notebooks:
        manual = manual_cells(nb.notebook)
        for grade in nb.grades:
            points = float(grade.max_score or 0.0)
            if grade.name in manual:
                state, score = state_of(grade)
                out.answers.append(Answer(nb.name, grade.name, points, state, score))
                out.manual_max_score += points
                out.manual_score += score or 0.0
            else:
                out.auto_max_score += points
                out.auto_score += float(grade.score or 0.0)
    out.answers.sort(key=lambda a: (a.notebook, a.grade_id))
    return out


def summaries(config, students: list[str], assignment_ids: list[str]) -> dict:
    """``{student: {assignment: Summary or None}}`` from the course's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        return {s: {a: summarize(gb, a, s) for a in assignment_ids} for s in students}


def scores_of(config) -> dict:
    """``{(student, assignment, notebook, grade_id): {"score", "manual_score", "extra_credit",
    "comment"}}`` of every answer the instructor has read (``manual_score`` set), or ``{}``
    without a gradebook. Taken before a regrade: the feedback it renders says so, and
    :func:`restore` puts them back where the regrade had to start a submission afresh (an
    assignment whose cells changed, ``course.clear_changed``); a regrade itself never changes a
    ``manual_score``."""
    from nbgrader.api import Gradebook

    if not (Path(config.CourseDirectory.root) / "gradebook.db").is_file():
        return {}
    found = {}
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for nb in submission.notebooks:
                    manual = manual_cells(nb.notebook)
                    comments = {c.name: c.manual_comment for c in nb.comments}
                    for grade in nb.grades:
                        if grade.name in manual and grade.manual_score is not None:
                            found[(submission.student.id, assignment.name, nb.name,
                                   grade.name)] = {
                                "score": state_of(grade)[1], "manual_score": grade.manual_score,
                                "extra_credit": grade.extra_credit,
                                "comment": comments.get(grade.name)}
    return found


def restore(config, assignment: str, read: dict) -> int:
    """Give back the instructor's scores and comments (``read``: :func:`scores_of` before the
    regrade) to the answers of ``assignment`` that lost them: their submission was removed from
    the gradebook and recorded afresh because the assignment's cells changed. An answer that
    still has a manual score keeps it; one whose cell no longer exists is skipped. Returns how
    many answers were given back their score."""
    from nbgrader.api import Gradebook, MissingEntry

    restored = 0
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        for (student, name, notebook, grade_id), value in read.items():
            if name != assignment:
                continue
            try:
                grade = gb.find_grade(grade_id, notebook, assignment, student)
            except MissingEntry:
                continue
            if grade.manual_score is not None:
                continue
            grade.manual_score = value["manual_score"]
            grade.extra_credit = value["extra_credit"]
            restored += 1
            try:
                comment = gb.find_comment(grade_id, notebook, assignment, student)
            except MissingEntry:
                comment = None
            if comment is not None and comment.manual_comment is None:
                comment.manual_comment = value["comment"]
        gb.db.commit()
    return restored


def is_manual(cell) -> bool:
    """Whether a notebook cell is a manually graded answer (or a task)."""
    md = cell.get("metadata", {}).get("nbgrader", {})
    return bool((md.get("grade") and md.get("solution")) or md.get("task"))


def unanswered(cell) -> bool:
    """nbgrader's own rule: a solution cell whose checksum is the released one was not answered."""
    from nbgrader import utils

    md = cell.metadata.get("nbgrader", {})
    return "checksum" in md and md["checksum"] == utils.compute_checksum(cell)


def note(cell, read_score: float | None) -> str:
    """The line of feedback shown above a manually graded answer."""
    points = float(cell.metadata.get("nbgrader", {}).get("points") or 0.0)
    if read_score is not None:
        return (f"*Read by the instructor: {read_score:g} of {points:g} points (the score "
                "beside this answer).*")
    if unanswered(cell):
        return f"*Read by the instructor: not answered, so 0 of {points:g} points.*"
    return (f"*Read by the instructor: this answer has not been read yet. Its {points:g} "
            "points are not counted in the score of this page until it has been (the score "
            "beside it shows 0 meanwhile).*")


def annotate(nb, read: dict[str, float]) -> int:
    """Put :func:`note` above every manually graded answer of an autograded notebook (the copy
    its feedback is rendered from); ``read``: ``{grade_id: points}`` of the answers the
    instructor has read. Returns how many answers it annotated."""
    import nbformat

    cells, count = [], 0
    for cell in nb.cells:
        if is_manual(cell):
            gid = cell.metadata["nbgrader"].get("grade_id")
            marker = nbformat.v4.new_markdown_cell(note(cell, read.get(gid)))
            marker.metadata["manual_grading_note"] = True
            cells.append(marker)
            count += 1
        cells.append(cell)
    nb.cells = cells
    return count
