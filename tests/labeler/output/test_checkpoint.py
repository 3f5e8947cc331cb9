"""The commit protocol and crash recovery on a local directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ingest.records import Prediction
from labeler.errors import CheckpointError
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.checkpoint import CheckpointStore, PublishError, shard_name
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
    files = ShardEncoder((LabelSpec("clicked"),)).encode(rows(10), shard_name("p+o", 3, 0, 1))
    store.commit(3, 1, {"p": 10, "o": 4}, {"state": 1}, files)
    assert len(visible(tmp_path)) == 1
    assert pd.read_parquet(tmp_path).prediction_id.tolist() == [f"id{i}" for i in range(10)]
    loaded = store.recover(3)
    assert loaded is not None and loaded.offsets == {"p": 10, "o": 4} and loaded.epoch == 1


def test_crash_before_the_checkpoint_rolls_back(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    encoder = ShardEncoder((LabelSpec("clicked"),))
    store.commit(0, 1, {"p": 5}, {}, encoder.encode(rows(5), shard_name("p+o", 0, 0, 1)))
    # a crash after staging epoch 2 but before its checkpoint: the staged file is an orphan
    storage.write("_staging/p%2Bo/p0000/00000002-0000.parquet", b"partial")
    checkpoint = store.recover(0)
    assert checkpoint is not None and checkpoint.epoch == 1
    assert storage.list("_staging/p%2Bo/p0000") == []
    assert len(pd.read_parquet(tmp_path)) == 5


def test_crash_after_the_checkpoint_rolls_forward(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    files = ShardEncoder((LabelSpec("clicked"),)).encode(rows(4), shard_name("p+o", 0, 0, 1))
    checkpoint = store.commit(0, 1, {"p": 4}, {}, files)
    staged, final = checkpoint.shards[0]
    storage.move(final, staged)  # as if the process died between checkpoint and publish
    assert visible(tmp_path) == []
    store.recover(0)
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
    storage.write("_checkpoints/s/p0000.ckpt", b"\xc1garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        store.load(0)


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
    store.commit(2, 1, {"a": 7}, {}, [])
    storage.write("_checkpoints/s/.p0002.ckpt.0123abcd.tmp", b"half a checkpoi")
    checkpoint = store.recover(2)
    assert checkpoint is not None and checkpoint.offsets == {"a": 7}
    assert storage.list("_checkpoints/s") == ["p0002.ckpt"]


def test_shard_names_differ_between_streams_sharing_a_dataset() -> None:
    assert shard_name("a+b", 0, 0, 1) != shard_name("a.rekeyed+b.rekeyed", 0, 0, 1)
    assert shard_name("a+b", 0, 0, 1) == shard_name("a+b", 0, 0, 1)


def test_a_failed_publish_still_commits_the_epoch_and_recovery_finishes_it(
        tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    files = ShardEncoder((LabelSpec("clicked"),)).encode(rows(3), shard_name("p+o", 0, 0, 1))
    real_move = storage.move

    def failing_move(src: str, dst: str) -> None:
        if src.startswith("_staging"):
            raise OSError("store unavailable")
        real_move(src, dst)

    storage.move = failing_move  # type: ignore[method-assign]
    with pytest.raises(PublishError):
        store.commit(0, 1, {"p": 3}, {}, files)
    storage.move = real_move  # type: ignore[method-assign]
    assert visible(tmp_path) == []
    checkpoint = store.recover(0)
    assert checkpoint is not None and checkpoint.epoch == 1
    assert len(pd.read_parquet(tmp_path)) == 3


def test_a_zombie_is_fenced_and_the_new_owner_files_stay_intact(tmp_path: Path) -> None:
    from labeler.output.checkpoint import Fenced

    storage = Storage(str(tmp_path))
    encoder = ShardEncoder((LabelSpec("clicked"),))
    zombie = CheckpointStore(storage, "p+o", owner="zombie")
    zombie.commit(0, 1, {"p": 5}, {}, encoder.encode(rows(5), shard_name("p+o", 0, 0, 1)),
                  log=[b"\x91\x00"], previous_epoch=0)
    # the group moves partition 0 to a new owner, which restores epoch 1 and goes on
    heir = CheckpointStore(storage, "p+o", owner="heir")
    restored = heir.recover(0)
    assert restored is not None and restored.epoch == 1 and restored.owner == "zombie"
    heir.commit(0, 2, {"p": 9}, {}, encoder.encode(rows(4, 5), shard_name("p+o", 0, 5, 2)),
                log=[b"\x91\x01"], segments=restored.segments, previous_epoch=1)
    # the zombie, cut off from the group, still thinks it owns the partition at epoch 1
    with pytest.raises(Fenced, match="epoch 2 by heir since this worker's epoch 1"):
        zombie.commit(0, 2, {"p": 7}, {},
                      encoder.encode(rows(2, 5), shard_name("p+o", 0, 5, 2) + "z"),
                      log=[b"\x91\x02"], segments=restored.segments, previous_epoch=1)
    final = heir.load(0)
    assert final is not None and final.owner == "heir" and final.offsets == {"p": 9}
    assert final.segments == [(1, "zombie"), (2, "heir")]
    assert storage.read("_checkpoints/p%2Bo/p0000.state/00000002-heir.seg") == b"\x91\x01"
    assert sorted(pd.read_parquet(tmp_path).prediction_id) == sorted(f"id{i}" for i in range(9))


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
