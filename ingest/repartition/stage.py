"""The ingest stage: raw forwarder topics to internal, co-partitioned topics.

Forwarders do not hash keys the way Java clients and kafka-python do
(Fluentd's ``out_kafka2`` uses crc32 by default, librdkafka uses
``consistent_random``), so a prediction and its click can land in partitions
with different numbers. This stage decodes every raw message, dead-letters the
bad ones, and produces each canonical record keyed by its join id (murmur2,
like Kafka Streams' repartition topics) into two internal topics with the same
partition count. The labeler then joins partition *i* of both.

**Event-time alignment.** Re-keying merges many raw partitions into each
internal one. A backfill reads raw partition 0 long before partition 3, which
would scramble event time in the internal topics far beyond the allowed
lateness. So records are held in an event-time heap and released only up to
the *frontier*: the smallest high mark (max event time read) among raw
partitions that still have unread messages. Caught-up partitions do not hold
the frontier back. A partition that runs more than ``max_skew`` seconds ahead
of the frontier is paused until the others catch up (Flink calls this
watermark alignment), which also bounds the heap.

Commit order: produce the released records, flush the producer (idempotent,
acks=all), and only then commit the raw offsets, never past a record still
held in the heap. A crash replays from the last
commit and produces some records twice; the labeler's dedupe by id makes the
hop effectively-once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ingest.kafka.clients import new_consumer, new_producer
from ingest.kafka.dead_letters import DeadLetterSink, DeliveryTracker
from ingest.records import DeadLetter, SourceRef
from ingest.repartition.partitioner import internal_partition
from ingest.wire.codec import encode_batch, pack
from ingest.wire.decode import Decoder

log = logging.getLogger("loglabel")


@dataclass(frozen=True, slots=True)
class Route:
    """One raw topic, how to decode it, and the internal topic it feeds."""

    raw_topic: str
    internal_topic: str
    decoder: Decoder


class Repartitioner:
    """Consumes raw topics and re-keys canonical records by join id."""

    def __init__(self, client_options: Mapping[str, Any], group_id: str, routes: list[Route],
                 dead_letter_topic: str, counters: Counter[str] | None = None,
                 flush_interval: float = 1.0, max_poll_records: int = 5000,
                 consumer_options: Mapping[str, Any] | None = None,
                 max_skew: float = 30.0) -> None:
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.routes = {r.raw_topic: r for r in routes}
        self.client_options = dict(client_options)
        self.group_id = group_id
        self.dead_letter_topic = dead_letter_topic
        self.flush_interval = flush_interval
        self.max_poll_records = max_poll_records
        self.consumer_options = dict(consumer_options or {})
        self.max_skew = max_skew
        self._stop = False
        # (event time, seq, internal topic, packed record, join id, raw partition, raw offset)
        self._heap: list[tuple[float, int, str, list[Any], str, TopicPartition, int]] = []
        self._partitions: dict[str, int] = {}
        self.batch_records = 500
        self.max_batch_bytes = 900_000
        self._seq = itertools.count()
        self._marks: dict[TopicPartition, float] = {}
        self._next: dict[TopicPartition, int] = {}
        self._held: dict[TopicPartition, set[int]] = {}
        self._paused: set[TopicPartition] = set()
        self._delivery = DeliveryTracker()
        self._started_at: float | None = None
        self.first_input_at: float | None = None  # monotonic, for throughput figures
        self.last_input_at: float | None = None

    def stop(self, *_: object) -> None:
        self._stop = True

    def run(self, until_idle: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> Counter[str]:
        """Run until ``stop()``, ``should_stop()``, or ``until_idle`` seconds without input."""
        producer = new_producer(self.client_options, linger_ms=10, acks="all",
                                 enable_idempotence=True, batch_size=512 * 1024)
        dead_letters = self._dead_letters = DeadLetterSink(producer, self.dead_letter_topic,
                                                           self.counters)
        consumer = new_consumer(
            self.client_options, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.max_poll_records, **self.consumer_options,
        )
        consumer.subscribe(list(self.routes), listener=_Forget(self))
        last_input = last_commit = self._started_at = time.monotonic()
        try:
            while not self._stop and not (should_stop and should_stop()):
                batch = consumer.poll(timeout_ms=200)
                now = time.monotonic()
                for tp, messages in batch.items():
                    self._take(tp, messages, dead_letters)
                if batch:
                    last_input = now
                    if self.first_input_at is None:
                        self.first_input_at = now
                    self.last_input_at = time.monotonic()
                self._release(producer, self._frontier(consumer))
                self._align(consumer)
                if now - last_commit >= self.flush_interval:
                    self._commit(producer, consumer)
                    last_commit = now
                if until_idle is not None and now - last_input >= until_idle:
                    break
            self._release(producer, math.inf)
            self._commit(producer, consumer)
        finally:
            consumer.close(autocommit=False)
            producer.close(timeout=10)
        return self.counters

    def _take(self, tp: TopicPartition, messages: list[Any], dead_letters: DeadLetterSink) -> None:
        route = self.routes[tp.topic]
        decode = route.decoder.decode
        held = self._held.setdefault(tp, set())
        mark = self._marks.get(tp, -math.inf)
        for m in messages:
            record = decode(m.value)
            if type(record) is DeadLetter:
                source = SourceRef(tp.topic, tp.partition, m.offset)
                dead_letters.send(replace(record, source=source), m.key)
                continue
            t = record.event_time  # type: ignore[union-attr]
            mark = max(mark, t)
            heapq.heappush(self._heap, (t, next(self._seq), route.internal_topic,
                                        pack(record),  # type: ignore[arg-type]
                                        record.join_id, tp, m.offset))  # type: ignore[union-attr]
            held.add(m.offset)
        self._marks[tp] = mark
        self._next[tp] = messages[-1].offset + 1
        self.counters["raw_messages"] += len(messages)

    def _frontier(self, consumer: KafkaConsumer) -> float:
        """The smallest high mark among raw partitions with unread input (inf if none)."""
        frontier = math.inf
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._next.get(tp)
            if position is None and highwater is not None:
                # nothing read from it in this run: where does the consumer stand?
                # (a partition fully committed before a restart is caught up)
                position = consumer.position(tp)
            if highwater is not None and position is not None and position >= highwater:
                continue  # caught up
            if highwater == 0:
                continue  # empty partition
            frontier = min(frontier, self._marks.get(tp, -math.inf))
        return frontier

    def _release(self, producer: KafkaProducer, frontier: float) -> None:
        """Send every held record up to ``frontier``, in event-time order, batched per
        internal partition (the partition is murmur2 of the join id, as Java clients and
        Kafka Streams compute it)."""
        heap = self._heap
        buckets: dict[tuple[str, int], list[list[Any]]] = {}
        while heap and heap[0][0] <= frontier:
            _, _, topic, packed, join_id, tp, offset = heapq.heappop(heap)
            count = self._partitions.get(topic)
            if count is None:
                count = self._partitions[topic] = len(producer.partitions_for(topic))
            target = (topic, internal_partition(join_id, count))
            bucket = buckets.setdefault(target, [])
            bucket.append(packed)
            if len(bucket) >= self.batch_records:
                self._send_batch(producer, target[0], target[1], bucket)
                buckets[target] = []
            self._held[tp].discard(offset)
            self.counters["rekeyed"] += 1
        for (topic, partition), bucket in buckets.items():
            if bucket:
                self._send_batch(producer, topic, partition, bucket)

    def _send_batch(self, producer: KafkaProducer, topic: str, partition: int,
                    bucket: list[list[Any]]) -> None:
        """One internal message, split in halves while it exceeds ``max_batch_bytes``
        (a broker refuses records over its ``max.message.bytes``, 1 MiB by default)."""
        value = encode_batch(bucket)
        if len(value) > self.max_batch_bytes and len(bucket) > 1:
            half = len(bucket) // 2
            self._send_batch(producer, topic, partition, bucket[:half])
            self._send_batch(producer, topic, partition, bucket[half:])
            return
        self._delivery.watch(producer.send(topic, value=value, partition=partition))

    def last_activity(self) -> float | None:
        """Monotonic time of the last input, or of the start while nothing came yet
        (a labeler beside this stage waits for it before calling itself idle)."""
        return self.last_input_at or self._started_at

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop what is held for partitions this member no longer owns: their next
        owner reads them again from the committed offset (the labeler's dedupe
        absorbs the overlap), and no offset of theirs is committed from here."""
        if not partitions:
            return
        self._heap = [entry for entry in self._heap if entry[5] not in partitions]
        heapq.heapify(self._heap)
        for tp in partitions:
            self._held.pop(tp, None)
            self._next.pop(tp, None)
            self._marks.pop(tp, None)
        self._paused -= partitions

    def _align(self, consumer: KafkaConsumer) -> None:
        """Pause raw partitions that run too far ahead of the frontier; resume the rest."""
        frontier = self._frontier(consumer)
        ahead = {tp for tp, mark in self._marks.items()
                 if frontier < math.inf and mark > frontier + self.max_skew}
        ahead &= set(consumer.assignment())
        if ahead - self._paused:
            consumer.pause(*(ahead - self._paused))
        if self._paused - ahead:
            consumer.resume(*(self._paused - ahead))
        self._paused = ahead

    def _commit(self, producer: KafkaProducer, consumer: KafkaConsumer) -> None:
        offsets = {}
        for tp, next_offset in self._next.items():
            held = self._held.get(tp)
            offsets[tp] = OffsetAndMetadata(min(held) if held else next_offset, "", -1)
        if not offsets:
            return
        producer.flush(timeout=60)  # every released record and dead letter is acked ...
        self._delivery.check("re-keyed records")
        self._dead_letters.delivery.check("dead letters")
        consumer.commit(offsets)  # ... before the raw offsets that cover them


class _Forget(ConsumerRebalanceListener):
    """Runs on the consumer's IO loop: only in-memory bookkeeping, nothing blocking."""

    def __init__(self, stage: Repartitioner) -> None:
        self.stage = stage

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.stage.forget(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        pass
