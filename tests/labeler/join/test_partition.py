"""The join rules, one at a time, without a broker."""

from __future__ import annotations

import functools
import math

import pytest

from ingest.records import Outcome, Prediction
from labeler.join.changelog import read_log
from labeler.join.inputs import DirectInputs
from labeler.join.labels import LabelSpec
from labeler.join.partition import PartitionJoin
from labeler.join.rules import JoinRules

WALL = 1_000_000.0  # a fixed wall clock: idleness never kicks in unless a test moves it


@functools.cache
def feed(join: PartitionJoin) -> DirectInputs:
    """The join read as the worker reads raw partitions: one prediction and one outcome
    input, each with its frontier, reporting to the watermark."""
    return DirectInputs(join, ("p", 0), ("o", 0))


def pred(join_id: str, t: float, score: float = 0.5) -> Prediction:
    return Prediction(join_id, t, "m", "1", {"x": 1.0}, {"score": score})


def click(join_id: str, u: float, outcome_id: str | None = None, value: float | None = 1.0,
          kind: str = "click") -> Outcome:
    return Outcome(join_id, u, kind, value, outcome_id)


def rules(**overrides: object) -> JoinRules:
    base: dict[str, object] = dict(window=10.0, grace=0.0, early_tolerance=2.0, lateness=1.0,
                                   idle_after=30.0, dedupe_horizon=100.0,
                                   labels=(LabelSpec("clicked"),), frontier_votes=1)
    base.update(overrides)
    return JoinRules(**base)  # type: ignore[arg-type]


def tick(join: PartitionJoin, t: float) -> None:
    """Both inputs have come to event time ``t`` (a record of each at ``t``)."""
    feed(join).prediction(pred(f"tick-p-{t}", t))
    feed(join).outcome(click(f"tick-o-{t}", t))


def reborn(join: PartitionJoin, rules: JoinRules | None = None) -> PartitionJoin:
    """What a restart from a checkpoint taken now rebuilds: the snapshot plus the log."""
    return PartitionJoin.restore(rules or join.rules, join.snapshot(),
                                 [(join.epoch, read_log(b"".join(join.log)))])


def labels_of(rows: list) -> dict[str, tuple]:
    return {r.prediction.join_id: r.labels for r in rows}


def test_outcome_inside_window_gives_positive_and_nothing_closes_early() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("a", 100.0))
    feed(j).outcome(click("a", 105.0))
    feed(j).prediction(pred("b", 111.5))  # predictions are past a's window end (110) ...
    assert j.advance() == []  # ... but the outcome input is at 105: watermark 104
    feed(j).outcome(click("x", 109.0))  # watermark 108
    assert j.advance() == []
    feed(j).outcome(click("y", 111.5))  # watermark min(111.5, 111.5) - 1 = 110.5 > 110
    rows = j.advance()
    assert labels_of(rows) == {"a": (True,)}
    assert rows[0].outcome_count == 1 and rows[0].first_outcome_delay == pytest.approx(5.0)


def test_window_end_is_inclusive_and_just_after_is_outside() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("a", 100.0))
    feed(j).prediction(pred("b", 100.0))
    feed(j).outcome(click("a", 110.0))
    feed(j).outcome(click("b", 110.001))
    rows = j.drain()
    assert labels_of(rows) == {"a": (True,), "b": (False,)}
    assert j.counters["outside_window"] == 1


def test_no_outcome_gives_a_negative_once_the_watermark_passes() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("a", 100.0))
    tick(j, 120.0)
    assert labels_of(j.advance()) == {"a": (False,)}
    assert j.counters["labeled"] == 1 and j.counters["positives"] == 0


def test_grace_delays_the_close() -> None:
    j = PartitionJoin(rules(grace=5.0))
    feed(j).prediction(pred("a", 100.0))
    tick(j, 115.0)  # watermark 114 < 100 + 10 + 5
    assert j.advance() == []
    feed(j).outcome(click("a", 109.0))  # in window, 6 s behind its input: within lateness? no
    assert j.counters["late_outcomes"] == 1, "behind its input's frontier by more than 1 s"
    j2 = PartitionJoin(rules(grace=5.0, lateness=10.0))
    feed(j2).prediction(pred("a", 100.0))
    tick(j2, 115.0)
    feed(j2).outcome(click("a", 109.0))  # within the lateness and within grace: joined
    tick(j2, 126.0)  # watermark 116 > 115
    assert labels_of(j2.advance()) == {"a": (True,)}
    assert j2.counters["late_outcomes"] == 0


def test_an_idle_report_advances_the_watermark_and_an_empty_input_holds_nobody() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("a", 100.0))
    assert j.advance() == []  # the outcome input has reported nothing: hold
    j.watermark.update(("o", 0), -math.inf, idle=True)  # empty, and the broker says caught up
    assert j.advance() == []  # watermark 99
    j.watermark.update(("p", 0), 100.0 + 31.0, idle=True)  # quiet 31 s since its last record
    assert labels_of(j.advance()) == {"a": (False,)}


