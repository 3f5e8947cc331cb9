"""A full disk, a permission refused, a path that cannot be a directory, a file that
cannot be read: each is one line with the file's path and the cause, not an
``OSError`` without its path."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from labeler.errors import CheckpointError, StorageError
from labeler.join.labels import LabelSpec
from labeler.ops.failures import explain
from labeler.output.checkpoint import CheckpointStore, shard_name
from labeler.output.shards import ShardEncoder
from labeler.output.storage import Storage
from tests.labeler.output.test_fencing import rows

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and explain(exc) == text  # the command line prints it as is
    return text


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage layer's writes fail as on a full disk (at the fsync, as they do)."""
    def fsync(fd: int) -> None:
        raise ENOSPC

    monkeypatch.setattr("labeler.output.storage.os.fsync", fsync)


def test_a_full_disk_at_the_checkpoint_names_the_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(Storage(str(tmp_path)), "s")
    full_disk(monkeypatch)
    with pytest.raises(CheckpointError) as caught:
        store.commit(0, 1, {"a": 1}, {"s": 1}, [])
    assert one_line(caught.value) == (
        f"cannot write checkpoint {tmp_path}/_checkpoints/s/p0000.epochs/0000000001.ckpt: "
        "No space left on device")


def test_a_full_disk_while_staging_names_the_shard(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(Storage(str(tmp_path)), "s", owner="w")
    files = ShardEncoder((LabelSpec("clicked"),)).encode(rows(0, 2), shard_name("s", 0, 0, 1, "w"))
    full_disk(monkeypatch)
    with pytest.raises(CheckpointError) as caught:
        store.commit(0, 1, {"a": 1}, {"s": 1}, files)
    assert one_line(caught.value) == (
        f"cannot write shard {tmp_path}/_staging/s/p0000/00000001-w-0000.parquet: "
        "No space left on device")


def test_a_full_disk_at_a_claim_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    full_disk(monkeypatch)
    with pytest.raises(CheckpointError, match=r"^cannot write checkpoint .*/p0003.epochs/"
                                              r"0000000001.ckpt: No space left on device$"):
        CheckpointStore(Storage(str(tmp_path)), "s").recover(3)


def test_a_storage_error_keeps_the_errno_for_callers_that_catch_oserror(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full_disk(monkeypatch)
    with pytest.raises(OSError) as caught:
        Storage(str(tmp_path)).write("a/b", b"x")
    assert isinstance(caught.value, StorageError) and caught.value.errno == errno.ENOSPC
    assert one_line(caught.value) == f"cannot write {tmp_path}/a/b: No space left on device"


def _refusing_directory(tmp_path: Path) -> tuple[Path, str]:
    """A real directory this process may not write into, and the reason the OS gives.

    Not root: a directory without write permission. Root ignores permission bits,
    so there: sysfs, where even root may not create a file (skipped where it can)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return locked / "out", os.strerror(errno.EACCES)
    sysfs = Path("/sys") / f"loglabel-test-{uuid.uuid4().hex}"
    try:
        sysfs.mkdir()
    except OSError as exc:
        return sysfs, exc.strerror or ""
    sysfs.rmdir()
    pytest.skip("running as root with a writable /sys: no directory refuses a write here")


def test_permission_denied_names_the_path_and_the_cause(tmp_path: Path) -> None:
    root, reason = _refusing_directory(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        CheckpointStore(Storage(str(root)), "s").commit(0, 1, {"a": 1}, {"s": 1}, [])
    assert one_line(caught.value) == (
        f"cannot write checkpoint {root}/_checkpoints/s/p0000.epochs/0000000001.ckpt: {reason}")


def test_an_output_path_below_a_file_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError) as caught:
        CheckpointStore(Storage(str(blocker / "out")), "s").recover(0)
    assert one_line(caught.value).startswith(f"cannot write checkpoint {blocker}/out/")
    assert str(caught.value).endswith(": Not a directory")


def test_a_segment_that_cannot_be_read_names_it(tmp_path: Path) -> None:
    store = CheckpointStore(Storage(str(tmp_path)), "s", owner="w")
    checkpoint = store.commit(0, 1, {"a": 1}, {"s": 1}, [], log=[b"\x91\x00"])
    segment = tmp_path / "_checkpoints/s/p0000.state/00000001-w.seg"
    segment.unlink()
    segment.mkdir()  # a real failure to read, whoever runs the test
    with pytest.raises(CheckpointError) as caught:
        list(store.segments(checkpoint))
    assert one_line(caught.value).startswith(f"cannot read state segment {segment}: ")


def test_a_corrupt_checkpoint_is_one_line_with_its_path(tmp_path: Path) -> None:
    store = CheckpointStore(Storage(str(tmp_path)), "s")
    store.commit(0, 1, {"a": 1}, {"s": 1}, [])
    path = tmp_path / "_checkpoints/s/p0000.epochs/0000000001.ckpt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError) as caught:
        store.recover(0)
    assert one_line(caught.value) == (f"checkpoint {path} is corrupt: 0 bytes, shorter than "
                                      "the 18-byte header (an empty file)")


def test_every_storage_call_names_its_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    storage = Storage(str(blocker))
    calls: list[tuple[str, Any]] = [
        ("write", lambda: storage.write("a", b"x")),
        ("create", lambda: storage.put_if_absent("a", b"x")),
        ("read", lambda: storage.read("a")),
        ("delete", lambda: storage.delete("a")),
    ]
    for _, call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        assert str(blocker) in one_line(caught.value)
