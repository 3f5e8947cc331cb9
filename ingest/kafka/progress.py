"""Where a consumer stands against the broker, asked fresh: lag, idleness, outages.

A consumer's cached ``highwater`` says what the last fetch response said, and a
partition whose fetch was answered a while ago looks caught up while new
messages wait. Every decision that lets time move without input (an idle
source's watermark, ``--until-idle``) therefore asks the broker for the log end
offsets *now* (a ListOffsets request), and takes no decision when it does not
answer. An unanswered request is an outage: logged once as
``broker.unreachable``, and as ``broker.reachable`` when an answer comes back.

``InputClock`` keeps, per partition, when it last delivered a record (or was
assigned), on the monotonic clock: idleness is measured from there.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import MemberState

from ingest.events import log_event


class BrokerProgress:
    """Fresh end offsets for one consumer; owned by the thread that polls it."""

    def __init__(self, consumer: KafkaConsumer, who: str, timeout_ms: int = 3000,
                 topics: Iterable[str] = ()) -> None:
        self.consumer = consumer
        self.who = who
        self.timeout_ms = timeout_ms
        self.reachable = True
        self.last_answer: float | None = None  # monotonic time of the last answer
        self.unreachable_since: float | None = None
        self.last_lag: int | None = None  # unread messages at the last probe
        # asked when nothing is assigned (e.g. lost in the outage), so an outage is
        # still noticed and logged
        self.canary = [TopicPartition(t, 0) for t in topics]
        # when the broker last came back: time without input before that is an outage,
        # not idleness (producers resend what they buffered meanwhile)
        self.reachable_since = time.monotonic()
        self._last_probe = -math.inf

    def probe(self, positions: Callable[[], Mapping[TopicPartition, int | None]], now: float,
              every_s: float = 5.0) -> None:
        """Every ``every_s``: ask for the lag of ``positions()``, so an outage is logged
        even when nothing else would have asked, and the status line shows the lag."""
        if now - self._last_probe < every_s:
            return
        self._last_probe = now
        asked = positions()
        if not asked:
            self.end_offsets(self.canary)
            self.last_lag = None
            return
        lag = self.lag(asked)
        self.last_lag = None if lag is None else sum(lag.values())

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int] | None:
        """The log end offsets now, or ``None`` when the broker did not answer."""
        tps = list(partitions)
        if not tps:
            return {}
        try:
            offsets = self.consumer.end_offsets(tps, timeout_ms=self.timeout_ms)
        except (KafkaError, OSError, ValueError) as exc:
            self._failed(exc)
            return None
        if offsets is None or any(offsets.get(tp) is None for tp in tps):
            self._failed(RuntimeError("no end offset in the answer"))
            return None
        now = time.monotonic()
        if not self.reachable:
            down = now - (self.unreachable_since or now)
            log_event("broker.reachable", who=self.who, after_s=round(down, 1))
            self.reachable_since = now
        self.reachable = True
        self.unreachable_since = None
        self.last_answer = now
        return dict(offsets)

    def lag(self, positions: Mapping[TopicPartition, int | None]
            ) -> dict[TopicPartition, int] | None:
        """Unread messages per partition given our ``positions`` (next offsets to read),
        or ``None`` when the broker did not answer or a position is unknown."""
        if any(p is None for p in positions.values()):
            return None
        ends = self.end_offsets(positions)
        if ends is None:
            return None
        return {tp: max(0, ends[tp] - (positions[tp] or 0)) for tp in positions}

    def quiet_partitions(self, clock: InputClock, positions: Callable[[TopicPartition], int | None],
                         partitions: Iterable[TopicPartition], now: float, after_s: float
                         ) -> dict[TopicPartition, tuple[float, int]] | None:
        """For the ``partitions`` quiet for ``after_s`` or more: (seconds quiet, unread
        messages), asked of the broker now; ``None`` when it did not answer.

        Quiet time never spans an outage: it counts from the broker's return, and the
        answer asked here may itself be that return, so it is measured after it.
        """
        asking = [tp for tp in partitions
                  if clock.quiet_for(tp, now, self.reachable_since) >= after_s]
        if not asking:
            return {}
        lag = self.lag({tp: positions(tp) for tp in asking})
        if lag is None:
            return None
        return {tp: (clock.quiet_for(tp, now, self.reachable_since), lag[tp]) for tp in asking}

    def _failed(self, exc: BaseException) -> None:
        if self.reachable:
            self.unreachable_since = time.monotonic()
            log_event("broker.unreachable", logging.WARNING, who=self.who,
                 error=str(exc) or type(exc).__name__)
        self.reachable = False


class InputClock:
    """When each input partition last delivered a record, or was assigned (monotonic)."""

    def __init__(self) -> None:
        self.last_event: dict[TopicPartition, float] = {}
        self.assigned_at: dict[TopicPartition, float] = {}

    def assigned(self, partitions: Iterable[TopicPartition], now: float) -> None:
        for tp in partitions:
            self.assigned_at.setdefault(tp, now)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.assigned_at.pop(tp, None)
            self.last_event.pop(tp, None)

    def delivered(self, tp: TopicPartition, now: float) -> None:
        self.last_event[tp] = now

    def quiet_for(self, tp: TopicPartition, now: float, floor: float = -math.inf) -> float:
        """Seconds since ``tp`` last delivered a record (or was assigned, or ``floor``:
        the broker's return after an outage, whichever is latest)."""
        since = max(self.last_event.get(tp, -math.inf), self.assigned_at.get(tp, -math.inf))
        return 0.0 if since == -math.inf else now - max(since, floor)


class MembershipWatch:
    """Notices a group member that stopped taking part without being told.

    kafka-python 3.0.12 can leave a member REBALANCING for good: a join that
    completes while ``poll()`` is not waiting on it is replaced by a new one
    (``coordinator/base.py``, ``_join_task.is_done``), its assignment is never
    applied, heartbeats stay off, and the broker evicts the member, which then
    never rejoins. A member that is not STABLE for ``limit_s`` is stuck; the
    caller rebuilds its consumer (closing and creating one recovers every stuck
    state we reproduced; an unsubscribe does not).
    """

    def __init__(self, session_timeout_s: float) -> None:
        self.limit_s = max(3 * session_timeout_s, 30.0)
        self._since: float | None = None

    def stuck(self, consumer: KafkaConsumer, now: float, reachable: bool = True) -> str | None:
        """The member's state when it is stuck (then the clock restarts), else ``None``.

        While the broker is not ``reachable`` no member can be STABLE and a new
        consumer could not even bootstrap: the clock starts again once it answers."""
        state = consumer.group_metadata().state
        if state == MemberState.STABLE or not reachable:
            self._since = None
            return None
        if self._since is None:
            self._since = now
        if now - self._since < self.limit_s:
            return None
        self._since = None
        return str(state)
