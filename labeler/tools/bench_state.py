"""``loglabel bench-state``: memory and restart time with millions of pending predictions.

A 24 h window holds a day of predictions pending. This benchmark drives one
partition's join (``PartitionJoin`` with its ``PendingStore`` and the real
checkpoint code on a local directory) without Kafka, so that the figures are
the state's own:

1. **baseline**: no memory budget, ``--baseline`` predictions; RSS grows with them.
2. **fill**: ``state.memory_budget``, ``--pending`` predictions over 24 h of event
   time (none closes), a checkpoint every ``--commit-every``; RSS over time.
3. **restart**: a new process rebuilds the state from the checkpoint's segments;
   the time it takes and its RSS.

Each phase runs in its own process, so one's memory does not hide in another's.
Every prediction has the simulator's shape (20 numeric and 4 categorical
features, a score); 5% get a click on a recent prediction, 0.1% on an old one.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from pydantic import ByteSize, TypeAdapter

from ingest.records import Outcome, Prediction
from labeler.join.partition import PartitionJoin
from labeler.join.pending import PendingStore
from labeler.join.rules import JoinRules
from labeler.output.checkpoint import CheckpointStore
from labeler.output.storage import Storage

DAY = 86_400.0
START = 1_790_000_000.0
WALL = START + 2 * DAY  # fixed: the partition never counts as idle
STREAM = "bench.predictions+bench.outcomes"
CATEGORIES = ("web", "ios", "android", "tv")


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def prediction(i: int, total: int, rng: random.Random) -> Prediction:
    features: dict[str, Any] = {f"f{k:02d}": rng.random() for k in range(20)}
    for k in range(4):
        features[f"c{k}"] = CATEGORIES[rng.randrange(4)]
    return Prediction(f"req-{i:012d}", START + DAY * i / total, "ctr-v3", "3",
                      features, {"score": rng.random()})


def rules() -> JoinRules:
    return JoinRules(window=DAY, grace=0.0, early_tolerance=5.0, lateness=10.0,
                     idle_after=DAY, dedupe_horizon=3600.0)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def fill(workdir: Path, count: int, budget: int | None, commit_every: int,
         report_every: int) -> None:
    rng = random.Random(1)  # noqa: S311 - benchmark data
    store = PendingStore(budget, workdir / "spill", name="bench")
    join = PartitionJoin(rules(), store=store)
    checkpoints = CheckpointStore(Storage(str(workdir / "out")), STREAM)
    segments: list[tuple[int, str]] = []
    epoch = 0
    started = time.perf_counter()
    commit_s = 0.0
    for i in range(count):
        p = prediction(i, count, rng)
        join.add_prediction(p)
        r = rng.random()
        if r < 0.05 or (r < 0.051 and i > 10_000):
            j = max(i - rng.randrange(2000 if r < 0.05 else i), 0)
            join.add_outcome(Outcome(f"req-{j:012d}", p.event_time, "click", 1.0, f"o{i}"))
        if (i + 1) % commit_every == 0 or i + 1 == count:
            join.watermark.update(("bench", 0), p.event_time)
            join.advance()
            t0 = time.perf_counter()
            epoch += 1
            checkpoint = checkpoints.commit(0, epoch, {"bench.predictions": i + 1},
                                            join.snapshot(), [], log=join.log,
                                            segments=segments,
                                            keep_from=join.oldest_needed_epoch())
            join.logged(epoch)
            segments = checkpoint.segments
            commit_s += time.perf_counter() - t0
        if (i + 1) % report_every == 0 or i + 1 == count:
            rss, peak = rss_mib()
            elapsed = time.perf_counter() - started
            emit(phase="fill" if budget else "baseline", pending=join.pending_count,
                 in_memory=store.in_memory, on_disk=store.on_disk, rss_mib=round(rss),
                 peak_rss_mib=round(peak), elapsed_s=round(elapsed, 1),
                 rate_per_s=round((i + 1) / elapsed), commit_s=round(commit_s, 1))
    store.close()


def restart(workdir: Path, budget: int | None) -> None:
    started = time.perf_counter()
    checkpoints = CheckpointStore(Storage(str(workdir / "out")), STREAM)
    checkpoint = checkpoints.recover(0)
    if checkpoint.fresh:
        raise click.ClickException(f"no checkpoint under {workdir / 'out'}")
    store = PendingStore(budget, workdir / "spill", name="bench-restart")
    join = PartitionJoin.restore(rules(), checkpoint.state, checkpoints.segments(checkpoint),
                                 store=store, epoch=checkpoint.epoch + 1)
    elapsed = time.perf_counter() - started
    rss, peak = rss_mib()
    segment_bytes = _segment_bytes(workdir)
    emit(phase="restart", pending=join.pending_count, in_memory=store.in_memory,
         on_disk=store.on_disk, restore_s=round(elapsed, 1),
         rate_per_s=round(join.pending_count / elapsed) if elapsed else None,
         rss_mib=round(rss), peak_rss_mib=round(peak), segments=len(checkpoint.segments),
         segment_mib=round(segment_bytes / 2**20))
    store.close()


def _segment_bytes(workdir: Path) -> int:
    return sum(p.stat().st_size for p in (workdir / "out" / "_checkpoints").rglob("*.seg"))


@click.command("bench-state-phase", hidden=True)
@click.argument("phase", type=click.Choice(["fill", "restart"]))
@click.option("--dir", "workdir", type=click.Path(file_okay=False), required=True)
@click.option("--count", type=int, default=0)
@click.option("--budget", type=int, default=0, help="0: no budget")
@click.option("--commit-every", type=int, default=100_000)
@click.option("--report-every", type=int, default=1_000_000)
def phase_command(phase: str, workdir: str, count: int, budget: int, commit_every: int,
                  report_every: int) -> None:
    """One phase of bench-state, in a process of its own."""
    if phase == "fill":
        fill(Path(workdir), count, budget or None, commit_every, report_every)
    else:
        restart(Path(workdir), budget or None)


@click.command("bench-state")
@click.option("--pending", type=int, default=10_000_000, show_default=True,
              help="Pending predictions to hold (24 h of event time, none closes).")
@click.option("--budget", default="512MiB", show_default=True,
              help="state.memory_budget for the fill and the restart.")
@click.option("--baseline", type=int, default=1_000_000, show_default=True,
              help="Predictions held without a budget, to compare (0: skip).")
@click.option("--commit-every", type=int, default=100_000, show_default=True,
              help="Predictions between two checkpoints.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=None,
              help="Working directory (default: a temporary one, removed afterwards).")
def bench_state_command(pending: int, budget: str, baseline: int, commit_every: int,
                        workdir: str | None) -> None:
    """Hold millions of pending predictions within a memory budget; print RSS over time
    and the restart time. Needs about 1.5 KB of disk per prediction."""
    budget_bytes = int(TypeAdapter(ByteSize).validate_python(budget))
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="loglabel-bench-state-"))
    phases: list[tuple[str, list[str]]] = []
    if baseline:
        phases.append(("baseline", ["fill", "--count", str(baseline), "--budget", "0",
                                    "--report-every", str(max(baseline // 5, 1))]))
    phases.append(("fill", ["fill", "--count", str(pending), "--budget", str(budget_bytes),
                            "--report-every", str(max(pending // 10, 1))]))
    phases.append(("restart", ["restart", "--budget", str(budget_bytes)]))
    click.echo(f"bench-state: {pending:,} pending predictions, budget {budget} "
               f"({budget_bytes:,} bytes), work in {root}")
    try:
        for name, args in phases:
            where = root / ("baseline" if name == "baseline" else "budget")
            if name != "restart":
                shutil.rmtree(where, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "labeler.ops.cli", "bench-state-phase", *args,
                            "--dir", str(where), "--commit-every", str(commit_every)],
                           check=True)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
