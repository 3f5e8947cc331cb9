"""The worker's columnar reading of raw input against its row path, the reference: over
many seeds of mixed input (every envelope, duplicates, bad records of every dead-letter
reason, late and early records, schema inference, several partitions, random poll
batches) both paths label the same rows, send the same dead letters, count the same and
report the same drift events. The real join and drift
monitors; no broker (the poll batches are given)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition

from ingest.kafka.dead_letters import DeadLetterSink
from labeler.config import validate
from labeler.join.partition import PartitionJoin
from labeler.runtime.compose import schema_enforcer
from labeler.runtime.drift_hub import build_hub
from labeler.runtime.partitions import OwnedPartition
from labeler.runtime.worker import Worker
from tests.ingest.repartition.test_columnar import (
    NOW,
    PARTITIONS,
    _bad,
    _envelope,
    _Raw,
    prediction_record,
)
from tests.ingest.repartition.test_stage import _Producer


def _config(seed: int, out: Path) -> Any:
    variant = seed % 4
    ingest: dict[str, Any] = {"schema_infer_from": 0 if variant == 3 else 15}
    if variant != 2:
        ingest["schemas"] = {"m1": {"features": {"price": "float", "country": "str",
                                                 "age": "int", "flag": "bool"},
                                    "prediction": {"score": "float"},
                                    "required": ["price"] if variant == 1 else []}}
    pii = {"fields": {"features.country": {"policy": "drop"}}} if seed % 7 == 0 else {}
    return validate({
        "output": {"path": str(out)},
        "join": {"window_s": 30.0, "early_tolerance_s": 5.0, "allowed_lateness_s": 5.0},
        "ingest": ingest, "pii": pii,
        "drift": {"numeric": {"block_size": 16}, "categorical": {"block_size": 16},
                  "warmup": 64, "min_samples": 64}})


def _traffic(rng: random.Random) -> tuple[dict[int, list[_Raw]], dict[int, list[_Raw]]]:
    """Predictions and, in the same partition, outcomes of some of them: early, in the
    window, outside it, late, duplicated; bad records of every kind among them."""
    predictions: dict[int, list[_Raw]] = {p: [] for p in range(PARTITIONS)}
    outcomes: dict[int, list[_Raw]] = {p: [] for p in range(PARTITIONS)}
    base = NOW - 3600 + rng.uniform(-600, 600)
    models = ["m1", "m2"] + (["m3"] if rng.random() < 0.5 else [])

    def put(out: dict[int, list[_Raw]], partition: int, value: bytes | None, rid: str) -> None:
        for _ in range(2 if rng.random() < 0.05 else 1):
            key = rid.encode() if rng.random() < 0.8 else None
            out[partition].append(_Raw(len(out[partition]), value, key))

    for i in range(rng.randrange(100, 500)):
        partition = rng.randrange(PARTITIONS)
        t = round(base + i * 0.5 + rng.uniform(-3, 3), 6)
        if rng.random() < 0.04:
            t -= rng.uniform(20, 200)  # late
        rid = f"r{rng.randrange(100_000)}" if rng.random() < 0.95 else f"r{i - 3}"
        if rng.random() < 0.12:
            put(predictions, partition, _bad(rng, "prediction", rid, t), rid)
        else:
            put(predictions, partition, _envelope(rng, prediction_record(rng, rid, models), t),
                rid)
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            u = round(t + rng.choice([-8, -2, 0.5, 5, 20, 29.5, 31, 60]) + rng.uniform(0, 1), 6)
            if rng.random() < 0.1:
                put(outcomes, partition, _bad(rng, "outcome", rid, u), rid)
                continue
            outcome = {"request_id": rid, "type": rng.choice(["click", "buy"]),
                       "value": rng.choice([1.0, 2, None]),
                       "outcome_id": rng.choice([None, f"c{rid}{rng.randrange(3)}"])}
            put(outcomes, partition, _envelope(rng, outcome, u), rid)
    for out in (predictions, outcomes):  # some partitions in no time order at all
        for p, messages in out.items():
            if rng.random() < 0.1:
                rng.shuffle(messages)
            out[p] = [_Raw(i, m.value, m.key) for i, m in enumerate(messages)]
    return predictions, outcomes


def _run(seed: int, columnar: bool, out: Path) -> dict[str, Any]:
    config = _config(seed, out)
    counters: Counter[str] = Counter()
    hub = build_hub(config.drift, config.topics.drift, counters, config.labels,
                    schema=schema_enforcer(config))
    worker = Worker(config, drift=hub, counters=counters, schema=schema_enforcer(config),
                    raw_partitions={config.topics.predictions: PARTITIONS,
                                    config.topics.outcomes: PARTITIONS})
    worker.columnar = columnar
    producer = _Producer()
    worker.dead_letters = DeadLetterSink(producer, "dlq", counters)  # type: ignore[arg-type]
    for index in range(PARTITIONS):
        join = PartitionJoin(worker.rules, counters)
        join.watermark.expect(worker._sources(index))
        worker.partitions[index] = OwnedPartition(index, join, 1, {})
    rng = random.Random(seed)
    topics = {"p": config.topics.predictions, "o": config.topics.outcomes}
    predictions, outcomes = _traffic(rng)
    traffic = {topics["p"]: predictions, topics["o"]: outcomes}
    tps = [TopicPartition(t, p) for t in traffic for p in range(PARTITIONS)]
    read = dict.fromkeys(tps, 0)
    polls = random.Random(seed + 1)  # the same poll batches for both paths
    rows: list[Any] = []
    step = 0
    while any(read[tp] < len(traffic[tp.topic][tp.partition]) for tp in tps):
        batch = {}
        for tp in polls.sample(tps, polls.randrange(1, len(tps) + 1)):
            messages = traffic[tp.topic][tp.partition]
            if read[tp] < len(messages):
                size = polls.choice([1, 5, 50, 1000])
                batch[tp] = messages[read[tp]:read[tp] + size]
                read[tp] += len(batch[tp])
        worker._process(batch, float(step))  # type: ignore[arg-type]
        for part in worker.partitions.values():
            rows += part.join.advance()
        step += 1
    for part in worker.partitions.values():
        rows += part.join.drain()
        part.join.close()
    assert hub is not None
    hub.flush()
    return {"rows": sorted((r.prediction.join_id, r.prediction.event_time, r.labels,
                            r.outcome_count, r.first_outcome_delay,
                            sorted(r.prediction.features.items(), key=repr))
                           for r in rows),
            "counters": counters,
            "dead_letters": producer.sent,
            "drift": [(e.kind, e.model, e.stream, e.partition) for e in hub.events],
            "fast_rows": sum(d.fast_rows for d in worker._batch_decoders.values())}


@pytest.mark.parametrize("seed", range(40))
def test_columnar_intake_labels_counts_and_dead_letters_as_the_row_path(
        seed: int, tmp_path: Path) -> None:
    rows = _run(seed, False, tmp_path / "rows")
    columns = _run(seed, True, tmp_path / "columns")
    assert columns["rows"] == rows["rows"]
    assert columns["counters"] == rows["counters"]
    assert columns["dead_letters"] == rows["dead_letters"]
    assert columns["drift"] == rows["drift"]
    assert rows["counters"]["messages"] > 0 and rows["rows"]
    # not vacuous: the batch decoder took rows itself (all go to the row decoder under PII)
    assert rows["fast_rows"] == 0 and (columns["fast_rows"] > 0 or seed % 7 == 0)

