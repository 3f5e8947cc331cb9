"""Framed state: every truncation point and every changed byte of a real state segment
and a real checkpoint is an error naming the file, never a silent load (a segment cut
between two records used to restore with rows duplicated and rows missing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.records import Outcome, Prediction
from labeler.errors import CheckpointError
from labeler.join.inputs import DirectInputs
from labeler.join.labels import LabelSpec
from labeler.join.partition import PartitionJoin
from labeler.join.rules import JoinRules
from labeler.output.checkpoint import Checkpoint, CheckpointStore
from labeler.output.frames import SEGMENT, FrameError, frame, unframe
from labeler.output.storage import Storage

RULES = JoinRules(window=60.0, early_tolerance=30.0, lateness=1.0, dedupe_horizon=120.0,
                  labels=(LabelSpec("clicked"),))


def real_state(root: Path) -> tuple[CheckpointStore, Checkpoint, Path, Path]:
    """A partition with pending, closed and early-outcome state, committed once."""
    store = CheckpointStore(Storage(str(root)), "p+o", owner="w")
    join = PartitionJoin(RULES, epoch=store.recover(0).epoch + 1)
    inputs = DirectInputs(join, ("p", 0), ("o", 0))
    for i in range(40):
        inputs.prediction(Prediction(f"id{i}", 1000.0 + i, "m", "1", {"x": i / 3, "c": "a"},
                                     {"score": 0.25}))
        if i % 3 == 0:
            inputs.outcome(Outcome(f"id{i}", 1001.0 + i, "click", 1.0, f"o{i}"))
    inputs.outcome(Outcome("early", 1100.0, "click", 1.0, "oe"))  # before its prediction
    join.advance()
    checkpoint = store.commit(0, 2, {"p": 40, "o": 15}, join.snapshot(), [], log=join.log,
                              keep_from=join.oldest_needed_epoch())
    segment = root / "_checkpoints/p%2Bo/p0000.state/00000002-w.seg"
    epoch_file = root / "_checkpoints/p%2Bo/p0000.epochs/0000000002.ckpt"
    assert segment.exists() and epoch_file.exists() and checkpoint.state["early"]
    return store, checkpoint, segment, epoch_file


def restore(store: CheckpointStore, checkpoint: Checkpoint) -> PartitionJoin:
    return PartitionJoin.restore(RULES, checkpoint.state, store.segments(checkpoint))


def test_the_real_state_restores_intact(tmp_path: Path) -> None:
    store, checkpoint, _, _ = real_state(tmp_path)
    loaded = store.load(0)
    assert loaded == checkpoint
    assert restore(store, loaded).pending_count > 0


def test_every_truncation_of_a_real_segment_is_an_error(tmp_path: Path) -> None:
    store, checkpoint, segment, _ = real_state(tmp_path)
    intact = segment.read_bytes()
    assert len(intact) > 1000
    for cut in range(len(intact)):  # 0: an empty file
        segment.write_bytes(intact[:cut])
        with pytest.raises(CheckpointError, match=f"state segment {segment} is corrupt"):
            restore(store, checkpoint)
    segment.write_bytes(intact + b"\x00")
    with pytest.raises(CheckpointError, match="bytes after the end"):
        restore(store, checkpoint)


def test_every_truncation_of_a_real_checkpoint_is_an_error(tmp_path: Path) -> None:
    store, _, _, epoch_file = real_state(tmp_path)
    intact = epoch_file.read_bytes()
    for cut in range(len(intact)):
        epoch_file.write_bytes(intact[:cut])
        with pytest.raises(CheckpointError, match=f"checkpoint {epoch_file} is corrupt"):
            store.load(0)


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[CheckpointStore, Checkpoint, Path, Path]:
    return real_state(tmp_path_factory.mktemp("flip"))


@settings(max_examples=200, deadline=None)
@given(where=st.floats(0.0, 1.0, exclude_max=True), flip=st.integers(1, 255))
def test_a_changed_byte_anywhere_is_an_error(
        committed: tuple[CheckpointStore, Checkpoint, Path, Path], where: float, flip: int
        ) -> None:
    store, checkpoint, segment, epoch_file = committed
    for path, load in ((segment, lambda: restore(store, checkpoint)),
                       (epoch_file, lambda: store.load(0))):
        intact = path.read_bytes()
        at = int(where * len(intact))
        path.write_bytes(intact[:at] + bytes([intact[at] ^ flip]) + intact[at + 1:])
        try:
            with pytest.raises(CheckpointError, match=f"{path} is corrupt"):
                load()
        finally:
            path.write_bytes(intact)


def test_a_checkpoint_is_not_read_as_a_segment() -> None:
    with pytest.raises(FrameError, match="not a file of this kind"):
        unframe(SEGMENT, frame(b"LLCK", b"x"))


def test_another_format_version_is_named() -> None:
    data = bytearray(frame(SEGMENT, b"x"))
    data[5] = 9
    with pytest.raises(FrameError, match="format version 9, this loglabel reads 3"):
        unframe(SEGMENT, bytes(data))
