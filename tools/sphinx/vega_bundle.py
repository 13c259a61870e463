"""Sphinx extension: the JavaScript of the book's interactive explorers, once, offline.

``nnbolts.explore.explorer`` writes each explorer as a ``<figure class="nnbolts-explorer">``
holding a Vega-Lite spec and a small script that calls ``window.vegaEmbed``. This extension
supplies ``vegaEmbed``:

* when the HTML builder starts, it writes vega, vega-lite and vega-embed
  (``vl_convert.javascript_bundle()`` from vl-convert-python, pinned in requirements.txt; about
  0.9 MB, no network) to ``_static/nnbolts-vega.js``, once per build;
* in ``html-page-context`` it adds ``<script defer src="_static/nnbolts-vega.js">`` to the pages
  whose body holds an explorer, and to no other page.

The bundle is an ES2020 script whose top level declares hundreds of one-letter ``const``s and
functions; as a classic script they would be globals shared with every other script of the
page (a second ``const n`` anywhere is a SyntaxError). The file therefore wraps it in a function
(the bundle assigns ``window.vegaEmbed``, ``window.vega`` and ``window.vegaLite`` itself), and is
loaded as a classic deferred script: it runs after the page is parsed and before
``DOMContentLoaded``, when the explorers' inline scripts call it. tests/test_browser.py checks the
explorers render and respond in Chromium with no console error and no request off the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

BUNDLE = "nnbolts-vega.js"
MARKER = 'class="nnbolts-explorer"'


def bundle_text() -> str:
    import vl_convert

    version = getattr(vl_convert, "__version__", "?")
    return (
        f"/* vega, vega-lite and vega-embed as bundled by vl-convert-python {version}\n"
        "   (BSD-3-Clause); wrapped in a function so that its names stay out of the page. */\n"
        "(function () {\n" + vl_convert.javascript_bundle() + "\n})();\n"
    )


def write_bundle(app) -> None:
    if app.builder.format != "html":
        return
    static = Path(app.builder.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    target = static / BUNDLE
    text = bundle_text()
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


def add_bundle(app, pagename, templatename, context, doctree) -> None:
    if MARKER not in (context.get("body") or ""):
        return
    # The builder's own list, which it restores before the next page: this page only
    # (app.add_js_file would also register the script for every later page).
    app.builder.add_js_file(BUNDLE, defer="defer")


def setup(app):
    app.connect("builder-inited", write_bundle)
    # Before unique_scripts (900), after the pages' own scripts (500).
    app.connect("html-page-context", add_bundle, priority=600)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
