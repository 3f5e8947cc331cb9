"""The drift monitor, end to end on canonical predictions and labels."""

import random
from typing import Literal

import pytest

from drift.monitor import DriftMonitor
from drift.settings import (
    DriftSettings,
    FeatureOverride,
    LabelSettings,
    PredictionSettings,
    SamplingSettings,
)
from ingest.records import Prediction, SourceRef


def prediction(i: int, features: dict, prediction: dict | None = None, model: str = "ctr"):
    return Prediction(f"r{i}", 1_700_000_000.0 + i, model, "v1", features, prediction or {})


def drive(monitor: DriftMonitor, make, n: int, model: str = "ctr") -> list:
    events = []
    for i in range(n):
        feats, pred = make(i)
        src = SourceRef("raw.predictions", 0, i)
        events.extend(monitor.observe_prediction(prediction(i, feats, pred, model), src))
    return events


def test_numeric_feature_shift_is_one_data_event_with_its_evidence() -> None:
    rng = random.Random(0)
    m = DriftMonitor()

    def make(i):
        return {"price": rng.gauss(20 if i < 5000 else 23, 3), "qty": rng.gauss(1, 1)}, {}

    events = drive(m, make, 12_000)
    assert len(events) == 1
    e = events[0]
    assert (e.model, e.kind, e.stream, e.feature) == ("ctr", "data", "mean", "price")
    i = int(e.source.rsplit("@", 1)[1])
    assert e.source == f"raw.predictions[0]@{i}" and e.event_time == 1_700_000_000.0 + i
    assert 5000 <= i < 5000 + 300
    assert e.reference["mean"] == pytest.approx(20, abs=0.5)
    assert e.current["mean"] > 21.5
    assert e.to_dict()["event"] == "drift"
    assert list(m.history) == events and m.counts["data"] == 1


def test_score_and_class_predictions_give_prediction_events() -> None:
    rng = random.Random(1)
    s = DriftSettings(prediction=PredictionSettings(fields=("score", "label")))
    m = DriftMonitor(s)

    def make(i):
        late = i >= 4000
        score = rng.betavariate(5 if late else 2, 5)
        label = rng.choices(["buy", "skip"], weights=[0.7, 0.3] if late else [0.3, 0.7])[0]
        return {}, {"score": score, "label": label}

    events = drive(m, make, 9000)
    got = {(e.kind, e.feature, e.stream) for e in events}
    assert got == {("prediction", "score", "mean"), ("prediction", "label", "distribution")}


def test_categorical_feature_shift_is_reported_in_linf() -> None:
    rng = random.Random(2)
    m = DriftMonitor()

    def make(i):
        w = [0.5, 0.3, 0.2] if i < 5000 else [0.3, 0.3, 0.4]
        return {"country": rng.choices(["DE", "FR", "IT"], weights=w)[0]}, {}

    events = drive(m, make, 9000)
    assert len(events) == 1
    e = events[0]
    assert (e.kind, e.feature, e.statistic_name) == ("data", "country", "linf")
    assert e.statistic >= e.threshold == 0.05
    assert dict(e.reference["top"])["DE"] == pytest.approx(0.5, abs=0.05)


def test_stationary_traffic_raises_nothing() -> None:
    rng = random.Random(3)
    m = DriftMonitor()

    def make(i):
        feats: dict[str, object] = {f"x{j}": rng.gauss(0, 1) for j in range(5)}
        feats.update(flag=rng.random() < 0.3, city=rng.choice("abcd"), n=rng.randint(0, 5))
        return feats, {"score": rng.random()}

    assert drive(m, make, 40_000) == []
    assert not m.counts


def test_features_appearing_later_and_models_are_watched_separately() -> None:
    rng = random.Random(4)
    m = DriftMonitor()

    def make(i):
        feats = {"a": rng.gauss(0, 1)}
        if i >= 2000:
            feats["late"] = rng.gauss(0 if i < 7000 else 5, 1)
        return feats, {}

    events = drive(m, make, 10_000, model="m1")
    events += drive(m, lambda i: ({"late": rng.gauss(0, 1)}, {}), 10_000, model="m2")
    assert [(e.model, e.feature) for e in events] == [("m1", "late")]


def test_a_non_numeric_value_in_a_numeric_feature_is_one_schema_event() -> None:
    rng = random.Random(5)
    m = DriftMonitor()

    def make(i):
        return {"price": "n/a" if i % 100 == 7 and i > 3000 else rng.gauss(0, 1)}, {}

    events = drive(m, make, 6000)
    assert [(e.kind, e.stream, e.feature) for e in events] == [("schema", "type_mismatch", "price")]
    # Dated by the record that showed it, not by the end of its block.
    assert events[0].event_time == 1_700_000_000.0 + 3007
    assert events[0].source == "raw.predictions[0]@3007"


def test_schema_events_from_upstream_are_deduplicated_per_cooldown() -> None:
    m = DriftMonitor(DriftSettings(schema_cooldown_s=60.0))
    first = m.observe_schema_skew("ctr", 100.0, "missing_feature", "age", "absent")
    assert len(first) == 1 and first[0].statistic == 1.0 and first[0].detail == "absent"
    assert m.observe_schema_skew("ctr", 110.0, "missing_feature", "age", "absent") == []
    assert m.observe_schema_skew("ctr", 120.0, "missing_feature", "age", "absent") == []
    assert m.observe_schema_skew("ctr", 120.0, "missing_feature", "zip", "absent")
    again = m.observe_schema_skew("ctr", 161.0, "missing_feature", "age", "absent")
    assert len(again) == 1 and again[0].statistic == 3.0  # two suppressed + this one
    assert m.counts["schema"] == 3


