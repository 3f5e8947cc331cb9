"""Compaction: when the state segments a restore needs hold many more changes than
the state they add up to, one segment with the live state replaces them, and a
restore from it continues exactly as the uninterrupted join does."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeler.join import partition
from labeler.join.partition import PartitionJoin
from labeler.output.checkpoint import CheckpointStore
from labeler.output.storage import Storage

from .test_pending import RULES, Segments, commit, keyed, play, pred, random_events, tiny_store


@pytest.mark.parametrize("seed", [3, 4])
def test_one_old_prediction_no_longer_keeps_every_segment(tmp_path: Path, seed: int,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(partition, "COMPACT_MIN_CHANGES", 2_000)
    events = random_events(seed, 12_000)
    # a prediction far ahead in event time stays pending all along: without compaction
    # its epoch-1 segment, and every later one, would be kept
    events.insert(10, pred("far-ahead", 1000.0 + 5_000.0))
    storage = Storage(str(tmp_path / "out"))
    store = CheckpointStore(storage, "p+o")
    join = PartitionJoin(RULES, store=tiny_store(tmp_path, 40))
    segments: Segments = []
    chunks = [events[i:i + 500] for i in range(0, len(events), 500)]
    cut = 2 * len(chunks) // 3
    most = 0
    for epoch, chunk in enumerate(chunks[:cut], start=1):
        play(join, chunk)
        if join.compact_due():
            join.compact()
        segments = commit(store, join, epoch, segments)
        most = max(most, len(segments))
    assert join.counters["state_compactions"] >= 1
    assert join.pending.on_disk > 0  # the compaction read the spilled ones too
    assert segments[0][0] > 1, "the oldest segment is gone though its prediction is pending"
    assert len(segments) < cut and most < cut
    assert join.kept_changes() <= partition.COMPACT_RATIO * join.live_entries() + 500
    files = storage.list("_checkpoints/p%2Bo/p0000.state")
    assert files == [f"{e:08d}-{store.owner}.seg" for e, _ in segments]

    checkpoint = store.recover(0)
    assert checkpoint is not None
    restored = PartitionJoin.restore(RULES, checkpoint.state, store.segments(checkpoint),
                                     store=tiny_store(tmp_path / "again", 40),
                                     epoch=checkpoint.epoch + 1)
    assert restored.pending_count == join.pending_count
    def closes(j: PartitionJoin) -> dict[str, tuple[float, set[object] | None]]:
        return {i: (t, set(k) if k else None) for i, t, k, _, _ in j.closed.entries()}

    assert closes(restored) == closes(join)
    assert "far-ahead" in restored.pending
    rest = [e for chunk in chunks[cut:] for e in chunk]
    assert keyed(play(restored, rest) + restored.drain()) == keyed(play(join, rest) + join.drain())
    assert restored.counters["duplicate_predictions"] > 0  # the closed ids were kept


def test_a_state_that_is_mostly_live_is_not_compacted() -> None:
    join = PartitionJoin(RULES)
    for i in range(3_000):
        join.add_prediction(pred(f"id-{i}", 1000.0 + i * 0.01))
    join.logged(1)
    assert join.kept_changes() == 3_000 and join.live_entries() == 3_000
    assert not join.compact_due()
