"""Two owners of one partition, interleaved step by step on one directory: the epoch
log lets exactly one pass each commit point, nobody deletes what the other still
needs, and every row is in the dataset once (defects: the fencing race, a restart
without a checkpoint overwriting published shards)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ingest.records import Prediction
from labeler.join.inputs import DirectInputs
from labeler.join.labels import LabelSpec
from labeler.join.partition import PartitionJoin
from labeler.join.records import LabeledExample
from labeler.join.rules import JoinRules
from labeler.output.checkpoint import (
    KEEP_EPOCHS,
    Checkpoint,
    CheckpointStore,
    Fenced,
    PublishError,
    shard_name,
)
from labeler.output.shards import ShardEncoder, ShardFile
from labeler.output.storage import Storage

STREAM = "p+o"
RULES = JoinRules(window=3600.0, lateness=1.0, labels=(LabelSpec("clicked"),))
ENCODER = ShardEncoder((LabelSpec("clicked"),))


class Paused(Storage):
    """One owner's view of the shared directory: ``before_create`` runs just before its
    next epoch file is created (between commit steps 2 and 3), ``before_publish`` just
    before its next publish (between steps 3 and 4). Each runs once."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.before_create: Callable[[], None] | None = None
        self.before_publish: Callable[[], None] | None = None

    def put_if_absent(self, rel: str, data: bytes) -> bool:
        hook, self.before_create = self.before_create, None
        if hook is not None:
            hook()
        return super().put_if_absent(rel, data)

    def publish(self, src: str, dst: str) -> bool:
        hook, self.before_publish = self.before_publish, None
        if hook is not None:
            hook()
        return super().publish(src, dst)


def prediction(i: int) -> Prediction:
    return Prediction(f"id{i}", 1718000000.0 + i, "m", "1", {"x": float(i)}, {"score": 0.5})


def rows(first: int, last: int) -> list[LabeledExample]:
    return [LabeledExample(prediction(i), (i % 2 == 0,), i % 2, None) for i in range(first, last)]


def shards(store: CheckpointStore, first: int, last: int, epoch: int) -> list[ShardFile]:
    return ENCODER.encode(rows(first, last), shard_name(STREAM, 0, first, epoch, store.owner))


def read(join: PartitionJoin, first: int, last: int) -> None:
    """Input offsets ``first`` to ``last``: one prediction each (pending: a long window)."""
    inputs = DirectInputs(join, ("p", 0), ("o", 0))
    for i in range(first, last):
        inputs.prediction(prediction(i))


def commit(store: CheckpointStore, join: PartitionJoin, epoch: int,
           segments: list[tuple[int, str]], first: int, last: int) -> Checkpoint:
    """Epoch ``epoch``: the rows of offsets ``first`` to ``last`` and the join's log."""
    checkpoint = store.commit(0, epoch, {"p": last}, join.snapshot(),
                              shards(store, first, last, epoch), log=join.log,
                              segments=segments, keep_from=join.oldest_needed_epoch())
    join.logged(epoch)
    return checkpoint


def restore(store: CheckpointStore, checkpoint: Checkpoint) -> PartitionJoin:
    return PartitionJoin.restore(RULES, checkpoint.state, store.segments(checkpoint),
                                 epoch=checkpoint.epoch + 1)


def dataset_ids(root: Path) -> list[str]:
    return sorted(pd.read_parquet(root).prediction_id)


def published(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("model=*/date=*/**/*.parquet"))


