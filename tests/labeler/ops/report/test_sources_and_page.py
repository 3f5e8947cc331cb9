"""Reading a dataset being written, a run's log, and the page's markup (no broker, no browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labeler.errors import ConfigError
from labeler.ops.report import ReportInputs, build_report, make_report
from labeler.ops.report.sources import (
    dead_letter_from_headers,
    drift_events_from_values,
    parse_log_lines,
    read_dataset,
)

from .test_shaping import T0, rows


def _shard(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def test_a_dataset_is_read_at_any_partition_depth_skipping_state_and_torn_files(
        tmp_path: Path) -> None:
    a = rows(10).drop(columns=["model"])
    b = rows(5, seed=4).drop(columns=["model"]).assign(feat_new=1.5)
    _shard(tmp_path / "model=ctr" / "date=2024-06-10" / "hour=06" / "part-a.parquet", a)
    _shard(tmp_path / "model=ctr" / "date=2024-06-11" / "part-b.parquet", b)  # no hour level
    _shard(tmp_path / "_staging" / "model=ctr" / "part-c.parquet", a)  # not published yet
    (tmp_path / "_schema").mkdir()
    (tmp_path / "_schema" / "schema.json").write_text("{}")
    torn = tmp_path / "model=ctr" / "date=2024-06-11" / "part-torn.parquet"
    torn.write_bytes(b"PAR1 half a file")
    frame = read_dataset(tmp_path)
    assert len(frame) == 15
    assert set(frame["model"]) == {"ctr"}
    assert frame["feat_new"].isna().sum() == 10 and (frame["feat_new"] == 1.5).sum() == 5
    assert frame["event_time"].is_monotonic_increasing


def test_nothing_to_read_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no dataset"):
        read_dataset(tmp_path / "missing")
    (tmp_path / "_checkpoints").mkdir()
    with pytest.raises(ConfigError, match="no Parquet shards"):
        read_dataset(tmp_path)


def test_the_run_log_gives_drift_events_and_status_lines_and_counts_torn_lines() -> None:
    got = parse_log_lines([
        '{"ts": 1.0, "event": "status", "labeled": 3}',
        '{"ts": 2.0, "level": "warning", "event": "drift", "model": "ctr"}',
        '{"ts": 3.0, "event": "worker.started"}', "", "[1]", '{"ts": 4.0, "event": "sta',
    ])
    assert [d["labeled"] for d in got.status] == [3]
    assert [d["model"] for d in got.drift] == ["ctr"]
    assert got.unreadable == 2


def test_topic_values_and_headers() -> None:
    values = [json.dumps({"event": "drift", "model": "m"}).encode(), b"junk", None, b"{}"]
    assert drift_events_from_values(values) == [{"event": "drift", "model": "m"}]
    letter = dead_letter_from_headers([("loglabel.reason", b"not_json"),
                                       ("loglabel.source.topic", b"predictions")], 1_500)
    assert (letter.reason, letter.kind, letter.timestamp) == ("not_json", "predictions", 1.5)
    assert dead_letter_from_headers([], 0).reason == "unknown"


def test_the_page_places_one_div_per_figure_and_escapes_what_it_shows() -> None:
    frame = rows(3000, shift_after=2000)
    event = {"model": "ctr", "kind": "data", "stream": "mean", "feature": "x",
             "detector": "CUSUM", "statistic": 9.0, "threshold": 8.0, "event_time": T0 + 2100,
             "detail": "<script>alert(1)</script>"}
    page = build_report(ReportInputs(frame, dataset="d", drift_events=[event],
                                     drift_source="the log"), script="/* no plotly */")
    divs = re.findall(r'<div class="chart" id="(chart-\d+)">', page)
    figures = json.loads(re.search(r'id="loglabel-figures">(.*?)</script>', page,
                                   re.S).group(1).replace("<\\/", "</"))
    assert sorted(divs) == sorted(figures) and len(divs) == 1 + 2 + 2  # volume, x, country, score
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "Model ctr" in page and "9 vs 8" in page
    assert not re.search(r'(src|href)="https?:', page), "nothing may come from the network"
    volume = figures[divs[0]]
    assert any(t["name"] == "drift: data" for t in volume["data"])
    assert volume["layout"]["shapes"][0]["x0"] == "2024-06-10T06:48:20.000"


def test_make_report_writes_one_file_with_plotly_inlined(tmp_path: Path) -> None:
    _shard(tmp_path / "data" / "model=ctr" / "date=2024-06-10" / "p.parquet",
           rows(500).drop(columns=["model"]))
    log = tmp_path / "run.log"
    log.write_text('{"ts": 1718000000.0, "event": "status", "late_outcomes": 2}\n')
    out = make_report(tmp_path / "data", tmp_path / "r" / "report.html", drift_log=log)
    text = out.read_text()
    assert out.name == "report.html" and not list(out.parent.glob(".*.tmp"))
    assert "Plotly" in text and len(text) > 1_000_000  # plotly.js is in the file
    assert "late_outcomes" in text


def test_a_baseline_profile_replaces_the_warm_up_as_the_reference(tmp_path: Path) -> None:
    from drift.baseline.profile import build_profile, save_profile

    _shard(tmp_path / "data" / "model=ctr" / "p.parquet",
           rows(600, shift_after=0).drop(columns=["model"]))  # every served x is shifted
    training = rows(5000, seed=11)
    save_profile(build_profile(training, prefix="feat_"), tmp_path / "baseline.json")
    out = make_report(tmp_path / "data", tmp_path / "report.html",
                      baseline=tmp_path / "baseline.json")
    text = out.read_text()
    assert f"serving now vs baseline profile ({tmp_path / 'baseline.json'})" in text
    assert "x: Jensen-Shannon" in text and "(above threshold)" in text


def test_each_model_gets_its_own_section_with_its_own_events() -> None:
    frame = pd.concat([rows(400), rows(300, seed=5).assign(model="ranker")], ignore_index=True)
    event = {"model": "ranker", "kind": "concept", "stream": "positive_rate",
             "feature": "clicked", "event_time": T0 + 10, "statistic": 0.2, "threshold": 0.1}
    page = build_report(ReportInputs(frame, drift_events=[event]), script="")
    assert page.index("Model ctr") < page.index("Model ranker")
    ctr, ranker = page.split("Model ranker")
    assert "No drift events for this model." in ctr and "ranker: clicked positive_rate" in ranker
    assert "400 labeled rows" in ctr and "300 labeled rows" in ranker
