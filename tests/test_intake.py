"""The intake (instructor/intake.py): no submission can break collecting, reading or reporting.

Each attack is one student beside two honest demo students (``correct`` and ``partial``): the
intake and the restoration against the gradebook (``pipeline.collect`` and ``pipeline.prepare``,
no kernel) must finish, leave the honest students' prepared notebooks and flags exactly as in a
class without the attacker, and give the attacker's notebook no more than the same notebook
without the attack: either the blank release with every test at 0, or the same code with no
fewer test cells zeroed. A fuzz test does the same for 200 submissions made from the demo ones;
one run of the whole pipeline (real kernels) grades a small class of attackers beside an honest
demo student.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import nbformat
import pytest

from instructor import course, demo, intake, integrity, pipeline

ROOT = Path(__file__).resolve().parents[1]


ASSIGNMENTS = ["01-activations", "02-initializers"]
A1 = "01-activations"
HONEST = ("correct", "partial")


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""
    def expired(signum, frame):
        raise TimeoutError(f"took more than {seconds} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    cfg = course.load_config(tmp_path_factory.mktemp("intake") / "course")
    pipeline.generate(cfg, ASSIGNMENTS)
    return cfg


def demo_notebook(student: str, assignment: str = A1) -> Path:
    path, = (demo.DEMO / student / assignment).glob("*.ipynb")
    return path


def honest_class(root: Path) -> Path:
    for student in HONEST:
        for assignment in ASSIGNMENTS:
            dest = root / student / assignment
            dest.mkdir(parents=True)
            src = demo_notebook(student, assignment)
            (dest / src.name).write_bytes(src.read_bytes())
    return root


def intake_run(config, submissions: Path, limits=None) -> dict:
    with deadline(60):
        jobs, skipped = pipeline.collect(config, submissions, ASSIGNMENTS, limits)
        notebooks, graded = pipeline.prepare(config, jobs, limits)
    return {"jobs": {j.label: j for j in jobs}, "skipped": skipped, "nbs": notebooks,
            "graded": graded}


@pytest.fixture(scope="module")
def baseline(config, tmp_path_factory):
    return intake_run(config, honest_class(tmp_path_factory.mktemp("honest")))


def _text(nb) -> str:
    return nbformat.writes(nb)


def assert_others_unchanged(result: dict, baseline: dict) -> None:
    for label, nb in baseline["nbs"].items():
        assert label in result["nbs"], f"{label} was not graded"
        assert _text(result["nbs"][label]) == _text(nb), label
        assert result["jobs"][label].flags == baseline["jobs"][label].flags, label


def zeroed(nb) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and integrity.MARK in c.metadata}


def graded_cells(nb) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def assert_blank(nb) -> None:
    """Every test cell of the notebook scores 0 without running."""
    assert graded_cells(nb) and zeroed(nb) == graded_cells(nb)


def assert_no_more_than(nb, unattacked) -> None:
    """``nb`` runs the same code as ``unattacked`` with no fewer test cells zeroed, or is blank."""
    if zeroed(nb) == graded_cells(nb):
        return
    assert code(nb) == code(unattacked)
    assert zeroed(nb) >= zeroed(unattacked)


def printable_lines(text: str) -> list[str]:
    lines = text.split("\n")
    for line in lines:
        assert line.isprintable(), repr(line)
        assert not set(line) & set("\u115f\u1160\u3164\uffa0"), repr(line)  # invisible
    return lines


# --------------------------------------------------------------------------------------------
# the attacks, one student each ("mallory" unless the name is the attack)
# --------------------------------------------------------------------------------------------


def _folder(subs: Path, student: str = "mallory", assignment: str = A1) -> Path:
    path = subs / student / assignment
    path.mkdir(parents=True, exist_ok=True)
    return path


def _json_attack(edit, base: str = "partial"):
    def build(subs, config):
        nb = json.loads(demo_notebook(base).read_text())
        edit(nb)
        text = json.dumps(nb, indent=1)  # lone surrogates come out as \\udXXX escapes
        (_folder(subs) / "activations.ipynb").write_text(text)
    return build


def _cell(nb, grade_id):
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id")
                == grade_id)


def _first_markdown(nb):
    return next(c for c in nb["cells"] if c["cell_type"] == "markdown")


def _link(target):
    def build(subs, config):
        os.symlink(target(subs, config) if callable(target) else target,
                   _folder(subs) / "activations.ipynb")
    return build


def _link_folder(target):
    def build(subs, config):
        (subs / "mallory").mkdir(parents=True)
        os.symlink(target(subs, config), subs / "mallory" / A1)
    return build


def _fifo(subs, config):
    os.mkfifo(_folder(subs) / "activations.ipynb")
    os.mkfifo(_folder(subs) / "data.bin")  # an extra file of an odd kind, too


def _socket(subs, config):
    folder = _folder(subs)
    with contextlib.chdir(folder), socket.socket(socket.AF_UNIX) as sock:
        sock.bind("activations.ipynb")  # relative: socket paths are limited to 108 bytes


def _device(subs, config):
    try:
        os.mknod(_folder(subs) / "activations.ipynb", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")


def _timestamp(content: bytes, base: str = "partial"):
    def build(subs, config):
        folder = _folder(subs)
        (folder / "activations.ipynb").write_bytes(demo_notebook(base).read_bytes())
        (folder / "timestamp.txt").write_bytes(content)
    return build


def _timestamp_fifo(subs, config):
    folder = _folder(subs)
    (folder / "activations.ipynb").write_bytes(demo_notebook("partial").read_bytes())
    os.mkfifo(folder / "timestamp.txt")


def _bytes(data: bytes):
    def build(subs, config):
        (_folder(subs) / "activations.ipynb").write_bytes(data)
    return build


def _many_files(subs, config):
    folder = _folder(subs)
    for i in range(70):
        (folder / f"a{i:02d}.txt").write_text("x")
    (folder / "activations.ipynb").write_bytes(demo_notebook("partial").read_bytes())


def _set(path, value):
    def edit(nb):
        obj = nb
        for key in path[:-1]:
            obj = obj[key] if not callable(key) else key(obj)
        obj[path[-1]] = value
    return edit


# name -> (builder, expected: "blank" | "same" | "less", words one of its flags must contain)
ATTACKS = {
    "dangling_symlink": (_link("nowhere.ipynb"), "blank", "symbolic link"),
    "link_to_dev_zero": (_link("/dev/zero"), "blank", "symbolic link (to /dev/zero)"),
    "link_to_classmate": (_link(lambda subs, c: str(subs / "correct" / A1 / "activations.ipynb")),
                          "blank", "symbolic link"),
    "folder_link_to_source": (_link_folder(
        lambda subs, c: str(course.course_root(c) / "source" / A1)), "blank", "symbolic link"),
    "folder_link_to_classmate": (_link_folder(lambda subs, c: str(subs / "correct" / A1)),
                                 "blank", "symbolic link"),
    "fifo": (_fifo, "blank", "FIFO"),
    "socket": (_socket, "blank", "socket"),
    "device": (_device, "blank", "character device"),
    "list_grade_id_solution": (_json_attack(_set(
        [lambda nb: _cell(nb, "sigmoid"), "metadata", "nbgrader", "grade_id"], ["sigmoid"])),
        "same", "grade_id is a list"),
    "list_grade_id_test": (_json_attack(_set(
        [lambda nb: _cell(nb, "test_sigmoid"), "metadata", "nbgrader", "grade_id"],
        ["test_sigmoid"])), "less", "grade_id is a list"),
    "nbgrader_metadata_a_list": (_json_attack(_set(
        [lambda nb: _cell(nb, "relu"), "metadata", "nbgrader"], [1, 2])), "same", "malformed"),
    "metadata_a_list": (_json_attack(_set([lambda nb: _first_markdown(nb), "metadata"], [])),
                        "same", "metadata was not a mapping"),
    "tags_a_string": (_json_attack(_set([lambda nb: _cell(nb, "relu"), "metadata", "tags"],
                                        "hide-input")), "same", "tags"),
    "tags_of_numbers": (_json_attack(_set([lambda nb: _first_markdown(nb), "metadata", "tags"],
                                          [1, 1])), "same", "tags"),
    "schema_invalid_metadata": (_json_attack(_set(
        [lambda nb: _cell(nb, "relu"), "metadata", "collapsed"], "yes")), "same",
        "not valid nbformat"),
    "markdown_with_outputs": (_json_attack(_set([lambda nb: _first_markdown(nb), "outputs"],
                                                [])), "same", "not valid nbformat"),
    "lone_surrogate_markdown": (_json_attack(lambda nb: _first_markdown(nb).update(
        source="# \ud800 a lone surrogate\n")), "same", "lone surrogate"),
    "nbformat_3": (_json_attack(_set(["nbformat"], 3)), "blank", "not nbformat 4"),
    "nbformat_string": (_json_attack(_set(["nbformat"], "4")), "blank", "not nbformat 4"),
    "cells_a_dict": (_json_attack(_set(["cells"], {})), "blank", "no list of cells"),
    "source_a_number": (_json_attack(_set([lambda nb: _cell(nb, "relu"), "source"], 7)),
                        "blank", "source is not text"),
    "bad_json": (_bytes(b'{"cells": [{"cell_type": "code", '), "blank", "not JSON"),
    "not_utf8": (_bytes(b'{"cells": "\xff\xfe"}'), "blank", "not UTF-8"),
    "deep_json": (_bytes(b"[" * 100_000), "blank", "unreadable notebook"),
    "bad_timestamp": (_timestamp(b"yesterday, after lunch"), "same", "timestamp.txt was rejected"),
    "binary_timestamp": (_timestamp(b"\x1b[2J\xff\x00"), "same", "timestamp.txt was rejected"),
    "huge_timestamp": (_timestamp(b"2026-01-01 " + b"0" * 5000), "same", "timestamp.txt"),
    "timestamp_fifo": (_timestamp_fifo, "same", "timestamp.txt was rejected"),
    "many_files": (_many_files, "same", None),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_on_the_intake(attack, config, baseline, tmp_path):
    build, expected, words = ATTACKS[attack]
    subs = honest_class(tmp_path / "subs")
    build(subs, config)
    result = intake_run(config, subs)
    assert_others_unchanged(result, baseline)
    label = f"mallory/{A1}/activations"
    job, nb = result["jobs"][label], result["nbs"][label]
    unattacked = baseline["nbs"][f"partial/{A1}/activations"]
    if expected == "blank":
        assert_blank(nb)
        assert not job.executed
    else:
        assert job.executed
        assert code(nb) == code(unattacked)
        assert zeroed(nb) >= zeroed(unattacked)
        assert (zeroed(nb) > zeroed(unattacked)) == (expected == "less")
    if words:
        assert any(words in flag for flag in job.flags), job.flags
    for line in [*job.flags, *result["skipped"]]:
        assert intake.shown_text(line) == line  # nothing unprintable reaches a report line


def test_a_student_folder_that_is_a_link_is_not_followed(config, baseline, tmp_path):
    subs = honest_class(tmp_path / "subs")
    os.symlink(subs / "correct", subs / "mallory")
    result = intake_run(config, subs)
    assert_others_unchanged(result, baseline)
    assert not any(job.student == "mallory" for job in result["jobs"].values())
    assert any(line.startswith("mallory: a symbolic link") for line in result["skipped"])


def test_a_fifo_or_device_is_never_opened(tmp_path):
    # the intake looks (lstat) before it opens, and opens with O_NOFOLLOW | O_NONBLOCK
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/dev/zero", tmp_path / "zero")
    with deadline(10):
        for name in ("fifo", "zero"):
            with pytest.raises(intake.Refused):
                intake.read_regular(str(tmp_path / name), None, 2**20)


def test_the_timestamp_stands_in_for_a_bad_one(config, tmp_path):
    subs = tmp_path / "subs"
    _timestamp(b"not a date")(subs, config)
    _timestamp(b"2026-03-01 12:00:00 UTC")(subs / "other", config)  # a good one beside it
    (subs / "other" / "mallory").rename(subs / "alice")
    result = intake_run(config, subs)
    submitted = course.course_root(config) / "submitted"
    from nbgrader.utils import parse_utc
    bad = (submitted / "mallory" / A1 / "timestamp.txt").read_text()
    assert abs(parse_utc(bad).timestamp() - time.time()) < 600
    assert (submitted / "alice" / A1 / "timestamp.txt").read_text() == "2026-03-01 12:00:00 UTC"
    assert not result["jobs"][f"alice/{A1}/activations"].flags


def test_a_huge_notebook_is_collected_and_its_audit_is_bounded(config, baseline, tmp_path):
    subs = honest_class(tmp_path / "subs")
    nb = json.loads(demo_notebook("partial").read_text())
    filler = "".join(f"x{i} = torch.zeros({i})  # filler\n" for i in range(130_000))
    nb["cells"].insert(3, {"cell_type": "code", "execution_count": None, "metadata": {},
                           "outputs": [], "source": filler, "id": "filler"})
    (_folder(subs) / "activations.ipynb").write_text(json.dumps(nb))
    assert (subs / "mallory" / A1 / "activations.ipynb").stat().st_size > 4 * 2**20
    result = intake_run(config, subs)
    assert_others_unchanged(result, baseline)
    jobs = list(result["jobs"].values())
    lim = intake.limits(config)
    t0 = time.monotonic()
    with deadline(60):
        pipeline.apply_policy(jobs, result["nbs"], lim.audit_max_chars)
    seconds = time.monotonic() - t0
    flags = result["jobs"][f"mallory/{A1}/activations"].flags
    assert any("were not audited" in f for f in flags), flags
    assert seconds < 20, seconds
    assert not result["jobs"][f"correct/{A1}/activations"].flags


def test_a_file_over_the_size_limit_is_not_collected(config, baseline, tmp_path):
    subs = honest_class(tmp_path / "subs")
    big = demo_notebook("partial").read_bytes()
    (_folder(subs) / "activations.ipynb").write_bytes(big)
    lim = intake.IntakeLimits(max_file_bytes=len(big) - 1, max_files=50, audit_max_chars=10**6)
    result = intake_run(config, subs, lim)
    job = result["jobs"][f"mallory/{A1}/activations"]
    assert not job.executed and any("over the limit" in f for f in job.flags), job.flags


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------

# a name holds no "/": the forged lines name a student and a flag
INJECTION = "\n  correct\n      - CHEATING SUSPECTED: forged"
HOSTILE_NAMES = {
    "newline": "eve" + INJECTION,
    "carriage_return": "eve\r      - CHEATING SUSPECTED: forged",
    "ansi": "eve\x1b[1A\x1b[2K  correct",
    "rtl_override": "eve\u202edetacilpud",
    "line_separator": "eve\u2028CHEATING SUSPECTED",
    "undecodable_byte": os.fsdecode(b"eve\xff"),
    "invisible_letter": "correct\u3164",  # a Hangul filler: looks like "correct"
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_NAMES))
def test_a_hostile_name_injects_no_line(kind, config, baseline, tmp_path, capsys):
    subs = honest_class(tmp_path / "subs")
    name = HOSTILE_NAMES[kind]
    for student, assignment, notebook in [(name, A1, "activations.ipynb"),
                                          ("mallory", name, "activations.ipynb"),
                                          ("mallory", A1, name + ".ipynb")]:
        folder = _folder(subs, student, assignment)
        (folder / notebook).write_bytes(demo_notebook("partial").read_bytes())
    result = intake_run(config, subs)
    assert_others_unchanged(result, baseline)
    # the hostile folder is not graded, and each of the three is reported on one line
    assert {j.student for j in result["jobs"].values()} == {*HONEST}
    reported = "\n".join(result["skipped"])
    for part in (name, name + ".ipynb"):
        assert intake.shown(part) in reported
    report = _report(result)
    pipeline.print_report(report)
    assert_no_forged_line(capsys.readouterr().out, flagged=["correct", "partial"])
    json.loads(json.dumps(report))  # the report stays JSON


def assert_no_forged_line(out: str, flagged: list[str]) -> None:
    """Every line printable; no line forged by the injection: the only lines that start with a
    student's name are the flagged students' own headers."""
    lines = printable_lines(out)
    for line in lines:
        assert not line.lstrip().startswith("- CHEATING SUSPECTED: forged"), line
        assert line.strip() != "correct", line
    headers = [line.strip() for line in lines if line.strip().startswith("correct/")]
    assert headers == [f"correct/{a}/{nb}" for a, nb in
                       [(A1, "activations"), ("02-initializers", "initializers")]
                       if "correct" in flagged], headers


def _report(result: dict) -> dict:
    jobs = list(result["jobs"].values())
    for job in jobs:
        job.flags.append("CHEATING SUSPECTED" + INJECTION)  # flags quote student output too
    students = sorted({j.student for j in jobs})
    timings = dict.fromkeys(["generate", "prepare", "execute", "recorded", "stage", "record",
                             "feedback", "total", "mean_notebook", "median_notebook"], 0.0)
    timings.update(jobs=1, notebooks=len(jobs))
    from dataclasses import asdict
    return {"course_dir": "c", "grades_csv": "g", "feedback_dir": "f",
            "assignments": ASSIGNMENTS, "students": students,
            "scores": {s: dict.fromkeys(ASSIGNMENTS) for s in students},
            "submissions": [asdict(j) for j in jobs], "skipped": result["skipped"],
            "timings": timings}


def test_hidden_folders_are_reported_not_dropped(config, baseline, tmp_path):
    subs = honest_class(tmp_path / "subs")
    _folder(subs, ".mallory")
    (subs / ".DS_Store").write_text("x")
    (subs / "README.txt").write_text("x")
    result = intake_run(config, subs)
    assert_others_unchanged(result, baseline)
    lines = "\n".join(result["skipped"])
    assert ".mallory: a hidden folder" in lines and ".DS_Store: a hidden file" in lines
    assert "README.txt: a file, not a folder" in lines


def test_non_ascii_ids_are_graded(config, baseline, tmp_path):
    subs = honest_class(tmp_path / "subs")
    nfd = unicodedata.normalize("NFD", "zoë")
    for student in (nfd, "李雷", "José.García-2"):
        (_folder(subs, student) / "activations.ipynb").write_bytes(
            demo_notebook("partial").read_bytes())
    result = intake_run(config, subs)
    assert_others_unchanged(result, baseline)
    unattacked = baseline["nbs"][f"partial/{A1}/activations"]
    for student in ("zoë", "李雷", "José.García-2"):
        label = f"{student}/{A1}/activations"
        assert _text(result["nbs"][label]) == _text(unattacked)
    assert any("'zoe\\u0308' is graded as student zoë" in line for line in result["skipped"])
    # the NFC form and the NFD form of one name are one student: the second is refused
    (_folder(subs, "zoë") / "activations.ipynb").write_bytes(
        demo_notebook("partial").read_bytes())
    result = intake_run(config, subs)
    assert any("the same student id" in line for line in result["skipped"])


# --------------------------------------------------------------------------------------------
# fuzz: 200 submissions made from the demo ones
# --------------------------------------------------------------------------------------------

FUZZ_SEED = 20261207
FUZZ_N = 200
ODD_CHARS = ["\n", "\r", "\t", " ", "\x1b[31m", "\x7f", "\u202e", "\u2028", "\ufeff", "é",
             "李", "\u0301", "*", "?", "[", "'", '"', "\\", "..", "%s", "{}", os.fsdecode(b"\xff")]
SWAP_VALUES = [None, 0, -1, 1.5, True, "", "x", [], {}, [1, "a", None], {"a": [{}]},
               "\ud800", ["\udfff"], "\x00", 2**70]


def _json_paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _json_paths(value, (*path, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _json_paths(value, (*path, index))


def _fuzz_one(rng: random.Random, subs: Path, index: int, sources: list[Path]) -> str:
    """Write one fuzzed submission; returns how it was made."""
    src = rng.choice(sources)
    student, assignment, name = f"fuzz{index:03d}", src.parent.name, src.name
    data = src.read_bytes()
    kind = ["flip", "truncate", "swap", "swap", "surrogate", "kind", "name", "name",
            "extra"][index % 9]
    if kind == "name":
        where = rng.choice(["student", "assignment", "notebook"])
        odd = "".join(rng.choice(ODD_CHARS) for _ in range(rng.randint(1, 3)))
        prefix = rng.choice(["", "", ".", "-"])
        if where == "student":
            student = prefix + student + odd
        elif where == "assignment":
            assignment = prefix + assignment + odd
        else:
            name = prefix + src.stem + odd + rng.choice([".ipynb", ""])
    folder = subs / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(rng.randint(1, 12)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        data = bytes(buf)
    elif kind == "truncate":
        data = data[:rng.randrange(len(data))]
    elif kind in ("swap", "surrogate"):
        try:
            nb = json.loads(data)
        except ValueError:  # the demo's corrupt notebook: already broken
            nb = {"cells": "corrupt"}
        paths = list(_json_paths(nb))
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths[1:])
            obj = nb
            try:
                for key in path[:-1]:
                    obj = obj[key]
                if kind == "swap":
                    obj[path[-1]] = copy.deepcopy(rng.choice(SWAP_VALUES))
                elif isinstance(obj[path[-1]], str):
                    obj[path[-1]] += rng.choice(["\ud800", "\udc80x", "\udbff"])
            except (KeyError, IndexError, TypeError):
                pass  # an earlier swap changed the shape: skip this one
        data = json.dumps(nb).encode()
    if kind == "kind":
        odd = rng.choice(["fifo", "dangling", "dev_zero", "classmate", "folder", "loop",
                          "empty", "folder_link"])
        if odd == "fifo":
            os.mkfifo(target)
        elif odd == "dangling":
            os.symlink("missing.ipynb", target)
        elif odd == "dev_zero":
            os.symlink("/dev/zero", target)
        elif odd == "classmate":
            os.symlink(subs / "correct" / assignment / name, target)
        elif odd == "folder":
            target.mkdir()
        elif odd == "loop":
            os.symlink(target.name, target)
        elif odd == "empty":
            target.write_bytes(b"")
        else:
            folder.rmdir()
            os.symlink(subs / "correct" / assignment, folder)
        return f"{kind}:{odd}"
    if kind == "extra":
        os.mkfifo(folder / "timestamp.txt") if rng.random() < 0.5 else (
            folder / "timestamp.txt").write_bytes(rng.randbytes(rng.randint(0, 40)))
        os.symlink("/dev/zero", folder / "data.bin")
    target.write_bytes(data)
    return kind


def fuzz_class(root: Path, n: int = FUZZ_N, seed: int = FUZZ_SEED) -> dict[str, str]:
    """The honest class and ``n`` fuzzed submissions; returns ``{folder: how it was made}``."""
    honest_class(root)
    sources = sorted(p for a in ASSIGNMENTS for p in demo.DEMO.glob(f"*/{a}/*.ipynb"))
    rng = random.Random(seed)
    made = {}
    for index in range(n):
        how = _fuzz_one(rng, root, index, sources)
        made[next(p.name for p in root.iterdir() if p.name.lstrip(".-").startswith(
            f"fuzz{index:03d}"))] = how
    return made


def test_fuzzed_submissions_never_break_the_intake(config, baseline, tmp_path):
    subs = tmp_path / "subs"
    made = fuzz_class(subs)
    assert len(made) == FUZZ_N
    t0 = time.monotonic()
    result = intake_run(config, subs)
    seconds = time.monotonic() - t0
    assert_others_unchanged(result, baseline)
    students = {j.student for j in result["jobs"].values()}
    reported = "\n".join(result["skipped"])
    for folder in made:
        # every folder is graded (under its NFC form) or named in a line that says why not
        sid, _ = intake.student_id(folder)
        assert sid in students or intake.shown(folder) in reported, (folder, made[folder])
    for label, nb in result["nbs"].items():
        nbformat.validate(nb)
        _text(nb).encode("utf-8")  # the later steps can write it
        job = result["jobs"][label]
        for line in job.flags:
            assert intake.shown_text(line) == line
        if not job.executed:
            assert_blank(nb)
    for line in result["skipped"]:
        assert intake.shown_text(line) == line
    unreadable = sum(not j.executed for j in result["jobs"].values())
    print(f"fuzz: {FUZZ_N} submissions, {len(result['jobs'])} notebooks, {unreadable} graded "
          f"blank, {len(result['skipped'])} report lines; collect + prepare {seconds:.2f} s")
    assert seconds < 60


# --------------------------------------------------------------------------------------------
# the whole pipeline, real kernels, once
# --------------------------------------------------------------------------------------------


def _expected(student: str, assignment: str = A1) -> float:
    with open(ROOT / "tests" / "demo_expected_scores.csv", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return next(float(r["score"]) for r in rows
                    if (r["student"], r["assignment"]) == (student, assignment))


def test_the_pipeline_grades_a_class_of_attackers(tmp_path, request):
    """One honest demo student and attackers, through every step with real kernels; the
    fuzzed submissions that the intake grades as blank ride along (no kernel for them)."""
    subs = tmp_path / "subs"
    folder = _folder(subs, "correct")
    (folder / "activations.ipynb").write_bytes(demo_notebook("correct").read_bytes())
    # a short course path: the kernels' IPC sockets live under it (at most 107 bytes)
    course_dir = Path(tempfile.mkdtemp(prefix="intake-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(course_dir, ignore_errors=True))
    config = course.load_config(course_dir)  # for the source folder's path only
    attacks = {"folder_link_to_source": "mallory_source", "fifo": "mallory_fifo",
               "list_grade_id_solution": "mallory_grade_id", "link_to_dev_zero": "mallory_zero",
               "lone_surrogate_markdown": "mallory_surrogate", "bad_timestamp": "mallory_stamp",
               "tags_a_string": "mallory_tags"}
    for attack, student in attacks.items():
        scratch = tmp_path / attack
        ATTACKS[attack][0](scratch, config)
        os.rename(scratch / "mallory", subs / student)
    nfd = unicodedata.normalize("NFD", "zoë")
    (_folder(subs, nfd) / "activations.ipynb").write_bytes(demo_notebook("partial").read_bytes())
    (_folder(subs, "李雷") / "activations.ipynb").write_bytes(demo_notebook("blank").read_bytes())
    (_folder(subs, "eve" + INJECTION) / "activations.ipynb").write_bytes(
        demo_notebook("correct").read_bytes())
    _folder(subs, ".hidden")
    # the fuzzed submissions of 01 that are odd files: graded as blank by the intake, without a
    # kernel (each costs about a second of recording and rendering: the flipped and truncated
    # ones, as many again and all unreadable, are left to the intake-level fuzz test)
    fuzz = tmp_path / "fuzz"
    made = fuzz_class(fuzz)
    fuzz_graded = [f for f, how in made.items() if how.startswith("kind:")
                   and (fuzz / f / A1).exists() and intake.student_id(f)[0] == f]
    fuzz_blank = fuzz_graded
    for name in fuzz_graded:
        os.rename(fuzz / name, subs / name)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "instructor.pipeline", "grade", "--submissions", str(subs),
         "--jobs", "2", "--course-dir", str(course_dir), "--assignments", A1,
         "--grades-csv", str(tmp_path / "grades.csv"), "--cell-timeout", "10",
         "--submission-timeout", "60", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((course_dir / ".pipeline" / "report.json").read_text())
    scores = {s: row[A1][0] for s, row in report["scores"].items() if row[A1]}
    assert scores["correct"] == _expected("correct")  # as in the class without attackers
    assert scores["zoë"] == _expected("partial") and scores["李雷"] == _expected("blank")
    for student in ("mallory_grade_id", "mallory_surrogate", "mallory_tags"):
        assert scores[student] <= _expected("partial"), student
    assert scores["mallory_stamp"] <= _expected("partial")
    for student in ("mallory_source", "mallory_fifo", "mallory_zero", *fuzz_blank):
        assert scores[student] == 0, student
    with open(tmp_path / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["student_id"] for r in rows} == set(report["students"])
    assert set(fuzz_graded) <= set(scores)  # every fuzzed submission has its grade
    assert_no_forged_line(proc.stdout, flagged=[])
    printable_lines(proc.stderr)
    assert ".hidden: a hidden folder" in proc.stdout and "'eve\\n" in proc.stdout
    kernels = sum(s["executed"] for s in report["submissions"])
    print(f"class of {len(report['students'])} students ({len(fuzz_graded)} fuzzed), {kernels} "
          f"run in a kernel: {seconds:.1f} s; timings {report['timings']}")


def test_a_reset_notebook_keeps_the_release_it_claims():
    """Metadata nbformat rejects is reset to what grading reads; the release id the notebook
    claims is part of that (it is checked later against that release's records), the rest
    goes."""
    claimed = {"assignment": "05-schedules", "release": 1, "digest": "0" * 16}
    raw = {"cells": [{"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "a"},
                                                         "junk": object()},
                      "source": "x = 1", "outputs": [], "execution_count": 3}],
           "metadata": {"course_release": claimed, "kernelspec": 5}, "nbformat": 4,
           "nbformat_minor": 5}
    reset = intake.reset_metadata(raw)
    assert reset["metadata"] == {"course_release": claimed}
    assert reset["cells"][0]["metadata"] == {"nbgrader": {"grade_id": "a"}}
    raw["metadata"] = ["not", "a", "dict"]
    assert intake.reset_metadata(raw)["metadata"] == {}
