"""The feedback page is safe to open: no student script runs in it, it loads nothing, its math
typesets offline, long lines wrap and its size is bounded (instructor/feedback.py and the template
instructor/templates/feedback_safe).

A crafted autograded notebook, with every way we know of to put script or a request in a page
(raw HTML and event handlers in markdown, ``javascript:`` links, text/html, JavaScript, SVG,
markdown, LaTeX and widget outputs, a PNG that is not base64, image metadata, raw cells, bad
cell types, grade ids and execution counts, widget state), goes through ``feedback.sanitize``
and the renderer the pipeline uses (nbconvert's HTMLExporter with
``feedback.converter_config``; ``pipeline._feedback_one`` hands the same config to nbgrader's
GenerateFeedback, which one test runs on a small gradebook). The page is parsed: its only
scripts are the template's own (their hashes are the page's Content-Security-Policy), no
element has an ``on*`` attribute, no URL is ``javascript:``, and nothing is fetched from
anywhere. In headless Chromium (skipped without it, unless ``CI_REQUIRE_BROWSER=1``), with and
without the policy: no payload runs, no request leaves the page, MathJax typesets, a 100 000
character line wraps, a matplotlib figure shows. 50 MB of output make a page of about 2 MB with
"output truncated" notes; 200 notebooks with values of the wrong type never stop the feedback.
No kernel runs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
import time
import zlib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from instructor import feedback

ROOT = Path(__file__).resolve().parents[1]


REQUIRED = os.environ.get("CI_REQUIRE_BROWSER") == "1"
# Every payload, should it run, leaves a mark the browser test reads.
RUN = "window.pwned=(window.pwned||[]).concat(['{}'])"
EVIL = "http://evil.example.invalid"


def _png() -> str:
    """A valid 1x1 PNG, base64."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]))
           + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))
    return base64.b64encode(raw).decode()


def _graded(cell, grade_id: str, *, solution: bool = False, points: int = 1):
    cell.metadata["nbgrader"] = {"grade": not solution or points > 0, "solution": solution,
                                 "locked": not solution, "grade_id": grade_id,
                                 "points": points, "schema_version": 3}
    return cell


