"""Plotly figures (plain dicts: ``{"data": [...], "layout": {...}}``) from shaped numbers.

The page hands each dict to ``Plotly.newPlot``; nothing here needs plotly's
Python package, so the figures are tested as data. Drift events are drawn on
the volume chart's time axis as dashed vertical lines, with a marker per event
that carries its sentence on hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labeler.ops.report.shaping import (
    DeadLetters,
    FeatureComparison,
    ScoreByLabel,
    Volume,
    bucket_name,
    plot_time,
)

Figure = dict[str, Any]
KIND_COLOURS = {"data": "#d62728", "prediction": "#9467bd", "concept": "#ff7f0e",
                "schema": "#8c564b", "skew": "#e377c2"}
REFERENCE, CURRENT = "#7f7f7f", "#1f77b4"
BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 60, "t": 40, "b": 45}, "height": 320,
    "legend": {"orientation": "h", "y": -0.2}, "template": None,
    "paper_bgcolor": "white", "plot_bgcolor": "#fafafa", "font": {"size": 12},
}


def _inside(x: float, anchor: str) -> dict[str, Any]:
    """A legend inside the plot's top corner (below it, it would cover the axis title)."""
    return {"legend": {"x": x, "xanchor": anchor, "y": 0.98, "bgcolor": "rgba(255,255,255,0.7)"}}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {**BASE_LAYOUT, "title": {"text": title, "font": {"size": 14}}, **extra}


def volume_figure(v: Volume, events: Sequence[dict[str, Any]]) -> Figure:
    """Labeled rows (bars) and positive rate (line, right axis) with the drift events."""
    x = [plot_time(t) for t in v.starts]
    data: list[dict[str, Any]] = [
        {"type": "bar", "x": x, "y": v.rows, "name": f"labeled rows per {bucket_name(v.bucket_s)}",
         "marker": {"color": "#c6dbef"}},
        {"type": "scatter", "mode": "lines+markers", "x": x, "y": v.positive_rate,
         "name": "positive rate", "yaxis": "y2", "line": {"color": CURRENT},
         "connectgaps": False},
    ]
    shapes = []
    rates = [r for r in v.positive_rate if r is not None]
    top = min(1.0, max(rates) * 1.3) if rates and max(rates) > 0 else 1.0
    timed = [e for e in events if e.get("t") is not None]
    for kind in sorted({e["kind"] for e in timed}):
        mine = [e for e in timed if e["kind"] == kind]
        colour = KIND_COLOURS.get(kind, "#333333")
        data.append({"type": "scatter", "mode": "markers", "name": f"drift: {kind}",
                     "x": [e["x"] for e in mine], "y": [top * 1.02] * len(mine),
                     "yaxis": "y2", "marker": {"symbol": "triangle-down", "size": 11,
                                               "color": colour},
                     "text": [e["sentence"] for e in mine], "hoverinfo": "text+x"})
        shapes += [{"type": "line", "xref": "x", "yref": "paper", "x0": e["x"], "x1": e["x"],
                    "y0": 0, "y1": 1,
                    "line": {"color": colour, "width": 1, "dash": "dash"}} for e in mine]
    layout = _layout("Labeled volume and positive rate over prediction time (UTC)",
                     xaxis={"type": "date"}, yaxis={"title": {"text": "rows"}},
                     yaxis2={"title": {"text": "positive rate"}, "overlaying": "y",
                             "side": "right", "range": [0, top * 1.08]},
                     shapes=shapes, bargap=0.05)
    return {"data": data, "layout": layout}


