"""The built book in a real browser: headless Chromium, driven by Selenium, opens every page
of ``_build/html`` (or ``$BOOK_HTML``) from a local web server and checks what a reader with
no network would meet:

* no console error (the browser log at level SEVERE: script errors such as a redeclared
  ``const``, and resources that failed to load);
* no request leaving the machine (every URL the page requests, read from Chrome's
  performance log, is on 127.0.0.1/localhost, or a ``data:``/``blob:``/``about:`` URL); the
  browser resolves no other host name, as on a machine without network;
* every ``<img>`` loaded (``complete`` and ``naturalWidth > 0``);
* math typeset by MathJax: every ``.math`` element MyST wrote holds an ``mjx-container``, no
  MathJax error, and no TeX left in the page's text outside code (``$$``, ``\\(``, ``\\[``,
  ``$x$``, ``\\frac``...);
* every animation (matplotlib's JavaScript player) advances after its Play button is
  pressed, and its buttons show an icon or text;
* every image has a real text alternative: a non-empty ``alt`` that is not a file name or
  path (what Sphinx writes when a cell output has no ``alt`` of its own);
* every interactive explorer (``nnbolts.explore.explorer``: a ``<figure class="nnbolts-explorer"
  data-explorer=NAME>`` that vega-embed fills) is where :data:`EXPLORERS` says, renders an SVG
  with a title and titled axes, has a text label on each control, and changing each control
  (and one arrow key on each slider) changes the SVG; its own markup stays within
  :data:`EXPLORER_BUDGET` per page and the shared script within :data:`BUNDLE_BUDGET`.

One browser opens each page once; under pytest-xdist the first worker to need the results
collects them and the others read them from a file. Without Chromium (``/usr/bin/chromium``
and ``/usr/bin/chromedriver``, or ``$CHROMIUM``/``$CHROMEDRIVER``), Selenium or a built book
the tests skip, unless ``CI_REQUIRE_BROWSER=1`` (set by .ci/run once it has installed the
browser): then they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("BOOK_HTML") or ROOT / "_build" / "html")
REQUIRED = os.environ.get("CI_REQUIRE_BROWSER") == "1"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"data", "blob", "about"}

# With `pytest --dist loadgroup` the checks run on one worker; with plain `-n 2` the report
# fixture shares one browser session between the workers through a file.
pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    # Offline like a reader's laptop on a train: no host name but localhost resolves, so a
    # CDN request fails at once (and shows up in the console and the request log).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def _which(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        found = shutil.which(name) or (Path("/usr/bin", name).is_file() and f"/usr/bin/{name}")
        if found:
            return found
    return None


# The interactive explorers each page must hold (nnbolts.explore.explorer's ``name``), by the
# page's file name: a page of this table that is built must hold exactly these, and no other
# page may hold one. In a build of the whole book every page of the table must be there.
EXPLORERS = {
    "initialization.html": ["initialization"],
    "optimizers.html": ["optimizers"],
    "gradient_descent.html": ["quartic"],
    "schedules.html": ["schedules"],
}
# What an explorer may add to a page: its own markup (spec and data) per page, and the script
# shared by every page with an explorer (tools/sphinx/vega_bundle.py), counted once: together
# within the 3 MB the book allows a page.
EXPLORER_BUDGET = 2_000_000
BUNDLE_BUDGET = 1_000_000
BUNDLE = "nnbolts-vega.js"

CHROMIUM = _which("CHROMIUM", "chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = _which("CHROMEDRIVER", "chromedriver")


def pages() -> list[str]:
    """Every HTML page of the book, relative to its root (not _static, _sources...)."""
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(HTML).parts)
    )


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    install = "(apt-get install chromium chromium-driver)"
    for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not (path and Path(path).is_file()):
            return f"no {name}{' at ' + path if path else ''} {install}"
    if not (HTML / "index.html").is_file() or not pages():
        return f"no built book in {HTML} (make book)"
    return None


# --- the local server and the browser -----------------------------------------------------


# A page with one of each fault the checks look for, served next to the book: the checks
# must find them all, so a browser log that stopped working cannot make them pass vacuously.
CONTROL_PAGE = "__browser_test_control__.html"
CONTROL_HTML = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>control</title>
<link rel="stylesheet" href="https://cdn.example.invalid/font-awesome.min.css">
</head><body><main>
<p>Untypeset: $$\frac{a}{b}$$ and $x$.</p>
<span class="math">\(y\)</span>
<img src="missing.png" alt="missing.png">
<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw==">
<div class="animation"><img id="_anim_imgctl" alt="a stalled player"
  src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw==">
  <input id="_anim_sliderctl" type="range" class="anim-slider" min="0" max="3" value="0">
  <div class="anim-buttons"><button title="Play"><i class="fa fa-play"></i></button></div>
</div>
<script>notDefined();</script>
</main></body></html>
"""


