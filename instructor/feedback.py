"""Make an autograded notebook safe to hand back: no hidden test, no reference solution.

The autograded notebook (kept for the instructor) holds the restored test cells, hidden tests
included, and tracebacks that quote the lines of those cells. The copy the feedback HTML is made
from keeps the student's code, every score, and each failure's message and hint, but:

* hidden-test regions of test cells are replaced by one comment line;
* error outputs of test cells are cut to ``ExceptionName: message`` (a traceback quotes the failing
  line of the test cell, which may be a hidden one);
* any output line that repeats a line of a hidden-test region (student code can read the source
  of the cell being executed and print it) is blanked out, in every cell.

The reference solutions never reach the autograded notebook: solution cells hold the student's
code. Nothing here changes what nbgrader stored in the gradebook.

The page itself must be safe to open. A student controls the text of every cell and output, so
``sanitize`` also makes the copy harmless to render, and the page is rendered with the template
``instructor/templates/feedback_safe`` (nbgrader's feedback template with its head and the
student-facing blocks replaced; ``converter_config`` sets it up, ``pipeline._feedback_one``
uses it):

* outputs keep only ``text/plain`` (escaped by nbconvert), ``image/png`` and ``image/jpeg``
  (checked to be base64, written as a ``data:`` URL) and ``image/svg+xml`` (written only as an
  ``<img>`` ``data:`` URL: a browser runs no script and loads nothing for an SVG image). Every
  other type -- ``text/html``, ``text/markdown``, ``text/latex``, ``application/javascript``,
  widget views, JSON -- is dropped; an output with no ``text/plain`` of its own shows the
  dropped text as ``text/plain``. Output metadata is rebuilt (only numeric width/height);
  outputs, streams, tracebacks and execution counts are given their nbformat types;
* raw cells and cells of unknown type become markdown showing their text as code; markdown
  attachments and the notebook's widget state are dropped; a cell whose nbgrader ``grade_id``
  is not an identifier loses its nbgrader metadata (it cannot be a gradebook cell);
* markdown is rendered and then cleaned by :func:`clean_html` (a whitelist of tags and
  attributes; links only to http(s), mailto or the page; images only from ``data:`` PNG, JPEG
  or GIF; anything else shown as text);
* the page carries a Content-Security-Policy that allows only its own scripts (by hash:
  MathJax's configuration, its loader and MathJax itself), images from ``data:`` URLs and inline
  styles: no other script, no event handler, no ``javascript:`` URL runs, and nothing is
  fetched -- the page makes no request at all;
* MathJax 3 (``tex-svg-full``, from the ``sphinx-mathjax-offline`` copy the book uses) is in
  the page, gzipped, with its ``ui/safe`` filter, ``require``/``autoload``/``html`` off and its
  menu off: math typesets offline and no TeX loads an extension or makes a link to script;
* long lines wrap (CSS ``white-space: pre-wrap; overflow-wrap: anywhere``);
* the notebook's outputs are capped (:data:`OUTPUT_LIMIT` characters in all, weighed by what
  they become in HTML; :data:`CELL_OUTPUT_LIMIT` for one output of a graded cell, which is
  always shown) and so are the sources of cells other than graded ones (:data:`SOURCE_LIMIT`);
  what is cut is replaced by an "output truncated" note.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from functools import lru_cache
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
PLACEHOLDER = "# (hidden tests: not shown in feedback)"
REDACTED = "[a line of the hidden tests was removed from this output]"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def hidden_lines(source: str) -> list[str]:
    """The stripped, non-trivial lines inside the hidden-test regions of ``source``."""
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside and len(line.strip()) >= 6:
            lines.append(line.strip())
    return lines


def strip_hidden(source: str) -> str:
    out, inside = [], False
    for line in source.splitlines():
        if BEGIN in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + PLACEHOLDER)
        elif END in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _scrub(text: str, secrets: list[str]) -> str:
    if not secrets:
        return text
    kept = []
    for line in text.split("\n"):
        plain = _ANSI.sub("", line)
        kept.append(REDACTED if any(s in plain for s in secrets) else line)
    return "\n".join(kept)


def sanitize(nb: NotebookNode) -> NotebookNode:
    """Sanitize an autograded notebook in place for feedback; see the module docstring."""
    _normalize(nb)
    _strip_secrets(nb)
    return make_safe(nb)


def _normalize(nb: NotebookNode) -> None:
    """Give every field the type nbformat says it has (a hand-edited file may not), so that
    nothing below or in the template fails on one student's notebook."""
    if not isinstance(nb.get("metadata"), dict):
        nb.metadata = NotebookNode()
    if not isinstance(nb.get("cells"), list):
        nb.cells = []
    nb.cells = [c for c in nb.cells if isinstance(c, dict)]
    nb.nbformat, nb.nbformat_minor = 4, 5
    for key in set(nb) - {"cells", "metadata", "nbformat", "nbformat_minor"}:
        del nb[key]
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell.get("id"), str) or not _CELL_ID.fullmatch(cell.id):
            cell.id = f"cell-{i}"
        # the metadata the template reads, with nbformat's types; the rest is dropped
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        cell.metadata = NotebookNode()
        if isinstance(meta.get("nbgrader"), dict):
            cell.metadata.nbgrader = meta["nbgrader"]
        tags = meta.get("tags")
        if isinstance(tags, list) and all(isinstance(t, str) and "," not in t for t in tags):
            cell.metadata.tags = tags
        cell.source = _as_text(cell.get("source", ""))
        if not isinstance(cell.get("cell_type"), str):
            cell.cell_type = "raw"
        if cell.cell_type != "code":
            continue
        outs = cell.get("outputs")
        cell.outputs = [o for o in outs if isinstance(o, dict)] if isinstance(outs, list) else []
        for out in cell.outputs:
            if not isinstance(out.get("output_type"), str):
                out.output_type = ""
            if isinstance(out.get("data"), dict):
                for mime, value in list(out.data.items()):
                    if isinstance(value, list) and all(isinstance(v, str) for v in value):
                        out.data[mime] = "".join(value)
            for key in ("text", "ename", "evalue"):
                if key in out:
                    out[key] = _as_text(out[key])
            if "traceback" in out:
                lines = out["traceback"]
                out["traceback"] = ([_as_text(x) for x in lines] if isinstance(lines, list)
                                    else [_as_text(lines)])
            if "data" in out and not isinstance(out["data"], dict):
                out["data"] = {}
            if out.get("output_type") == "error":
                out.setdefault("ename", "")
                out.setdefault("evalue", "")
                out.setdefault("traceback", [])


