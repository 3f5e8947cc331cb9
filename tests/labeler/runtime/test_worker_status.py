"""The status the HTTP threads read is a published snapshot, never the live state."""

from __future__ import annotations

import threading
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
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:  # what the worker thread does: mutate, publish now and then
        i = 0
        while not stop.is_set():
            join.add_outcome(Outcome(f"id-{i}", 1e9 + i, "click"))  # early outcomes pile up
            if i % 500 == 0:
                join.early.clear()
                worker.publish_status(float(i))
            i += 1

    def probe() -> None:  # what /metrics, /healthz and /readyz do, in a tight loop
        try:
            for _ in range(20_000):
                worker.status()
        except BaseException as exc:  # noqa: BLE001 - the test collects what a probe raised
            errors.append(exc)

    mutator = threading.Thread(target=loop)
    probes = [threading.Thread(target=probe) for _ in range(3)]
    mutator.start()
    for t in probes:
        t.start()
    for t in probes:
        t.join(timeout=120)
    stop.set()
    mutator.join(timeout=30)
    assert errors == []
    assert worker.status().partitions[0].early_buffered >= 0
