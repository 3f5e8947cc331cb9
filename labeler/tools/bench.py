"""``loglabel bench``: the pipeline and its stages as ratios to bare consumers and to a
hand-written join, all over the same freshly produced raw events, in one run.

Each phase runs in its own child process, so CPU time and peak RSS are each phase's own:

* **bare**: a kafka-python consumer of both raw topics that ``orjson.loads`` every
  value, nothing else (the baseline); **bare, no parse**: the same without
  ``orjson`` (what kafka-python's own fetching and record parsing cost);
* **hand join**: the same join written by hand on kafka-python, without durability
  or drift (``labeler.tools.bench_handjoin``), checked against the oracle;
* **columnar join**: that join again, a poll batch at a time with Arrow
  (``labeler.tools.bench_columnar``), checked against the oracle: what a columnar
  design reaches on kafka-python before durability, dead letters and drift;
* **pipeline**: ``loglabel run`` until idle (decode, map, join, Parquet shards,
  checkpoints, drift monitoring), checked against the oracle; and again without drift;
* **2 workers**: two pipeline processes in one group over the same events (on a
  2-core machine: one core each), checked against the oracle; both are built before
  either starts reading, so they join the group together;
* **ingest**: the repartition stage alone (consume raw, decode, validate, produce
  re-keyed records and wait for their acks), with its columnar path and with the row
  path it is checked against (``ingest.repartition.rekey``), and the row path as it
  ran before the columnar path (the same-run "before").

Rates are events per second from the first message received to the last one
processed (group join and the idle wait are left out). The figures are printed,
never asserted: the machines are shared and noisy, so read the same-run ratios.
``--decoders`` adds the decoders alone, without a broker (``bench_decode``).
"""

from __future__ import annotations

import json
import os
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

from ingest.records import Outcome, Prediction
from ingest.wire.envelope import ENVELOPE_TIME_KEY
from labeler.config import validate
from labeler.tools.bench_machine import MachineSampler
from labeler.tools.oracle import oracle_labels
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import ENVELOPES, TrafficSpec, resolved, stream

WINDOW, EARLY, LATENESS, GRACE = 60.0, 5.0, 5.0, 0.0
TIME_KEYS = {"fluent-bit": ENVELOPE_TIME_KEY}  # the event time's field, if not ``time``
PHASES = ("bare", "bare_noparse", "handjoin", "columnar", "pipeline", "no_drift", "workers2",
          "ingest", "ingest_rows", "ingest_before")


def _bare(bootstrap: str, topics: list[str], expected: int, parse: bool = True
          ) -> dict[str, Any]:
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
            if parse:
                for m in messages:
                    orjson.loads(m.value)
            seen += len(messages)
        if batch:
            last = time.monotonic()
    cpu = time.process_time() - cpu0
    consumer.close()
    return {"events": seen, "seconds": (last or 0) - (first or 0), "cpu_s": cpu,
            "first_at": first, "last_at": last}