def _strip_secrets(nb: NotebookNode) -> None:
    secrets: list[str] = []
    for cell in nb.cells:
        secrets.extend(hidden_lines(cell.source))
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        is_test = bool(md.get("grade")) and not md.get("solution")
        if BEGIN in cell.source:
            cell.source = strip_hidden(cell.source)
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "error":
                if is_test:
                    message = f"{out.ename}: {out.evalue}" if out.evalue else out.ename
                    out.traceback = [_scrub(_ANSI.sub("", message), secrets)]
                else:
                    out.traceback = [_scrub(line, secrets) for line in out.traceback]
                out.evalue = _scrub(out.evalue, secrets)
            elif out.output_type == "stream":
                out.text = _scrub(out.text, secrets)
            elif "data" in out:
                for mime, value in list(out.data.items()):
                    if isinstance(value, str):
                        out.data[mime] = _scrub(value, secrets)


# --------------------------------------------------------------------------------------------
# A page safe to open: what reaches the template, and how big it may be

#: Output of a notebook shown in its feedback, in characters weighed by what they become in the
#: HTML (see ``_cost``): about the HTML the outputs make, bounding the page at a few MB.
OUTPUT_LIMIT = 2_000_000
#: One output of a graded cell (a test's message, a written answer's display): always shown,
#: whatever the notebook's other outputs used, up to this size.
CELL_OUTPUT_LIMIT = 20_000
#: Sources of the cells that are not graded (graded ones: GRADED_SOURCE_LIMIT each, always shown).
SOURCE_LIMIT = 250_000
GRADED_SOURCE_LIMIT = 200_000
#: What one cell or output costs in HTML besides its text (its wrapping elements).
_CELL_COST, _OUTPUT_COST = 600, 300
#: Colour codes kept in one output at most (a page with 50 000 coloured spans renders slowly).
_MAX_ANSI = 1000
#: Cells treated as graded (kept whatever the budget) at most: an assignment has far fewer.
_MAX_GRADED = 200

