"""The ideal CUSUM's run lengths, computed by the Markov chain, against seeded simulations
of the same detector."""

from __future__ import annotations

import numpy as np
import pytest

from drift.evaluation.limits import delay_distribution, ideal_cusum, limit_lines, threshold_for

DELTA = 0.5


def _run(rng: np.random.Generator, s: np.ndarray, mean: float, h: float, steps: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """Advance the CUSUMs ``s`` for ``steps`` events of ``N(mean, 1)``; the step (1-based)
    at which each first crossed ``h`` (0: never), and the statistics at the end."""
    first = np.zeros(s.size, dtype=int)
    for step in range(1, steps + 1):
        s = np.maximum(0.0, s + DELTA * rng.standard_normal(s.size) + DELTA * mean
                       - DELTA * DELTA / 2)
        crossed = (s > h) & (first == 0)
        first[crossed] = step
    return first, s


def test_the_false_alarm_rate_is_the_simulated_one() -> None:
    h, chains, steps = 3.0, 20_000, 3000
    rng = np.random.default_rng(7)
    s = np.zeros(chains)
    s_first, s = _run(rng, s, 0.0, h, 100)  # run in first: the rate of a running detector
    s = s[s_first == 0]
    first, _ = _run(rng, s, 0.0, h, steps)
    alarms = int((first > 0).sum())
    exposure = int(np.where(first > 0, first, steps).sum())
    simulated = alarms / exposure
    computed = ideal_cusum(DELTA, h).false_alarms_per_event
    assert alarms > 10_000  # enough crossings for a 5% comparison
    assert computed == pytest.approx(simulated, rel=0.05)


@pytest.mark.parametrize("running", [False, True])
def test_the_delay_distribution_is_the_simulated_one(running: bool) -> None:
    """Compared where the median falls, and one event before it (a shift of one event
    moves the distribution there by about 0.02; the simulation's error is about 0.004)."""
    h, chains = 6.0, 20_000
    rng = np.random.default_rng(11)
    s = np.zeros(chains)
    if running:  # detectors that ran 300 null events without alarming
        first, s = _run(rng, s, 0.0, h, 300)
        s = s[first == 0]
    first, _ = _run(rng, s, DELTA, h, 400)
    assert (first > 0).all()
    _, alarmed = delay_distribution(DELTA, h, running=running)
    bound = ideal_cusum(DELTA, h, running=running)
    for t in (bound.median_delay - 1, bound.median_delay):
        assert alarmed[t - 1] == pytest.approx(float((first <= t).mean()), abs=0.01)
    assert alarmed[bound.median_delay - 2] < 0.5 <= alarmed[bound.median_delay - 1]
    assert bound.mean_delay == pytest.approx(float(first.mean()), abs=0.5)  # sd about 0.15


def test_a_running_detector_alarms_sooner_than_a_fresh_one() -> None:
    running, fresh = ideal_cusum(DELTA, 8.0), ideal_cusum(DELTA, 8.0, running=False)
    assert running.median_delay < fresh.median_delay


def test_a_lower_rate_needs_a_higher_threshold_and_a_longer_delay() -> None:
    bounds = [threshold_for(DELTA, rate) for rate in (1e-5, 1e-7, 1e-9)]
    for bound, rate in zip(bounds, (1e-5, 1e-7, 1e-9), strict=True):
        assert bound.false_alarms_per_event <= rate
        assert bound.false_alarms_per_event > rate * 0.9  # the bisection's 0.01 in h
    assert bounds[0].threshold < bounds[1].threshold < bounds[2].threshold
    assert bounds[0].median_delay < bounds[1].median_delay < bounds[2].median_delay


def test_the_lines_name_each_rate_with_its_delay() -> None:
    (line,) = limit_lines(rates=(1e-6,))
    assert f"{threshold_for(DELTA, 1e-6).median_delay} events at 1 false alarms per 10^6" in line
