"""A produced record the broker refuses stops the commit: offsets never move past it."""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from ingest.kafka.dead_letters import DeadLetterSink, DeliveryFailed
from ingest.records import DeadLetter, SourceRef

pytestmark = pytest.mark.kafka


def test_a_refused_dead_letter_fails_the_flush(kafka_config: Any) -> None:
    config = kafka_config()
    options = config.kafka.client_options()
    admin = KafkaAdminClient(**options)
    admin.create_topics([NewTopic(config.topics.dead_letter, 1, 1,
                                  topic_configs={"max.message.bytes": "2000"})])
    admin.close()
    producer = KafkaProducer(**options, retries=0)
    sink = DeadLetterSink(producer, config.topics.dead_letter)
    sink.send(DeadLetter("not_json", "small", b"x" * 100, SourceRef("raw", 0, 1)))
    sink.flush()  # accepted
    sink.send(DeadLetter("not_json", "too big for the topic", b"x" * 50_000,
                         SourceRef("raw", 0, 2)))
    with pytest.raises(DeliveryFailed, match="dead letters not acknowledged"):
        sink.flush()
    producer.close()
