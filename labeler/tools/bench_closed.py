"""``bench-closed``: memory and speed of the closed ids within the dedupe horizon.

Closes ``--rate`` ids a second of event time, each remembered for ``--horizon``
seconds and forgotten after, a second at a time (one ``add`` per close, one
``forget`` per second, as the join's advance does), for 1.2 horizons: the
last fifth runs at the steady state of ``rate * horizon`` ids. Then it times
``in`` for closed ids (a duplicate prediction, an outcome after its close) and
for new ones (every other prediction), ``get`` for closed ids, and
``contains_many`` on a batch of new ones. ``close_us`` is a close's share of the
``add`` and ``forget`` calls (freezes included), the figure the join pays per
labeled prediction (``close_cpu_us`` the same in CPU time, steadier on a busy
machine). Every id is a fresh string, as the
decoder gives them (its hash not yet cached); 5% of the closes carry an
outcome's key. ``disk_bytes_per_id`` counts the blocks the scratch files take.

Each run is a process of its own, so that its RSS is its own:

1. **closed**: ``ClosedIds`` at the full horizon (default 18 M ids: an hour at 5,000/s);
2. **closed, small** and **dict, small**: ``ClosedIds`` and the plain dicts and heap
   the join used before, at ``--dict-ids`` ids (the dicts would not fit at 18 M).

Run it with ``python -m labeler.tools.bench_closed``.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from labeler.join.closed import ClosedIds

KEY_EVERY = 20  # one close in 20 had an outcome
SAMPLE = 20_000  # lookups timed per kind


def _rss() -> tuple[int, int]:
    """(current, peak) resident set size in bytes."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line[:5]] = int(line.split()[1]) * 1024
    return found["VmRSS"], found["VmHWM"]


def _id(n: int) -> str:
    return f"{n:08x}-4b1e-4a2c-9f3d-{(n * 2654435761) % (1 << 48):012x}"


class DictClosed:
    """What the join held before: a dict of times, a dict of keys, a heap of every close."""

    def __init__(self) -> None:
        self.closed: dict[str, float] = {}
        self.closed_keys: dict[str, set[Any]] = {}
        self.heap: list[tuple[float, str, float, int]] = []

    def add(self, join_id: str, t: float, keys: set[Any] | None, forget_at: float,
            epoch: int) -> None:
        self.closed[join_id] = t
        if keys:
            self.closed_keys[join_id] = keys
        heapq.heappush(self.heap, (forget_at, join_id, t, epoch))

    def forget(self, watermark: float) -> Counter[int]:
        counts: Counter[int] = Counter()
        heap = self.heap
        while heap and heap[0][0] < watermark:
            _, join_id, t, epoch = heapq.heappop(heap)
            if self.closed.get(join_id) == t:
                del self.closed[join_id]
                self.closed_keys.pop(join_id, None)
            counts[epoch] += 1
        return counts

    def __contains__(self, join_id: str) -> bool:
        return join_id in self.closed

    def get(self, join_id: str) -> tuple[float, set[Any] | None] | None:
        t = self.closed.get(join_id)
        return None if t is None else (t, self.closed_keys.get(join_id))

    def __len__(self) -> int:
        return len(self.closed)