def feature_figure(c: FeatureComparison, reference_name: str) -> Figure:
    """The reference's and the current window's shares per bin or category."""
    measure = "Jensen-Shannon" if c.distance_name == "jensen_shannon" else "L-inf"
    flag = " (above threshold)" if c.distance == c.distance and c.distance >= c.threshold else ""
    title = (f"{c.feature}: {measure} {c.distance:.3f} vs threshold {c.threshold:g}{flag}"
             if c.distance == c.distance else f"{c.feature}: no served values")
    data = [
        {"type": "bar", "x": c.bins, "y": c.reference, "name": reference_name,
         "marker": {"color": REFERENCE}},
        {"type": "bar", "x": c.bins, "y": c.current, "name": f"now (last {c.n_current} values)",
         "marker": {"color": CURRENT}},
    ]
    layout = _layout(title, barmode="group", height=240, showlegend=False,
                     yaxis={"title": {"text": "share"}, "rangemode": "tozero"},
                     xaxis={"type": "category", "tickangle": -35 if c.kind == "numeric" else 0})
    return {"data": data, "layout": layout}


def score_figure(s: ScoreByLabel, score: str, label: str) -> Figure:
    """The score's distribution for positive and negative rows (overlaid histograms)."""
    centres = [(a + b) / 2 for a, b in zip(s.edges, s.edges[1:], strict=False)]
    width = (s.edges[1] - s.edges[0]) if len(s.edges) > 1 else 1.0
    data = [
        {"type": "bar", "x": centres, "y": s.negatives, "name": f"{label} = false",
         "width": width, "marker": {"color": REFERENCE}, "opacity": 0.6},
        {"type": "bar", "x": centres, "y": s.positives, "name": f"{label} = true",
         "width": width, "marker": {"color": "#d62728"}, "opacity": 0.6},
    ]
    layout = _layout(f"{score} by label", barmode="overlay", **_inside(0.98, "right"),
                     xaxis={"title": {"text": score}}, yaxis={"title": {"text": "rows"}})
    return {"data": data, "layout": layout}


def calibration_figure(s: ScoreByLabel, score: str, label: str) -> Figure:
    """Mean score vs positive rate per score bin, against the diagonal."""
    low, high = (s.edges[0], s.edges[-1]) if s.edges else (0.0, 1.0)
    data = [
        {"type": "scatter", "mode": "lines", "x": [low, high], "y": [low, high],
         "name": "perfectly calibrated", "line": {"color": REFERENCE, "dash": "dot"}},
        {"type": "scatter", "mode": "lines+markers", "x": s.mean_score, "y": s.positive_rate,
         "name": "observed", "line": {"color": CURRENT},
         "text": [f"{n} rows" for n in s.bin_rows], "hoverinfo": "text+x+y"},
    ]
    layout = _layout(f"Calibration: mean {score} vs {label} rate per score bin",
                     **_inside(0.02, "left"),
                     xaxis={"title": {"text": f"mean {score}"}},
                     yaxis={"title": {"text": f"{label} rate"}, "rangemode": "tozero"})
    return {"data": data, "layout": layout}


def dead_letter_figure(d: DeadLetters) -> Figure:
    """Dead letters per reason over their arrival time (stacked bars)."""
    x = [plot_time(t) for t in d.starts]
    data = [{"type": "bar", "x": x, "y": d.series[reason], "name": f"{reason} ({total})"}
            for reason, total in d.totals.items()]
    layout = _layout(f"Dead letters by reason per {bucket_name(d.bucket_s)} (arrival time, UTC)",
                     barmode="stack", xaxis={"type": "date"}, yaxis={"title": {"text": "messages"}})
    if not data:
        layout["annotations"] = [{"text": "no dead letters", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return {"data": data, "layout": layout}


def status_figure(series: dict[str, Any]) -> Figure:
    """Late, early-expired and dead-letter counters of the run's status lines."""
    x = [plot_time(t) for t in series["t"]]
    data = [{"type": "scatter", "mode": "lines+markers", "x": x, "y": values, "name": name}
            for name, values in series["counters"].items()]
    layout = _layout("Late and expired records (cumulative, from the status log lines)",
                     xaxis={"type": "date"}, yaxis={"title": {"text": "count"},
                                                    "rangemode": "tozero"})
    if not x:
        layout["annotations"] = [{"text": "no status lines", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return {"data": data, "layout": layout}
