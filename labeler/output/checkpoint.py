"""Checkpoints and the commit order: the one place where durability is decided.

Per input partition the labeler keeps, beside the shards, a checkpoint with
the next offsets to read from both topics, the join state, and the shard
files of its epoch. The join state is in two parts: a small snapshot
(watermarks, early outcomes) in the checkpoint itself, and the rest (pending
predictions, ids closed within the dedupe horizon) as **state segments**:
each epoch's log of changes (see ``labeler.join.partition``), one immutable file per
epoch. A checkpoint lists the segments a restore needs: from the oldest
epoch with a prediction still pending, or a close still within the dedupe
horizon, up to its own. So a commit writes what changed, not the whole state
again, and a segment is deleted once nothing in it is needed.

``commit`` runs the steps in this order:

1. **Flush the producer** (dead letters, drift events): the caller's
   ``before`` hook, so every produced record the offsets cover is acked.
2. **Stage** each new shard file under ``_staging/`` (fsynced, invisible to
   readers: pyarrow, pandas, DuckDB and Spark skip ``_``-prefixed paths),
   and write the epoch's state segment (fsynced; unused until listed).
3. **Write the checkpoint** atomically (temp, fsync, rename). This is the
   commit point: offsets, join state and the epoch's shard list change together.
4. **Publish**: rename each staged file to its final name in the dataset,
   then delete the segments the new checkpoint no longer lists.
5. **Commit the offsets to Kafka** (the caller, afterwards). They are advisory:
   for lag monitoring, and for a restart that has no checkpoint.

If publishing fails after step 3, the epoch is committed all the same
(``PublishError``): its rows are never encoded again, and the next
``recover`` publishes the staged files.

**Fencing.** Each worker process writes as its own ``owner`` (a random id).
Before the commit point it reads the partition's checkpoint back: if another
owner has checkpointed since the epoch this worker restored or last wrote,
the partition was taken over (this worker is a zombie: evicted from the
group and not told yet), and ``commit`` raises ``Fenced`` without writing.
Staged files and segments carry the owner in their names, so two owners
never overwrite each other's files. Without a compare-and-swap on the
filesystem a window remains between the check and the rename; it is as
short as one read.

Recovery (``recover``) undoes a torn commit: staged files named by the
checkpoint are published (a crash between 3 and 4), every other staged file of
the partition is deleted (a crash before 3), and so is every segment the
checkpoint does not list (written before a crash at 3, or left by one at 4).
Input after the checkpoint's offsets is then read again and produces its rows
again, so each label is written exactly once. Shard names are deterministic (stream tag, partition,
first offset, epoch), so publishing twice writes the same name.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import msgpack

from labeler.errors import CheckpointError
from labeler.join.changelog import read_log
from labeler.output.shards import ShardFile
from labeler.output.storage import Storage

CHECKPOINT_DIR = "_checkpoints"
STAGING_DIR = "_staging"
FORMAT_VERSION = 2  # 2: pending predictions in state segments


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a partition has durably done: the commit point of one epoch."""

    stream: str
    partition: int
    epoch: int
    offsets: dict[str, int]  # topic -> next offset to read (last processed + 1)
    state: dict[str, Any]  # PartitionJoin.snapshot()
    shards: list[tuple[str, str]] = field(default_factory=list)  # (staged, final)
    segments: list[tuple[int, str]] = field(default_factory=list)  # (epoch, owner), kept
    owner: str = ""  # the worker process that wrote it


def stream_tag(stream: str) -> str:
    """Eight hex digits naming a stream in shard names, so two streams (or the same
    topics with and without repartition) writing to one dataset never collide."""
    return hashlib.sha256(stream.encode()).hexdigest()[:8]


def shard_name(stream: str, partition: int, first_offset: int, epoch: int) -> str:
    return f"part-{stream_tag(stream)}-{partition:04d}-{first_offset:012d}-{epoch:08d}"


class Fenced(CheckpointError):
    """Another worker checkpointed the partition after this one last did: it owns it now."""


class PublishError(CheckpointError):
    """Publishing failed *after* the checkpoint was written: the epoch is committed
    (its rows must not be written again); ``recover`` finishes the publish."""

    def __init__(self, message: str, checkpoint: Checkpoint) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


