"""Forwarder-style partitioning (crc32, or no key at all) is still joined exactly,
through the ingest stage's repartition into co-partitioned internal topics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ingest.kafka.topics import partition_counts
from labeler.join.rules import join_rules
from labeler.runtime.compose import run_pipeline
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec
from tests.oracle import assert_equals_oracle

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("partitioner", ["crc32", "none"])
def test_unkeyed_or_crc32_traffic_is_joined_exactly_after_repartition(
        kafka_config: Any, unique: Any, tmp_path: Path, partitioner: str) -> None:
    config = kafka_config(
        ingest={"repartition": "always"},
        topics={"predictions": unique("raw-p"), "outcomes": unique("raw-o"),
                "dead_letter": unique("dlq"), "drift": unique("drift"),
                "rekeyed_predictions": unique("rk-p"), "rekeyed_outcomes": unique("rk-o")},
    )
    spec = TrafficSpec(count=1500, seed=21, spacing=0.02, click_rate=0.3,
                       window=config.join.window_s,
                       early_tolerance=config.join.early_tolerance_s, max_disorder=2.0)
    truth_path = tmp_path / "truth.csv"
    send_traffic(config.kafka.client_options(), spec, config.topics.predictions,
                 config.topics.outcomes, partitions=3, partitioner=partitioner,
                 truth=truth_path, labels=join_rules(config).labels)
    counters = run_pipeline(config, until_idle=4.0, drain=True, install_signals=False)

    counts = partition_counts(config.kafka.client_options(),
                              [config.topics.rekeyed_predictions, config.topics.rekeyed_outcomes])
    assert set(counts.values()) == {3}
    truth = pd.read_csv(truth_path)
    shards = pd.read_parquet(config.output.path)
    assert_equals_oracle(shards, truth)
    assert truth.label_clicked.sum() > 50
    assert counters["rekeyed"] == counters["raw_messages"]
