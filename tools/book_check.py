"""Execute every chapter of the book under a perturbed configuration (``make book-check``).

The book must build on machines it was not written on. ``make book`` executes the chapters once,
on this machine's CPU kernels, one thread, seed offset 0. This script executes them again — no
Sphinx build, only the notebooks — with another set of CPU kernels (``ATEN_CPU_CAPABILITY``),
another thread count and another seed offset (``NNBOLTS_SEED_OFFSET``, read by
``nnbolts.seeds``), so that a claim that held only for one machine, one thread count or one
lucky draw fails here instead of on a reader's laptop.

    python tools/book_check.py                          # the CI configuration
    python tools/book_check.py --capability avx2 --threads 4 --seed-offset 3 book/schedules.md

Every chapter is run even when an earlier one fails; the exit status is 1 if any failed. Each
failure prints the chapter, the cell's first line and the error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]

# The perturbed configuration CI runs, declared once (the Makefile passes no overrides).
DEFAULT_CAPABILITY = "default"  # torch's portable kernels: the most different from AVX-512
DEFAULT_THREADS = 2
DEFAULT_SEED_OFFSET = 1
CAPABILITIES = ("default", "avx2", "avx512")


def toc_chapters() -> list[Path]:
    """Every page of the table of contents, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return [ROOT / f"{name}.md" for name in files]


def execute(chapter: Path, timeout: int) -> tuple[bool, float, str]:
    """Run one chapter in a fresh kernel (which inherits this process's environment)."""
    notebook = jupytext.read(chapter)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(chapter.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        message = str(error).strip().splitlines()
        return False, time.perf_counter() - start, "\n    ".join(message[-12:])
    return True, time.perf_counter() - start, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", type=Path,
                        help="chapters to execute (default: every page of _toc.yml)")
    parser.add_argument("--capability", default=DEFAULT_CAPABILITY, choices=CAPABILITIES,
                        help="ATEN_CPU_CAPABILITY for the kernels (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="torch threads per kernel (default: %(default)s)")
    parser.add_argument("--seed-offset", type=int, default=DEFAULT_SEED_OFFSET,
                        help="NNBOLTS_SEED_OFFSET (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"Invalid --threads: {args.threads} (expected at least 1)")
    if args.seed_offset < 0:
        parser.error(f"Invalid --seed-offset: {args.seed_offset} (expected >= 0)")

    # Kernels are child processes: the environment set here is the one torch reads at import.
    os.environ["ATEN_CPU_CAPABILITY"] = args.capability
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ["NNBOLTS_SEED_OFFSET"] = str(args.seed_offset)
    os.environ.setdefault("MPLBACKEND", "agg")
    # Idle OpenMP threads sleep instead of spinning: on a loaded machine spinning threads of two
    # kernels' worth starve each other (a 1 s run took 60 s); results are unchanged.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    chapters = [c.resolve() for c in args.chapters] or toc_chapters()
    missing = [str(c) for c in chapters if not c.exists()]
    if missing:
        parser.error(f"no such chapter: {', '.join(missing)}")
    print(f"book-check: ATEN_CPU_CAPABILITY={args.capability}, {args.threads} threads, "
          f"NNBOLTS_SEED_OFFSET={args.seed_offset}", flush=True)
    failed = []
    total = time.perf_counter()
    for chapter in chapters:
        ok, seconds, message = execute(chapter, args.timeout)
        name = chapter.relative_to(ROOT) if chapter.is_relative_to(ROOT) else chapter
        print(f"  {'ok  ' if ok else 'FAIL'} {name} ({seconds:.1f} s)", flush=True)
        if not ok:
            failed.append(name)
            print(f"    {message}", flush=True)
    print(f"book-check: {len(chapters) - len(failed)}/{len(chapters)} chapters passed "
          f"in {time.perf_counter() - total:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
