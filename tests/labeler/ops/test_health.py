"""Liveness and readiness rules, lag, stall tracking and connection-failure messages."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

from kafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    UnsupportedSaslMechanismError,
)

from ingest.kafka.broker import explain_failure
from labeler.config import KafkaConfig
from labeler.ops.health import (
    BrokerSnapshot,
    BrokerView,
    StallClock,
    Verdict,
    lags,
    liveness,
    readiness,
)

from ._status import part, status

PRED, OUT = "preds", "outs"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lag_is_end_minus_position_for_assigned_partitions_only() -> None:
    s = status({0: part({PRED: 10, OUT: 4}), 2: part({PRED: 7})})
    ends = {(PRED, 0): 15, (OUT, 0): 4, (PRED, 1): 99, (PRED, 2): 7, (OUT, 2): 3}
    assert lags(s, ends) == {(PRED, 0): 5, (OUT, 0): 0, (PRED, 2): 0}


def test_lag_leaves_out_unknown_ends_and_never_goes_negative() -> None:
    s = status({0: part({PRED: 10, OUT: 4})})
    assert lags(s, {(PRED, 0): 8}) == {(PRED, 0): 0}


def test_stall_grows_only_while_input_waits_without_progress() -> None:
    clock = FakeClock()
    stall = StallClock(clock)
    waiting = status({0: part({PRED: 10})}, counters={"messages": 10})
    assert stall.observe(waiting, {(PRED, 0): 50}) == 0.0
    clock.now += 30
    assert stall.observe(waiting, {(PRED, 0): 50}) == 30.0
    moved = status({0: part({PRED: 20})}, counters={"messages": 20})
    clock.now += 30
    assert stall.observe(moved, {(PRED, 0): 50}) == 0.0, "progress resets the stall"
    clock.now += 500
    assert stall.observe(moved, {(PRED, 0): 20}) == 0.0, "caught up: idle, not stalled"


def test_idle_worker_is_alive_and_stuck_worker_is_not() -> None:
    s = status({0: part({PRED: 1})})
    assert liveness(s, stalled_for=0.0, stall_after_s=60, now=0).ok
    stuck = liveness(s, stalled_for=61.0, stall_after_s=60, now=0)
    assert not stuck.ok and "not moved for 61 s" in stuck.problems[0]


@dataclass(frozen=True)
class PollingStatus:
    """A status that also reports when the loop last polled."""

    counters: dict[str, int]
    partitions: dict[int, object]
    last_input_at: float | None
    running: bool
    last_poll_at: float


def test_a_loop_that_stopped_polling_is_not_alive() -> None:
    s = PollingStatus({}, {}, None, True, last_poll_at=100.0)
    assert liveness(s, 0.0, stall_after_s=60, now=150.0).ok  # type: ignore[arg-type]
    verdict = liveness(s, 0.0, stall_after_s=60, now=200.0)  # type: ignore[arg-type]
    assert not verdict.ok and "has not polled" in verdict.problems[0]


def test_ready_needs_running_assigned_and_a_recent_broker_answer() -> None:
    assigned = status({0: part({PRED: 1})})
    fresh = BrokerSnapshot({}, answered_at=95.0)
    assert readiness(assigned, fresh, 0.0, 60, now=100.0, broker_max_age_s=20).ok
    assert readiness(assigned, None, 0.0, 60, now=100.0, broker_max_age_s=20).ok

    starting = readiness(status(running=False), fresh, 0.0, 60, 100.0, 20)
    assert not starting.ok and "not running" in starting.problems[0]
    standby = readiness(status(), fresh, 0.0, 60, 100.0, 20)
    assert not standby.ok and "no partitions assigned" in standby.problems[0]


def test_not_ready_when_the_broker_stopped_answering() -> None:
    assigned = status({0: part({PRED: 1})})
    stale = BrokerSnapshot({}, answered_at=50.0, error="no broker at x answered")
    verdict = readiness(assigned, stale, 0.0, 60, now=100.0, broker_max_age_s=20)
    assert verdict.problems == ("broker not reachable: no broker at x answered",)
    never = readiness(assigned, BrokerSnapshot(), 0.0, 60, now=100.0, broker_max_age_s=20)
    assert never.problems == ("broker not reachable: no answer yet",)


def test_verdict_json_lists_the_problems() -> None:
    assert json.loads(Verdict(False, ("a", "b")).to_json()) == {"ok": False,
                                                                "problems": ["a", "b"]}


SCRAM = KafkaConfig(bootstrap_servers="b:9096", security_protocol="SASL_SSL",
                    sasl_mechanism="SCRAM-SHA-512", sasl_username="svc",
                    sasl_password="s3cret")  # noqa: S106


def test_failure_messages_name_the_cause_and_the_setting_to_check() -> None:
    cases = [
        (SaslAuthenticationFailedError("invalid credentials"), "rejected user 'svc'"),
        (UnsupportedSaslMechanismError(), "does not enable SCRAM-SHA-512"),
        (IllegalSaslStateError(), "does not expect SASL"),
        (KafkaConnectionError("111 ECONNREFUSED"), "nothing listens at b:9096"),
        (KafkaConnectionError("DNS Resolution failure"), "cannot resolve b:9096"),
        (KafkaConnectionError("socket disconnected"), "does not speak SASL_SSL"),
        (KafkaTimeoutError("Unable to bootstrap"), "answered within 7 s"),
    ]
    for error, expected in cases:
        message = explain_failure(SCRAM, error, 7.0)
        assert expected in message, (error, message)
        assert "s3cret" not in message


def test_bad_credentials_point_at_the_password_environment_variable() -> None:
    message = explain_failure(SCRAM, SaslAuthenticationFailedError(), 10.0)
    assert "LOGLABEL_KAFKA__SASL_PASSWORD" in message and "kafka.sasl_username" in message


def test_broker_view_records_why_the_broker_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    view = BrokerView(KafkaConfig(bootstrap_servers=f"127.0.0.1:{port}"), [PRED],
                      timeout_s=1.0)
    snapshot = view.refresh()
    view.close()
    assert snapshot.answered_at is None
    assert snapshot.error is not None and "nothing listens" in snapshot.error
    verdict = readiness(status({0: part({PRED: 1})}), snapshot, 0.0, 60, now=0.0,
                        broker_max_age_s=10)
    assert not verdict.ok and "broker not reachable: nothing listens" in verdict.problems[0]