class CheckpointStore:
    """Checkpoints of one stream (a pair of prediction and outcome topics)."""

    def __init__(self, storage: Storage, stream: str, owner: str | None = None) -> None:
        self.storage = storage
        self.stream = stream
        self.owner = owner or uuid.uuid4().hex[:12]
        self._dir = f"{CHECKPOINT_DIR}/{quote(stream, safe='')}"
        self._staging = f"{STAGING_DIR}/{quote(stream, safe='')}"

    def _checkpoint_path(self, partition: int) -> str:
        return f"{self._dir}/p{partition:04d}.ckpt"

    def _staging_dir(self, partition: int) -> str:
        return f"{self._staging}/p{partition:04d}"

    def _segment_dir(self, partition: int) -> str:
        return f"{self._dir}/p{partition:04d}.state"

    def _segment_path(self, partition: int, epoch: int, owner: str) -> str:
        return f"{self._segment_dir(partition)}/{_segment_name(epoch, owner)}"

    def segments(self, checkpoint: Checkpoint) -> Iterator[tuple[int, Iterator[list[Any]]]]:
        """The ``(epoch, log)`` state segments ``checkpoint`` lists, oldest first, read one
        at a time (a restore never holds more than one in memory)."""
        for epoch, owner in checkpoint.segments:
            path = self._segment_path(checkpoint.partition, epoch, owner)
            raw = self.storage.read(path)
            if raw is None:
                raise CheckpointError(f"state segment {path} that the checkpoint of partition "
                                      f"{checkpoint.partition} lists is missing")
            yield epoch, _changes(raw, path)

    def load(self, partition: int) -> Checkpoint | None:
        raw = self.storage.read(self._checkpoint_path(partition))
        if raw is None:
            return None
        try:
            doc = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise CheckpointError(f"checkpoint of partition {partition} is corrupt: {exc}") from exc
        if doc.get("version") != FORMAT_VERSION or doc.get("stream") != self.stream:
            raise CheckpointError(
                f"checkpoint {self._checkpoint_path(partition)} is not version {FORMAT_VERSION} "
                f"of stream {self.stream!r}"
            )
        return Checkpoint(
            stream=doc["stream"], partition=doc["partition"], epoch=doc["epoch"],
            offsets=doc["offsets"], state=doc["state"],
            shards=[(s, f) for s, f in doc["shards"]],
            segments=[(e, o) for e, o in doc["segments"]], owner=doc["owner"],
        )

    def recover(self, partition: int) -> Checkpoint | None:
        """Load the partition's checkpoint and repair a commit torn by a crash."""
        checkpoint = self.load(partition)
        named = set()
        if checkpoint is not None:
            for staged, final in checkpoint.shards:
                named.add(staged)
                if self.storage.exists(staged):
                    self.storage.move(staged, final)
        staging = self._staging_dir(partition)
        for name in self.storage.list(staging):
            if f"{staging}/{name}" not in named:
                self.storage.delete(f"{staging}/{name}")
        kept = {_segment_name(*s) for s in checkpoint.segments} if checkpoint else set()
        segments = self._segment_dir(partition)
        for name in self.storage.list(segments):
            if name not in kept:
                self.storage.delete(f"{segments}/{name}")
        temp_prefix = f".p{partition:04d}.ckpt."
        for name in self.storage.list(self._dir):
            if name.startswith(temp_prefix):  # a checkpoint write torn before its rename
                self.storage.delete(f"{self._dir}/{name}")
        return checkpoint

    def commit(
        self,
        partition: int,
        epoch: int,
        offsets: dict[str, int],
        state: dict[str, Any],
        files: Sequence[ShardFile],
        before: Callable[[], None] | None = None,
        log: Sequence[bytes] = (),
        segments: Sequence[tuple[int, str]] = (),
        keep_from: int = 0,
        previous_epoch: int | None = None,
    ) -> Checkpoint:
        """Make one epoch of one partition durable, in the order of the module docstring.

        ``log`` is the epoch's change log, ``segments`` the ones the previous
        checkpoint kept, ``keep_from`` the oldest epoch a restore still needs.
        With ``previous_epoch`` (the epoch this worker restored or last wrote),
        raises ``Fenced`` if the stored checkpoint is no longer that one.
        """
        if before is not None:
            before()  # 1
        staged = []
        for i, shard in enumerate(files):
            staging_path = (f"{self._staging_dir(partition)}/"
                            f"{epoch:08d}-{self.owner}-{i:04d}.parquet")
            self.storage.write(staging_path, shard.data, sync_dir=False)  # 2
            staged.append((staging_path, shard.path))
        kept = [s for s in segments if s[0] >= keep_from]
        if log and epoch >= keep_from:
            self.storage.write(self._segment_path(partition, epoch, self.owner),
                               b"".join(log), sync_dir=False)  # 2
            kept.append((epoch, self.owner))
        written = [s for s, _ in staged]
        if kept and kept[-1] == (epoch, self.owner):
            written.append(self._segment_path(partition, epoch, self.owner))
        self.storage.sync_dirs(written)  # 2: one fsync per directory, not per file
        if previous_epoch is not None:
            self._check_owner(partition, previous_epoch)
        checkpoint = Checkpoint(self.stream, partition, epoch, dict(offsets), state, staged, kept,
                                self.owner)
        self.storage.write_atomic(self._checkpoint_path(partition), _encode(checkpoint))  # 3
        try:
            for staging_path, final in staged:
                self.storage.move(staging_path, final)  # 4
            for old in set(segments) - set(kept):
                self.storage.delete(self._segment_path(partition, *old))  # 4
        except OSError as exc:
            raise PublishError(f"partition {partition} epoch {epoch} is committed but not "
                               f"yet published ({exc}); recovery will publish it",
                               checkpoint) from exc
        return checkpoint

    def _check_owner(self, partition: int, previous_epoch: int) -> None:
        current = self.load(partition)
        epoch = current.epoch if current is not None else 0
        if epoch != previous_epoch:
            who = current.owner if current is not None else "nobody"
            raise Fenced(f"partition {partition} was checkpointed at epoch {epoch} by {who} "
                         f"since this worker's epoch {previous_epoch}: another worker owns it")


def _segment_name(epoch: int, owner: str) -> str:
    return f"{epoch:08d}-{owner}.seg"


def _encode(checkpoint: Checkpoint) -> bytes:
    return msgpack.packb(
        {
            "version": FORMAT_VERSION,
            "stream": checkpoint.stream,
            "partition": checkpoint.partition,
            "epoch": checkpoint.epoch,
            "offsets": checkpoint.offsets,
            "state": checkpoint.state,
            "shards": checkpoint.shards,
            "segments": checkpoint.segments,
            "owner": checkpoint.owner,
        },
        use_bin_type=True,
    )


def _changes(raw: bytes, path: str) -> Iterator[list[Any]]:
    try:
        yield from read_log(raw)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CheckpointError(f"state segment {path} is corrupt: {exc}") from exc
