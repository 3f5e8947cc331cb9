"""Block-wise numeric drift over several columns at once."""

import math

import numpy as np
import pytest

from drift.monitors.numeric import NumericDrift
from drift.settings import NumericSettings

K = NumericSettings().block_size


def make(*names: str, warmup: int = 1000, cooldown: int = 2000,
         provisional: int = 256) -> NumericDrift:
    s = NumericSettings()
    specs = [(s.detector.name, s.detector.params, s.detector.z_scale)]
    if s.backstop is not None:
        specs.append((s.backstop.name, s.backstop.params, s.backstop.z_scale))
    nd = NumericDrift(
        specs=specs,
        z_clip=s.z_clip,
        winsorize=s.winsorize,
        dispersion=s.dispersion,
        warmup=warmup,
        min_samples=64,
        cooldown=cooldown,
        summary_blocks=16,
        provisional=provisional,
    )
    for name in names:
        nd.add(name, "data")
    return nd


def run(nd: NumericDrift, x: np.ndarray) -> list[tuple[int, str, str]]:
    """(event index, column, stream) of every alarm, feeding x block by block."""
    out = []
    for b in range(0, x.shape[0] - K + 1, K):
        for alarm in nd.process(x[b : b + K]):
            out.append((b + K - 1, alarm.name, alarm.stream))
    return out


def test_mean_shift_is_found_in_its_column_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8000, 3))
    x[4000:, 1] += 1.0
    alarms = run(make("a", "b", "c"), x)
    assert [(c, s) for _, c, s in alarms] == [("b", "mean")]
    assert 4000 <= alarms[0][0] < 4000 + 200


def test_variance_change_is_found_on_the_spread() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8000, 1))
    x[4000:] *= 2.0
    alarms = run(make("v"), x)
    assert [(c, s) for _, c, s in alarms] == [("v", "dispersion")]
    assert alarms[0][0] < 4000 + 300


def test_small_lasting_shift_is_caught_by_the_backstop() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30_000, 1))
    x[5000:] += 0.25
    alarms = run(make("s"), x)
    assert len(alarms) == 1 and 5000 <= alarms[0][0] < 20_000


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.standard_normal(n),
        lambda rng, n: rng.lognormal(0.0, 1.0, n),
        lambda rng, n: rng.poisson(2.0, n).astype(float),
        lambda rng, n: rng.integers(0, 2, n).astype(float),
        lambda rng, n: 1e6 + 1e-3 * rng.standard_normal(n),
    ],
    ids=["gauss", "lognormal", "poisson", "binary", "tiny-spread"],
)
def test_quiet_on_stationary_streams_of_any_shape(draw) -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([draw(rng, 200_000) for _ in range(2)])
    assert run(make("x", "y"), x) == []


def test_missing_values_are_skipped_not_fatal() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8000, 2))
    x[rng.random(8000) < 0.3, 0] = math.nan
    x[:, 1] = math.nan  # a column that is never served
    x[4000:, 0] += 1.0
    alarms = run(make("sparse", "never"), x)
    assert [(c, s) for _, c, s in alarms] == [("sparse", "mean")]


def test_a_lasting_shift_gives_one_alarm_then_a_new_reference() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40_000, 1))
    x[5000:] += 3.0
    alarms = run(make("x"), x)
    assert len(alarms) == 1


def test_constant_reference_alarms_when_the_value_changes() -> None:
    x = np.zeros((6000, 1))
    x[3000:] = 1.0
    alarms = run(make("flag"), x)
    assert len(alarms) == 1 and 3000 <= alarms[0][0] < 3200


def test_alarm_carries_reference_and_current_summaries() -> None:
    rng = np.random.default_rng(6)
    x = 10.0 + 2.0 * rng.standard_normal((8000, 1))
    x[4000:] += 4.0
    nd = make("price")
    alarm = next(a for b in range(0, 8000, K) for a in nd.process(x[b : b + K]))
    assert alarm.kind == "data" and alarm.stream == "mean"
    assert alarm.reference["mean"] == pytest.approx(10.0, abs=0.3)
    assert alarm.reference["std"] == pytest.approx(2.0, abs=0.2)
    assert alarm.current["mean"] == pytest.approx(14.0, abs=1.0)
    assert alarm.firing.statistic >= alarm.firing.threshold
    assert alarm.params["z_clip"] == NumericSettings().z_clip