SAFE_MIMES = ("text/plain", "image/png", "image/jpeg", "image/svg+xml")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_CELL_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_GRADE_ID = re.compile(r"[A-Za-z0-9_\-]{1,200}")
_PARTIAL_ANSI = re.compile(r"\x1b[^A-Za-z]*$")
_MATH = re.compile(r"\$|\\\(|\\\[|\\begin\{")


def _cost(text: str) -> int:
    """Characters ``text`` may become in the page: HTML escapes and ANSI colours grow it."""
    return (len(text) + 4 * (text.count("<") + text.count(">") + text.count("&")
                             + text.count('"')) + 30 * text.count("\x1b"))


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _note(hidden: int, what: str = "characters") -> str:
    return (f"[output truncated in the feedback: {hidden} more {what} not shown; the "
            "notebook's output exceeds what a feedback page holds]")


def _cut(text: str, budget: int) -> tuple[str, int]:
    """``text`` cut to cost at most ``budget`` (then with a note), and what it costs. Text with
    more than ``_MAX_ANSI`` colour codes loses them (each would be an element of the page)."""
    if text.count("\x1b") > _MAX_ANSI:
        text = _ANSI.sub("", text)
    cost = _cost(text)
    if cost <= budget:
        return text, cost
    n = min(len(text), max(budget, 0))
    while n > 0 and _cost(text[:n]) > budget:
        n = max(0, n * budget // _cost(text[:n]) - 1)
    head = _PARTIAL_ANSI.sub("", text[:n])
    hidden = len(text) - len(head)
    if head and not head.endswith("\n"):
        head += "\n"
    head += _note(hidden)
    return head, _cost(head)


class _Budget:
    def __init__(self, size: int):
        self.left = size

    def take(self, text: str, floor: int = 0) -> str:
        """``text`` within what is left (at least ``floor`` characters of it, never charged
        beyond what is left)."""
        kept, cost = _cut(text, max(self.left, floor))
        self.left = max(0, self.left - cost)
        return kept


def _safe_metadata(meta, mime: str) -> dict:
    out = {}
    entry = meta.get(mime) if isinstance(meta, dict) else None
    if isinstance(entry, dict):
        for key in ("width", "height"):
            value = entry.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e5:
                out[key] = int(value)
    return {mime: out} if out else {}


def _safe_bundle(out, budget: _Budget, floor: int):
    """A display_data/execute_result output reduced to the safe MIME types; what was dropped
    is said in its text/plain."""
    data = out.get("data") if isinstance(out.get("data"), dict) else {}
    kept, metadata, notes = {}, {}, []
    for mime in ("image/png", "image/jpeg", "image/svg+xml"):
        if mime not in data or kept:
            continue
        if mime == "image/svg+xml":
            value = _as_text(data[mime])
            cost = len(value) * 4 // 3 + _OUTPUT_COST  # written base64
        else:
            value = "".join(_as_text(data[mime]).split())
            if not value or len(value) % 4 or not _BASE64.fullmatch(value):
                notes.append(f"[{mime} output that is not base64: not shown]")
                continue
            cost = len(value) + _OUTPUT_COST
        if cost > max(budget.left, floor):
            notes.append(_note(len(value), f"characters of a {mime} image"))
            continue
        budget.left = max(0, budget.left - cost)
        kept[mime] = value
        metadata.update(_safe_metadata(out.get("metadata"), mime))
    dropped = [m for m in data if m not in SAFE_MIMES]
    if "text/plain" in data:
        text = _as_text(data["text/plain"])
    elif kept:
        text = None
    elif dropped and isinstance(data[dropped[0]], str):
        text = f"[{dropped[0]} output, shown as text]\n" + data[dropped[0]]
    elif dropped:  # JSON: not scrubbed of hidden-test lines line by line, so not shown
        text = f"[{dropped[0]} output: not shown in feedback]"
    else:
        text = "" if notes else "[an output with no data]"
    if text is not None:
        kept["text/plain"] = budget.take("\n".join([*notes, text]) if notes else text, floor)
    if out.get("output_type") == "execute_result":
        count = out.get("execution_count")
        return nbformat.v4.new_output(
            "execute_result", data=kept, metadata=metadata,
            execution_count=count if isinstance(count, int) and count >= 0
            and not isinstance(count, bool) else None)
    return nbformat.v4.new_output("display_data", data=kept, metadata=metadata)


def _safe_output(out, budget: _Budget, floor: int):
    kind = out.get("output_type") if isinstance(out, dict) else None
    if kind == "stream":
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name,
                                      text=budget.take(_as_text(out.get("text", "")), floor))
    if kind == "error":
        lines = out.get("traceback")
        lines = [_as_text(x) for x in lines] if isinstance(lines, list) else []
        text = budget.take("\n".join(lines), floor)
        return nbformat.v4.new_output(
            "error", ename=budget.take(_as_text(out.get("ename", "")), floor)[:1000],
            evalue=budget.take(_as_text(out.get("evalue", "")), floor),
            traceback=text.split("\n") if text else [])
    if kind in ("display_data", "execute_result"):
        return _safe_bundle(out, budget, floor)
    return None


