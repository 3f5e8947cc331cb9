"""The commit protocol and crash recovery on a local directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ingest.records import Prediction
from labeler.errors import CheckpointError, StorageError
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.checkpoint import CheckpointStore, Fenced, PublishError, shard_name
from labeler.output.shards import ShardEncoder
from labeler.output.storage import Storage


def rows(n: int, start: int = 0) -> list[LabeledExample]:
    return [
        LabeledExample(Prediction(f"id{i}", 1718000000.0 + i, "m", "1", {"x": float(i)},
                                  {"score": 0.5}), (i % 2 == 0,), i % 2, None)
        for i in range(start, start + n)
    ]


def visible(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet")
                  if not any(s.startswith(("_", ".")) for s in p.relative_to(root).parts))


def test_commit_publishes_shards_and_records_offsets(tmp_path: Path) -> None:
    store = CheckpointStore(Storage(str(tmp_path)), "p+o")
    files = ShardEncoder((LabelSpec("clicked"),)).encode(rows(10), shard_name("p+o", 3, 0, 1, "w"))
    store.commit(3, 1, {"p": 10, "o": 4}, {"state": 1}, files)
    assert len(visible(tmp_path)) == 1
    assert pd.read_parquet(tmp_path).prediction_id.tolist() == [f"id{i}" for i in range(10)]
    loaded = store.recover(3)
    assert loaded.offsets == {"p": 10, "o": 4} and loaded.state == {"state": 1}
    assert loaded.epoch == 2 and loaded.claim and not loaded.fresh  # claimed after epoch 1


def test_crash_before_the_checkpoint_rolls_back(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    encoder = ShardEncoder((LabelSpec("clicked"),))
    store.commit(0, 1, {"p": 5}, {}, encoder.encode(rows(5), shard_name("p+o", 0, 0, 1, "w")))
    # a crash after staging epoch 2 but before its checkpoint: the staged file is an orphan
    storage.write("_staging/p%2Bo/p0000/00000002-0000.parquet", b"partial")
    checkpoint = store.recover(0)
    assert checkpoint.epoch == 2 and checkpoint.offsets == {"p": 5}
    assert storage.list("_staging/p%2Bo/p0000") == []
    assert len(pd.read_parquet(tmp_path)) == 5


def test_crash_after_the_checkpoint_rolls_forward(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    files = ShardEncoder((LabelSpec("clicked"),)).encode(rows(4), shard_name("p+o", 0, 0, 1, "w"))
    checkpoint = store.commit(0, 1, {"p": 4}, {"s": 1}, files)
    staged, final = checkpoint.shards[0]
    storage.move(final, staged)  # as if the process died between checkpoint and publish
    assert visible(tmp_path) == []
    heir = CheckpointStore(storage, "p+o")
    claim = heir.recover(0)
    assert claim.shards == checkpoint.shards  # the claim carries what is left to publish
    assert len(pd.read_parquet(tmp_path)) == 4
    assert storage.list("_staging/p%2Bo/p0000") == []
    heir.recover(0)  # a recovery publishing files already published: nothing to do
    assert len(pd.read_parquet(tmp_path)) == 4


def test_a_checkpoint_of_another_stream_is_refused(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    CheckpointStore(storage, "a+b").commit(0, 1, {"a": 1}, {}, [])
    other = CheckpointStore(storage, "a+b")
    other.stream = "x+y"
    with pytest.raises(CheckpointError):
        other.load(0)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "s")
    storage.write("_checkpoints/s/p0000.epochs/0000000001.ckpt", b"\xc1garbage")
    with pytest.raises(CheckpointError, match=r"^checkpoint .*/_checkpoints/s/p0000.epochs/"
                                              r"0000000001.ckpt is corrupt: 8 bytes"):
        store.load(0)


def test_a_checkpoint_of_the_format_before_the_epoch_log_is_refused(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    storage.write("_checkpoints/s/p0000.ckpt", b"\x80")
    with pytest.raises(CheckpointError, match="p0000.ckpt is of an older format"):
        CheckpointStore(storage, "s").recover(0)


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    storage.write_atomic("a/b.bin", b"one")
    storage.write_atomic("a/b.bin", b"two")
    assert storage.read("a/b.bin") == b"two"
    assert storage.list("a") == ["b.bin"]
    assert storage.read("a/missing") is None


def test_a_torn_checkpoint_write_leaves_the_old_checkpoint_and_is_cleaned(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "s")
    store.commit(2, 1, {"a": 7}, {"s": 1}, [])
    storage.write("_checkpoints/s/p0002.epochs/.0000000002.ckpt.0123abcd.tmp", b"half a checkpoi")
    checkpoint = store.recover(2)
    assert checkpoint.offsets == {"a": 7} and checkpoint.epoch == 2
    assert storage.list("_checkpoints/s/p0002.epochs") == ["0000000001.ckpt", "0000000002.ckpt"]


def test_shard_names_differ_between_streams_owners_and_epochs() -> None:
    assert shard_name("a+b", 0, 0, 1, "w") != shard_name("a.rekeyed+b.rekeyed", 0, 0, 1, "w")
    assert shard_name("a+b", 0, 0, 1, "w") != shard_name("a+b", 0, 0, 1, "v")
    assert shard_name("a+b", 0, 0, 1, "w") != shard_name("a+b", 0, 0, 2, "w")
    # the same arguments always give this name: the stream's tag is the first eight hex
    # digits of sha256("a+b"), then the partition, first offset, epoch and owner
    assert shard_name("a+b", 0, 0, 1, "w") == "part-300273da-0000-000000000000-00000001-w"
    assert shard_name("a+b", 3, 1200, 7, "w") == "part-300273da-0003-000000001200-00000007-w"


def test_a_failed_publish_still_commits_the_epoch_and_recovery_finishes_it(
        tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    files = ShardEncoder((LabelSpec("clicked"),)).encode(rows(3), shard_name("p+o", 0, 0, 1, "w"))
    real_publish = storage.publish

    def failing_publish(src: str, dst: str) -> bool:
        raise StorageError("publish", storage.path(src), "store unavailable")

    storage.publish = failing_publish  # type: ignore[method-assign]
    with pytest.raises(PublishError, match="epoch 1 is committed but not yet published.*"
                                           "store unavailable"):
        store.commit(0, 1, {"p": 3}, {"s": 1}, files)
    storage.publish = real_publish  # type: ignore[method-assign]
    assert visible(tmp_path) == []
    checkpoint = CheckpointStore(storage, "p+o").recover(0)
    assert checkpoint.epoch == 2 and checkpoint.offsets == {"p": 3}
    assert len(pd.read_parquet(tmp_path)) == 3


def test_a_zombie_is_fenced_and_the_new_owner_files_stay_intact(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    encoder = ShardEncoder((LabelSpec("clicked"),))
    zombie = CheckpointStore(storage, "p+o", owner="zombie")
    zombie.recover(0)  # claims epoch 1
    zombie.commit(0, 2, {"p": 5}, {"s": 1},
                  encoder.encode(rows(5), shard_name("p+o", 0, 0, 2, "zombie")), log=[b"\x91\x00"])
    # the group moves partition 0 to a new owner, which claims epoch 3 and goes on
    heir = CheckpointStore(storage, "p+o", owner="heir")
    restored = heir.recover(0)
    assert restored.epoch == 3 and restored.owner == "heir" and restored.offsets == {"p": 5}
    heir.commit(0, 4, {"p": 9}, {"s": 2},
                encoder.encode(rows(4, 5), shard_name("p+o", 0, 5, 4, "heir")),
                log=[b"\x91\x01"], segments=restored.segments)
    # the zombie, cut off from the group, still thinks it owns the partition at epoch 2;
    # the same rows under the same first offset: a name of its own, never the heir's
    with pytest.raises(Fenced, match="epoch 3 was claimed by worker heir"):
        zombie.commit(0, 3, {"p": 7}, {"s": 3},
                      encoder.encode(rows(2, 5), shard_name("p+o", 0, 5, 3, "zombie")),
                      log=[b"\x91\x02"], segments=[(2, "zombie")])
    final = heir.load(0)
    assert final is not None and final.owner == "heir" and final.offsets == {"p": 9}
    assert final.segments == [(2, "zombie"), (4, "heir")]
    assert sorted(pd.read_parquet(tmp_path).prediction_id) == sorted(f"id{i}" for i in range(9))
    # the zombie's staged file and segment of epoch 3 are garbage for the next owner
    assert any("zombie" in n for n in storage.list("_staging/p%2Bo/p0000"))
    CheckpointStore(storage, "p+o").recover(0)
    assert storage.list("_staging/p%2Bo/p0000") == []
    assert not any(n.startswith("00000003") for n in storage.list("_checkpoints/p%2Bo/p0000.state"))


def test_put_if_absent_creates_once(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    assert storage.put_if_absent("a/epoch-1", b"first")
    assert not storage.put_if_absent("a/epoch-1", b"second")
    assert storage.read("a/epoch-1") == b"first"
    assert storage.list("a") == ["epoch-1"]  # no temp file left behind


def test_publish_never_replaces_a_file(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    storage.write("s/one", b"one")
    storage.write("s/two", b"two")
    assert storage.publish("s/one", "d/final")
    assert not storage.publish("s/two", "d/final")
    assert storage.read("d/final") == b"one"
    assert storage.read("s/two") == b"two"  # the loser is left for the caller
