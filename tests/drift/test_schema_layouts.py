"""Schema events name the record that showed the change, in both stage layouts.

A model serves features a, b, c; from the 250th prediction on, b is gone, and
from the 300th d is new. The drift topic must hold one ``missing_feature``
event for b and one ``new_feature`` event for d, each with the event time of
the record that showed it and a source pointing at it: the raw record when
one process reads the raw topic, the internal record when ``--stage ingest``
and ``--stage label`` run apart.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from kafka import TopicPartition

from ingest.kafka.clients import new_consumer, new_producer
from ingest.kafka.topics import ensure_topics
from labeler.runtime.compose import run_pipeline

pytestmark = pytest.mark.kafka

COUNT, GONE_AT, NEW_AT = 400, 250, 300
T0 = time.time() - 3600.0


def _produce(config: Any) -> None:
    options = config.kafka.client_options()
    ensure_topics(options, [config.topics.predictions, config.topics.outcomes], 1)
    producer = new_producer(options, acks="all")
    try:
        for i in range(COUNT):
            feats: dict[str, Any] = {"a": float(i % 7), "b": "x", "c": i % 3}
            if i >= GONE_AT:
                del feats["b"]
            if i >= NEW_AT:
                feats["d"] = 1.5
            record = {"request_id": f"r{i}", "model": "ctr", "model_version": "1",
                      "features": feats, "score": 0.5, "tag": "ml.prediction",
                      "time": T0 + i}
            producer.send(config.topics.predictions, value=orjson.dumps(record),
                          key=f"r{i}".encode())
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)


def _drift_events(config: Any) -> list[dict[str, Any]]:
    consumer = new_consumer(config.kafka.client_options(), auto_offset_reset="earliest",
                            enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        parts = [TopicPartition(config.topics.drift, p)
                 for p in sorted(consumer.partitions_for_topic(config.topics.drift) or [])]
        consumer.assign(parts)
        end = consumer.end_offsets(parts)
        events: list[dict[str, Any]] = []
        for _ in range(60):  # bounded: stop once every partition is read to its end
            if all(consumer.position(tp) >= end[tp] for tp in parts):
                break
            for records in consumer.poll(timeout_ms=500).values():
                events += [json.loads(r.value) for r in records]
        return events
    finally:
        consumer.close()


def _schema_events(config: Any) -> dict[str, dict[str, Any]]:
    found = [e for e in _drift_events(config) if e["kind"] == "schema"]
    return {e["stream"]: e for e in found if e["feature"] in ("b", "d")}


def _check(events: dict[str, dict[str, Any]], topic: str) -> None:
    assert set(events) == {"missing_feature", "new_feature"}, events
    for e in events.values():
        assert e["source"].startswith(f"{topic}[0]@")
    gone, new = events["missing_feature"], events["new_feature"]
    assert gone["feature"] == "b" and gone["event_time"] == pytest.approx(T0 + GONE_AT, abs=1e-3)
    assert new["feature"] == "d" and new["event_time"] == pytest.approx(T0 + NEW_AT, abs=1e-3)


def test_one_process_dates_schema_changes_by_the_raw_record(kafka_config: Any) -> None:
    config = kafka_config(ingest={"schema_infer_from": 100})
    _produce(config)
    run_pipeline(config, until_idle=3.0, drain=True, install_signals=False)
    events = _schema_events(config)
    _check(events, config.topics.predictions)
    assert events["missing_feature"]["source"] == f"{config.topics.predictions}[0]@{GONE_AT}"
    assert events["new_feature"]["source"] == f"{config.topics.predictions}[0]@{NEW_AT}"


def test_separate_stages_date_schema_changes_by_the_internal_record(
        kafka_config: Any, unique: Any) -> None:
    config = kafka_config(
        ingest={"schema_infer_from": 100, "repartition": "always"},
        topics={"rekeyed_predictions": unique("rk-p"), "rekeyed_outcomes": unique("rk-o")})
    _produce(config)
    run_pipeline(config, until_idle=3.0, install_signals=False, stage="ingest")
    run_pipeline(config, until_idle=3.0, drain=True, install_signals=False, stage="label")
    _check(_schema_events(config), config.topics.rekeyed_predictions)
