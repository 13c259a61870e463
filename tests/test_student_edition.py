"""The student edition (tools/student_edition.py) holds no answer, and its notebooks run as it is.

The edition is what students receive, so every file of it is scanned for what only the instructor
may hold (read from solutions/, the secrets' source):

* nbgrader's delimiters ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", ...);
* solution code: every line of 30 characters or more inside a solution region;
* hidden tests: every line (6 characters or more) inside a hidden-test region;
* quiz keys: no ``answer == ...`` comparison, and no quiz function that returns its key;
* the instructor guide: no page of it, no link to it, none of its lines;
* nbgrader in the environment: not in requirements.txt, not in nnbolts' dependencies, imported
  nowhere; no ``instructor`` or ``student_side`` package.

A secret line that the public sources also hold (the library, the book's other pages, the visible
part of the same assignment) is not a secret, and is left out of the scan; the tests count them.

Cheap by design: the edition is built without the book (the notebooks, nnbolts and the
environment) into a temporary folder; the book's HTML is scanned when ``make student-edition``
has built it (``_build/student/book``): ``test_the_built_edition_holds_no_secret`` scans every
file of ``_build/student`` and is skipped when there is none. The released notebooks are run in
one fresh Python with the edition's copy of nnbolts and nothing of the instructor's importable,
up to the first check, which the unanswered stub stops.
"""

from __future__ import annotations

import ast
import html
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import jupytext
import pytest

from instructor import feedback
from tools import student_edition

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "_build" / "student"
GUIDE = ROOT / "book" / "instructor_guide.md"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
QUIZ_KEY = re.compile(r"\banswer\s*==\s*[\"'{]")
NOT_FOR_STUDENTS = {"nbgrader", "instructor", "student_side", "jupyter-book", "jupyter_book"}
ALLOWED_IMPORTS = {"torch", "numpy", "matplotlib", "nnbolts"}
ASSIGNMENTS = sorted((ROOT / "solutions").glob("*/*.md"))


# --- the secrets, read from solutions/ -----------------------------------------------------------

def _regions(source: str, markers: tuple[str, str]) -> list[list[str]]:
    regions, inside = [], None
    for line in source.splitlines():
        if markers[0] in line:
            inside = []
        elif markers[1] in line and inside is not None:
            regions.append(inside)
            inside = None
        elif inside is not None:
            inside.append(line)
    return regions


def _outside(source: str) -> str:
    """The source without its solution and hidden-test regions: what a student sees of it."""
    out, inside = [], False
    for line in source.splitlines():
        if SOLUTION[0] in line or HIDDEN[0] in line:
            inside = True
        elif SOLUTION[1] in line or HIDDEN[1] in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


@cache
def public_text() -> str:
    """What is public anyway: the library, the book but its instructor pages, and the visible
    part of every assignment (one text; a secret found in it is no secret)."""
    texts = [p.read_text() for p in (ROOT / "lib" / "nnbolts").rglob("*")
             if p.suffix in (".py", ".md")]
    texts += [p.read_text() for p in (ROOT / "book").glob("*.md") if p != GUIDE]
    texts += [_outside(c.source) for md in ASSIGNMENTS for c in jupytext.read(md).cells]
    return "\n".join(texts)


def public(line: str) -> bool:
    return line in public_text()



@cache
def secrets() -> dict[str, list[tuple[str, str]]]:
    """{kind: [(where, line)]} of the secret lines, the public ones left out."""
    found: dict[str, list[tuple[str, str]]] = {"solution": [], "hidden test": []}
    for md in ASSIGNMENTS:
        where = str(md.relative_to(ROOT))
        for cell in jupytext.read(md).cells:
            for region in _regions(cell.source, SOLUTION):
                found["solution"] += [(where, s) for s in (line.strip() for line in region)
                                      if len(s) >= 30 and not public(s)]
            found["hidden test"] += [(where, s) for s in feedback.hidden_lines(cell.source)
                                     if not public(s)]
    return found


@cache
def quiz_keys() -> list[tuple[str, str, str]]:
    """(assignment, quiz function, the solution's return line) for every keyed question."""
    keys = []
    for md in ASSIGNMENTS:
        cells = jupytext.read(md).cells
        answers = {}
        for cell in cells:
            for region in _regions(cell.source, SOLUTION):
                returns = [line.strip() for line in region if line.strip().startswith("return ")]
                for name in re.findall(r"^def\s+(\w+)", cell.source, re.M):
                    answers[name] = returns
        for cell in cells:
            hidden = "\n".join(feedback.hidden_lines(cell.source))
            if QUIZ_KEY.search(hidden):
                for name in set(re.findall(r"\banswer\s*=\s*(\w+)\(", cell.source)):
                    keys += [(md.parent.name, name, line) for line in answers.get(name, [])]
    return keys


def test_the_secrets_are_found():
    """The scan looks for something: the lines, keys and guide lines it checks exist."""
    found = secrets()
    assert len(found["solution"]) >= 50 and len(found["hidden test"]) >= 50, {
        k: len(v) for k, v in found.items()}
    keys = quiz_keys()
    assert len({(a, f) for a, f, _ in keys}) >= 10, keys
    assert len(guide_lines()) >= 100