def test_a_second_change_right_after_an_alarm_is_detected_despite_the_cooldown() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((10_000, 1))
    x[2000:] += 2.0
    x[2600:] += 2.0  # well within the cooldown of the first alarm
    alarms = run(make("x", cooldown=5000), x)
    assert [(c, s) for _, c, s in alarms] == [("x", "mean")] * 2
    assert 2000 <= alarms[0][0] < 2200 and 2600 <= alarms[1][0] < 2800


def test_cooldown_suppresses_the_same_change_continuing_a_ramp() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((30_000, 1))
    x[5000:8000, 0] += np.linspace(0.0, 6.0, 3000)
    x[8000:, 0] += 6.0
    quiet = make("x", cooldown=20_000)
    loud = make("x", cooldown=0)
    reported, every = run(quiet, x), run(loud, x)
    # Suppression changes what is reported, not what is detected.
    assert quiet.suppressed >= 2 and len(every) == len(reported) + quiet.suppressed
    assert set(reported) < set(every) and 5000 < reported[0][0] < 6000


def test_an_offset_present_from_arming_is_an_alarm() -> None:
    # The warm-up holds half of each level: the new level is off the frozen reference.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20_000, 1))
    x[500:] += 5.0
    alarms = run(make("x"), x)
    assert alarms and alarms[0][0] < 1200


def test_with_a_baseline_detection_starts_at_event_one() -> None:
    rng = np.random.default_rng(10)
    train = rng.standard_normal(100_000)
    nd = make()
    nd.add("x", "data", baseline=np.quantile(train, np.linspace(0, 1, 101)).tolist())
    x = rng.standard_normal((4000, 1)) + 1.0  # off from training from the start
    alarms = run(nd, x)
    assert alarms and alarms[0][0] < 200
    assert run(make("x"), rng.standard_normal((4000, 1))) == []
    # A 0/1 feature's quantiles do not describe it: it learns from serving.
    flags = make()
    flags.add("f", "data", baseline=[0.0] * 100 + [1.0])
    x = (rng.random((200_000, 1)) < 0.001).astype(float)
    assert run(flags, x) == [] and flags._cols[0].mode == 2  # watched as a rate


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_autocorrelated_streams_are_quiet_and_still_watched(phi: float) -> None:
    rng = np.random.default_rng(12)
    n = 300_000
    e = rng.standard_normal(n) * math.sqrt(1.0 - phi * phi)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    nd = make("ar")
    assert run(nd, x[:, None]) == []
    assert nd._m[0] > 1 if phi == 0.9 else nd._m[0] >= 1
    x[200_000:] += 3.0
    alarms = run(make("ar"), x[:, None])
    assert [a[0] >= 200_000 for a in alarms] == [True]


def test_a_rare_binary_feature_is_watched_as_a_rate() -> None:
    rng = np.random.default_rng(13)
    x = (rng.random((400_000, 1)) < 0.001).astype(float)
    nd = make("flag")
    assert run(nd, x) == []
    x[300_000:] = (rng.random((100_000, 1)) < 0.02).astype(float)
    alarms = run(make("flag"), x)
    assert [(c, s) for _, c, s in alarms] == [("flag", "rate")]
    assert 300_000 <= alarms[0][0] < 302_000


def test_state_round_trip_detects_exactly_like_an_uninterrupted_monitor() -> None:
    import msgpack

    rng = np.random.default_rng(14)
    x = rng.standard_normal((30_000, 3))
    x[:, 2] = (rng.random(30_000) < 0.002).astype(float)
    x[8000:, 0] += 1.0
    x[15_000:, 1] *= 2.0
    x[22_000:, 2] = (rng.random(8000) < 0.05).astype(float)
    x[rng.random(30_000) < 0.1, 1] = math.nan
    whole = run(make("a", "b", "c"), x)
    assert len(whole) >= 3
    for cut in (K * 20, K * 300, K * 800):  # learning, provisional, frozen
        first = make("a", "b", "c")
        got = run(first, x[:cut])
        blob = msgpack.packb(first.state())
        resumed = make("a", "b", "c")
        resumed.restore(msgpack.unpackb(blob))
        got += [(i + cut, c, s) for i, c, s in run(resumed, x[cut:])]
        assert got == whole, cut
