"""Build the student edition (``make student-edition``): what students receive, and no answer.

This repository is the instructor's: beside the book and ``nnbolts`` it holds every solution,
every hidden test and every quiz key (``solutions/``), demo submissions that contain solutions
(``instructor/demo_submissions/``), mutants that reveal answers (``tests/exercise_mutants.py``)
and the gradebook. Students receive only what is public, in one folder (default
``_build/student/``) that can be published as it is, e.g. as its own public repository or site:

    book/              the book's HTML, without the instructor guide (open book/index.html)
    exercises/         the released notebooks, copied from exercises/ (stubs, no hidden tests)
    nnbolts/           a source copy of lib/nnbolts with a pyproject.toml of its own
    requirements.txt   torch, numpy, matplotlib, JupyterLab and ./nnbolts -- no nbgrader
    README.md          the light set-up: a virtual environment, pip install, open the notebooks
    presubmit.py       the check students run before handing in (tools/presubmit.py), and
    presubmit.json     what it checks against: the released notebooks' graded cells (hashes,
                       no source) and the grader's limits, both written by this build
    LICENSE, LICENSE-BOOK

The book is built by Jupyter Book from the repository's sources with a table of contents that
leaves out the instructor pages (``INSTRUCTOR_PAGES``), a configuration written for the
occasion into the output folder (and removed after the build) and the execution cache of
``make book`` (``_build/.jupyter_cache``), so after ``make book`` no chapter is executed again:
the build only renders. It is strict (a warning fails it), and the module is also the Sphinx
extension that sets the tag ``student_edition`` (``TAG``), so a page can leave a passage out
of the edition with ``{only} not student_edition`` (book/intro.md does so for its paragraph
for instructors, which links to the instructor guide). Sphinx reads every page afresh, in
``_build/student-build/`` (deleted afterwards): an incremental build would neither repeat the
warnings of a page it does not read again nor notice that a page it did not change now links to
nowhere, and a fresh read costs about a second per page.

    python tools/student_edition.py                    # the whole edition into _build/student
    python tools/student_edition.py --no-book --out D  # only the notebooks, nnbolts, environment

tests/test_student_edition.py scans every file of the edition for the secrets above and runs the
released notebooks with only torch, numpy, matplotlib and nnbolts.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "_build" / "student"
WORK = ROOT / "_build" / "student-build"  # Sphinx's doctrees and HTML, during the build only
CACHE = ROOT / "_build" / ".jupyter_cache"  # make book's execution cache, shared on purpose
TAG = "student_edition"
# Pages of _toc.yml that are not for students (as _toc.yml names them).
INSTRUCTOR_PAGES = ("book/instructor_guide",)
# A file the build writes into the edition, so that a rebuild may empty the folder safely.
MARKER = ".student-edition"
LICENSES = ("LICENSE", "LICENSE-BOOK")
# The Jupyter front end of the edition, and the kernel it runs: no nbgrader, whose extensions
# would show the instructor's Formgrader and course menus in the student's JupyterLab.
FRONT_END = ("jupyterlab==4.6.6", "ipykernel")
# What the released notebooks and nnbolts import, pinned as requirements.txt pins them.
RUNTIME = ("torch", "numpy", "matplotlib")


# --- the Sphinx extension ----------------------------------------------------------------------

def setup(app):
    """Loaded by the edition's configuration only: ``{only} not student_edition`` drops a passage.

    Sphinx resolves cross-references (post-transform priority 10) before it drops the passages
    that an ``only`` leaves out (priority 50), so a link to a page the edition does not have
    would warn, and fail the strict build, although nobody sees it. The edition drops them first.
    """
    from sphinx.transforms.post_transforms import SphinxPostTransform
    from sphinx.util.nodes import process_only_nodes

    class DropLeftOutPassages(SphinxPostTransform):
        default_priority = 5

        def run(self, **kwargs) -> None:
            process_only_nodes(self.document, self.app.builder.tags)

    app.tags.add(TAG)
    app.add_post_transform(DropLeftOutPassages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --- the book ----------------------------------------------------------------------------------

def student_toc(toc: dict) -> dict:
    """The table of contents without the instructor pages (and without a part left empty)."""
    toc = copy.deepcopy(toc)
    if toc["root"] in INSTRUCTOR_PAGES:
        raise ValueError(f"the book's root {toc['root']!r} is an instructor page")

    def keep(entries):
        kept = []
        for entry in entries:
            if entry.get("file") in INSTRUCTOR_PAGES:
                continue
            if "sections" in entry:
                entry["sections"] = keep(entry["sections"])
            kept.append(entry)
        return kept

    parts = []
    for part in toc.get("parts", []):
        part["chapters"] = keep(part["chapters"])
        if part["chapters"]:
            parts.append(part)
    if "parts" in toc:
        toc["parts"] = parts
    if "chapters" in toc:
        toc["chapters"] = keep(toc["chapters"])
    return toc


def student_config(config: dict) -> dict:
    """The book's configuration, read from elsewhere than the repository's root.

    Paths into the repository become absolute (the configuration file lies in the output folder),
    the execution cache is ``make book``'s, the instructor pages are excluded even from reading,
    and this module is loaded as a Sphinx extension (the ``student_edition`` tag).
    """
    config = copy.deepcopy(config)

    def absolute(value):
        if isinstance(value, dict):
            return {k: absolute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [absolute(v) for v in value]
        if isinstance(value, str) and value.startswith("tools/"):
            return str(ROOT / value)
        return value

    config = absolute(config)
    config.setdefault("execute", {})["cache"] = str(CACHE)
    config["exclude_patterns"] = list(config.get("exclude_patterns", [])) + [
        f"{page}.md" for page in INSTRUCTOR_PAGES]
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("local_extensions", {})["student_edition"] = str(ROOT / "tools")
    return config


def build_book(out: Path, *, work: Path = WORK, strict: bool = True) -> None:
    """Build the book's HTML into ``out/book`` (via ``work``, emptied before and after)."""
    shutil.rmtree(work, ignore_errors=True)
    toc_file, config_file = out / "_toc.yml", out / "_config.yml"
    toc_file.write_text(yaml.safe_dump(student_toc(yaml.safe_load((ROOT / "_toc.yml").read_text())),
                                       sort_keys=False))
    config_file.write_text(yaml.safe_dump(
        student_config(yaml.safe_load((ROOT / "_config.yml").read_text())), sort_keys=False))
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
               "--toc", str(toc_file), "--config", str(config_file), "--path-output", str(work),
               "--builder", "html"]
    if strict:
        command += ["-W", "--keep-going"]
    # The runs the prose describes, on one thread (as make book builds them): the cache's keys.
    env = dict(os.environ, OMP_NUM_THREADS="1", NNBOLTS_SEED_OFFSET="0")
    try:
        result = subprocess.run(command, cwd=ROOT, env=env)
    finally:
        toc_file.unlink()
        config_file.unlink()
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise SystemExit(f"the student edition's book did not build (exit {result.returncode})")
    shutil.move(work / "_build" / "html", out / "book")
    shutil.rmtree(work, ignore_errors=True)


