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

from ._attempts import own_streams, until_premise_holds

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


class Member(threading.Thread):
    """Another member of the worker's group, for a topic of its own, polled without
    pause the way a real consumer is, so that it takes part in every rebalance at once.
    (A member polled in short bursts between sleeps can leave a kafka-python 3.0.12
    join unfinished and hold the whole group in a rebalance for a session timeout.)
    The client lives and dies in this thread: kafka-python's consumer is not
    thread-safe."""

    def __init__(self, options: dict[str, Any], group: str, topic: str) -> None:
        super().__init__(name="other-member", daemon=True)
        self.options = {**options, "group_id": group,
                        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
        self.topic = topic
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            consumer = new_consumer(self.options)
            try:
                consumer.subscribe([self.topic])
                while not self.stopping.is_set():
                    consumer.poll(timeout_ms=200)
            finally:
                consumer.close()
        except BaseException as exc:  # noqa: BLE001 - reported by stop(), in the test
            self.error = exc

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        assert not self.is_alive(), "the other member did not stop"
        if self.error is not None:
            raise AssertionError(f"the other member failed: {self.error!r}") from self.error


def test_partitions_given_back_by_a_rebalance_are_not_read_twice(
        kafka_config: Any, unique: Any, events: Events) -> None:
    """The rebalance must give the partition back to a member that stayed in the group.
    kafka-python can drop a member out of the group in a rebalance (``group.stuck``: the
    worker then closes its consumer and joins again, or the broker evicts it); the
    partition is then lost, its state dropped, and reading it again from the committed
    offset is right. Such an attempt is checked for exactly that and the scenario runs
    again with fresh topics and group, at most ``ATTEMPTS`` times."""
    until_premise_holds(
        lambda n: _rebalance_and_resume(kafka_config, unique, events, n),
        "the worker stayed in the group through the rebalance")


def _rebalance_and_resume(kafka_config: Any, unique: Any, events: Events, attempt: int
                          ) -> str | None:
    """``None`` if the partition was given back and resumed; else how it was lost."""
    config = kafka_config(
        **own_streams(unique, attempt),
        join={"window_s": 3600.0, "early_tolerance_s": 1.0, "allowed_lateness_s": 1.0},
        ingest={"repartition": "never"},
        output={"flush_interval_s": 3600.0},  # no commit: Kafka's offsets stay at the start
    )
    first_event = len(events.names)
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
        rejoins = worker.counters["group_rejoins"]  # any before the rebalance held no partition
        # another member joins the group (for a topic of its own): an eager rebalance
        # revokes the worker's partitions and gives them back
        other_topic = unique(f"other-a{attempt}")
        ensure_topics(options, [other_topic], 1)
        other = Member(options, config.kafka.group_id, other_topic)
        other.start()

        def given_back() -> bool:
            assert other is not None and (other.is_alive() or other.error is None), other.error
            names = events.names[first_event:]
            return "partition.resumed" in names or "partition.lost" in names

        wait_for(given_back, "the partition given back")
        # one more prediction after the rebalance: once it is read, anything read again
        # (earlier offsets of the same partition) has been read too
        more = send_traffic(options, TrafficSpec(count=1, seed=4, click_rate=0.0,
                                                 duplicate_fraction=0.0, window=3600.0,
                                                 start=time.time() - 30),
                            config.topics.predictions, config.topics.outcomes, partitions=1)
        first_read = sent["prediction"] + sent["outcome"]
        total = first_read + more["prediction"] + more["outcome"]
        wait_for(lambda: worker.counters["messages"] >= total,
                 "the prediction sent after the rebalance")
        assert worker.counters["duplicate_predictions"] == 0
        seen = events.names[first_event:]
        if "partition.lost" in seen or worker.counters["group_rejoins"] > rejoins:
            # the member left the group: its state was dropped and nothing was committed,
            # so the partition is read again from the start once per loss (with or
            # without the last prediction, by when it was lost), and nothing is doubled
            wait_for(lambda: worker.counters["messages"] >= total + first_read,
                     "the lost partition read again")
            messages = worker.counters["messages"]
            losses = events.names[first_event:].count("partition.lost")  # logged before a re-read
            assert 1 <= losses and messages <= (1 + losses) * total
            assert worker.counters["duplicate_predictions"] == 0
            return f"lost {losses}x, messages={messages}"
        assert worker.counters["messages"] == total
        assert seen.count("partition.assigned") == 1, "resumed, not restored"
        return None
    finally:
        if other is not None:
            other.stop()
        worker.stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the worker did not stop"
