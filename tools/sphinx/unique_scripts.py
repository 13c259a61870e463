"""Sphinx extension: each ``<script>`` of a page is written once.

Sphinx 7.4's ``Sphinx.add_js_file``, called after the HTML builder has started, records the
script twice: in the builder's list with the file name ``None`` and, when writing begins,
again from the extension registry with the file name ``""``. The two entries are unequal, so
an inline script lands twice in every page. sphinx-thebe (loaded by Jupyter Book whether or
not thebe is used) adds its inline settings that late, in ``env-before-read-docs``, and
``const THEBE_JS_URL = ...`` declared twice is a syntax error: every page logged
"Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared" (and
sphinx-togglebutton's ``var togglebuttonSelector`` was doubled too, silently).

This drops the repeats from the page's script list just before the page is rendered. Used
through ``sphinx.local_extensions`` in ``_config.yml``; tests/test_browser.py checks that the
pages load without a console error.
"""

from __future__ import annotations


def _key(script) -> tuple[str, tuple[tuple[str, str], ...]]:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: the list is the builder's, which it restores after each page.
    scripts[:] = unique


def setup(app):
    # Late, after the handlers that add a page's own scripts (MathJax at the default 500).
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
