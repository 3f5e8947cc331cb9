"""Contract tests: one check, run against every detector wrapper."""

import random

import pytest

from drift.detectors import (
    BINARY_DETECTORS,
    DETECTORS,
    NUMERIC_DETECTORS,
    Detector,
    Watch,
    make_detector,
)
from drift.errors import DriftConfigError

# KSWIN draws its comparison sample at random: seed it so the checks are stable.
PARAMS = {"KSWIN": {"seed": 7}}


def shifted(name: str, seed: int = 1) -> tuple[list[float], int]:
    """A stream with one obvious change in the middle, and where it is."""
    rng = random.Random(seed)
    if name in BINARY_DETECTORS:
        before = [1.0 if rng.random() < 0.05 else 0.0 for _ in range(800)]
        after = [1.0 if rng.random() < 0.6 else 0.0 for _ in range(800)]
    else:
        before = [rng.gauss(0.0, 1.0) for _ in range(800)]
        after = [rng.gauss(4.0, 1.0) for _ in range(800)]
    return before + after, len(before)


def feed(det: Detector, xs: list[float]) -> list[int]:
    return [i for i, x in enumerate(xs) if det.update(x)]


@pytest.mark.parametrize("name", DETECTORS)
def test_fires_after_an_obvious_shift(name: str) -> None:
    det = make_detector(name, PARAMS.get(name))
    xs, change = shifted(name)
    fired = [i for i in feed(det, xs) if i >= change]
    assert fired, f"{name} missed an obvious change"
    assert fired[0] - change < 500
    firing = det.last_firing
    assert firing is not None and firing.detector == name
    assert firing.n > 0


@pytest.mark.parametrize("name", DETECTORS)
def test_quiet_on_a_short_constant_stream(name: str) -> None:
    det = make_detector(name, PARAMS.get(name))
    assert feed(det, [0.0] * 1000) == []
    assert det.last_firing is None and det.fired == 0


@pytest.mark.parametrize("name", DETECTORS)
def test_restarts_fresh_after_firing(name: str) -> None:
    det = make_detector(name, PARAMS.get(name))
    xs, _ = shifted(name)
    first = feed(det, xs)
    assert first
    # Right after a firing the detector is fresh: it behaves exactly like a new one.
    last = first[-1]
    det2 = make_detector(name, PARAMS.get(name))
    det_after = make_detector(name, PARAMS.get(name))
    feed(det_after, xs[: last + 1])
    tail = xs[last + 1 :]
    assert det_after.n == 0
    assert feed(det_after, tail) == feed(det2, tail)


@pytest.mark.parametrize("name", DETECTORS)
def test_manual_reset_forgets_the_past(name: str) -> None:
    det = make_detector(name, PARAMS.get(name))
    xs, change = shifted(name)
    feed(det, xs[: change - 10])
    det.reset()
    assert det.n == 0 and det.mean != det.mean  # NaN: nothing seen since the reset
    fresh = make_detector(name, PARAMS.get(name))
    assert feed(det, xs[change:]) == feed(fresh, xs[change:])


@pytest.mark.parametrize("name", BINARY_DETECTORS)
def test_binary_detectors_fire_when_the_rate_of_ones_rises(name: str) -> None:
    rng = random.Random(3)
    falling = [1.0 if rng.random() < 0.6 else 0.0 for _ in range(800)]
    falling += [1.0 if rng.random() < 0.05 else 0.0 for _ in range(800)]
    # One-sided by default: a falling error rate is good news, not drift.
    assert [i for i in feed(make_detector(name), falling) if i >= 900] == []


def test_adwin_reports_its_cut() -> None:
    det = make_detector("ADWIN", {"delta": 0.002, "clock": 1})
    xs, change = shifted("ADWIN")
    feed(det, xs)
    f = det.last_firing
    assert f is not None and f.statistic_name == "mean_gap"
    assert f.statistic >= f.threshold > 0
    assert 0 < f.recent <= f.n


def test_unknown_detector_and_bad_parameter_are_config_errors() -> None:
    with pytest.raises(DriftConfigError, match="unknown drift detector"):
        make_detector("CUSUMX")
    with pytest.raises(DriftConfigError, match="PageHinkley"):
        make_detector("PageHinkley", {"treshold": 3})
    with pytest.raises(DriftConfigError):
        Watch([("ADWIN", {"delta": 0.1}, 1.0), ("KSWIN", {"alpha": 2.0}, 1.0)])


def test_numeric_and_binary_names_cover_every_detector() -> None:
    assert set(NUMERIC_DETECTORS) | set(BINARY_DETECTORS) == set(DETECTORS)


