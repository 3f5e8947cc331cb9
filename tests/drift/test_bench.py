"""Figures for the drift monitor's cost and quality (printed, never asserted on time)."""

import random
import time

import pytest

from drift.evaluation.evaluate import format_table, run_evaluation
from drift.monitor import DriftMonitor
from ingest.records import Prediction, SourceRef


@pytest.mark.bench
def test_cost_per_prediction_with_20_numeric_and_5_categorical_features() -> None:
    rng = random.Random(1)
    n = 50_000
    preds = []
    for i in range(n):
        features: dict[str, object] = {f"n{j}": rng.gauss(0, 1) for j in range(20)}
        features.update({f"c{j}": rng.choice("abcde") for j in range(5)})
        preds.append(Prediction(str(i), float(i), "m", "v1", features, {"score": rng.random()}))
    src = SourceRef("raw", 0, 0)
    monitor = DriftMonitor()
    start = time.process_time()
    for p in preds:
        monitor.observe_prediction(p, src)
    per = (time.process_time() - start) / n * 1e6
    print(f"\ndrift monitoring: {per:.2f} us/prediction (20 numeric, 5 categorical, score)")
    assert not monitor.counts  # stationary traffic


@pytest.mark.slow
def test_full_evaluation_meets_the_goals() -> None:
    rows = run_evaluation("full", river_baselines=False)
    print("\n" + format_table(rows))
    for r in rows:
        assert r.false_alarms == 0, r
        if r.scenario.startswith("categorical 2nd shift"):
            # the known shortfall (README, Evaluation): a second shift right after a late
            # first alarm is measured against a 512-event relearned reference
            assert r.missed <= 1, r
        else:
            assert r.missed == 0, r
    delay = {r.scenario: r.median_delay for r in rows}
    assert delay["mean shift 0.5 sd"] <= 160
    assert delay["categorical linf 0.1"] <= 600
