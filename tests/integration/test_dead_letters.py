"""A mixed stream with 5% malformed messages through real Kafka: every message is
accounted for, and every dead letter carries its reason and source in headers."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from ingest.kafka.topics import ensure_topics
from labeler.runtime.compose import run_pipeline
from labeler.tools.simulate import TrafficSpec, plan, render

pytestmark = pytest.mark.kafka

MALFORMED: list[tuple[str, bytes]] = [
    ("not_json", b"{\"request_id\": \"x\", "),
    ("logstash_plain_codec", b"2024-06-10T06:13:20.123Z web-1 {\"request_id\":\"r1\"}"),
    ("missing_id", b"{\"model\":\"ctr-v3\",\"score\":0.5,\"time\":1718000000.5}"),
    ("bad_time", b"{\"request_id\":\"q\",\"score\":0.5,\"time\":\"yesterday\"}"),
    ("missing_time", b"{\"request_id\":\"q\",\"score\":0.5}"),
    ("not_object", b"[1, 2, 3]"),
    ("non_finite", b"{\"request_id\":\"q\",\"score\":Infinity,\"time\":1718000000.5}"),
    ("empty", b""),
]


def test_five_percent_malformed_are_dead_lettered_with_reasons(kafka_config: Any) -> None:
    config = kafka_config()
    options = config.kafka.client_options()
    topics = config.topics
    ensure_topics(options, [topics.predictions, topics.outcomes], 2)
    rng = random.Random(3)
    good = [m for m in plan(TrafficSpec(count=1900, seed=4, click_rate=0.0, duplicate_fraction=0))
            if m.topic_kind == "prediction"]
    sent_bad: Counter[str] = Counter()
    producer = KafkaProducer(**options)
    stream: list[tuple[str, bytes]] = [("good", render(m, "fluentd")) for m in good]
    for i in range(100):
        stream.insert(rng.randrange(len(stream)), MALFORMED[i % len(MALFORMED)])
    for kind, value in stream:
        if kind != "good":
            sent_bad[kind] += 1
        producer.send(topics.predictions, value=value, key=str(rng.random()).encode())
    producer.flush()
    producer.close()

    counters = run_pipeline(config, until_idle=3.0, drain=True, install_signals=False)

    dead = {k.split(".dead_letter.")[1]: v for k, v in counters.items() if ".dead_letter." in k}
    assert counters["messages"] == len(stream) == 2000
    assert counters["prediction.decoded"] + sum(dead.values()) == counters["messages"]
    assert dead == dict(sent_bad)
    assert counters["labeled"] == len(good)

    consumer = KafkaConsumer(topics.dead_letter, **options, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000)
    letters = list(consumer)
    consumer.close()
    assert len(letters) == 100
    reasons: Counter[str] = Counter()
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        reasons[headers["loglabel.reason"]] += 1
        assert headers["loglabel.source.topic"] == topics.predictions
        assert int(headers["loglabel.source.partition"]) in (0, 1)
        assert int(headers["loglabel.source.offset"]) >= 0
        assert headers["loglabel.detail"]
        # the original bytes are kept as they were
        assert letter.value in {value for _, value in MALFORMED}
    assert reasons == sent_bad
