"""Training/serving skew: schema mismatches and distribution skew against a profile."""

import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from drift.baseline.profile import build_profile
from drift.baseline.skew import SkewChecker, js_divergence, type_mismatch
from drift.monitor import DriftMonitor
from drift.settings import CategoricalSettings, DriftSettings, FeatureOverride, SkewSettings
from ingest.records import Prediction, SourceRef


def training(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "feat_price": rng.normal(20.0, 3.0, n),
            "feat_age": rng.integers(18, 80, n),
            "feat_country": rng.choice(["DE", "FR", "IT"], n, p=[0.5, 0.3, 0.2]),
            "feat_coupon": rng.choice(["none", "10off"], n, p=[0.9, 0.1]),
        }
    )


PROFILE = build_profile(training(), prefix="feat_")


def serve(monitor: DriftMonitor, make, n: int) -> list:
    events = []
    for i in range(n):
        p = Prediction(f"r{i}", float(i), "ctr", "v1", make(i), {})
        events.extend(monitor.observe_prediction(p, SourceRef("raw", 0, i)))
    return events


def test_js_divergence_bounds_and_symmetry() -> None:
    assert js_divergence([5, 5], [1, 1]) == 0.0
    assert js_divergence([1, 0, 0], [0, 0, 1]) == pytest.approx(1.0)
    p, q = [3, 1, 1], [1, 2, 5]
    assert 0 < js_divergence(p, q) < 1
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p))
    assert np.isnan(js_divergence([0, 0], [1, 1]))


def test_type_mismatch_rules() -> None:
    assert not type_mismatch("float", "int")
    assert not type_mismatch("int", "float")  # judged on the values
    assert type_mismatch("int", "string") and type_mismatch("string", "int")
    assert type_mismatch("bool", "string") and not type_mismatch("string", "string")


def test_schema_mismatch_between_training_and_serving() -> None:
    rng = random.Random(0)
    m = DriftMonitor(DriftSettings(skew=SkewSettings(window=2000)), profiles={"*": PROFILE})

    def make(i):
        return {
            "price": rng.gauss(20.0, 3.0),
            "age": str(rng.randint(18, 80)),  # trained as int, served as text
            "country": rng.choices(["DE", "FR", "IT"], weights=[0.5, 0.3, 0.2])[0],
            "device": rng.choice(["ios", "android"]),  # not in training
            # "coupon" is never served
        }

    events = serve(m, make, 4000)
    schema = {(e.stream, e.feature) for e in events if e.kind == "schema"}
    assert schema == {
        ("type_mismatch", "age"),
        ("new_feature", "device"),
        ("missing_feature", "coupon"),
    }
    assert all(e.kind == "schema" for e in events)  # price and country match training


def test_distribution_skew_and_unseen_categories() -> None:
    rng = random.Random(1)
    m = DriftMonitor(DriftSettings(skew=SkewSettings(window=3000)), profiles={"ctr": PROFILE})

    def make(i):
        return {
            "price": rng.gauss(26.0, 3.0),  # two sd above training
            "age": rng.randint(18, 80),
            "country": rng.choices(["DE", "FR", "IT", "ES"], weights=[0.2, 0.3, 0.2, 0.3])[0],
            "coupon": rng.choice(["none", "10off"]),
        }

    events = [e for e in serve(m, make, 3200) if e.kind in ("skew", "schema")]
    got = {(e.kind, e.stream, e.feature) for e in events}
    assert got == {
        ("skew", "distribution", "price"),
        ("skew", "distribution", "country"),
        ("skew", "distribution", "coupon"),
        ("schema", "unseen_categories", "country"),
    }
    price = next(e for e in events if e.feature == "price")
    assert price.statistic_name == "jensen_shannon" and price.statistic > price.threshold
    assert price.reference["mean"] == pytest.approx(20.0, abs=0.3)
    assert price.current["mean"] == pytest.approx(26.0, abs=0.3)


def test_serving_like_training_gives_no_findings() -> None:
    rng = np.random.default_rng(2)
    checker = SkewChecker(PROFILE, SkewSettings(window=4000))
    sample = training(4000, seed=9)
    matrix = sample[["feat_price", "feat_age"]].to_numpy(dtype=float)
    assert checker.add_block(["price", "age"], matrix)
    checker.add_categories(
        4000,
        {"country": Counter(sample["feat_country"]), "coupon": Counter(sample["feat_coupon"])},
    )
    assert checker.evaluate() == []
    assert rng is not None


def test_a_finding_is_reported_when_it_starts_and_again_only_after_clearing() -> None:
    checker = SkewChecker(PROFILE, SkewSettings(window=1000))
    rng = np.random.default_rng(3)

    def window(shift: float) -> list:
        x = np.column_stack([rng.normal(20 + shift, 3, 1000), rng.integers(18, 80, 1000)])
        checker.add_block(["price", "age"], x.astype(float))
        checker.add_categories(1000, {"country": Counter({"DE": 500, "FR": 300, "IT": 200})})
        return [(f.check, f.feature) for f in checker.evaluate()]

    assert ("distribution", "price") in window(6.0)
    assert ("distribution", "price") not in window(6.0)  # still skewed: same episode
    assert ("distribution", "price") not in window(0.0)  # cleared
    assert ("distribution", "price") in window(6.0)  # a new episode


def test_per_feature_skew_threshold() -> None:
    rng = random.Random(4)
    lax = DriftSettings(
        skew=SkewSettings(window=3000), features={"price": FeatureOverride(skew_threshold=0.99)}
    )
    m = DriftMonitor(lax, profiles={"*": PROFILE})

    def make(i):
        return {
            "price": rng.gauss(26.0, 3.0),
            "age": rng.randint(50, 90),
            "country": rng.choices(["DE", "FR", "IT"], weights=[0.5, 0.3, 0.2])[0],
            "coupon": rng.choices(["none", "10off"], weights=[0.9, 0.1])[0],
        }

    events = serve(m, make, 3200)
    # price is as skewed as age, but its threshold lets it through.
    assert [e.feature for e in events if e.kind == "skew"] == ["age"]


def test_baseline_reference_for_categorical_drift() -> None:
    rng = random.Random(5)
    s = DriftSettings(
        categorical=CategoricalSettings(reference="baseline"),
        skew=SkewSettings(enabled=True, window=10**9),
    )
    m = DriftMonitor(s, profiles={"*": PROFILE})

    def make(i):
        # Served shares differ from training from the start: with a baseline
        # reference there is no warm-up to hide it.
        return {"country": rng.choices(["DE", "FR", "IT"], weights=[0.3, 0.3, 0.4])[0]}

    drift = [e for e in serve(m, make, 3000) if e.kind == "data"]
    assert [(e.feature, e.stream) for e in drift] == [("country", "distribution")]
    assert dict(drift[0].reference["top"])["DE"] == pytest.approx(0.5, abs=0.03)


def test_features_switched_off_are_not_reported_missing() -> None:
    rng = random.Random(6)
    s = DriftSettings(
        skew=SkewSettings(window=2000), features={"coupon": FeatureOverride(enabled=False)}
    )
    m = DriftMonitor(s, profiles={"*": PROFILE})

    def make(i):
        return {
            "price": rng.gauss(20.0, 3.0),
            "age": rng.randint(18, 80),
            "country": rng.choices(["DE", "FR", "IT"], weights=[0.5, 0.3, 0.2])[0],
            "coupon": rng.choice(["none", "10off"]),  # skewed, but switched off
        }

    assert serve(m, make, 4000) == []
