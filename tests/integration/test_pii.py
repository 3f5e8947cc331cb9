"""PII through the whole pipeline and a real broker: every output byte is scanned.

Predictions and outcomes carry known raw values (ids, emails, names, exact
ages, postcodes), some inside malformed messages that are dead-lettered (one
per way the decoders know to break). After a run, the raw values must appear
nowhere: not in the Parquet files, the checkpoints, the state segments or
the dataset schema under ``output.path``, not in the spill files (copied
while the first run holds them), not in any dead letter (value, key or
header), not on the drift topic or the internal topics, not in the logs. The
redacted forms must appear where they belong.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer, KafkaProducer

from ingest.kafka.topics import ensure_topics
from labeler.join.pending import PendingStore
from labeler.logs import LOGGER_NAME, JsonFormatter
from labeler.runtime.compose import run_pipeline

pytestmark = pytest.mark.kafka

KEY = "integration-test-pii-key-0123456789"
T0 = 1718000000.0
COUNT = 640
FIRST = ["alice", "bruno", "chiara", "dmitri", "esther", "farid", "greta", "hiroshi"]
LAST = ["quinn", "okafor", "lindqvist", "moreau", "petrov", "sato", "varga", "zielinski"]
# postcodes change district halfway through: the generalized prefix drifts
EARLY_AREAS = ["SW1A", "EC1V", "NW3Q"]
LATE_AREAS = ["M14P", "B15T", "LS6R"]
PII = {
    "user_id": {"policy": "hash"},
    "features.email": {"policy": "drop"},
    "features.name": {"policy": "hash"},
    "features.age": {"policy": "bucket", "width": 10},
    "features.zip": {"policy": "generalize", "keep": 3},
}


def mac(text: str) -> str:
    """The expected hash, computed independently of the code under test."""
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


@dataclass
class Person:
    user_id: str
    email: str
    name: str
    age: float
    postcode: str


@dataclass
class Traffic:
    people: list[Person] = field(default_factory=list)
    clicked: dict[str, bool] = field(default_factory=dict)  # expected prediction_id -> label
    malformed: int = 0

    def raw_texts(self) -> set[str]:
        out: set[str] = set()
        for p in self.people:
            out |= {p.user_id, p.email, p.name, p.postcode, repr(p.age)}
        return out

    def raw_doubles(self) -> set[bytes]:
        return {struct.pack(fmt, p.age) for p in self.people for fmt in ("<d", ">d")}


def person(i: int) -> Person:
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    areas = EARLY_AREAS if i < COUNT // 2 else LATE_AREAS
    return Person(
        user_id=f"uid-{first}.{last}-{i:04d}",
        email=f"{first}.{last}.{i}@mail.example",
        name=f"{first.title()} {last.title()} Number{i}",
        age=round(20 + (i * 37) % 60 + 0.12345 + (i % 7) * 0.01, 5),
        postcode=f"{areas[i % 3]} {i % 10}{'XYZW'[i % 4]}{'QRS'[i % 3]}",
    )


def prediction(i: int, p: Person) -> dict[str, Any]:
    return {"user_id": p.user_id, "request_id": f"r{i}", "model": "ctr-pii",
            "time": T0 + i * 0.5, "score": (i % 10) / 10,
            "features": {"email": p.email, "name": p.name, "age": p.age, "zip": p.postcode,
                         "price": round(5 + (i % 13) * 0.75, 2)}}


def malformed(people: list[Person]) -> Iterator[tuple[str, bytes]]:
    """Bad messages full of raw values, each dead-lettered for a different reason."""
    a, b = people[1], people[2]
    record = prediction(1, a)
    yield "predictions", orjson.dumps(record)[:-20]  # not_json
    yield "predictions", orjson.dumps({**record, "time": None})  # missing_time
    yield "predictions", orjson.dumps({**record, "time": "yesterday"})  # bad_time
    yield "predictions", orjson.dumps({**record, "features": {**record["features"],
                                                              "price": {"eur": 1}}})  # bad_type
    yield "predictions", orjson.dumps(a.email)  # not_object
    yield "predictions", (b"2024-06-10T06:13:20.123Z web-1 "
                          + orjson.dumps(prediction(2, b)))  # logstash_plain_codec
    yield "predictions", orjson.dumps({  # bad_time, with the record embedded as a string
        "@timestamp": "soon", "@version": "1", "message": f"login {b.email}",
        "event": {"original": orjson.dumps(prediction(2, b)).decode()}})
    yield "outcomes", orjson.dumps({"user_id": b.user_id, "request_id": "r2",
                                    "type": "click"})  # missing_time
    # where a policy path expects an object, something the policy cannot reach into
    yield "predictions", orjson.dumps({**record, "features": [record["features"]]})  # bad_type
    yield "predictions", orjson.dumps(record).replace(b'"ctr-pii"', b'"\xff"')  # not_json
    yield "predictions", orjson.dumps({**record, "time": 1.0})  # past_time
    yield "predictions", orjson.dumps({**record, "time": 4102444800.0})  # future_time
    yield "predictions", orjson.dumps({k: v for k, v in record.items()
                                       if k != "score"})  # missing_prediction
    yield "predictions", orjson.dumps({k: v for k, v in record.items()
                                       if k != "request_id"})  # missing_id
    yield "predictions", orjson.dumps(record).replace(b'"price":', b'"price":1' + b"0" * 30
                                                      + b',"p2":')  # out_of_range
    yield "predictions", orjson.dumps(record).replace(b'"price":', b'"price":Infinity,"p2":')
    yield "predictions", (b'{"user_id":' + orjson.dumps(a.user_id) + b',"x":'
                          + b"[" * 2000 + b"]" * 2000 + b"}")  # not_json: too deep
    yield "predictions", orjson.dumps({**record, "features": {
        **record["features"], "email": a.email * 2000}})  # a huge value at a policy path


def send(config: Any) -> Traffic:
    options = config.kafka.client_options()
    topics = config.topics
    ensure_topics(options, [topics.predictions, topics.outcomes], 2)
    traffic = Traffic(people=[person(i) for i in range(COUNT)])
    producer = KafkaProducer(**options, linger_ms=20, acks="all")
    for i, p in enumerate(traffic.people):
        producer.send(topics.predictions, value=orjson.dumps(prediction(i, p)),
                      key=p.user_id.encode())
        clicked = i % 3 == 0
        if clicked:
            outcome = {"user_id": p.user_id, "request_id": f"r{i}", "type": "click",
                       "time": T0 + i * 0.5 + 5.0}
            producer.send(topics.outcomes, value=orjson.dumps(outcome), key=p.user_id.encode())
        traffic.clicked[f"{mac(p.user_id)}\x1fr{i}"] = clicked
    for kind, value in malformed(traffic.people):
        topic = topics.predictions if kind == "predictions" else topics.outcomes
        producer.send(topic, value=value, key=traffic.people[1].email.encode())
        traffic.malformed += 1
    producer.flush()
    producer.close()
    return traffic


class Captured(logging.Handler):
    """The loglabel logger's JSON lines, exactly as they would reach stderr."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Captured]:
    logger = logging.getLogger(LOGGER_NAME)
    handler, level = Captured(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def read_topic(config: Any, topic: str) -> list[Any]:
    consumer = KafkaConsumer(topic, **config.kafka.client_options(),
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        return list(consumer)
    finally:
        consumer.close()


def message_bytes(messages: list[Any]) -> list[bytes]:
    out = []
    for m in messages:
        out += [m.value or b"", m.key or b""]
        out += [k.encode() + b"=" + v for k, v in m.headers]
    return out


def assert_clean(where: str, blobs: list[bytes], traffic: Traffic) -> None:
    assert blobs, f"{where}: nothing to scan"
    texts = [t.encode() for t in traffic.raw_texts()]
    doubles = traffic.raw_doubles()
    for blob in blobs:
        for raw in texts:
            assert raw not in blob, f"{where} holds the raw value {raw!r}"
        for raw in doubles:
            assert raw not in blob, f"{where} holds a raw age as a double"


def output_files(config: Any) -> dict[str, bytes]:
    root = Path(config.output.path)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("repartition", ["never", "always"])
def test_no_raw_pii_value_leaves_the_pipeline(kafka_config: Any, unique: Any, logs: Captured,
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             repartition: str) -> None:
    monkeypatch.setenv("LOGLABEL_PII_KEY", KEY)
    config = kafka_config(
        pii={"fields": PII},
        fields={"join_id": ["user_id", "request_id"]},
        ingest={"repartition": repartition},
        topics={"rekeyed_predictions": unique("rk-p"), "rekeyed_outcomes": unique("rk-o")},
        output={"compression": "none"},  # so that a byte scan sees every stored string
        state={"memory_budget": "16KiB", "spill_dir": str(tmp_path / "spill")},
        drift={"warmup": 96, "min_samples": 16, "cooldown": 200,
               "categorical": {"window": 96, "block_size": 16, "min_expected": 2.0}},
    )
    traffic = send(config)

    # first run: windows still open at the end, so the checkpoints hold join state; each
    # spill file (scratch, deleted on close) is read just before it is deleted
    spilled: dict[str, bytes] = {}
    close = PendingStore.close

    def read_then_close(store: PendingStore) -> None:
        path = store._spill_path  # noqa: SLF001 - the file the store is about to delete
        if path.is_file():
            spilled[f"{path}#{len(spilled)}"] = path.read_bytes()
        close(store)

    monkeypatch.setattr(PendingStore, "close", read_then_close)
    first = run_pipeline(config, until_idle=3.0, drain=False, install_signals=False)
    assert spilled, "pending predictions were spilled to disk"
    assert_clean("the spill files", list(spilled.values()), traffic)
    pending = {name: data for name, data in output_files(config).items()
               if name.startswith("_checkpoints")}
    assert pending, "the first run checkpointed"
    assert_clean("a checkpoint with pending state", list(pending.values()), traffic)
    assert any(mac(p.name).encode() in b"".join(pending.values()) for p in traffic.people), \
        "the pending predictions are in the checkpoint, hashed"

    counters = run_pipeline(config, until_idle=3.0, drain=True, install_signals=False)

    # every file under output.path, byte for byte, and the shards decoded too
    files = output_files(config)
    assert any(n.endswith(".parquet") for n in files) and any("_checkpoints" in n for n in files)
    assert_clean("output.path", list(files.values()), traffic)
    root = Path(config.output.path)
    for name in (n for n in files if n.endswith(".parquet")):
        parquet = pq.ParquetFile(root / name)
        table_text = orjson.dumps(parquet.read().to_pylist(), default=str)
        assert_clean(f"{name} (decoded)", [table_text, str(parquet.metadata.to_dict()).encode()],
                     traffic)

    shards = pd.read_parquet(root)
    assert dict(zip(shards.prediction_id, shards.label_clicked, strict=True)) == traffic.clicked, \
        "hashed join ids still join predictions with their outcomes"
    assert "feat_email" not in shards.columns, "a dropped feature is missing"
    by_id = {f"{mac(p.user_id)}\x1fr{i}": p for i, p in enumerate(traffic.people)}
    for row in shards.itertuples():
        p = by_id[row.prediction_id]
        assert row.feat_name == mac(p.name)
        assert row.feat_age == (p.age // 10) * 10
        assert row.feat_zip == p.postcode[:3]

    # the dead-letter topic: values, keys and headers
    letters = read_topic(config, config.topics.dead_letter)
    assert len(letters) == traffic.malformed
    assert_clean("the dead-letter topic", message_bytes(letters), traffic)
    kinds = {}
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        assert letter.key is None
        kinds[headers["loglabel.reason"]] = headers["loglabel.pii"]
        assert len(headers["loglabel.original.sha256"]) == 64
    assert kinds["not_json"] == kinds["not_object"] == "withheld"
    assert kinds["missing_time"] == kinds["bad_type"] == "redacted"
    redacted = [orjson.loads(m.value) for m in letters if m.value.startswith(b'{"user_id"')]
    assert {doc["user_id"] for doc in redacted} >= {mac(traffic.people[1].user_id),
                                                   mac(traffic.people[2].user_id)}
    assert any(isinstance(doc.get("features"), dict)
               and doc["features"].get("zip") == traffic.people[1].postcode[:3]
               for doc in redacted)
    assert any(str(doc.get("features", "")).startswith("[withheld sha256:")
               for doc in redacted), "a list where features.* policies expect an object"

    # drift events: the topic and its summaries of (redacted) categories
    drift = read_topic(config, config.topics.drift)
    assert drift, "the postcode shift raised drift events"
    assert_clean("the drift topic", message_bytes(drift), traffic)
    events = [orjson.loads(m.value) for m in drift]
    zip_tops = {str(cat) for e in events if e["feature"] == "zip"
                for side in ("reference", "current") for cat, _ in e[side].get("top", [])}
    assert zip_tops & {area[:3] for area in EARLY_AREAS + LATE_AREAS}

    # internal topics (repartition = "always"): canonical records, redacted
    if repartition == "always":
        internal = (read_topic(config, config.topics.rekeyed_predictions)
                    + read_topic(config, config.topics.rekeyed_outcomes))
        assert first["rekeyed"] + counters["rekeyed"] == COUNT + sum(traffic.clicked.values())
        assert_clean("the internal topics", message_bytes(internal), traffic)

    # the logs, as JSON lines
    text = "\n".join(logs.lines)
    assert '"event":"drift"' in text
    if repartition == "never":  # the labeler logs its dead letters; the ingest stage counts them
        assert '"event":"dead_letter"' in text
    assert_clean("the logs", [text.encode()], traffic)
