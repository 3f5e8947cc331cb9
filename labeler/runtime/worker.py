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
``labeler.runtime.progress``; the hot path that feeds the joins in
``labeler.runtime.intake``; partitions coming and going in
``labeler.runtime.assignment``.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.structs import OffsetAndMetadata

from ingest.kafka.clients import COORDINATOR_TIMEOUT_MS, new_consumer, new_producer
from ingest.kafka.dead_letters import DELIVERY_TIMEOUT_MS, CommitGate, DeadLetterSink
from ingest.kafka.progress import MembershipWatch
from ingest.records import SourceRef
from ingest.wire.batch import BatchDecoder
from ingest.wire.codec import CanonicalDecoder
from ingest.wire.decode import Decoder
from labeler.config import Config
from labeler.errors import LabelerError
from labeler.join.records import LabeledExample
from labeler.join.rules import join_rules
from labeler.logs import log
from labeler.output.checkpoint import (
    Checkpoint,
    CheckpointStore,
    Fenced,
    PublishError,
    shard_name,
)
from labeler.output.dataset_schema import SchemaStore
from labeler.output.shards import (
    PARTITIONINGS,
    Rotation,
    ShardEncoder,
    ShardFile,
    encode_corrections,
)
from labeler.output.storage import Storage
from labeler.runtime import collector
from labeler.runtime.assignment import Assignment, Rebalance, Restoring
from labeler.runtime.intake import DEAD_LETTER_LOGS, Intake
from labeler.runtime.partitions import DriftObserver, OwnedPartition, Upstream
from labeler.runtime.progress import InputProgress
from labeler.runtime.status import PartitionStatus, WorkerStatus, status_line

STATUS_EVERY_S = 0.5  # how often the loop publishes the snapshot the HTTP side reads
# while commits wait for the broker, a partition may hold this many times
# output.max_rows before the worker stops rather than grow without bound
HELD_ROWS_FACTOR = 2


class CommitsStalled(LabelerError):
    """Commits waited for the broker while input kept coming, past the rows allowed."""


