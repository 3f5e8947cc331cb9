"""Fresh answers from the broker, outages, and stuck group members, without a broker."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.structs import MemberState

from ingest.kafka.progress import BrokerProgress, InputClock, MembershipWatch

TP = TopicPartition("t", 0)


class _Consumer:
    def __init__(self) -> None:
        self.end, self.up, self.state = 10, True, MemberState.STABLE

    def end_offsets(self, tps: list[TopicPartition], timeout_ms: int | None = None
                    ) -> dict[TopicPartition, int]:
        if not self.up:
            raise KafkaTimeoutError("Failed to get offsets")
        return {tp: self.end for tp in tps}

    def group_metadata(self) -> Any:
        return SimpleNamespace(state=self.state)


def test_lag_is_asked_fresh_and_an_outage_is_logged_once(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    consumer = _Consumer()
    progress = BrokerProgress(consumer, "test")  # type: ignore[arg-type]
    assert progress.lag({TP: 4}) == {TP: 6}
    consumer.up = False
    with caplog.at_level(logging.INFO, logger="loglabel"):
        assert progress.lag({TP: 10}) is None, "no answer is unknown, never caught up"
        assert progress.lag({TP: 10}) is None
        consumer.up = True
        assert progress.lag({TP: 10}) == {TP: 0}
    assert [r.getMessage() for r in caplog.records] == ["broker.unreachable", "broker.reachable"]
    assert progress.reachable


def test_quiet_time_counts_from_the_last_record_or_the_assignment() -> None:
    clock = InputClock()
    assert clock.quiet_for(TP, 100.0) == 0.0, "unknown partitions are not quiet"
    clock.assigned([TP], 10.0)
    assert clock.quiet_for(TP, 25.0) == 15.0
    clock.delivered(TP, 20.0)
    assert clock.quiet_for(TP, 25.0) == 5.0


def test_a_member_not_stable_for_long_is_stuck_and_the_clock_restarts() -> None:
    consumer = _Consumer()
    watch = MembershipWatch(session_timeout_s=10.0)
    assert watch.limit_s == 30.0
    assert watch.stuck(consumer, 0.0) is None  # type: ignore[arg-type]
    consumer.state = MemberState.REBALANCING
    assert watch.stuck(consumer, 1.0) is None  # type: ignore[arg-type]
    assert watch.stuck(consumer, 30.0) is None  # type: ignore[arg-type]
    assert watch.stuck(consumer, 31.5) == MemberState.REBALANCING  # type: ignore[arg-type]
    assert watch.stuck(consumer, 32.0) is None, "the clock restarts after a verdict"  # type: ignore[arg-type]
    consumer.state = MemberState.STABLE
    assert watch.stuck(consumer, 100.0) is None  # type: ignore[arg-type]


def test_an_outage_is_noticed_with_nothing_assigned(caplog: pytest.LogCaptureFixture) -> None:
    consumer = _Consumer()
    consumer.up = False
    progress = BrokerProgress(consumer, "test", topics=["t"])  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="loglabel"):
        progress.probe(dict, now=100.0)  # no partition of ours: the canary is asked
    assert [r.getMessage() for r in caplog.records] == ["broker.unreachable"]
    assert not progress.reachable and progress.last_lag is None



def test_a_broker_outage_is_not_a_stuck_member() -> None:
    """While the broker is away no member can be stable and a rebuilt consumer could not
    bootstrap: the outage's time does not count, only the time after it answers."""
    watch, member = MembershipWatch(10.0), _Consumer()  # limit 30 s
    member.state = MemberState.REBALANCING
    assert watch.stuck(member, 100.0) is None  # type: ignore[arg-type]
    for t in (110.0, 140.0, 170.0):  # away 70 s
        assert watch.stuck(member, t, reachable=False) is None  # type: ignore[arg-type]
    assert watch.stuck(member, 171.0) is None  # type: ignore[arg-type]  # back: from here
    assert watch.stuck(member, 200.0) is None  # type: ignore[arg-type]
    assert watch.stuck(member, 201.0) is not None  # type: ignore[arg-type]
