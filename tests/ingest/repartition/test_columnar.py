"""The columnar ingest path against the row path, its reference: over many seeds of
mixed input (every envelope, duplicates, bad records of every dead-letter reason, late
records, schema inference and skew, several raw partitions, random poll batches) both
send the same bytes to the same topics and partitions in the same order (internal
records, source marks, dead letters with their headers) and count the same."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from typing import Any

import orjson
import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from ingest.kafka.dead_letters import DeadLetterSink
from ingest.kafka.progress import BrokerProgress
from ingest.repartition.stage import Repartitioner, Route, TimeRules
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap
from ingest.wire.pii import FieldPolicy, PiiPolicy
from ingest.wire.schema import Schema, SchemaEnforcer
from tests.ingest.repartition.test_stage import _Consumer, _Message, _Producer

NOW = 1_750_000_000.0
PARTITIONS = 3  # raw partitions per raw topic
FEATURES = ("price", "country", "age", "flag")


class _Raw(_Message):
    def __init__(self, offset: int, value: bytes | None, key: bytes | None) -> None:
        super().__init__(offset, value)  # type: ignore[arg-type]
        self.key = key


def _envelope(rng: random.Random, record: dict[str, Any], t: float) -> bytes:
    form = rng.choice(["fluentd", "fluent-bit", "fluent-bit-iso", "logstash", "logstash-inner",
                       "json-int-time", "json-ms"])
    if form == "fluentd":
        return orjson.dumps({**record, "tag": "ml.x", "time": t})
    if form == "fluent-bit":
        return orjson.dumps({"@timestamp": t, **record})
    if form == "fluent-bit-iso":
        stamp = _iso(t, 6)
        return orjson.dumps({"@timestamp": stamp, **record})
    if form == "logstash":
        return orjson.dumps({**record, "time": t, "@timestamp": _iso(t, 3), "@version": "1",
                             "host": {"ip": "10.0.0.7"}})
    if form == "logstash-inner":
        inner = orjson.dumps({**record, "time": t}).decode()
        return orjson.dumps({"@timestamp": _iso(t, 3), "@version": "1",
                             "event": {"original": inner}})
    if form == "json-int-time":
        return orjson.dumps({**record, "time": int(t)})
    return orjson.dumps({**record, "time": int(t * 1000)})


def _iso(t: float, digits: int) -> str:
    import time as _time
    whole = math.floor(t)
    frac = f"{t - whole:.{digits}f}"[2:]
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(whole)) + f".{frac}Z"


def _bad(rng: random.Random, kind: str, rid: str, t: float) -> bytes | None:
    """A message of one of the dead-letter reasons (or an odd but valid one)."""
    good: dict[str, Any] = ({"request_id": rid, "score": 0.5, "model": "m1",
                             "features": {"price": 1.5, "country": "DE", "age": 3, "flag": True}}
                            if kind == "prediction" else {"request_id": rid, "type": "click"})
    choice = rng.randrange(24)
    cases: list[Any] = [
        None, b"", b"2024-06-10T06:13:20.123Z host hello", b"{not json", b"[1, 2]",
        {**good, "time": "yesterday"}, {**good}, {**good, "request_id": "", "time": t},
        {**good, "request_id": 1.5, "time": t}, {**good, "request_id": "a\x1fb", "time": t},
        {**good, "time": -5}, {**good, "time": 1.0}, {**good, "time": t + 10 * 86400},
        {**good, "time": True},
    ]
    if kind == "prediction":
        cases += [
            {"request_id": rid, "time": t, "features": {}},  # missing_prediction
            {**good, "time": t, "score": {"a": 1}},
            {**good, "time": t, "features": {"price": [1]}},
            {**good, "time": t, "features": {**good["features"], "age": 2**63}},
            {**good, "time": t, "features": {**good["features"], "price": "12.5"}},  # numeric str
            {**good, "time": t, "features": {"country": "DE", "age": 3, "flag": True}},
            {**good, "time": t, "features": {**good["features"], "extra": 1.0}},  # skew
            {**good, "time": t, "features": {**good["features"], "price": 3}},  # widened
            {**good, "time": t, "model": ["x"]},
            {**good, "time": t, "model_version": 3},
        ]
    else:
        cases += [
            {**good, "time": t, "value": "x"}, {**good, "time": t, "value": 2**64},
            {**good, "time": t, "outcome_id": 1.5}, {**good, "time": t, "outcome_id": 7},
            {**good, "time": t, "type": 3}, {**good, "time": t, "value": True},
            {**good, "time": t, "value": 2}, {**good, "time": t, "type": ""},
            {**good, "time": t, "features": None}, {**good, "time": t, "outcome_id": None},
        ]
    case = cases[choice % len(cases)]
    if case is None or isinstance(case, bytes):
        return case
    text = json.dumps(case, separators=(",", ":")).encode()  # ints past 64 bits too
    if rng.random() < 0.1:  # Python's json writes these: NaN is null, Infinity dead-letters
        text = text.replace(b'"price":1.5', b'"price":NaN' if rng.random() < 0.5
                            else b'"price":Infinity')
    return text


def prediction_record(rng: random.Random, rid: str, models: list[str]) -> dict[str, Any]:
    """A valid prediction of one of ``models``: odd but allowed values, nulls, features
    in either order."""
    record: dict[str, Any] = {
        "request_id": rid, "model": rng.choice(models), "model_version": "1.0",
        "score": rng.choice([0.25, 0.5, 1, None, True, "hi"]),
        "features": {"price": None if rng.random() < 0.05 else round(rng.gauss(10, 3), 3),
                     "country": rng.choice(["DE", "US", None]),
                     "age": rng.choice([3, 40, None]), "flag": rng.random() < 0.5}}
    if rng.random() < 0.3:
        record["features"] = dict(reversed(list(record["features"].items())))
    return record


def _traffic(rng: random.Random, kind: str) -> dict[int, list[_Raw]]:
    out: dict[int, list[_Raw]] = {p: [] for p in range(PARTITIONS)}
    base = NOW - 3600 + rng.uniform(-600, 600)
    models = ["m1", "m2"] + (["m3"] if rng.random() < 0.5 else [])
    for i in range(rng.randrange(60, 400)):
        partition = rng.randrange(PARTITIONS)
        t = round(base + i * 0.5 + rng.uniform(-3, 3), 6)
        if rng.random() < 0.04:
            t -= rng.uniform(20, 200)  # late
        rid = f"r{rng.randrange(10_000)}"
        if rng.random() < 0.15:
            value = _bad(rng, kind, rid, t)
        else:
            if kind == "prediction":
                record = prediction_record(rng, rid, models)
            else:
                record = {"request_id": rid, "type": rng.choice(["click", "buy"]),
                          "value": rng.choice([1.0, 2, None]),
                          "outcome_id": rng.choice([None, f"c{rid}"])}
            value = _envelope(rng, record, t)
        copies = 2 if rng.random() < 0.05 else 1
        for _ in range(copies):
            key = rid.encode() if rng.random() < 0.8 else None
            out[partition].append(_Raw(len(out[partition]), value, key))
    return out


def _stage(rng: random.Random, columnar: bool, seed: int, consumer: _Consumer,
           producer: _Producer, committed: dict[TopicPartition, OffsetAndMetadata]
           ) -> Repartitioner:
    variant = seed % 4
    counters: Counter[str] = Counter()
    declared = {"m1": Schema(features={"price": "float", "country": "str", "age": "int",
                                       "flag": "bool"}, prediction={"score": "float"},
                             required=frozenset({"price"} if variant == 1 else set()))}
    schema = SchemaEnforcer(declared if variant != 2 else {}, infer_from=(0 if variant == 3
                                                                          else 15))
    pii = (PiiPolicy({"features.country": FieldPolicy("drop")}) if seed % 7 == 0 else None)
    fmt = "auto" if seed % 3 else ("fluentd" if seed % 2 else "auto")
    common: dict[str, Any] = {"counters": counters, "max_future_s": 3600.0,
                              "clock": lambda: NOW, "pii": pii}
    routes = [Route("p", "p.rekeyed", Decoder("prediction", FieldMap(), fmt, schema=schema,
                                              **common)),
              Route("o", "o.rekeyed", Decoder("outcome", FieldMap(), fmt, **common))]
    stage = Repartitioner({}, "g", routes, "dlq", counters,
                          time_rules=TimeRules(lateness=5.0, votes=rng.choice([1, 3]),
                                               ahead_s=60.0))
    stage.columnar = columnar
    stage.batch_records = rng.choice([7, 500])
    stage._dead_letters = DeadLetterSink(producer, "dlq", counters)  # type: ignore[arg-type]
    stage._progress = BrokerProgress(consumer, "test")  # type: ignore[arg-type]
    stage._progress.reachable_since = -math.inf
    return stage


def _run(seed: int, columnar: bool) -> tuple[list[Any], Counter[str], list[Any]]:
    rng = random.Random(seed)
    traffic = {"p": _traffic(rng, "prediction"), "o": _traffic(rng, "outcome")}
    tps = [TopicPartition(t, p) for t in traffic for p in range(PARTITIONS)]
    consumer = _Consumer(set(tps), {tp: len(traffic[tp.topic][tp.partition]) for tp in tps})
    producer = _Producer()
    stage = _stage(random.Random(seed), columnar, seed, consumer, producer, {})
    read = {tp: 0 for tp in tps}
    polls = random.Random(seed + 1)  # the same poll batches for both paths
    step = 0
    while any(read[tp] < len(traffic[tp.topic][tp.partition]) for tp in tps):
        batch = {}
        for tp in polls.sample(tps, polls.randrange(1, len(tps) + 1)):
            messages = traffic[tp.topic][tp.partition]
            size = polls.choice([1, 5, 50, 1000])
            if read[tp] < len(messages):
                batch[tp] = messages[read[tp]:read[tp] + size]
                read[tp] += len(batch[tp])
        for tp, messages in batch.items():
            stage._take(consumer, tp, messages, float(step))  # type: ignore[arg-type]
        stage._flush_buckets(producer)  # type: ignore[arg-type]
        if polls.random() < 0.3:
            stage._send_marks(producer, consumer, float(step))  # type: ignore[arg-type]
        step += 1
    stage._commit(producer, consumer)  # type: ignore[arg-type]
    fast = sum(d.fast_rows for d in stage._batch_decoders.values())
    stage.counters["test.fast_rows"] += fast  # only the columnar path has any
    return producer.sent, stage.counters, consumer.commits


@pytest.mark.parametrize("seed", range(60))
def test_the_columnar_path_sends_and_counts_exactly_what_the_row_path_does(seed: int) -> None:
    rows_sent, rows_counted, rows_commits = _run(seed, columnar=False)
    cols_sent, cols_counted, cols_commits = _run(seed, columnar=True)
    assert cols_sent == rows_sent
    assert cols_counted - Counter({"test.fast_rows": cols_counted["test.fast_rows"]}) \
        == rows_counted
    assert cols_commits == rows_commits
    reasons = {h["loglabel.reason"] for t, _, _, h in rows_sent if t == "dlq"}
    assert len(reasons) >= 5, "the traffic must hold several kinds of bad records"
    assert rows_counted["rekeyed"] > 50


def test_the_traffic_covers_every_dead_letter_reason_and_the_fast_path() -> None:
    """Guards the test above against traffic that never reaches a rule."""
    reasons: Counter[bytes] = Counter()
    counted: Counter[str] = Counter()
    for seed in range(60):
        sent, counters, _ = _run(seed, columnar=True)
        reasons.update(h["loglabel.reason"] for t, _, _, h in sent if t == "dlq")
        counted.update(counters)
    expected = {b"empty", b"logstash_plain_codec", b"not_json", b"not_object", b"bad_time",
                b"missing_time", b"missing_id", b"bad_id", b"missing_prediction", b"bad_type",
                b"non_finite", b"out_of_range", b"missing_required", b"past_time",
                b"future_time", b"late_prediction"}
    assert expected <= set(reasons), expected - set(reasons)
    assert any(k.startswith("schema_skew.new_feature") for k in counted)
    assert any(k.startswith("schema_skew.numeric_string") for k in counted)
    assert counted["ahead_of_frontier"] > 0
    decoded = counted["prediction.decoded"] + counted["outcome.decoded"]
    assert counted["test.fast_rows"] > 0.5 * decoded, "most good rows take the fast path"
