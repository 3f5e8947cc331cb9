"""One self-contained HTML page: plotly.js inlined, the figures as JSON, tables as HTML.

Nothing is fetched when the page opens (no CDN, no fonts), so a report
mailed or archived still renders offline. Once every chart has been drawn
the page sets ``document.body.dataset.rendered`` to the number of charts
(or ``"error"``), which the browser test waits for.
"""

from __future__ import annotations

import html
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;
background:#f3f4f6}
header{background:#1f2937;color:#f9fafb;padding:14px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}
main{padding:8px 28px 40px;max-width:1500px}
section.model,section.run{background:#fff;border-radius:8px;padding:8px 20px 20px;margin:18px 0;
box-shadow:0 1px 3px rgba(0,0,0,.1)}
h2{font-size:19px;border-bottom:1px solid #e5e7eb;padding-bottom:6px}
h3{font-size:15px;margin:20px 0 6px;color:#374151}
.facts{color:#4b5563;font-size:13px;margin:0 0 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:10px}
.chart{min-height:260px}
table{border-collapse:collapse;font-size:12.5px;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.kind{display:inline-block;padding:0 6px;border-radius:4px;color:#fff;font-size:11.5px}
.none{color:#6b7280;font-style:italic}
"""

RENDER = """
(function () {
  var figs = JSON.parse(document.getElementById('loglabel-figures').textContent);
  var ids = Object.keys(figs);
  var options = {responsive: true, displaylogo: false};
  Promise.all(ids.map(function (id) {
    return Plotly.newPlot(id, figs[id].data, figs[id].layout, options);
  })).then(function () {
    document.body.dataset.rendered = String(ids.length);
  }, function (err) {
    console.error('loglabel report: a chart failed: ' + err);
    document.body.dataset.rendered = 'error';
  });
})();
"""


def plotly_js() -> str:
    """plotly.js as shipped inside the plotly package (no download, no CDN)."""
    source = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    return source.read_text(encoding="utf-8").replace("</script", "<\\/script")


@dataclass
class Page:
    """A page being assembled: HTML fragments in order, and the figures they place."""

    title: str
    subtitle: str
    parts: list[str] = field(default_factory=list)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def chart(self, figure: dict[str, Any], css: str = "chart") -> str:
        """A placeholder ``div`` for ``figure``; its HTML, to put where it belongs."""
        ident = f"chart-{len(self.figures) + 1}"
        self.figures[ident] = figure
        return f'<div class="{css}" id="{ident}"></div>'

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def render(self, script: str | None = None) -> str:
        """The whole document. ``script`` replaces plotly.js (tests of the markup)."""
        figures = orjson.dumps(self.figures, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        figures = figures.replace("</", "<\\/")
        js = plotly_js() if script is None else script
        return "".join([
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            f"<title>{esc(self.title)}</title><style>{STYLE}</style></head><body>",
            f"<header><h1>{esc(self.title)}</h1><p>{esc(self.subtitle)}</p></header><main>",
            *self.parts,
            "</main>",
            f"<script>{js}</script>",
            f"<script type=\"application/json\" id=\"loglabel-figures\">{figures}</script>",
            f"<script>{RENDER}</script></body></html>",
        ])


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
          numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped unless given as :class:`Raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell.html if isinstance(cell, Raw) else esc(cell)
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(frozen=True, slots=True)
class Raw:
    """Markup already escaped (a badge, a link) for :func:`table`."""

    html: str
