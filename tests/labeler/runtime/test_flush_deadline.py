"""A commit that falls due while a poll batch is being taken is made between two
partitions' messages (``Intake._process`` with ``flush_every``): each partition then
stands exactly where its last taken message left it, and the rest wait for the next
commit. No broker: the commit is recorded, not written."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from ingest.kafka.dead_letters import DeadLetterSink
from labeler.join.partition import PartitionJoin
from labeler.runtime.partitions import OwnedPartition
from labeler.runtime.worker import Worker
from tests.ingest.repartition.test_columnar import (
    NOW,
    PARTITIONS,
    _envelope,
    _Raw,
    prediction_record,
)
from tests.ingest.repartition.test_stage import _Producer
from tests.labeler.runtime.test_columnar_intake import _config


def _worker(tmp_path: Path) -> tuple[Worker, list[dict[int, dict[str, int]]]]:
    config = _config(1, tmp_path)
    worker = Worker(config, counters=Counter(),
                    raw_partitions={config.topics.predictions: PARTITIONS,
                                    config.topics.outcomes: PARTITIONS})
    worker.dead_letters = DeadLetterSink(_Producer(), "dlq", worker.counters)  # type: ignore[arg-type]
    for index in range(PARTITIONS):
        join = PartitionJoin(worker.rules, worker.counters)
        join.watermark.expect(worker._sources(index))
        worker.partitions[index] = OwnedPartition(index, join, 1, {})
    commits: list[dict[int, dict[str, int]]] = []

    def commit(*_: Any, **__: Any) -> None:  # what a checkpoint would hold of each partition
        commits.append({i: dict(p.offsets) for i, p in worker.partitions.items()})
        worker._last_commit = 5.0

    worker.commit = commit  # type: ignore[method-assign]
    return worker, commits


def _batch(topic: str, rng: random.Random) -> dict[TopicPartition, list[_Raw]]:
    batch = {}
    for p in range(PARTITIONS):
        batch[TopicPartition(topic, p)] = [
            _Raw(i, _envelope(rng, prediction_record(rng, f"r{p}-{i}", ["m1"]), NOW - 60 + i),
                 None) for i in range(10 + p)]
    return batch


def test_a_due_commit_is_made_between_partitions(tmp_path: Path, monkeypatch: Any) -> None:
    worker, commits = _worker(tmp_path)
    topic = worker.topics[0]
    batch = _batch(topic, random.Random(3))
    # the clock passes the deadline once the second partition's messages are taken
    ticks = iter([0.1, 0.2, 5.0, 5.1, 5.2])
    monkeypatch.setattr("labeler.runtime.intake.time.monotonic", lambda: next(ticks))
    worker._last_commit = 0.0
    worker._process(batch, 0.0, flush_every=1.0)  # type: ignore[arg-type]
    assert len(commits) == 1
    at_commit = commits[0]
    assert at_commit[0] == {topic: 10} and at_commit[1] == {topic: 11}  # taken before it
    assert PARTITIONS > 2
    assert all(at_commit[i] == {} for i in range(2, PARTITIONS))  # not taken yet
    assert {i: p.offsets for i, p in worker.partitions.items()} == {
        i: {topic: 10 + i} for i in range(PARTITIONS)}
    assert worker.counters["messages"] == sum(10 + p for p in range(PARTITIONS))


def test_no_commit_without_a_deadline_or_before_it(tmp_path: Path, monkeypatch: Any) -> None:
    worker, commits = _worker(tmp_path)
    topic = worker.topics[0]
    worker._last_commit = 0.0
    worker._process(_batch(topic, random.Random(4)), 0.0)  # type: ignore[arg-type]
    monkeypatch.setattr("labeler.runtime.intake.time.monotonic", lambda: 0.5)
    worker._process(_batch(topic, random.Random(5)), 0.0, flush_every=1.0)  # type: ignore[arg-type]
    assert commits == []
    assert worker.partitions[0].offsets == {topic: 10}
