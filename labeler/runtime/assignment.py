"""Partitions coming and going: take-over from the checkpoint, revoke, loss, fencing.

The rebalance callbacks run on the consumer's thread inside ``poll()``: they
only seek and do in-memory bookkeeping, plus the commit of a revoked
partition. Runs on the worker thread (a part of ``Worker``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from labeler.config import Config
from labeler.join.partition import PartitionJoin
from labeler.join.pending import PendingStore
from labeler.join.rules import JoinRules
from labeler.logs import log
from labeler.output.checkpoint import CheckpointStore, Fenced, stream_tag
from labeler.runtime.partitions import DriftObserver, OwnedPartition
from labeler.runtime.progress import InputProgress


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
    commit: Callable[..., None]  # the Worker's

    def assign(self, indexes: set[int]) -> None:
        """Take partitions over from their checkpoints (runs on the consumer's IO loop:
        ``seek`` only; no blocking consumer call)."""
        if self._consumer is None:
            raise RuntimeError("assign() is called by the consumer, inside run()")
        wall = time.time()
        new = sorted(indexes - set(self.partitions))
        share = int(self.config.state.memory_budget) // max(len(self.partitions) + len(new), 1)
        for index in new:
            checkpoint = self.checkpoints.recover(index)  # claims epoch checkpoint.epoch
            if checkpoint.fresh:
                # No checkpoint: start where Kafka's committed offset (or the reset
                # policy) says; offsets become known with the first message read.
                join = PartitionJoin(self.rules, self.counters, self._pending_store(index, share),
                                     checkpoint.epoch + 1)
                part = OwnedPartition(index, join, checkpoint.epoch, {})
            else:
                join = PartitionJoin.restore(
                    self.rules, checkpoint.state, self.checkpoints.segments(checkpoint),
                    self.counters, self._pending_store(index, share), checkpoint.epoch + 1)
                for topic, offset in checkpoint.offsets.items():
                    self._consumer.seek(TopicPartition(topic, index), offset)
                part = OwnedPartition(index, join, checkpoint.epoch, dict(checkpoint.offsets))
                part.segments = checkpoint.segments
            part.first_offset = part.offsets.get(self.topics[0], 0)
            join.watermark.expect(self._sources(index))
            if self.drift is not None:
                self.drift.restore(index, checkpoint.state.get("drift"))
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
            part = self.partitions.pop(index, None)  # None: fenced by that commit
            if part is not None:
                part.join.pending.close()
                log("partition.revoked", partition=index)
        self._removed(mine)

    def _fenced(self, part: OwnedPartition, reason: Fenced) -> None:
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


class Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: Assignment) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.worker.revoke({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker.assign({tp.partition for tp in assigned})

    def on_partitions_lost(self, lost: Any) -> None:
        self.worker.lose({tp.partition for tp in lost})