def test_label_rate_change_is_a_concept_event() -> None:
    rng = random.Random(6)
    m = DriftMonitor()
    events = []
    for i in range(20_000):
        p = 0.1 if i < 8000 else 0.3
        events += m.observe_label("ctr", float(i), None, rng.random() < p)
    assert [(e.kind, e.stream, e.feature) for e in events] == [
        ("concept", "positive_rate", "label")
    ]
    assert events[0].reference["rate"] == pytest.approx(0.1, abs=0.03)


@pytest.mark.parametrize("error", ["threshold", "log_loss"])
def test_error_stream_finds_a_model_that_stopped_working(
    error: Literal["threshold", "log_loss"],
) -> None:
    rng = random.Random(7)
    m = DriftMonitor(DriftSettings(labels=LabelSettings(error=error)))
    events = []
    for i in range(20_000):
        score = rng.random()
        # The label follows the score until 8000, then the concept flips for
        # both outer thirds: the error rate rises, the positive rate does not.
        label = rng.random() < score
        if i >= 8000 and (score > 0.66 or score < 0.34):
            label = rng.random() < 1.0 - score
        events += m.observe_label("ctr", float(i), score, label)
    streams = [e.stream for e in events]
    assert "error_rate" in streams
    first = next(e for e in events if e.stream == "error_rate")
    assert first.event_time >= 8000
    assert first.current["rate"] > first.reference["rate"]


def test_sampling_watches_every_kth_prediction() -> None:
    rng = random.Random(8)
    m = DriftMonitor(DriftSettings(sampling=SamplingSettings(every=4)))

    def make(i):
        return {"x": rng.gauss(0 if i < 20_000 else 2, 1)}, {}

    events = drive(m, make, 40_000)
    assert len(events) == 1 and events[0].feature == "x"
    assert int(events[0].source.rsplit("@", 1)[1]) >= 20_000


def test_disabled_features_and_disabled_monitor_are_silent() -> None:
    rng = random.Random(9)

    def make(i):
        return {"x": rng.gauss(0 if i < 3000 else 5, 1)}, {}

    off = DriftSettings(features={"x": FeatureOverride(enabled=False)})
    assert drive(DriftMonitor(off), make, 8000) == []
    assert drive(DriftMonitor(DriftSettings(enabled=False)), make, 8000) == []
    assert drive(DriftMonitor(), make, 8000)


def test_flush_processes_the_partial_block() -> None:
    m = DriftMonitor()
    for i in range(5):
        m.observe_prediction(prediction(i, {"x": float(i)}))
    assert m.flush() == []
    assert m.flush() == []  # nothing left


def test_missing_and_null_values_do_not_break_the_block() -> None:
    rng = random.Random(10)
    m = DriftMonitor()

    def make(i):
        feats = {"x": rng.gauss(0, 1), "c": rng.choice("ab")}
        if i % 3 == 0:
            del feats["x"]
        if i % 5 == 0:
            feats["c"] = None
        if i % 7 == 0:
            feats["x"] = None
        return feats, {"score": None if i % 11 == 0 else rng.random()}

    assert drive(m, make, 20_000) == []


def test_flush_also_counts_a_pending_categorical_block() -> None:
    rng = random.Random(11)
    m = DriftMonitor()
    events = []
    for i in range(9000):
        w = [0.5, 0.3, 0.2] if i < 5000 else [0.2, 0.3, 0.5]
        p = prediction(i, {"c": rng.choices("abc", weights=w)[0]})
        events += m.observe_prediction(p)
        if i % 100 == 99:
            events += m.flush()  # partial blocks, numeric and categorical
    assert [(e.feature, e.stream) for e in events] == [("c", "distribution")]


def test_state_round_trip_gives_exactly_the_events_of_an_uninterrupted_monitor() -> None:
    import msgpack

    def make(i: int):
        rng = random.Random(i)  # per-event seed: both runs see the same stream
        late = i >= 6000
        feats: dict[str, object] = {"price": rng.gauss(23 if late else 20, 3),
                                    "flag": 1.0 if rng.random() < (0.02 if i >= 9000 else 0.001)
                                    else 0.0,
                                    "country": rng.choices("abc", [0.2, 0.3, 0.5] if late
                                                           else [0.5, 0.3, 0.2])[0]}
        if i >= 3000:
            feats["late"] = rng.gauss(0, 1)
        return feats, {"score": rng.betavariate(2, 5)}

    def label(i: int) -> bool:
        return random.Random(-i).random() < (0.3 if i >= 7000 else 0.1)

    def run(monitor: DriftMonitor, start: int, stop: int) -> list[dict]:
        out = []
        for i in range(start, stop):
            feats, pred = make(i)
            src = SourceRef("raw.predictions", 0, i)
            out += monitor.observe_prediction(prediction(i, feats, pred), src)
            out += monitor.observe_label("ctr", float(i), None, label(i), src)
        return [e.to_dict() for e in out]

    whole = run(DriftMonitor(), 0, 14_000)
    assert {(e["feature"], e["stream"]) for e in whole} >= {
        ("price", "mean"), ("country", "distribution"), ("label", "positive_rate"),
        ("flag", "rate")}
    for cut in (500, 3007, 6100, 9050):
        first = DriftMonitor()
        got = run(first, 0, cut)
        second = DriftMonitor()
        second.restore(msgpack.unpackb(msgpack.packb(first.state()), strict_map_key=False))
        got += run(second, cut, 14_000)
        assert got == whole, cut
