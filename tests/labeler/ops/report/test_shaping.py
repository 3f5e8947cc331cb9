"""The numbers the report draws, from hand-made rows and events (no files, no browser)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from drift.baseline.profile import build_profile
from drift.baseline.skew import js_divergence
from drift.monitors.categorical import linf_distance
from labeler.ops.report.shaping import (
    choose_bucket,
    compare_features,
    dead_letters,
    event_rows,
    label_column,
    reference_profile,
    score_by_label,
    score_column,
    status_series,
    volume,
)
from labeler.ops.report.sources import DeadLetterRecord

T0 = 1_718_000_000.0  # 2024-06-10T06:13:20Z


def rows(n: int, spacing: float = 1.0, seed: int = 3, shift_after: int | None = None
         ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    country = rng.choice(["DE", "US", "FR"], size=n, p=[0.5, 0.3, 0.2])
    if shift_after is not None:
        x[shift_after:] += 2.0
        country[shift_after:] = "US"
    score = rng.uniform(size=n)
    return pd.DataFrame({
        "prediction_id": [f"p{i}" for i in range(n)],
        "model": "ctr",
        "event_time": pd.to_datetime(T0 + np.arange(n) * spacing, unit="s", utc=True),
        "feat_x": x, "feat_country": country, "pred_score": score,
        "label_clicked": rng.uniform(size=n) < score, "label_revenue": np.zeros(n),
    })


def test_buckets_are_hourly_when_there_are_enough_hours_else_finer() -> None:
    assert choose_bucket(48 * 3600) == 3600
    assert choose_bucket(23 * 3600) == 900
    assert choose_bucket(30 * 60) == 60
    assert choose_bucket(5) == 10


def test_volume_counts_rows_and_positive_rate_per_bucket_keeping_empty_buckets() -> None:
    frame = pd.DataFrame({
        "event_time": pd.to_datetime([T0, T0 + 10, T0 + 3 * 3600 + 1], unit="s", utc=True),
        "label_clicked": [True, False, True],
    })
    v = volume(frame, "label_clicked", bucket_s=3600)
    assert v.rows == [2, 0, 0, 1]
    assert v.positive_rate == [0.5, None, None, 1.0]
    assert v.starts[0] == math.floor(T0 / 3600) * 3600
    assert volume(frame, None, bucket_s=3600).positive_rate == [None] * 4


def test_the_label_and_score_columns_are_the_first_boolean_label_and_numeric_prediction() -> None:
    frame = rows(10)
    assert label_column(frame) == "label_clicked"
    assert label_column(frame, "revenue") == "label_revenue"
    assert label_column(frame, "nope") is None
    assert score_column(frame) == "pred_score"
    assert label_column(frame.drop(columns=["label_clicked"])) is None


def test_drift_events_of_the_model_in_time_order_with_a_sentence() -> None:
    events = [
        {"model": "ctr", "kind": "concept", "stream": "positive_rate", "feature": "clicked",
         "detector": "ADWIN", "statistic_name": "epsilon", "statistic": 0.2, "threshold": 0.1,
         "event_time": T0 + 50, "reference": {"rate": 0.1}, "current": {"rate": 0.3}},
        {"model": "other", "kind": "data", "event_time": T0},
        {"model": "ctr", "kind": "data", "stream": "mean", "feature": "x", "detector": "CUSUM",
         "statistic_name": "cumulative_deviation", "statistic": 9.0, "threshold": 8.0,
         "event_time": T0 + 10, "detail": None},
    ]
    got = event_rows(events, "ctr")
    assert [r["kind"] for r in got] == ["data", "concept"]
    assert got[0]["time"] == "2024-06-10T06:13:30.000Z"
    assert got[0]["x"] == "2024-06-10T06:13:30.000"
    assert "x mean changed" in got[0]["sentence"] and "9 >= 8" in got[0]["sentence"]
    assert "from rate 0.1 to rate 0.3" in got[1]["sentence"]


def test_features_against_the_warm_up_use_the_skew_checks_distances() -> None:
    frame = rows(4000, shift_after=3000)
    profile, current = reference_profile(frame, 1000)
    assert len(current) == 1000 and current.index[0] == 3000
    by_name = {c.feature: c for c in compare_features(current, profile)}
    x, country = by_name["x"], by_name["country"]
    spec = profile["features"]["x"]["numeric"]["histogram"]
    served = np.bincount(np.searchsorted(spec["edges"], current["feat_x"], side="right"),
                         minlength=len(spec["edges"]) + 1)
    assert x.distance == pytest.approx(js_divergence(spec["counts"], served))
    assert x.distance > x.threshold  # +2 sigma is far
    assert len(x.bins) == len(x.reference) == len(x.current) == len(spec["edges"]) + 1
    assert sum(x.reference) == pytest.approx(1.0) and sum(x.current) == pytest.approx(1.0)
    shares = dict(profile["features"]["country"]["categorical"]["top"])
    assert country.distance == pytest.approx(linf_distance({"US": 1.0}, shares)[0])
    assert dict(zip(country.bins, country.current, strict=True))["US"] == 1.0
    assert [c.feature for c in compare_features(current, profile)][0] in ("x", "country")


def test_without_a_change_the_distances_stay_under_the_thresholds() -> None:
    frame = rows(4000)
    profile, current = reference_profile(frame, 1000)
    for c in compare_features(current, profile):
        assert c.distance < c.threshold, c


def test_a_baseline_profile_is_the_reference_and_features_it_lacks_are_left_out() -> None:
    training = rows(2000, seed=9).rename(columns=lambda c: c.replace("feat_", ""))
    profile = build_profile(training, ["x"])
    got = compare_features(rows(500), profile)
    assert [c.feature for c in got] == ["x"]


def test_a_short_dataset_compares_its_halves() -> None:
    profile, current = reference_profile(rows(300), 1000)
    assert len(current) == 150 and "x" in profile["features"]


def test_score_histograms_by_label_and_the_calibration_curve() -> None:
    frame = pd.DataFrame({"pred_score": [0.05, 0.15, 0.15, 0.95, 0.85],
                          "label_clicked": [False, False, True, True, True]})
    s = score_by_label(frame, "pred_score", "label_clicked", bins=10, calibration_bins=10)
    assert s.edges[0] == 0.0 and s.edges[-1] == 1.0
    assert sum(s.positives) == 3 and sum(s.negatives) == 2
    assert s.negatives[0] == 1 and s.negatives[1] == 1 and s.positives[1] == 1
    assert s.bin_rows == [1, 2, 1, 1]
    assert s.positive_rate == [0.0, 0.5, 1.0, 1.0]
    assert s.mean_score[1] == pytest.approx(0.15)


def test_dead_letters_by_reason_over_time() -> None:
    records = [DeadLetterRecord("not_json", "p", T0), DeadLetterRecord("not_json", "p", T0 + 1),
               DeadLetterRecord("missing_time", "p", T0 + 45)]
    d = dead_letters(records)
    assert d.totals == {"not_json": 2, "missing_time": 1}
    assert d.bucket_s == 10
    assert sum(d.series["not_json"]) == 2 and sum(d.series["missing_time"]) == 1
    assert len(d.starts) == len(d.series["not_json"])
    assert dead_letters([]).totals == {}


def test_status_series_follow_the_status_lines_in_time_order() -> None:
    got = status_series([{"ts": 2.0, "late_outcomes": 5}, {"ts": 1.0, "late_outcomes": 2},
                         {"no_ts": True}], names=("late_outcomes", "early_expired"))
    assert got["t"] == [1.0, 2.0]
    assert got["counters"] == {"late_outcomes": [2, 5], "early_expired": [0, 0]}