def test_watch_scales_inputs_and_restarts_every_detector() -> None:
    specs = [
        ("PageHinkley", {"delta": 1.0, "threshold": 8.0, "alpha": 1.0, "min_instances": 5}, 1.0),
        ("ADWIN", {"delta": 1e-5, "clock": 1}, 4.0),
    ]
    watch = Watch(specs)
    rng = random.Random(5)
    zs = [rng.gauss(0, 1) for _ in range(300)] + [rng.gauss(3, 1) for _ in range(60)]
    fired_at = next(i for i, z in enumerate(zs) if watch.update(z) is not None)
    assert 300 <= fired_at < 320
    assert watch.n == 0
    # After a firing the watch is exactly a fresh one: same verdicts on what follows.
    fresh = Watch(specs)
    tail = zs[fired_at + 1 :]
    assert [watch.update(z) is None for z in tail] == [fresh.update(z) is None for z in tail]


def test_watch_reports_the_detector_that_fired_first() -> None:
    quick = ("PageHinkley", {"delta": 0.5, "threshold": 3.0, "alpha": 1.0, "min_instances": 5}, 1.0)
    slow = ("ADWIN", {"delta": 1e-9, "clock": 1}, 1.0)
    watch = Watch([slow, quick])
    zs = [0.0] * 50 + [5.0] * 10
    firing = next(f for z in zs if (f := watch.update(z)) is not None)
    assert firing.detector == "PageHinkley"
    assert firing.statistic > firing.threshold == 3.0


def test_cusum_tests_against_the_reference_not_its_own_past() -> None:
    # A level that is off from the first update is a change for the CUSUM,
    # and never one for PageHinkley, which measures from its own running mean.
    xs = [1.5] * 200
    cusum = make_detector("CUSUM", {"delta": 1.0, "threshold": 8.0})
    page = make_detector("PageHinkley", {"delta": 1.0, "threshold": 8.0, "alpha": 1.0})
    assert feed(cusum, xs)[0] == 15  # 16 updates of 0.5 excess reach 8
    assert feed(page, xs) == []
    f = cusum.last_firing
    assert f is not None and f.statistic_name == "cumulative_deviation"
    assert f.statistic >= f.threshold == 8.0 and f.direction == 1 and f.recent == 16


def test_adwin_reports_a_split_whose_gap_crosses_its_bound() -> None:
    # Every firing, not only the easy ones: many small changes in both directions.
    watch = Watch([("ADWIN", {"delta": 1e-5, "clock": 1, "min_window_length": 1,
                              "grace_period": 4}, 4.0)])
    rng = random.Random(11)
    firings = []
    for t in range(120_000):
        f = watch.update(rng.gauss(0.3 if (t // 3000) % 2 else 0.0, 1.0))
        if f is not None:
            firings.append((t, f))
    assert len(firings) > 20
    for t, f in firings:
        assert f.statistic > f.threshold, (t, f)
        rising = (t // 3000) % 2 == 1
        if t % 3000 > 1000:  # well after a change: the direction is the change's
            assert f.direction == (1 if rising else -1)


@pytest.mark.parametrize("name", ["CUSUM", "ADWIN", "PageHinkley"])
def test_state_round_trip_continues_exactly(name: str) -> None:
    import msgpack

    params = {"CUSUM": {"delta": 0.5, "threshold": 6.0}, "ADWIN": {"delta": 0.002},
              "PageHinkley": {"threshold": 20.0}}[name]
    xs, change = shifted(name)
    whole = make_detector(name, params)
    expected = feed(whole, xs)
    part = make_detector(name, params)
    head = feed(part, xs[: change + 3])
    saved = msgpack.unpackb(msgpack.packb(part.state()))
    resumed = make_detector(name, params)
    resumed.restore(saved)
    tail = [i + change + 3 for i in feed(resumed, xs[change + 3 :])]
    assert head + tail == expected and expected


def test_watch_state_round_trip_continues_exactly() -> None:
    import msgpack

    specs = [("CUSUM", {"delta": 1.0, "threshold": 8.0}, 1.0),
             ("ADWIN", {"delta": 1e-5, "clock": 1}, 4.0)]
    rng = random.Random(3)
    zs = [rng.gauss(0.4 if (i // 700) % 2 else 0.0, 1.0) for i in range(6000)]
    whole = Watch(specs)
    expected = [(i, f) for i, z in enumerate(zs) if (f := whole.update(z)) is not None]
    first = Watch(specs)
    got = [(i, f) for i, z in enumerate(zs[:2500]) if (f := first.update(z)) is not None]
    again = Watch.from_state(msgpack.unpackb(msgpack.packb(first.state())))
    got += [(i + 2500, f) for i, z in enumerate(zs[2500:]) if (f := again.update(z)) is not None]
    assert got == expected and len(expected) >= 3


def test_a_seeded_page_hinkley_sees_a_step_soon_after_its_start() -> None:
    from drift.detectors import Watch
    params = {"delta": 1.0, "threshold": 8.0, "min_instances": 10, "alpha": 1.0}
    stream = [0.0] * 5 + [2.5] * 40  # a step 5 inputs after the start

    def first_firing(seeded: bool) -> int | None:
        watch = Watch([("PageHinkley", params, 1.0)])
        if seeded:
            watch.seed(32)
        return next((i for i, z in enumerate(stream) if watch.update(z)), None)

    assert first_firing(False) is None  # its own mean follows the step
    fired = first_firing(True)
    assert fired is not None and 5 <= fired < 20