# --- the notebooks, the library, the environment ----------------------------------------------

def copy_notebooks(out: Path) -> list[Path]:
    """The released notebooks, as ``make exercises`` wrote them."""
    written = []
    for notebook in sorted((ROOT / "exercises").glob("*/*.ipynb")):
        target = out / "exercises" / notebook.relative_to(ROOT / "exercises")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, target)
        written.append(target)
    if not written:
        raise SystemExit("exercises/ holds no notebook: run `make exercises` first")
    return written


def _project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def copy_library(out: Path) -> Path:
    """A source copy of nnbolts (all of it: its grading checks are public) that pip installs."""
    project = _project()
    target = out / "nnbolts"
    shutil.copytree(ROOT / "lib" / "nnbolts", target / "nnbolts",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in LICENSES:
        shutil.copyfile(ROOT / name, target / name)
    dependencies = ", ".join(f'"{d}"' for d in project["dependencies"])
    (target / "pyproject.toml").write_text(f"""\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "nnbolts"
version = "{project['version']}"
description = "{project['description']}"
requires-python = "{project['requires-python']}"
dependencies = [{dependencies}]
license = "MIT"
license-files = ["LICENSE"]

[tool.setuptools.packages.find]
include = ["nnbolts*"]

[tool.setuptools.package-data]
nnbolts = ["datasets/*.csv.gz", "datasets/*.md"]
""")
    return target


def requirements() -> list[str]:
    """The edition's requirements: the instructor's pins of torch, numpy and matplotlib, the
    front end, and the copy of nnbolts."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    missing = [name for name in RUNTIME if name not in pins]
    if missing:
        raise SystemExit(f"requirements.txt pins no {', '.join(missing)}")
    front_end = [r if "==" in r else f"{r}=={pins[r]}" for r in FRONT_END]
    return [f"{name}=={pins[name]}" for name in RUNTIME] + front_end + ["./nnbolts"]


def _repo_on_path() -> None:
    # run as a script (python tools/student_edition.py), the repository root is not on sys.path
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def presubmit_limits() -> dict:
    """The grader's limits a student's notebook meets, as this course sets them:
    ``nbgrader_config.py``'s ``GradingPipeline`` (and nbgrader's per-cell timeout), else
    instructor/limits.py's defaults -- what ``instructor/pipeline.py`` and the intake read."""
    _repo_on_path()
    from instructor import course, intake
    from instructor import limits as defaults

    config = course.load_config()
    pipe = config.GradingPipeline
    return {
        "max_file_mb": intake.limits(config).max_file_bytes / 2**20,
        "cell_timeout_s": float(config.ExecutePreprocessor.get("timeout",
                                                               defaults.CELL_TIMEOUT_S)),
        "submission_timeout_s": float(pipe.get("submission_timeout",
                                               defaults.SUBMISSION_TIMEOUT_S)),
        "memory_mb": int(pipe.get("memory_limit_mb", defaults.MEMORY_LIMIT_MB)),
        "output_chars_per_cell": int(pipe.get("output_chars_per_cell",
                                              defaults.OUTPUT_CHARS_PER_CELL)),
        "output_chars_per_notebook": int(pipe.get("output_chars_per_notebook",
                                                  defaults.OUTPUT_CHARS_PER_NOTEBOOK)),
    }


