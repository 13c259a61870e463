"""The similarity report: which students of an assignment wrote nearly the same code.

Reported, never scored: it tells the instructor where to look, and nothing in it changes a grade.

For each assignment, a student's *code* is the code of the cells they write: the solution cells
(nbgrader ``solution: true``) and any code cell they added, read from the prepared notebooks (what
the grader ran). Each cell is normalised before it is compared:

* its syntax tree (Python's ``ast``) is read, so comments, blank lines and layout do not count;
* docstrings and other bare string statements are dropped;
* every name the student binds (functions, arguments, variables, loop targets, ...) becomes one
  placeholder, so a copy whose identifiers were renamed matches its original; names the student
  does not bind (``torch``, ``range``, what the release imported) are kept, and a module imported
  under an alias is known by its full name (``import torch.nn.functional as G`` reads as
  ``torch.nn.functional``);
* every subtree of at least :data:`MIN_NODES` nodes is hashed (a compound statement -- ``def``,
  ``for``, ``if``, ``with`` -- by its header alone: the statements of its body count on their
  own, so that an edit inside a block costs one statement, not every block around it), and the
  hashes of the release's own code for that cell (the stub every student received) are taken
  away, once per occurrence.

Two students' similarity is the weighted Jaccard index of their multisets of subtree hashes,
``sum(min) / sum(max)`` over the hashes, in [0, 1]: 1 for the same code up to renaming, comments
and docstrings. A student whose code, without the stub, has fewer than :data:`MIN_WEIGHT` hashed
subtrees (a blank or nearly blank submission) is not compared, and a cell that does not parse is
left out (the report counts both). The pairs at or above the threshold are listed, the most
similar first, each with its most similar cells.

Short functions have few natural forms, so honest students can score high on them: a pair is a
reason to read both notebooks, not a finding.
"""

from __future__ import annotations

import ast
import builtins
import html
import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat

from instructor import limits

THRESHOLD = limits.SIMILARITY_THRESHOLD  # GradingPipeline.similarity_threshold overrides it
MIN_NODES = 3  # smallest subtree that counts (a lone name or constant says nothing)
MIN_WEIGHT = 8  # fewer hashed subtrees than this (after the stub is removed): not compared
TOP_CELLS = 3  # cells named per pair
TOP_PAIRS = 5  # pairs per assignment in the printed report

_BUILTINS = frozenset(dir(builtins))
_PLACEHOLDER = "_v"


# --------------------------------------------------------------------------------------------
# normalising one cell
# --------------------------------------------------------------------------------------------