@cache
def guide_lines() -> frozenset[str]:
    """The instructor guide's own lines (30 characters or more, found on no public page)."""
    return frozenset(s for s in (line.strip().lstrip("#* ").strip()
                                 for line in GUIDE.read_text().splitlines())
                     if len(s) >= 30 and not public(s))


# --- scanning a folder -------------------------------------------------------------------------

TAG = re.compile(r"<[^>]+>")


def variants(path: Path) -> list[str]:
    """The texts a reader of ``path`` could see: the file as it is and, for HTML, its text
    without tags; for JSON (notebooks), every string in it. [] for a binary file."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    texts = [text]
    if path.suffix in (".html", ".htm", ".xml", ".svg"):
        texts.append(html.unescape(TAG.sub("", text)))
    if path.suffix in (".ipynb", ".json"):
        try:
            texts.append("\n".join(_strings(json.loads(text))))
        except json.JSONDecodeError:
            pass
    return texts


def leaks(folder: Path) -> list[str]:
    """Every secret found in a file of ``folder``, as 'file: what'."""
    found = secrets()
    lines = {kind: {line: where for where, line in items} for kind, items in found.items()}
    guide = guide_lines()
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if "instructor_guide" in path.name:
            problems.append(f"{rel}: a page of the instructor guide")
        if path.suffix == ".py" and re.search(r"^\s*(import|from)\s+nbgrader\b",
                                              path.read_text(errors="replace"), re.M):
            problems.append(f"{rel}: imports nbgrader")
        if set(rel.parts[:-1]) & {"instructor", "student_side", "solutions"}:
            problems.append(f"{rel}: an instructor package")
        for text in variants(path):
            problems += [f"{rel}: {marker!r}" for marker in MARKERS if marker in text]
            if QUIZ_KEY.search(text):
                problems.append(f"{rel}: a quiz key {QUIZ_KEY.search(text).group(0)!r}")
            if re.search(r"instructor_guide\.(html|md|ipynb)", text):
                problems.append(f"{rel}: a link to the instructor guide")
            stripped = {line.strip() for line in text.splitlines()}
            stripped |= {line.lstrip("#*-> ").strip() for line in stripped}  # markdown's marks
            small = len(text) < 2_000_000  # substrings too, where that is cheap
            for kind, items in lines.items():
                for line, where in items.items():
                    if line in stripped or (small and line in text):
                        problems.append(f"{rel}: {kind} line of {where}: {line}")
            for line in guide:
                if line in stripped or (small and line in text):
                    problems.append(f"{rel}: a line of the instructor guide: {line}")
            for assignment, name, key in quiz_keys():
                for match in re.finditer(rf"def\s+{name}\s*\(", text):
                    body = text[match.end():match.end() + 3000].split("\ndef ")[0]
                    if key in body:
                        problems.append(f"{rel}: the key of {assignment}'s {name}: {key}")
    return sorted(set(problems))


def requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(re.split(r"[=<>!~\[; ]", line)[0].lower())
    return names


# --- the edition -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    """The edition without its book (notebooks, nnbolts, environment, licences)."""
    return student_edition.build(tmp_path_factory.mktemp("edition") / "student", book=False)


def test_the_edition_holds_what_students_need(edition):
    released = sorted(p.relative_to(ROOT / "exercises")
                      for p in (ROOT / "exercises").glob("*/*.ipynb"))
    assert sorted(p.relative_to(edition / "exercises")
                  for p in (edition / "exercises").glob("*/*.ipynb")) == released
    for rel in released:
        assert ((edition / "exercises" / rel).read_bytes()
                == (ROOT / "exercises" / rel).read_bytes()), rel
    assert (edition / "nnbolts" / "nnbolts" / "__init__.py").is_file()
    assert (edition / "nnbolts" / "nnbolts" / "datasets" / "digits.csv.gz").is_file()
    for name in ("README.md", "requirements.txt", "LICENSE", "LICENSE-BOOK"):
        assert (edition / name).is_file(), name
    assert "The Training Neural Networks contributors" in (edition / "LICENSE").read_text()
    assert "CC BY 4.0" in (edition / "LICENSE-BOOK").read_text()


def test_the_environment_has_no_instructor_tools(edition):
    names = requirement_names(edition / "requirements.txt")
    assert {"torch", "numpy", "matplotlib", "./nnbolts"} <= set(names), names
    assert {"jupyterlab", "notebook"} & set(names), f"no Jupyter front end in {names}"
    assert not NOT_FOR_STUDENTS & set(names), names
    assert "torch==2.13.0" in (edition / "requirements.txt").read_text().split()
    import tomllib

    project = tomllib.loads((edition / "nnbolts" / "pyproject.toml").read_text())["project"]
    assert not NOT_FOR_STUDENTS & {re.split(r"[=<>!~\[; ]", d)[0].lower()
                                   for d in project["dependencies"]}


def test_the_edition_holds_no_secret(edition):
    assert leaks(edition) == []


def test_the_scan_finds_a_planted_secret(tmp_path):
    """Each kind of secret, planted in a copy of a file, is found."""
    solution = next(line for _, line in secrets()["solution"])
    hidden = next(line for _, line in secrets()["hidden test"])
    assignment, name, key = quiz_keys()[0]
    guide = sorted(guide_lines())[0]
    (tmp_path / "page.html").write_text(
        f"<pre><span>{html.escape(solution)}</span>\n{html.escape(hidden)}</pre>")
    (tmp_path / "nb.ipynb").write_text(json.dumps(
        {"cells": [{"source": [f"def {name}():\n", f"    {key}\n"]}]}))
    (tmp_path / "guide.md").write_text(f"# {guide}\n\nanswer == \"B\"\n")
    (tmp_path / "instructor_guide.html").write_text("<p>the guide</p>")
    (tmp_path / "links.html").write_text('<a href="book/instructor_guide.html">guide</a>')
    found = "\n".join(leaks(tmp_path))
    for what in ("solution line", "hidden test line", f"the key of {assignment}'s {name}",
                 "a line of the instructor guide", "a quiz key", "a page of the instructor guide",
                 "a link to the instructor guide"):
        assert what in found, (what, found)


def test_the_built_edition_holds_no_secret():
    """Every file of ``_build/student``, the book's HTML included, when it has been built."""
    if not (BUILT / "book" / "index.html").is_file():
        pytest.skip("_build/student/book does not exist: `make student-edition` builds it")
    assert not list(BUILT.rglob("*instructor_guide*"))
    assert leaks(BUILT) == []
    pages = {p.relative_to(BUILT / "book").as_posix() for p in (BUILT / "book").rglob("*.html")}
    assert "book/intro.html" in pages and "book/library.html" in pages, sorted(pages)


