"""The ingest stage: raw forwarder topics to internal, co-partitioned topics.

Forwarders do not hash keys the way Java clients and kafka-python do
(Fluentd's ``out_kafka2`` uses crc32 by default, librdkafka uses
``consistent_random``), so a prediction and its click can land in partitions
with different numbers. This stage decodes every raw message, dead-letters the
bad ones, and produces each canonical record keyed by its join id (murmur2,
like Kafka Streams' repartition topics) into two internal topics with the same
partition count. The labeler then joins partition *i* of both.

**Time crosses the shuffle with the data.** Re-keying merges every raw
partition into every internal one, so an internal partition's own event times
say nothing about how far each raw partition has come. The stage keeps each raw
partition's frontier (``ingest.repartition.frontier``) and writes it, as a
``SourceMark``, into every partition of the internal topic that raw partition
feeds, *after* the records it covers (one producer, so per partition in order).
The labeler's watermark is the minimum over every raw partition's mark.

* A record behind its raw partition's frontier by more than the allowed
  lateness is late: a late prediction becomes a ``late_prediction`` dead
  letter; a late outcome is forwarded marked as late (the labeler counts it and
  never joins it).
* **Idleness.** A raw partition that delivered nothing for ``idle_after``
  seconds, and that the broker confirms caught up (its log end offset, asked
  now, equals our position), reports its frontier plus the time elapsed since
  its last record; an empty one reports itself idle. Without a fresh answer
  from the broker, time moves nothing: an outage or an unknown lag is never
  idleness.
* The frontier is committed with the raw offset (as the offset's metadata), so
  a replay after a restart or a rebalance classifies every record as before.

Commit order: produce the records (and marks), flush the producer (idempotent,
acks=all), and only then commit the raw offsets. A crash replays from the last
commit and produces some records twice; the labeler's dedupe by id makes the
hop effectively-once.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from ingest.errors import IngestError
from ingest.events import log_event
from ingest.kafka.clients import COORDINATOR_TIMEOUT_MS, new_consumer, new_producer
from ingest.kafka.dead_letters import (
    DELIVERY_TIMEOUT_MS,
    FINAL_FLUSH_TIMEOUT_S,
    CommitGate,
    DeadLetterSink,
    DeliveryTracker,
)
from ingest.kafka.progress import BrokerProgress, InputClock, MembershipWatch
from ingest.records import SourceMark
from ingest.repartition.frontier import Frontier
from ingest.repartition.rekey import Bucket, Rekeying, collector_paused
from ingest.repartition.routes import IncompleteRun, Route, TimeRules
from ingest.wire.batch import BatchDecoder
from ingest.wire.codec import encode_batch, pack

CONFIRM_EVERY_S = 1.0  # at most one end-offsets request per second for idleness
STALL_AFTER_S = 60.0  # unread input and nothing delivered for this long: a logged stall
RESEND_MARKS_S = 5.0  # every mark is written again this often, changed or not
FETCH = {"max_partition_fetch_bytes": 4 * 1024 * 1024, "fetch_max_bytes": 64 * 1024 * 1024}
"""Fetch sizes: a poll batch is decoded at once, so larger fetches mean fewer, fuller
batches (kafka-python's defaults are 1 MiB per partition); bounded by the raw
partitions owned times 4 MiB."""



class Repartitioner(Rekeying):
    """Consumes raw topics and re-keys canonical records by join id.

    Owned by the thread that calls ``run``; ``stop`` and ``last_activity`` may be
    called from any thread.
    """

    def __init__(self, client_options: Mapping[str, Any], group_id: str, routes: list[Route],
                 dead_letter_topic: str, counters: Counter[str] | None = None,
                 flush_interval: float = 1.0, max_poll_records: int = 5000,
                 consumer_options: Mapping[str, Any] | None = None,
                 time_rules: TimeRules | None = None, status_interval: float = 30.0,
                 mark_interval: float = 0.2) -> None:
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.routes = {r.raw_topic: r for r in routes}
        self.client_options = dict(client_options)
        self.group_id = group_id
        self.dead_letter_topic = dead_letter_topic
        self.flush_interval = flush_interval
        self.max_poll_records = max_poll_records
        self.consumer_options = dict(consumer_options or {})
        self.time = time_rules or TimeRules()
        self.status_interval = status_interval
        self.mark_interval = mark_interval
        self.batch_records = 500
        self.columnar = True  # False: the row path, the reference (ingest.repartition.rekey)
        self._batch_decoders: dict[str, BatchDecoder] = {}
        self.max_batch_bytes = 900_000
        self._stop = False
        self._partitions: dict[str, int] = {}  # internal topic -> partition count
        self._frontiers: dict[TopicPartition, Frontier] = {}
        self._next: dict[TopicPartition, int] = {}  # raw partition -> next offset to read
        self._sent: dict[TopicPartition, tuple[float, bool]] = {}  # last mark written
        self._idle_at: dict[TopicPartition, float] = {}  # quiet-for when confirmed caught up
        self._resent_at = -math.inf
        self._buckets: dict[Bucket, tuple[list[list[Any]], list[int]]] = {}
        self._clock = InputClock()
        self._delivery = DeliveryTracker()
        self._gate = CommitGate(self.counters, "ingest_commits_deferred",
                                "ingest.commit_deferred")
        self._started_at: float | None = None
        self.ever_assigned = False
        self.first_input_at: float | None = None  # monotonic, for throughput figures
        self.last_input_at: float | None = None
        self.input_cpu_s = 0.0  # CPU of the loop's turns that had input (bench figures)

    def stop(self, *_: object) -> None:
        self._stop = True

    def last_activity(self) -> float | None:
        """Monotonic time of the last input, or of the start while nothing came yet."""
        return self.last_input_at or self._started_at

    # -- the loop ----------------------------------------------------------------------

    def run(self, until_idle: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> Counter[str]:
        """Run until ``stop()``, ``should_stop()``, or ``until_idle`` seconds without input
        with every raw partition confirmed caught up by the broker. Raises
        ``IncompleteRun`` when ``until_idle`` ends a run that never had an assignment."""
        producer = new_producer(self.client_options, linger_ms=10, acks="all",
                                enable_idempotence=True, batch_size=512 * 1024,
                                delivery_timeout_ms=DELIVERY_TIMEOUT_MS)
        self._dead_letters = DeadLetterSink(producer, self.dead_letter_topic, self.counters)
        consumer = self._subscribed_consumer()
        self._progress = BrokerProgress(consumer, "ingest", topics=list(self.routes))
        membership = MembershipWatch(self.consumer_options.get("session_timeout_ms", 10_000)
                                     / 1000)
        now = last_input = last_commit = last_marks = last_status = last_confirm = \
            self._started_at = time.monotonic()
        log_event("ingest.started", topics=list(self.routes), group=self.group_id)
        try:
            while not self._stop and not (should_stop and should_stop()):
                cpu_before = time.process_time()
                batch = consumer.poll(timeout_ms=200)
                now = time.monotonic()
                stuck = membership.stuck(consumer, now, self._progress.reachable)
                if stuck is not None:
                    consumer = self._rejoin(consumer, stuck)
                    continue
                with collector_paused():
                    for tp, messages in batch.items():
                        self._take(consumer, tp, messages, now)
                    self._flush_buckets(producer)
                if batch:
                    last_input = now
                    if self.first_input_at is None:
                        self.first_input_at = now
                    self.last_input_at = now
                self._progress.probe(
                    functools.partial(self._positions, consumer), now)
                if now - last_confirm >= CONFIRM_EVERY_S:
                    self._confirm(consumer, now)
                    last_confirm = now
                if now - last_marks >= self.mark_interval:
                    self._send_marks(producer, consumer, now)
                    last_marks = now
                if now - last_commit >= self.flush_interval:
                    self._commit(producer, consumer)
                    last_commit = now
                if now - last_status >= self.status_interval:
                    self._status(now)
                    last_status = now
                if batch:
                    self.input_cpu_s += time.process_time() - cpu_before
                quiet = now - max(last_input, self._progress.reachable_since)
                if until_idle is not None and self._progress.reachable \
                        and quiet >= until_idle and self._finished(consumer, now):
                    log_event("ingest.idle", seconds=round(now - last_input, 1))
                    break
            self._flush_buckets(producer)
            self._send_marks(producer, consumer, time.monotonic())
            self._commit(producer, consumer, final=True)
            self._status(time.monotonic())
        finally:
            consumer.close(autocommit=False, timeout_ms=COORDINATOR_TIMEOUT_MS)
            producer.close(timeout=10)
        return self.counters

    def _subscribed_consumer(self) -> KafkaConsumer:
        options = {**FETCH, **self.consumer_options}
        consumer = new_consumer(
            self.client_options, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.max_poll_records, **options,
        )
        consumer.subscribe(list(self.routes), listener=_Forget(self))
        return consumer

    def _rejoin(self, consumer: KafkaConsumer, state: str) -> KafkaConsumer:
        """A new consumer for a member stuck outside the group
        (``ingest.kafka.progress.MembershipWatch``); what was read since the last commit
        is read again by whoever owns it next."""
        self.counters["group_rejoins"] += 1
        self._gate.deferring = False
        log_event("group.stuck", logging.WARNING, who="ingest", state=state,
             action="closing the consumer and joining again")
        self.forget(set(self._frontiers) | set(self._next))
        self._buckets = {}
        try:
            consumer.close(autocommit=False, timeout_ms=COORDINATOR_TIMEOUT_MS)
        except Exception as exc:  # noqa: BLE001 - a stuck client may fail to close cleanly
            log_event("group.close_failed", logging.WARNING, error=str(exc))
        fresh = self._subscribed_consumer()
        self._progress.consumer = fresh
        return fresh

    def _finished(self, consumer: KafkaConsumer, now: float) -> bool:
        """Whether an ``--until-idle`` run may end now: assigned, and every assigned raw
        partition confirmed caught up by a fresh answer. Raises ``IncompleteRun`` when
        nothing was ever assigned within a grace period."""
        assigned = consumer.assignment()
        if not assigned:
            # the grace counts from the start, or from the broker's return after an outage
            began = max(self._started_at or now, self._progress.reachable_since)
            if not self.ever_assigned and now - began > 60.0:
                raise IncompleteRun("the ingest stage never got a raw partition assigned "
                                    f"(group {self.group_id!r}): check the topics and the group")
            return False
        positions = {tp: self._position(consumer, tp) for tp in assigned}
        lag = self._progress.lag(positions)
        return lag is not None and not any(lag.values())

    def _positions(self, consumer: KafkaConsumer) -> dict[TopicPartition, int | None]:
        return {tp: self._position(consumer, tp) for tp in consumer.assignment()}

    def _position(self, consumer: KafkaConsumer, tp: TopicPartition) -> int | None:
        """The next offset to read of ``tp``; ``None`` when the consumer does not know."""
        known = self._next.get(tp)
        if known is not None:
            return known
        try:
            return consumer.position(tp, timeout_ms=5000)
        except (KafkaError, OSError):
            return None

    # -- records (the rest is ingest.repartition.rekey) ---------------------------------

    def _restore_frontier(self, consumer: KafkaConsumer, tp: TopicPartition) -> Frontier:
        """The frontier committed with ``tp``'s offset (fresh when there is none)."""
        for attempt in range(3):
            try:
                committed = consumer.committed(tp, metadata=True, timeout_ms=10_000)
                break
            except Exception as exc:  # noqa: BLE001 - retried, then the stage stops
                log_event("ingest.frontier_unknown", logging.WARNING, partition=str(tp),
                     attempt=attempt + 1, error=str(exc))
        else:
            # a replay judged by a fresh frontier would decide lateness differently from
            # the first read: better to stop (and be restarted) than to label differently
            raise IngestError(f"cannot read the committed frontier of {tp}: the broker did "
                              "not answer the offset fetch; the stage stops")
        return self.time.frontier().from_metadata(getattr(committed, "metadata", None))

    def _partition_count(self, topic: str, consumer: KafkaConsumer) -> int:
        count = self._partitions.get(topic)
        if count is None:
            found = consumer.partitions_for_topic(topic)
            if not found:
                raise IngestError(f"internal topic {topic!r} does not exist")
            count = self._partitions[topic] = len(found)
        return count

    # -- time --------------------------------------------------------------------------

    def _confirm(self, consumer: KafkaConsumer, now: float) -> None:
        """Ask the broker whether the quiet raw partitions are caught up (idleness), and
        log the ones that have unread input but deliver nothing (a stall)."""
        found = self._progress.quiet_partitions(
            self._clock, functools.partial(self._position, consumer), consumer.assignment(),
            now, min(self.time.idle_after, STALL_AFTER_S))
        for tp, (quiet, unread) in (found or {}).items():  # None: no answer, nothing idles
            if unread == 0 and quiet >= self.time.idle_after:
                self._idle_at[tp] = quiet
            elif unread > 0 and quiet >= STALL_AFTER_S:
                self.counters["ingest_stalls"] += 1
                log_event("ingest.stalled", logging.WARNING, partition=str(tp), unread=unread,
                          quiet_s=round(quiet, 1))

    def _send_marks(self, producer: KafkaProducer, consumer: KafkaConsumer, now: float) -> None:
        """Write each owned raw partition's mark into every partition of its internal
        topic, when it changed; always after the records it covers."""
        changed: dict[str, list[list[Any]]] = {}
        for tp in consumer.assignment():
            frontier = self._frontiers.get(tp) or self._frontiers.setdefault(
                tp, self._restore_frontier(consumer, tp))
            quiet = self._idle_at.get(tp)
            mark, idle = frontier.mark, quiet is not None
            if idle and mark > -math.inf:
                mark += quiet  # type: ignore[operator]
            if self._sent.get(tp) == (mark, idle) and now - self._resent_at < RESEND_MARKS_S:
                continue
            self._sent[tp] = (mark, idle)
            topic = self.routes[tp.topic].internal_topic
            changed.setdefault(topic, []).append(pack(SourceMark(tp.topic, tp.partition, mark,
                                                                 idle)))
        if now - self._resent_at >= RESEND_MARKS_S:
            self._resent_at = now  # every mark again now and then: a labeler that starts
            # without the old ones (retention, a reset) hears from every source soon
        for topic, marks in changed.items():
            value = encode_batch(marks)
            for partition in range(self._partition_count(topic, consumer)):
                self._delivery.watch(producer.send(topic, value=value, partition=partition))
            self.counters["source_marks_sent"] += len(marks)

    # -- commit, rebalance, status -----------------------------------------------------

    def _commit(self, producer: KafkaProducer, consumer: KafkaConsumer,
                final: bool = False) -> None:
        """Commit the raw offsets (with their frontiers) once every record they cover is
        acknowledged. While the broker leaves a batch unacknowledged that waits for a
        later round (counted, logged once per outage); the last commit before exiting
        waits longer, then raises. A failed offset commit is logged and counted: the
        next one covers it, and what a restart reads again the labeler skips."""
        offsets = {
            tp: OffsetAndMetadata(next_offset, self._frontiers[tp].metadata(), -1)
            for tp, next_offset in self._next.items() if tp in self._frontiers
        }
        if not offsets:
            return
        # every record, mark and dead letter is acked before the raw offsets that cover
        # them are committed; while the broker is away the commit waits for a later round
        if not self._gate.open(producer, final):
            return
        self._delivery.check("re-keyed records")
        self._dead_letters.delivery.check("dead letters")
        try:  # the raw offsets are this stage's progress: the last commit waits longer
            consumer.commit(offsets, timeout_ms=int(FINAL_FLUSH_TIMEOUT_S * 1000) if final
                            else COORDINATOR_TIMEOUT_MS)
        except KafkaError as exc:  # e.g. the broker is away: the next commit covers these
            self.counters["ingest_commit_failures"] += 1
            log_event("ingest.commit_failed", logging.WARNING, error=str(exc) or type(exc).__name__)

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self.ever_assigned = self.ever_assigned or bool(partitions)
        self._clock.assigned(partitions, time.monotonic())

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop what is known of partitions this member no longer owns: their next owner
        reads them again from the committed offset and frontier (the labeler's dedupe
        absorbs the overlap), and no offset of theirs is committed from here."""
        for tp in partitions:
            self._next.pop(tp, None)
            self._frontiers.pop(tp, None)
            self._sent.pop(tp, None)
            self._idle_at.pop(tp, None)
        self._clock.forget(partitions)

    def _status(self, now: float) -> None:
        c = self.counters
        marks = [f.mark for f in self._frontiers.values() if f.mark > -math.inf]
        log_event("ingest.status", raw_messages=c["raw_messages"], rekeyed=c["rekeyed"],
             dead_letters=c["dead_letters_sent"], late_predictions=c["late_predictions"],
             ahead_of_frontier=sum(f.ahead for f in self._frontiers.values()),
             partitions=len(self._frontiers), idle_partitions=len(self._idle_at),
             frontier_min=min(marks, default=None), frontier_max=max(marks, default=None),
             broker_reachable=self._progress.reachable, lag=self._progress.last_lag,
             uptime_s=round(now - (self._started_at or now), 1))


class _Forget(ConsumerRebalanceListener):
    """Runs on the consumer's IO loop: only in-memory bookkeeping, nothing blocking."""

    def __init__(self, stage: Repartitioner) -> None:
        self.stage = stage

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.stage.forget(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.stage.assigned(set(assigned))