def _parse(source: str) -> ast.Module | None:
    """The cell's tree, IPython's ``%magic`` and ``!shell`` lines left out; ``None`` if it does
    not parse."""
    lines = [line for line in source.splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _bound_names(tree: ast.AST) -> tuple[set[str], dict[str, str]]:
    """The names the code binds (renamed), and the import aliases (``{alias: module}``)."""
    bound: set[str] = set()
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"
    return bound - set(aliases), aliases


class _Normalise(ast.NodeTransformer):
    def __init__(self, bound: set[str], aliases: dict[str, str]):
        self.bound, self.aliases = bound, aliases

    def _name(self, name: str) -> str:
        if name in self.aliases:
            return self.aliases[name]
        if name in self.bound and name not in _BUILTINS:
            return _PLACEHOLDER
        return name

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name(id=self._name(node.id), ctx=ast.Load()), node)

    def visit_alias(self, node: ast.alias) -> ast.AST:
        node.asname = None
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg, node.annotation, node.type_comment = _PLACEHOLDER, None, None
        return node

    def _body(self, body: list) -> list:
        # docstrings and other bare strings say nothing about the code
        return [s for s in body if not (isinstance(s, ast.Expr)
                                         and isinstance(s.value, ast.Constant)
                                         and isinstance(s.value.value, str))]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for name in ("body", "orelse", "finalbody"):
            value = getattr(node, name, None)
            if isinstance(value, list):
                setattr(node, name, self._body(value))
        node = super().generic_visit(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.name = _PLACEHOLDER
            if not isinstance(node, ast.ClassDef):
                node.returns = None
        if isinstance(node, ast.ExceptHandler) and node.name:
            node.name = _PLACEHOLDER
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            node.names = [_PLACEHOLDER for _ in node.names]
        if isinstance(node, ast.AnnAssign):  # x: T = v reads as x = v
            if node.value is None:
                return None
            return ast.Assign(targets=[node.target], value=node.value)
        return node


_SKIPPED_FIELDS = frozenset({"ctx", "type_comment", "kind", "type_ignores"})
_BLOCKS = frozenset({"body", "orelse", "finalbody", "handlers", "cases"})


def _hash(node, out: Counter) -> tuple[int, int]:
    """``(hash, size)`` of a subtree; every subtree of at least :data:`MIN_NODES` nodes is
    counted into ``out``."""
    if isinstance(node, list):
        parts = [_hash(item, out) for item in node]
        return hash(("list", *(h for h, _ in parts))), sum(s for _, s in parts)
    if not isinstance(node, ast.AST):
        return hash(("const", type(node).__name__, repr(node))), 0
    size, parts, header = 1, [type(node).__name__], [type(node).__name__]
    for name, value in ast.iter_fields(node):
        if name in _SKIPPED_FIELDS:
            continue
        h, s = _hash(value, out)
        parts.append((name, h))
        size += s
        if name not in _BLOCKS:
            header.append((name, h))
    digest = hash(tuple(parts))
    if isinstance(node, ast.Module):
        pass
    elif len(header) < len(parts):
        # a compound statement counts by its header (``for v in zip(...)``, ``def f(...)``);
        # its body's statements count on their own, so an edit inside a block costs that
        # statement, not every block around it
        out[hash(("header", *header))] += 1
    elif size >= MIN_NODES:
        out[digest] += 1
    return digest, size


def fingerprint(source: str) -> Counter | None:
    """The multiset of normalised subtree hashes of one cell's code; ``None`` if it does not
    parse."""
    tree = _parse(source)
    if tree is None:
        return None
    bound, aliases = _bound_names(tree)
    try:
        tree = _Normalise(bound, aliases).visit(tree)
        out: Counter = Counter()
        _hash(tree, out)
    except RecursionError:
        return None
    return out


# --------------------------------------------------------------------------------------------
# comparing
# --------------------------------------------------------------------------------------------


def _shared(a: Counter, b: Counter) -> int:
    if len(a) > len(b):
        a, b = b, a
    return sum(min(n, b[h]) for h, n in a.items() if h in b)


def similarity(a: Counter, b: Counter) -> float:
    """Weighted Jaccard index of two multisets: ``sum(min) / sum(max)``, 0 if both are empty."""
    shared = _shared(a, b)
    total = sum(a.values()) + sum(b.values()) - shared
    return shared / total if total else 0.0


@dataclass
class Pair:
    a: str
    b: str
    score: float
    cells: list[tuple[str, float]] = field(default_factory=list)  # most similar cells first


@dataclass
class Result:
    """One assignment's comparison."""

    assignment: str
    threshold: float
    compared: list[str]  # students compared
    too_little: list[str]  # students with too little code of their own to compare
    unparsed: dict[str, int]  # student -> cells that did not parse (left out)
    pairs: list[Pair]  # at or above the threshold, most similar first
    notebooks: dict[str, list[str]] = field(default_factory=dict)  # student -> notebook names


def _student_cells(nb) -> list[tuple[str, str]]:
    """``(key, source)`` for the solution cells and the cells the student added."""
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        md = cell.metadata.get("nbgrader", {})
        if md.get("solution"):
            cells.append((md.get("grade_id") or f"cell {index}", cell.source))
        elif not md:
            cells.append((f"added cell {index}", cell.source))
    return cells


def stubs(release) -> dict[str, Counter]:
    """``{grade_id: fingerprint}`` of a released notebook's solution cells (the stubs)."""
    out = {}
    for key, source in _student_cells(release):
        if not key.startswith("added cell"):
            out[key] = fingerprint(source) or Counter()
    return out


def compare(assignment: str, submissions: dict[str, dict[str, object]],
            releases: dict[str, object], threshold: float = THRESHOLD) -> Result:
    """One assignment: ``submissions`` is ``{student: {notebook name: notebook}}`` and
    ``releases`` ``{notebook name: released notebook}``."""
    stub = {nb: stubs(release) for nb, release in releases.items()}
    prints: dict[str, dict[str, Counter]] = {}
    total: dict[str, Counter] = {}
    too_little, unparsed = [], {}
    for student in sorted(submissions):
        cells: dict[str, Counter] = {}
        for notebook, nb in sorted(submissions[student].items()):
            for key, source in _student_cells(nb):
                found = fingerprint(source)
                if found is None:
                    unparsed[student] = unparsed.get(student, 0) + 1
                    continue
                found -= stub.get(notebook, {}).get(key, Counter())
                if found:
                    name = key if len(submissions[student]) == 1 else f"{notebook}: {key}"
                    cells[name] = found
        whole = sum(cells.values(), Counter())
        if sum(whole.values()) < MIN_WEIGHT:
            too_little.append(student)
            continue
        prints[student], total[student] = cells, whole
    pairs = []
    for a, b in itertools.combinations(sorted(total), 2):
        score = similarity(total[a], total[b])
        if score >= threshold:
            # the cells that share the most code (not the highest index: a one-line quiz
            # answer is the same for everyone who got it right)
            per_cell = sorted(((_shared(prints[a][key], prints[b][key]), key,
                                similarity(prints[a][key], prints[b][key]))
                               for key in prints[a].keys() & prints[b].keys()),
                              key=lambda item: (-item[0], item[1]))
            pairs.append(Pair(a, b, score, [(key, s) for _, key, s in per_cell[:TOP_CELLS]]))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return Result(assignment, threshold, sorted(total), too_little, unparsed, pairs,
                  {s: sorted(nbs) for s, nbs in submissions.items()})


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------


def _shown(name: str) -> str:
    from instructor import intake

    return intake.shown(name)


def _link(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def _student_html(student: str, assignment: str, notebooks: list[str]) -> str:
    links = []
    for notebook in notebooks:
        label = "" if len(notebooks) == 1 else f" {html.escape(_shown(notebook))}"
        links.append(f'<a href="../{_link("feedback", student, assignment, notebook + ".html")}">'
                     f"feedback{label}</a>")
        links.append(f'<a href="../{_link("autograded", student, assignment, notebook + ".ipynb")}"'
                     f">notebook{label}</a>")
    return f"<b>{html.escape(_shown(student))}</b> ({', '.join(links)})"


def write_html(path: Path, results: list[Result]) -> None:
    """The page, ``<course>/.pipeline/similarity.html``: links go to ``../feedback`` and
    ``../autograded``; every name is escaped."""
    out = ['<!DOCTYPE html>', '<html><head><meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
           'style-src \'unsafe-inline\'">',
           "<title>Similarity report</title>",
           "<style>body{font-family:sans-serif;max-width:70em;margin:1em auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;"
           "text-align:left;vertical-align:top}</style></head><body>",
           "<h1>Similarity report</h1>",
           "<p>Reported, never scored. Pairs of students whose own code (solution cells and "
           "added cells, without the release's stub) is similar once identifiers are renamed "
           "and comments and docstrings dropped: weighted Jaccard index of the syntax subtrees, "
           "1 for the same code. Short functions have few natural forms: a pair is a reason to "
           "read both notebooks, not a finding.</p>"]
    for result in results:
        out.append(f"<h2>{html.escape(_shown(result.assignment))}</h2>")
        out.append(f"<p>{len(result.compared)} students compared; "
                   f"{len(result.pairs)} pairs at or above {result.threshold:g}.")
        if result.too_little:
            names = ", ".join(html.escape(_shown(s)) for s in result.too_little)
            out.append(f" Not compared (too little code of their own): {names}.")
        if result.unparsed:
            names = ", ".join(f"{html.escape(_shown(s))} ({n})"
                              for s, n in sorted(result.unparsed.items()))
            out.append(f" Cells left out because they do not parse: {names}.")
        out.append("</p>")
        if not result.pairs:
            continue
        out.append("<table><tr><th>similarity</th><th>student</th><th>student</th>"
                   "<th>most similar cells</th></tr>")
        for pair in result.pairs:
            cells = "<br>".join(f"{html.escape(_shown(key))}: {score:.2f}"
                                for key, score in pair.cells)
            out.append(f"<tr><td>{pair.score:.3f}</td>"
                       f"<td>{_student_html(pair.a, result.assignment, result.notebooks[pair.a])}"
                       f"</td><td>"
                       f"{_student_html(pair.b, result.assignment, result.notebooks[pair.b])}"
                       f"</td><td>{cells}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")


def summary(results: list[Result], top: int = TOP_PAIRS) -> dict:
    """What report.json keeps: per assignment, the counts and the ``top`` most similar pairs."""
    return {r.assignment: {"threshold": r.threshold, "compared": len(r.compared),
                           "not_compared": r.too_little, "pairs_reported": len(r.pairs),
                           "top": [asdict(p) for p in r.pairs[:top]]}
            for r in results}


def run(root: Path, graded: list[tuple[str, str, str, object]],
        releases: dict[str, dict[str, Path]], threshold: float = THRESHOLD) -> dict:
    """Compare every assignment of a run and write ``<root>/.pipeline/similarity.html``.

    ``graded`` holds ``(student, assignment, notebook name, prepared notebook)`` for every notebook
    that was read; ``releases`` is ``{assignment: {notebook name: released .ipynb}}``. Returns
    :func:`summary` with the page's path under ``"html"``."""
    by_assignment: dict[str, dict[str, dict[str, object]]] = {}
    for student, assignment, notebook, nb in graded:
        by_assignment.setdefault(assignment, {}).setdefault(student, {})[notebook] = nb
    results = []
    for assignment in sorted(by_assignment):
        released = {name: nbformat.read(str(p), as_version=4)
                    for name, p in releases.get(assignment, {}).items()}
        results.append(compare(assignment, by_assignment[assignment], released, threshold))
    page = root / ".pipeline" / "similarity.html"
    write_html(page, results)
    return {"html": str(page), "assignments": summary(results)}


if __name__ == "__main__":  # a quick look: python -m instructor.similarity a.py b.py
    import sys

    a, b = (fingerprint(Path(p).read_text()) or Counter() for p in sys.argv[1:3])
    print(json.dumps({"similarity": similarity(a, b)}))