def test_an_input_that_has_not_caught_up_holds_the_watermark() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("a", 100.0))
    feed(j).prediction(pred("z", 500.0))  # predictions read far ahead ...
    assert j.advance() == []  # ... the outcomes are unread: hold
    feed(j).outcome(click("a", 104.0))
    feed(j).outcome(click("q", 200.0))
    rows = j.advance()  # outcome frontier 200: closes a, not z
    assert labels_of(rows) == {"a": (True,)}
    assert "z" in j.pending


def test_early_outcome_is_buffered_until_its_prediction() -> None:
    j = PartitionJoin(rules(lateness=5.0))
    feed(j).outcome(click("a", 101.0))  # arrives first
    feed(j).outcome(click("b", 99.0))  # logged 1 s before its prediction
    feed(j).prediction(pred("a", 100.0))
    feed(j).prediction(pred("b", 100.0))
    assert labels_of(j.drain()) == {"a": (True,), "b": (True,)}
    assert j.counters["early_expired"] == 0


def test_early_outcome_before_tolerance_is_outside_the_window() -> None:
    j = PartitionJoin(rules(early_tolerance=2.0))
    feed(j).outcome(click("a", 97.0))
    feed(j).prediction(pred("a", 100.0))
    assert labels_of(j.drain()) == {"a": (False,)}
    assert j.counters["outside_window"] == 1


def test_early_outcome_without_prediction_expires_and_is_counted() -> None:
    j = PartitionJoin(rules(early_tolerance=2.0))
    feed(j).outcome(click("ghost", 100.0))
    tick(j, 102.5)  # watermark 101.5: not yet past 102
    j.advance()
    assert j.counters["early_expired"] == 0
    tick(j, 103.5)  # watermark 102.5 > 100 + 2
    j.advance()
    assert j.counters["early_expired"] == 1
    assert "ghost" not in j.early


def test_duplicate_prediction_is_labeled_once() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("a", 100.0))
    feed(j).prediction(pred("a", 100.0))
    rows = j.drain()
    assert [r.prediction.join_id for r in rows] == ["a"]
    assert j.counters["duplicate_predictions"] == 1


def test_duplicate_prediction_after_its_row_was_written_is_ignored() -> None:
    j = PartitionJoin(rules(dedupe_horizon=100.0, lateness=30.0))
    feed(j).prediction(pred("a", 100.0))
    tick(j, 141.0)  # watermark 111 > 110
    assert len(j.advance()) == 1
    feed(j).prediction(pred("a", 112.0))  # a copy, within the lateness
    assert "a" not in j.pending
    assert j.counters["duplicate_predictions"] == 1


def test_duplicate_outcome_by_outcome_id_counts_once() -> None:
    j = PartitionJoin(rules(labels=(LabelSpec("n", agg="count"),)))
    feed(j).prediction(pred("a", 100.0))
    feed(j).outcome(click("a", 101.0, outcome_id="o1"))
    feed(j).outcome(click("a", 101.5, outcome_id="o1"))  # same id, other time: a copy
    feed(j).outcome(click("a", 102.0, outcome_id="o2"))
    assert labels_of(j.drain()) == {"a": (2,)}
    assert j.counters["duplicate_outcomes"] == 1


def test_duplicate_outcome_without_id_is_same_id_type_and_time() -> None:
    j = PartitionJoin(rules(labels=(LabelSpec("n", agg="count"),)))
    feed(j).prediction(pred("a", 100.0))
    feed(j).outcome(click("a", 101.0))
    feed(j).outcome(click("a", 101.0))  # copy
    feed(j).outcome(click("a", 101.0, kind="purchase"))  # other type: not a copy
    feed(j).outcome(click("a", 103.0))  # other time: not a copy
    rows = j.drain()
    assert labels_of(rows) == {"a": (2,)}
    assert rows[0].outcome_count == 3
    assert j.counters["duplicate_outcomes"] == 1


def test_late_outcome_is_counted_and_the_row_is_not_rewritten() -> None:
    j = PartitionJoin(rules(keep_late_outcomes=True))
    feed(j).prediction(pred("a", 100.0))
    tick(j, 120.0)
    rows = j.advance()
    assert labels_of(rows) == {"a": (False,)}
    late = click("a", 105.0)  # 15 s behind the outcome input's frontier
    feed(j).outcome(late)
    assert j.counters["late_outcomes"] == 1 and j.counters["outcomes_after_close"] == 0
    assert j.late_outcomes == [(late, 100.0)]
    assert "a" not in j.pending and j.advance() == []