def _pipeline(config_json: str, expected: int, together: bool = False) -> dict[str, Any]:
    from labeler.logs import setup
    from labeler.runtime.compose import build_worker
    from labeler.runtime.drift_hub import DriftHub

    config = validate(json.loads(config_json))
    setup("WARNING")
    worker = build_worker(config)
    if together:  # tell the parent this worker is built, and wait for its word to start
        print("ready", flush=True)
        sys.stdin.readline()
    cpu0 = time.process_time()
    counters = worker.run(until_idle=3.0, drain=True)
    cpu = time.process_time() - cpu0
    latencies = sorted(worker.latencies)

    def pct(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    hub = worker.drift
    drift_cpu = hub.cpu_s() if isinstance(hub, DriftHub) else None
    return {"events": counters["messages"], "cpu_s": cpu, "drift_cpu_s": drift_cpu,
            "first_at": worker.first_input_at, "last_at": worker.last_input_at,
            "seconds": (worker.last_input_at or 0) - (worker.first_input_at or 0),
            "labeled": counters["labeled"], "rows_written": counters["rows_written"],
            "latency_p50_s": pct(0.5), "latency_p99_s": pct(0.99)}


def _ingest(config_json: str, expected: int, columnar: bool = True,
            before: bool = False) -> dict[str, Any]:
    """The ingest stage alone; ``before``: the row path as it ran before the columnar
    path came (the collector on during a batch, kafka-python's default fetch sizes)."""
    import contextlib

    import ingest.repartition.stage as stage_module
    from labeler.logs import setup
    from labeler.runtime.compose import build_ingest

    config = validate(json.loads(config_json))
    setup("WARNING")
    if before:
        stage_module.FETCH = {}
        stage_module.collector_paused = contextlib.nullcontext  # type: ignore[assignment]
    stage = build_ingest(config)
    stage.columnar = columnar and not before
    cpu0 = time.process_time()
    began = time.monotonic()
    counters = stage.run(until_idle=3.0)
    cpu = time.process_time() - cpu0
    seconds = (stage.last_input_at or began) - (stage.first_input_at or began)
    fast = sum(d.fast_rows for d in stage._batch_decoders.values())
    return {"events": counters["raw_messages"], "seconds": seconds,
            "cpu_s": stage.input_cpu_s, "cpu_total_s": cpu,
            "rekeyed": counters["rekeyed"], "fast_rows": fast,
            "first_at": stage.first_input_at, "last_at": stage.last_input_at}


def _command(phase: str, args: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "labeler.tools.bench", phase, json.dumps(args)]


def _result(stdout: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _child(phase: str, args: dict[str, Any]) -> dict[str, Any]:
    """One child for ``phase``; its result, with the cores the rest of the machine used
    between its first message and its last (``labeler.tools.bench_machine``)."""
    proc = subprocess.Popen(_command(phase, args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sampler = MachineSampler([proc.pid])
    sampler.start()
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        sampler.stop()
    if proc.returncode != 0:
        raise click.ClickException(f"bench phase {phase} failed: {err.strip()[-500:]}")
    result = _result(out)
    result["others_cores"] = sampler.others(result.get("first_at"), result.get("last_at"))
    return result


def _children(phase: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    """``n`` children of one phase at once; their events and CPU summed, their wall time
    from the first message any of them got to the last any processed (one machine's
    monotonic clock), peak RSS the largest. Each child says when its worker is built
    and starts on the word of the parent, once all are built: the workers join their
    group together, not a whole start-up apart."""
    procs = [subprocess.Popen(_command(phase, {**args, "together": True}),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    sampler = MachineSampler([proc.pid for proc in procs])
    sampler.start()
    for proc in procs:
        assert proc.stdout is not None  # noqa: S101 - piped above
        proc.stdout.readline()  # "ready" (or "" if it died: communicate() reports it)
    for proc in procs:
        assert proc.stdin is not None  # noqa: S101 - piped above
        try:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died before it was ready: communicate() below reports why
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise click.ClickException(f"bench phase {phase} failed: {err.strip()[-500:]}")
            results.append(_result(out))
    finally:
        sampler.stop()
    firsts = [r["first_at"] for r in results if r.get("first_at") is not None]
    lasts = [r["last_at"] for r in results if r.get("last_at") is not None]
    p99 = [r["latency_p99_s"] for r in results if r.get("latency_p99_s") is not None]
    return {"events": sum(r["events"] for r in results),
            "cpu_s": sum(r["cpu_s"] for r in results),
            "seconds": (max(lasts) - min(firsts)) if firsts and lasts else 0.0,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "rows_written": sum(r["rows_written"] for r in results),
            "latency_p99_s": max(p99) if p99 else None,
            "per_worker_events": [r["events"] for r in results],
            "others_cores": sampler.others(min(firsts, default=None),
                                           max(lasts, default=None))}


def run_bench(bootstrap: str, count: int, seed: int = 1, envelope: str = "fluentd",
              partitions: int = 4, phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    """Produce ``count`` predictions (plus clicks) into fresh topics and measure every
    phase in ``phases`` over them."""
    run = uuid.uuid4().hex[:8]
    topics = {"predictions": f"bench-predictions-{run}", "outcomes": f"bench-outcomes-{run}",
              "dead_letter": f"bench-dlq-{run}", "drift": f"bench-drift-{run}"}
    spec = resolved(TrafficSpec(count=count, seed=seed, spacing=0.005, click_rate=0.1,
                                window=WINDOW, early_tolerance=EARLY, max_disorder=2.0))
    sent = send_traffic({"bootstrap_servers": [bootstrap]}, spec, topics["predictions"],
                        topics["outcomes"], envelope=envelope, partitions=partitions)
    total = sent["prediction"] + sent["outcome"]
    from labeler.join.labels import LabelSpec

    truth = oracle_labels(
        (m.event for m in stream(spec) if type(m.event) is Prediction),
        (m.event for m in stream(spec) if type(m.event) is Outcome),
        WINDOW, EARLY, (LabelSpec("clicked"),))
    raw = [topics["predictions"], topics["outcomes"]]
    results: dict[str, Any] = {"events": total, "envelope": envelope}
    with tempfile.TemporaryDirectory(prefix="loglabel-bench-") as out:
        def config(name: str, **extra: Any) -> dict[str, Any]:
            return {"kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{name}-{run}"},
                    "topics": topics,
                    "join": {"window_s": WINDOW, "early_tolerance_s": EARLY,
                             "allowed_lateness_s": LATENESS, "grace_s": GRACE},
                    "output": {"path": f"{out}/{name}", "flush_interval_s": 1.0}, **extra}

        def checked(name: str, result: dict[str, Any]) -> dict[str, Any]:
            from labeler.tools.bench_handjoin import oracle_mismatches  # (loads pandas)

            result["oracle_mismatches"] = oracle_mismatches(f"{out}/{name}", truth)
            return result

        for phase in phases:
            if phase in ("bare", "bare_noparse"):
                results[phase] = _child("bare", {"bootstrap": bootstrap, "topics": raw,
                                                 "expected": total,
                                                 "parse": phase == "bare"})
            elif phase in ("handjoin", "columnar"):
                os.makedirs(f"{out}/{phase}", exist_ok=True)
                results[phase] = checked(phase, _child(phase, {
                    "bootstrap": bootstrap, "predictions": raw[0], "outcomes": raw[1],
                    "expected": total, "out": f"{out}/{phase}",
                    "time_key": TIME_KEYS.get(envelope, "time")}))
            elif phase in ("pipeline", "no_drift"):
                extra = {"drift": {"enabled": False}} if phase == "no_drift" else {}
                results[phase] = checked(phase, _child("pipeline", {
                    "config": json.dumps(config(phase, **extra)), "expected": total}))
            elif phase == "workers2":
                results[phase] = checked(phase, _children("pipeline", {
                    "config": json.dumps(config(phase)), "expected": total}, 2))
            elif phase in ("ingest", "ingest_rows", "ingest_before"):
                rekey = config(phase, ingest={"repartition": "always"},
                               topics=dict(topics, rekeyed_predictions=f"bench-rk-p-{phase}-{run}",
                                           rekeyed_outcomes=f"bench-rk-o-{phase}-{run}"))
                results[phase] = _child("ingest", {"config": json.dumps(rekey),
                                                   "expected": total,
                                                   "columnar": phase == "ingest",
                                                   "before": phase == "ingest_before"})
            else:
                raise click.BadParameter(f"unknown phase {phase!r}; choose from {PHASES}")
    return results


def format_report(result: dict[str, Any]) -> str:
    from labeler.tools.bench_report import report

    return report(result)


@click.command("bench")
@click.option("--bootstrap", default="127.0.0.1:9092", show_default=True)
@click.option("--count", type=int, default=200_000, show_default=True,
              help="Predictions to simulate (clicks come on top).")
@click.option("--envelope", type=click.Choice(ENVELOPES), default="fluentd", show_default=True)
@click.option("--phases", default=",".join(PHASES), show_default=True,
              help="Comma-separated phases to run, in this order.")
@click.option("--decoders", is_flag=True,
              help="Also time the decoders alone per envelope (no broker): orjson, "
                   "pyarrow's JSON reader, the row decoder, the batch decoder.")
def bench_command(bootstrap: str, count: int, envelope: str, phases: str,
                  decoders: bool) -> None:
    """Measure the pipeline and the ingest stage against bare consumers and a hand-written
    join of the same events."""
    chosen = tuple(p.strip() for p in phases.split(",") if p.strip())
    unknown = [p for p in chosen if p not in PHASES]
    if unknown:
        raise click.BadParameter(f"unknown phase {unknown[0]!r}; choose from {', '.join(PHASES)}",
                                 param_hint="--phases")
    if len(set(chosen)) != len(chosen):  # a phase's group has read every event already
        raise click.BadParameter("each phase runs once per bench (run the bench again to "
                                 "repeat one)", param_hint="--phases")
    result = run_bench(bootstrap, count, envelope=envelope, phases=chosen)
    click.echo(format_report(result))
    if decoders:
        from labeler.tools.bench_decode import decoder_report

        click.echo(decoder_report())


def _main(argv: list[str]) -> None:
    phase, args = argv[0], json.loads(argv[1])
    if phase == "bare":
        result = _bare(args["bootstrap"], args["topics"], args["expected"], args["parse"])
    elif phase == "handjoin":
        from labeler.tools.bench_handjoin import hand_join

        result = hand_join(args["bootstrap"], args["predictions"], args["outcomes"],
                           args["expected"], WINDOW, EARLY, GRACE, LATENESS, args["out"],
                           args["time_key"])
    elif phase == "columnar":
        from labeler.tools.bench_columnar import columnar_join

        result = columnar_join(args["bootstrap"], args["predictions"], args["outcomes"],
                               args["expected"], WINDOW, EARLY, GRACE, LATENESS, args["out"],
                               args["time_key"])
    elif phase == "pipeline":
        result = _pipeline(args["config"], args["expected"], args.get("together", False))
    elif phase == "ingest":
        result = _ingest(args["config"], args["expected"], args["columnar"], args["before"])
    else:
        raise SystemExit(f"unknown phase {phase}")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
    print(json.dumps(result))


if __name__ == "__main__":
    _main(sys.argv[1:])
