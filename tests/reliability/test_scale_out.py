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

from ingest.kafka.topics import ensure_topics
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


def _claims(log: Path) -> dict[int, int]:
    """The epoch a worker claimed for each partition at its latest assignment."""
    return {e["partition"]: e["epoch"] for e in _events(log, "partition.assigned")}


def _highest_epoch(root: Path, partition: int) -> int:
    """The highest epoch in a partition's epoch log (``labeler.output.checkpoint``'s
    layout), 0 when it has none."""
    found = [int(f.stem) for f in root.glob(f"_checkpoints/*/p{partition:04d}.epochs/*.ckpt")]
    return max(found, default=0)


def _until(condition: Any, what: str, a: Any, logs: list[Path], b: Any = None,
           timeout: float = 120.0) -> None:
    """Wait for ``condition`` (a loaded machine starts Python slowly); fail with both
    logs if it does not come, or if a worker exits meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or a.poll() is not None or (
                b is not None and b.poll() is not None):
            pytest.fail(f"{what}: not within {timeout:.0f} s\n"
                        + "\n".join(p.read_text()[-2000:] for p in logs if p.exists()))
        time.sleep(0.2)


def test_two_workers_share_partitions_and_survive_a_kill(kafka_config: Any,
                                                         tmp_path: Path) -> None:
    config = kafka_config(join={"window_s": 3.0, "early_tolerance_s": 1.0,
                                "allowed_lateness_s": 1.0})
    path = write_config(tmp_path / "loglabel.toml", config, kafka={"max_poll_records": 500},
                        output={"flush_interval_s": 0.5}, logging={"status_interval_s": 60})
    spec = TrafficSpec(count=8000, seed=9, spacing=0.002, click_rate=0.3, window=3.0,
                       early_tolerance=1.0, max_disorder=0.5, start=time.time())
    truth_path = tmp_path / "truth.csv"
    # the topics exist before a worker starts (it refuses to start without them)
    ensure_topics(config.kafka.client_options(),
                  [config.topics.predictions, config.topics.outcomes], 4)
    producer = threading.Thread(target=send_traffic, kwargs=dict(
        client_options=config.kafka.client_options(), spec=spec,
        prediction_topic=config.topics.predictions, outcome_topic=config.topics.outcomes,
        rate=600.0, partitions=4, truth=truth_path, labels=join_rules(config).labels))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    files = [open(p, "wb") for p in logs]  # noqa: SIM115 - closed below
    a = b = None
    try:
        # a first, until it holds all 4; then b, whose first assignment is the split (its
        # 20 s idle clock starts there, however slowly either worker started)
        a = start_worker(path, files[0])
        _until(lambda: _owned(logs[0]) == {0, 1, 2, 3}, "a holds the 4 partitions", a, logs)
        b = start_worker(path, files[1], "--until-idle", "20", "--drain")

        def split() -> bool:
            mine_a, mine_b = _owned(logs[0]), _owned(logs[1])
            return bool(mine_a and mine_b and not mine_a & mine_b
                        and len(mine_a | mine_b) == 4)

        _until(split, "the two workers split the partitions", a, logs, b)
        mine_a = _owned(logs[0])
        # the traffic starts once the partitions are split, so b reads until after the
        # take-over
        producer.start()
        claims = _claims(logs[0])
        root = Path(config.output.path)
        # a commits each of its partitions at least once after claiming it
        _until(lambda: all(_highest_epoch(root, p) > claims[p] for p in mine_a),
               f"a commits all of {sorted(mine_a)} after claiming them ({claims})", a, logs)
        killed_at = time.time()
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)
        producer.join(timeout=120)
        assert not producer.is_alive(), "the traffic was still being sent after 120 s"
        assert truth_path.exists(), "sending the traffic failed (see the thread's warning)"
        assert b.wait(timeout=180) == 0, logs[1].read_text()[-3000:]
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        for f in files:
            f.close()

    owned_by_a = _owned(logs[0])  # when it was killed
    assert owned_by_a and owned_by_a != {0, 1, 2, 3}, "both workers must have had partitions"
    taken_over = [e for e in _events(logs[1], "partition.assigned")
                  if e["partition"] in owned_by_a and e["ts"] > killed_at]
    assert taken_over and all(e["epoch"] > 0 for e in taken_over), \
        "the survivor resumes the killed worker's partitions from their checkpoints"

    truth = pd.read_csv(truth_path)
    shards = pd.read_parquet(config.output.path)
    assert_equals_oracle(shards, truth)
