"""The report of a dataset and its run: one section per model, one for the run.

:func:`build_report` takes what :mod:`labeler.ops.report.sources` read and
returns the page's HTML; :func:`write_report` writes it (temporary file, then
rename, so a reader never opens half a report).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from drift.settings import SkewSettings
from labeler.ops.report import charts
from labeler.ops.report.page import Page, Raw, esc, table
from labeler.ops.report.shaping import (
    compare_features,
    dead_letters,
    event_rows,
    iso,
    label_column,
    reference_profile,
    score_by_label,
    score_column,
    status_series,
    volume,
)
from labeler.ops.report.sources import DeadLetterRecord

DEFAULT_WINDOW = 1000
"""Rows in the warm-up reference and in the "now" window: the drift monitor's warm-up."""


@dataclass
class ReportInputs:
    """Everything a report draws; only ``rows`` is required."""

    rows: pd.DataFrame
    dataset: str = ""
    drift_events: Sequence[Mapping[str, Any]] = ()
    drift_source: str = "none given"
    status_lines: Sequence[Mapping[str, Any]] = ()
    dead_letters: Sequence[DeadLetterRecord] | None = None
    dead_letter_source: str = ""
    baseline: Mapping[str, Any] | None = None
    baseline_source: str = ""
    window: int = DEFAULT_WINDOW
    label: str | None = None
    score: str | None = None
    max_features: int = 40
    skew: SkewSettings = field(default_factory=SkewSettings)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _badge(kind: str) -> Raw:
    colour = charts.KIND_COLOURS.get(kind, "#333")
    return Raw(f'<span class="kind" style="background:{colour}">{esc(kind)}</span>')


def _events_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return '<p class="none">No drift events for this model.</p>'
    body = [[_badge(r["kind"]), r["stream"], r["feature"], r["time"],
             f"{_fmt(r['statistic'])} vs {_fmt(r['threshold'])}" if r["statistic"] is not None
             else "", r["detector"], r["sentence"], r["source"]] for r in rows]
    return table(["kind", "stream", "feature", "event time (UTC)", "statistic vs threshold",
                  "detector", "what happened", "evidence"], body)


def _model_section(page: Page, model: str, rows: pd.DataFrame, inputs: ReportInputs) -> None:
    label = label_column(rows, inputs.label)
    score = score_column(rows, inputs.score)
    events = event_rows(inputs.drift_events, model)
    t0, t1 = rows["event_time"].min(), rows["event_time"].max()
    rate = f", positive rate {rows[label].mean():.4f} ({label})" if label else ""
    page.add(f'<section class="model"><h2>Model {esc(model)}</h2>'
             f'<p class="facts">{len(rows)} labeled rows from {esc(iso(t0.timestamp()))} to '
             f'{esc(iso(t1.timestamp()))}{esc(rate)}; {len(events)} drift events.</p>')
    page.add(page.chart(charts.volume_figure(volume(rows, label), events)))
    page.add("<h3>Drift events</h3>" + _events_table(events))

    if inputs.baseline is not None:
        profile, current = dict(inputs.baseline), rows.iloc[-inputs.window:]
        reference = f"baseline profile ({inputs.baseline_source})"
    else:
        profile, current = reference_profile(rows, inputs.window)
        reference = f"warm-up (first {len(current)} rows)"
    compared = compare_features(current, profile, inputs.skew)
    page.add(f"<h3>Features: serving now vs {esc(reference)}</h3>"
             f'<p class="facts">Distance as the skew check measures it: Jensen-Shannon '
             f"(base 2) over the reference's histogram bins for numeric features "
             f"(threshold {inputs.skew.numeric_threshold:g}), L-infinity over category shares "
             f"for categorical ones (threshold {inputs.skew.categorical_threshold:g}); "
             f"largest first. Grey: the reference; blue: the last {len(current)} rows.</p>")
    if compared:
        shown = compared[: inputs.max_features]
        page.add('<div class="grid">' + "".join(
            page.chart(charts.feature_figure(c, reference)) for c in shown) + "</div>")
        if len(compared) > len(shown):
            rest = [[c.feature, c.kind, c.distance_name, _fmt(c.distance)]
                    for c in compared[len(shown):]]
            page.add(table(["feature", "kind", "distance", "value"], rest, numeric=(3,)))
    else:
        page.add('<p class="none">No feature columns (feat_*) to compare.</p>')

    page.add("<h3>Score by label, and calibration</h3>")
    if label and score:
        shaped = score_by_label(rows, score, label)
        page.add('<div class="grid">' + page.chart(charts.score_figure(shaped, score, label))
                 + page.chart(charts.calibration_figure(shaped, score, label)) + "</div>")
    else:
        page.add('<p class="none">Needs a numeric prediction column (pred_*) and a '
                 "boolean label column (label_*).</p>")
    page.add("</section>")


