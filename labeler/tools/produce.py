"""Sending simulated traffic into Kafka, keyed like a forwarder configured for loglabel."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka.partitioner import Partitioner

from ingest.kafka.clients import new_producer
from ingest.kafka.topics import ensure_topics
from labeler.join.labels import LabelSpec
from labeler.tools.oracle import oracle_labels
from labeler.tools.simulate import TrafficSpec, paced, render, resolved, stream

PARTITIONERS = ("murmur2", "crc32", "none")


class Crc32Partitioner(Partitioner):
    """Fluentd out_kafka2's default: crc32 of the key, unlike Java clients' murmur2."""

    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any,
                  serialized_value: Any, cluster: Any) -> int:
        partitions = sorted(cluster.partitions_for_topic(topic))
        return partitions[zlib.crc32(serialized_key or b"") % len(partitions)]


def send_traffic(
    client_options: Mapping[str, Any],
    spec: TrafficSpec,
    prediction_topic: str,
    outcome_topic: str,
    envelope: str = "fluentd",
    rate: float = 0.0,
    partitions: int = 4,
    partitioner: str = "murmur2",
    truth: str | Path | None = None,
    labels: tuple[LabelSpec, ...] = (LabelSpec("clicked"),),
    producer_settings: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Produce the simulated traffic as it is generated (bounded memory, the first
    message goes out at once); then optionally write the oracle's labels to ``truth``.

    ``partitioner``: ``murmur2`` (keyed, like a Java/kafka-python producer or
    Fluentd with ``partitioner_hash_function murmur2``), ``crc32`` (Fluentd's
    default hash) or ``none`` (no key: spread over partitions).
    ``producer_settings`` add to (or override) the producer's own settings.
    Returns counts of messages sent per kind.
    """
    if partitioner not in PARTITIONERS:
        raise ValueError(f"partitioner must be one of {PARTITIONERS}")
    ensure_topics(client_options, [prediction_topic, outcome_topic], partitions)
    spec = resolved(spec)  # the truth's second pass must see the same start
    extra: dict[str, Any] = {}
    if partitioner == "crc32":
        extra["partitioner"] = Crc32Partitioner()
    settings = {"linger_ms": 20, "batch_size": 256 * 1024, "compression_type": None,
                "acks": "all", **extra, **(producer_settings or {})}
    producer = new_producer(client_options, **settings)
    counts = {"prediction": 0, "outcome": 0}
    try:
        for message in paced(stream(spec), rate):
            topic = prediction_topic if message.topic_kind == "prediction" else outcome_topic
            key = None if partitioner == "none" else message.key.encode()
            producer.send(topic, value=render(message, envelope), key=key)
            counts[message.topic_kind] += 1
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=30)
    if truth is not None:
        write_truth(spec, truth, labels)
    return counts


def write_truth(spec: TrafficSpec, path: str | Path, labels: tuple[LabelSpec, ...]) -> None:
    """The oracle's exact labels for ``spec`` (resolved: its ``start`` set), from two
    fresh passes over the deterministic stream."""
    frame = oracle_labels(
        (m.event for m in stream(spec) if m.topic_kind == "prediction"),  # type: ignore[misc]
        (m.event for m in stream(spec) if m.topic_kind == "outcome"),  # type: ignore[misc]
        spec.window, spec.early_tolerance, labels,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