# Three explorers on the control page: one that works (the checks must find nothing), one whose
# controls the figure ignores, with an unlabelled control, no title and an untitled axis, and one
# whose spec vega-embed rejects. Served with the bundle from vl-convert at a test-only URL, so the
# control page does not depend on the book having an explorer.
CONTROL_BUNDLE = "__browser_test_vega__.js"


def _control_explorers() -> str:
    import altair as alt

    from nnbolts.explore import explorer

    rows = [{"k": k, "c": c, "x": x, "y": k * x + c} for k in (1, 2, 3) for c in (0, 5)
            for x in range(5)]
    k = alt.param(name="k", value=1, bind=alt.binding_range(min=1, max=3, step=1, name="Slope "))
    c = alt.param(name="c", value=0, bind=alt.binding_select(options=[0, 5], name="Offset "))
    good = alt.Chart(alt.Data(values=rows), title="A line y = k x + c").mark_line().encode(
        x=alt.X("x:Q", title="x"), y=alt.Y("y:Q", title="y", scale=alt.Scale(domain=[0, 20])),
    ).add_params(k, c).transform_filter("datum.k == k && datum.c == c")
    unused = [alt.param(name="u", value=1, bind=alt.binding_range(min=1, max=3, step=1,
                                                                 name="Ignored ")),
              alt.param(name="v", value="a", bind=alt.binding_radio(options=["a", "b"],
                                                                   name="Ignored too ")),
              alt.param(name="w", value=False, bind=alt.binding_checkbox(name=" "))]
    deaf = alt.Chart(alt.Data(values=rows)).mark_line().encode(
        x=alt.X("x:Q", title="x"), y=alt.Y("y:Q", title=None),
    ).add_params(*unused).transform_filter("datum.k == 1 && datum.c == 0")
    invalid = {"mark": "no-such-mark", "data": {"values": [{"x": 1}]},
               "encoding": {"x": {"field": "x", "type": "quantitative"}}}
    return "\n".join(
        explorer(chart, name=name, alt=f"control explorer {name}").data
        for name, chart in (("control-good", good), ("control-deaf", deaf),
                            ("control-invalid", invalid)))


def control_html() -> str:
    explorers = f'<script defer src="{CONTROL_BUNDLE}"></script>\n' + _control_explorers()
    return CONTROL_HTML.replace("</main>", explorers + "\n</main>")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        path = self.path.lstrip("/")
        if path in (CONTROL_PAGE, CONTROL_BUNDLE):
            if path == CONTROL_PAGE:
                body, kind = control_html().encode(), "text/html"
            else:
                from tools.sphinx.vega_bundle import bundle_text

                body, kind = bundle_text().encode(), "text/javascript"
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextmanager
def serve(directory: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=directory))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="nnbolts-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # The explicit driver path keeps Selenium Manager (which would download one) out of it.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        # Chrome's own start page (chrome:// requests) is not the book's: start from blank.
        driver.get("about:blank")
        _log(driver, "browser")
        _log(driver, "performance")
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --- what is measured on each page ----------------------------------------------------------

LOADED = """
return document.readyState === "complete" && document.body !== null
  && !document.querySelector("meta[http-equiv=refresh i]");
"""

# Resolves when MathJax has typeset the page (or at once on a page without it).
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + 20000;
(function wait() {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(() => done("typeset"), (e) => done("MathJax failed: " + e));
  } else if (!mj && !document.querySelector('script[src*="mathjax" i]')) {
    done("no MathJax on the page");
  } else if (Date.now() > deadline) {
    done("MathJax did not start");
  } else {
    setTimeout(wait, 50);
  }
})();
"""

# Resolves when every image has finished loading or failing (the player's first frame is
# set from a timer).
WAIT_FOR_IMAGES = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + 10000;
(function wait() {
  const pending = [...document.images].filter((img) => img.src && !img.complete);
  if (!pending.length || Date.now() > deadline) done(pending.length); else setTimeout(wait, 50);
})();
"""

