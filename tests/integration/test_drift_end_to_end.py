"""The simulator's injected drift, through real Kafka: drift events appear in the logs
and on the drift topic just after the injected point, and none in the stationary part."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from kafka import KafkaConsumer

from labeler.logs import JsonFormatter
from labeler.runtime.compose import run_pipeline
from labeler.runtime.worker import join_rules
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec

pytestmark = pytest.mark.kafka


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_injected_drift_is_reported_after_the_change_and_never_before(
        kafka_config: Any, tmp_path: Any) -> None:
    config = kafka_config(join={"window_s": 20.0, "early_tolerance_s": 2.0,
                                "allowed_lateness_s": 3.0})
    count, drift_at, spacing, start = 24_000, 0.5, 0.05, 1_718_000_000.0
    spec = TrafficSpec(count=count, seed=77, start=start, spacing=spacing, click_rate=0.12,
                       window=20.0, early_tolerance=2.0, max_disorder=1.0, drift_at=drift_at,
                       drift_shift=1.0, drift_click_factor=2.5)
    send_traffic(config.kafka.client_options(), spec, config.topics.predictions,
                 config.topics.outcomes, partitions=2, labels=join_rules(config).labels)
    handler = _Lines()
    logger = logging.getLogger("loglabel")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        counters = run_pipeline(config, until_idle=3.0, drain=True, install_signals=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    change = start + drift_at * count * spacing
    logged = [line for line in handler.lines if line.get("event") == "drift"]
    consumer = KafkaConsumer(config.topics.drift, **config.kafka.client_options(),
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    published = [json.loads(m.value) for m in consumer]
    consumer.close()

    assert logged, "the injected drift must be reported"
    assert sorted(e["event_time"] for e in published) == sorted(e["event_time"] for e in logged)
    assert all(e["event"] == "drift" for e in published)
    assert all(e["event_time"] >= change for e in logged), \
        [(e["feature"], e["event_time"] - change) for e in logged if e["event_time"] < change]
    f00 = [e for e in logged if e["kind"] == "data" and e["feature"] == "f00"]
    assert f00, "the shifted feature is named"
    assert f00[0]["event_time"] - change < 2000 * spacing, "detected near the change"
    assert {e["feature"] for e in logged if e["kind"] == "data"} <= {"f00"}, \
        "no other feature drifted"
    assert any(e["kind"] == "concept" for e in logged), "the click-rate change is a concept drift"
    for e in logged:
        assert e["model"] == "ctr-v3" and e["detector"] and e["source"]
        assert e["reference"] and e["current"]
    assert counters[f"drift.{f00[0]['kind']}"] >= 1