def _graded(cell) -> bool:
    md = cell.metadata.get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    return isinstance(md, dict) and bool(md.get("grade") or md.get("solution") or md.get("task"))


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _note_cell(hidden: int):
    return nbformat.v4.new_markdown_cell(
        f"*[{hidden} cell(s) not shown: the notebook exceeds what a feedback page holds]*")


def make_safe(nb: NotebookNode) -> NotebookNode:
    """Reduce ``nb`` (in place) to what the feedback template can render without running or
    loading anything, and cap its size; see the module docstring."""
    outputs, sources = _Budget(OUTPUT_LIMIT), _Budget(SOURCE_LIMIT)
    for key in list(nb.metadata):
        if key not in ("kernelspec", "language_info", "nbgrader") or not isinstance(
                nb.metadata[key], dict):
            del nb.metadata[key]
    seen_ids, graded_seen, cells, dropped = set(), 0, [], 0
    for cell in nb.cells:
        if not isinstance(cell.get("metadata"), dict):
            cell.metadata = NotebookNode()
        md = cell.metadata.get("nbgrader")
        if md is not None:
            grade_id = md.get("grade_id") if isinstance(md, dict) else None
            if (not isinstance(grade_id, str) or not _GRADE_ID.fullmatch(grade_id)
                    or grade_id in seen_ids):
                del cell.metadata["nbgrader"]
            else:
                seen_ids.add(grade_id)
        source = _as_text(cell.get("source", ""))
        if cell.get("cell_type") not in ("code", "markdown"):
            cell = NotebookNode(cell_type="markdown", id=cell.get("id") or "raw",
                                metadata=cell.metadata, source=_fence(source))
            source = cell.source
        cell.pop("attachments", None)
        graded = _graded(cell) and graded_seen < _MAX_GRADED
        graded_seen += graded
        if graded:
            cut, _ = _cut(source, GRADED_SOURCE_LIMIT)
        elif sources.left <= 0:
            dropped += 1
            continue
        else:
            cut, cost = _cut(source, sources.left)
            sources.left = max(0, sources.left - cost - _CELL_COST)
        if dropped:
            cells.append(_note_cell(dropped))
            dropped = 0
        if cut != source and cell.cell_type == "code":
            # the note ends the source as a comment line, not as code that seems to run
            body, _, note = cut.rpartition("\n")
            cut = f"{body}\n# {note}"
        cell.source = cut
        if cell.cell_type == "code":
            count = cell.get("execution_count")
            cell.execution_count = (count if isinstance(count, int) and count >= 0
                                    and not isinstance(count, bool) else None)
            floor = CELL_OUTPUT_LIMIT if graded else 0
            kept, hidden = [], 0
            raw = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
            for out in raw:
                if not graded and outputs.left <= 0:
                    hidden += 1
                    continue
                outputs.left -= _OUTPUT_COST
                safe = _safe_output(out, outputs, floor)
                if safe is not None:
                    kept.append(safe)
            if hidden:
                kept.append(nbformat.v4.new_output(
                    "stream", name="stdout", text=_note(hidden, "output(s)")))
            cell.outputs = kept
        cells.append(cell)
    if dropped:
        cells.append(_note_cell(dropped))
    nb.cells = cells
    return nb


