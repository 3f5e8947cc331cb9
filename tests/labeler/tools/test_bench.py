"""The bench's pieces that need no broker: the oracle check of a dataset and the report
(the figures themselves are printed by ``loglabel bench``, never asserted)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from labeler.tools.bench_handjoin import oracle_mismatches
from labeler.tools.bench_report import report


def _truth() -> pd.DataFrame:
    return pd.DataFrame({"prediction_id": ["a", "b", "c"], "label_clicked": [True, False, False],
                         "outcome_count": [1, 0, 2]})


def test_a_dataset_equal_to_the_oracle_has_no_mismatch(tmp_path: Path) -> None:
    _truth().to_parquet(tmp_path / "part-0.parquet")
    assert oracle_mismatches(tmp_path, _truth()) == 0


def test_wrong_missing_extra_and_duplicated_rows_are_each_counted(tmp_path: Path) -> None:
    got = pd.DataFrame({"prediction_id": ["a", "b", "b", "d"],
                        "label_clicked": [False, False, False, True],
                        "outcome_count": [1, 0, 0, 1]})
    got.to_parquet(tmp_path / "part-0.parquet")
    # a: wrong label; b: twice; c: missing; d: extra
    assert oracle_mismatches(tmp_path, _truth()) == 4


def test_an_unreadable_dataset_is_none(tmp_path: Path) -> None:
    assert oracle_mismatches(tmp_path / "nothing", _truth()) is None


def test_the_report_prints_each_phase_and_the_same_run_ratios() -> None:
    phase = {"events": 1000, "seconds": 1.0, "cpu_s": 0.01, "peak_rss_mb": 100.0}
    result = {"events": 1000, "bare": dict(phase),
              "ingest": dict(phase, seconds=2.0, cpu_s=0.02, fast_rows=900),
              "pipeline": dict(phase, seconds=4.0, cpu_s=0.04, oracle_mismatches=0,
                               latency_p99_s=1.5),
              "handjoin": dict(phase, seconds=2.0, oracle_mismatches=3),
              "columnar": dict(phase, seconds=1.25, cpu_s=0.0125, oracle_mismatches=0)}
    text = report(result)
    assert "columnar hand join / bare consumer: 0.80 (by CPU per event: 0.80;" in text
    assert "ingest stage / bare consumer: 0.50 columns" in text
    assert "pipeline / hand-written join: 0.50" in text
    assert "no (3 rows differ)" in text and "yes" in text
    assert "ingest rows on the fast path: 90%" in text
    assert "2 workers / 1 worker: n/a" in text


def test_a_phase_that_read_nothing_gives_no_ratio_and_no_crash() -> None:
    phase = {"events": 1000, "seconds": 1.0, "cpu_s": 0.01, "peak_rss_mb": 100.0}
    result = {"events": 1000, "bare": dict(phase),
              "ingest": dict(phase, events=0, seconds=0.0, cpu_s=0.0, fast_rows=0)}
    text = report(result)
    assert "ingest stage / bare consumer: nan columns" in text
    assert "by CPU per event: n/a columns" in text
    result["bare"] = dict(phase, events=0, cpu_s=0.0)  # the baseline read nothing
    assert "ingest stage / bare consumer: n/a columns" in report(result)


def test_a_repeated_or_unknown_phase_is_refused_before_any_traffic() -> None:
    from click.testing import CliRunner

    from labeler.tools.bench import bench_command

    for phases, says in (("bare,bare", "each phase runs once"), ("bare,nope", "unknown phase")):
        out = CliRunner().invoke(bench_command, ["--bootstrap", "127.0.0.1:1", "--phases", phases])
        assert out.exit_code == 2 and says in out.output


def test_two_workers_are_shown_with_their_cpu_and_the_rest_of_the_machine() -> None:
    phase = {"events": 1000, "seconds": 1.0, "cpu_s": 0.02, "peak_rss_mb": 100.0}
    result = {"events": 1000, "pipeline": dict(phase, others_cores=0.25),
              "workers2": dict(phase, seconds=0.625, cpu_s=0.025, others_cores=0.5,
                               per_worker_events=[500, 500])}
    text = report(result)
    assert "2 workers / 1 worker: 1.60  (budget: >= 1.7 on 2 free cores); by CPU per " \
           "event: 1.25" in text
    assert "pipeline (drift on): 0.25; pipeline, 2 workers: 0.50" in text


def test_the_busy_time_is_user_nice_system_irq_and_softirq() -> None:
    from labeler.tools.bench_machine import TICK, busy_seconds

    #     user nice system idle iowait irq softirq steal guest guest_nice
    line = "cpu  1000 20 300 50000 700 4 6 900 0 0"
    assert busy_seconds(line) == pytest.approx((1000 + 20 + 300 + 4 + 6) / TICK)


def test_the_rest_is_interpolated_over_the_phases_span() -> None:
    from labeler.tools.bench_machine import others_between

    # (time, machine busy s, the phase's own CPU s): from t=10 to t=12 the machine did
    # 3.0 s, the phase 2.0 s: the rest used 0.5 core; halfway between samples too
    samples = [(10.0, 100.0, 50.0), (11.0, 101.5, 51.0), (12.0, 103.0, 52.0)]
    assert others_between(samples, 10.0, 12.0) == pytest.approx(0.5)
    assert others_between(samples, 10.5, 11.5) == pytest.approx(0.5)
    busy_phase = [(10.0, 100.0, 50.0), (11.0, 102.0, 52.0)]  # all of it the phase's
    assert others_between(busy_phase, 10.0, 11.0) == 0.0
    assert others_between(samples, 9.0, 12.0) is None  # before the first sample
    assert others_between(samples, 11.0, 11.5) is None  # too short to be read
    assert others_between(samples, None, 12.0) is None


def test_a_process_cpu_reading_follows_its_work() -> None:
    import os
    import time

    from labeler.tools.bench_machine import machine_busy_s, process_cpu_s

    before, busy = process_cpu_s(os.getpid()), machine_busy_s()
    assert before is not None and busy is not None
    spin = time.process_time() + 0.3
    while time.process_time() < spin:
        pass
    after = process_cpu_s(os.getpid())
    assert after is not None and after - before >= 0.25  # 0.3 s, read at clock ticks
    assert process_cpu_s(2**22 + 12345) is None  # no such process
