"""A rebalance that gives a worker its partitions back: they resume where their joins
stand, without a restore, and not at Kafka's older committed offsets (which would feed
the joins records they have already taken)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ingest.kafka.clients import new_consumer
from ingest.kafka.topics import ensure_topics
from labeler.logs import LOGGER_NAME
from labeler.runtime.compose import build_worker
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec

pytestmark = pytest.mark.kafka

DEADLINE_S = 90.0


class Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.names.append(json.loads(record.getMessage()).get("event", "")
                          if record.getMessage().startswith("{") else record.getMessage())


@pytest.fixture
def events() -> Iterator[Events]:
    logger = logging.getLogger(LOGGER_NAME)
    handler, level = Events(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def wait_for(check: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_partitions_given_back_by_a_rebalance_are_not_read_twice(
        kafka_config: Any, unique: Any, events: Events) -> None:
    config = kafka_config(
        join={"window_s": 3600.0, "early_tolerance_s": 1.0, "allowed_lateness_s": 1.0},
        ingest={"repartition": "never"},
        output={"flush_interval_s": 3600.0},  # no commit: Kafka's offsets stay at the start
    )
    options = config.kafka.client_options()
    ensure_topics(options, [config.topics.predictions, config.topics.outcomes], 1)
    sent = send_traffic(options, TrafficSpec(count=400, seed=3, spacing=0.01, click_rate=0.0,
                                             duplicate_fraction=0.0, window=3600.0,
                                             start=time.time() - 60),
                        config.topics.predictions, config.topics.outcomes, partitions=1)
    worker = build_worker(config)
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    thread.start()
    other = None
    try:
        wait_for(lambda: worker.counters["messages"] >= sent["prediction"], "every record read")
        # another member joins the group (for a topic of its own): an eager rebalance
        # revokes the worker's partitions and gives them back
        other_topic = unique("other")
        ensure_topics(options, [other_topic], 1)
        other = new_consumer({**options, "group_id": config.kafka.group_id,
                              "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000})
        other.subscribe([other_topic])
        for _ in range(100):
            other.poll(timeout_ms=200)
            if "partition.resumed" in events.names:
                break
        assert "partition.resumed" in events.names, events.names[-20:]
        # one more prediction after the rebalance: once it is read, anything read again
        # (earlier offsets of the same partition) has been read too
        more = send_traffic(options, TrafficSpec(count=1, seed=4, click_rate=0.0,
                                                 duplicate_fraction=0.0, window=3600.0,
                                                 start=time.time() - 30),
                            config.topics.predictions, config.topics.outcomes, partitions=1)
        total = sent["prediction"] + sent["outcome"] + more["prediction"] + more["outcome"]

        def caught_up() -> bool:
            other.poll(timeout_ms=100)  # type: ignore[union-attr]
            return worker.counters["messages"] >= total

        wait_for(caught_up, "the prediction sent after the rebalance")
        assert worker.counters["duplicate_predictions"] == 0
        assert worker.counters["messages"] == total
        assert "partition.assigned" in events.names and events.names.count(
            "partition.assigned") == 1, "resumed, not restored"
    finally:
        if other is not None:
            other.close()
        worker.stop()
        thread.join(timeout=60)
