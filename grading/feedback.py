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
"""

from __future__ import annotations

import re

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
    return nb
