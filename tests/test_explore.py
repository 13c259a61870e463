"""nnbolts.explore.explorer (the HTML of an interactive figure) and the Sphinx extension
tools/sphinx/vega_bundle.py that serves its JavaScript. tests/test_browser.py checks the
explorers in Chromium."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import altair as alt
import pytest

from nnbolts.explore import FIGURE_CLASS, explorer, spec_json
from tools.sphinx import vega_bundle


def chart(title: str = "y against x") -> alt.Chart:
    rows = [{"k": k, "x": x, "y": k * x} for k in (1, 2) for x in range(3)]
    k = alt.param(name="k", value=1, bind=alt.binding_range(min=1, max=2, step=1, name="k "))
    return (alt.Chart(alt.Data(values=rows), title=title).mark_line()
            .encode(x=alt.X("x:Q", title="x"), y=alt.Y("y:Q", title="y"))
            .add_params(k).transform_filter("datum.k == k"))


def spec_of(page: str) -> dict:
    (data,) = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', page,
                         re.DOTALL)
    return json.loads(data)


def test_the_figure_holds_the_spec_a_caption_and_a_fallback():
    page = explorer(chart(), name="demo", alt="A line whose slope the slider sets.").data
    assert page.startswith(f'<figure class="{FIGURE_CLASS}" data-explorer="demo">')
    assert page.endswith("</figure>") and page.count("<figure") == 1
    assert "<figcaption" in page and "A line whose slope the slider sets." in page
    assert "<noscript>" in page and "JavaScript" in page
    assert spec_of(page) == chart().to_dict()
    view = re.search(r'<div id="([^"]+)" class="nnbolts-explorer-view"', page).group(1)
    assert f'"{view}"' in page and f'id="{view}-spec"' in page and f'id="{view}-caption"' in page
    assert "vegaEmbed" in page and 'renderer: "svg"' in page and "actions: false" in page
    assert "http" not in page.replace(chart().to_dict()["$schema"], "")  # no CDN


def test_text_cannot_break_out_of_the_page():
    nasty = '</script><script>alert("x")</script><!-- & </figure>'
    page = explorer(chart(title=nasty), name=f'n"a<m>e {nasty}', alt=nasty).data
    assert page.count("</script>") == 2  # the spec's and the inline script's own
    assert page.count("</figure>") == 1 and page.count("<figure") == 1
    assert "<!--" not in page
    assert 'data-explorer="n&quot;a&lt;m&gt;e &lt;/script&gt;' in page
    assert spec_of(page)["title"] == nasty  # the same string after JSON.parse
    assert spec_json({"a": "</script>&"}) == '{"a":"\\u003c/script\\u003e\\u0026"}'


def test_each_explorer_has_its_own_ids():
    first = explorer(chart(), name="same", alt="one").data
    second = explorer(chart(), name="same", alt="one").data
    ids = lambda page: set(re.findall(r'\bid="([^"]+)"', page))  # noqa: E731
    assert len(ids(first)) == 3 and not ids(first) & ids(second)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids(explorer(
        chart(), name="é / <x>", alt="a").data))


def test_the_inline_script_waits_for_the_page_and_tolerates_no_bundle():
    page = explorer(chart(), name="demo", alt="a").data
    script = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)[0]
    assert 'typeof window.vegaEmbed !== "function") return;' in script
    assert "DOMContentLoaded" in script and "catch" in script


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"chart": 3, "name": "a", "alt": "b"}, TypeError, "chart must be an Altair chart"),
        ({"chart": {}, "name": "a", "alt": "b"}, ValueError, "chart gave an empty"),
        ({"name": "", "alt": "b"}, ValueError, "name must not be empty"),
        ({"name": 3, "alt": "b"}, TypeError, "name must be a str"),
        ({"name": "a", "alt": "  "}, ValueError, "alt must not be empty"),
        ({"name": "a", "alt": None}, TypeError, "alt must be a str"),
        ({"name": "a", "alt": "b", "noscript": ""}, ValueError, "noscript must not be empty"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    kwargs.setdefault("chart", chart())
    with pytest.raises(error, match=match):
        explorer(kwargs.pop("chart"), **kwargs)


def test_name_and_alt_are_keyword_only():
    with pytest.raises(TypeError):
        explorer(chart(), "demo", "alt")


def test_the_bundle_is_a_wrapped_classic_script():
    text = vega_bundle.bundle_text()
    assert text.count("window.vegaEmbed=") == 1
    body = text.split("(function () {\n", 1)[1]
    assert body.rstrip().endswith("})();")
    assert not re.search(r"(^|[;}\n])\s*(export|import)\s*[{*\"'a-zA-Z]", body)
    assert "import.meta" not in body
    assert 500_000 < len(text.encode()) < 1_000_000


def _app(tmp_path, fmt="html"):
    added = []
    builder = SimpleNamespace(format=fmt, outdir=str(tmp_path),
                              add_js_file=lambda name, **kw: added.append((name, kw)))
    return SimpleNamespace(builder=builder), added


def test_the_extension_writes_the_bundle_once_and_adds_it_to_explorer_pages_only(tmp_path):
    app, added = _app(tmp_path)
    vega_bundle.write_bundle(app)
    target = tmp_path / "_static" / vega_bundle.BUNDLE
    assert target.read_text() == vega_bundle.bundle_text()
    written = target.stat().st_mtime_ns
    vega_bundle.write_bundle(app)  # unchanged: not rewritten
    assert target.stat().st_mtime_ns == written
    assert not list(target.parent.glob("*.tmp"))

    page = explorer(chart(), name="demo", alt="a").data
    vega_bundle.add_bundle(app, "book/x", "page.html", {"body": "<p>" + page + "</p>"}, None)
    vega_bundle.add_bundle(app, "book/y", "page.html", {"body": "<p>no explorer</p>"}, None)
    vega_bundle.add_bundle(app, "genindex", "genindex.html", {}, None)
    assert added == [(vega_bundle.BUNDLE, {"defer": "defer"})]

    latex, _ = _app(tmp_path / "latex", fmt="latex")
    vega_bundle.write_bundle(latex)
    assert not (tmp_path / "latex").exists()