# --------------------------------------------------------------------------------------------
# Rendering: markdown cleaned, MathJax inline, a Content-Security-Policy

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "feedback_safe"

_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl",
         "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol",
         "p", "pre", "s", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td",
         "tfoot", "th", "thead", "tr", "u", "ul"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_LINK = re.compile(r"(https?://|mailto:|#)[^\s]*", re.IGNORECASE)
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", re.IGNORECASE)


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if tag == "a":
        return ((name == "href" and bool(_LINK.fullmatch(value.strip())))
                or name == "title" or (name == "class" and value == "anchor-link"))
    if tag == "img":
        return ((name == "src" and bool(_DATA_IMAGE.fullmatch(value.strip())))
                or name in ("alt", "title")
                or (name in ("width", "height") and value.isdigit()))
    if tag in _HEADINGS:
        return name == "id"
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan") and value.isdigit() or (
            name == "align" and value in ("left", "right", "center"))
    return False


@lru_cache(maxsize=1)
def _cleaner():
    import bleach

    return bleach.sanitizer.Cleaner(
        tags=_TAGS, attributes=_allowed_attribute,
        protocols={"http", "https", "mailto", "data"}, strip=False, strip_comments=True)


def clean_html(text: str) -> str:
    """Rendered markdown cleaned for a feedback page: tags and attributes from a whitelist
    (links to http(s), mailto or the page; images only from data: URLs); any other tag is
    shown as text, comments are dropped."""
    return _cleaner().clean(str(text))


def _mathjax_dir() -> Path:
    import sysconfig

    for key in ("purelib", "platlib"):
        folder = Path(sysconfig.get_paths()[key]) / "sphinx-mathjax-offline" / "static" / "mathjax"
        if (folder / "tex-svg-full.js").is_file():
            return folder
    raise FileNotFoundError("MathJax not found: install sphinx-mathjax-offline (requirements)")


MATHJAX_CONFIG = """window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
    displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
    processEscapes: true,
    processEnvironments: true,
    packages: {"[-]": ["require", "autoload", "html"]}
  },
  options: {
    enableMenu: false,
    safeOptions: {
      allow: {URLs: "safe", classes: "none", cssIDs: "none", styles: "none"},
      safeProtocols: {http: true, https: true, file: false, javascript: false, data: false}
    }
  },
  svg: {fontCache: "global"},
  startup: {typeset: true}
};"""


# MathJax is in the page gzipped (base64): about 0.96 MB instead of 2.3 MB. The loader unpacks it
# with the browser's DecompressionStream and inserts it as an inline script, which the
# Content-Security-Policy lets run by its hash, like the two scripts written in the page. A
# browser without DecompressionStream (before 2023) shows the TeX source instead of the math.
MATHJAX_LOADER = """(function () {
  var packed = "@PACKED@";
  if (!window.DecompressionStream) return;
  var bytes = Uint8Array.from(atob(packed), function (c) { return c.charCodeAt(0); });
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip")))
    .text().then(function (code) {
      var script = document.createElement("script");
      script.textContent = code;
      document.head.appendChild(script);
    });
})();"""


