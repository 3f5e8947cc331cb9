"""Checkpoints and the commit order: the one place where durability is decided.

Per input partition the labeler keeps, beside the shards, an append-only
**epoch log**: numbered checkpoint files, one per epoch, each created with
put-if-absent (``Storage.put_if_absent``), never rewritten. The highest
number is the partition's truth: the next offsets to read from both topics,
the join state, and the shard files of that epoch. The join state is in two
parts: a small snapshot (watermarks, early outcomes) in the checkpoint
itself, and the rest (pending predictions, ids closed within the dedupe
horizon) as **state segments**: each epoch's log of changes (see
``labeler.join.partition``), one immutable file per epoch. A checkpoint lists
the segments a restore needs: from the oldest epoch with a prediction still
pending, or a close still within the dedupe horizon, up to its own.

Layout under ``output.path`` (``<s>`` is the stream, ``NNNN`` the partition)::

    _checkpoints/<s>/pNNNN.epochs/<epoch>.ckpt        the epoch log (claims and commits)
    _checkpoints/<s>/pNNNN.state/<epoch>-<owner>.seg  state segments
    _staging/<s>/pNNNN/<epoch>-<owner>-<i>.parquet    shards written, not yet committed
    <hive path>/part-<tag>-<partition>-<first offset>-<epoch>-<owner>[-<k>].parquet

Checkpoints and segments are framed and checksummed (``labeler.output.frames``):
an empty, truncated or altered file is a ``CheckpointError`` naming it.

**Owners and claims.** Each worker process writes as its own ``owner`` (a
random id). Taking a partition over, ``recover`` first **claims** the next
epoch number: it creates epoch L+1 (L the highest) as a checkpoint naming
itself, carrying L's offsets, state, segment list and unpublished shards, no
new shards. If the number is taken (the old owner committed it a moment
before, or another worker claimed it) it reads the log again and claims the
next one: the last claim wins. The new owner then restores from its claim,
and its commits are L+2, L+3...

``commit`` of epoch E (the owner's previous epoch + 1) runs the steps in this order:

1. **Flush the producer** (dead letters, drift events), so every produced
   record the offsets cover is acked: the caller does it first (the worker,
   once per commit round), or passes it as the ``before`` hook.
2. **Stage** each new shard file under ``_staging/`` (fsynced, invisible to
   readers: pyarrow, pandas, DuckDB and Spark skip ``_``-prefixed paths),
   and write the epoch's state segment (fsynced; unused until listed).
3. **Create epoch E** with put-if-absent. This is the commit point: offsets,
   join state and the epoch's shard list change together, and of two
   owners only one can pass it. If E exists, another owner claimed or
   committed it: ``Fenced``, nothing is published. Then **E must be the
   highest epoch** in the log: old epoch files are deleted, so a zombie
   far behind could create a low number again; if a higher one exists,
   ``Fenced`` too, and the file is ignored (a restore reads the highest).
4. **Publish**: give each staged file its final name (``Storage.publish``:
   never replacing a file), then delete the segments E no longer lists and
   the epoch files older than the last ``KEEP_EPOCHS``.
5. **Commit the offsets to Kafka** (the caller, afterwards). They are advisory:
   for lag monitoring, and for a restart that has no checkpoint.

``Fenced`` means the worker no longer owns the partition: it drops it
without writing and leaves its files for the next owner to judge. Whether its
epoch counts is the log's answer, not the worker's: if a claim was based on
it, the claimant publishes its shards; otherwise they are garbage. If
publishing fails after step 3, the epoch is committed all the same
(``PublishError``): its rows are never encoded again, and the next owner's
claim carries its shards and publishes them.

**Garbage, and who may delete what.** Nobody deletes a file another owner
may still need. A staged file or segment of epoch e <= L (L the claim's
epoch, the highest when it was created) that L's checkpoint does not list is
garbage: a later checkpoint lists only what L lists plus files of its own
epoch, the shards of epochs before L were published before L was written
(or L carries them), and a commit of e can no longer succeed. Files of epochs above L may be a live
owner's work in progress and are left alone. ``recover`` collects the
garbage after its claim; a committer deletes only the segments its own
checkpoint dropped (``keep_from``), and both delete the epoch files older than
the last ``KEEP_EPOCHS`` and torn temp files of epochs already decided.

**Publishing is idempotent.** Shard names carry the stream tag, partition,
first input offset, epoch and owner (``shard_name``), unique across owners,
epochs and restarts without a checkpoint (a new owner id, even at epoch 1
again), so a publish never replaces a committed file. A recovery publishing
a file already published finds the final name taken by the same bytes and
drops the staged copy; a final name taken by different bytes is an error
naming it.

**Object stores.** pyarrow's S3, GCS and Azure filesystems expose no
conditional create, so ``put_if_absent`` and ``publish`` there are a check
then a write: two owners committing the same epoch within one request's
time could both pass step 3 (the highest-epoch check after it narrows, but
does not close, that window). On a local or NFS filesystem (``link()`` is
atomic) the commit point is exclusive.
"""

