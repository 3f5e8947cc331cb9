"""Health of a running worker, and the broker as seen from beside it.

*Liveness* answers "is the loop stuck?". It fails only when input is waiting
in Kafka (an end offset beyond the worker's position on an assigned partition)
and the worker's positions have not moved for ``stall_after_s``; or, when the
status carries ``last_poll_at`` (monotonic seconds of the last ``poll()``),
when the loop has not polled for that long. An idle worker is alive.

*Readiness* answers "is this worker doing its share?": the loop runs,
partitions are assigned, the broker answered recently, and the worker is not
stalled. A worker of a group with more members than partitions has nothing
assigned and is therefore not ready: it is a standby.

``BrokerView`` asks the broker for end offsets from its own admin connection,
on its own thread, so a health probe never blocks on Kafka.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import (
    KafkaError,
)

from ingest.kafka.broker import BrokerUnavailable, connect_admin

if TYPE_CHECKING:  # types only: labeler.config may import this package's MetricsConfig
    from labeler.config import KafkaConfig
    from labeler.runtime.status import WorkerStatus


StatusSource = Callable[[], "WorkerStatus"]
Clock = Callable[[], float]


# -- the broker's end offsets ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    """What the broker last said: end offsets, when it last answered, and the last failure."""

    end_offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)
    answered_at: float | None = None  # monotonic seconds of the last successful round
    error: str | None = None  # the last round's failure; None after a success


class BrokerView:
    """End offsets of ``topics``, refreshed every ``interval_s`` on a daemon thread.

    ``snapshot()`` never blocks on Kafka. ``refresh()`` runs one round in the
    caller's thread (it may block up to ``timeout_s``).
    """

    def __init__(self, kafka: KafkaConfig, topics: Sequence[str], interval_s: float = 5.0,
                 timeout_s: float = 10.0, clock: Clock = time.monotonic) -> None:
        self.kafka = kafka
        self.topics = tuple(topics)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._admin: KafkaAdminClient | None = None
        self._snapshot = BrokerSnapshot()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> BrokerSnapshot:
        return self._snapshot

    def start(self) -> BrokerView:
        self._thread = threading.Thread(target=self._loop, name="loglabel-broker-view",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop refreshing. A round in flight finishes on its daemon thread, which then
        closes the connection: closing never waits for a broker that does not answer."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        else:
            with self._lock:
                self._drop_admin()

    def refresh(self) -> BrokerSnapshot:
        with self._lock:
            try:
                if self._admin is None:
                    self._admin = connect_admin(self.kafka, self.timeout_s)
                offsets = self._end_offsets(self._admin)
            except (BrokerUnavailable, KafkaError, OSError) as exc:
                self._drop_admin()
                self._snapshot = BrokerSnapshot(self._snapshot.end_offsets,
                                                self._snapshot.answered_at, str(exc) or repr(exc))
            else:
                self._snapshot = BrokerSnapshot(offsets, self._clock(), None)
            return self._snapshot

    def _end_offsets(self, admin: KafkaAdminClient) -> dict[tuple[str, int], int]:
        described = admin.describe_topics(list(self.topics))
        specs = {
            TopicPartition(d["name"], p["partition_index"]): OffsetSpec.LATEST
            for d in described if not d.get("error_code") for p in d["partitions"]
        }
        if not specs:
            return {}
        answer = admin.list_partition_offsets(specs, timeout_ms=int(self.timeout_s * 1000))
        return {(tp.topic, tp.partition): int(o.offset) for tp, o in answer.items()}

    def _drop_admin(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: S110, BLE001 - a broken connection may fail to close
                pass
            self._admin = None

    def _loop(self) -> None:
        try:
            while not self._stopped.is_set():
                self.refresh()
                self._stopped.wait(self.interval_s)
        finally:
            with self._lock:
                self._drop_admin()


# -- the rules -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """One probe's answer: ``ok``, or the problems that make it fail."""

    ok: bool
    problems: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        return orjson.dumps({"ok": self.ok, "problems": list(self.problems)})


