"""A late outcome (its row is already written) becomes a correction row; the labeled
row is never rewritten."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pandas as pd
import pytest
from kafka import KafkaProducer

from ingest.kafka.topics import ensure_topics
from labeler.runtime.compose import build_worker

pytestmark = pytest.mark.kafka


def _until(condition: Any, worker: Any, failure: list[BaseException],
           timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert not failure, failure  # the worker's own error, not a timeout
        assert time.monotonic() < deadline, dict(worker.counters)
        time.sleep(0.1)


def test_late_click_goes_to_corrections(kafka_config: Any) -> None:
    config = kafka_config(join={"window_s": 5.0, "early_tolerance_s": 1.0,
                                "allowed_lateness_s": 1.0, "keep_late_outcomes": True,
                                "frontier_votes": 1},  # two predictions move the clock
                          output={"flush_interval_s": 0.5})
    t = config.topics
    options = config.kafka.client_options()
    ensure_topics(options, [t.predictions, t.outcomes], 1)
    producer = KafkaProducer(**options)
    t0 = 1_718_000_000.0

    def send(topic: str, doc: dict[str, Any]) -> None:
        producer.send(topic, value=orjson.dumps(doc), key=doc["request_id"].encode())
        producer.flush()

    send(t.predictions, {"request_id": "a", "time": t0, "score": 0.9, "features": {"x": 1.0}})
    send(t.predictions, {"request_id": "z", "time": t0 + 60, "score": 0.1, "features": {"x": 2}})
    send(t.outcomes, {"request_id": "z", "time": t0 + 61, "type": "click"})

    worker = build_worker(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(drain=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failure.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        # the worker runs until stopped: no idle deadline can end it before the late click
        _until(lambda: worker.counters["rows_written"] >= 1, worker, failure)  # "a" is durable
        send(t.outcomes, {"request_id": "a", "time": t0 + 2, "type": "click",
                          "outcome_id": "c1"})
        _until(lambda: worker.counters["corrections_written"] >= 1, worker, failure)
    finally:
        worker.stop()
        runner.join(timeout=120)
        producer.close()
    assert not runner.is_alive() and not failure, failure

    rows = pd.read_parquet(config.output.path).set_index("prediction_id")
    assert not bool(rows.loc["a", "label_clicked"]), "a written row is never rewritten"
    assert bool(rows.loc["z", "label_clicked"])
    corrections = pd.read_parquet(f"{config.output.path}/_corrections")
    assert corrections.prediction_id.tolist() == ["a"]
    assert corrections.outcome_id.tolist() == ["c1"]
    assert corrections.delay_s.tolist() == [2.0]
    assert worker.counters["late_outcomes"] == 1
