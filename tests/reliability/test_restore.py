"""A restart that restores a large state: about 300,000 pending predictions in one
partition, with the broker's smallest session timeout (6 s).

The restore runs from the poll loop in slices, never inside a rebalance
callback: the member stays in the group however long the replay takes (before,
a restore longer than the session timeout got the member evicted mid-restore,
and every rejoin started it over). The labels still equal the oracle.
"""

from __future__ import annotations

import json
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

PENDING = 300_000
DAY = 86_400.0


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.mark.timeout(1500)  # two bounded runs of up to 400 s each, after the traffic
def test_a_restart_restores_300k_pending_without_leaving_the_group(
        kafka_config: Any, tmp_path: Path) -> None:
    config = kafka_config(
        kafka={"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
               "max_poll_records": 2000},
        join={"window_s": DAY, "early_tolerance_s": 5.0, "allowed_lateness_s": 5.0},
        ingest={"repartition": "never"},
    )
    path = write_config(tmp_path / "loglabel.toml", config,
                        output={"flush_interval_s": 5.0, "max_rows": 500_000},
                        logging={"status_interval_s": 30})
    # three days ago: clicks up to a window after their prediction are still in the past
    spec = TrafficSpec(count=PENDING, seed=11, spacing=0.001, click_rate=0.05, window=DAY,
                       early_tolerance=5.0, max_disorder=0.5, duplicate_fraction=0.0,
                       start=time.time() - 3 * DAY)
    truth_path = tmp_path / "truth.csv"
    send_traffic(client_options=config.kafka.client_options(), spec=spec,
                 prediction_topic=config.topics.predictions,
                 outcome_topic=config.topics.outcomes, partitions=1, truth=truth_path,
                 labels=join_rules(config).labels)

    first, second = tmp_path / "first.log", tmp_path / "second.log"
    with open(first, "wb") as log:  # reads everything; no window closes within a day
        assert start_worker(path, log, "--until-idle", "3").wait(timeout=400) == 0, \
            first.read_text()[-3000:]
    with open(second, "wb") as log:  # restores it all, then closes every window
        assert start_worker(path, log, "--until-idle", "3", "--drain").wait(timeout=400) == 0, \
            second.read_text()[-3000:]

    events = _events(second)
    assigned = [e for e in events if e.get("event") == "partition.assigned"]
    assert len(assigned) == 1, "restored once, never started over"
    restore = assigned[0]
    assert restore["epoch"] > 0 and restore["pending"] > 0.9 * PENDING
    # a member stuck in its first join (a kafka-python race, rebuilt after 30 s) that
    # held nothing and restored nothing lost nothing: any other loss is trouble
    trouble = [e for e in events if e.get("event") in ("partition.lost", "dead_letter")
               or (e.get("event") == "group.stuck"
                   and (e.get("partitions") or e.get("restoring")))]
    assert not trouble, trouble
    print(f"restored {restore['pending']} pending ({restore['pending_on_disk']} on disk, "
          f"{restore['changes_replayed']} changes) in {restore['restore_s']} s")

    assert_equals_oracle(pd.read_parquet(config.output.path), pd.read_csv(truth_path))
