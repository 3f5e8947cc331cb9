"""``loglabel demo``: the whole job on a local broker, with a summary a person can read.

It simulates traffic with an injected drift into fresh topics (and a few
malformed messages, so the dead-letter topic has something to show), runs the
pipeline over it until idle (draining every window), compares the shards with
the simulator's exact truth, lists the drift events, and writes the HTML
report of the run (the CLI passes the report writer in: tools sit below ops).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from labeler.config import validate
from labeler.join.rules import join_rules
from labeler.logs import LOGGER_NAME, log_to_file, setup
from labeler.runtime.compose import build_worker
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec


def run_demo(bootstrap: str, output: Path, count: int, drift_at: float) -> dict[str, Any]:
    run = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]
    labels_path = output / run / "labels"
    config = validate({
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"demo-{run}"},
        "topics": {"predictions": f"demo-predictions-{run}", "outcomes": f"demo-outcomes-{run}",
                   "dead_letter": f"demo-dead-letter-{run}", "drift": f"demo-drift-{run}"},
        "join": {"window_s": 30.0, "early_tolerance_s": 5.0, "allowed_lateness_s": 5.0},
        "labels": [{"name": "clicked", "outcome": "click", "agg": "any"},
                   {"name": "click_delay_s", "outcome": "click", "agg": "first_delay"}],
        "output": {"path": str(labels_path), "flush_interval_s": 2.0},
        "logging": {"level": "WARNING", "status_interval_s": 1.0},
    })
    spacing = 0.05
    start = time.time() - count * spacing - 120  # yesterday's traffic, as in a backfill
    spec = TrafficSpec(count=count, seed=42, start=start, spacing=spacing, click_rate=0.12,
                       window=30.0, early_tolerance=5.0, max_disorder=2.0, drift_at=drift_at,
                       drift_shift=1.0, drift_click_factor=2.5)
    truth_path = output / run / "truth.csv"
    click.echo(f"simulating {count} predictions into {config.topics.predictions} "
               f"(drift injected at prediction {int(drift_at * count)}) ...")
    sent = send_traffic(config.kafka.client_options(), spec, config.topics.predictions,
                        config.topics.outcomes, envelope="fluentd", partitions=4,
                        truth=truth_path, labels=join_rules(config).labels)
    malformed = send_malformed(config.kafka.client_options(), config.topics.predictions)
    click.echo(f"sent {sent['prediction']} predictions, {sent['outcome']} outcomes and "
               f"{malformed} malformed messages; labeling ...")
    setup("WARNING")
    log_path = output / run / "loglabel.log"
    handler = log_to_file(str(log_path), "INFO")  # the report reads its drift and status lines
    try:
        worker = build_worker(config)
        began = time.monotonic()
        counters = worker.run(until_idle=3.0, drain=True)
        elapsed = time.monotonic() - began
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
        handler.close()
    import pandas as pd  # here: the CLI imports this module to list its commands

    shards = pd.read_parquet(labels_path)
    truth = pd.read_csv(truth_path)
    merged = truth.merge(shards, on="prediction_id", how="outer", suffixes=("_truth", "_out"),
                         indicator=True)
    drift_time = start + int(drift_at * count) * spacing
    return {
        "run": run, "config": config, "counters": counters, "elapsed": elapsed,
        "shards": shards, "truth": truth, "merged": merged, "labels_path": labels_path,
        "drift_time": drift_time, "start": start, "spacing": spacing,
        "events": list(getattr(worker.drift, "events", [])), "log_path": log_path,
        "report_path": output / run / "report.html",
    }


MALFORMED: tuple[bytes, ...] = (
    b"not json at all",                                        # not_json
    b'{"request_id": "bad-1", "model": "ctr-v3", "score": 0.5}',  # missing_time
    b'{"model": "ctr-v3", "features": {}, "score": 0.5, "time": 1.7e9}',  # missing_id
    b"[1, 2, 3]",                                              # not_object
)


def send_malformed(options: dict[str, Any], topic: str, copies: int = 5) -> int:
    """A few messages the decoder must dead-letter, with their reasons in the report."""
    from ingest.kafka.clients import new_producer

    producer = new_producer(options)
    try:
        for i in range(copies):
            for value in MALFORMED[: 1 + i % len(MALFORMED)]:
                producer.send(topic, value)
        producer.flush(timeout=30)
    finally:
        producer.close()
    return sum(1 + i % len(MALFORMED) for i in range(copies))


def summary(result: dict[str, Any]) -> str:
    c, shards, truth, merged = (result[k] for k in ("counters", "shards", "truth", "merged"))
    both = merged[merged["_merge"] == "both"]
    agree = int((both.label_clicked_truth == both.label_clicked_out).sum())
    root = Path(result["labels_path"])
    files = sorted(p for p in root.rglob("*.parquet")
                   if not any(s.startswith("_") for s in p.relative_to(root).parts))
    lines = [
        "",
        "== loglabel demo ==",
        f"messages read        {c['messages']} in {result['elapsed']:.1f} s "
        f"({c['prediction.decoded']} predictions, {c['outcome.decoded']} outcomes)",
        f"rows written         {len(shards)} (one per distinct prediction; "
        f"{c['duplicate_predictions']} duplicate predictions and {c['duplicate_outcomes']} "
        "duplicate clicks ignored)",
        f"positive rate        {shards.label_clicked.mean():.4f} labeled vs "
        f"{truth.label_clicked.mean():.4f} in the simulator's truth",
        f"agreement with truth {agree}/{len(truth)} rows identical, "
        f"{int((merged['_merge'] != 'both').sum())} missing or extra",
        f"outside the window   {c['outside_window']} clicks (late clicks), early expired "
        f"{c['early_expired']}, late {c['late_outcomes']}",
        f"shard files          {len(files)} under {result['labels_path']}",
    ]
    lines += [f"  {f.relative_to(result['labels_path'])}" for f in files[:6]]
    if len(files) > 6:
        lines.append(f"  ... and {len(files) - 6} more")
    events = result["events"]
    lines.append(f"drift events         {len(events)} (drift injected at event time "
                 f"{result['drift_time']:.0f}: f00 +1σ, click rate ×2.5)")
    for e in events[:12]:
        d = e.to_dict()
        where = (d["event_time"] - result["drift_time"]) / result["spacing"]
        lines.append(f"  {d['kind']:<10} {d['stream']:<14} {str(d['feature']):<14} "
                     f"{d['detector']:<10} at {where:+.0f} predictions from the drift")
    lines += [
        f"dead letters         {sum(v for k, v in c.items() if '.dead_letter.' in k)} "
        f"(malformed messages sent on purpose), in {result['config'].topics.dead_letter}",
        "",
        "read the shards:",
        f"  python -c \"import pandas as pd; print(pd.read_parquet('{result['labels_path']}')"
        ".head())\"",
    ]
    return "\n".join(lines)


@click.command("demo")
@click.option("--bootstrap", default="127.0.0.1:9092", show_default=True)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-output"), show_default=True)
@click.option("--count", type=int, default=40_000, show_default=True,
              help="Predictions to simulate.")
@click.option("--drift-at", type=float, default=0.6, show_default=True,
              help="Fraction of the run where the drift starts.")
def demo_command(bootstrap: str, output: Path, count: int, drift_at: float) -> None:
    """Simulate traffic with a drift on a local broker, label it, summarize, and report."""
    result = run_demo(bootstrap, output, count, drift_at)
    click.echo(summary(result))
    if REPORTER is not None:
        path = REPORTER(result)
        click.echo(f"\nthe report: {path.resolve()}\n  open it in a browser (one file, works "
                   "offline)")


Reporter = Callable[[dict[str, Any]], Path]
REPORTER: Reporter | None = None
"""Writes the HTML report of a demo run; set by the CLI (``labeler.ops.cli``)."""
