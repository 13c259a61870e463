"""The intake: the only code of the grader that reads the submissions folder as students left it.

A submission is ``<submissions>/<student>/<assignment>/<notebook>.ipynb`` (and an optional
``timestamp.txt``), and everything in that folder is the students' to choose: names, file kinds,
sizes, bytes. The rules, which no submission can break and which never stop the rest of the class
from being graded:

* **Nothing is followed, nothing blocks.** Folders are listed and files opened relative to their
  parent's descriptor with ``O_NOFOLLOW`` (and ``O_NONBLOCK``), after an ``lstat``: a symbolic
  link is never followed (each one is reported with its target), a FIFO, socket or device is
  never opened (a link to ``/dev/zero`` is a link, not read), only regular files are copied.
* **Bounded.** A file larger than ``intake_max_file_mb`` or beyond the first ``intake_max_files``
  of an assignment folder is not copied; sub-folders and hidden files are not collected. The
  static audit of one notebook reads at most ``audit_max_chars`` characters of its code.
* **Every skip is a line.** A folder or file that is not collected is reported, by student and
  path; a notebook of the assignment that could not be collected (a link, a FIFO, too large, ...)
  is graded as a blank notebook (all 0) and flagged with the reason.
* **Malformed notebooks are graded, not fatal.** :func:`read_notebook` repairs what is safe to
  repair and says so (lone surrogate escapes, a ``grade_id`` or ``tags`` of the wrong type,
  metadata that is not valid nbformat); what cannot be read (not UTF-8, not JSON, not nbformat 4,
  cells without a type or text) raises :class:`Unreadable`, and the notebook is graded as a blank
  one, flagged. A ``timestamp.txt`` that is not a date is replaced by the time of collection
  (so a garbled timestamp can never avoid a late penalty), flagged.
* **Names are data.** Student, assignment and file names reach the instructor only through
  :func:`shown` / :func:`shown_text`, which escape every character that could start a new line
  or move the cursor (control, format and separator characters, bidirectional overrides, lone
  surrogates, the Hangul fillers that show as nothing). Student ids may use letters and digits
  of any script (``zoë``, ``李雷``: nbgrader's gradebook stores ids as Unicode text); a folder
  name is graded under its NFC form, and the report says so when that differs.

The limits' defaults are declared once, in ``nbgrader_config.py`` (``GradingPipeline.intake_*``
and ``audit_max_chars``); ``python -m instructor.pipeline grade --max-file-mb --max-files
--audit-max-chars`` override them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nbformat import NotebookNode
from nbformat.v4.nbjson import JSONReader

# --------------------------------------------------------------------------------------------
# names, as the instructor sees them
# --------------------------------------------------------------------------------------------


# letters that show as nothing: a name with one would look like another
_INVISIBLE_LETTERS = set("\u115f\u1160\u3164\uffa0")


def _plain(ch: str) -> bool:
    return ch.isprintable() and ch not in _INVISIBLE_LETTERS


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown_text(text: str) -> str:
    """``text`` on one line: every character that is not printable (newlines, ANSI escapes,
    bidirectional overrides, lone surrogates, ...) written as a ``\\x..``/``\\u..`` escape."""
    text = str(text)
    if text.isprintable() and not _INVISIBLE_LETTERS.intersection(text):
        return text
    return "".join(ch if _plain(ch) else _escape_char(ch) for ch in text)


def shown(name: str) -> str:
    """A student, assignment or file name for a report line: as is when it is plain, else as a
    quoted Python literal (``'a\\nb'``), so that it can neither inject a line nor pass for
    another name."""
    if name and all(_plain(ch) and ch not in "'\"\\ " for ch in name) and len(name) <= 80:
        return name
    return "".join(ch if ch not in _INVISIBLE_LETTERS else _escape_char(ch)
                   for ch in repr(name[:80] + ("..." if len(name) > 80 else "")))


class EscapingFormatter(logging.Formatter):
    """A log formatter whose lines carry no raw control characters (nbgrader's messages name
    students' files)."""

    def format(self, record: logging.LogRecord) -> str:
        return shown_text(super().format(record))


_ID_PUNCTUATION = set("_.@+-")
MAX_ID_LENGTH = 64


def student_id(folder: str) -> tuple[str | None, str]:
    """``(id, note)`` for a student folder's name, or ``(None, reason)`` if it cannot be one.

    An id is the folder name in Unicode NFC form: letters and digits of any script, combining
    marks after the first character, and ``_ . @ + -``; it starts with a letter or a digit. The
    note says when the id differs from the folder's name (its NFC form)."""
    nfc = unicodedata.normalize("NFC", folder)
    if not nfc or len(nfc) > MAX_ID_LENGTH:
        return None, f"not a valid student id (1 to {MAX_ID_LENGTH} characters)"
    for index, ch in enumerate(nfc):
        kind = unicodedata.category(ch)[0]
        if ch in _INVISIBLE_LETTERS:
            pass
        elif kind in "LN" or (index and (kind == "M" or ch in _ID_PUNCTUATION)):
            continue
        return None, ("not a valid student id (letters and digits of any script, then also "
                      f"_ . @ + -; found {shown(ch)})")
    note = "" if nfc == folder else (f"student folder {ascii(folder)} is graded as student "
                                     f"{shown(nfc)} ({ascii(nfc)}, its Unicode NFC form)")
    return nfc, note


# --------------------------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeLimits:
    max_file_bytes: int  # a file larger than this is not copied
    max_files: int  # files copied from one <student>/<assignment> folder
    audit_max_chars: int  # characters of one notebook's code that the static audit reads

    @property
    def described(self) -> str:
        return (f"{self.max_file_bytes / 2**20:g} MiB per file, {self.max_files} files per "
                f"assignment folder, {self.audit_max_chars} characters of code audited")


def limits(config, args=None) -> IntakeLimits:
    """The limits of ``nbgrader_config.py``'s ``GradingPipeline`` section (where their defaults
    are declared), overridden by the command line's ``--max-file-mb``, ``--max-files`` and
    ``--audit-max-chars``."""
    pipe = config.GradingPipeline

    def value(key, flag):
        given = getattr(args, flag, None) if args is not None else None
        if given is not None:
            return given
        if key not in pipe:
            raise KeyError(f"nbgrader_config.py declares no GradingPipeline.{key}")
        return pipe[key]

    return IntakeLimits(
        max_file_bytes=int(float(value("intake_max_file_mb", "max_file_mb")) * 2**20),
        max_files=int(value("intake_max_files", "max_files")),
        audit_max_chars=int(value("audit_max_chars", "audit_max_chars")))


# --------------------------------------------------------------------------------------------
# collect
# --------------------------------------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
TIMESTAMP = "timestamp.txt"
_MAX_TIMESTAMP_BYTES = 1024


class Refused(Exception):
    """A file or folder the intake does not take; the message says why."""


@dataclass
class Entry:
    """One notebook of an assignment, as collected. ``path`` is empty when the notebook could not
    be collected (``notes`` say why): it is graded as a blank notebook."""

    student: str
    assignment: str
    notebook: str
    path: str
    notes: list[str] = field(default_factory=list)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISDIR, "folder"),
                       (stat.S_ISREG, "file"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def _listing(dir_fd: int) -> list[tuple[str, os.stat_result | None]]:
    """``(name, lstat or None)`` of a folder's entries, sorted by name; nothing is followed."""
    out = []
    with os.scandir(dir_fd) as it:
        for entry in it:
            try:
                st = os.stat(entry.name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                st = None
            out.append((entry.name, st))
    return sorted(out, key=lambda item: item[0])


def _link_target(name: str, dir_fd: int) -> str:
    try:
        return shown(os.readlink(name, dir_fd=dir_fd))
    except OSError:
        return "?"


def _why_not(name: str, st, dir_fd: int, want: str) -> str | None:
    """Why ``name`` (whose lstat is ``st``) is not a ``want`` ("folder" or "file"), or None."""
    if st is None:
        return "could not be examined"
    kind = _kind(st.st_mode)
    if kind == want:
        return None
    if kind == "symbolic link":
        return f"a symbolic link (to {_link_target(name, dir_fd)}), not followed"
    if kind == "folder":
        return "a folder, not collected (only the files at the top of an assignment folder are)"
    if kind == "file":
        return "a file, not a folder"
    return f"a {kind}, not a regular {want}; not opened"


def _open_dir(name: str, dir_fd: int | None = None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise Refused(f"could not be opened as a folder ({exc.strerror}), not followed") from None


def read_regular(name: str, dir_fd: int | None, max_bytes: int) -> bytes:
    """The bytes of regular file ``name``, at most ``max_bytes``; never follows a link, never
    blocks (FIFO), never reads a device."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise Refused(f"could not be opened ({exc.strerror}); a link or special file is not "
                      "followed") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"a {_kind(st.st_mode)}, not a regular file; not read")
        if st.st_size > max_bytes:
            raise Refused(f"{st.st_size / 2**20:.1f} MiB, over the limit of "
                          f"{max_bytes / 2**20:g} MiB per file; not collected")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise Refused(f"over the limit of {max_bytes / 2**20:g} MiB per file; not collected")
        return data
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def check_timestamp(data: bytes) -> str | None:
    """Why ``timestamp.txt``'s content is not a submission time nbgrader can read, or None."""
    from nbgrader.utils import parse_utc

    try:
        text = data.decode("utf-8").strip()
        if not text:
            return "it is empty"
        parse_utc(text)
    except Exception as exc:  # UnicodeDecodeError, dateutil's ParserError, OverflowError, ...
        return f"it is not a date ({type(exc).__name__}: {shown_text(str(exc))[:80]})"
    return None


def assignment_names(submissions: Path) -> set[str]:
    """Names of the entries of every student folder (nothing followed)."""
    names: set[str] = set()
    top = _open_dir(str(submissions))
    try:
        for name, st in _listing(top):
            if st is None or not stat.S_ISDIR(st.st_mode) or name.startswith("."):
                continue
            try:
                fd = _open_dir(name, top)
            except Refused:
                continue
            try:
                names.update(n for n, _ in _listing(fd))
            finally:
                os.close(fd)
    finally:
        os.close(top)
    return names


def collect(submissions: Path, submitted: Path, known: dict[str, list[str]],
            lim: IntakeLimits) -> tuple[list[Entry], list[str]]:
    """Copy ``submissions/<student>/<assignment>/`` into ``submitted/<id>/<assignment>/`` for
    every assignment in ``known`` (``{assignment: its notebooks' names}``).

    Returns one :class:`Entry` per notebook to grade and the report's lines about everything
    that was not collected (names escaped)."""
    entries: list[Entry] = []
    lines: list[str] = []
    ids: dict[str, str] = {}
    top = _open_dir(str(submissions))
    try:
        for folder, st in _listing(top):
            if folder.startswith("."):
                kind = _kind(st.st_mode) if st else "entry"
                lines.append(f"{shown(folder)}: a hidden {kind} (its name starts with '.'), "
                             "not graded")
                continue
            why = _why_not(folder, st, top, "folder")
            if why:
                lines.append(f"{shown(folder)}: {why}; not a student folder, not graded")
                continue
            sid, note = student_id(folder)
            if sid is None:
                lines.append(f"{shown(folder)}: {note}; not graded")
                continue
            if sid in ids:
                lines.append(f"{shown(folder)}: the same student id as folder "
                             f"{shown(ids[sid])} (Unicode NFC); not graded")
                continue
            ids[sid] = folder
            if note:
                lines.append(note)
            try:
                student_fd = _open_dir(folder, top)
            except Refused as exc:
                lines.append(f"{shown(folder)}: {exc}; not graded")
                continue
            try:
                _collect_student(student_fd, folder, sid, submitted / sid, known, lim,
                                 entries, lines)
            finally:
                os.close(student_fd)
    finally:
        os.close(top)
    return entries, lines


def _collect_student(student_fd: int, folder: str, sid: str, dest: Path,
                     known: dict[str, list[str]], lim: IntakeLimits, entries: list[Entry],
                     lines: list[str]) -> None:
    listing = _listing(student_fd)
    if not listing:
        lines.append(f"{shown(folder)}: an empty folder, nothing to grade")
    for assignment, st in listing:
        where = f"{shown(folder)}/{shown(assignment)}"
        if assignment not in known:
            lines.append(f"{where}: not one of the assignments graded in this run; not graded")
            continue
        why = _why_not(assignment, st, student_fd, "folder")
        if why is None:
            try:
                fd = _open_dir(assignment, student_fd)
            except Refused as exc:
                why = str(exc)
        if why:
            # a notebook expected, none usable: each of the assignment's notebooks scores 0
            for notebook in known[assignment]:
                entries.append(Entry(sid, assignment, notebook, "", [
                    f"the assignment folder {where} is {why}; graded as a blank notebook"]))
            continue
        try:
            _collect_assignment(fd, where, sid, assignment, dest / assignment,
                                known[assignment], lim, entries, lines)
        finally:
            os.close(fd)


def _collect_assignment(fd: int, where: str, sid: str, assignment: str, dest: Path,
                        notebooks: list[str], lim: IntakeLimits, entries: list[Entry],
                        lines: list[str]) -> None:
    import shutil

    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    wanted = {f"{nb}.ipynb" for nb in notebooks}
    # the assignment's notebooks first, so that no number of other files can crowd them out
    listing = sorted(_listing(fd), key=lambda item: (item[0] not in wanted, item[0]))
    copied, problems, stamp_note = 0, {}, None
    collected: list[str] = []
    for name, st in listing:
        why = _why_not(name, st, fd, "file")
        if why is None and name.startswith("."):
            why = "a hidden file, not collected"
        if why is None and copied >= lim.max_files:
            why = f"over the limit of {lim.max_files} files per assignment folder; not collected"
        if why is None:
            try:
                data = read_regular(name, fd, _MAX_TIMESTAMP_BYTES if name == TIMESTAMP
                                    else lim.max_file_bytes)
            except Refused as exc:
                why = str(exc)
        if why is None and name == TIMESTAMP:
            why = check_timestamp(data)
        if why is not None and name == TIMESTAMP:
            # a timestamp the grader cannot use must not spare its author a late penalty
            now = datetime.now(timezone.utc).isoformat(sep=" ")
            stamp_note = (f"{TIMESTAMP} was rejected ({why}); the time of collection, {now}, "
                          "stands in for it (late penalties apply from it)")
            why, data = None, now.encode()
        if why is not None:
            if name in wanted:
                problems[name[:-len(".ipynb")]] = f"{where}/{shown(name)} is {why}"
            else:
                lines.append(f"{where}/{shown(name)}: {why}")
            continue
        _write_new(dest / name, data)
        copied += 1
        if name in wanted:
            collected.append(name[:-len(".ipynb")])
        elif not name.endswith(".ipynb") or name == TIMESTAMP:
            continue
        else:
            lines.append(f"{where}/{shown(name)}: not a notebook of the assignment; not graded")
    notes = [stamp_note] if stamp_note else []
    for notebook in collected:
        entries.append(Entry(sid, assignment, notebook, str(dest / f"{notebook}.ipynb"),
                             list(notes)))
    for notebook, why in problems.items():
        entries.append(Entry(sid, assignment, notebook, "",
                             [*notes, f"{why}; graded as a blank notebook"]))
    if not collected and not problems:
        lines.append(f"{where}: no notebook of the assignment in the folder; nothing graded")


# --------------------------------------------------------------------------------------------
# read
# --------------------------------------------------------------------------------------------


class Unreadable(ValueError):
    """A submitted notebook that cannot be graded; the message says why."""


_SURROGATE = re.compile("[\ud800-\udfff]")
_CELL_TYPES = ("code", "markdown", "raw")


def _repair_strings(obj, count: list[int]):
    """``obj`` (parsed JSON) with every lone surrogate replaced by U+FFFD; counts them."""
    if isinstance(obj, str):
        if _SURROGATE.search(obj):
            fixed, n = _SURROGATE.subn("\ufffd", obj)
            count[0] += n
            return fixed
        return obj
    if isinstance(obj, list):
        return [_repair_strings(item, count) for item in obj]
    if isinstance(obj, dict):
        return {_repair_strings(k, count): _repair_strings(v, count) for k, v in obj.items()}
    return obj


def _text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "".join(value)
    return None


def parse(data: bytes) -> tuple[dict, list[str]]:
    """Parse a submitted notebook's bytes into a checked nbformat-4 dictionary.

    Returns it and the repairs made (one line each); raises :class:`Unreadable`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"unreadable notebook (not UTF-8 text: byte {exc.start})") from None
    try:
        raw = json.loads(text.lstrip("\ufeff"))
    except RecursionError:
        raise Unreadable("unreadable notebook (JSON nested too deeply)") from None
    except ValueError as exc:
        raise Unreadable(f"unreadable notebook (not JSON: {shown_text(str(exc))[:120]})") from None
    repairs: list[str] = []
    count = [0]
    try:
        raw = _repair_strings(raw, count)
    except RecursionError:
        raise Unreadable("unreadable notebook (JSON nested too deeply)") from None
    if count[0]:
        repairs.append(f"repaired: {count[0]} lone surrogate escape(s) (half of a UTF-16 pair, "
                       "not text) replaced by U+FFFD")
    if not isinstance(raw, dict):
        raise Unreadable(f"unreadable notebook (a JSON {type(raw).__name__}, not a notebook)")
    if raw.get("nbformat") != 4 or type(raw.get("nbformat")) is not int:
        raise Unreadable("unreadable notebook (not nbformat 4: nbformat is "
                         f"{shown_text(repr(raw.get('nbformat')))[:40]})")
    if not isinstance(raw.get("nbformat_minor", 0), int):
        raw["nbformat_minor"] = 5
        repairs.append("repaired: nbformat_minor was not a number; set to 5")
    if not isinstance(raw.get("metadata", {}), dict):
        raw["metadata"] = {}
        repairs.append("repaired: the notebook's metadata was not a mapping; emptied")
    cells = raw.get("cells")
    if not isinstance(cells, list):
        raise Unreadable("unreadable notebook (no list of cells)")
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in _CELL_TYPES:
            raise Unreadable(f"unreadable notebook (cell {index} has no valid cell_type)")
        source = _text(cell.get("source", ""))
        if source is None:
            raise Unreadable(f"unreadable notebook (cell {index}'s source is not text)")
        cell["source"] = source
        md = cell.get("metadata", {})
        if not isinstance(md, dict):
            md = {}
            repairs.append(f"repaired: cell {index}'s metadata was not a mapping; emptied")
        cell["metadata"] = md
        grader = md.get("nbgrader")
        if grader is not None and not (isinstance(grader, dict)
                                       and isinstance(grader.get("grade_id", ""), str)):
            what = ("its grade_id is a " + type(grader.get("grade_id")).__name__
                    if isinstance(grader, dict) else f"a {type(grader).__name__}")
            md.pop("nbgrader")
            repairs.append(f"repaired: cell {index}'s nbgrader metadata was malformed ({what}); "
                           "removed, so the cell counts as the student's own")
        tags = md.get("tags")
        if tags is not None and not (isinstance(tags, list)
                                     and all(isinstance(t, str) for t in tags)
                                     and len(set(tags)) == len(tags)):
            md.pop("tags")
            repairs.append(f"repaired: cell {index}'s tags were not a list of distinct strings; "
                           "removed")
    return raw, repairs


def to_notebook(raw: dict) -> NotebookNode:
    """The NotebookNode that ``nbformat.read`` would give for ``raw`` (lines rejoined,
    transient fields dropped), without its validation log lines."""
    return JSONReader().to_notebook(raw)


def reset_metadata(raw: dict) -> dict:
    """A copy of ``raw`` reduced to what grading reads: each cell's type, id, source, nbgrader
    metadata and tags, and the release id the notebook claims (``course_release``, checked
    later against that release's records); for when the student's other metadata is not valid
    nbformat."""
    cells = []
    for cell in raw["cells"]:
        md = {k: cell["metadata"][k] for k in ("nbgrader", "tags") if k in cell["metadata"]}
        new = {"cell_type": cell["cell_type"], "metadata": md, "source": cell["source"]}
        if isinstance(cell.get("id"), str):
            new["id"] = cell["id"]
        if cell["cell_type"] == "code":
            new.update(outputs=[], execution_count=None)
        cells.append(new)
    claimed = raw.get("metadata", {}).get("course_release") if isinstance(
        raw.get("metadata"), dict) else None
    return {"cells": cells, "metadata": {} if claimed is None else {"course_release": claimed},
            "nbformat": 4, "nbformat_minor": 5}


def restore(path: str, ref, max_bytes: int, prepare):
    """Read the collected notebook at ``path`` and restore it against ``ref`` with ``prepare``
    (``instructor.integrity.prepare``); returns ``(its result, the repairs made)``.

    Metadata that nbformat's schema rejects is reset (:func:`reset_metadata`) and the
    restoration tried once more; whatever still fails raises :class:`Unreadable`."""
    try:
        data = read_regular(path, None, max_bytes)
    except Refused as exc:
        raise Unreadable(f"unreadable notebook ({exc})") from None
    try:
        raw, repairs = parse(data)
    except Unreadable:
        raise
    except Exception as exc:  # a case parse() did not foresee: still this student's alone
        raise Unreadable(f"unreadable notebook ({type(exc).__name__})") from None
    try:
        return prepare(to_notebook(raw), ref), repairs
    except Exception as first:  # nbformat's ValidationError, or anything the file provokes
        message = (str(first).splitlines() or [""])[0]
        reason = f"{type(first).__name__}: {shown_text(message)[:120]}"
    try:
        result = prepare(to_notebook(reset_metadata(raw)), ref)
    except Exception as exc:
        raise Unreadable(f"unreadable notebook (it could not be restored: {reason}; after "
                         f"resetting its metadata: {type(exc).__name__})") from None
    return result, [*repairs, f"repaired: metadata that is not valid nbformat ({reason}) was "
                              "reset, keeping each cell's source, nbgrader metadata and tags"]


_CELL_COST = 100


def audit_budget(items: list[tuple[str, dict]], max_chars: int) -> tuple[list, str]:
    """The code cells the static audit reads for one notebook: in order, until ``max_chars``
    characters (each cell counting at least 100); and a flag naming what was left unaudited
    (empty if nothing was)."""
    kept, used, left = [], 0, []
    for where, item in items:
        # a cell costs at least _CELL_COST: a million empty cells are bounded too
        cost = max(len(item["source"]), _CELL_COST)
        if used + cost <= max_chars:
            kept.append((where, item))
            used += cost
        else:
            left.append((where, len(item["source"])))
    if not left:
        return kept, ""
    chars = sum(size for _, size in left)
    return kept, (f"torch-use policy: {len(left)} cell(s) with {chars} characters of code were "
                  f"not audited (over the bound of {max_chars} characters read per notebook)")
