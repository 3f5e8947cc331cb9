"""End to end through the real broker: simulated traffic in, shards equal to the oracle out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from labeler.join.rules import join_rules
from labeler.runtime.compose import run_pipeline
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec
from tests.oracle import assert_equals_oracle

pytestmark = pytest.mark.kafka


def _simulate(config: Any, tmp_path: Path, envelope: str = "fluentd", count: int = 3000,
              seed: int = 11, **spec: Any) -> pd.DataFrame:
    traffic = TrafficSpec(count=count, seed=seed, spacing=0.02, click_rate=0.2,
                          window=config.join.window_s,
                          early_tolerance=config.join.early_tolerance_s,
                          max_disorder=2.0, **spec)
    truth = tmp_path / "truth.csv"
    send_traffic(config.kafka.client_options(), traffic, config.topics.predictions,
                 config.topics.outcomes, envelope=envelope, partitions=4, truth=truth,
                 labels=join_rules(config).labels)
    return pd.read_csv(truth)


def test_shards_equal_the_oracle(kafka_config: Any, tmp_path: Path) -> None:
    config = kafka_config()
    truth = _simulate(config, tmp_path)
    counters = run_pipeline(config, until_idle=3.0, drain=True, install_signals=False)

    shards = pd.read_parquet(config.output.path)
    assert_equals_oracle(shards, truth)
    assert 0 < truth.label_clicked.mean() < 1, "the traffic must hold both classes"
    assert counters["labeled"] == len(truth)
    assert counters["duplicate_predictions"] > 0, "the simulator sends duplicates"
    assert counters["prediction.decoded"] + counters["outcome.decoded"] == counters["messages"]
    assert shards.event_time.dt.tz is not None
    assert set(shards.model.astype(str)) == {"ctr-v3"}


def test_shards_are_hive_partitioned_zstd_and_readable_by_duckdb(kafka_config: Any,
                                                                 tmp_path: Path) -> None:
    config = kafka_config()
    truth = _simulate(config, tmp_path, count=800, seed=12)
    run_pipeline(config, until_idle=3.0, drain=True, install_signals=False)

    out = Path(config.output.path)
    files = sorted(p for p in out.rglob("*.parquet") if not any(
        part.startswith(("_", ".")) for part in p.relative_to(out).parts))
    assert files
    for f in files:
        parts = f.relative_to(out).parts
        assert parts[0] == "model=ctr-v3"
        assert parts[1].startswith("date=") and parts[2].startswith("part-")
        meta = pq.ParquetFile(f).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
    assert not list(out.rglob("*.tmp")), "no temp file is left behind"
    glob = str(out / "**" / "*.parquet")
    ((count, positives),) = duckdb.sql(
        f"SELECT count(*), sum(CASE WHEN label_clicked THEN 1 ELSE 0 END) "  # noqa: S608
        f"FROM read_parquet('{glob}', hive_partitioning = true)"
    ).fetchall()
    assert count == len(truth)
    assert positives == int(truth.label_clicked.sum())


@pytest.mark.parametrize("envelope", ["fluent-bit", "logstash", "json"])
def test_every_envelope_gives_the_same_labels(kafka_config: Any, tmp_path: Path,
                                              envelope: str) -> None:
    config = kafka_config()
    truth = _simulate(config, tmp_path, envelope=envelope, count=600, seed=13)
    run_pipeline(config, until_idle=3.0, drain=True, install_signals=False)
    assert_equals_oracle(pd.read_parquet(config.output.path), truth)