def attack_notebook() -> nbformat.NotebookNode:
    """An autograded notebook whose student parts try every way into the page we know of."""
    md = "\n\n".join([
        "# Answer",
        f"<script>{RUN.format('md-script')}</script>",
        f"<img src=x onerror=\"{RUN.format('md-onerror')}\">",
        f"[a link](javascript:{RUN.format('md-link')})",
        f"<a href=\" JaVaScRiPt:{RUN.format('md-a')}\">another</a>",
        f"<iframe src=\"javascript:{RUN.format('md-iframe')}\"></iframe>",
        f"<svg onload=\"{RUN.format('md-svg')}\"><circle r=4 /></svg>",
        f"<details open ontoggle=\"{RUN.format('md-details')}\"><summary>s</summary></details>",
        f"<style>body {{ background: url({EVIL}/style.png) }}</style>",
        f"![pixel]({EVIL}/pixel.png)",
        f"<meta http-equiv=\"refresh\" content=\"0;url=javascript:{RUN.format('md-meta')}\">",
        f"<base href=\"{EVIL}/\">",
        f"<object data=\"{EVIL}/x.swf\"></object>",
        f"<form action=\"{EVIL}/\"><button formaction=\"javascript:{RUN.format('md-form')}\">"
        "b</button></form>",
        f"<math><mi xlink:href=\"javascript:{RUN.format('md-math')}\">x</mi></math>",
        f"<p style=\"background:url({EVIL}/p.png)\">styled</p>",
        "<!-- <script>comment</script> -->",
        "Math still typesets: $\\frac{a}{b} + \\sqrt{x}$ and "
        f"$\\href{{javascript:{RUN.format('tex-href')}}}{{y}}$ and "
        "$\\style{background:url(" + EVIL + "/tex.png)}{z}$ and $\\require{color}$",
        "$$\\sum_{i=1}^n \\eta_i \\le \\operatorname{max}(a, b)$$",
    ])
    answer = _graded(new_markdown_cell(md), "written_answer", solution=True, points=1)
    answer.attachments = {"x.png": {"text/html": f"<script>{RUN.format('attach')}</script>"}}
    payload = (f"<script>{RUN.format('html-out')}</script>"
               f"<img src=x onerror=\"{RUN.format('html-img')}\">")
    svg = (f"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"{RUN.format('svg-onload')}\">"
           f"<script>{RUN.format('svg-script')}</script><image href=\"{EVIL}/svg.png\"/>"
           "<circle r=\"4\"/></svg>")
    code = new_code_cell("def f(x):\n    return x\nprint('<script>')", execution_count=3)
    code.outputs = [
        new_output("display_data", data={"text/html": payload, "text/plain": "<HTML object>"}),
        new_output("display_data", data={"application/javascript": RUN.format("js-out")}),
        new_output("display_data", data={"image/svg+xml": svg}),
        new_output("display_data",
                   data={"image/png": f"AAAA\"><script>{RUN.format('png')}</script>"}),
        new_output("display_data", data={"image/png": _png()},
                   metadata={"image/png": {"width": f"1 onerror={RUN.format('width')}",
                                           "height": 7},
                             "filenames": {"image/png": f"{EVIL}/file.png"}}),
        new_output("display_data", data={"image/jpeg": _png()},
                   metadata={"image/jpeg": {"unconfined": True}}),
        new_output("display_data",
                   data={"text/markdown": f"<script>{RUN.format('md-out')}</script>"}),
        new_output("display_data",
                   data={"text/latex": f"$x$<script>{RUN.format('latex')}</script>"}),
        new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "</script><script>"
                                                          + RUN.format("widget") + "</script>"},
            "text/plain": "widget"}),
        new_output("execute_result", execution_count=1, data={"text/html": payload}),
        new_output("stream", name="stdout", text=f"<script>{RUN.format('stream')}</script>\n"),
        new_output("stream", name="<script>", text="odd stream name\n"),
        new_output("error", ename="<script>E</script>", evalue="<b>v</b>",
                   traceback=[f"\x1b[31m<script>{RUN.format('traceback')}</script>\x1b[0m"]),
        {"output_type": "<script>unknown</script>", "data": {}},
    ]
    code.metadata["tags"] = [f"\"><script>{RUN.format('tag')}</script>"]
    _graded(code, "f_solution", solution=True, points=0)
    test = _graded(new_code_cell("assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 2\n"
                                 "### END HIDDEN TESTS", execution_count=4), "test_f", points=2)
    test.outputs = [new_output("error", ename="AssertionError",
                               evalue="f(2) should be 2 (hint: return x)",
                               traceback=["Traceback", "  assert f(2) == 2", "AssertionError"])]
    bad_id = new_code_cell("x = 1")
    bad_id.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 5,
                                   "grade_id": f"\"><script>{RUN.format('grade-id')}</script>"}
    raw_html = new_raw_cell(f"<script>{RUN.format('raw-html')}</script>")
    raw_html.metadata["raw_mimetype"] = "text/html"
    raw_plain = new_raw_cell(f"<img src=x onerror=\"{RUN.format('raw')}\">")
    odd = new_markdown_cell(f"<script>{RUN.format('odd-type')}</script>")
    odd["cell_type"] = "heading"
    nb = nbformat.from_dict({"cells": [answer, code, test, bad_id, raw_html, raw_plain, odd],
                             "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    # what nbformat's constructors would refuse, as a hand-edited file holds it
    code.outputs[9]["execution_count"] = f"<script>{RUN.format('count')}</script>"
    code.execution_count = f"<script>{RUN.format('cell-count')}</script>"
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"x": "</script><script>" + RUN.format("widget-state") + "</script>"}}}
    nb.metadata["title"] = f"</title><script>{RUN.format('title')}</script>"
    return nb


