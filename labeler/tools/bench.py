"""``loglabel bench``: pipeline throughput as a ratio to a bare consumer, in one run.

Both phases run in their own child process over the same freshly produced
raw events, so CPU time and peak RSS are each phase's own:

(a) **bare**: a kafka-python consumer that reads both raw topics and
    ``orjson.loads`` every value, nothing else;
(b) **pipeline**: ``loglabel run`` over the same topics until idle (decode,
    map, join, Parquet shards, checkpoints, drift monitoring);
(c) **ingest**: the repartition stage alone (consume raw, decode, map,
    validate, produce re-keyed records and wait for their acks).

Rates are events per second from the first message received to the last
one processed (group join and the idle wait are left out of both). The
figures are printed, never asserted: the machines are shared and noisy, so
the ratio (b)/(a) is the number to read.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import click
import orjson
from kafka import KafkaConsumer

from labeler.config import validate
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec


def _bare(bootstrap: str, topics: list[str], expected: int) -> dict[str, Any]:
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    seen = 0
    first = last = None
    cpu0 = time.process_time()
    deadline = time.monotonic() + 300
    while seen < expected and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for messages in batch.values():
            if first is None:
                first = time.monotonic()
            for m in messages:
                orjson.loads(m.value)
            seen += len(messages)
        if batch:
            last = time.monotonic()
    cpu = time.process_time() - cpu0
    consumer.close()
    return {"events": seen, "seconds": (last or 0) - (first or 0), "cpu_s": cpu}


def _pipeline(config_json: str, expected: int) -> dict[str, Any]:
    from labeler.logs import setup
    from labeler.runtime.compose import build_worker

    config = validate(json.loads(config_json))
    setup("WARNING")
    worker = build_worker(config)
    cpu0 = time.process_time()
    counters = worker.run(until_idle=3.0, drain=True)
    cpu = time.process_time() - cpu0
    seconds = (worker.last_input_at or 0) - (worker.first_input_at or 0)
    latencies = sorted(worker.latencies)

    def pct(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    return {"events": counters["messages"], "seconds": seconds, "cpu_s": cpu,
            "labeled": counters["labeled"], "rows_written": counters["rows_written"],
            "latency_p50_s": pct(0.5), "latency_p99_s": pct(0.99)}


def _ingest(config_json: str, expected: int) -> dict[str, Any]:
    from labeler.logs import setup
    from labeler.runtime.compose import build_ingest

    config = validate(json.loads(config_json))
    setup("WARNING")
    stage = build_ingest(config)
    cpu0 = time.process_time()
    began = time.monotonic()
    counters = stage.run(until_idle=3.0)
    cpu = time.process_time() - cpu0
    seconds = (stage.last_input_at or began) - (stage.first_input_at or began)
    return {"events": counters["raw_messages"], "seconds": seconds, "cpu_s": cpu,
            "rekeyed": counters["rekeyed"]}


def _child(phase: str, args: dict[str, Any]) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, "-m", "labeler.tools.bench", phase, json.dumps(args)],
        check=True, capture_output=True, text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = after.ru_maxrss / 1024  # the largest child so far (Linux: KiB)
    result["child_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def run_bench(bootstrap: str, count: int, seed: int = 1, envelope: str = "fluentd",
              partitions: int = 4) -> dict[str, Any]:
    """Produce ``count`` predictions (plus clicks) into fresh topics and measure (a), (b)."""
    run = uuid.uuid4().hex[:8]
    topics = {"predictions": f"bench-predictions-{run}", "outcomes": f"bench-outcomes-{run}",
              "dead_letter": f"bench-dlq-{run}", "drift": f"bench-drift-{run}"}
    spec = TrafficSpec(count=count, seed=seed, spacing=0.005, click_rate=0.1, window=60.0,
                       early_tolerance=5.0, max_disorder=2.0)
    sent = send_traffic({"bootstrap_servers": [bootstrap]}, spec, topics["predictions"],
                        topics["outcomes"], envelope=envelope, partitions=partitions)
    total = sent["prediction"] + sent["outcome"]
    with tempfile.TemporaryDirectory(prefix="loglabel-bench-") as out:
        config = {
            "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{run}"},
            "topics": topics,
            "join": {"window_s": 60.0, "early_tolerance_s": 5.0, "allowed_lateness_s": 5.0},
            "output": {"path": out, "flush_interval_s": 1.0},
        }
        bare = _child("bare", {"bootstrap": bootstrap,
                               "topics": [topics["predictions"], topics["outcomes"]],
                               "expected": total})
        pipeline = _child("pipeline", {"config": json.dumps(config), "expected": total})
        quiet = dict(config, drift={"enabled": False},
                     kafka={"bootstrap_servers": bootstrap, "group_id": f"bench-nodrift-{run}"},
                     output={"path": out + "/nodrift", "flush_interval_s": 1.0})
        no_drift = _child("pipeline", {"config": json.dumps(quiet), "expected": total})
        rekey = dict(config, ingest={"repartition": "always"},
                     topics=dict(topics, rekeyed_predictions=f"bench-rk-p-{run}",
                                 rekeyed_outcomes=f"bench-rk-o-{run}"),
                     kafka={"bootstrap_servers": bootstrap, "group_id": f"bench-rk-{run}"})
        ingest = _child("ingest", {"config": json.dumps(rekey), "expected": total})
    return {"events": total, "bare": bare, "pipeline": pipeline, "ingest": ingest,
            "no_drift": no_drift}


def format_report(result: dict[str, Any]) -> str:
    bare, pipe, ingest = result["bare"], result["pipeline"], result["ingest"]

    def rate(r: dict[str, Any]) -> float:
        return r["events"] / r["seconds"] if r["seconds"] > 0 else float("nan")

    lines = [
        f"events: {result['events']}",
        f"{'phase':<14}{'events/s':>10}{'cpu µs/event':>15}{'peak RSS MB':>14}",
    ]
    for name, r in (("(a) bare", bare), ("(b) pipeline", pipe), ("(c) ingest", ingest)):
        lines.append(f"{name:<14}{rate(r):>10,.0f}{1e6 * r['cpu_s'] / max(r['events'], 1):>15.1f}"
                     f"{r['peak_rss_mb']:>14.0f}")
    lines.append(f"ratio (b)/(a): {rate(pipe) / rate(bare):.2f}  (budget: >= 0.5)")
    lines.append(f"ratio (c)/(a): {rate(ingest) / rate(bare):.2f}  (ingest stage alone, "
                 "consume raw + decode + validate + produce re-keyed; budget: >= 0.4)")
    lines.append(f"rows written by (b): {pipe.get('rows_written')}")
    quiet = result["no_drift"]
    share = 1 - quiet["cpu_s"] / pipe["cpu_s"] if pipe["cpu_s"] > 0 else float("nan")
    lines.append(f"drift monitoring: {share:.0%} of (b)'s CPU (b without drift: "
                 f"{1e6 * quiet['cpu_s'] / max(quiet['events'], 1):.1f} µs/event; budget: <= 25%)")
    if pipe.get("latency_p99_s") is not None:
        lines.append(f"label latency, window close to durable shard: p50 "
                     f"{pipe['latency_p50_s']:.2f} s, p99 {pipe['latency_p99_s']:.2f} s "
                     "(budget: p99 <= 2 s; bounded by output.flush_interval_s = 1 s here)")
    return "\n".join(lines)


@click.command("bench")
@click.option("--bootstrap", default="127.0.0.1:9092", show_default=True)
@click.option("--count", type=int, default=200_000, show_default=True,
              help="Predictions to simulate (clicks come on top).")
@click.option("--envelope", default="fluentd", show_default=True)
def bench_command(bootstrap: str, count: int, envelope: str) -> None:
    """Measure pipeline throughput against a bare consumer of the same events."""
    result = run_bench(bootstrap, count, envelope=envelope)
    click.echo(format_report(result))


def _main(argv: list[str]) -> None:
    phase, args = argv[0], json.loads(argv[1])
    if phase == "bare":
        print(json.dumps(_bare(args["bootstrap"], args["topics"], args["expected"])))
    elif phase == "pipeline":
        print(json.dumps(_pipeline(args["config"], args["expected"])))
    elif phase == "ingest":
        print(json.dumps(_ingest(args["config"], args["expected"])))
    else:
        raise SystemExit(f"unknown phase {phase}")


if __name__ == "__main__":
    _main(sys.argv[1:])