def lags(status: WorkerStatus, end_offsets: Mapping[tuple[str, int], int]
         ) -> dict[tuple[str, int], int]:
    """Unread messages per assigned ``(topic, partition)`` whose position and end are known."""
    out: dict[tuple[str, int], int] = {}
    for index, part in status.partitions.items():
        for topic, offset in part.offsets.items():
            end = end_offsets.get((topic, index))
            if end is not None:
                out[(topic, index)] = max(0, end - offset)
    return out


class StallClock:
    """How long the worker has had input waiting without moving its positions."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._progress: Any = None
        self._since: float | None = None
        self._lock = threading.Lock()

    def observe(self, status: WorkerStatus, end_offsets: Mapping[tuple[str, int], int]) -> float:
        """Seconds stalled so far (0 when nothing waits or the worker moved since last seen)."""
        now = self._clock()
        behind = any(lag > 0 for lag in lags(status, end_offsets).values())
        progress = (status.counters.get("messages", 0),
                    sorted((i, sorted(p.offsets.items())) for i, p in status.partitions.items()))
        with self._lock:
            if not behind or progress != self._progress or self._since is None:
                self._progress = progress
                self._since = now
                return 0.0
            return now - self._since


def liveness(status: WorkerStatus, stalled_for: float, stall_after_s: float,
             now: float) -> Verdict:
    """Alive unless stalled (input waiting, no progress) or, if reported, not polling."""
    problems = []
    if stalled_for >= stall_after_s:
        problems.append(f"input is waiting and the worker has not moved for {stalled_for:.0f} s")
    last_poll = getattr(status, "last_poll_at", None)
    if status.running and last_poll is not None and now - last_poll >= stall_after_s:
        problems.append(f"the worker loop has not polled Kafka for {now - last_poll:.0f} s")
    return Verdict(not problems, tuple(problems))


def readiness(status: WorkerStatus, broker: BrokerSnapshot | None, stalled_for: float,
              stall_after_s: float, now: float, broker_max_age_s: float) -> Verdict:
    """Ready when running, assigned, alive, and (with a broker view) the broker answered
    within ``broker_max_age_s``."""
    problems = []
    if not status.running:
        problems.append("the worker is not running (starting or stopping)")
    elif getattr(status, "restoring", ()):
        problems.append(f"restoring partitions {list(status.restoring)} from their checkpoints")
    elif not status.partitions:
        problems.append("no partitions assigned (group rebalancing, or more workers than "
                        "partitions)")
    if broker is not None:
        if broker.answered_at is None or now - broker.answered_at > broker_max_age_s:
            reason = broker.error or "no answer yet"
            problems.append(f"broker not reachable: {reason}")
    problems.extend(liveness(status, stalled_for, stall_after_s, now).problems)
    return Verdict(not problems, tuple(problems))


class HealthMonitor:
    """Liveness and readiness of one worker, evaluated afresh at each call."""

    def __init__(self, status: StatusSource, stall_after_s: float,
                 broker: BrokerView | None = None, clock: Clock = time.monotonic) -> None:
        self.status = status
        self.stall_after_s = stall_after_s
        self.broker = broker
        self._clock = clock
        self._stall = StallClock(clock)

    def _observe(self) -> tuple[WorkerStatus, BrokerSnapshot | None, float]:
        status = self.status()
        snapshot = self.broker.snapshot() if self.broker is not None else None
        ends = snapshot.end_offsets if snapshot is not None else {}
        return status, snapshot, self._stall.observe(status, ends)

    def liveness(self) -> Verdict:
        status, _, stalled = self._observe()
        return liveness(status, stalled, self.stall_after_s, self._clock())

    def readiness(self) -> Verdict:
        status, snapshot, stalled = self._observe()
        max_age = 3 * self.broker.interval_s + self.broker.timeout_s if self.broker else math.inf
        return readiness(status, snapshot, stalled, self.stall_after_s, self._clock(), max_age)
