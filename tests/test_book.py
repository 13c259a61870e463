"""The book: every _toc.yml entry became a page, no page shows an error, math renders offline,
and a chapter whose cell raises fails the (strict) build.

`make test` builds the book (`make book`) before running pytest; these tests read that build.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.book_check import toc_chapters

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


def toc_files():
    return [str(page.relative_to(ROOT).with_suffix("")) for page in toc_chapters()]


@pytest.fixture(scope="module")
def built():
    if not (HTML / "index.html").exists():
        pytest.fail("the book has not been built: run `make book` (make test does it first)")
    return HTML


@pytest.mark.parametrize("entry", toc_files())
def test_every_toc_entry_has_a_page_without_errors(built, entry):
    page = built / f"{entry}.html"
    assert page.exists(), f"{entry} in _toc.yml produced no page"
    html = page.read_text()
    assert "Traceback (most recent call last)" not in html, f"{entry} shows a traceback"
    for marker in ('class="output traceback', "output_error", "ansi-red-intense-fg"):
        assert marker not in html, f"{entry} contains error output ({marker})"
    source = (ROOT / f"{entry}.md").read_text()
    assert re.search(r"^# ", source, re.M), f"{entry} has no title"


def test_math_renders_without_network(built):
    assert (built / "_static" / "mathjax" / "tex-chtml.js").exists()
    for page in built.rglob("*.html"):
        for src in re.findall(r'<script[^>]+src="([^"]+)"', page.read_text()):
            assert not src.startswith(("http:", "https:", "//")), f"{page.name} loads {src}"


def test_every_exercise_can_be_downloaded_from_the_book(built):
    # Students get the released notebooks from the chapter that explains their topic; the
    # link must carry the committed file byte for byte, not a stale copy of an older build.
    downloads = {p.name: p for p in (built / "_downloads").rglob("*.ipynb")}
    released = sorted((ROOT / "exercises").rglob("*.ipynb"))
    assert released
    for notebook in released:
        assert notebook.name in downloads, f"no chapter links to {notebook.relative_to(ROOT)}"
        assert downloads[notebook.name].read_bytes() == notebook.read_bytes(), notebook.name


def test_a_raising_cell_fails_the_build(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "tools" / "sphinx", tmp_path / "tools" / "sphinx")  # local extension
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "page.md").write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "# A broken chapter\n\n```{code-cell} ipython3\nraise RuntimeError('boom')\n```\n")
    result = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(tmp_path), "--builder", "html", "-W", "--keep-going"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, "a chapter whose cell raises was built without failing"
    assert "boom" in result.stdout + result.stderr
