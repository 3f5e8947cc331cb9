"""The printed form of ``loglabel bench``: one line per phase, then the same-run ratios
against their budgets (printed, never asserted)."""

from __future__ import annotations

import os
from typing import Any

from labeler.tools.bench import GRACE, WINDOW

_NAMES = {
    "bare": "bare consumer + orjson",
    "bare_noparse": "bare consumer, no parse",
    "handjoin": "hand-written join",
    "columnar": "columnar hand join",
    "pipeline": "pipeline (drift on)",
    "no_drift": "pipeline, drift off",
    "workers2": "pipeline, 2 workers",
    "ingest": "ingest stage (columns)",
    "ingest_rows": "ingest stage (rows)",
    "ingest_before": "ingest stage (before)",
}


def _rate(r: dict[str, Any]) -> float:
    return r["events"] / r["seconds"] if r.get("seconds", 0) > 0 else float("nan")


def _cpu(r: dict[str, Any]) -> float:
    return 1e6 * r["cpu_s"] / max(r["events"], 1)


def _ratio(result: dict[str, Any], a: str, b: str) -> str:
    if a not in result or b not in result or not _rate(result[b]) > 0:
        return "n/a"
    return f"{_rate(result[a]) / _rate(result[b]):.2f}"


def _cpu_ratio(result: dict[str, Any], a: str, b: str) -> str:
    """``b``'s CPU per event over ``a``'s: the rate ratio on a machine with a free core."""
    if a not in result or b not in result or not _cpu(result[a]):
        return "n/a"
    return f"{_cpu(result[b]) / _cpu(result[a]):.2f}"


def report(result: dict[str, Any]) -> str:
    """The bench's figures as text."""
    lines = [f"events: {result['events']} ({result.get('envelope', 'fluentd')} envelope)",
             f"{'phase':<26}{'events/s':>10}{'cpu µs/event':>14}{'peak RSS MB':>13}"
             f"{'  equal to oracle':<18}"]
    for key, name in _NAMES.items():
        r = result.get(key)
        if r is None:
            continue
        mismatches = r.get("oracle_mismatches", "-")
        oracle = ("-" if mismatches == "-" else "unreadable" if mismatches is None
                  else "yes" if mismatches == 0 else f"no ({mismatches} rows differ)")
        lines.append(f"{name:<26}{_rate(r):>10,.0f}{_cpu(r):>14.1f}{r['peak_rss_mb']:>13.0f}"
                     f"  {oracle}")
    lines += [
        f"pipeline / bare consumer: {_ratio(result, 'pipeline', 'bare')} (by CPU per event: "
        f"{_cpu_ratio(result, 'pipeline', 'bare')}; budget: >= 0.5)",
        f"pipeline / hand-written join: {_ratio(result, 'pipeline', 'handjoin')}  "
        "(budget: >= 1.0, faster than writing it yourself)",
        f"columnar hand join / bare consumer: {_ratio(result, 'columnar', 'bare')} (by CPU per "
        f"event: {_cpu_ratio(result, 'columnar', 'bare')}; a columnar design's reach on "
        "kafka-python before durability, dead letters and drift)",
        f"ingest stage / bare consumer: {_ratio(result, 'ingest', 'bare')} columns, "
        f"{_ratio(result, 'ingest_rows', 'bare')} rows, {_ratio(result, 'ingest_before', 'bare')}"
        " before (budget: >= 0.6); by CPU per event: "
        f"{_cpu_ratio(result, 'ingest', 'bare')} columns, "
        f"{_cpu_ratio(result, 'ingest_before', 'bare')} before",
        f"2 workers / 1 worker: {_ratio(result, 'workers2', 'pipeline')}  (budget: >= 1.7 "
        "on 2 free cores); by CPU per event: "
        f"{_cpu_ratio(result, 'pipeline', 'workers2')} (1.00: the second worker adds no work)",
    ]
    others = [(_NAMES[key], result[key]["others_cores"]) for key in _NAMES
              if key in result and result[key].get("others_cores") is not None]
    if others:
        lines.append(f"the rest of the machine ({os.cpu_count()} cores) from each phase's first "
                     "message to its last, the broker mostly, in cores: "
                     + "; ".join(f"{name}: {cores:.2f}" for name, cores in others))
    bare, noparse, ingest = (result.get(k) for k in ("bare", "bare_noparse", "ingest"))
    if bare and noparse and ingest and _cpu(ingest) and _cpu(bare):
        floor = _cpu(noparse)
        lines.append(f"kafka-python's fetch and record parsing: {floor:.1f} µs/event, "
                     f"{floor / _cpu(ingest):.0%} of the ingest stage's CPU, "
                     f"{floor / _cpu(bare):.0%} of the bare consumer's")
    if ingest and ingest.get("fast_rows") is not None:
        share = ingest["fast_rows"] / max(ingest["events"], 1)
        lines.append(f"ingest rows on the fast path: {share:.0%}")
    pipe, quiet = result.get("pipeline"), result.get("no_drift")
    if pipe and quiet and pipe["cpu_s"] > 0:
        share = 1 - quiet["cpu_s"] / pipe["cpu_s"]
        lines.append(f"drift monitoring: {share:.0%} of the pipeline's CPU by the on/off "
                     "difference (budget: <= 15%)")
    if pipe and pipe.get("drift_cpu_s") is not None and pipe["cpu_s"] > 0:
        lines.append(f"drift monitoring timed inside the pipeline (its blocks, labels and "
                     f"state): {pipe['drift_cpu_s'] / pipe['cpu_s']:.0%} of its CPU, "
                     f"{1e6 * pipe['drift_cpu_s'] / max(pipe['events'], 1):.1f} µs/event")
    for key in ("pipeline", "workers2"):
        r = result.get(key)
        if r and r.get("latency_p99_s") is not None:
            lines.append(f"label latency of {_NAMES[key]}, window close to durable shard: "
                         f"p99 {r['latency_p99_s']:.2f} s (budget: 2 s, i.e. a row durable "
                         f"within window + grace + 2 s = {WINDOW + GRACE + 2:.0f} s of its "
                         "prediction once the watermark passed; output.flush_interval_s = 1 s)")
    if pipe and "workers2" in result:
        lines.append(f"2 workers: events per worker {result['workers2']['per_worker_events']}")
    return "\n".join(lines)