def figure_png() -> str:
    """A matplotlib figure as the inline backend shows it (PNG, base64)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.plot([0, 1, 2], [1, 0, 2])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def long_line_notebook() -> nbformat.NotebookNode:
    cell = new_code_cell("print('x' * 100_000)  " + "y" * 5000, execution_count=1)
    cell.outputs = [new_output("stream", name="stdout", text="x" * 100_000 + "\n"),
                    new_output("display_data", data={"image/png": figure_png(),
                                                     "text/plain": "<Figure size 150x100>"}),
                    new_output("error", ename="ValueError", evalue="z" * 20_000,
                               traceback=["ValueError: " + "z" * 20_000])]
    return new_notebook(cells=[new_markdown_cell("A line: $e^{i\\pi} + 1 = 0$"), cell])


def render(nb: nbformat.NotebookNode, name: str = "notebook") -> str:
    """``nb`` sanitized and rendered as the pipeline renders it, scores filled in as nbgrader's
    GetGrades would from the gradebook."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    feedback.sanitize(nb)
    config = feedback.converter_config(Config())
    exporter = HTMLExporter(config=config)
    for pp in config.GenerateFeedback.preprocessors[1:]:  # GetGrades needs a gradebook
        exporter.register_preprocessor(pp(config=config), enabled=True)
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        if md.get("grade") or md.get("task"):
            points = md.get("points")
            md["score"], md["points"] = 0.0, points if isinstance(points, int) else 1
        if md.get("solution") or md.get("task"):
            md["comment"] = None
    resources = {"nbgrader": {"notebook": name, "score": 0.0, "max_score": 3.0,
                              "late_penalty": 0.0}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


@pytest.fixture(scope="module")
def attack_page() -> str:
    return render(attack_notebook(), name=f"<script>{RUN.format('name')}</script>")


# --- the page as text ------------------------------------------------------------------------

URL_ATTRIBUTES = ("href", "src", "action", "formaction", "data", "xlink:href", "poster",
                  "background", "srcset", "content")


def _csp(soup) -> str:
    meta = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})
    assert meta is not None, "the page has no Content-Security-Policy"
    return meta["content"]


