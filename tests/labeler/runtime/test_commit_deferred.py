"""A commit while the broker is away: the producer's records (dead letters, drift events)
are not acknowledged, so no checkpoint is written; the rows wait in memory for the next
round, which writes them once the broker answers. The commit before exiting raises
instead. No broker: the producer's flush times out, or not, on demand; the checkpoints
are real files."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from ingest.kafka.dead_letters import DeadLetterSink, NotYetAcknowledged
from labeler.join.partition import PartitionJoin
from labeler.runtime.partitions import OwnedPartition
from labeler.runtime.worker import HELD_ROWS_FACTOR, CommitsStalled, Worker
from tests.ingest.repartition.test_columnar import PARTITIONS
from tests.ingest.repartition.test_stage import _AwayProducer
from tests.labeler.runtime.test_columnar_intake import _config
from tests.labeler.runtime.test_flush_deadline import _batch


def _worker(tmp_path: Path, max_rows: int | None = None) -> tuple[Worker, _AwayProducer]:
    config = _config(1, tmp_path)
    if max_rows is not None:
        config = config.model_copy(update={"output": config.output.model_copy(
            update={"max_rows": max_rows})})
    worker = Worker(config, counters=Counter(),
                    raw_partitions={config.topics.predictions: PARTITIONS,
                                    config.topics.outcomes: PARTITIONS})
    producer = _AwayProducer()
    worker.dead_letters = DeadLetterSink(producer, "dlq", worker.counters)  # type: ignore[arg-type]
    for index in range(PARTITIONS):
        join = PartitionJoin(worker.rules, worker.counters)
        join.watermark.expect(worker._sources(index))
        worker.partitions[index] = OwnedPartition(index, join, 1, {})
    worker._process(_batch(worker.topics[0], random.Random(5)), 0.0)  # type: ignore[arg-type]
    for part in worker.partitions.values():  # rows to write: every pending one, closed
        worker._emit(part, part.join.drain())
    return worker, producer


def _shards(root: Path) -> list[Path]:
    """Published shards (staged ones live under ``_staging``, which readers skip)."""
    return [p for p in root.rglob("*.parquet")
            if not any(part.startswith("_") for part in p.relative_to(root).parts)]


def _epochs(worker: Worker) -> dict[int, int]:
    return {i: p.epoch for i, p in worker.partitions.items()}


def test_a_commit_waits_for_the_broker_and_then_writes_every_row(tmp_path: Path) -> None:
    worker, producer = _worker(tmp_path)
    held = {i: len(p.rows) for i, p in worker.partitions.items()}
    assert all(held.values())

    for _ in range(3):  # an outage spanning three commit rounds
        worker.commit()
    assert worker.counters["commits_deferred"] == 3
    assert _epochs(worker) == dict.fromkeys(range(PARTITIONS), 1)  # no checkpoint
    assert {i: len(p.rows) for i, p in worker.partitions.items()} == held
    assert _shards(tmp_path) == []
    assert all(t is not None and t <= 5.0 for t in producer.waits)  # never a long wait

    producer.back = True
    worker.commit()
    assert _epochs(worker) == dict.fromkeys(range(PARTITIONS), 2)
    assert worker.counters["rows_written"] == sum(held.values())
    assert worker.counters["commits_deferred"] == 3
    assert _shards(tmp_path)
    written = pd.read_parquet(tmp_path, columns=["prediction_id"])
    assert len(written) == sum(held.values())
    assert written.prediction_id.is_unique


def test_the_commit_before_exiting_raises_when_the_broker_is_away(tmp_path: Path) -> None:
    worker, producer = _worker(tmp_path)
    with pytest.raises(NotYetAcknowledged):
        worker.commit(final=True)
    assert producer.waits[-1] is not None and producer.waits[-1] > 5.0
    assert _epochs(worker) == dict.fromkeys(range(PARTITIONS), 1)


def test_nothing_to_commit_asks_nothing_of_the_producer(tmp_path: Path) -> None:
    worker, producer = _worker(tmp_path)
    producer.back = True
    worker.commit()
    flushes = len(producer.waits)
    producer.back = False
    worker.commit()  # nothing new since: no flush, nothing deferred
    assert len(producer.waits) == flushes
    assert worker.counters["commits_deferred"] == 0


def test_an_outage_is_logged_once_however_many_rounds_wait(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    worker, producer = _worker(tmp_path)
    with caplog.at_level("WARNING"):
        for _ in range(4):
            worker.commit()
    assert [r.getMessage() for r in caplog.records].count("commit.deferred") == 1
    producer.back = True
    worker.commit()
    producer.back = False  # a second outage, after a round that went through
    worker._process(_batch(worker.topics[0], random.Random(6)), 0.0)  # type: ignore[arg-type]
    caplog.clear()
    with caplog.at_level("WARNING"):
        worker.commit()
    assert [r.getMessage() for r in caplog.records].count("commit.deferred") == 1


def test_rows_piling_up_while_commits_wait_stop_the_worker(tmp_path: Path) -> None:
    rows = [len(p.rows) for p in _worker(tmp_path / "probe")[0].partitions.values()]
    assert min(rows) > 2 * HELD_ROWS_FACTOR  # the batch gives every partition enough rows
    worker, _ = _worker(tmp_path / "run", max_rows=2)
    with pytest.raises(CommitsStalled, match="output.max_rows"):
        worker.commit()
    assert worker.counters["commits_deferred"] == 1
    worker_ok, _ = _worker(tmp_path / "ok", max_rows=max(rows) // HELD_ROWS_FACTOR + 1)
    worker_ok.commit()  # below the limit: deferred, no stop
    assert worker_ok.counters["commits_deferred"] == 1
    worker_ok.check_held()  # the loop's check between two rounds: still below
    # input keeps coming while the broker leaves the records unacknowledged: the loop's
    # own check stops the worker before the next round
    worker_ok._process(_batch(worker_ok.topics[0], random.Random(7)), 0.0)  # type: ignore[arg-type]
    for part in worker_ok.partitions.values():
        worker_ok._emit(part, part.join.drain())
    with pytest.raises(CommitsStalled):
        worker_ok.check_held()
    assert worker_ok.counters["commits_deferred"] == 1
