"""What a restarted ingest stage sends again is known by its raw offsets and skipped,
whatever the event time (the dedupe by id forgets after its horizon)."""

from __future__ import annotations

from ingest.records import Prediction
from ingest.wire.codec import Source
from labeler.join.partition import PartitionJoin
from labeler.join.rules import JoinRules

RULES = JoinRules(window=10.0, grace=0.0, early_tolerance=1.0, lateness=1.0, idle_after=30.0,
                  dedupe_horizon=5.0)


def preds(*ids: int) -> list[Prediction]:
    return [Prediction(f"id-{i}", 100.0 + i, "m", "1", {}, {"score": 0.5}) for i in ids]


def test_records_at_or_below_the_offsets_taken_are_skipped() -> None:
    join = PartitionJoin(RULES)
    assert join.not_replayed(Source("raw", 0, [5, 7, 9]), preds(1, 2, 3)) == preds(1, 2, 3)
    # the stage restarted from offset 6: 7 and 9 again, then new ones
    again = join.not_replayed(Source("raw", 0, [7, 9, 11, 12]), preds(2, 3, 4, 5))
    assert again == preds(4, 5)
    assert join.counters["replayed_records"] == 2
    assert join.not_replayed(Source("raw", 0, [3, 4]), preds(8, 9)) == []
    assert join.counters["replayed_records"] == 4
    # another raw partition has its own offsets
    assert join.not_replayed(Source("raw", 1, [0]), preds(6)) == preds(6)


def test_the_offsets_taken_survive_a_restore() -> None:
    join = PartitionJoin(RULES)
    join.not_replayed(Source("raw", 0, [40, 41]), preds(1, 2))
    restored = PartitionJoin.restore(RULES, join.snapshot())
    assert restored.not_replayed(Source("raw", 0, [41, 42]), preds(2, 3)) == preds(3)
    assert restored.counters["replayed_records"] == 1