def test_a_takeover_between_staging_and_the_commit_point_fences_the_old_owner(
        tmp_path: Path) -> None:
    """The race as it was found: the old owner has staged epoch 3 and written its
    segment when the new owner takes over. Before the epoch log the new owner's
    recovery deleted those files, the old owner's read-back check still passed, its
    checkpoint named the deleted files, the new owner was fenced out, and every later
    restore failed with "state segment ... is missing"."""
    old_storage = Paused(tmp_path)
    old = CheckpointStore(old_storage, STREAM, owner="old")
    new = CheckpointStore(Storage(str(tmp_path)), STREAM, owner="new")
    claim = old.recover(0)
    assert claim.fresh and claim.epoch == 1
    join = PartitionJoin(RULES, epoch=claim.epoch + 1)
    read(join, 0, 5)
    first = commit(old, join, 2, [], 0, 5)
    read(join, 5, 10)

    taken: list[Checkpoint] = []
    old_storage.before_create = lambda: taken.append(new.recover(0))
    with pytest.raises(Fenced, match="epoch 3 was claimed by worker new"):
        commit(old, join, 3, first.segments, 5, 10)
    heir_claim = taken[0]
    assert heir_claim.epoch == 3 and heir_claim.offsets == {"p": 5}
    assert not any("-00000003-old" in name for name in published(tmp_path)), \
        "the fenced owner published nothing"
    assert dataset_ids(tmp_path) == sorted(f"id{i}" for i in range(5))

    # the new owner restores from its claim, reads offsets 5..9 again and commits
    heir = restore(new, heir_claim)
    assert heir.pending_count == 5
    read(heir, 5, 10)
    commit(new, heir, 4, heir_claim.segments, 5, 10)
    assert dataset_ids(tmp_path) == sorted(f"id{i}" for i in range(10)), "each row once"

    for _ in range(3):  # every later take-over restores
        later = CheckpointStore(Storage(str(tmp_path)), STREAM)
        checkpoint = later.recover(0)
        assert checkpoint.offsets == {"p": 10}
        assert restore(later, checkpoint).pending_count == 10
    # the old owner's staged shards and segment of epoch 3 were garbage: collected
    assert not [n for n in old_storage.list("_staging/p%2Bo/p0000")]
    assert "00000003-old.seg" not in old_storage.list("_checkpoints/p%2Bo/p0000.state")


def test_a_takeover_between_the_commit_point_and_the_publish_keeps_the_epoch(
        tmp_path: Path) -> None:
    """The old owner passed its commit point and froze before publishing: its epoch
    counts. The new owner's claim carries its shards and publishes them; the old owner,
    resuming, finds them published (no error), and is fenced at its next commit."""
    old_storage = Paused(tmp_path)
    old = CheckpointStore(old_storage, STREAM, owner="old")
    new = CheckpointStore(Storage(str(tmp_path)), STREAM, owner="new")
    join = PartitionJoin(RULES, epoch=old.recover(0).epoch + 1)
    read(join, 0, 5)
    taken: list[Checkpoint] = []
    old_storage.before_publish = lambda: taken.append(new.recover(0))
    committed = commit(old, join, 2, [], 0, 5)
    assert taken[0].epoch == 3 and taken[0].shards == committed.shards
    assert dataset_ids(tmp_path) == sorted(f"id{i}" for i in range(5))
    read(join, 5, 8)
    with pytest.raises(Fenced):
        commit(old, join, 3, committed.segments, 5, 8)
    heir = restore(new, taken[0])
    assert heir.pending_count == 5
    read(heir, 5, 8)
    commit(new, heir, 4, taken[0].segments, 5, 8)
    assert dataset_ids(tmp_path) == sorted(f"id{i}" for i in range(8))