# --- the released notebooks run with only torch, numpy, matplotlib and nnbolts ---------------

RUNNER = r"""
import importlib.abc, importlib.machinery, json, os, sys, traceback
LIB, NOTEBOOKS = sys.argv[1], sys.argv[2:]
BLOCKED = {"instructor", "student_side", "nbgrader", "tools", "solutions"}


class EditionOnly(importlib.abc.MetaPathFinder):
    # nnbolts from the edition's copy; nothing of the instructor's
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} in the student edition")
        if name == "nnbolts":
            return importlib.machinery.PathFinder.find_spec(name, [LIB])
        return None


sys.meta_path.insert(0, EditionOnly())
results = {}
for path in NOTEBOOKS:
    with open(path) as f:
        cells = json.load(f)["cells"]
    os.chdir(os.path.dirname(path))
    namespace = {"__name__": "__main__"}
    ran, stop = 0, None
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        graded = cell.get("metadata", {}).get("nbgrader", {}).get("grade", False)
        try:
            exec(compile(source, f"{path}:{ran}", "exec"), namespace)
        except BaseException as error:
            stop = {"graded": graded, "type": type(error).__name__, "message": str(error),
                    "cell": cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"),
                    "traceback": traceback.format_exc(limit=-3)}
            break
        ran += 1
    results[path] = {"ran": ran, "stop": stop}
import nnbolts
results["nnbolts"] = nnbolts.__file__
results["modules"] = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps(results))
"""


def stubs(notebook: Path) -> set[tuple[str, str]]:
    """(exception, message) of the ``raise`` lines that stand for an answer in ``notebook``."""
    found = set()
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell["source"])
        for match in re.finditer(r"YOUR CODE HERE\s*\n\s*raise\s+(\w+)\((.*)\)\s*$", source, re.M):
            found.add((match.group(1), ast.literal_eval(match.group(2) or "''")))
    return found


def notebook_imports(notebook: Path) -> set[str]:
    names = set()
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def test_the_notebooks_import_only_what_the_edition_installs(edition):
    for notebook in sorted((edition / "exercises").glob("*/*.ipynb")):
        extra = notebook_imports(notebook) - ALLOWED_IMPORTS - set(sys.stdlib_module_names)
        assert not extra, f"{notebook.name} imports {extra}, which the edition does not install"


def test_the_notebooks_run_to_their_first_check(edition, tmp_path):
    """Every cell before the first check runs; the first check stops at the unanswered stub."""
    work = tmp_path / "exercises"  # a copy: what the notebooks write does not land in the edition
    shutil.copytree(edition / "exercises", work)
    notebooks = sorted(work.glob("*/*.ipynb"))
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-I", "-c", RUNNER, str(edition / "nnbolts"), *map(str, notebooks)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["nnbolts"].startswith(str(edition / "nnbolts" / "nnbolts")), report["nnbolts"]
    assert not {"nbgrader", "instructor", "student_side"} & set(report["modules"])
    for notebook in notebooks:
        outcome = report[str(notebook)]
        stop = outcome["stop"]
        assert stop is not None, f"{notebook.name}: ran to the end, but its stubs should stop it"
        expected = stubs(notebook) | {("NotImplementedError", stop["message"])}
        assert stop["graded"] and (stop["type"], stop["message"]) in expected, (
            f"{notebook.name}: cell {outcome['ran']} ({stop['cell']}) stopped with "
            f"{stop['type']}: {stop['message']}\n{stop['traceback']}")