def older_releases(folder: Path = ROOT / "releases") -> dict:
    """``{assignment: {release: {notebook: cells}}}`` of the release records (checksums and
    hashes only, no source) that ``make exercises`` keeps, when there are any."""
    import json

    found: dict = {}
    for path in sorted(folder.glob("*/release-*.json")) if folder.is_dir() else []:
        record = json.loads(path.read_text())
        found.setdefault(record["assignment"], {})[str(record["release"])] = record["notebooks"]
    return found


def write_presubmit(out: Path) -> None:
    """The pre-submission check (tools/presubmit.py) and its presubmit.json, made from the
    edition's notebooks, the release records and the grader's limits."""
    import json

    _repo_on_path()
    from tools import presubmit

    shutil.copyfile(ROOT / "tools" / "presubmit.py", out / "presubmit.py")
    config = presubmit.build_config(out / "exercises", presubmit_limits(), older_releases())
    (out / presubmit.CONFIG_NAME).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")


def write_environment(out: Path) -> None:
    lines = "\n".join(requirements())
    (out / "requirements.txt").write_text(f"""\
# The student edition's environment. From this folder, in a virtual environment:
#   pip install -r requirements.txt
# torch, numpy and matplotlib as the course pins them, JupyterLab to open the notebooks, and
# nnbolts, the reference library of the book, from its copy in ./nnbolts.
{lines}
""")
    torch = next(r for r in requirements() if r.startswith("torch=="))
    (out / "README.md").write_text(README.replace("{torch}", torch))
    for name in LICENSES:
        shutil.copyfile(ROOT / name, out / name)