def test_a_zombie_far_behind_cannot_pass_with_an_epoch_number_deleted_long_ago(
        tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    zombie = CheckpointStore(storage, STREAM, owner="zombie")
    join = PartitionJoin(RULES, epoch=zombie.recover(0).epoch + 1)
    read(join, 0, 2)
    commit(zombie, join, 2, [], 0, 2)
    heir = CheckpointStore(storage, STREAM, owner="heir")
    claim = heir.recover(0)
    heirs = restore(heir, claim)
    segments = claim.segments
    for epoch in range(claim.epoch + 1, claim.epoch + 1 + 2 * KEEP_EPOCHS):
        read(heirs, epoch * 10, epoch * 10 + 1)
        segments = commit(heir, heirs, epoch, segments, epoch * 10, epoch * 10 + 1).segments
    latest = heir.epochs(0)
    assert len(latest) == KEEP_EPOCHS and 3 not in latest  # old epoch files are deleted
    read(join, 2, 4)
    with pytest.raises(Fenced, match=f"is at epoch {latest[-1]}, past this worker's epoch 3"):
        commit(zombie, join, 3, [(2, "zombie")], 2, 4)
    assert not any("-zombie" in n and "-00000003-" in n for n in published(tmp_path))
    checkpoint = heir.load(0)
    assert checkpoint is not None and checkpoint.owner == "heir"  # the stray file is ignored
    again = CheckpointStore(storage, STREAM).recover(0)
    assert 3 not in heir.epochs(0) and again.epoch == latest[-1] + 1  # and collected


def test_files_of_epochs_above_the_latest_are_left_to_their_owner(tmp_path: Path) -> None:
    """Work in progress of a live owner (staged for an epoch nobody has committed yet)
    is not garbage; a file of a decided epoch that the latest checkpoint does not list is."""
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, STREAM)
    store.recover(0)
    storage.write("_staging/p%2Bo/p0000/00000002-other-0000.parquet", b"staged")  # epoch 2
    storage.write("_checkpoints/p%2Bo/p0000.state/00000002-other.seg", b"segment")
    storage.write("_staging/p%2Bo/p0000/00000009-live-0000.parquet", b"in progress")
    storage.write("_checkpoints/p%2Bo/p0000.state/00000009-live.seg", b"in progress")
    assert CheckpointStore(storage, STREAM).recover(0).epoch == 2
    assert storage.list("_staging/p%2Bo/p0000") == ["00000009-live-0000.parquet"]
    assert storage.list("_checkpoints/p%2Bo/p0000.state") == ["00000009-live.seg"]


