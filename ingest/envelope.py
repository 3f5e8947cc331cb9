"""Forwarder envelopes: from the bytes in Kafka to a record and its envelope time.

See shared formats: Fluentd ``out_kafka2`` JSON, Fluent Bit ``out_kafka``,
Logstash ``codec => json`` and raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ingest.errors import RejectedMessage
from ingest.timeparse import parse_time

FORMATS = ("auto", "fluentd", "fluent-bit", "logstash", "json")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded message: the forwarded record, and the time its envelope carried."""

    record: dict[str, Any]
    time: float | None
    format: str


def unwrap(raw: bytes, fmt: str = "auto", time_key: str = "time") -> Envelope:
    """Decode ``raw`` in envelope format ``fmt``; raise ``RejectedMessage`` on bad input."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RejectedMessage("not_json", f"value is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RejectedMessage("not_object", f"JSON value is a {type(doc).__name__}, not an object")
    envelope_time = doc.get(time_key)
    return Envelope(doc, None if envelope_time is None else parse_time(envelope_time), fmt)
