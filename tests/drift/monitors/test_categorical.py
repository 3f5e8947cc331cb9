"""Categorical drift: L-infinity distance and the windowed detector."""

import random
from collections import Counter
from collections.abc import Hashable

import pytest

from drift.monitors.categorical import OTHER, CategoricalDrift, linf_distance, pool, shares
from drift.settings import CategoricalSettings

SETTINGS = CategoricalSettings()


def specs() -> list:
    s = SETTINGS
    out = [(s.detector.name, s.detector.params, s.detector.z_scale)]
    if s.backstop is not None:
        out.append((s.backstop.name, s.backstop.params, s.backstop.z_scale))
    return out


def make(threshold: float = 0.05, reference: dict | None = None,
         split: float = 0.0) -> CategoricalDrift:
    s = SETTINGS
    return CategoricalDrift(
        specs=specs(),
        window=s.window,
        threshold=threshold,
        z_clip=s.z_clip,
        max_categories=s.max_categories,
        min_expected=s.min_expected,
        block=s.block_size,
        top_k=5,
        warmup=1000,
        min_samples=64,
        cooldown=2000,
        reference=reference,
        split_false_alarms_per_million=split,
    )


def run(drift: CategoricalDrift, weights_at, events: int, seed: int = 0) -> list[int]:
    """Feed blocks drawn from weights_at(i); the event indices of the alarms."""
    rng = random.Random(seed)
    alarms = []
    k = SETTINGS.block_size
    for start in range(0, events, k):
        cats, weights = weights_at(start)
        block = Counter(rng.choices(cats, weights=weights, k=k))
        if drift.update(block) is not None:
            alarms.append(start + k - 1)
    return alarms


A = ("a", "b", "c", "d"), (0.4, 0.3, 0.2, 0.1)
B = ("a", "b", "c", "d"), (0.3, 0.3, 0.2, 0.2)  # L-infinity 0.1 from A


def test_linf_distance_is_the_largest_share_change() -> None:
    p = {"a": 0.5, "b": 0.5}
    assert linf_distance(p, p) == (0.0, None)
    dist, cat = linf_distance({"a": 0.7, "b": 0.3}, {"a": 0.4, "b": 0.6})
    assert dist == pytest.approx(0.3) and cat in ("a", "b")
    # A category on one side only counts with its whole share.
    assert linf_distance({"a": 1.0}, {"a": 0.7, "z": 0.3}) == (pytest.approx(0.3), "a")
    assert linf_distance({"a": 0.1, "new": 0.9}, {"a": 1.0}) == (pytest.approx(0.9), "a")
    assert linf_distance({"x": 1.0}, {"y": 1.0})[0] == 1.0


def test_linf_distance_is_symmetric() -> None:
    rng = random.Random(1)
    for _ in range(50):
        p = shares(Counter(rng.choices("abcdef", k=40)))
        q = shares(Counter(rng.choices("abcdxyz", k=40)))
        assert linf_distance(p, q)[0] == pytest.approx(linf_distance(q, p)[0])


def test_pool_folds_unknown_categories_into_other() -> None:
    ref: dict[Hashable, float] = {"a": 0.5, OTHER: 0.5}
    assert pool({"a": 0.2, "b": 0.3, "c": 0.5}, ref) == pytest.approx({"a": 0.2, OTHER: 0.8})
    assert pool({"b": 1.0}, {"a": 1.0}) == {"b": 1.0}


def test_detects_a_shift_of_0_1_within_a_few_hundred_events() -> None:
    drift = make()
    alarms = run(drift, lambda i: A if i < 5000 else B, 9000)
    assert len(alarms) == 1
    assert 5000 <= alarms[0] < 5000 + 1000


def test_alarm_reports_reference_and_current_top_categories() -> None:
    drift = make()
    rng = random.Random(3)
    alarm = None
    for start in range(0, 9000, 64):
        cats, w = A if start < 5000 else B
        alarm = drift.update(Counter(rng.choices(cats, weights=w, k=64))) or alarm
    assert alarm is not None
    assert alarm.distance >= alarm.threshold == 0.05
    ref = dict(alarm.reference["top"])
    cur = dict(alarm.current["top"])
    assert ref["a"] == pytest.approx(0.4, abs=0.05)
    assert cur["d"] == pytest.approx(0.2, abs=0.07)
    assert alarm.firing.detector in ("PageHinkley", "ADWIN")


def test_quiet_on_a_stationary_stream() -> None:
    cats = ("a", "b", "c", "d", "e", "f", "g")
    weights = (0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02)
    assert run(make(), lambda i: (cats, weights), 100_000, seed=5) == []


def test_a_lasting_shift_is_one_alarm_not_a_storm() -> None:
    # Against a fixed (training) reference the distance stays above the
    # threshold for ever; the episode still gives one alarm.
    drift = make(reference={"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1})
    alarms = run(drift, lambda i: A if i < 3000 else B, 40_000)
    assert len(alarms) == 1 and alarms[0] >= 3000


def test_changes_below_the_threshold_raise_nothing() -> None:
    drift = make(threshold=0.2)
    assert run(drift, lambda i: A if i < 5000 else B, 12_000) == []


def test_new_categories_land_in_other() -> None:
    drift = make()
    new = ("a", "b", "c", "d", "zz"), (0.25, 0.2, 0.15, 0.1, 0.3)
    alarms = run(drift, lambda i: A if i < 4000 else new, 8000)
    assert len(alarms) == 1
    assert "zz" in dict(drift.window_shares())


def make_armed(provisional: int = 256, reference: dict | None = None) -> CategoricalDrift:
    s = SETTINGS
    return CategoricalDrift(
        specs=specs(), window=s.window, threshold=0.05, z_clip=s.z_clip,
        max_categories=s.max_categories, min_expected=s.min_expected, block=s.block_size,
        top_k=5, warmup=1000, min_samples=64, cooldown=2000, reference=reference,
        provisional=provisional)


C = ("a", "b", "c", "d"), (0.05, 0.3, 0.2, 0.45)  # 'a' falls by 0.25 more from B


def test_a_second_change_soon_after_an_alarm_is_detected() -> None:
    for seed in range(5):
        drift = make_armed()
        first = run(drift, lambda i: A if i < 3000 else B, 3000 + 1200, seed=seed)
        assert len(first) == 1
        # the second change 300 events after the first alarm
        later = run(drift, lambda i: B if i < 300 else C, 1500, seed=seed + 100)
        assert later and later[0] < 1000, (seed, first, later)


def test_a_second_step_during_a_baseline_episode_is_detected() -> None:
    drift = make_armed(reference={"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1})
    first = run(drift, lambda i: A if i < 3000 else B, 5000, seed=7)
    assert len(first) == 1
    later = run(drift, lambda i: B if i < 300 else C, 3000, seed=8)
    assert len(later) == 1 and later[0] < 1000



def test_the_split_test_finds_second_shifts_the_reference_detectors_miss() -> None:
    """The evaluation's second categorical shifts (seed 0): one of them comes while the
    stream relearns after the first alarm; only the split test finds it in time."""
    from drift.evaluation.evaluate import run_evaluation
    from drift.settings import DriftSettings

    def missed(split: float) -> int:
        settings = DriftSettings(
            categorical=CategoricalSettings(split_false_alarms_per_million=split))
        (row,) = run_evaluation("full", settings=settings, only=["categorical 2nd shift"],
                                river_baselines=False)
        assert row.false_alarms == 0
        return row.missed

    assert missed(SETTINGS.split_false_alarms_per_million) == 0
    assert missed(0.0) == 1
