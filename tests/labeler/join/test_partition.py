"""The join rules, one at a time, without a broker."""

from __future__ import annotations

import math

import pytest

from ingest.records import Outcome, Prediction
from labeler.join.changelog import read_log
from labeler.join.labels import LabelSpec
from labeler.join.partition import PartitionJoin
from labeler.join.rules import JoinRules

WALL = 1_000_000.0  # a fixed wall clock: idleness never kicks in unless a test moves it


def pred(join_id: str, t: float, score: float = 0.5) -> Prediction:
    return Prediction(join_id, t, "m", "1", {"x": 1.0}, {"score": score})


def click(join_id: str, u: float, outcome_id: str | None = None, value: float | None = 1.0,
          kind: str = "click") -> Outcome:
    return Outcome(join_id, u, kind, value, outcome_id)


def rules(**overrides: object) -> JoinRules:
    base: dict[str, object] = dict(window=10.0, grace=0.0, early_tolerance=2.0, lateness=1.0,
                                   idle_after=30.0, dedupe_horizon=100.0,
                                   labels=(LabelSpec("clicked"),))
    base.update(overrides)
    return JoinRules(**base)  # type: ignore[arg-type]


def reborn(join: PartitionJoin, rules: JoinRules | None = None) -> PartitionJoin:
    """What a restart from a checkpoint taken now rebuilds: the snapshot plus the log."""
    return PartitionJoin.restore(rules or join.rules, join.snapshot(), WALL,
                                 [(join.epoch, read_log(b"".join(join.log)))])


def labels_of(rows: list) -> dict[str, tuple]:
    return {r.prediction.join_id: r.labels for r in rows}


def test_outcome_inside_window_gives_positive_and_nothing_closes_early() -> None:
    j = PartitionJoin(rules())
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_outcome(click("a", 105.0), WALL)
    j.add_prediction(pred("b", 109.0), WALL)  # watermark 108: a's window ends at 110
    assert j.advance(WALL) == []
    j.add_prediction(pred("c", 111.5), WALL)  # watermark 110.5 > 110
    rows = j.advance(WALL)
    assert labels_of(rows) == {"a": (True,)}
    assert rows[0].outcome_count == 1 and rows[0].first_outcome_delay == pytest.approx(5.0)


def test_window_end_is_inclusive_and_just_after_is_outside() -> None:
    j = PartitionJoin(rules())
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("b", 100.0), WALL)
    j.add_outcome(click("a", 110.0), WALL)
    j.add_outcome(click("b", 110.001), WALL)
    rows = j.drain()
    assert labels_of(rows) == {"a": (True,), "b": (False,)}
    assert j.counters["outside_window"] == 1


def test_no_outcome_gives_a_negative_once_the_watermark_passes() -> None:
    j = PartitionJoin(rules())
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("z", 120.0), WALL)
    assert labels_of(j.advance(WALL)) == {"a": (False,)}
    assert j.counters["labeled"] == 1 and j.counters["positives"] == 0


def test_grace_delays_the_close() -> None:
    j = PartitionJoin(rules(grace=5.0))
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("z", 115.0), WALL)  # watermark 114 < 100 + 10 + 5
    assert j.advance(WALL) == []
    j.add_outcome(click("a", 109.0), WALL)  # in window, arrives within grace
    j.add_prediction(pred("y", 116.5), WALL)  # watermark 115.5 > 115
    assert labels_of(j.advance(WALL)) == {"a": (True,)}
    assert j.counters["late_outcomes"] == 0


def test_idle_partition_advances_with_the_wall_clock() -> None:
    j = PartitionJoin(rules(idle_after=30.0))
    j.add_prediction(pred("a", 100.0), WALL)
    assert j.advance(WALL + 29.0) == []  # watermark 99: not idle long enough
    rows = j.advance(WALL + 31.0)  # idle: watermark 99 + 31 = 130 > 110
    assert labels_of(rows) == {"a": (False,)}


