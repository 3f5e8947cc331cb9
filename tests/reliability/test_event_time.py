"""Event time under disorder, against the oracle of the README's rules.

Each case produces raw traffic with explicit partitions (so the raw partitions'
event times are what the case says), runs ``loglabel run`` as a real process,
and compares the dataset with ``labeler.tools.oracle.oracle_from_raw``: the
plain join of what the raw topics hold, less the records late by the
per-partition rule. "Equal to the oracle" therefore means "what the README
promises".
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from ingest.kafka.clients import new_producer
from ingest.kafka.topics import ensure_topics
from labeler.join.rules import join_rules
from labeler.tools.oracle import oracle_from_raw, read_raw
from tests.oracle import assert_equals_oracle

from ._worker import start_worker, write_config

pytestmark = pytest.mark.kafka

WINDOW = 1800.0
START = 1_700_000_000.0  # November 2023: a backfill, far behind today's clock


def _config(kafka_config: Any, **join: Any) -> Any:
    return kafka_config(
        fields={"join_id": ["request_id", "item_id"]},
        join={"window_s": WINDOW, "early_tolerance_s": 5.0, "allowed_lateness_s": 10.0, **join},
        ingest={"repartition": "always", "max_future_s": 0.0},
        kafka={"max_poll_records": 7},  # fetches cut short all the time
    )


def _prediction(rid: str, item: str, t: float) -> bytes:  # Fluentd out_kafka2, <inject> time
    return orjson.dumps({"request_id": rid, "item_id": item, "model": "rec-v1",
                         "score": round(random.random(), 3), "features": {"pos": 3},
                         "tag": "ml.prediction", "time": t})


def _click(rid: str, item: str, t: float) -> bytes:  # Logstash codec => json
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return orjson.dumps({"request_id": rid, "item_id": item, "type": "click", "time": t,
                         "@timestamp": f"{stamp}.000Z", "@version": "1"})


def _produce(config: Any, predictions: dict[int, list[bytes]], clicks: dict[int, list[bytes]],
             prediction_partitions: int = 3, outcome_partitions: int = 2) -> None:
    """Unkeyed traffic into explicit raw partitions, in the order given."""
    options = config.kafka.client_options()
    ensure_topics(options, [config.topics.predictions], prediction_partitions)
    ensure_topics(options, [config.topics.outcomes], outcome_partitions)
    producer = new_producer(options, linger_ms=20, acks="all")
    try:
        for topic, by_partition in ((config.topics.predictions, predictions),
                                    (config.topics.outcomes, clicks)):
            for partition, values in by_partition.items():
                for value in values:
                    producer.send(topic, value=value, partition=partition)
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=30)


def _clustered(seed: int, n: int, weeks: float = 3.0, chunk: int = 200
               ) -> tuple[dict[int, list[bytes]], dict[int, list[bytes]]]:
    """Recommendation-like traffic over ``weeks`` of event time, written in chunks of
    ``chunk`` records (many hours of event time each) to raw partitions in turn:
    partition 0 holds weeks 1-3 of chunks 0, 3, 6, ...; a reader meets hours of
    event-time difference between partitions in every poll."""
    rng = random.Random(seed)
    span = weeks * 7 * 86400
    events = sorted(START + rng.uniform(0, span) for _ in range(n))
    preds, clicks = [], []
    for i, t in enumerate(events):
        rid, item = f"r{seed}-{i}", f"item{rng.randrange(40)}"
        preds.append((t + rng.uniform(0, 3), _prediction(rid, item, t)))
        if rng.random() < 0.02:
            preds.append((t + rng.uniform(0, 3), _prediction(rid, item, t)))  # a redelivery
        roll = rng.random()
        if roll < 0.25:
            u = t + rng.uniform(0.5, WINDOW)
        elif roll < 0.28:
            u = t + rng.uniform(WINDOW, WINDOW * 2)  # outside the window
        elif roll < 0.30:
            u = t - rng.uniform(0, 4)  # logged just before its prediction
        else:
            continue
        clicks.append((u + rng.uniform(0, 3), _click(rid, item, u)))
    return _spread(preds, 3, chunk), _spread(clicks, 2, chunk)


def _spread(timed: list[tuple[float, bytes]], partitions: int, chunk: int
            ) -> dict[int, list[bytes]]:
    timed.sort(key=lambda pair: pair[0])  # arrival order, within the lateness
    out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for k in range(0, len(timed), chunk):
        out[(k // chunk) % partitions] += [value for _, value in timed[k:k + chunk]]
    return out


def _config_file(tmp_path: Path, config: Any, name: str) -> Path:
    path = write_config(tmp_path / f"{name}.toml", config, logging={"status_interval_s": 2.0})
    with path.open("a") as f:  # write_config writes scalars; the composite id is a list
        f.write('[fields]\njoin_id = ["request_id", "item_id"]\n')
    return path


def _run(tmp_path: Path, config: Any, *args: str, name: str = "worker",
         env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    path = _config_file(tmp_path, config, name)
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = start_worker(path, log, *args, env=env)
        assert proc.wait(timeout=600) == 0, log_path.read_text()[-4000:]
    return [json.loads(line) for line in log_path.read_text().splitlines()
            if line.startswith("{")]


def _final(events: list[dict[str, Any]], name: str = "status") -> dict[str, Any]:
    return [e for e in events if e.get("event") == name][-1]


def _oracle(config: Any) -> tuple[pd.DataFrame, Any]:
    rules = join_rules(config)
    return oracle_from_raw(read_raw(config), rules.window, rules.early_tolerance, rules.lateness,
                           rules.frontier_votes, rules.labels)


def _check(config: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    truth, counts = _oracle(config)
    shards = pd.read_parquet(config.output.path)
    assert_equals_oracle(shards, truth)
    assert 0.05 < truth.label_clicked.mean() < 0.6, "the traffic must hold both classes"
    status = _final(events)
    assert status["outcomes_after_close"] == 0 and status["predictions_after_close"] == 0
    assert status["late_predictions"] == counts["late_predictions"]
    assert status["late_outcomes"] >= counts["late_outcomes"]
    return status


@pytest.mark.parametrize("seed", [1, 2])
def test_one_process_with_event_time_clustered_raw_partitions(kafka_config: Any, tmp_path: Path,
                                                              seed: int) -> None:
    config = _config(kafka_config)
    predictions, clicks = _clustered(seed, 4000)
    _produce(config, predictions, clicks)
    events = _run(tmp_path, config, "--until-idle", "5", "--drain")
    status = _check(config, events)
    assert status["late_outcomes"] == 0, "nothing in this traffic is late"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 13))
def test_one_process_with_clustered_partitions_many_seeds(kafka_config: Any, tmp_path: Path,
                                                          seed: int) -> None:
    config = _config(kafka_config)
    predictions, clicks = _clustered(seed, 30_000)
    _produce(config, predictions, clicks)
    _check(config, _run(tmp_path, config, "--until-idle", "5", "--drain"))


def test_stages_in_two_processes(kafka_config: Any, tmp_path: Path) -> None:
    config = _config(kafka_config)
    predictions, clicks = _clustered(7, 3000)
    _produce(config, predictions, clicks)
    ingest = _run(tmp_path, config, "--stage", "ingest", "--until-idle", "5", name="ingest")
    assert _final(ingest, "ingest.status")["rekeyed"] > 0
    _check(config, _run(tmp_path, config, "--stage", "label", "--until-idle", "5", "--drain",
                        name="label"))


def test_an_ingest_stage_that_reads_everything_again_writes_no_label_twice(
        kafka_config: Any, tmp_path: Path) -> None:
    """A restarted ingest stage sends again what it read after its last commit; here,
    with a new group, it sends everything again. Three weeks of event time: the ids of
    the first pass are long past the dedupe horizon, so only their raw offsets tell."""
    config = _config(kafka_config)
    predictions, clicks = _clustered(5, 3000)
    _produce(config, predictions, clicks)
    _run(tmp_path, config, "--stage", "ingest", "--until-idle", "5", name="ingest")
    first = _final(_run(tmp_path, config, "--stage", "label", "--until-idle", "5",
                        name="label"))
    assert first["labeled"] > 0
    again = {"LOGLABEL_KAFKA__GROUP_ID": f"{config.kafka.group_id}-again"}  # ingest group only
    resent = _run(tmp_path, config, "--stage", "ingest", "--until-idle", "5", name="again",
                  env=again)
    assert _final(resent, "ingest.status")["rekeyed"] > 0
    events = _run(tmp_path, config, "--stage", "label", "--until-idle", "5", "--drain",
                  name="label")
    status = _check(config, events)
    assert status["replayed_records"] >= first["labeled"]


def _jumps(seed: int) -> tuple[dict[int, list[bytes]], dict[int, list[bytes]], int]:
    """One prediction partition whose event time jumps back 2 h (20 predictions, each
    clicked 3 s later), then two outliers 30 min ahead, then a sustained jump forward of
    2 h while the clicks of the earlier predictions still come at their own time."""
    rng = random.Random(seed)
    preds: dict[int, list[bytes]] = {0: [], 1: []}
    clicks: dict[int, list[bytes]] = {0: []}
    timeline: list[tuple[float, bytes]] = []  # clicks, by arrival
    t = START
    n = 0

    def emit(partition: int, at: float, click_after: float | None) -> None:
        nonlocal n
        rid = f"j{n}"
        n += 1
        preds[partition].append(_prediction(rid, "i", at))
        if click_after is not None:
            timeline.append((at + click_after, _click(rid, "i", at + click_after)))

    for _ in range(300):
        t += rng.uniform(1, 5)
        emit(0, t, rng.uniform(1, 600) if rng.random() < 0.4 else None)
        emit(1, t + rng.uniform(0, 2), None)
    back = t - 7200
    for k in range(20):  # the jump back: late by the rule, with their clicks
        emit(0, back + k, 3.0)
    for k in range(2):  # outliers: two records do not move a 3-vote frontier
        emit(0, t + 1800 + k, 5.0)
    for _ in range(150):  # business as usual after the outliers
        t += rng.uniform(1, 5)
        emit(0, t, rng.uniform(1, 600) if rng.random() < 0.4 else None)
        emit(1, t + rng.uniform(0, 2), None)
    ahead = t + 7200
    for k in range(100):  # a sustained jump forward of partition 0 only
        emit(0, ahead + 3 * k, 10.0 if k % 3 == 0 else None)
    for _ in range(50):
        t += rng.uniform(1, 5)
        emit(1, t, None)
    clicks[0] = [value for _, value in sorted(timeline, key=lambda pair: pair[0])]
    return preds, clicks, n


def test_time_jumps_back_and_forward_and_one_outlier(kafka_config: Any, tmp_path: Path) -> None:
    config = _config(kafka_config)
    predictions, clicks, _ = _jumps(11)
    _produce(config, predictions, clicks, prediction_partitions=2, outcome_partitions=1)
    events = _run(tmp_path, config, "--until-idle", "5", "--drain")
    truth, counts = _oracle(config)
    assert counts["late_predictions"] == 20, "the 2 h jump back is late by the rule"
    status = _check(config, events)
    assert status["ahead_of_frontier"] >= 2, "the outliers are counted"


def _bursts(seed: int, bursts: int, per_burst: int) -> Iterator[tuple[dict[int, list[bytes]],
                                                                       dict[int, list[bytes]]]]:
    """A year-old backfill in bursts a day of event time apart."""
    rng = random.Random(seed)
    t = START - 365 * 86400
    for b in range(bursts):
        preds: list[tuple[float, bytes]] = []
        clicks: list[tuple[float, bytes]] = []
        for i in range(per_burst):
            t += rng.uniform(0.5, 3)
            rid = f"b{b}-{i}"
            preds.append((t, _prediction(rid, "i", t)))
            if rng.random() < 0.3:
                u = t + rng.uniform(1, 60)
                clicks.append((u, _click(rid, "i", u)))
        t += 86400
        yield _spread(preds, 3, 50), _spread(clicks, 2, 50)


def test_a_year_old_backfill_with_idle_gaps(kafka_config: Any, tmp_path: Path) -> None:
    config = _config(kafka_config, window_s=120.0, idle_after_s=2.0)
    path = _config_file(tmp_path, config, "worker")
    log_path = tmp_path / "worker.log"
    with open(log_path, "ab") as log:
        proc = None
        for predictions, clicks in _bursts(5, 3, 600):
            _produce(config, predictions, clicks)
            if proc is None:
                proc = start_worker(path, log, "--until-idle", "15", "--drain")
            time.sleep(5.0)  # the scenario: a quiet gap longer than join.idle_after_s
        assert proc is not None and proc.wait(timeout=300) == 0, log_path.read_text()[-4000:]
    events = [json.loads(line) for line in log_path.read_text().splitlines()
              if line.startswith("{")]
    _check(config, events)