from __future__ import annotations

import errno
import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgpack

from labeler.errors import CheckpointError, StorageError
from labeler.join.changelog import read_log
from labeler.output.epoch_log import (
    OWNER,
    Checkpoint,
    Paths,
    decode,
    encode,
    epoch_of_file,
    epoch_of_staged,
    epoch_of_temp,
    segment_key,
)
from labeler.output.frames import CHECKPOINT, SEGMENT, FrameError, frame, unframe
from labeler.output.shards import ShardFile
from labeler.output.storage import Storage

KEEP_EPOCHS = 5  # epoch files kept per partition (the highest is the only one read)
CLAIM_ATTEMPTS = 20  # numbers tried by one claim before giving up


def stream_tag(stream: str) -> str:
    """Eight hex digits naming a stream in shard names, so two streams (or the same
    topics with and without repartition) writing to one dataset never collide."""
    return hashlib.sha256(stream.encode()).hexdigest()[:8]


def shard_name(stream: str, partition: int, first_offset: int, epoch: int, owner: str) -> str:
    """The base name of an epoch's shards: unique per owner and epoch, so no publish
    replaces a committed file.

    >>> shard_name("p+o", 3, 1200, 7, "a1b2c3")
    'part-bbdff2d7-0003-000000001200-00000007-a1b2c3'
    """
    return (f"part-{stream_tag(stream)}-{partition:04d}-{first_offset:012d}-{epoch:08d}-"
            f"{owner}")


class Fenced(CheckpointError):
    """Another worker claimed or committed the partition's next epoch: it owns it now."""


class PublishError(CheckpointError):
    """Publishing failed *after* the checkpoint was written: the epoch is committed
    (its rows must not be written again); the next claim finishes the publish."""

    def __init__(self, message: str, checkpoint: Checkpoint) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