def test_a_stream_still_behind_holds_the_watermark() -> None:
    j = PartitionJoin(rules())
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("z", 500.0), WALL)  # predictions read far ahead ...
    assert j.advance(WALL, behind=(False, True)) == []  # ... outcomes unread: hold
    j.add_outcome(click("a", 104.0), WALL)
    j.add_outcome(click("q", 200.0), WALL)
    rows = j.advance(WALL, behind=(False, True))  # outcome mark 200: closes a, not z
    assert labels_of(rows) == {"a": (True,)}
    assert "z" in j.pending


def test_early_outcome_is_buffered_until_its_prediction() -> None:
    j = PartitionJoin(rules())
    j.add_outcome(click("a", 101.0), WALL)  # arrives first
    j.add_outcome(click("b", 99.0), WALL)  # logged 1 s before its prediction
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("b", 100.0), WALL)
    assert labels_of(j.drain()) == {"a": (True,), "b": (True,)}
    assert j.counters["early_expired"] == 0


def test_early_outcome_before_tolerance_is_outside_the_window() -> None:
    j = PartitionJoin(rules(early_tolerance=2.0))
    j.add_outcome(click("a", 97.0), WALL)
    j.add_prediction(pred("a", 100.0), WALL)
    assert labels_of(j.drain()) == {"a": (False,)}
    assert j.counters["outside_window"] == 1


def test_early_outcome_without_prediction_expires_and_is_counted() -> None:
    j = PartitionJoin(rules(early_tolerance=2.0))
    j.add_outcome(click("ghost", 100.0), WALL)
    j.add_prediction(pred("z", 102.5), WALL)  # watermark 101.5: not yet past 102
    j.advance(WALL)
    assert j.counters["early_expired"] == 0
    j.add_prediction(pred("y", 103.5), WALL)  # watermark 102.5 > 100 + 2
    j.advance(WALL)
    assert j.counters["early_expired"] == 1
    assert "ghost" not in j.early


def test_duplicate_prediction_is_labeled_once() -> None:
    j = PartitionJoin(rules())
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("a", 100.0), WALL)
    rows = j.drain()
    assert [r.prediction.join_id for r in rows] == ["a"]
    assert j.counters["duplicate_predictions"] == 1


def test_duplicate_prediction_after_its_row_was_written_is_ignored() -> None:
    j = PartitionJoin(rules(dedupe_horizon=100.0))
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("z", 120.0), WALL)
    assert len(j.advance(WALL)) == 1
    j.add_prediction(pred("a", 100.0), WALL)
    assert "a" not in j.pending
    assert j.counters["duplicate_predictions"] == 1


def test_duplicate_outcome_by_outcome_id_counts_once() -> None:
    j = PartitionJoin(rules(labels=(LabelSpec("n", agg="count"),)))
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_outcome(click("a", 101.0, outcome_id="o1"), WALL)
    j.add_outcome(click("a", 101.5, outcome_id="o1"), WALL)  # same id, other time: a copy
    j.add_outcome(click("a", 102.0, outcome_id="o2"), WALL)
    assert labels_of(j.drain()) == {"a": (2,)}
    assert j.counters["duplicate_outcomes"] == 1


def test_duplicate_outcome_without_id_is_same_id_type_and_time() -> None:
    j = PartitionJoin(rules(labels=(LabelSpec("n", agg="count"),)))
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_outcome(click("a", 101.0), WALL)
    j.add_outcome(click("a", 101.0), WALL)  # copy
    j.add_outcome(click("a", 101.0, kind="purchase"), WALL)  # other type: not a copy
    j.add_outcome(click("a", 103.0), WALL)  # other time: not a copy
    rows = j.drain()
    assert labels_of(rows) == {"a": (2,)}
    assert rows[0].outcome_count == 3
    assert j.counters["duplicate_outcomes"] == 1


def test_late_outcome_is_counted_and_the_row_is_not_rewritten() -> None:
    j = PartitionJoin(rules(keep_late_outcomes=True))
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_prediction(pred("z", 120.0), WALL)
    rows = j.advance(WALL)
    assert labels_of(rows) == {"a": (False,)}
    late = click("a", 105.0)
    j.add_outcome(late, WALL)
    assert j.counters["late_outcomes"] == 1
    assert j.late_outcomes == [(late, 100.0)]
    assert "a" not in j.pending and j.advance(WALL) == []


