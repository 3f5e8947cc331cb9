"""Concept drift streams of one model: positive rate and errors."""

import math
import random

import pytest

from drift.monitors.labels import LabelDrift, log_loss
from drift.settings import BinaryName, LabelSettings


def test_log_loss_is_clipped_and_sided() -> None:
    assert log_loss(0.9, True) == pytest.approx(-math.log(0.9))
    assert log_loss(0.9, False) == pytest.approx(-math.log(0.1))
    assert math.isfinite(log_loss(0.0, True)) and math.isfinite(log_loss(1.0, False))


def test_without_scores_only_the_positive_rate_is_watched() -> None:
    rng = random.Random(0)
    ld = LabelDrift(LabelSettings(), warmup=500, min_samples=0, cooldown=0)
    alarms = []
    for i in range(12_000):
        score = None if i % 2 else math.nan
        alarms += ld.update(score, rng.random() < (0.1 if i < 5000 else 0.4))
    assert [a.stream for a in alarms] == ["positive_rate"]
    assert alarms[0].current["rate"] > alarms[0].reference["rate"]


def test_log_loss_errors_have_the_quantile_as_their_level() -> None:
    rng = random.Random(1)
    ld = LabelDrift(
        LabelSettings(error="log_loss", loss_quantile=0.8), warmup=2000, min_samples=0, cooldown=0
    )
    for _ in range(2000):
        s = rng.random()
        assert ld.update(s, rng.random() < s) == []
    assert ld._error.ref["rate"] == pytest.approx(0.2, abs=0.01)
    assert ld._error.ref["loss_cut"] > 0


@pytest.mark.parametrize("name", ["DDM", "HDDM_A", "FHDDM", "ADWIN"])
def test_any_configured_detector_finds_more_errors(name: BinaryName) -> None:
    rng = random.Random(2)
    s = LabelSettings(error_detector=name, rate_detector="ADWIN")
    ld = LabelDrift(s, warmup=1000, min_samples=0, cooldown=0)
    streams = []
    for i in range(15_000):
        score = rng.random()
        label = rng.random() < score if i < 6000 else rng.random() < 0.5
        streams += [a.stream for a in ld.update(score, label)]
    assert "error_rate" in streams