README = """\
# Training Neural Networks — student edition

An open course on how neural networks are trained: a book whose every number and figure was
computed by the code on its pages, `nnbolts`, the small reference library the book calls, and
exercise notebooks in which you write the library's functions yourself.

| folder | what |
|---|---|
| `book/` | the book, built: open `book/index.html` in a browser (no installation needed) |
| `exercises/` | one notebook per assignment: a `YOUR CODE HERE` cell per function, checks to run |
| `nnbolts/` | the reference library (source), installed by `requirements.txt` |
| `requirements.txt` | what the notebooks need: torch, numpy, matplotlib, JupyterLab and `nnbolts` |
| `presubmit.py` | the check to run before you hand a notebook in (with `presubmit.json`) |

## Set-up

You need Python 3.10 or later. In this folder:

```bash
python3 -m venv .venv
.venv/bin/pip install -r requirements.txt
.venv/bin/jupyter lab exercises/
```

(On Windows: `py -m venv .venv`, then `.venv\\Scripts\\pip` and `.venv\\Scripts\\jupyter`.) On a
machine without a GPU, `.venv/bin/pip install {torch} --index-url
https://download.pytorch.org/whl/cpu` before the second line installs the smaller CPU-only torch.
There is nothing to build: the book is already in `book/`. Inside `.venv/bin/python`,
`import nnbolts` works; every function's docstring gives its update rule, the equivalent PyTorch
call and the chapter that explains it.

## Doing an exercise

Read the chapter first: each one ends with a link to its notebook. In the notebook, replace each
`raise RuntimeError("not answered yet: ...")` line by your code and run the cell below it: it
checks a few values computed by hand. Until you answer, that check stops with the "not answered
yet" error. The grader runs more checks than the visible ones (every device, `float32` and
`float64`, more inputs) and its feedback names the input that differed. Keep each function's name
and signature, do not delete or edit the check cells, and hand in the notebook the way your
instructor says.

## Before you hand in

In this folder, run

```bash
.venv/bin/python presubmit.py exercises/05-schedules/schedules.ipynb
```

on your notebook (or on a folder: `presubmit.py exercises/`). It changes nothing; it tells you
whether the grader will find the notebook (its name and folder as released: a renamed copy is not
graded), whether every test cell, read-only cell and answer cell is still there as released (a
deleted or edited test cell scores 0), whether the file is within the grader's size limit, and
it prints what decides your score: the time and memory your notebook is run with, and how each
test cell is decided. Fix each problem it lists, then run it again.

## Licence

The code (`nnbolts/` and the code in the notebooks and in the book) is under the MIT licence
(`LICENSE`); the text of the book is under CC BY 4.0 (`LICENSE-BOOK`); the digits data set in
`nnbolts/nnbolts/datasets/` keeps its own licence (its `README.md`).
"""


# --- the whole edition -------------------------------------------------------------------------

def prepare(out: Path) -> None:
    """Empty ``out`` -- only when it is empty or an earlier edition (it holds the marker)."""
    if out.exists():
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SystemExit(f"{out} exists and is not a student edition: refusing to empty it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by tools/student_edition.py; emptied by the next build\n")


def build(out: Path = DEFAULT_OUT, *, book: bool = True, strict: bool = True) -> Path:
    """The student edition in ``out``: the book (unless ``book=False``), the notebooks, the
    library, the environment and the licences."""
    prepare(out)
    copy_notebooks(out)
    copy_library(out)
    write_environment(out)
    write_presubmit(out)
    if book:
        build_book(out, strict=strict)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the edition's folder (default: %(default)s)")
    parser.add_argument("--no-book", action="store_true",
                        help="leave the book out (the notebooks, nnbolts and the environment only)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = build(args.out.resolve(), book=not args.no_book)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"student edition: {files} files in {out} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
