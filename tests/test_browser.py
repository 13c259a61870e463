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
  path (what Sphinx writes when a cell output has no ``alt`` of its own).

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


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        if self.path.lstrip("/") == CONTROL_PAGE:
            body = CONTROL_HTML.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
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
    found["console"] = [
        e["message"] for e in _log(driver, "browser") if e.get("level") == "SEVERE"
    ]
    found["requests"] = _requests(_log(driver, "performance"))
    return found


def collect() -> dict:
    report = {"pages": {}, "seconds": 0.0}
    start = time.monotonic()
    with serve(HTML) as base, chromium() as driver:
        report["startup"] = round(time.monotonic() - start, 1)
        for page in pages():
            began = time.monotonic()
            report["pages"][page] = inspect_page(driver, base, page)
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