def _script_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def check_page(page: str) -> None:
    """No script but the template's own, no handler, no javascript: URL, nothing fetched."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, "html.parser")
    csp = _csp(soup)
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'none'" and directives["img-src"] == "data:"
    assert "unsafe" not in directives["script-src"] and ":" not in directives["script-src"]
    allowed = set(re.findall(r"'sha256-[^']+'", csp))
    scripts = soup.find_all("script")
    own = feedback.page_resources(True)
    for script in scripts:
        assert not script.attrs, f"a script with attributes: {script.attrs}"
        assert _script_hash(script.string or "") in allowed
        assert (script.string or "") in (own["mathjax_config"], own["mathjax_loader"])
    assert len(scripts) in (0, 2)
    for tag in soup.find_all(True):
        for name, value in tag.attrs.items():
            assert not name.lower().startswith("on"), f"<{tag.name} {name}=...>"
            value = " ".join(value) if isinstance(value, list) else str(value)
            plain = re.sub(r"[\s\x00-\x1f]", "", value).lower()
            assert "javascript:" not in plain, f"<{tag.name} {name}={value[:80]!r}>"
            if name.lower() in URL_ATTRIBUTES and tag.name != "a":
                assert not plain.startswith(("http:", "https:", "//")), \
                    f"<{tag.name} {name}={value[:80]!r}> would be fetched"
        assert tag.name not in ("iframe", "object", "embed", "base", "form", "svg", "math",
                                "link", "frame", "applet", "button", "input"), f"<{tag.name}>"
        if tag.name == "meta":
            assert tag.get("http-equiv", "").lower() in ("", "content-security-policy")
        if tag.name == "img":
            assert tag.get("src", "data:image/").startswith("data:image/"), tag["src"][:80]
    for style in soup.find_all("style"):
        assert "evil" not in (style.string or "")
    assert "pwned" not in "".join(s.string or "" for s in scripts)
    # nothing from a CDN: MathJax is inline
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?https?:", page, re.I)


def test_no_student_script_reaches_the_page(attack_page):
    check_page(attack_page)
    # what was dropped is still shown to the student, as text
    for text in ("&lt;script&gt;window.pwned", "[application/javascript output, shown as text]",
                 "[image/png output that is not base64: not shown]", "odd stream name",
                 "f(2) should be 2 (hint: return x)", "(hidden tests: not shown in feedback)"):
        assert text in attack_page, text
    assert "assert f(2) == 2" not in attack_page
    # the valid PNG is kept, with its numeric height and without the injected width
    assert f'src="data:image/png;base64,{_png()}"' in attack_page
    assert 'height="7"' in attack_page


def test_sanitized_notebook_keeps_only_safe_types():
    nb = feedback.sanitize(attack_notebook())
    nbformat.validate(nb)
    for cell in nb.cells:
        assert cell.cell_type in ("code", "markdown")
        assert "attachments" not in cell
        for out in cell.get("outputs", []):
            assert out.output_type in ("stream", "display_data", "execute_result", "error")
            assert set(out.get("data", {})) <= set(feedback.SAFE_MIMES)
    assert set(nb.metadata) <= {"kernelspec", "language_info", "nbgrader"}


def test_page_has_no_cdn_and_wraps_long_lines():
    page = render(long_line_notebook())
    check_page(page)
    assert f'src="data:image/png;base64,{figure_png()}"' in page  # a matplotlib figure stays
    assert "cdn" not in _csp_free(page)
    assert re.search(r"white-space:\s*pre-wrap", page) and "overflow-wrap: anywhere" in page


def _csp_free(page: str) -> str:
    """The page without its inline MathJax (whose source names its CDN as a default path)."""
    own = feedback.page_resources(True)
    page = page.replace(own["mathjax_loader"], "")
    return page.lower()


def test_output_of_a_notebook_is_capped():
    """50 MB of output (one stream, a huge PNG, 100 000 small outputs, 5 000 cells) makes a
    page of a few MB, each cut marked, and the graded cells after it are shown whole."""
    huge = new_code_cell("print(...)", execution_count=1)
    huge.outputs = [new_output("display_data", data={"image/png": "A" * 8_000_000}),
                    new_output("stream", name="stdout", text="<tag>\x1b[31m" * 4_000_000),
                    *[nbformat.from_dict({"output_type": "stream", "name": "stdout",
                                          "text": "x\n"})] * 100_000]
    many = [nbformat.from_dict({"cell_type": "code", "source": "pass", "metadata": {},
                                "outputs": [], "execution_count": None})] * 5_000
    test = _graded(new_code_cell("assert True", execution_count=2), "test_after", points=1)
    test.outputs = [new_output("error", ename="AssertionError", evalue="hint: " + "h" * 50_000,
                               traceback=[])]
    nb = nbformat.from_dict({"cells": [huge, *many, test], "metadata": {}, "nbformat": 4,
                             "nbformat_minor": 5})
    t0 = time.perf_counter()
    page = render(nb)
    seconds = time.perf_counter() - t0
    assert "<script" not in page  # no math in this notebook: no MathJax in its page
    size = len(page.encode())
    assert size < 2 * feedback.OUTPUT_LIMIT + feedback.SOURCE_LIMIT + 1_000_000, size
    assert "[output truncated in the feedback:" in page
    assert "8000000 more characters of a image/png image not shown" in page
    assert "output(s) not shown" in page
    assert "cell(s) not shown" in page
    assert "hint: hhhh" in page and "test_after" in page
    assert seconds < 20, seconds
    print(f"50 MB of output: a page of {size} bytes in {seconds:.1f} s")
    check_page(page)


def test_a_modest_notebook_is_whole():
    nb = long_line_notebook()
    nb.cells[1].outputs = [new_output("stream", name="stdout", text="loss 0.25\n" * 1000)]
    page = render(nb)
    assert "truncated" not in page and page.count("loss 0.25") == 1000


def _mutate(node, rng, odd):
    """``node`` (JSON) with one value somewhere replaced by one of another type."""
    if isinstance(node, dict) and node and rng.random() < 0.8:
        key = rng.choice(sorted(node))
        return {**node, key: _mutate(node[key], rng, odd)}
    if isinstance(node, list) and node and rng.random() < 0.8:
        i = rng.randrange(len(node))
        return [*node[:i], _mutate(node[i], rng, odd), *node[i + 1:]]
    return rng.choice(odd)


def test_odd_types_never_stop_the_feedback():
    """200 notebooks with a value somewhere swapped for one of another type: sanitize never
    fails and makes a valid notebook, which renders to a safe page (a sample, for time)."""
    import json
    import random

    rng = random.Random(10)
    base = json.loads(json.dumps(attack_notebook()))
    odd = [None, 7, -1, 2.5, True, "", f"<script>{RUN.format('fuzz')}</script>", [], {},
           [1, {"a": None}], {"output_type": "error"}, ["a", "b"]]
    for i in range(200):
        nb = base
        for _ in range(rng.randint(1, 4)):
            nb = _mutate(nb, rng, odd)
        if not isinstance(nb, dict):
            continue
        nb = nbformat.from_dict(nb)
        if i % 20 == 0:
            check_page(render(nb))
        else:
            nbformat.validate(feedback.sanitize(nb))


def test_markdown_cleaner():
    clean = feedback.clean_html
    assert clean('<a href="https://pytorch.org">t</a>') == '<a href="https://pytorch.org">t</a>'
    assert clean('<a href="#sec">t</a>') == '<a href="#sec">t</a>'
    assert "href" not in clean('<a href="javascript:alert(1)">t</a>')
    assert "href" not in clean('<a href="data:text/html,x">t</a>')
    assert "src" not in clean(f'<img src="{EVIL}/x.png">')
    assert "&lt;script&gt;" in clean("<script>x</script>")
    assert "onerror" not in clean('<img src="data:image/png;base64,AAAA" onerror="x()">')
    assert clean('<h2 id="Intro">Intro</h2>') == '<h2 id="Intro">Intro</h2>'


# --- the real converter ----------------------------------------------------------------------

# nbgrader's add_submission autoflushes a SubmittedAssignment that is not yet in the session: an
# SAWarning (a RuntimeWarning, which this suite makes an error). grading.pipeline ignores it at
# import, but pytest resets the filters per test, so a worker that imported the pipeline in an
# earlier test would fail here: the same filter, stated for this test.
@pytest.mark.filterwarnings(r"ignore:Object of type <\w+> not in session")
def test_pipeline_renders_through_the_safe_template(tmp_path):
    """pipeline._feedback_one, as the pipeline calls it, on a one-student gradebook: nbgrader's
    GenerateFeedback with its GetGrades renders the page with the safe template."""
    from nbgrader.api import Gradebook
    from traitlets.config import Config

    from instructor import pipeline

    nb = attack_notebook()
    root = tmp_path / "course"
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "test-course"
    db = f"sqlite:///{root / 'gradebook.db'}"
    config.CourseDirectory.db_url = db
    root.mkdir()
    with Gradebook(db, course_id="test-course") as gb:
        gb.add_assignment("a1")
        gb.add_student("s1")
        gb.add_notebook("nb", "a1")
        for cell in nb.cells:
            md = cell.metadata.get("nbgrader")
            if not md or md.get("grade_id", "").startswith('"'):
                continue
            kind = "markdown" if cell.cell_type == "markdown" else "code"
            if md.get("grade"):
                gb.add_grade_cell(md["grade_id"], "nb", "a1", max_score=md["points"],
                                  cell_type=kind)
            if md.get("solution"):
                gb.add_solution_cell(md["grade_id"], "nb", "a1")
            if not md.get("solution"):
                gb.add_source_cell(md["grade_id"], "nb", "a1", cell_type=kind,
                                   source=cell.source, checksum="x", locked=True)
        gb.add_submission("a1", "s1")
    nb.metadata["nbgrader"] = {}
    # grade ids nbgrader knows; the bad one is left for sanitize to strip
    autograded = root / "autograded" / "s1" / "a1"
    autograded.mkdir(parents=True)
    (autograded / "timestamp.txt").write_text("2026-01-01 00:00:00\n")
    public = root / "public" / "s1" / "a1"
    public.mkdir(parents=True)
    nbformat.write(feedback.sanitize(nb), str(public / "nb.ipynb"))
    (public / "timestamp.txt").write_text("2026-01-01 00:00:00\n")
    (root / "feedback" / "s1").mkdir(parents=True)
    pipeline._feedback_one(config, "a1", "s1", "public")
    page = (root / "feedback" / "s1" / "a1" / "nb.html").read_text()
    check_page(page)
    assert "Content-Security-Policy" in page and "Score:" in page


# --- in a browser ------------------------------------------------------------------------------

def _browser_missing() -> str | None:
    try:
        import test_browser
    except ImportError as exc:
        return f"tests/test_browser.py cannot be imported ({exc})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    for name, path in (("chromium", test_browser.CHROMIUM),
                       ("chromedriver", test_browser.CHROMEDRIVER)):
        if not (path and Path(path).is_file()):
            return f"no {name} (apt-get install chromium chromium-driver)"
    return None


OPEN = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + 15000;
(function wait() {
  const mj = window.MathJax;
  const ready = mj && mj.startup && mj.startup.promise;
  if (ready) {
    mj.startup.promise.then(() => done(report("typeset")), (e) => done(report("failed " + e)));
  } else if (!mj || Date.now() > deadline) {
    done(report(mj ? "MathJax did not start" : "no MathJax"));
  } else {
    setTimeout(wait, 50);
  }
})();
function report(mathjax) {
  const links = [...document.querySelectorAll("a, [href]")].map((a) =>
    a.getAttribute("href") || a.getAttributeNS("http://www.w3.org/1999/xlink", "href") || "");
  const pre = [...document.querySelectorAll("pre")].sort(
    (a, b) => b.textContent.length - a.textContent.length)[0];
  const style = pre ? getComputedStyle(pre) : {};
  return {
    mathjax,
    pwned: window.pwned || [],
    containers: document.querySelectorAll("mjx-container").length,
    errors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    jsLinks: links.filter((h) => /^\\s*javascript:/i.test(h)),
    images: [...document.images].map((img) => img.complete && img.naturalWidth > 0),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    whiteSpace: style.whiteSpace, overflowWrap: style.overflowWrap,
  };
}
"""


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"CI_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    import test_browser

    with test_browser.chromium() as driver:
        yield driver, test_browser


