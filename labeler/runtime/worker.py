"""The worker loop: consume, decode, join, write shards, checkpoint, commit.

One ``Worker`` consumes the prediction and outcome topics in one consumer
group. The range assignor gives it partition *i* of both topics together (the
topics must have the same partition count: co-partitioned). Each assigned
partition index has its own ``PartitionJoin``, rows buffer and checkpoint.

Time: with ``repartition = "never"`` the worker reads the raw partitions
itself, so it keeps their frontiers, decides which records are late, and
reports the frontiers to each co-partition's watermark. With ``"always"`` the
ingest stage did that, and its ``SourceMark`` records arrive in the internal
topics beside the data. Idleness and the end of a bounded run are in
``labeler.runtime.progress``.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.structs import OffsetAndMetadata

from ingest.kafka.clients import new_consumer, new_producer
from ingest.kafka.dead_letters import DeadLetterSink
from ingest.kafka.progress import MembershipWatch
from ingest.records import DeadLetter, LateOutcome, Outcome, Prediction, SourceRef
from ingest.wire.codec import CanonicalDecoder
from ingest.wire.decode import Decoder
from labeler.config import Config
from labeler.join.inputs import DirectInputs
from labeler.join.partition import PartitionJoin
from labeler.join.pending import PendingStore
from labeler.join.records import LabeledExample
from labeler.join.rules import join_rules
from labeler.logs import log
from labeler.output.checkpoint import (
    Checkpoint,
    CheckpointStore,
    Fenced,
    PublishError,
    shard_name,
    stream_tag,
)
from labeler.output.shards import Rotation, ShardEncoder, ShardFile, encode_corrections
from labeler.output.storage import Storage
from labeler.runtime.progress import InputProgress
from labeler.runtime.status import PartitionStatus, WorkerStatus, status_line


class DriftObserver(Protocol):
    """What the worker needs from drift monitoring (``labeler.runtime.drift_hub.DriftHub``)."""

    def attach(self, producer: KafkaProducer) -> None: ...
    def observe_prediction(self, prediction: Prediction, source: SourceRef) -> Any: ...
    def observe_labeled(self, example: LabeledExample, source: SourceRef) -> Any: ...
    def check_schema(self, counters: Counter[str]) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def state(self, partition: int) -> dict[str, Any] | None: ...
    def restore(self, partition: int, state: Any) -> None: ...
    def release(self, partition: int) -> None: ...


DEAD_LETTER_LOGS = 10


class Upstream(Protocol):
    """The ingest stage running beside the worker in one process."""

    def done(self) -> bool: ...
    def failure(self) -> BaseException | None: ...


class _Partition:
    """Everything the worker holds for one assigned partition index."""

    __slots__ = ("index", "join", "inputs", "rows", "emitted_at", "epoch", "offsets",
                 "first_offset", "dirty", "segments")

    def __init__(self, index: int, join: PartitionJoin, epoch: int, offsets: dict[str, int]):
        self.index = index
        self.join = join
        self.inputs: DirectInputs | None = None  # with repartition = "never"
        self.rows: list[LabeledExample] = []
        self.emitted_at: list[tuple[float, int]] = []  # (wall time, rows emitted then)
        self.epoch = epoch
        self.offsets = offsets  # topic -> next offset to read
        self.first_offset = 0
        self.dirty = False
        self.segments: list[tuple[int, str]] = []  # state segments its checkpoint keeps


class Worker:
    """Runs the labeling pipeline until stopped, idle, or signalled."""

    def __init__(self, config: Config, drift: DriftObserver | None = None,
                 on_rows: Callable[[list[LabeledExample]], None] | None = None,
                 counters: Counter[str] | None = None, schema: Any = None,
                 raw_partitions: Mapping[str, int] | None = None) -> None:
        """``raw_partitions`` (raw topic -> partition count) names the sources every
        co-partition depends on when the input is re-keyed (``repartition = "always"``)."""
        self.config = config
        self.rules = join_rules(config)
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.storage = Storage(config.output.path)
        topics = config.topics
        # PII is redacted by the decoders, before anything else sees a record
        self.pii = config.pii.policy()
        self.decoders: dict[str, Any]
        self.repartitioned = config.ingest.repartition == "always"
        self.raw_sources = [(topic, p) for topic, count in sorted((raw_partitions or {}).items())
                            for p in range(count)]
        if self.repartitioned:
            # the ingest stage already decoded and re-keyed: read canonical records
            self.topics = (topics.rekeyed_predictions, topics.rekeyed_outcomes)
            self.decoders = {
                topics.rekeyed_predictions: CanonicalDecoder("prediction", self.counters),
                topics.rekeyed_outcomes: CanonicalDecoder("outcome", self.counters),
            }
        else:
            self.topics = (topics.predictions, topics.outcomes)
            self.decoders = {
                topics.predictions: Decoder("prediction", config.fields,
                                            config.ingest.prediction_format, self.counters,
                                            schema=schema, pii=self.pii,
                                            max_future_s=config.ingest.max_future_s or None,
                                            min_time=config.ingest.min_epoch()),
                topics.outcomes: Decoder("outcome", config.fields,
                                         config.ingest.outcome_format, self.counters,
                                         pii=self.pii,
                                         max_future_s=config.ingest.max_future_s or None,
                                         min_time=config.ingest.min_epoch()),
            }
        self.checkpoints = CheckpointStore(self.storage, f"{self.topics[0]}+{self.topics[1]}")
        out = config.output
        self.encoder = ShardEncoder(self.rules.labels, out.compression,
                                    Rotation(out.max_rows, int(out.max_bytes), out.max_span_s))
        self.drift = drift
        self.on_rows = on_rows
        self.partitions: dict[int, _Partition] = {}
        self._stop = False
        self._last_commit = time.monotonic()
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self.dead_letters: DeadLetterSink | None = None
        # seconds from a row's window closing (its emission) to its shard being durable
        self.latencies: deque[float] = deque(maxlen=100_000)
        self.first_input_at: float | None = None  # monotonic, for throughput figures
        self.last_input_at: float | None = None
        self.last_poll_at: float | None = None
        self._progress: InputProgress | None = None
        self._dead_letter_logs: Counter[str] = Counter()
        self._audit_warned = 0

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Ask the loop to finish: it stops polling, commits and returns."""
        self._stop = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    @property
    def stopped(self) -> bool:
        return self._stop

    def run(self, until_idle: float | None = None, drain: bool = False,
            upstream: Upstream | None = None) -> Counter[str]:
        """Consume until ``stop()``, or until an ``until_idle`` run is finished (see
        ``labeler.runtime.progress``: no input for that long, ``upstream`` done, every
        input confirmed caught up). With ``drain`` every pending window is closed
        before the final commit. Returns the counters; raises ``IncompleteRun`` when a
        bounded run cannot finish, and re-raises the failure of ``upstream``.
        """
        kafka = self.config.kafka
        options = kafka.client_options()
        self._producer = new_producer(options, linger_ms=20, acks="all")
        self.dead_letters = DeadLetterSink(self._producer, self.config.topics.dead_letter,
                                           self.counters)
        if self.drift is not None:
            self.drift.attach(self._producer)
        consumer_options: dict[str, Any] = {
            "group_id": kafka.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": kafka.auto_offset_reset,
            "partition_assignment_strategy": (RangePartitionAssignor,),
            "session_timeout_ms": kafka.session_timeout_ms,
            "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
            "max_poll_interval_ms": kafka.max_poll_interval_ms,
            "max_poll_records": kafka.max_poll_records,
            "fetch_max_bytes": 64 * 1024 * 1024,
            "max_partition_fetch_bytes": 8 * 1024 * 1024,
        }
        if kafka.group_instance_id:
            consumer_options["group_instance_id"] = kafka.group_instance_id
        self._consumer_options = {**options, **consumer_options}
        self._consumer = self._subscribed_consumer()
        self._progress = progress = InputProgress(self._consumer, self.topics,
                                                  self.rules.idle_after, self._position)
        membership = MembershipWatch(kafka.session_timeout_ms / 1000)
        log("worker.started", topics=list(self.topics), group=kafka.group_id,
            output=self.storage.uri)
        status_every = self.config.logging.status_interval_s
        flush_every = self.config.output.flush_interval_s
        last_status = last_schema_check = started = time.monotonic()
        upstream_done = upstream.done if upstream is not None else None
        try:
            while not self._stop:
                batch = self._consumer.poll(timeout_ms=200)
                mono = self.last_poll_at = time.monotonic()
                if batch:
                    if self.first_input_at is None:
                        self.first_input_at = mono
                    self._process(batch, mono)
                    self.last_input_at = time.monotonic()
                stuck = membership.stuck(self._consumer, mono)
                if stuck is not None:
                    self._rejoin(stuck)
                if upstream is not None and upstream.failure() is not None:
                    raise upstream.failure()  # type: ignore[misc]
                progress.broker.probe({tp: self._position(tp)
                                       for tp in self._consumer.assignment()}, mono)
                if not self.repartitioned:
                    progress.confirm_idle({i: p.join for i, p in self.partitions.items()}, mono)
                self._advance()
                if mono - self._last_commit >= flush_every or self._full():
                    self.commit()
                if mono - last_status >= status_every:
                    self.log_status(mono - started)
                    last_status = mono
                if self.drift is not None and mono - last_schema_check >= 1.0:
                    self.drift.check_schema(self.counters)
                    last_schema_check = mono
                if until_idle is not None and progress.finished(until_idle, mono, upstream_done):
                    log("worker.idle", seconds=round(mono - progress.last_input, 1))
                    break
            if drain:
                for part in self.partitions.values():
                    rows = part.join.drain()
                    self._emit(part, rows)
            if self.drift is not None:
                self.drift.check_schema(self.counters)
                self.drift.flush()
            self.commit()
            self.log_status(time.monotonic() - started)
        finally:
            for part in self.partitions.values():
                part.join.pending.close()  # the spill files are scratch space
            self._consumer.close(autocommit=False)
            self._producer.close(timeout=10)
            if self.drift is not None:
                self.drift.close()
        return self.counters

    # -- the hot path ------------------------------------------------------------------

    def _subscribed_consumer(self) -> KafkaConsumer:
        consumer = new_consumer(self._consumer_options)
        consumer.subscribe(list(self.topics), listener=_Rebalance(self))
        return consumer

    def _rejoin(self, state: str) -> None:
        """Leave the group for good and join again with a new consumer (see
        ``ingest.kafka.progress.MembershipWatch``). The partitions held may be
        another member's by now, so their state is dropped unwritten, as on a
        loss; the next assignment restores them from their checkpoints."""
        self.counters["group_rejoins"] += 1
        log("group.stuck", logging.WARNING, state=state, partitions=sorted(self.partitions),
            action="closing the consumer and joining again")
        self.lose(set(self.partitions))
        old = self._consumer
        try:
            if old is not None:
                old.close(autocommit=False)
        except Exception as exc:  # noqa: BLE001 - a stuck client may fail to close cleanly
            log("group.close_failed", logging.WARNING, error=str(exc))
        self._consumer = self._subscribed_consumer()
        if self._progress is not None:
            self._progress.rebind(self._consumer)

    def _process(self, batch: dict[TopicPartition, list[Any]], now: float) -> None:
        progress = self._progress
        for tp, messages in batch.items():
            part = self.partitions.get(tp.partition)
            if part is None:
                continue  # revoked during this poll: the next owner reads it again
            if self.repartitioned:
                self._take_internal(part, tp, messages)
            else:
                self._take_raw(part, tp, messages)
            part.offsets[tp.topic] = messages[-1].offset + 1
            part.dirty = True
            if progress is not None:
                progress.delivered(tp, now)
        self.counters["messages"] += sum(len(m) for m in batch.values())

    def _take_internal(self, part: _Partition, tp: TopicPartition, messages: list[Any]) -> None:
        """Records of the ingest stage: canonical records, late outcomes, source marks."""
        decode = self.decoders[tp.topic].decode
        join, drift = part.join, self.drift
        for message in messages:
            decoded = decode(message.value)
            if type(decoded) is DeadLetter:
                self._dead_letter(decoded, SourceRef(tp.topic, tp.partition, message.offset),
                                  message.key)
                continue
            for record in decoded:
                kind = type(record)
                if kind is Prediction:
                    join.add_prediction(record)
                    if drift is not None:
                        drift.observe_prediction(
                            record, SourceRef(tp.topic, tp.partition, message.offset))
                elif kind is Outcome:
                    join.add_outcome(record)
                elif kind is LateOutcome:
                    join.add_outcome(record.outcome, late=True)
                else:
                    join.watermark.update((record.topic, record.partition), record.mark,
                                          record.idle)

    def _take_raw(self, part: _Partition, tp: TopicPartition, messages: list[Any]) -> None:
        """Raw messages (``repartition = "never"``): decode, judge lateness, join."""
        decode = self.decoders[tp.topic].decode
        inputs, drift = part.inputs, self.drift
        if inputs is None:
            inputs = part.inputs = DirectInputs(part.join, *self._sources(part.index))
        is_prediction = tp.topic == self.topics[0]
        for message in messages:
            record = decode(message.value)
            if type(record) is DeadLetter:
                self._dead_letter(record, SourceRef(tp.topic, tp.partition, message.offset),
                                  message.key)
            elif not is_prediction:
                inputs.outcome(record)
            elif not inputs.prediction(record):
                self._late_prediction(record, inputs.prediction_mark, tp, message)
            elif drift is not None:
                drift.observe_prediction(record,
                                         SourceRef(tp.topic, tp.partition, message.offset))

    def _late_prediction(self, prediction: Prediction, mark: float, tp: TopicPartition,
                         message: Any) -> None:
        t = prediction.event_time
        self._dead_letter(DeadLetter(
            "late_prediction",
            f"event time {t:.3f} is {mark - t:.1f} s behind its partition's frontier "
            f"{mark:.3f}, more than join.allowed_lateness_s = {self.rules.lateness:g}",
            message.value or b""), SourceRef(tp.topic, tp.partition, message.offset), message.key)

    def _position(self, tp: TopicPartition) -> int:
        """The next offset this worker reads of ``tp`` (asks the consumer if unknown)."""
        part = self.partitions.get(tp.partition)
        known = part.offsets.get(tp.topic) if part is not None else None
        if known is not None:
            return known
        if self._consumer is None:
            raise RuntimeError("no consumer: _position() is called inside run()")
        return self._consumer.position(tp, timeout_ms=5000)

    def _dead_letter(self, letter: DeadLetter, source: SourceRef, key: bytes | None) -> None:
        letter = replace(letter, source=source)
        if self.pii is not None:  # the decoders' letters already are; internal topics' are not
            letter = self.pii.redact_dead_letter(letter)
        if self.dead_letters is not None:
            self.dead_letters.send(letter, key)
        # a flood of bad input must not become a flood of log lines: the first
        # DEAD_LETTER_LOGS of each reason per status interval are logged, the rest counted
        self._dead_letter_logs[letter.reason] += 1
        if self._dead_letter_logs[letter.reason] <= DEAD_LETTER_LOGS:
            log("dead_letter", logging.WARNING, reason=letter.reason, detail=letter.detail,
                source=str(source))

    def _advance(self) -> None:
        for part in self.partitions.values():
            rows = part.join.advance()
            if rows:
                self._emit(part, rows)

    def _emit(self, part: _Partition, rows: list[LabeledExample]) -> None:
        part.rows.extend(rows)
        part.emitted_at.append((time.time(), len(rows)))
        part.dirty = True
        if self.drift is not None:
            topic = self.topics[0]
            where = SourceRef(topic, part.index, part.offsets.get(topic, 0) - 1)
            for row in rows:
                self.drift.observe_labeled(row, where)
        if self.on_rows is not None:
            self.on_rows(rows)

    def _full(self) -> bool:
        limit = self.config.output.max_rows
        return any(len(p.rows) >= limit for p in self.partitions.values())

    # -- commit ------------------------------------------------------------------------

    def commit(self, indexes: list[int] | None = None, to_kafka: bool = True) -> None:
        """Checkpoint the given partitions (default: all dirty ones), then commit offsets.

        ``to_kafka=False`` inside rebalance callbacks: they run on the consumer's
        IO loop, where a blocking commit is not allowed; Kafka's offsets are
        advisory (the checkpoint is the truth), so skipping them loses nothing.
        """
        chosen = [self.partitions[i] for i in (indexes or list(self.partitions))]
        kafka_offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        flushed = False

        def flush_producer() -> None:
            nonlocal flushed
            if not flushed and self.dead_letters is not None:
                self.dead_letters.flush(timeout=60)  # raises DeliveryFailed: no commit then
                flushed = True

        for part in chosen:
            if not part.dirty and not part.join.log:
                continue
            epoch = part.epoch + 1
            name = shard_name(self.checkpoints.stream, part.index, part.first_offset, epoch)
            files = self.encoder.encode(part.rows, name)
            if self.encoder.types.lost:
                self.counters.update(self.encoder.types.lost)
                self.encoder.types.lost.clear()
            late = part.join.late_outcomes
            if late:
                files.append(encode_corrections(late, name, self.config.output.compression))
            join = part.join
            snapshot = join.snapshot()
            if self.drift is not None:  # the monitors resume where this checkpoint stands
                snapshot["drift"] = self.drift.state(part.index)
            try:
                checkpoint = self.checkpoints.commit(
                    part.index, epoch, part.offsets, snapshot, files,
                    before=flush_producer, log=join.log, segments=part.segments,
                    keep_from=join.oldest_needed_epoch(), previous_epoch=part.epoch)
            except Fenced as exc:
                self._fenced(part, exc)
                continue
            except PublishError as exc:
                self._committed(part, epoch, files, exc.checkpoint)  # never encode these again
                raise
            self._committed(part, epoch, files, checkpoint)
            for topic, offset in part.offsets.items():
                kafka_offsets[TopicPartition(topic, part.index)] = OffsetAndMetadata(offset, "", -1)
        if kafka_offsets and to_kafka and self._consumer is not None:
            try:
                self._consumer.commit(kafka_offsets)
            except Exception as exc:  # noqa: BLE001 - advisory: the checkpoint is the truth
                log("kafka_commit_failed", logging.WARNING, error=str(exc))
        self._last_commit = time.monotonic()

    def _committed(self, part: _Partition, epoch: int, files: list[ShardFile],
                   checkpoint: Checkpoint) -> None:
        """Account for an epoch whose checkpoint is written, and start the next one."""
        part.segments = checkpoint.segments
        part.join.logged(epoch)
        self.counters["shards_written"] += len(files)
        self.counters["shard_bytes"] += sum(len(f.data) for f in files)
        self.counters["rows_written"] += len(part.rows)
        self.counters["corrections_written"] += len(part.join.late_outcomes)
        durable = time.time()
        for emitted, n in part.emitted_at:
            self.latencies.extend([durable - emitted] * min(n, 1000))
        part.epoch = epoch
        part.rows = []
        part.emitted_at = []
        part.join.late_outcomes = []
        part.dirty = False
        part.first_offset = part.offsets.get(self.topics[0], 0)

    # -- assignment --------------------------------------------------------------------

    def assign(self, indexes: set[int]) -> None:
        """Take partitions over from their checkpoints (runs on the consumer's IO loop:
        ``seek`` only; no blocking consumer call)."""
        if self._consumer is None:
            raise RuntimeError("assign() is called by the consumer, inside run()")
        wall = time.time()
        new = sorted(indexes - set(self.partitions))
        share = int(self.config.state.memory_budget) // max(len(self.partitions) + len(new), 1)
        for index in new:
            checkpoint = self.checkpoints.recover(index)
            if checkpoint is None:
                # No checkpoint: start where Kafka's committed offset (or the reset
                # policy) says; offsets become known with the first message read.
                join = PartitionJoin(self.rules, self.counters, self._pending_store(index, share))
                part = _Partition(index, join, 0, {})
            else:
                join = PartitionJoin.restore(
                    self.rules, checkpoint.state, self.checkpoints.segments(checkpoint),
                    self.counters, self._pending_store(index, share), checkpoint.epoch + 1)
                for topic, offset in checkpoint.offsets.items():
                    self._consumer.seek(TopicPartition(topic, index), offset)
                part = _Partition(index, join, checkpoint.epoch, dict(checkpoint.offsets))
                part.segments = checkpoint.segments
            part.first_offset = part.offsets.get(self.topics[0], 0)
            join.watermark.expect(self._sources(index))
            if self.drift is not None:
                self.drift.restore(index, checkpoint.state.get("drift") if checkpoint else None)
            self.partitions[index] = part
            log("partition.assigned", partition=index, offsets=part.offsets,
                pending=join.pending_count, pending_on_disk=join.pending.on_disk,
                epoch=part.epoch, restore_s=round(time.time() - wall, 3))
        if self._progress is not None:
            self._progress.assigned(new, time.monotonic())
        self._share_memory()

    def _sources(self, index: int) -> list[tuple[str, int]]:
        """The partitions whose event time co-partition ``index`` must hear from: every
        raw partition when the input is re-keyed, else its own two inputs."""
        if self.repartitioned:
            return list(self.raw_sources)
        return [(topic, index) for topic in self.topics]

    def _removed(self, indexes: list[int]) -> None:
        if self.drift is not None:
            for index in indexes:
                self.drift.release(index)
        if self._progress is not None:
            self._progress.removed(indexes, bool(self.partitions), time.monotonic())
        self._share_memory()

    def _pending_store(self, index: int, share: int) -> PendingStore:
        return PendingStore(share, self.config.state.spill_dir or None,
                            name=f"{stream_tag(self.checkpoints.stream)}-p{index:04d}")

    def _share_memory(self) -> None:
        """Split ``state.memory_budget`` evenly between the partitions held now."""
        share = int(self.config.state.memory_budget) // max(len(self.partitions), 1)
        for part in self.partitions.values():
            part.join.pending.memory_budget = share

    def revoke(self, indexes: set[int]) -> None:
        mine = sorted(indexes & set(self.partitions))
        if mine:
            self.commit(mine, to_kafka=False)
        for index in mine:
            self.partitions.pop(index).join.pending.close()
            log("partition.revoked", partition=index)
        self._removed(mine)

    def _fenced(self, part: _Partition, reason: Fenced) -> None:
        """Another worker took ``part`` over while this one was cut off from the group:
        drop it unwritten (its records are skipped until the group reassigns it)."""
        self.partitions.pop(part.index, None)
        part.join.pending.close()
        self.counters["partitions_fenced"] += 1
        # not paused: kafka-python 3.0.12 never hands back records parked by a pause
        # (fetcher.py: the resume check on _next_partition_records). Its records are
        # skipped while it is not ours; a reassignment seeks to its checkpoint.
        log("partition.fenced", logging.WARNING, partition=part.index, reason=str(reason))
        self._removed([part.index])

    def lose(self, indexes: set[int]) -> None:
        """Partitions taken away after this member was evicted: another member may
        own them already, so their state is dropped without a checkpoint."""
        lost = sorted(indexes & set(self.partitions))
        for index in lost:
            self.partitions.pop(index).join.pending.close()
            log("partition.lost", logging.WARNING, partition=index)
        self._removed(lost)

    # -- status ------------------------------------------------------------------------

    def status(self) -> WorkerStatus:
        """A plain snapshot of the worker's state, for logs, metrics and health checks."""
        wall = time.time()
        return WorkerStatus(
            counters=dict(self.counters),
            partitions={
                p.index: PartitionStatus(
                    pending=p.join.pending_count,
                    early_buffered=sum(len(v) for v in p.join.early.values()),
                    watermark=p.join.watermark.last_value,
                    watermark_lag_s=wall - p.join.watermark.last_value,
                    offsets=dict(p.offsets),
                    epoch=p.epoch,
                    pending_on_disk=p.join.pending.on_disk,
                )
                for p in list(self.partitions.values())
            },
            last_input_at=self.last_input_at,
            running=self._consumer is not None and not self._stop,
            last_poll_at=self.last_poll_at,
        )

    def log_status(self, elapsed: float) -> None:
        suppressed = sum(max(0, v - DEAD_LETTER_LOGS) for v in self._dead_letter_logs.values())
        broker = self._progress.broker if self._progress is not None else None
        log("status", **status_line(self.status(), self.counters, elapsed),
            dead_letter_logs_suppressed=suppressed,
            lag=broker.last_lag if broker is not None else None,
            broker_reachable=broker.reachable if broker is not None else None)
        self._dead_letter_logs.clear()
        early = self.counters["outcomes_after_close"] + self.counters["predictions_after_close"]
        if early > self._audit_warned:
            log("watermark.moved_early", logging.WARNING,
                outcomes_after_close=self.counters["outcomes_after_close"],
                predictions_after_close=self.counters["predictions_after_close"],
                hint="on-time records found their window closed: idleness moved the "
                     "watermark (join.idle_after_s) while their source was still sending")
            self._audit_warned = early


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.worker.revoke({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker.assign({tp.partition for tp in assigned})

    def on_partitions_lost(self, lost: Any) -> None:
        self.worker.lose({tp.partition for tp in lost})
