"""The ingest stage's records: one poll batch of one raw partition, decoded, judged
against the partition's frontier, re-keyed and bucketed per internal partition.

Two paths give the same internal records, in the same order in each internal
partition, the same dead letters in the same order, and the same counters (a
randomized test holds them equal):

* **columns** (the default): the batch is decoded at once
  (``ingest.wire.batch.BatchDecoder``: the row decoder judges only the rows the
  fast path cannot vouch for), the frontier observes the batch's event times in
  order (``Frontier.observe_all``), murmur2 runs over every join id at once
  (``internal_partitions``) and the records are appended to their buckets in bulk;
* **rows**: ``Decoder.decode``, ``Frontier.observe`` and ``internal_partition`` per
  message, the reference the columns are checked against.

A bucket becomes internal messages of at most ``batch_records`` records and
``max_batch_bytes`` bytes when the loop flushes it (after each poll), so every
record precedes the source marks the loop writes after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ingest.kafka.dead_letters import DeadLetterSink, DeliveryTracker
from ingest.kafka.progress import InputClock
from ingest.records import DeadLetter, LateOutcome, Prediction, SourceRef
from ingest.repartition.frontier import Frontier, late_letter
from ingest.repartition.partitioner import internal_partition, internal_partitions
from ingest.repartition.routes import Route, TimeRules
from ingest.wire.batch import BatchDecoder
from ingest.wire.codec import encode_sourced, pack

_LATE_OUTCOME = 4  # ingest.wire.codec's kind of a LateOutcome


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a poll batch is decoded and sent.

    A batch allocates tens of thousands of acyclic containers (parsed documents,
    records) that all live until its internal messages are encoded, then die by
    reference counting. Left on, the collector walks them again and again as they
    age through its generations: about a fifth of the stage's CPU. The collector
    runs again as soon as the batch is out.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


Bucket = tuple[str, int, str, int]
"""Where a bucket goes and where its records come from: (internal topic, internal
partition, raw topic, raw partition). Its records and their raw offsets."""


class Rekeying:
    """The record half of ``Repartitioner`` (a mixin: it declares what it borrows from
    the stage). Called only from the thread that runs the stage's loop."""

    routes: dict[str, Route]
    counters: Counter[str]
    time: TimeRules
    columnar: bool
    batch_records: int
    max_batch_bytes: int
    _frontiers: dict[TopicPartition, Frontier]
    _next: dict[TopicPartition, int]
    _idle_at: dict[TopicPartition, float]
    _buckets: dict[Bucket, tuple[list[list[Any]], list[int]]]
    _batch_decoders: dict[str, BatchDecoder]
    _clock: InputClock
    _delivery: DeliveryTracker
    _dead_letters: DeadLetterSink

    if TYPE_CHECKING:  # the stage's own; no stub here could shadow them
        def _restore_frontier(self, consumer: KafkaConsumer, tp: TopicPartition
                              ) -> Frontier: ...

        def _partition_count(self, topic: str, consumer: KafkaConsumer) -> int: ...

    def _take(self, consumer: KafkaConsumer, tp: TopicPartition, messages: list[Any],
              now: float) -> None:
        """Decode, judge and bucket one poll batch of ``tp``; dead letters are sent now."""
        frontier = self._frontiers.get(tp)
        if frontier is None:
            frontier = self._frontiers[tp] = self._restore_frontier(consumer, tp)
        ahead = frontier.ahead
        if self.columnar:
            self._take_columns(consumer, tp, messages, frontier)
        else:
            self._take_rows(consumer, tp, messages, frontier)
        self.counters["ahead_of_frontier"] += frontier.ahead - ahead
        self._next[tp] = messages[-1].offset + 1
        self._clock.delivered(tp, now)
        self._idle_at.pop(tp, None)
        self.counters["raw_messages"] += len(messages)

    def _take_columns(self, consumer: KafkaConsumer, tp: TopicPartition, messages: list[Any],
                      frontier: Frontier) -> None:
        route = self.routes[tp.topic]
        decoder = self._batch_decoders.get(tp.topic)
        if decoder is None:
            decoder = self._batch_decoders[tp.topic] = BatchDecoder(route.decoder)
        count = self._partition_count(route.internal_topic, consumer)
        batch = decoder.decode([m.value for m in messages])
        late = frontier.observe_all(batch.times)
        packed, positions, join_ids = batch.packed, batch.positions, batch.join_ids
        letters: list[tuple[int, Any]] = list(batch.letters)
        if late:
            if route.decoder.kind == "prediction":
                gone = {j for j, _ in late}
                letters += [(positions[j], (batch.times[j], mark)) for j, mark in late]
                letters.sort(key=lambda item: item[0])
                packed = [row for j, row in enumerate(packed) if j not in gone]
                join_ids = [jid for j, jid in enumerate(join_ids) if j not in gone]
                positions = [at for j, at in enumerate(positions) if j not in gone]
            else:
                for j, _ in late:
                    packed[j] = [_LATE_OUTCOME, *packed[j][1:]]
        for index, letter in letters:
            m = messages[index]
            if type(letter) is DeadLetter:
                self._dead_letters.send(
                    replace(letter, source=SourceRef(tp.topic, tp.partition, m.offset)), m.key)
            else:
                self._late_prediction(route, tp, m, *letter)
        if not packed:
            return
        topic = route.internal_topic
        buckets = self._buckets
        # first use in record order, as the row path makes them
        mine: list[tuple[list[list[Any]], list[int]] | None] = [None] * count
        for partition, row, at in zip(internal_partitions(join_ids, count).tolist(), packed,
                                      positions, strict=True):
            bucket = mine[partition]
            if bucket is None:
                bucket = mine[partition] = buckets.setdefault(
                    (topic, partition, tp.topic, tp.partition), ([], []))
            bucket[0].append(row)
            bucket[1].append(messages[at].offset)
        self.counters["rekeyed"] += len(packed)

    def _take_rows(self, consumer: KafkaConsumer, tp: TopicPartition, messages: list[Any],
                   frontier: Frontier) -> None:
        route = self.routes[tp.topic]
        decode = route.decoder.decode
        count = self._partition_count(route.internal_topic, consumer)
        buckets = self._buckets
        for m in messages:
            record = decode(m.value)
            if type(record) is DeadLetter:
                self._dead_letters.send(replace(record, source=SourceRef(tp.topic, tp.partition,
                                                                         m.offset)), m.key)
                continue
            join_id, t = record.join_id, record.event_time  # type: ignore[union-attr]
            packed = pack(record)  # type: ignore[arg-type]
            if frontier.observe(t):
                if type(record) is Prediction:
                    self._late_prediction(route, tp, m, t, frontier.mark)
                    continue
                packed = pack(LateOutcome(record))  # type: ignore[arg-type]
            target = (route.internal_topic, internal_partition(join_id, count), tp.topic,
                      tp.partition)
            rows, offsets = buckets.setdefault(target, ([], []))
            rows.append(packed)
            offsets.append(m.offset)
            self.counters["rekeyed"] += 1

    def _late_prediction(self, route: Route, tp: TopicPartition, message: Any, t: float,
                         mark: float) -> None:
        self.counters["late_predictions"] += 1
        letter = late_letter(t, mark, self.time.lateness, message.value or b"",
                             SourceRef(tp.topic, tp.partition, message.offset))
        pii = route.decoder.pii
        self._dead_letters.send(letter if pii is None else pii.redact_dead_letter(letter),
                                message.key)

    def _flush_buckets(self, producer: KafkaProducer) -> None:
        for where, (rows, offsets) in self._buckets.items():
            step = self.batch_records
            for start in range(0, len(rows), step):
                self._send_batch(producer, where, rows[start:start + step],
                                 offsets[start:start + step])
        self._buckets = {}

    def _send_batch(self, producer: KafkaProducer, where: Bucket, rows: list[list[Any]],
                    offsets: list[int]) -> None:
        """One internal message (a sourced batch, see ``ingest.wire.codec``), split in
        halves while it exceeds ``max_batch_bytes`` (a broker refuses records over its
        ``max.message.bytes``, 1 MiB by default)."""
        topic, partition, raw_topic, raw_partition = where
        value = encode_sourced(raw_topic, raw_partition, offsets, rows)
        if len(value) > self.max_batch_bytes and len(rows) > 1:
            half = len(rows) // 2
            self._send_batch(producer, where, rows[:half], offsets[:half])
            self._send_batch(producer, where, rows[half:], offsets[half:])
            return
        self._delivery.watch(producer.send(topic, value=value, partition=partition))