INSPECT = r"""
const snippet = (text, at, len) =>
  text.slice(Math.max(0, at - 30), at + len + 30).replace(/\s+/g, " ").trim();
const images = [...document.images].map((img) => ({
  src: img.currentSrc || img.getAttribute("src") || "",
  alt: img.getAttribute("alt"),
  complete: img.complete,
  width: img.naturalWidth,
  id: img.id,
  section: (img.closest("section[id]") || {id: ""}).id,
}));

// TeX left in the text: outside code and outside the math MathJax has (or should have) taken.
const SKIP = "script, style, pre, code, kbd, samp, textarea, .highlight, mjx-container, .math";
const TEX = new RegExp([
  String.raw`\$\$|\\[()[\]]|\\[A-Za-z]{2,}`,  // display math, \( \[ delimiters, \frac...
  String.raw`(?:^|[^\\\w$])\$[^$\s](?:[^$\n]{0,80}?[^\s\\$])?\$(?![\w$])`,  // $x$
].join("|"), "g");
const raw = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (!parent || parent.closest(SKIP)) continue;
  const text = node.nodeValue;
  for (const m of text.matchAll(TEX)) raw.push(snippet(text, m.index, m[0].length));
}
const mathEls = [...document.querySelectorAll(".math")];
const math = {
  elements: mathEls.length,
  containers: document.querySelectorAll("mjx-container").length,
  untypeset: mathEls.filter((el) => !el.querySelector("mjx-container"))
    .map((el) => el.textContent.trim().slice(0, 80)),
  errors: [...document.querySelectorAll("mjx-merror")]
    .map((el) => (el.getAttribute("data-mjx-error") || el.textContent).slice(0, 80)),
  raw: raw,
};

const players = [...document.querySelectorAll(".animation")]
  .filter((p) => p.querySelector("input.anim-slider")).map((p) => ({
    id: p.querySelector("input.anim-slider").id,
    frames: Number(p.querySelector("input.anim-slider").max) + 1,
    buttons: [...p.querySelectorAll(".anim-buttons button")].map((b) => {
      const icon = [...b.querySelectorAll("svg, i")].some((el) => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0;
      });
      return {
        name: b.getAttribute("aria-label") || b.title || "",
        shown: icon || b.innerText.trim() !== "",
      };
    }),
  }));

const figures = [...document.querySelectorAll("figure, [role=figure]")]
  .filter((f) => !f.querySelector("img"))
  .map((f) => ({label: f.getAttribute("aria-label") || "",
               caption: (f.querySelector("figcaption") || {textContent: ""}).textContent.trim()}));

return {title: document.title, url: location.href, images, math, players, figures};
"""

PLAYER_STATE = """
const slider = document.getElementById(arguments[0]);
const img = slider.closest(".animation").querySelector("img");
return [Number(slider.value), img.currentSrc || img.src];
"""


# Resolves when every explorer's vega-embed call has finished (data-rendered or data-error, set
# by nnbolts.explore's inline script), or after 20 s; then describes each explorer.
WAIT_FOR_EXPLORERS = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + 20000;
const views = () => [...document.querySelectorAll("figure.nnbolts-explorer")]
  .map((f) => f.querySelector(".nnbolts-explorer-view"));
