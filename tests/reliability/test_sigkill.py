"""Exactly-once under SIGKILL: kill the consumer at random points under load, restart it,
and compare the final dataset with the oracle (the plain in-memory join of the same input).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
import warnings
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

ROOT = Path(__file__).resolve().parents[2]
KILL_BUDGET_S = 40.0  # per kill: a start-up, its rejoin, and one stuck-rebalance recovery


def _kill_loop(kafka_config: Any, tmp_path: Path, kills: int, count: int) -> None:
    config = kafka_config(join={"window_s": 4.0, "early_tolerance_s": 1.0,
                                "allowed_lateness_s": 1.0})
    config_path = write_config(
        tmp_path / "loglabel.toml", config,
        kafka={"group_instance_id": "worker-1", "max_poll_interval_ms": 10000,
               "max_poll_records": 300},
        output={"flush_interval_s": 0.2}, logging={"status_interval_s": 60},
        # a budget of a few dozen predictions per partition: most pending ones live on
        # disk, so every restart rebuilds a spilled store from the state segments
        state={"memory_budget": 192 * 1024, "spill_dir": str(tmp_path / "spill")})
    rng = random.Random(2024)
    spec = TrafficSpec(count=count, seed=5, spacing=0.0005, click_rate=0.3, window=4.0,
                       early_tolerance=1.0, max_disorder=0.5, start=time.time())
    truth_path = tmp_path / "truth.csv"
    rate = count * 1.15 / (kills * 2.5)  # spread the traffic over the kill loop (~2.5 s a cycle)
    # the topics exist before a worker starts (it refuses to start without them)
    ensure_topics(config.kafka.client_options(),
                  [config.topics.predictions, config.topics.outcomes], 4)
    producer = threading.Thread(target=send_traffic, kwargs=dict(
        client_options=config.kafka.client_options(), spec=spec,
        prediction_topic=config.topics.predictions, outcome_topic=config.topics.outcomes,
        rate=rate, partitions=4, truth=truth_path, labels=join_rules(config).labels),
        daemon=True)  # a failed run does not wait for the rest of the traffic
    producer.start()
    log_path = tmp_path / "worker.log"
    # the kill loop's own budget, inside the test's timeout (with the final run's 300 s
    # and the producer's): a run of slow rejoins fails here, with its workers killed,
    # not at the timeout with a worker left running
    budget = time.monotonic() + KILL_BUDGET_S * kills
    proc = None
    with open(log_path, "ab") as log:
        try:
            for kill in range(kills):
                assigned = log_path.read_bytes().count(b'"partition.assigned"')
                proc = start_worker(config_path, log)
                # kill while it works, not while it starts up: a worker that never got
                # its partitions would be a kill that tests nothing. kafka-python 3.0.12
                # can leave a new member stuck REBALANCING; the worker rebuilds its
                # consumer after MembershipWatch's limit (30 s at this session timeout),
                # so the wait allows that recovery and its rejoin
                deadline = min(time.monotonic() + 90, budget)
                while log_path.read_bytes().count(b'"partition.assigned"') == assigned:
                    if proc.poll() is not None:
                        pytest.fail(f"kill {kill + 1}: the worker exited ({proc.returncode}) "
                                    "before it got its partitions; its log ends:\n"
                                    + log_path.read_text()[-3000:])
                    if time.monotonic() > deadline:
                        pytest.fail(f"kill {kill + 1}: the restarted worker logged no new "
                                    "partition.assigned within 90 s (or the loop's budget "
                                    f"of {KILL_BUDGET_S * kills:.0f} s ran out); its log "
                                    "ends:\n" + log_path.read_text()[-3000:])
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 1.5))
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            producer.join(timeout=300)
            assert not producer.is_alive(), "the traffic was still being sent after 300 s"
            assert truth_path.exists(), "sending the traffic failed (see the thread's warning)"
            proc = start_worker(config_path, log, "--until-idle", "4", "--drain")
            assert proc.wait(timeout=300) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            if proc is not None and proc.poll() is None:  # a failed run leaves no worker
                proc.kill()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:  # reported, without hiding the failure
                    warnings.warn(f"worker {proc.pid} outlived SIGKILL by 30 s", stacklevel=1)

    truth = pd.read_csv(truth_path)
    shards = pd.read_parquet(config.output.path)
    assert_equals_oracle(shards, truth)
    assert 0.05 < truth.label_clicked.mean() < 0.95
    restored = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()
                if '"partition.assigned"' in line]
    assert any(e["pending_on_disk"] > 0 for e in restored), "no restart had spilled state"


@pytest.mark.timeout(1500)  # twenty start-ups on a loaded machine, then a bounded run
def test_twenty_sigkills_leave_exactly_the_oracle(kafka_config: Any, tmp_path: Path) -> None:
    _kill_loop(kafka_config, tmp_path, kills=20, count=12_000)


@pytest.mark.slow
@pytest.mark.timeout(100 * KILL_BUDGET_S + 700)  # the loop's budget, the final run, the producer
def test_a_hundred_sigkills_leave_exactly_the_oracle(kafka_config: Any, tmp_path: Path) -> None:
    _kill_loop(kafka_config, tmp_path, kills=100, count=50_000)