def _open(browser, page: str, folder: Path) -> tuple[dict, list, list]:
    driver, tb = browser
    path = folder / f"page{len(list(folder.iterdir()))}.html"
    path.write_text(page, encoding="utf-8")
    tb._log(driver, "browser")
    tb._log(driver, "performance")
    driver.get(path.as_uri())
    time.sleep(0.3)  # handlers of elements that failed to load
    result = driver.execute_async_script(OPEN)
    console = [e for e in tb._log(driver, "browser") if e.get("level") == "SEVERE"]
    requests = [u for u in tb._requests(tb._log(driver, "performance"))
                if not u.startswith(("file:", "data:", "about:", "blob:"))]
    return result, console, requests


def test_in_a_browser(browser, attack_page):
    folder = Path(tempfile.mkdtemp(prefix="feedback-page-"))
    # the attack page, as rendered and with its policy taken out: the cleaning alone holds
    without_csp = re.sub(r"<meta content=\"[^\"]*\" http-equiv=\"Content-Security-Policy\"/>",
                         "", attack_page)
    assert without_csp != attack_page
    for page in (attack_page, without_csp):
        result, console, requests = _open(browser, page, folder)
        assert result["pwned"] == [], result["pwned"]
        assert result["jsLinks"] == []
        assert requests == [], requests
        assert result["mathjax"] == "typeset" and result["containers"] >= 4, result
    # an honest page: no console error at all, math typeset, a 100 000-character line wraps
    result, console, requests = _open(browser, render(long_line_notebook()), folder)
    assert console == [], console
    assert requests == []
    assert result["mathjax"] == "typeset" and result["containers"] == 1 and not result["errors"]
    assert result["whiteSpace"] == "pre-wrap", result
    assert result["images"] == [True], result  # the figure
    assert result["scrollWidth"] <= result["innerWidth"] + 1, result
