"""Interactive explorers: precomputed grids shown as Vega-Lite figures in the static book.

An explorer is an Altair chart whose controls (sliders, drop-down lists, radio buttons, check
boxes bound to Vega-Lite parameters) select among results computed at build time through
``nnbolts``; the page runs no kernel and needs no network. One module per explorer computes its
grid and builds its chart (``nnbolts.explore.schedules``, ...); this module only embeds a chart in
a page::

    from nnbolts.explore import explorer
    explorer(chart, name="schedules", alt="Learning rate and training loss of ...")

:func:`explorer` returns an ``IPython.display.HTML`` holding a
``<figure class="nnbolts-explorer" data-explorer="NAME">``: the chart's Vega-Lite spec as JSON in a
``<script type="application/json">`` (every ``<``, ``>`` and ``&`` written as a JSON ``\\u`` escape,
so no ``</script>`` can end it early), a ``<div>`` that vega-embed fills with an SVG, a
``<noscript>`` line for readers without JavaScript, a ``<figcaption>`` with the text alternative,
and a short inline script. That script waits for the page to be parsed and calls
``window.vegaEmbed`` if it is there; without it (plain Jupyter, or a page without the bundle) it
does nothing and raises nothing.

The JavaScript (vega, vega-lite and vega-embed, from ``vl_convert.javascript_bundle()``, about
0.9 MB) is not in the figure: the Sphinx extension ``tools/sphinx/vega_bundle.py`` writes it once
to the book's ``_static/`` and adds ``<script defer src=...>`` to the pages that hold an explorer.

Explained in: book/library.md
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
from typing import Any

__all__ = ["BUNDLE_GLOBAL", "FIGURE_CLASS", "explorer", "spec_json"]

#: The class of the ``<figure>`` that the Sphinx extension and the browser test look for.
FIGURE_CLASS = "nnbolts-explorer"
#: What the JavaScript bundle defines on ``window``.
BUNDLE_GLOBAL = "vegaEmbed"

_counter = itertools.count(1)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

DEFAULT_NOSCRIPT = (
    "This interactive figure needs JavaScript; the static figure of this section shows the "
    "same results."
)

# Runs where it stands in the page; the deferred bundle runs after parsing, before
# DOMContentLoaded. No exception escapes: without the bundle the figure stays empty.
_EMBED_SCRIPT = """(function () {
  var id = "%(id)s";
  function show() {
    var target = document.getElementById(id);
    var data = document.getElementById(id + "-spec");
    if (!target || !data || typeof window.vegaEmbed !== "function") return;
    try {
      var spec = JSON.parse(data.textContent);
      window.vegaEmbed(target, spec, {renderer: "svg", actions: false})
        .then(function () { target.setAttribute("data-rendered", "true"); })
        .catch(function (error) { target.setAttribute("data-error", String(error)); });
    } catch (error) {
      target.setAttribute("data-error", String(error));
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", show);
  } else {
    show();
  }
})();"""


def spec_json(spec: dict[str, Any]) -> str:
    """``spec`` as compact JSON that is safe inside any HTML element: ``<``, ``>`` and ``&``
    are written ``\\u003c``, ``\\u003e``, ``\\u0026`` (the same string to ``JSON.parse``)."""
    text = json.dumps(spec, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _spec_of(chart: Any) -> dict[str, Any]:
    if isinstance(chart, dict):
        spec = chart
    elif callable(getattr(chart, "to_dict", None)):
        spec = chart.to_dict()
    else:
        raise TypeError(
            f"explorer: chart must be an Altair chart (or a Vega-Lite spec as a dict), "
            f"got {type(chart).__name__}"
        )
    if not isinstance(spec, dict) or not spec:
        raise ValueError("explorer: chart gave an empty Vega-Lite spec")
    return spec


def _text(value: Any, argument: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"explorer: {argument} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"explorer: {argument} must not be empty")
    return value.strip()


def explorer(chart: Any, *, name: str, alt: str, noscript: str | None = None):
    """Embed ``chart`` (an Altair chart) in the page as an interactive figure.

    ``name`` identifies the explorer (``data-explorer`` on the figure; the browser test looks
    explorers up by it); ``alt`` is the figure's text alternative, shown as its caption and
    read by screen readers: say what is shown and what the controls choose. ``noscript`` is
    the line shown where JavaScript is off (default: a pointer to the section's static figure).
    All three are HTML-escaped. Returns an ``IPython.display.HTML``.
    """
    spec = _spec_of(chart)
    name = _text(name, "name")
    alt = _text(alt, "alt")
    noscript = DEFAULT_NOSCRIPT if noscript is None else _text(noscript, "noscript")
    data = spec_json(spec)
    digest = hashlib.sha1(data.encode()).hexdigest()[:8]
    slug = _ID_UNSAFE.sub("-", name).strip("-") or "explorer"
    div_id = f"nnbolts-explorer-{slug}-{digest}-{next(_counter)}"
    page = (
        f'<figure class="{FIGURE_CLASS}" data-explorer="{html.escape(name, quote=True)}">\n'
        f'<div id="{div_id}" class="{FIGURE_CLASS}-view" '
        f'aria-describedby="{div_id}-caption"></div>\n'
        f'<noscript><p>{html.escape(noscript)}</p></noscript>\n'
        f'<figcaption id="{div_id}-caption">{html.escape(alt)}</figcaption>\n'
        f'<script type="application/json" id="{div_id}-spec">{data}</script>\n'
        f"<script>{_EMBED_SCRIPT % {'id': div_id}}</script>\n"
        "</figure>"
    )
    from IPython.display import HTML

    return HTML(page)