def _hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


@lru_cache(maxsize=2)
def page_resources(math: bool = True) -> dict:
    """What the template puts in the page's head: the Content-Security-Policy and, for a page
    with math, MathJax's configuration and a loader that holds MathJax and its safe filter
    gzipped (the scripts allowed by their hashes, nothing else)."""
    import nbgrader

    css = (Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "static" /
           "node_modules" / "bootstrap" / "dist" / "css" / "bootstrap.min.css")
    # nbgrader's bootstrap, without its icon font (a file beside bootstrap, not in the page)
    res = {"mathjax": "", "bootstrap": re.sub(r"@font-face\s*\{[^}]*\}", "",
                                              css.read_text(encoding="utf-8"))}
    scripts = []
    if math:
        folder = _mathjax_dir()
        # MathJax and its safe filter, run as one script (the filter must follow at once)
        code = ((folder / "tex-svg-full.js").read_text(encoding="utf-8") + ";\n"
                + (folder / "ui" / "safe.js").read_text(encoding="utf-8"))
        packed = base64.b64encode(gzip.compress(code.encode(), 9, mtime=0)).decode()
        res["mathjax"] = True
        res["mathjax_config"] = MATHJAX_CONFIG
        res["mathjax_loader"] = MATHJAX_LOADER.replace("@PACKED@", packed)
        # the config and the loader are in the page; MathJax is the script the loader inserts
        scripts = [res["mathjax_config"], res["mathjax_loader"], code]
    script_src = " ".join(_hash(s) for s in scripts) or "'none'"
    res["csp"] = ("default-src 'none'; "
                  f"script-src {script_src}; style-src 'unsafe-inline'; img-src data:; "
                  "font-src data:; base-uri 'none'; form-action 'none'")
    return res


def has_math(nb: NotebookNode) -> bool:
    return any(cell.cell_type == "markdown" and _MATH.search(cell.source) for cell in nb.cells)


@lru_cache(maxsize=1)
def _page_preprocessor():
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool

    class FeedbackPage(Preprocessor):
        """Puts :func:`page_resources` in ``resources['grading']``; escapes the notebook's
        name (nbgrader's template writes it as HTML)."""

        enabled = Bool(True)  # GenerateFeedback registers its preprocessors as they are

        def preprocess(self, nb, resources):
            resources["grading"] = page_resources(has_math(nb))
            info = resources.get("nbgrader")
            if isinstance(info, dict) and "notebook" in info:
                info["notebook"] = html.escape(str(info["notebook"]))
            return nb, resources

    return FeedbackPage


def __getattr__(name):  # FeedbackPage without importing nbconvert with this module
    if name == "FeedbackPage":
        cls = _page_preprocessor()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


def converter_config(config):
    """A copy of the nbgrader ``config`` that renders feedback with the safe template:
    ``GenerateFeedback(config=converter_config(config))`` (pipeline._feedback_one)."""
    import copy
    import os

    import nbgrader
    from traitlets.config import Config

    config = copy.deepcopy(config) if config is not None else Config()
    formgrader = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions",
                              "formgrader")
    nbgrader_templates = os.path.join(formgrader, "templates")
    config.HTMLExporter.template_name = TEMPLATE
    config.HTMLExporter.template_file = "page.html.j2"
    config.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), nbgrader_templates]
    # what GenerateFeedback sets too (bootstrap.min.css), so that a bare HTMLExporter renders
    # the same page (tests/test_feedback.py)
    config.HTMLExporter.extra_template_paths = [
        os.path.join(formgrader, "static", "node_modules", "bootstrap", "dist", "css")]
    config.HTMLExporter.filters = {"feedback_clean_html": clean_html}
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    config.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor,
                                             _page_preprocessor()]
    return config
