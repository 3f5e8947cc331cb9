"""Partitions coming and going: take-over from the checkpoint, revoke, loss, fencing.

kafka-python runs the rebalance callbacks on its event loop, the one that
also sends the heartbeats: a callback that takes longer than the session
timeout gets the member evicted (and a restore of a large state would then
start over at every rejoin). So the callbacks only do bookkeeping:

* **assigned**: a new partition is queued as ``Restoring``. The poll loop
  restores it from its checkpoint a slice at a time (``restore_step``, at most
  ``RESTORE_SLICE_S`` per loop turn), polling in between, so heartbeats and
  ``max_poll_interval_ms`` are kept whatever the state's size. Records the
  consumer returns for it meanwhile are skipped; once restored, the consumer
  seeks to the checkpoint's offsets (or, without a checkpoint, to the first
  record skipped), so nothing is lost. (It is not paused: kafka-python 3.0.12
  never hands back the records a pause parks.)
* **revoked**: the partition is *suspended*, nothing written. The eager
  protocol revokes everything at each rebalance and mostly assigns the same
  partitions back: those resume where they were, without a restore. A
  suspended partition that is not assigned back is dropped from the loop
  after the rebalance, unwritten: its new owner replays its input from the
  last checkpoint, so no row is lost or written twice (at most
  ``output.flush_interval_s`` of work is done again).
* **lost** (evicted): dropped unwritten, as it may be another member's by now.

Runs on the worker thread (a part of ``Worker``).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from labeler.config import Config
from labeler.join.closed import ClosedIds
from labeler.join.partition import PartitionJoin
from labeler.join.pending import PendingStore
from labeler.join.rules import JoinRules
from labeler.logs import log
from labeler.output.checkpoint import CheckpointStore, Fenced, stream_tag
from labeler.runtime.partitions import DriftObserver, OwnedPartition
from labeler.runtime.progress import InputProgress

RESTORE_SLICE_S = 0.25  # restore work per loop turn, between two polls
RESTORE_CHUNK = 2048  # state changes replayed between two looks at the clock
RESTORE_LOG_EVERY_S = 5.0


class Restoring:
    """A partition assigned to this worker and not restored yet."""

    __slots__ = ("index", "since", "skipped_from", "task", "store", "closed", "replayed",
                 "logged_at")

    def __init__(self, index: int, since: float) -> None:
        self.index = index
        self.since = since  # monotonic
        self.skipped_from: dict[str, int] = {}  # topic -> first offset skipped meanwhile
        self.task: Iterator[OwnedPartition | None] | None = None
        self.store: PendingStore | None = None
        self.closed: ClosedIds | None = None
        self.replayed = 0  # state changes applied so far
        self.logged_at = since

    def skipped(self, topic: str, offset: int) -> None:
        self.skipped_from.setdefault(topic, offset)


class Assignment:
    """The worker's partition lifecycle (see the module docstring)."""

    config: Config
    rules: JoinRules
    counters: Counter[str]
    topics: tuple[str, str]
    repartitioned: bool
    raw_sources: list[tuple[str, int]]
    partitions: dict[int, OwnedPartition]
    checkpoints: CheckpointStore
    drift: DriftObserver | None
    _consumer: KafkaConsumer | None
    _progress: InputProgress | None

    restoring: dict[int, Restoring]
    suspended: set[int]

    def assign(self, indexes: set[int]) -> None:
        """The rebalance gave this worker ``indexes`` (callback: bookkeeping only).
        Suspended partitions given back resume; new ones are queued for a restore;
        suspended ones not given back are dropped."""
        now = time.monotonic()
        for index in sorted(self.suspended - indexes):
            self._drop(index, "partition.revoked")
        resumed = sorted(self.suspended & indexes)
        self.suspended = set()
        if self._consumer is not None:
            # a resumed partition goes on exactly where its join stands, never at Kafka's
            # (advisory, older) committed offsets: kafka-python 3.0.12 keeps the position
            # of a partition assigned again (``assign_from_subscribed``); this says so
            # rather than relying on it
            for index in resumed:
                for topic, offset in self.partitions[index].offsets.items():
                    self._consumer.seek(TopicPartition(topic, index), offset)
        new = sorted(indexes - set(self.partitions) - set(self.restoring))
        for index in new:
            self.restoring[index] = Restoring(index, now)
        if resumed:
            log("partition.resumed", partitions=resumed)
        if self._progress is not None:
            self._progress.joined = True
            self._progress.joined_at = now
            self._progress.assigned(new, now)

    def restore_step(self, budget_s: float = RESTORE_SLICE_S) -> None:
        """Restore queued partitions for about ``budget_s`` (loop thread)."""
        if not self.restoring:
            return
        deadline = time.monotonic() + budget_s
        for entry in list(self.restoring.values()):
            if entry.task is None:
                entry.task = self._restore(entry)
            while time.monotonic() < deadline:
                part = next(entry.task)
                if part is not None:
                    del self.restoring[entry.index]
                    self.partitions[part.index] = part
                    self._share_memory()
                    break
            else:
                now = time.monotonic()
                if now - entry.logged_at >= RESTORE_LOG_EVERY_S:
                    entry.logged_at = now
                    log("partition.restoring", partition=entry.index, changes=entry.replayed,
                        elapsed_s=round(now - entry.since, 1))
                return

    def _restore(self, entry: Restoring) -> Iterator[OwnedPartition | None]:
        """Rebuild one partition from its checkpoint, yielding ``None`` between slices
        and the ``OwnedPartition`` at the end."""
        if self._consumer is None:
            raise RuntimeError("restores run inside run(), with the consumer")
        index = entry.index
        share = int(self.config.state.memory_budget) // max(
            len(self.partitions) + len(self.restoring), 1)
        store = entry.store = self._pending_store(index, share)
        closed = entry.closed = ClosedIds(share, self.config.state.spill_dir or None,
                                          name=f"{stream_tag(self.checkpoints.stream)}"
                                               f"-p{index:04d}-closed")
        checkpoint = self.checkpoints.recover(index)  # claims epoch checkpoint.epoch
        yield None
        if checkpoint.fresh:
            # No checkpoint: start where Kafka's committed offset (or the reset
            # policy) says; offsets become known with the first message read.
            join = PartitionJoin(self.rules, self.counters, store, checkpoint.epoch + 1, closed)
            part = OwnedPartition(index, join, checkpoint.epoch, {})
            seek = entry.skipped_from
        else:
            join = PartitionJoin.from_snapshot(self.rules, checkpoint.state, self.counters,
                                               store, checkpoint.epoch + 1, closed)
            for epoch, changes in self.checkpoints.segments(checkpoint):
                while True:
                    applied = join.replay(epoch, itertools.islice(changes, RESTORE_CHUNK))
                    entry.replayed += applied
                    if applied < RESTORE_CHUNK:
                        break
                    yield None
            join.restored(checkpoint.state)
            part = OwnedPartition(index, join, checkpoint.epoch, dict(checkpoint.offsets))
            part.segments = checkpoint.segments
            # a topic the checkpoint has no offset for yet resumes at its first skipped record
            seek = {**entry.skipped_from, **checkpoint.offsets}
        for topic, offset in seek.items():
            self._consumer.seek(TopicPartition(topic, index), offset)
        part.offsets.update(seek)
        part.first_offset = part.offsets.get(self.topics[0], 0)
        join.watermark.expect(self._sources(index))
        if self.drift is not None:
            self.drift.restore(index, checkpoint.state.get("drift"))
        entry.store = entry.closed = None
        log("partition.assigned", partition=index, offsets=part.offsets,
            pending=join.pending_count, pending_on_disk=join.pending.on_disk,
            epoch=part.epoch, changes_replayed=entry.replayed,
            restore_s=round(time.monotonic() - entry.since, 3))
        yield part

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
        """Split ``state.memory_budget`` evenly between the partitions held now; within a
        partition's share, the closed ids take what they hold (about 16 bytes each, see
        ``labeler.join.closed``) and the pending predictions the rest (at least half)."""
        share = int(self.config.state.memory_budget) // max(len(self.partitions), 1)
        for part in self.partitions.values():
            closed = part.join.closed
            closed.memory_budget = share // 2
            part.join.pending.memory_budget = max(share - closed.memory_bytes(), share // 2)

    def revoke(self, indexes: set[int]) -> None:
        """The rebalance takes ``indexes`` back for now (callback: bookkeeping only)."""
        for index in sorted(indexes & set(self.restoring)):
            self._cancel_restore(index)
        self.suspended |= indexes & set(self.partitions)

    def _cancel_restore(self, index: int) -> None:
        entry = self.restoring.pop(index)
        for store in (entry.store, entry.closed):
            if store is not None:
                store.close()
        self._removed([index])

    def _drop(self, index: int, event: str, level: int = logging.INFO) -> None:
        part = self.partitions.pop(index, None)
        if part is None:
            return
        part.join.close()
        log(event, level, partition=index, rows_not_written=len(part.rows))
        self._removed([index])

    def _fenced(self, part: OwnedPartition, reason: Fenced) -> None:
        """Another worker took ``part`` over while this one was cut off from the group:
        drop it unwritten (its records are skipped until the group reassigns it)."""
        self.partitions.pop(part.index, None)
        part.join.close()
        self.counters["partitions_fenced"] += 1
        # not paused: kafka-python 3.0.12 never hands back records parked by a pause
        # (fetcher.py: the resume check on _next_partition_records). Its records are
        # skipped while it is not ours; a reassignment seeks to its checkpoint.
        log("partition.fenced", logging.WARNING, partition=part.index, reason=str(reason))
        self._removed([part.index])

    def lose(self, indexes: set[int]) -> None:
        """Partitions taken away after this member was evicted: another member may
        own them already, so their state is dropped without a checkpoint."""
        for index in sorted(indexes & set(self.restoring)):
            self._cancel_restore(index)
        self.suspended -= indexes
        for index in sorted(indexes & set(self.partitions)):
            self._drop(index, "partition.lost", logging.WARNING)


class Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: Assignment) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.worker.revoke({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker.assign({tp.partition for tp in assigned})

    def on_partitions_lost(self, lost: Any) -> None:
        self.worker.lose({tp.partition for tp in lost})