(function wait() {
  const pending = views().filter((v) => v && !v.hasAttribute("data-rendered")
                                      && !v.hasAttribute("data-error"));
  if (!pending.length || Date.now() > deadline) done(pending.length); else setTimeout(wait, 50);
})();
"""

EXPLORER_INSPECT = """
return [...document.querySelectorAll("figure.nnbolts-explorer")].map((figure) => {
  const view = figure.querySelector(".nnbolts-explorer-view") || {id: "", hasAttribute: () => false,
    getAttribute: () => null, querySelector: () => null, querySelectorAll: () => []};
  const svg = view.querySelector("svg");
  // Vega-Lite draws the grid as an axis of its own (no labels): not counted.
  const axes = svg ? [...svg.querySelectorAll("g.role-axis")]
    .filter((a) => a.querySelector("g.role-axis-label, g.role-axis-domain")) : [];
  return {
    name: figure.getAttribute("data-explorer") || "",
    id: view.id,
    rendered: view.hasAttribute("data-rendered") && !!svg,
    error: view.getAttribute("data-error"),
    caption: (figure.querySelector("figcaption") || {textContent: ""}).textContent.trim(),
    title: svg ? [...svg.querySelectorAll("g.role-title-text text")]
      .map((t) => t.textContent.trim()).join(" ") : "",
    axes: axes.length,
    untitled_axes: axes.filter((a) => !a.querySelector("g.role-axis-title text")
      || !a.querySelector("g.role-axis-title text").textContent.trim()).length,
    controls: [...view.querySelectorAll(".vega-bind")].map((bind) => {
      const input = bind.querySelector("select, input");
      return {
        kind: !input ? "none" : input.tagName === "SELECT" ? "select" : input.type,
        label: (bind.querySelector(".vega-bind-name") || {textContent: ""}).textContent.trim(),
        values: input && input.tagName === "SELECT" ? input.options.length
          : bind.querySelectorAll("input[type=radio]").length,
      };
    }),
  };
});
"""

# A digest of the explorer's SVG: what the reader sees.
EXPLORER_SVG = """
const svg = document.getElementById(arguments[0]).querySelector("svg");
if (!svg) return "";
const text = svg.outerHTML;
let h = 0;
for (let i = 0; i < text.length; i++) h = (Math.imul(31, h) + text.charCodeAt(i)) | 0;
return text.length + ":" + h;
"""

EXPLORER_CONTROL = """
return document.getElementById(arguments[0]).querySelectorAll(".vega-bind")[arguments[1]];
"""


def _log(driver, kind: str) -> list:
    return driver.get_log(kind)


def _requests(entries) -> list[str]:
    urls = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"][:300])  # not whole data: URLs
        elif message.get("method") == "Network.webSocketCreated":
            urls.append(message["params"]["url"][:300])
    return urls


def _leaves_the_machine(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return False
    return parts.scheme not in {"http", "https"} or parts.hostname not in LOCAL_HOSTS


def _play(driver, player_id: str, patience: float = 4.0) -> dict:
    """Press Play on a player; its frame index and image must move on within ``patience``
    seconds (the book's players show a frame every 100-350 ms)."""
    from selenium.webdriver.common.by import By

    slider = driver.find_element(By.ID, player_id)
    player = slider.find_element(By.XPATH, "./ancestor::div[contains(@class, 'animation')]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", player)
    before = driver.execute_script(PLAYER_STATE, player_id)
    player.find_element(By.CSS_SELECTOR, "button[title='Play']").click()
    after = before
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        time.sleep(0.1)
        after = driver.execute_script(PLAYER_STATE, player_id)
        if after[0] > before[0] and after[1] != before[1]:
            break
    pause = player.find_elements(By.CSS_SELECTOR, "button[title='Pause']")
    if pause:
        pause[0].click()
    return {"before": before[0], "after": after[0], "image_changed": after[1] != before[1]}


def _svg_changes(driver, view_id: str, before: str, act, patience: float) -> bool:
    """Do ``act()``; True if the explorer's SVG differs from ``before`` within ``patience``
    seconds (vega redraws asynchronously)."""
    act()
    deadline = time.monotonic() + patience
    while True:
        if driver.execute_script(EXPLORER_SVG, view_id) != before:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _exercise(driver, explorer: dict, patience: float) -> None:
    """Change each control of an explorer in turn, as a reader would (choose another option,
    click a radio button or the check box, drag a slider to its ends), and press an arrow key
    on each slider; record on each control whether the SVG changed. A control passes if some
    value changes the figure (in the state the earlier controls left it in)."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    for index, control in enumerate(explorer["controls"]):
        bind = driver.execute_script(EXPLORER_CONTROL, explorer["id"], index)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", bind)
        svg = lambda: driver.execute_script(EXPLORER_SVG, explorer["id"])  # noqa: E731
        acts = []
        if control["kind"] == "select":
            select = Select(bind.find_element("css selector", "select"))
            current = select.first_selected_option.get_attribute("index")
            acts = [partial(select.select_by_index, i) for i in range(control["values"])
                    if str(i) != current]
        elif control["kind"] == "radio":
            acts = [radio.click for radio in bind.find_elements("css selector", "input")
                    if not radio.is_selected()]
        elif control["kind"] == "checkbox":
            acts = [bind.find_element("css selector", "input").click]
        elif control["kind"] == "range":
            slider = bind.find_element("css selector", "input")
            at_max = slider.get_attribute("value") == slider.get_attribute("max")
            key = Keys.ARROW_LEFT if at_max else Keys.ARROW_RIGHT
            control["keyboard"] = _svg_changes(driver, explorer["id"], svg(),
                                               partial(slider.send_keys, key), patience)
            drag = "arguments[0].value = arguments[0][arguments[1]]; " \
                   "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
            acts = [partial(driver.execute_script, drag, slider, end) for end in ("max", "min")]
        control["changed"] = False
        for act in acts:
            if _svg_changes(driver, explorer["id"], svg(), act, patience):
                control["changed"] = True
                break


def _settle(driver, timeout: float = 20.0) -> None:
    """Wait for the page (after any redirect: index.html is a meta refresh) to have loaded."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if driver.execute_script(LOADED):
                return
        except WebDriverException:  # the document went away under the script: navigating
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{driver.current_url} did not finish loading in {timeout} s")


def inspect_page(driver, base: str, page: str, patience: float = 4.0) -> dict:
    driver.get(base + page)
    _settle(driver)
    mathjax = driver.execute_async_script(WAIT_FOR_MATHJAX)
    driver.execute_async_script(WAIT_FOR_IMAGES)
    found = driver.execute_script(INSPECT)
    found["mathjax"] = mathjax
    for player in found["players"]:
        player.update(_play(driver, player["id"], patience))
    found["explorers_pending"] = driver.execute_async_script(WAIT_FOR_EXPLORERS)
    found["explorers"] = driver.execute_script(EXPLORER_INSPECT)
    for explorer in found["explorers"]:
        if explorer["rendered"]:
            _exercise(driver, explorer, patience)
    found["console"] = [
        e["message"] for e in _log(driver, "browser") if e.get("level") == "SEVERE"
    ]
    found["requests"] = _requests(_log(driver, "performance"))
    return found


_EXPLORER_MARKUP = re.compile(r'<figure class="nnbolts-explorer".*?</figure>', re.DOTALL)


def explorer_bytes(page_html: str) -> int:
    """Bytes of a page's explorer markup: each ``<figure class="nnbolts-explorer">`` (its spec
    and data, caption and inline script). The spec's JSON escapes ``<``, so no ``</figure>``
    can hide inside it."""
    return sum(len(m.group(0).encode()) for m in _EXPLORER_MARKUP.finditer(page_html))


def weigh(page: str) -> dict:
    """The page's HTML file, its explorer markup, and the shared bundle if the page loads it."""
    path = HTML / page
    text = path.read_text(encoding="utf-8")
    bundle = HTML / "_static" / BUNDLE
    return {"page": path.stat().st_size, "explorers": explorer_bytes(text),
            "bundle": bundle.stat().st_size if BUNDLE in text and bundle.is_file() else 0}


def collect() -> dict:
    report = {"pages": {}, "seconds": 0.0}
    start = time.monotonic()
    with serve(HTML) as base, chromium() as driver:
        report["startup"] = round(time.monotonic() - start, 1)
        for page in pages():
            began = time.monotonic()
            report["pages"][page] = inspect_page(driver, base, page)
            # What the browser showed: index.html is a redirect to the first chapter.
            shown = urlsplit(report["pages"][page]["url"]).path.lstrip("/") or page
            report["pages"][page]["shown"] = shown
            report["pages"][page]["weight"] = weigh(shown if (HTML / shown).is_file() else page)
            report["pages"][page]["seconds"] = round(time.monotonic() - began, 1)
        report["seconds"] = round(time.monotonic() - start, 1)
        report["control"] = inspect_page(driver, base, CONTROL_PAGE, patience=1.0)
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"CI_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return collect()
    # Several xdist workers: the first one opens the pages, the others read its results.
    import fcntl

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    shared = tmp_path_factory.getbasetemp().parent / f"browser-report-{run}.json"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shared.exists():
            return json.loads(shared.read_text())
        result = collect()
        shared.write_text(json.dumps(result))
        return result


def _fail_on(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}:\n  " + "\n  ".join(problems), pytrace=False)


# --- the checks -----------------------------------------------------------------------------


def test_every_page_opens(report):
    assert set(report["pages"]) == set(pages())
    assert any(page.startswith("book/") for page in report["pages"])
    untitled = [page for page, found in report["pages"].items() if not found["title"].strip()]
    _fail_on(untitled, "pages without a title (did they load?)")
    slowest = sorted(report["pages"].items(), key=lambda item: -item[1]["seconds"])[:3]
    print(f"browser started in {report['startup']} s, {len(report['pages'])} pages in "
          f"{report['seconds']} s; slowest: "
          + ", ".join(f"{page} {found['seconds']} s" for page, found in slowest))


def console_problems(found: dict) -> list[str]:
    return list(found["console"])


def request_problems(found: dict) -> list[str]:
    return [url[:160] for url in dict.fromkeys(found["requests"]) if _leaves_the_machine(url)]


def image_problems(found: dict) -> list[str]:
    return [f"not loaded: {img['src'][:120] or img['id'] or '<img> without src'}"
            for img in found["images"] if not (img["src"] and img["complete"] and img["width"])]


def math_problems(found: dict) -> list[str]:
    math, problems = found["math"], []
    if math["elements"] and not math["containers"]:
        problems.append(f"{math['elements']} math elements and no mjx-container "
                        f"({found['mathjax']})")
    problems += [f"not typeset: {tex}" for tex in math["untypeset"][:5]]
    problems += [f"MathJax error: {error}" for error in math["errors"][:5]]
    problems += [f"raw TeX in the text: …{text}…" for text in math["raw"][:5]]
    return problems


def animation_problems(found: dict) -> list[str]:
    problems = []
    for player in found["players"]:
        where = f"player {player['id']}"
        if player["frames"] < 2:
            problems.append(f"{where} has {player['frames']} frame")
        elif not (player["after"] > player["before"] and player["image_changed"]):
            problems.append(f"{where} did not advance after Play (frame {player['before']} -> "
                            f"{player['after']}, image changed: {player['image_changed']})")
        problems += [f"{where}: button {b['name'] or '(no name)'} shows no icon or text"
                     for b in player["buttons"] if not (b["shown"] and b["name"])]
    return problems


def _fail_on_pages(report: dict, detector, what: str) -> None:
    _fail_on([f"{page}: {problem}" for page, found in report["pages"].items()
              for problem in detector(found)], what)


def test_the_checks_find_the_faults_of_a_broken_page(report):
    """The control page: a script error, a CDN link, a missing image, raw TeX, a player that
    does not play and images without alt. Each check must report it."""
    found = report["control"]
    assert any("notDefined" in message for message in console_problems(found))
    assert any("cdn.example.invalid" in url for url in request_problems(found))
    assert any("missing.png" in problem for problem in image_problems(found))
    math = " ".join(math_problems(found))
    assert "no mjx-container" in math and "not typeset" in math and "$$" in math
    assert "$x$" in math
    players = animation_problems(found)
    assert any("did not advance" in p for p in players)
    assert any("shows no icon or text" in p for p in players)
    assert len(alt_problems(found)) == 2  # alt="missing.png", and no alt


def test_no_console_error(report):
    _fail_on_pages(report, console_problems, "errors in the browser console")


def test_no_request_leaves_the_machine(report):
    _fail_on_pages(report, request_problems, "requests to other machines (they fail offline)")
    assert all(found["requests"] for found in report["pages"].values())  # the log works


def test_every_image_loads(report):
    _fail_on_pages(report, image_problems, "images that did not load")


def test_math_is_typeset(report):
    _fail_on_pages(report, math_problems, "math not rendered")


def test_animations_play(report):
    _fail_on_pages(report, animation_problems, "animations")
    if not any(found["players"] for found in report["pages"].values()):
        pytest.skip("no animation in the book")


# An alt that only names the file: Sphinx's default (the image's URI), a bare file name, a
# path, a content hash, or a generic word.
_FILE_LIKE = re.compile(r"^\S*[/\\]\S*$|^\S+\.(png|jpe?g|gif|svg|webp|avif|bmp)$|^[0-9a-f]{16,}$",
                        re.IGNORECASE)
_GENERIC = {"image", "img", "figure", "fig", "picture", "plot", "graph", "chart", "output",
            "png", "animation"}


def real_alt(alt: str | None, src: str = "") -> bool:
    """A text alternative that says something: not empty, not the file's name or path."""
    text = (alt or "").strip()
    if not text or text.lower() in _GENERIC or _FILE_LIKE.match(text):
        return False
    name = src.rsplit("/", 1)[-1]
    return not (name and not src.startswith("data:") and text in (src, name))


def test_real_alt_recognises_file_names():
    assert not real_alt(None) and not real_alt("  ") and not real_alt("figure")
    assert not real_alt("../_images/4f47a0.png", "../_images/4f47a0.png")
    assert not real_alt("loss.png") and not real_alt("4f472a4016f9475875667591f908647b")
    assert real_alt("Loss against epoch for SGD and Adam: Adam is lower after 5 epochs.")
    assert real_alt("ReLU", "http://127.0.0.1/_images/relu.png")


def alt_problems(found: dict) -> list[str]:
    problems = []
    for img in found["images"]:
        if not real_alt(img["alt"], img["src"]):
            alt = "no alt" if img["alt"] is None else f"alt={img['alt'][:40]!r}"
            where = f"#{img['section']}: " if img["section"] else ""
            what = img["id"] or img["src"].rsplit("/", 1)[-1][:16] + "…"
            problems.append(f"{where}{alt} on {what}")
    problems += ["<figure> without an image, aria-label or caption"
                 for figure in found["figures"]
                 if not (figure["label"].strip() or figure["caption"])]
    return problems


def test_images_have_text_alternatives(report):
    _fail_on_pages(report, alt_problems, "images without a real text alternative")


def test_animation_player_requests_nothing_outside_the_page():
    """nnbolts.plot.to_html: the player's HTML has no off-page URL and its image an alt."""
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from nnbolts.landscapes import descend
    from nnbolts.plot import animate_trajectories, to_html

    run = descend("quartic", torch.optim.SGD, [5.0], 3, lr=0.1)
    page = to_html(animate_trajectories("quartic", {"SGD": run}, figsize=(2, 2), dpi=30))
    assert "<link" not in page
    assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", page)
    assert "maxcdn" not in page and "font-awesome" not in page
    (img,) = re.findall(r"<img\b[^>]*>", page)
    alt = re.search(r'alt="([^"]*)"', img)
    assert alt and real_alt(alt.group(1)) and "SGD" in alt.group(1) and "quartic" in alt.group(1)
    assert 'alt="A &quot;quoted&quot; title' in to_html(
        animate_trajectories("quartic", run, frames=2, figsize=(2, 2), dpi=30),
        alt='A "quoted" title')


# --- the interactive explorers ---------------------------------------------------------------


def explorer_problems(found: dict) -> list[str]:
    problems = []
    if found.get("explorers_pending"):
        problems.append(f"{found['explorers_pending']} explorer(s) still drawing after 20 s")
    for explorer in found["explorers"]:
        where = f"explorer {explorer['name'] or '(no name)'}"
        if not explorer["rendered"]:
            problems.append(f"{where} did not render ({explorer['error'] or 'no vegaEmbed?'})")
            continue
        if not explorer["caption"]:
            problems.append(f"{where} has no caption (text alternative)")
        if not explorer["title"]:
            problems.append(f"{where} has no title")
        if not explorer["axes"] or explorer["untitled_axes"]:
            problems.append(f"{where}: {explorer['untitled_axes']} of {explorer['axes']} axes "
                            "without a title")
        if not explorer["controls"]:
            problems.append(f"{where} has no control")
        for number, control in enumerate(explorer["controls"], 1):
            what = f"{where}: control {number} ({control['kind']} {control['label']!r})"
            if not control["label"]:
                problems.append(f"{what} has no text label")
            if not control.get("changed"):
                problems.append(f"{what} does not change the figure")
            if control["kind"] == "range" and not control.get("keyboard"):
                problems.append(f"{what}: an arrow key leaves the figure as it was")
    return problems


def placement_problems(report: dict) -> list[str]:
    """Each page of :data:`EXPLORERS` holds exactly its explorers, other pages none; a build
    of the whole book (pages under book/) has every page of the table."""
    problems, seen = [], set()
    for page, found in report["pages"].items():
        name = found.get("shown", page).rsplit("/", 1)[-1]
        have = sorted(explorer["name"] for explorer in found["explorers"])
        want = sorted(EXPLORERS.get(name, []))
        seen.add(name)
        if have != want:
            problems.append(f"{page}: explorers {have}, expected {want}")
    if any(page.startswith("book/") for page in report["pages"]):
        problems += [f"{name}: not in the book" for name in EXPLORERS if name not in seen]
    return problems


def weight_problems(found: dict) -> list[str]:
    weight, problems = found["weight"], []
    if weight["explorers"] > EXPLORER_BUDGET:
        problems.append(f"explorer markup {weight['explorers'] / 1e6:.2f} MB > "
                        f"{EXPLORER_BUDGET / 1e6:.1f} MB")
    if weight["bundle"] > BUNDLE_BUDGET:
        problems.append(f"the shared bundle {weight['bundle'] / 1e6:.2f} MB > "
                        f"{BUNDLE_BUDGET / 1e6:.1f} MB")
    if found["explorers"] and not weight["bundle"]:
        problems.append(f"explorers but no {BUNDLE} loaded")
    return problems


def test_explorers_work(report):
    _fail_on_pages(report, explorer_problems, "interactive explorers")
    with_explorers = {page: found for page, found in report["pages"].items()
                      if found["explorers"]}
    for page, found in with_explorers.items():
        print(f"{page}: " + "; ".join(
            f"{e['name']}: {len(e['controls'])} controls" for e in found["explorers"]))
    if not with_explorers:
        pytest.skip("no explorer in this build")


def test_explorers_are_where_expected(report):
    _fail_on(placement_problems(report), "explorers on the wrong pages")


def test_explorer_pages_stay_in_budget(report):
    _fail_on_pages(report, weight_problems, "page weight")
    for page, found in report["pages"].items():
        weight = found["weight"]
        if weight["explorers"]:
            print(f"{page}: page {weight['page'] / 1e6:.2f} MB, explorer markup "
                  f"{weight['explorers'] / 1e6:.3f} MB, shared bundle {weight['bundle'] / 1e6:.3f}"
                  " MB (once for the book)")


def test_the_explorer_checks_find_a_broken_explorer(report):
    """The control page's three explorers: one that works (no problem found), one whose
    controls the figure ignores (one unlabelled, no title, an untitled axis), one that does
    not render."""
    found = report["control"]
    problems = explorer_problems(found)
    assert not [p for p in problems if "control-good" in p], problems
    deaf = [p for p in problems if "control-deaf" in p]
    assert sum("does not change the figure" in p for p in deaf) == 3, deaf
    assert any("arrow key leaves" in p for p in deaf) and any("no text label" in p for p in deaf)
    assert any("has no title" in p for p in deaf) and any("without a title" in p for p in deaf)
    assert any("control-invalid did not render" in p for p in problems), problems
    good = next(e for e in found["explorers"] if e["name"] == "control-good")
    assert [c["kind"] for c in good["controls"]] == ["range", "select"]


def test_explorer_placement_and_weight_checks():
    found = {"explorers": [{"name": "schedules"}], "weight": {"page": 10, "explorers": 10,
                                                               "bundle": 900_000}}
    assert not weight_problems(found)
    found["weight"].update(explorers=EXPLORER_BUDGET + 1, bundle=0)
    assert len(weight_problems(found)) == 2
    page = '<p>x</p><figure class="nnbolts-explorer" data-explorer="a">' + "y" * 10 + "</figure>"
    assert explorer_bytes(page + page) == 2 * (len(page) - len("<p>x</p>"))
    report = {"pages": {"book/schedules.html": {"explorers": [{"name": "schedules"}]},
                        "book/intro.html": {"explorers": [{"name": "quartic"}]}}}
    problems = placement_problems(report)
    assert any("book/intro.html" in p for p in problems)
    assert any("optimizers.html: not in the book" in p for p in problems)
    assert not any("schedules" in p for p in problems)
