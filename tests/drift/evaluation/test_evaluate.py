"""The drift evaluation harness, in its quick size."""

import doctest

import numpy as np
import pytest
from click.testing import CliRunner

import drift.baseline.skew
import drift.detectors
import drift.monitors.shares
from drift.evaluation.evaluate import Row, format_table, run_evaluation, scenarios, score
from drift.evaluation.streams import Scenario, categorical, numeric, sea_concept
from labeler.ops.cli import cli


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return run_evaluation("quick", river_baselines=False)


def test_every_change_is_found_and_control_streams_stay_quiet(rows: list[Row]) -> None:
    assert {r.scenario for r in rows} == {s.name for s in scenarios("quick")}
    for r in rows:
        assert r.monitor == "ours"
        assert r.false_alarms == 0, r
        assert r.detected == r.changes, r
    moving = [r for r in rows if r.changes]
    assert len(moving) >= 8 and all(r.median_delay == r.median_delay for r in moving)


def test_delays_meet_the_goals(rows: list[Row]) -> None:
    delay = {r.scenario: r.median_delay for r in rows}
    assert delay["mean shift 0.5 sd"] <= 200
    assert delay["mean shift 1 sd"] < delay["mean shift 0.5 sd"]
    assert delay["categorical linf 0.1"] <= 700


def test_table_has_one_line_per_row(rows: list[Row]) -> None:
    table = format_table(rows).splitlines()
    assert table[0].startswith("| scenario | monitor |")
    assert len(table) == len(rows) + 2


def test_main_prints_the_table(capsys) -> None:
    result = CliRunner().invoke(cli, ["drift-eval", "--only", "mean shift 1 sd", "--ours-only"])
    assert result.exit_code == 0, result.output
    print(result.output, end="")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[2].startswith("| mean shift 1 sd | ours |")


def test_river_baselines_run_side_by_side() -> None:
    got = run_evaluation("quick", only=["categorical stationary"])
    assert [r.monitor for r in got] == ["ours", "river ADWIN per category"]


def test_score_counts_first_alarms_and_companions() -> None:
    sc = Scenario("s", "numeric", 30_000, (10_000, 20_000), 1000, lambda rng, size: iter(()), "")
    alarms = [
        (500, "x"),  # before any change: false
        (10_100, "x"),  # detection of 10 000, delay 100
        (10_150, "y"),  # another stream, same change: companion
        (10_200, "x"),  # the same stream again: false
        (15_000, "x"),  # beyond the tolerance: false
    ]
    detected, missed, delays, false, repeats = score(sc, alarms, 30_000)
    assert (detected, missed, delays, false, repeats) == (1, 1, [100], 3, 0)
    ramp = Scenario("r", "numeric", 30_000, (10_000, 20_000), 1000, lambda rng, size: iter(()),
                    "", ramp=5000)
    assert score(ramp, alarms, 30_000) == (1, 1, [100], 1, 2)  # only (500, x) is false


def test_streams_change_where_they_say() -> None:
    rng = np.random.default_rng(0)
    sc = numeric("m", 20_000, kind="gauss", shift=1.0, spacing=5000)
    x = np.concatenate(list(sc.chunks(rng, 3000)))
    assert x.size == 20_000 and sc.change_points == (5000, 10_000, 15_000)
    assert x[5000:10_000].mean() - x[:5000].mean() == pytest.approx(1.0, abs=0.1)
    cats = [c for chunk in categorical("c", 16_000, spacing=8000).chunks(rng, 4000) for c in chunk]
    assert cats[:8000].count("d") / 8000 == pytest.approx(0.1, abs=0.02)
    assert cats[8000:].count("d") / 8000 == pytest.approx(0.2, abs=0.02)


def test_concept_stream_survives_a_tiny_width() -> None:
    # ConceptDriftStream overflows when position/width is large; the width is guarded.
    sc = sea_concept("sea", 20_000, spacing=10_000, width=1)
    chunks = list(sc.chunks(np.random.default_rng(1), 5000))
    errors = [float(((s >= 0.5) != y).mean()) for _, s, y in chunks]
    assert errors[0] < 0.15 and errors[-1] > 0.15  # variant 0 fits, variant 3 does not


@pytest.mark.parametrize("module", [drift.detectors, drift.monitors.shares,
                                    drift.baseline.skew])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_the_half_sigma_row_is_followed_by_the_limit_at_each_rate() -> None:
    result = CliRunner().invoke(cli, ["drift-eval", "--only", "mean shift 0.5 sd",
                                      "--ours-only"])
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert out[2].startswith("| mean shift 0.5 sd | ours |")
    assert out[3].startswith("an ideal detector of +0.5 sigma")
    for rate in ("10^-7", "10^-8", "10^-9"):
        assert f"({rate} per event)" in out[3]