class CheckpointStore:
    """The epoch logs of one stream (a pair of prediction and outcome topics).

    Stateless between calls (everything is read from storage), so any thread
    may call it for different partitions; one partition's calls come from its
    owner's loop thread.
    """

    def __init__(self, storage: Storage, stream: str, owner: str | None = None) -> None:
        self.storage = storage
        self.stream = stream
        self.owner = owner or uuid.uuid4().hex[:12]
        if not OWNER.fullmatch(self.owner):
            raise ValueError(f"owner {self.owner!r}: letters and digits only (it goes in "
                             "file names)")
        self._paths = Paths(stream)

    # -- reading -----------------------------------------------------------------------

    def epochs(self, partition: int) -> list[int]:
        """The epoch numbers in the partition's log, ascending."""
        names = self.storage.list(self._paths.epoch_dir(partition))
        return sorted(n for n in map(epoch_of_file, names) if n is not None)

    def load(self, partition: int) -> Checkpoint | None:
        """The partition's latest checkpoint (highest epoch), or ``None`` if it has none."""
        for _ in range(CLAIM_ATTEMPTS):
            epochs = self.epochs(partition)
            if not epochs:
                legacy = self._paths.legacy(partition)
                if self.storage.exists(legacy):
                    raise CheckpointError(
                        f"checkpoint {self.storage.path(legacy)} is of an older format "
                        "(before the epoch log): move it away to restart the partition from "
                        "Kafka's committed offsets")
                return None
            checkpoint = self._read(partition, epochs[-1])
            if checkpoint is not None:
                return checkpoint
        where = self.storage.path(self._paths.epoch_dir(partition))
        raise CheckpointError(f"the epoch log {where} keeps changing under this reader")

    def _read(self, partition: int, epoch: int) -> Checkpoint | None:
        rel = self._paths.epoch_path(partition, epoch)
        path = self.storage.path(rel)
        try:
            raw = self.storage.read(rel)
        except StorageError as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc.reason}") from exc
        if raw is None:
            return None
        try:
            checkpoint = decode(unframe(CHECKPOINT, raw))
        except FrameError as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt: {exc}") from exc
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt: {exc!r}") from exc
        if (checkpoint.stream, checkpoint.partition, checkpoint.epoch) != (
                self.stream, partition, epoch):
            raise CheckpointError(
                f"checkpoint {path} is epoch {checkpoint.epoch} of partition "
                f"{checkpoint.partition} of stream {checkpoint.stream!r}, not epoch {epoch} "
                f"of partition {partition} of stream {self.stream!r}")
        return checkpoint

    def segments(self, checkpoint: Checkpoint) -> Iterator[tuple[int, Iterator[list[Any]]]]:
        """The ``(epoch, log)`` state segments ``checkpoint`` lists, oldest first, read one
        at a time (a restore never holds more than one in memory)."""
        for epoch, owner in checkpoint.segments:
            rel = self._paths.segment_path(checkpoint.partition, epoch, owner)
            path = self.storage.path(rel)
            try:
                raw = self.storage.read(rel)
            except StorageError as exc:
                raise CheckpointError(f"cannot read state segment {path}: {exc.reason}"
                                      ) from exc
            if raw is None:
                latest = self.epochs(checkpoint.partition)
                if latest and latest[-1] > checkpoint.epoch:
                    raise Fenced(f"state segment {path} is gone: partition "
                                 f"{checkpoint.partition} moved on to epoch {latest[-1]} "
                                 f"since epoch {checkpoint.epoch}: another worker owns it")
                raise CheckpointError(f"state segment {path} that checkpoint epoch "
                                      f"{checkpoint.epoch} of partition "
                                      f"{checkpoint.partition} lists is missing")
            try:
                payload = unframe(SEGMENT, raw)
            except FrameError as exc:
                raise CheckpointError(f"state segment {path} is corrupt: {exc}") from exc
            yield epoch, _changes(payload, path)

    # -- taking a partition over -------------------------------------------------------

    def recover(self, partition: int) -> Checkpoint:
        """Claim the partition's next epoch, finish a torn commit, collect garbage, and
        return the claim: the checkpoint to restore from (``fresh`` when the partition
        had none). The owner's next commit is ``claim.epoch + 1``."""
        for _ in range(CLAIM_ATTEMPTS):
            base = self.load(partition)
            claim = Checkpoint(
                self.stream, partition, (base.epoch if base else 0) + 1,
                dict(base.offsets) if base else {}, base.state if base else {},
                list(base.shards) if base else [], list(base.segments) if base else [],
                self.owner, claim=True)
            if self._create(claim):
                break
        else:
            where = self.storage.path(self._paths.epoch_dir(partition))
            raise CheckpointError(f"cannot claim partition {partition}: other workers took "
                                  f"{CLAIM_ATTEMPTS} epochs in a row under {where}")
        self._publish(claim)  # shards of a commit torn between its steps 3 and 4
        self._collect(claim)
        return claim

    def _collect(self, claim: Checkpoint) -> None:
        """Delete what the claim proves unreferenced (the module docstring's rule)."""
        partition, epoch = claim.partition, claim.epoch
        named = {staged for staged, _ in claim.shards}
        staging = self._paths.staging_dir(partition)
        for name in self.storage.list(staging):
            written = epoch_of_staged(name)
            if written is not None and written <= epoch and f"{staging}/{name}" not in named:
                self._delete(f"{staging}/{name}", "staged file")
        kept = set(claim.segments)
        segments = self._paths.segment_dir(partition)
        for name in self.storage.list(segments):
            key = segment_key(name)
            if key is not None and key[0] <= epoch and key not in kept:
                self._delete(f"{segments}/{name}", "state segment")
        self._trim(partition, epoch)

    def _trim(self, partition: int, epoch: int) -> None:
        """Delete epoch files below the last ``KEEP_EPOCHS`` and torn temp files of
        epochs already decided."""
        directory = self._paths.epoch_dir(partition)
        for name in self.storage.list(directory):
            number = epoch_of_file(name)
            if number is not None and number <= epoch - KEEP_EPOCHS:
                self._delete(f"{directory}/{name}", "checkpoint")
            written = epoch_of_temp(name)
            if written is not None and written <= epoch:
                self._delete(f"{directory}/{name}", "checkpoint temp file")

    # -- committing --------------------------------------------------------------------

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
    ) -> Checkpoint:
        """Make epoch ``epoch`` of one partition durable, in the order of the module
        docstring; ``epoch`` is this owner's claimed or last committed epoch + 1.

        ``log`` is the epoch's change log, ``segments`` the ones the previous
        checkpoint kept, ``keep_from`` the oldest epoch a restore still needs.
        Raises ``Fenced`` when another owner holds the partition (nothing
        published), ``PublishError`` when the epoch is committed but a shard is
        not yet published, ``CheckpointError`` naming the file when a write fails.
        """
        if before is not None:
            before()  # 1
        staged = []
        for i, shard in enumerate(files):
            rel = self._paths.staged_path(partition, epoch, self.owner, i)
            with _named("shard"):
                self.storage.write(rel, shard.data, sync_dir=False)  # 2
            staged.append((rel, shard.path))
        kept = [s for s in segments if s[0] >= keep_from]
        written = [s for s, _ in staged]
        if log and epoch >= keep_from:
            rel = self._paths.segment_path(partition, epoch, self.owner)
            with _named("state segment"):
                self.storage.write(rel, frame(SEGMENT, b"".join(log)), sync_dir=False)  # 2
            kept.append((epoch, self.owner))
            written.append(rel)
        with _named("staged files"):
            self.storage.sync_dirs(written)  # 2
        checkpoint = Checkpoint(self.stream, partition, epoch, dict(offsets), state, staged,
                                kept, self.owner)
        if not self._create(checkpoint):  # 3
            holder = self._read_quietly(partition, epoch)
            if holder is not None and holder.owner == self.owner:
                raise CheckpointError(f"partition {partition} epoch {epoch} is already "
                                      "committed by this worker (commit the next epoch)")
            who = f"worker {holder.owner}" if holder is not None else "another worker"
            raise Fenced(f"partition {partition} epoch {epoch} was "
                         f"{'claimed' if holder is None or holder.claim else 'committed'} "
                         f"by {who}: another worker owns the partition")
        latest = self.epochs(partition)
        if latest and latest[-1] != epoch:  # 3: a low number deleted long ago, created again
            raise Fenced(f"partition {partition} is at epoch {latest[-1]}, past this "
                         f"worker's epoch {epoch}: another worker owns it")
        try:
            self._publish(checkpoint)  # 4
            for old in set(segments) - set(kept):
                self.storage.delete(self._paths.segment_path(partition, *old))  # 4
            self._trim(partition, epoch)  # 4
        except (CheckpointError, StorageError) as exc:
            raise PublishError(f"partition {partition} epoch {epoch} is committed but not yet "
                               f"published ({exc}); the next owner's claim publishes it",
                               checkpoint) from exc
        return checkpoint

    def _create(self, checkpoint: Checkpoint) -> bool:
        """Put-if-absent of ``checkpoint``'s epoch file; ``False`` if the number is taken."""
        rel = self._paths.epoch_path(checkpoint.partition, checkpoint.epoch)
        data = frame(CHECKPOINT, encode(checkpoint))
        try:
            return self.storage.put_if_absent(rel, data)
        except StorageError as exc:
            if exc.errno == errno.ENOENT and self._decided(checkpoint):
                return False  # its temp file was collected by whoever decided the number
            raise CheckpointError(f"cannot write checkpoint {self.storage.path(rel)}: "
                                  f"{exc.reason}") from exc

    def _decided(self, checkpoint: Checkpoint) -> bool:
        latest = self.epochs(checkpoint.partition)
        return bool(latest) and latest[-1] >= checkpoint.epoch

    def _read_quietly(self, partition: int, epoch: int) -> Checkpoint | None:
        try:
            return self._read(partition, epoch)
        except CheckpointError:
            return None

    def _publish(self, checkpoint: Checkpoint) -> None:
        """Give each staged file of ``checkpoint`` its final name; idempotent."""
        for staged, final in checkpoint.shards:
            try:
                if self.storage.publish(staged, final):
                    continue
            except StorageError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                raise CheckpointError(f"staged file {self.storage.path(staged)} of partition "
                                      f"{checkpoint.partition} epoch {checkpoint.epoch} is "
                                      "missing and was never published") from exc
            mine = self.storage.read(staged)
            if mine is None:
                continue  # published by another owner's recovery a moment ago
            if self.storage.read(final) != mine:
                raise CheckpointError(f"cannot publish {self.storage.path(staged)}: "
                                      f"{self.storage.path(final)} exists with other contents")
            self.storage.delete(staged)

    def _delete(self, rel: str, what: str) -> None:
        with _named(what):
            self.storage.delete(rel)


@contextmanager
def _named(what: str) -> Iterator[None]:
    """A ``StorageError`` as a ``CheckpointError`` saying which kind of file it was:
    ``cannot write checkpoint /out/_checkpoints/...: No space left on device``."""
    try:
        yield
    except StorageError as exc:
        raise CheckpointError(f"cannot {exc.action} {what} {exc.path}: {exc.reason}") from exc


def _changes(payload: memoryview, path: str) -> Iterator[list[Any]]:
    try:
        yield from read_log(payload)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CheckpointError(f"state segment {path} is corrupt: {exc}") from exc