def test_a_late_outcome_is_never_joined_even_while_its_window_is_open() -> None:
    j = PartitionJoin(rules(keep_late_outcomes=True, window=100.0))
    feed(j).prediction(pred("a", 100.0))
    feed(j).outcome(click("x", 150.0))
    late = click("a", 140.0)  # in a's window, but 10 s behind its input's frontier
    feed(j).outcome(late)
    assert j.counters["late_outcomes"] == 1 and j.late_outcomes == [(late, 100.0)]
    assert labels_of(j.drain()) == {"a": (False,)}


def test_an_on_time_outcome_after_an_idle_close_is_the_audit_counter() -> None:
    j = PartitionJoin(rules(keep_late_outcomes=True))
    feed(j).prediction(pred("a", 100.0))
    feed(j).outcome(click("x", 100.0))
    j.watermark.update(("p", 0), 140.0, idle=True)  # idleness moved both inputs on
    j.watermark.update(("o", 0), 140.0, idle=True)
    assert labels_of(j.advance()) == {"a": (False,)}
    feed(j).outcome(click("a", 105.0))  # on time for its input (frontier 100): too early a close
    assert j.counters["outcomes_after_close"] == 1 and j.counters["late_outcomes"] == 0


def test_a_late_prediction_is_refused_and_counted() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("z", 200.0))
    assert feed(j).prediction(pred("a", 100.0)) is False, "100 s behind its input: refused"
    assert j.counters["late_predictions"] == 1 and "a" not in j.pending


def test_several_label_columns_per_row() -> None:
    specs = (LabelSpec("clicked", "click", "any"), LabelSpec("clicks", "click", "count"),
             LabelSpec("revenue", "purchase", "sum"), LabelSpec("delay", "*", "first_delay"))
    j = PartitionJoin(rules(labels=specs, lateness=5.0))
    feed(j).prediction(pred("a", 100.0))
    feed(j).outcome(click("a", 103.0))
    feed(j).outcome(click("a", 104.0, outcome_id="x"))
    feed(j).outcome(click("a", 102.0, kind="purchase", value=12.5))
    feed(j).outcome(click("a", 106.0, kind="purchase", value=7.5))
    (row,) = j.drain()
    assert row.labels == (True, 2, 20.0, pytest.approx(2.0))


def test_snapshot_restore_gives_the_same_rows() -> None:
    r = rules(lateness=5.0)
    a = PartitionJoin(r)
    events = [pred("a", 100.0), click("a", 103.0), click("b", 99.5), pred("c", 104.0),
              pred("z", 121.0), click("w", 121.0)]  # watermark 116 > 110: a closes
    for e in events:
        (feed(a).prediction if isinstance(e, Prediction) else feed(a).outcome)(e)  # type: ignore[operator]
    first = labels_of(a.advance())
    b = reborn(a, r)
    tail = [pred("b", 100.5), click("c", 106.0), pred("y", 200.0)]
    for join in (a, b):
        for e in tail:
            (feed(join).prediction if isinstance(e, Prediction)  # type: ignore[operator]
             else feed(join).outcome)(e)
    assert labels_of(a.drain()) == labels_of(b.drain())
    assert first == {"a": (True,), "c": (False,)}


def test_drain_closes_everything_and_the_watermark_is_infinite() -> None:
    j = PartitionJoin(rules())
    for i in range(5):
        feed(j).prediction(pred(f"p{i}", 100.0 + i))
    assert len(j.drain()) == 5
    assert j.pending_count == 0
    assert j.watermark.last_value == math.inf


def test_a_drain_is_not_carried_into_the_next_run() -> None:
    j = PartitionJoin(rules())
    feed(j).prediction(pred("a", 100.0))
    j.drain()
    restored = reborn(j, rules())
    assert math.isfinite(restored.watermark.last_value)
    feed(restored).prediction(pred("b", 200.0))
    feed(restored).outcome(click("c", 203.0))  # early, for a prediction still to come
    assert restored.advance() == []
    assert restored.counters["late_predictions"] == 0 and restored.counters["early_expired"] == 0


def test_a_redelivered_outcome_after_the_close_is_a_duplicate_not_late() -> None:
    j = PartitionJoin(rules(keep_late_outcomes=True))
    feed(j).prediction(pred("a", 100.0))
    feed(j).outcome(click("a", 103.0, outcome_id="o1"))
    tick(j, 120.0)
    assert labels_of(j.advance()) == {"a": (True,)}
    late = click("a", 105.0, outcome_id="o2")
    for outcome in (click("a", 103.0, outcome_id="o1"), late, late):
        feed(j).outcome(outcome)
    assert j.counters["late_outcomes"] == 1
    assert j.late_outcomes == [(late, 100.0)]
    assert j.counters["duplicate_outcomes"] == 2
    restored = reborn(j)
    feed(restored).outcome(click("a", 103.0, outcome_id="o1"))
    assert restored.counters["duplicate_outcomes"] == 1 and restored.late_outcomes == []