def test_late_prediction_is_still_labeled_and_counted() -> None:
    j = PartitionJoin(rules())
    j.add_prediction(pred("z", 200.0), WALL)
    j.advance(WALL)
    j.add_outcome(click("a", 101.0), WALL)
    j.add_prediction(pred("a", 100.0), WALL)
    assert j.counters["late_predictions"] == 1
    assert labels_of(j.advance(WALL)) == {"a": (True,)}


def test_several_label_columns_per_row() -> None:
    specs = (LabelSpec("clicked", "click", "any"), LabelSpec("clicks", "click", "count"),
             LabelSpec("revenue", "purchase", "sum"), LabelSpec("delay", "*", "first_delay"))
    j = PartitionJoin(rules(labels=specs))
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_outcome(click("a", 103.0), WALL)
    j.add_outcome(click("a", 104.0, outcome_id="x"), WALL)
    j.add_outcome(click("a", 102.0, kind="purchase", value=12.5), WALL)
    j.add_outcome(click("a", 106.0, kind="purchase", value=7.5), WALL)
    (row,) = j.drain()
    assert row.labels == (True, 2, 20.0, pytest.approx(2.0))


def test_snapshot_restore_gives_the_same_rows() -> None:
    r = rules()
    a = PartitionJoin(r)
    events = [pred("a", 100.0), click("a", 103.0), click("b", 99.5), pred("c", 104.0),
              pred("z", 115.0)]
    for e in events:
        (a.add_prediction if isinstance(e, Prediction) else a.add_outcome)(e, WALL)  # type: ignore[operator]
    first = labels_of(a.advance(WALL))
    b = reborn(a, r)
    tail = [pred("b", 100.5), click("c", 106.0), pred("y", 200.0)]
    for join in (a, b):
        for e in tail:
            (join.add_prediction if isinstance(e, Prediction) else join.add_outcome)(e, WALL)  # type: ignore[operator]
    assert labels_of(a.drain()) == labels_of(b.drain())
    assert first == {"a": (True,)}


def test_drain_closes_everything_and_the_watermark_is_infinite() -> None:
    j = PartitionJoin(rules())
    for i in range(5):
        j.add_prediction(pred(f"p{i}", 100.0 + i), WALL)
    assert len(j.drain()) == 5
    assert j.pending_count == 0
    assert j.watermark.last_value == math.inf


def test_a_drain_is_not_carried_into_the_next_run() -> None:
    j = PartitionJoin(rules())
    j.add_prediction(pred("a", 100.0), WALL)
    j.drain()
    restored = reborn(j, rules())
    assert math.isfinite(restored.watermark.last_value)
    restored.add_prediction(pred("b", 200.0), WALL)
    restored.add_outcome(click("c", 203.0), WALL)  # early, for a prediction still to come
    assert restored.advance(WALL, behind=(True, True)) == []
    assert restored.counters["late_predictions"] == 0 and restored.counters["early_expired"] == 0


def test_a_redelivered_outcome_after_the_close_is_a_duplicate_not_late() -> None:
    j = PartitionJoin(rules(keep_late_outcomes=True))
    j.add_prediction(pred("a", 100.0), WALL)
    j.add_outcome(click("a", 103.0, outcome_id="o1"), WALL)
    j.add_prediction(pred("z", 120.0), WALL)
    assert labels_of(j.advance(WALL)) == {"a": (True,)}
    late = click("a", 105.0, outcome_id="o2")
    for outcome in (click("a", 103.0, outcome_id="o1"), late, late):
        j.add_outcome(outcome, WALL)
    assert j.counters["late_outcomes"] == 1
    assert j.late_outcomes == [(late, 100.0)]
    assert j.counters["duplicate_outcomes"] == 2
    restored = reborn(j)
    restored.add_outcome(click("a", 103.0, outcome_id="o1"), WALL)
    assert restored.counters["duplicate_outcomes"] == 1 and restored.late_outcomes == []


def test_a_stall_of_our_own_loop_is_not_idleness() -> None:
    j = PartitionJoin(rules(idle_after=30.0))
    j.add_prediction(pred("a", 100.0), WALL)
    assert j.advance(WALL + 60.0, behind=(True, True)) == []  # messages wait: hold
    assert labels_of(j.advance(WALL + 60.0)) == {"a": (False,)}  # really idle: advance