def _run_section(page: Page, inputs: ReportInputs) -> None:
    page.add('<section class="run"><h2>The run: dead letters, late and expired records</h2>')
    if inputs.dead_letters is not None:
        shaped = dead_letters(inputs.dead_letters)
        page.add(f'<p class="facts">{sum(shaped.totals.values())} dead letters in '
                 f"{esc(inputs.dead_letter_source)}.</p>")
        page.add(page.chart(charts.dead_letter_figure(shaped)))
        if shaped.totals:
            page.add(table(["reason", "messages"], list(shaped.totals.items()), numeric=(1,)))
    else:
        page.add('<p class="none">Dead letters: no dead-letter topic given '
                 "(--dead-letter-topic).</p>")
    if inputs.status_lines:
        page.add(page.chart(charts.status_figure(status_series(inputs.status_lines))))
        last = max(inputs.status_lines, key=lambda d: float(d.get("ts") or 0))
        keys = ["labeled", "positives", "late_outcomes", "late_predictions", "early_expired",
                "outside_window", "duplicate_predictions", "duplicate_outcomes", "dead_letters",
                "shards_written"]
        page.add(table(["counter", "last status line"],
                       [[k, last.get(k, "")] for k in keys if k in last], numeric=(1,)))
    else:
        page.add('<p class="none">Late and expired counts: no status lines in the log '
                 "given (--drift-log FILE, the run's JSON log).</p>")
    page.add("</section>")


def build_report(inputs: ReportInputs, script: str | None = None) -> str:
    """The report's HTML. ``script`` replaces plotly.js (for tests of the markup)."""
    rows = inputs.rows
    models = sorted(rows["model"].unique()) if len(rows) else []
    page = Page(f"loglabel report: {inputs.dataset or 'dataset'}",
                f"{len(rows)} rows, {len(models)} model(s); drift events from "
                f"{inputs.drift_source}; generated "
                f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}")
    if not models:
        page.add('<section class="run"><p class="none">The dataset has no rows yet.</p>'
                 "</section>")
    for model in models:
        _model_section(page, str(model), rows[rows["model"] == model], inputs)
    _run_section(page, inputs)
    return page.render(script)


def write_report(document: str, path: str | os.PathLike[str]) -> Path:
    """Write ``document`` to ``path`` atomically; the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, target)
    return target


def make_report(dataset: str | os.PathLike[str], output: str | os.PathLike[str], *,
                drift_log: str | os.PathLike[str] | None = None,
                drift_topic: str | None = None, dead_letter_topic: str | None = None,
                kafka_options: Mapping[str, Any] | None = None,
                baseline: str | os.PathLike[str] | None = None, **options: Any) -> Path:
    """Read every source named, build the report and write it to ``output``.

    ``drift_log`` is a run's JSON log (drift events and status lines);
    ``drift_topic`` and ``dead_letter_topic`` are read from their beginning to
    their current end with ``kafka_options``. Raises ``ConfigError`` naming a
    source that cannot be read.
    """
    from drift.baseline.profile import load_profile
    from drift.events import dedupe
    from labeler.ops.report.sources import (
        dead_letter_from_headers,
        drift_events_from_values,
        read_dataset,
        read_run_log,
        read_topic,
    )

    inputs = ReportInputs(read_dataset(dataset), dataset=str(dataset), **options)
    events: list[Mapping[str, Any]] = []
    sources = []
    if drift_log is not None:
        run_log = read_run_log(drift_log)
        events += run_log.drift
        inputs.status_lines = run_log.status
        sources.append(f"the log {drift_log}")
    if drift_topic is not None:
        # several workers report one change once each: the topic's readers' rule
        events += dedupe(drift_events_from_values(
            m.value for m in read_topic(kafka_options or {}, drift_topic)))
        sources.append(f"the topic {drift_topic}")
    if sources:
        inputs.drift_events = _unique(events)
        inputs.drift_source = " and ".join(sources)
    if dead_letter_topic is not None:
        inputs.dead_letters = [dead_letter_from_headers(m.headers or [], m.timestamp)
                               for m in read_topic(kafka_options or {}, dead_letter_topic)]
        inputs.dead_letter_source = f"the topic {dead_letter_topic}"
    if baseline is not None:
        inputs.baseline = load_profile(baseline)
        inputs.baseline_source = str(baseline)
    return write_report(build_report(inputs), output)


def _unique(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events once each: the log and the topic carry the same ones."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for e in events:
        key = (e.get("model"), e.get("kind"), e.get("stream"), e.get("feature"),
               e.get("event_time"), e.get("source"))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out
