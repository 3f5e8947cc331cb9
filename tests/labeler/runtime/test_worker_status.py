"""The status the HTTP threads read is a published snapshot, never the live state."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ingest.records import Outcome
from labeler.config import validate
from labeler.join.partition import PartitionJoin
from labeler.runtime.partitions import OwnedPartition
from labeler.runtime.worker import Worker


def test_status_is_safe_while_the_loop_mutates_the_state(tmp_path: Path) -> None:
    worker = Worker(validate({"output": {"path": str(tmp_path / "out")}}))
    join = PartitionJoin(worker.rules, worker.counters)
    worker.partitions[0] = OwnedPartition(0, join, 0, {})
    stop, published = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    rounds = {"mutations": 0, "publishes": 0}
    reads: list[tuple[bool, bool]] = []  # per probe: enough reads, the loop republished

    def loop() -> None:  # what the worker thread does: mutate, publish now and then
        try:
            i = 0
            while not stop.is_set():
                join.add_outcome(Outcome(f"id-{i}", 1e9 + i, "click"))  # early outcomes pile up
                if i % 500 == 0:
                    join.early.clear()
                    worker.publish_status(float(i))  # always right after the clear
                    rounds["publishes"] += 1
                    published.set()
                i += 1
                rounds["mutations"] = i
        except BaseException as exc:  # noqa: BLE001 - the test collects what the loop raised
            errors.append(exc)
            published.set()

    def probe() -> None:  # what /metrics, /healthz and /readyz do, in a tight loop
        try:
            last, snapshots, n = worker.status(), 1, 0
            deadline = time.monotonic() + 60
            # 20,000 reads at least, and on until the loop has published twice meanwhile
            # (not past the deadline, nor once a thread has failed)
            while (n < 20_000 or snapshots < 3) and time.monotonic() < deadline and not errors:
                status = worker.status()
                if status is not last:
                    snapshots, last = snapshots + 1, status
                # only ever the published snapshot, taken right after a clear: the live
                # state holds up to 499 early outcomes at any moment
                buffered = status.partitions[0].early_buffered
                assert buffered == 0, f"status() showed the live state ({buffered} early)"
                n += 1
            reads.append((n >= 20_000, snapshots >= 3))
        except BaseException as exc:  # noqa: BLE001 - the test collects what a probe raised
            errors.append(exc)

    mutator = threading.Thread(target=loop)
    probes = [threading.Thread(target=probe) for _ in range(3)]
    mutator.start()
    try:
        assert published.wait(timeout=30), "the loop never published a status"
        for t in probes:
            t.start()
        for t in probes:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in probes), "a probe still ran after 120 s"
    finally:
        stop.set()
        mutator.join(timeout=30)
    assert not mutator.is_alive(), "the loop did not stop within 30 s"
    assert errors == []
    assert reads == [(True, True)] * 3, f"each probe read while the loop republished: {reads}"
    assert rounds["publishes"] >= 3 and rounds["mutations"] > 1000, rounds
    # the loop has stopped: the live state changes once more, status() still shows the
    # snapshot the loop last published
    join.add_outcome(Outcome("after", 2e9, "click"))
    assert sum(len(v) for v in join.early.values()) > 0
    assert worker.status().partitions[0].early_buffered == 0