class Worker(Intake, Assignment):
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
                                    Rotation(out.max_rows, int(out.max_bytes), out.max_span_s),
                                    SchemaStore(self.storage, PARTITIONINGS[out.partition_by],
                                                out.widen_to_string))
        self.drift = drift
        self.on_rows = on_rows
        self.partitions: dict[int, OwnedPartition] = {}
        self.restoring: dict[int, Restoring] = {}  # assigned, restored from the poll loop
        self.suspended: set[int] = set()  # revoked by a rebalance still in progress
        self._stop = False
        self._last_commit = time.monotonic()
        self._gate = CommitGate(self.counters, "commits_deferred", "commit.deferred")
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
        self.columnar = True  # False: raw input a row at a time (the reference path)
        self._batch_decoders: dict[str, BatchDecoder] = {}
        self._audit_warned = 0
        self._published: WorkerStatus | None = None
        self._published_at = -math.inf

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
        collector.tune()  # once per process: see labeler.runtime.collector
        kafka = self.config.kafka
        options = kafka.client_options()
        self._producer = new_producer(options, linger_ms=20, acks="all",
                                      delivery_timeout_ms=DELIVERY_TIMEOUT_MS)
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
                    self._process(batch, mono, flush_every)
                    self.last_input_at = time.monotonic()
                # after the batch: what it holds of a partition restored now was read
                # before the restore's seek, and was skipped
                self.restore_step()
                stuck = membership.stuck(self._consumer, mono, progress.broker.reachable)
                if stuck is not None:
                    self._rejoin(stuck)
                if upstream is not None and upstream.failure() is not None:
                    raise upstream.failure()  # type: ignore[misc]
                progress.broker.probe(self._positions, mono)
                if not self.repartitioned:
                    progress.confirm_idle({i: p.join for i, p in self.partitions.items()}, mono)
                self._advance()
                # a full partition forces a commit, unless commits wait for the broker
                if mono - self._last_commit >= flush_every or (self._full()
                                                               and not self._gate.deferring):
                    self.commit()
                self.check_held()
                if mono - last_status >= status_every:
                    self.log_status(mono - started)
                    last_status = mono
                self.publish_status(mono)
                if self.drift is not None and mono - last_schema_check >= 1.0:
                    self.drift.check_schema(self.counters)
                    last_schema_check = mono
                if (until_idle is not None and not self.restoring
                        and progress.finished(until_idle, mono, upstream_done)):
                    log("worker.idle", seconds=round(mono - progress.last_input, 1))
                    break
            if drain:
                for part in self.partitions.values():
                    rows = part.join.drain()
                    self._emit(part, rows)
            if self.drift is not None:
                self.drift.check_schema(self.counters)
                self.drift.flush()
            self.commit(final=True)
            self.log_status(time.monotonic() - started)
            self._published = self.snapshot()  # the final state, for whoever asks after
        finally:
            for part in self.partitions.values():
                part.join.close()  # the spill files are scratch space
            for entry in self.restoring.values():
                for store in (entry.store, entry.closed):
                    if store is not None:
                        store.close()
            self._consumer.close(autocommit=False, timeout_ms=COORDINATOR_TIMEOUT_MS)
            self._producer.close(timeout=10)
            if self.drift is not None:
                self.drift.close()
        return self.counters

    # -- the hot path ------------------------------------------------------------------

    def _subscribed_consumer(self) -> KafkaConsumer:
        consumer = new_consumer(self._consumer_options)
        consumer.subscribe(list(self.topics), listener=Rebalance(self))
        return consumer

    def _rejoin(self, state: str) -> None:
        """Leave the group for good and join again with a new consumer (see
        ``ingest.kafka.progress.MembershipWatch``). The partitions held may be
        another member's by now, so their state is dropped unwritten, as on a
        loss; the next assignment restores them from their checkpoints."""
        self.counters["group_rejoins"] += 1
        self._gate.deferring = False  # what waited is dropped with the partitions
        log("group.stuck", logging.WARNING, state=state, partitions=sorted(self.partitions),
            restoring=sorted(self.restoring),
            action="closing the consumer and joining again")
        self.lose(set(self.partitions) | set(self.restoring))
        old = self._consumer
        try:
            if old is not None:
                old.close(autocommit=False, timeout_ms=COORDINATOR_TIMEOUT_MS)
        except Exception as exc:  # noqa: BLE001 - a stuck client may fail to close cleanly
            log("group.close_failed", logging.WARNING, error=str(exc))
        self._consumer = self._subscribed_consumer()
        if self._progress is not None:
            self._progress.rebind(self._consumer)

    def _advance(self) -> None:
        for part in self.partitions.values():
            rows = part.join.advance()
            if rows:
                self._emit(part, rows)

    def _emit(self, part: OwnedPartition, rows: list[LabeledExample]) -> None:
        part.rows.extend(rows)
        part.emitted_at.append((time.time(), len(rows)))
        part.dirty = True
        if self.drift is not None:
            topic = self.topics[0]
            where = SourceRef(topic, part.index, part.offsets.get(topic, 0) - 1)
            self.drift.observe_labeled(rows, where)
        if self.on_rows is not None:
            self.on_rows(rows)

    def _full(self) -> bool:
        limit = self.config.output.max_rows
        return any(len(p.rows) >= limit for p in self.partitions.values())

    # -- commit ------------------------------------------------------------------------

    def commit(self, indexes: list[int] | None = None, to_kafka: bool = True,
               final: bool = False) -> None:
        """Checkpoint the given partitions (default: all dirty ones), then commit offsets.

        ``to_kafka=False`` skips the offsets: Kafka's offsets are advisory (the
        checkpoint is the truth), so skipping them loses nothing.

        A checkpoint is written only once the records the producer sent (dead
        letters, drift events) are acknowledged. While the broker leaves them
        unacknowledged the round is deferred (counted in ``commits_deferred``,
        logged once per outage) and its rows stay in memory for the next; a
        partition holding more than ``HELD_ROWS_FACTOR`` x ``output.max_rows`` rows
        meanwhile stops the worker (``CommitsStalled``), as ``final`` (the commit
        before exiting) does when the broker has not answered in time.
        """
        chosen = [self.partitions[i] for i in (indexes or list(self.partitions))
                  if i not in self.suspended]
        chosen = [p for p in chosen if p.dirty or p.join.log]
        if chosen and self.dead_letters is not None:
            # every produced record the offsets cover (dead letters, drift events) is
            # acknowledged first; while the broker leaves a batch unacknowledged this
            # round waits (a drift event that fails is logged by its sink)
            if not self._gate.open(self.dead_letters.producer, final,
                                   rows_held=sum(len(p.rows) for p in chosen)):
                self._last_commit = time.monotonic()
                self.check_held()
                return
            self.dead_letters.delivery.check("dead letters")  # a lost one: no commit
        kafka_offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for part in chosen:
            epoch = part.epoch + 1
            name = shard_name(self.checkpoints.stream, part.index, part.first_offset, epoch,
                              self.checkpoints.owner)
            files = self.encoder.encode(part.rows, name)
            if self.encoder.types.lost:
                self.counters.update(self.encoder.types.lost)
                self.encoder.types.lost.clear()
            late = part.join.late_outcomes
            if late:
                files.append(encode_corrections(late, name, self.config.output.compression))
            join = part.join
            if join.compact_due():
                join.compact()
            snapshot = join.snapshot()
            if self.drift is not None:  # the monitors resume where this checkpoint stands
                snapshot["drift"] = self.drift.state(part.index)
            try:
                checkpoint = self.checkpoints.commit(
                    part.index, epoch, part.offsets, snapshot, files,
                    log=join.log, segments=part.segments,
                    keep_from=join.oldest_needed_epoch())
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
                self._consumer.commit(kafka_offsets, timeout_ms=COORDINATOR_TIMEOUT_MS)
            except Exception as exc:  # noqa: BLE001 - advisory: the checkpoint is the truth
                log("kafka_commit_failed", logging.WARNING, error=str(exc))
        self._last_commit = time.monotonic()
        self._share_memory()  # the closed ids' share changes as they grow

    def check_held(self) -> None:
        """While commits wait for the broker: ``CommitsStalled`` once a partition holds
        more than ``HELD_ROWS_FACTOR`` x ``output.max_rows`` rows (checked every turn
        of the loop, so input that keeps coming cannot pile up between two rounds)."""
        if not self._gate.deferring:
            return
        limit = HELD_ROWS_FACTOR * self.config.output.max_rows
        held = max((len(p.rows) for p in self.partitions.values()), default=0)
        if held > limit:
            raise CommitsStalled(
                f"the broker has not acknowledged the producer's records while {held} rows "
                f"of one partition waited to be committed (more than {HELD_ROWS_FACTOR} x "
                "output.max_rows); stopping, a restart resumes from the last checkpoint")

    def _committed(self, part: OwnedPartition, epoch: int, files: list[ShardFile],
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

    # -- status ------------------------------------------------------------------------

    def status(self) -> WorkerStatus:
        """The worker's state for metrics and health checks; safe from any thread.

        The HTTP threads never walk the worker's live structures (they change on
        the loop thread while being read): the loop publishes an immutable
        snapshot at most every ``STATUS_EVERY_S`` and this returns the last one.
        """
        published = self._published
        return published if published is not None else self.snapshot()

    def publish_status(self, now: float) -> None:
        """Publish a fresh snapshot for ``status()`` (loop thread only)."""
        if now - self._published_at >= STATUS_EVERY_S:
            self._published = self.snapshot()
            self._published_at = now

    def snapshot(self) -> WorkerStatus:
        """A plain snapshot of the worker's state (loop thread only)."""
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
            restoring=tuple(sorted(self.restoring)),
        )

    def log_status(self, elapsed: float) -> None:
        suppressed = sum(max(0, v - DEAD_LETTER_LOGS) for v in self._dead_letter_logs.values())
        broker = self._progress.broker if self._progress is not None else None
        log("status", **status_line(self.snapshot(), self.counters, elapsed),
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
