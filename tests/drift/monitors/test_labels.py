"""Concept drift streams of one model: positive rate and errors."""

import math
import random
from collections.abc import Callable

import msgpack
import pytest

from drift.monitors.labels import LabelDrift, binary_llr, log_loss
from drift.monitors.rates import threshold
from drift.settings import BinaryName, LabelSettings

Concept = Callable[[random.Random, int], tuple[float, bool]]


def calibrated_until(change: int) -> Concept:
    """A calibrated score until ``change``; then the label flips for both tails of the
    score (the error rate rises, the positive rate stays about 0.5)."""

    def example(rng: random.Random, i: int) -> tuple[float, bool]:
        score = rng.random()
        flip = i >= change and (score > 0.7 or score < 0.3)
        return score, rng.random() < (1.0 - score if flip else score)

    return example


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
    assert ld._loss_cut > 0
    # The warm-up is the joint test's first history, errors counted against the cut.
    assert ld._joint is not None
    counts = ld._joint.test.counts()
    assert sum(counts) == 2000
    assert (counts[1] + counts[3]) / 2000 == pytest.approx(0.2, abs=0.01)


def test_log_loss_errors_with_a_river_detector_too() -> None:
    rng = random.Random(1)
    s = LabelSettings(error="log_loss", loss_quantile=0.8, error_detector="ADWIN")
    ld = LabelDrift(s, warmup=2000, min_samples=0, cooldown=0)
    for _ in range(2000):
        score = rng.random()
        assert ld.update(score, rng.random() < score) == []
    assert ld._error is not None
    assert ld._error.ref["rate"] == pytest.approx(0.2, abs=0.01)
    assert ld._error.ref["loss_cut"] > 0


@pytest.mark.parametrize("name", ["DDM", "HDDM_A", "FHDDM", "ADWIN", "GLR"])
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


@pytest.mark.parametrize("rate", ["GLR", "ADWIN"])
def test_a_river_error_detector_beside_a_glr_or_river_rate(rate: BinaryName) -> None:
    rng = random.Random(3)
    ld = LabelDrift(LabelSettings(rate_detector=rate, error_detector="ADWIN"),
                    warmup=1000, min_samples=0, cooldown=0)
    example = calibrated_until(6000)
    streams = [a.stream for i in range(15_000) for a in ld.update(*example(rng, i))]
    assert "error_rate" in streams and "positive_rate" not in streams


def test_one_joint_test_reports_the_stream_that_moved() -> None:
    example = calibrated_until(6000)
    for seed in range(5):
        rng = random.Random(10 + seed)
        ld = LabelDrift(LabelSettings(), warmup=1000, min_samples=64, cooldown=2000)
        alarms = [(i, a) for i in range(12_000) for a in ld.update(*example(rng, i))]
        assert len(alarms) == 1
        i, alarm = alarms[0]
        assert 6000 < i < 7000
        assert alarm.stream == "error_rate"
        assert alarm.current["rate"] > alarm.reference["rate"]
        assert alarm.current["positive_rate"] == pytest.approx(0.5, abs=0.1)
        f = alarm.firing
        assert (f.detector, f.statistic_name, f.direction) == ("GLR", "log_likelihood_ratio", 1)
        assert f.statistic >= f.threshold
        # 1 per 10^6 labels, one check per 32 labels, Bonferroni over its splits.
        assert threshold(3, 1e-6 * 32) < f.threshold < threshold(3, 1e-6 * 32 / 1000)
        # The error rate's own evidence at the split beats the positive rate's.
        ref, cur = alarm.reference, alarm.current
        na, nb = int(ref["n"]), int(cur["n"])
        llr = {s: binary_llr(round(ref[s] * na), na, round(cur[s] * nb), nb)
               for s in ("error_rate", "positive_rate")}
        assert llr["error_rate"] > llr["positive_rate"]
        assert f.recent == nb and f.n >= na + nb


def test_stationary_labels_with_scores_raise_nothing() -> None:
    rng = random.Random(4)
    ld = LabelDrift(LabelSettings(), warmup=1000, min_samples=64, cooldown=2000)
    example = calibrated_until(10**9)
    assert [a for i in range(150_000) for a in ld.update(*example(rng, i))] == []


@pytest.mark.parametrize(("rate", "error", "kind"), [
    ("GLR", "GLR", "threshold"), ("GLR", "GLR", "log_loss"), ("GLR", "ADWIN", "threshold"),
    ("ADWIN", "GLR", "log_loss"), ("ADWIN", "ADWIN", "threshold")])
def test_state_round_trip_continues_exactly(rate: BinaryName, error: BinaryName,
                                            kind: str) -> None:
    settings = LabelSettings(rate_detector=rate, error_detector=error, error=kind)  # type: ignore[arg-type]
    rng = random.Random(5)
    example = calibrated_until(9000)
    data = [example(rng, i) for i in range(16_000)]
    # Some labels come without a score (the label-only test).
    data = [(None if i % 7 == 0 else s, y) for i, (s, y) in enumerate(data)]
    for cut in (500, 8_000):  # inside the warm-up, and armed
        a = LabelDrift(settings, warmup=1000, min_samples=64, cooldown=2000)
        for s, y in data[:cut]:
            a.update(s, y)
        b = LabelDrift(settings, warmup=1000, min_samples=64, cooldown=2000)
        b.restore(msgpack.unpackb(msgpack.packb(a.state())))
        got_a = [(i, x) for i, (s, y) in enumerate(data[cut:]) for x in a.update(s, y)]
        got_b = [(i, x) for i, (s, y) in enumerate(data[cut:]) for x in b.update(s, y)]
        assert got_a and got_a == got_b


def test_a_state_saved_with_adwin_restores_into_the_glr_default() -> None:
    rng = random.Random(8)
    example = calibrated_until(4000)
    old = LabelDrift(LabelSettings(rate_detector="ADWIN", error_detector="ADWIN"),
                     warmup=1000, min_samples=64, cooldown=2000)
    for i in range(3000):
        old.update(*example(rng, i))
    new = LabelDrift(LabelSettings(), warmup=1000, min_samples=64, cooldown=2000)
    new.restore(msgpack.unpackb(msgpack.packb(old.state())))
    # The joint test starts afresh (warm-up from here) and still finds the change.
    alarms = [(i, a) for i in range(3000, 10_000) for a in new.update(*example(rng, i))]
    assert alarms and alarms[0][1].stream == "error_rate" and 4000 < alarms[0][0] < 5500
