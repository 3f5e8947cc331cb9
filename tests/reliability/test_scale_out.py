"""Two workers in one consumer group share 4 partitions; one is killed and the other
takes its partitions over from their checkpoints. The output still equals the oracle."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from labeler.join.rules import join_rules
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec
from tests.oracle import assert_equals_oracle

from ._worker import start_worker, write_config

pytestmark = pytest.mark.kafka



def _events(log: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("event") == name:
                out.append(doc)
    return out


def _owned(log: Path) -> set[int]:
    """The partitions a worker holds at the end of its log (assignments minus revocations)."""
    held: set[int] = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("event") == "partition.assigned":
                held.add(doc["partition"])
            elif doc.get("event") in ("partition.revoked", "partition.lost"):
                held.discard(doc["partition"])
    return held


def test_two_workers_share_partitions_and_survive_a_kill(kafka_config: Any,
                                                         tmp_path: Path) -> None:
    config = kafka_config(join={"window_s": 3.0, "early_tolerance_s": 1.0,
                                "allowed_lateness_s": 1.0})
    path = write_config(tmp_path / "loglabel.toml", config, kafka={"max_poll_records": 500},
                        output={"flush_interval_s": 0.5}, logging={"status_interval_s": 60})
    spec = TrafficSpec(count=8000, seed=9, spacing=0.002, click_rate=0.3, window=3.0,
                       early_tolerance=1.0, max_disorder=0.5, start=time.time())
    truth_path = tmp_path / "truth.csv"
    producer = threading.Thread(target=send_traffic, kwargs=dict(
        client_options=config.kafka.client_options(), spec=spec,
        prediction_topic=config.topics.predictions, outcome_topic=config.topics.outcomes,
        rate=600.0, partitions=4, truth=truth_path, labels=join_rules(config).labels))
    producer.start()
    time.sleep(1.0)  # the topics exist now
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = []
    for log_path, extra in zip(logs, ([], ["--until-idle", "8", "--drain"]), strict=True):
        with open(log_path, "wb") as log:
            procs.append(start_worker(path, log, *extra))
    a, b = procs
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until both own partitions and have committed
        mine_a, mine_b = _owned(logs[0]), _owned(logs[1])
        if mine_a and mine_b and len(mine_a | mine_b) == 4:
            break
        time.sleep(0.5)
    time.sleep(3.0)
    killed_at = time.time()
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=30)
    producer.join(timeout=120)
    assert b.wait(timeout=180) == 0, logs[1].read_text()[-3000:]

    owned_by_a = _owned(logs[0])  # when it was killed
    assert owned_by_a and owned_by_a != {0, 1, 2, 3}, "both workers must have had partitions"
    taken_over = [e for e in _events(logs[1], "partition.assigned")
                  if e["partition"] in owned_by_a and e["ts"] > killed_at]
    assert taken_over and all(e["epoch"] > 0 for e in taken_over), \
        "the survivor resumes the killed worker's partitions from their checkpoints"

    truth = pd.read_csv(truth_path)
    shards = pd.read_parquet(config.output.path)
    assert_equals_oracle(shards, truth)
