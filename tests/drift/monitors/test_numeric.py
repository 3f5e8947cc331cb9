"""Block-wise numeric drift over several columns at once."""

import math

import numpy as np
import pytest

from drift.monitors.numeric import NumericDrift
from drift.settings import NumericSettings

K = NumericSettings().block_size


def make(*names: str, warmup: int = 1000, cooldown: int = 2000) -> NumericDrift:
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


def test_cooldown_keeps_a_second_change_quiet_until_it_ends() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((10_000, 1))
    x[2000:] += 2.0
    x[3600:] += 2.0  # within the cooldown of the first alarm (and the relearning)
    alarms = run(make("x", cooldown=5000), x)
    assert len(alarms) == 1
