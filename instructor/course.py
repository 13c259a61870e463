"""The course as nbgrader sees it: sources converted from MyST Markdown, and generated releases.

Instructor notebooks live in ``solutions/<NN-topic>/<name>.md`` (MyST Markdown, read with jupytext;
each cell's nbgrader metadata sits in its option block). nbgrader only reads ``.ipynb``, so every
command first converts them into a staging course folder (git-ignored)::

    <course>/source/<NN-topic>/<name>.ipynb     converted from solutions/
    <course>/release/<NN-topic>/<name>.ipynb    written by nbgrader generate_assignment
    <course>/gradebook.db                       nbgrader's gradebook (cells, checksums, grades)

and ``make exercises`` copies the releases to ``exercises/`` (committed).

The conversion is deterministic -- cell ids come from the nbgrader ``grade_id`` (or the cell's
position), jupytext's own metadata is dropped -- so regenerating gives byte-identical releases and
a test can check ``exercises/`` against ``solutions/``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import jupytext
import nbformat
from traitlets.config import Config, PyFileConfigLoader

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"
CONFIG_FILE = REPO / "nbgrader_config.py"
DEFAULT_COURSE = REPO / ".nbgrader_course"

log = logging.getLogger("grading")

# nbgrader runs the `alembic` command when it creates a gradebook; it lives next to this Python,
# which is not on PATH when the virtual environment is used without being activated.
_BIN = os.path.dirname(os.path.abspath(sys.executable))
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_BIN, os.environ.get("PATH", "")])


def _in_process_alembic_head() -> None:
    """Let nbgrader find its database schema version without starting the ``alembic`` command.

    A new gradebook is stamped with the head revision of nbgrader's migrations, which nbgrader
    asks of a fresh ``alembic heads`` process (seconds on a busy machine, and it must be on PATH).
    The same answer comes from alembic's Python API in this process.
    """
    import nbgrader.api
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    def head() -> str:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location",
                            str(Path(nbgrader.api.__file__).parent / "alembic"))
        return ScriptDirectory.from_config(cfg).get_current_head()

    nbgrader.api.get_alembic_version = head


def load_config(course_dir: Path | str | None = None) -> Config:
    """``nbgrader_config.py``, with the course root moved to ``course_dir`` when given."""
    config = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()
    if course_dir is not None:
        config.CourseDirectory.root = str(Path(course_dir).resolve())
    root = Path(config.CourseDirectory.root)
    # nbgrader's default database URL is derived from the root at start-up; keep them together
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    return config


def course_root(config: Config) -> Path:
    return Path(config.CourseDirectory.root)


def assignments(solutions: Path = SOLUTIONS) -> list[str]:
    """Assignment ids: the folders of ``solutions/`` that hold at least one ``.md`` notebook."""
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and any(p.glob("*.md")))


def notebook_from_markdown(path: Path) -> nbformat.NotebookNode:
    """Read a MyST Markdown source notebook into an nbformat notebook, deterministically."""
    nb = jupytext.read(path, fmt="md:myst")
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell_id = grade_id or f"cell-{index:03d}"
        if cell_id in seen:
            raise ValueError(f"{path}: two cells with nbgrader grade_id {cell_id!r}")
        seen.add(cell_id)
        cell["id"] = cell_id
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return nb


def stage_sources(config: Config, assignment_ids: list[str], solutions: Path = SOLUTIONS) -> None:
    """Write ``<course>/source/<assignment>/<name>.ipynb`` from ``solutions/<assignment>/*.md``."""
    source_dir = course_root(config) / config.CourseDirectory.get("source_directory", "source")
    for assignment in assignment_ids:
        dest = source_dir / assignment
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for md in sorted((solutions / assignment).glob("*.md")):
            nbformat.write(notebook_from_markdown(md), dest / f"{md.stem}.ipynb")
        # anything else in the folder (data files, images) goes with the notebooks
        for extra in sorted((solutions / assignment).iterdir()):
            if extra.is_file() and extra.suffix != ".md":
                shutil.copy2(extra, dest / extra.name)


def course_directory(config: Config, assignment: str, student: str = "*"):
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    return coursedir


def generate(config: Config, assignment_ids: list[str], releases_dir: Path | None = None) -> None:
    """``nbgrader generate_assignment --force`` for each assignment, in this process. A release
    that ``releases_dir`` (``releases/``) has recorded as the assignment's latest gets its id in
    its notebooks' metadata, as in ``exercises/`` (so the demo submissions carry it, as
    students' notebooks do)."""
    from nbgrader.converters import GenerateAssignment

    from instructor import releases

    _in_process_alembic_head()
    root = course_root(config)
    root.mkdir(parents=True, exist_ok=True)
    release = root / config.CourseDirectory.get("release_directory", "release")
    for assignment in assignment_ids:
        clear_changed(config, assignment)
        shutil.rmtree(release / assignment, ignore_errors=True)  # (--force would warn about it)
        converter = GenerateAssignment(coursedir=course_directory(config, assignment),
                                       config=config, log=log)
        converter.force = True
        converter.start()
        notebooks = release_notebooks(config, assignment)
        records = releases.load(assignment, releases_dir or releases.RELEASES)
        if records and records[-1]["notebooks"] == releases.content(notebooks):
            releases.stamp_files(notebooks, records[-1])


def _cell_sets(nb) -> tuple[set, set, set, set]:
    """The grade, solution, task and source cells nbgrader's ``SaveCells`` would record."""
    from nbgrader import utils

    grade, solution, task, source = set(), set(), set(), set()
    for cell in nb.cells:
        if "nbgrader" not in cell.metadata:
            continue
        gid = cell.metadata.nbgrader.get("grade_id")
        for wanted, into in ((utils.is_grade, grade), (utils.is_solution, solution),
                             (utils.is_task, task)):
            if wanted(cell):
                into.add(gid)
        if utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell) \
                or utils.is_task(cell):
            source.add(gid)
    return grade, solution, task, source


def clear_changed(config: Config, assignment: str) -> list[str]:
    """Let ``generate_assignment`` record an assignment whose cells were added or removed.

    nbgrader refuses ("Cannot add or remove cells ... because there are submissions associated
    with it") once the gradebook holds a submission of the notebook. The grades are derived from
    the submissions, which stay in ``<course>/submitted/``, and release records
    (``instructor/releases.py``) let a submission of an earlier release be graded without
    accusation, so the gradebook's submissions of that assignment are removed, the students are
    named in a warning (grade them again: ``make grade`` with all of them), and their ids are
    returned. Their manual grades go with them from the gradebook; a grading run reads them first
    and gives them back (``instructor/manual.py``: ``scores_of``, ``restore``)."""
    from nbgrader.api import Gradebook, MissingEntry

    source = course_root(config) / config.CourseDirectory.get("source_directory", "source")
    if not (course_root(config) / "gradebook.db").exists():
        return []
    changed = []
    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gb:
        for path in sorted((source / assignment).glob("*.ipynb")):
            try:
                old = gb.find_notebook(path.stem, assignment)
            except MissingEntry:
                continue
            if not old.submissions:
                continue
            known = ({c.name for c in old.grade_cells}, {c.name for c in old.solution_cells},
                     {c.name for c in old.task_cells}, {c.name for c in old.source_cells})
            if _cell_sets(nbformat.read(str(path), as_version=4)) != known:
                changed.append(path.stem)
        if not changed:
            return []
        students = sorted(s.student.id for s in gb.find_assignment(assignment).submissions)
        for student in students:
            gb.remove_submission(assignment, student)
    log.warning("%s: cells of %s were added or removed since it was graded; the gradebook's "
                "submissions of %d student(s) were removed so that nbgrader records the new "
                "release: grade them again (%s)", assignment, ", ".join(changed), len(students),
                ", ".join(students))
    return students


def release_notebooks(config: Config, assignment: str) -> dict[str, Path]:
    """``{notebook name: released .ipynb}`` of one assignment."""
    release = course_root(config) / config.CourseDirectory.get("release_directory", "release")
    return {p.stem: p for p in sorted((release / assignment).glob("*.ipynb"))}


def source_notebooks(config: Config, assignment: str) -> dict[str, Path]:
    source = course_root(config) / config.CourseDirectory.get("source_directory", "source")
    return {p.stem: p for p in sorted((source / assignment).glob("*.ipynb"))}


def build_exercises(course_dir: Path | str | None = None, dest: Path = EXERCISES,
                    solutions: Path = SOLUTIONS, releases_dir: Path | None = None) -> list[Path]:
    """Regenerate the student notebooks: solutions/*.md -> staging course -> ``dest``.

    Each assignment's release is recorded in ``releases_dir`` (by default ``releases/`` beside
    ``solutions``; a new record only when what students receive changed,
    ``instructor/releases.py``) and its id written into every released notebook's metadata."""
    from instructor import releases

    config = load_config(course_dir)
    ids = assignments(solutions)
    if releases_dir is None:
        releases_dir = Path(solutions).resolve().parent / "releases"
    stage_sources(config, ids, solutions)
    generate(config, ids, releases_dir)
    written = []
    for assignment in ids:
        notebooks = release_notebooks(config, assignment)
        releases.stamp_files(notebooks, releases.record(assignment, notebooks, releases_dir))
        out = dest / assignment
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        release_dir = course_root(config) / config.CourseDirectory.get("release_directory",
                                                                        "release") / assignment
        for path in sorted(release_dir.rglob("*")):
            if path.is_file():
                target = out / path.relative_to(release_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                os.chmod(target, 0o644)
                written.append(target)
    return written