def test_two_claims_at_once_the_later_one_wins(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    first = CheckpointStore(storage, STREAM, owner="first")
    second = CheckpointStore(storage, STREAM, owner="second")
    a, b = first.recover(0), second.recover(0)
    assert (a.epoch, b.epoch) == (1, 2)
    join = PartitionJoin(RULES, epoch=a.epoch + 1)
    read(join, 0, 1)
    with pytest.raises(Fenced, match="epoch 2 was claimed by worker second"):
        commit(first, join, 2, [], 0, 1)
    join = PartitionJoin(RULES, epoch=b.epoch + 1)
    read(join, 0, 1)
    commit(second, join, 3, [], 0, 1)
    assert dataset_ids(tmp_path) == ["id0"]


def test_a_segment_gone_because_the_partition_moved_on_is_fenced(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    owner = CheckpointStore(storage, STREAM, owner="a")
    join = PartitionJoin(RULES, epoch=owner.recover(0).epoch + 1)
    read(join, 0, 1)
    commit(owner, join, 2, [], 0, 1)
    stale = CheckpointStore(storage, STREAM, owner="stale")
    stale_claim = stale.recover(0)
    storage.delete("_checkpoints/p%2Bo/p0000.state/00000002-a.seg")
    storage.write("_checkpoints/p%2Bo/p0000.epochs/0000000009.ckpt", b"moved on")
    with pytest.raises(Fenced, match="00000002-a.seg is gone: partition 0 moved on to epoch 9"):
        restore(stale, stale_claim)


def test_a_restart_without_a_checkpoint_never_replaces_a_published_shard(
        tmp_path: Path) -> None:
    """``_checkpoints`` deleted: the partition starts again at epoch 1, reading from
    Kafka's committed offset, which may be behind. The new shards have names of their
    own (another owner); the committed ones stay byte for byte."""
    storage = Storage(str(tmp_path))
    first = CheckpointStore(storage, STREAM)
    join = PartitionJoin(RULES, epoch=first.recover(0).epoch + 1)
    read(join, 0, 6)
    commit(first, join, 2, [], 0, 6)
    before = {p: p.read_bytes() for p in tmp_path.glob("model=*/**/*.parquet")}
    shutil.rmtree(tmp_path / "_checkpoints")

    again = CheckpointStore(storage, STREAM)
    claim = again.recover(0)
    assert claim.fresh and claim.epoch == 1  # epoch 1 again, another owner
    join = PartitionJoin(RULES, epoch=claim.epoch + 1)
    read(join, 0, 4)  # Kafka's committed offset was behind: rows 0..3 again
    commit(again, join, 2, [], 0, 4)
    assert {p: p.read_bytes() for p in before} == before
    assert len(published(tmp_path)) == len(before) + 1
    assert dataset_ids(tmp_path) == sorted([f"id{i}" for i in range(6)]
                                           + [f"id{i}" for i in range(4)])  # dedupe by id

    # even an owner id used twice cannot replace a committed file: publish refuses
    shutil.rmtree(tmp_path / "_checkpoints")
    same = CheckpointStore(storage, STREAM, owner=first.owner)
    join = PartitionJoin(RULES, epoch=same.recover(0).epoch + 1)
    read(join, 0, 3)
    with pytest.raises(PublishError, match=r"cannot publish .*_staging.* exists with other "
                                           r"contents"):
        commit(same, join, 2, [], 0, 3)
    assert {p: p.read_bytes() for p in before} == before


def test_an_owner_id_must_be_safe_in_file_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="letters and digits"):
        CheckpointStore(Storage(str(tmp_path)), STREAM, owner="a-b")


class TornTemp(Storage):
    """An owner whose epoch file's temp copy is written when ``after_temp`` runs (the
    moment inside put-if-absent between the temp file and its link)."""

    after_temp: Callable[[], None] | None = None

    def write(self, rel: str, data: bytes, sync_dir: bool = True) -> None:
        super().write(rel, data, sync_dir)
        if rel.endswith(".tmp") and ".ckpt." in rel:
            hook, self.after_temp = self.after_temp, None
            if hook is not None:
                hook()


def test_a_claim_collecting_the_old_owner_temp_file_mid_commit_fences_it(
        tmp_path: Path) -> None:
    old_storage = TornTemp(str(tmp_path))
    old = CheckpointStore(old_storage, STREAM, owner="old")
    new = CheckpointStore(Storage(str(tmp_path)), STREAM, owner="new")
    join = PartitionJoin(RULES, epoch=old.recover(0).epoch + 1)
    read(join, 0, 3)
    first = commit(old, join, 2, [], 0, 3)
    read(join, 3, 5)
    epochs = "_checkpoints/p%2Bo/p0000.epochs"

    def take_over() -> None:
        assert [n for n in old_storage.list(epochs) if n.endswith(".tmp")]
        new.recover(0)  # claims 3, and collects the temp file of 3 before its link
        assert not [n for n in old_storage.list(epochs) if n.endswith(".tmp")]

    old_storage.after_temp = take_over
    with pytest.raises(Fenced, match="epoch 3 was claimed by worker new"):
        commit(old, join, 3, first.segments, 3, 5)
    assert dataset_ids(tmp_path) == sorted(f"id{i}" for i in range(3))
    assert old_storage.list(epochs) == ["0000000001.ckpt", "0000000002.ckpt",
                                        "0000000003.ckpt"]


def test_of_writers_racing_for_one_epoch_exactly_one_wins(tmp_path: Path) -> None:
    import threading

    storage = Storage(str(tmp_path))
    for epoch in range(1, 21):
        won: list[bool] = []
        start = threading.Barrier(6)

        def race(i: int, epoch: int = epoch, start: threading.Barrier = start,
                 won: list[bool] = won) -> None:
            start.wait()
            won.append(storage.put_if_absent(f"log/{epoch}.ckpt", f"{i}".encode()))

        threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(won) == [False] * 5 + [True]
    assert storage.list("log") == sorted(f"{e}.ckpt" for e in range(1, 21))  # no temp left


def test_a_file_named_like_an_epoch_but_not_written_by_the_log_is_ignored(
        tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o", owner="one")
    storage.write("_checkpoints/p%2Bo/p0000.epochs/00000003.ckpt", b"not ours")
    assert store.load(0) is None  # was: "the epoch log keeps changing" forever
    assert store.recover(0).epoch == 1
