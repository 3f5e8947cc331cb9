"""What lets the worker's time move without input, and when a bounded run may end.

Both decisions ask the broker first (``ingest.kafka.progress``): a cached
highwater, an unreachable broker or an unknown lag never count as "caught up".

* **Idleness** (``repartition = "never"``; with ``"always"`` the ingest stage
  does it per raw partition). An input partition that delivered nothing for
  ``join.idle_after_s``, and that the broker confirms caught up, reports its
  frontier plus the time elapsed since its last record (or since it was
  assigned, if later) to its co-partition's watermark; an empty one reports
  itself idle. Never a jump to the wall clock.
* **The end of an ``--until-idle`` run**: no input for that long, the ingest
  stage beside the worker (if any) finished, and every assigned input partition
  confirmed caught up. A worker with nothing assigned (a standby, or one evicted
  from the group) ends only when the group's committed offsets reach the log
  end and it has held nothing for ``STANDBY_SETTLE_S`` since it joined; if they
  do not move towards it for ``UNASSIGNED_GRACE_S`` (the members
  that own the input are stuck, or there are none), the run is incomplete and
  raises ``IncompleteRun``: a backfill never exits 0 with input unread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, TopicPartition

from ingest.kafka.progress import BrokerProgress, InputClock
from labeler.errors import LabelerError
from labeler.logs import log

if TYPE_CHECKING:
    from labeler.join.partition import PartitionJoin

CONFIRM_EVERY_S = 1.0
UNASSIGNED_GRACE_S = 60.0
STANDBY_SETTLE_S = 10.0
"""How long a member must have held nothing, since it joined, before a group with nothing
unread lets it end as a standby: a first assignment made before the leader knew the
topics' partitions is empty, and the rebalance that corrects it follows within seconds
(on a loaded machine, more)."""


class IncompleteRun(LabelerError):
    """A bounded run stopped with input unread, or never took part in the group."""


class InputProgress:
    """The worker's view of its inputs' progress; owned by the worker thread."""

    def __init__(self, consumer: KafkaConsumer, topics: tuple[str, str], idle_after: float,
                 position: Callable[[TopicPartition], int | None]) -> None:
        self.consumer = consumer
        self.topics = topics
        self.idle_after = idle_after
        self.position = position  # the next offset the worker will read of a partition
        self.broker = BrokerProgress(consumer, "labeler", topics=topics)
        self.clock = InputClock()
        self.started = time.monotonic()
        self.last_input = self.started
        self.ever_assigned = False
        self.joined = False  # a rebalance completed for this consumer (maybe giving nothing)
        self.joined_at: float | None = None  # monotonic time of the last such rebalance
        self.unassigned_since: float | None = self.started
        self._last_confirm = -math.inf
        self._group_unread: int | None = None  # the group's unread input, last asked
        self._group_moved_at = -math.inf  # when that last went down

    # -- bookkeeping -------------------------------------------------------------------

    def rebind(self, consumer: KafkaConsumer) -> None:
        """Use a rebuilt consumer (after a stuck group membership)."""
        self.consumer = consumer
        self.broker.consumer = consumer
        self.joined = False

    def assigned(self, indexes: Iterable[int], now: float) -> None:
        tps = [TopicPartition(t, i) for i in indexes for t in self.topics]
        self.clock.assigned(tps, now)
        if tps:
            self.ever_assigned = True
            self.unassigned_since = None
            self.last_input = max(self.last_input, now)  # a new assignment is activity

    def removed(self, indexes: Iterable[int], still_assigned: bool, now: float) -> None:
        self.clock.forget(TopicPartition(t, i) for i in indexes for t in self.topics)
        if not still_assigned and self.unassigned_since is None:
            self.unassigned_since = now

    def delivered(self, tp: TopicPartition, now: float) -> None:
        self.clock.delivered(tp, now)
        self.last_input = now

    # -- idleness ----------------------------------------------------------------------

    def confirm_idle(self, joins: dict[int, PartitionJoin], now: float) -> None:
        """Report quiet, caught-up input partitions to their watermarks (at most once a
        second; see the module docstring)."""
        if now - self._last_confirm < CONFIRM_EVERY_S or not joins:
            return
        self._last_confirm = now
        tps = [TopicPartition(t, i) for i in joins for t in self.topics]
        found = self.broker.quiet_partitions(self.clock, self.position, tps, now,
                                             self.idle_after)
        for tp, (quiet, unread) in (found or {}).items():  # None: no answer, time stands
            if unread or quiet < self.idle_after:
                continue
            join = joins[tp.partition]
            frontier = join.frontiers.get(tp.topic)
            mark = frontier.mark if frontier is not None else -math.inf
            if mark > -math.inf:
                mark += quiet
            join.watermark.update((tp.topic, tp.partition), mark, idle=True)

    # -- the end of a bounded run ------------------------------------------------------

    def finished(self, until_idle: float, now: float,
                 upstream_done: Callable[[], bool] | None = None) -> bool:
        """Whether an ``--until-idle`` run may end now; raises ``IncompleteRun`` when it
        cannot end cleanly (see the module docstring)."""
        if not self.broker.reachable or \
                now - max(self.last_input, self.broker.reachable_since) < until_idle:
            return False  # an outage is never idleness
        if upstream_done is not None and not upstream_done():
            return False
        assigned = self.consumer.assignment()
        if assigned:
            lag = self.broker.lag({tp: self.position(tp) for tp in assigned})
            return lag is not None and not any(lag.values())
        if not self.joined:  # not a standby yet: its first rebalance has not completed
            # (counted from the start, or from the broker's return after an outage)
            if now - max(self.started, self.broker.reachable_since) >= UNASSIGNED_GRACE_S:
                raise IncompleteRun(f"--until-idle: this worker did not complete a join of "
                                    f"its group in {now - self.started:.0f} s; the run is "
                                    "incomplete")
            return False
        unread = self.group_unread()
        if unread == 0:
            held_nothing_since = max(self.unassigned_since if self.unassigned_since is not None
                                     else now, self.joined_at if self.joined_at is not None
                                     else now)
            if now - held_nothing_since < STANDBY_SETTLE_S:
                return False  # an empty first assignment may still be corrected
            log("worker.standby_done", assigned=0)
            return True
        if unread is not None and (self._group_unread is None or unread < self._group_unread):
            self._group_moved_at = now  # the members that own the input are getting on
        if unread is not None:
            self._group_unread = unread
        since = self.unassigned_since if self.unassigned_since is not None else now
        since = max(since, self._group_moved_at)
        if now - since >= UNASSIGNED_GRACE_S:
            what = ("was evicted from the group and not re-admitted" if self.ever_assigned
                    else "never got a partition assigned")
            unknown = unread is None
            raise IncompleteRun(
                f"--until-idle: this worker {what}, and for {now - since:.0f} s the group "
                + ("could not be asked for its offsets (broker unreachable)" if unknown
                   else f"still has {unread} unread input messages")
                + "; the run is incomplete")
        return False

    def group_unread(self) -> int | None:
        """Input messages the whole group has not committed yet (None: no answer)."""
        tps = [TopicPartition(t, p) for t in self.topics
               for p in sorted(self.consumer.partitions_for_topic(t) or ())]
        if not tps:
            return None
        ends = self.broker.end_offsets(tps)
        if ends is None:
            return None
        try:
            committed = {tp: self.consumer.committed(tp, timeout_ms=5000) or 0 for tp in tps}
        except Exception as exc:  # noqa: BLE001 - no answer is an unknown, not a zero
            log("worker.offsets_unknown", logging.WARNING, error=str(exc))
            return None
        return sum(max(0, ends[tp] - committed[tp]) for tp in tps)
