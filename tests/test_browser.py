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
    if not CHROMIUM:
        return "no Chromium (apt-get install chromium chromium-driver)"
    if not CHROMEDRIVER:
        return "no chromedriver (apt-get install chromium-driver)"
    if not (HTML / "index.html").is_file() or not pages():
        return f"no built book in {HTML} (make book)"
    return None


# --- the local server and the browser -----------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

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
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --- what is measured on each page ----------------------------------------------------------

# Resolves when MathJax has typeset the page (or at once on a page without it).
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + 20000;
(function wait() {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(() => done("typeset"), (e) => done("MathJax failed: " + e));
  } else if (!mj && !document.querySelector(".math")) {
    done("no math");
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

return {title: document.title, images, math, players, figures};
"""

PLAYER_STATE = """
const slider = document.getElementById(arguments[0]);
const img = slider.closest(".animation").querySelector("img");
return [Number(slider.value), img.currentSrc || img.src];
"""


def _log(driver, kind: str) -> list:
    try:
        return driver.get_log(kind)
    except Exception:  # noqa: BLE001 - a driver without this log: nothing to read
        return []


def _requests(entries) -> list[str]:
    urls = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message.get("method") == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def _leaves_the_machine(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return False
    return parts.scheme not in {"http", "https"} or parts.hostname not in LOCAL_HOSTS


def _play(driver, player_id: str) -> dict:
    """Press Play on a player; its frame index and image must move on."""
    from selenium.webdriver.common.by import By

    slider = driver.find_element(By.ID, player_id)
    player = slider.find_element(By.XPATH, "./ancestor::div[contains(@class, 'animation')]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", player)
    before = driver.execute_script(PLAYER_STATE, player_id)
    player.find_element(By.CSS_SELECTOR, "button[title='Play']").click()
    after = before
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline:
        time.sleep(0.2)
        after = driver.execute_script(PLAYER_STATE, player_id)
        if after[0] >= before[0] + 2 and after[1] != before[1]:
            break
    pause = player.find_elements(By.CSS_SELECTOR, "button[title='Pause']")
    if pause:
        pause[0].click()
    return {"before": before[0], "after": after[0], "image_changed": after[1] != before[1]}


def inspect_page(driver, base: str, page: str) -> dict:
    driver.get(base + page)
    mathjax = driver.execute_async_script(WAIT_FOR_MATHJAX)
    driver.execute_async_script(WAIT_FOR_IMAGES)
    found = driver.execute_script(INSPECT)
    found["mathjax"] = mathjax
    for player in found["players"]:
        player.update(_play(driver, player["id"]))
    found["console"] = [
        e["message"] for e in _log(driver, "browser") if e.get("level") == "SEVERE"
    ]
    found["requests"] = _requests(_log(driver, "performance"))
    return found


def collect() -> dict:
    report = {"pages": {}, "seconds": 0.0}
    start = time.monotonic()
    with serve(HTML) as base, chromium() as driver:
        for page in pages():
            report["pages"][page] = inspect_page(driver, base, page)
    report["seconds"] = round(time.monotonic() - start, 1)
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
    print(f"{len(report['pages'])} pages in {report['seconds']} s")


def test_no_console_error(report):
    _fail_on([f"{page}: {message}" for page, found in report["pages"].items()
              for message in found["console"]], "errors in the browser console")


def test_no_request_leaves_the_machine(report):
    _fail_on([f"{page}: {url[:160]}" for page, found in report["pages"].items()
              for url in dict.fromkeys(found["requests"]) if _leaves_the_machine(url)],
             "requests to other machines (they fail offline)")


def test_every_image_loads(report):
    _fail_on([f"{page}: {img['src'][:120] or img['id'] or '<img> without src'}"
              for page, found in report["pages"].items() for img in found["images"]
              if not (img["src"] and img["complete"] and img["width"] > 0)],
             "images that did not load")


def test_math_is_typeset(report):
    problems = []
    for page, found in report["pages"].items():
        math = found["math"]
        if math["elements"] and not math["containers"]:
            problems.append(f"{page}: {math['elements']} math elements, no mjx-container "
                            f"({found['mathjax']})")
        problems += [f"{page}: not typeset: {tex}" for tex in math["untypeset"][:5]]
        problems += [f"{page}: MathJax error: {error}" for error in math["errors"][:5]]
        problems += [f"{page}: raw TeX in the text: …{text}…" for text in math["raw"][:5]]
    _fail_on(problems, "math not rendered")


def test_animations_play(report):
    problems, players = [], 0
    for page, found in report["pages"].items():
        for player in found["players"]:
            players += 1
            where = f"{page}: player {player['id']}"
            if player["frames"] < 2:
                problems.append(f"{where} has {player['frames']} frame")
            elif not (player["after"] > player["before"] and player["image_changed"]):
                problems.append(f"{where} did not advance after Play (frame {player['before']}"
                                f" -> {player['after']}, image changed: "
                                f"{player['image_changed']})")
            problems += [f"{where}: button {b['name'] or '?'} shows no icon or text"
                         for b in player["buttons"] if not (b["shown"] and b["name"])]
    _fail_on(problems, "animations")
    if not players:
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


def test_images_have_text_alternatives(report):
    problems = []
    for page, found in report["pages"].items():
        for img in found["images"]:
            if not real_alt(img["alt"], img["src"]):
                alt = "no alt" if img["alt"] is None else f"alt={img['alt'][:60]!r}"
                problems.append(f"{page}: {alt} on {img['id'] or img['src'][-70:]}")
        problems += [f"{page}: <figure> without an image, aria-label or caption"
                     for figure in found["figures"]
                     if not (figure["label"].strip() or figure["caption"])]
    _fail_on(problems, "images without a real text alternative")


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
