"""SIGTERM and SIGINT: stop polling, flush shards, checkpoint, commit offsets, exit 0.
What the signal wrote equals the oracle; a restart from that checkpoint, drained,
completes the dataset to exactly the oracle."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kafka import KafkaConsumer, TopicPartition

from labeler.join.rules import join_rules
from labeler.output.checkpoint import CheckpointStore
from labeler.output.storage import Storage
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec
from tests.oracle import assert_equals_oracle

from ._worker import start_worker, write_config

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_commits_and_exits_zero(kafka_config: Any, tmp_path: Path,
                                                   signum: int) -> None:
    config = kafka_config(join={"window_s": 2.0, "early_tolerance_s": 1.0,
                                "allowed_lateness_s": 1.0},
                          output={"flush_interval_s": 3600.0})  # only the signal flushes
    k, t = config.kafka, config.topics
    path = write_config(tmp_path / "loglabel.toml", config, logging={"status_interval_s": 0.5})
    truth_path = tmp_path / "truth.csv"
    sent = send_traffic(config.kafka.client_options(),
                        TrafficSpec(count=2000, seed=3, spacing=0.01, window=2.0,
                                    early_tolerance=1.0, max_disorder=0.5),
                        t.predictions, t.outcomes, partitions=2, truth=truth_path,
                        labels=join_rules(config).labels)
    truth = pd.read_csv(truth_path)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = start_worker(path, log)
    deadline = time.monotonic() + 60
    while b'"partition.assigned"' not in (tmp_path / "worker.log").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    total = sent["prediction"] + sent["outcome"]
    while f'"messages":{total},'.encode() not in (tmp_path / "worker.log").read_bytes():
        assert time.monotonic() < deadline + 60, "the worker did not read everything"
        time.sleep(0.2)  # (idle advancement is 30 s away: windows close by event time)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()[-2000:]
    log.close()

    rows = pd.read_parquet(config.output.path)
    assert len(rows) > 0, "the shard buffered since start was flushed on the signal"
    # the windows still open at the signal are in the checkpoint, not in the dataset;
    # every label the signal wrote is final: each one the oracle's, once
    assert_equals_oracle(rows, truth[truth.prediction_id.isin(rows.prediction_id)])
    consumer = KafkaConsumer(bootstrap_servers=k.bootstrap_servers, group_id=k.group_id,
                             enable_auto_commit=False)
    committed = sum(consumer.committed(TopicPartition(topic, p)) or 0
                    for topic in (t.predictions, t.outcomes) for p in (0, 1))
    consumer.close()
    assert committed == sent["prediction"] + sent["outcome"]
    store = CheckpointStore(Storage(config.output.path), f"{t.predictions}+{t.outcomes}")
    assert {p.parent.name for p in Path(config.output.path, "_checkpoints").rglob("*.ckpt")
            } == {"p0000.epochs", "p0001.epochs"}
    latest = [store.load(p) for p in (0, 1)]  # each partition's highest epoch
    offsets = sum(sum(c.offsets.values()) for c in latest if c is not None)
    assert None not in latest and offsets == committed

    # a restart from that checkpoint, drained, writes the rest: exactly the oracle
    with open(tmp_path / "worker.log", "ab") as log:
        final = start_worker(path, log, "--until-idle", "4", "--drain")
        try:
            assert final.wait(timeout=300) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            if final.poll() is None:  # a failed run leaves no worker behind
                final.kill()
                final.wait(timeout=30)
    assert_equals_oracle(pd.read_parquet(config.output.path), truth)
    assert 0.05 < truth.label_clicked.mean() < 0.95, "the traffic must hold both classes"