def run(variant: str, ids: int, rate: int, budget: int, workdir: Path) -> dict[str, Any]:
    horizon = ids // rate
    store: Any = DictClosed() if variant == "dict" else ClosedIds(budget, workdir)
    known_open = () if variant == "dict" else (True,)  # as the join closes a pending id
    base, _ = _rss()
    n, add_s, forget_s, worst_step, cpu_s = 0, 0.0, 0.0, 0.0, 0.0
    rss_trace = []
    seconds = horizon * 6 // 5
    for now in range(1, seconds + 1):
        batch = [_id(i) for i in range(n, n + rate)]
        keys = [{(j, "click", float(now))} if i % KEY_EVERY == 0 else None
                for i, j in zip(range(n, n + rate), batch, strict=True)]
        epoch = now // 60  # a checkpoint a minute
        started, cpu = time.perf_counter(), time.process_time()
        for join_id, k in zip(batch, keys, strict=True):
            store.add(join_id, float(now), k, float(now + horizon), epoch, *known_open)
        added = time.perf_counter()
        store.forget(float(now))
        done = time.perf_counter()
        cpu_s += time.process_time() - cpu
        add_s += added - started
        forget_s += done - added
        worst_step = max(worst_step, done - started)
        n += rate
        if now % max(seconds // 12, 1) == 0:
            rss_trace.append(round((_rss()[0] - base) / 2**20))
    rss, peak = _rss()
    live = len(store)
    closed_now = [_id(i) for i in range(n - live + 7, n, max(live // SAMPLE, 1))][:SAMPLE]
    new = [_id(i) for i in range(n + 10, n + 10 + SAMPLE)]
    timing = {}
    for name, probe, sample in (("in_hit_us", store.__contains__, closed_now),
                                ("in_miss_us", store.__contains__, new),
                                ("get_hit_us", store.get, closed_now)):
        fresh = [s.encode().decode() for s in sample]  # strings with no cached hash
        started = time.perf_counter()
        answers = [probe(j) for j in fresh]
        timing[name] = (time.perf_counter() - started) / len(fresh) * 1e6
        expected = name != "in_miss_us"
        if not all(bool(a) == expected for a in answers):
            raise SystemExit(f"{variant}: wrong answers in {name}")
    if isinstance(store, ClosedIds):
        fresh = [s.encode().decode() for s in new[:5000]]
        started = time.perf_counter()
        if store.contains_many(fresh).any():
            raise SystemExit("contains_many found a new id")
        timing["contains_many_miss_us"] = (time.perf_counter() - started) / len(fresh) * 1e6
    disk = sum(p.stat().st_blocks * 512 for p in workdir.iterdir() if p.is_file())
    result = {
        "variant": variant, "closes": n, "live": live,
        "rss_mib": round((rss - base) / 2**20), "peak_mib": round((peak - base) / 2**20),
        "peak_bytes_per_id": round((peak - base) / max(live, 1), 1),
        "close_us": (add_s + forget_s) / n * 1e6, "close_cpu_us": cpu_s / n * 1e6,
        "add_us": add_s / n * 1e6, "forget_us_per_close": forget_s / n * 1e6,
        "worst_second_ms": worst_step * 1e3, "rss_trace_mib": rss_trace, **timing,
    }
    if isinstance(store, ClosedIds):
        result["memory_bytes_per_id"] = round(store.memory_bytes() / max(live, 1), 1)
        result["disk_bytes_per_id"] = round(disk / max(live, 1), 1)
        store.close()
    return result


@click.command("bench-closed-run", hidden=True)
@click.option("--variant", type=click.Choice(["closed", "dict"]), required=True)
@click.option("--ids", type=int, required=True)
@click.option("--rate", type=int, required=True)
@click.option("--budget", type=int, required=True)
@click.option("--dir", "workdir", type=click.Path(file_okay=False), required=True)
def run_command(variant: str, ids: int, rate: int, budget: int, workdir: str) -> None:
    """One run of bench-closed, in a process of its own; prints its figures as JSON."""
    click.echo(json.dumps(run(variant, ids, rate, budget, Path(workdir))))


@click.command("bench-closed")
@click.option("--ids", type=int, default=18_000_000, show_default=True,
              help="Closed ids at the steady state (rate times the horizon).")
@click.option("--rate", type=int, default=5000, show_default=True, help="Closes a second.")
@click.option("--dict-ids", type=int, default=2_000_000, show_default=True,
              help="Ids of the same-run comparison with the plain dicts (0: skip).")
@click.option("--budget", type=int, default=512 * 2**20, show_default=True,
              help="memory_budget of the ClosedIds, bytes.")
def bench_closed_command(ids: int, rate: int, dict_ids: int, budget: int) -> None:
    """Close ids for 1.2 dedupe horizons; print RSS, bytes per id and lookup times."""
    root = Path(tempfile.mkdtemp(prefix="loglabel-bench-closed-"))
    runs = [("closed", ids)]
    if dict_ids:
        runs += [("closed", dict_ids), ("dict", dict_ids)]
    try:
        for variant, count in runs:
            out = subprocess.run(
                [sys.executable, "-m", "labeler.tools.bench_closed", "bench-closed-run",
                 "--variant", variant, "--ids", str(count), "--rate", str(rate),
                 "--budget", str(budget), "--dir", str(root)],
                check=True, capture_output=True, text=True, env=os.environ)
            click.echo(out.stdout.strip())
    finally:
        shutil.rmtree(root, ignore_errors=True)


@click.group()
def main() -> None:
    """bench-closed and its runs."""


main.add_command(bench_closed_command)
main.add_command(run_command)

if __name__ == "__main__":
    main()
