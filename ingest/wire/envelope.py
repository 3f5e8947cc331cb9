"""Forwarder envelopes: from the bytes in Kafka to a record and its envelope time.

Formats (``FORMATS``; the exact wire shapes are in the shared formats notes):

- ``fluentd``: Fluentd ``out_kafka2`` / ``out_rdkafka2`` with ``<format> @type json``.
  The value is the record itself; ``<inject>`` may add ``tag``, ``hostname`` and
  the time (float, unixtime or string) under ``time_key``. The keys are left in
  the record; the time is read from ``time_key``.
- ``json``: raw JSON from any client. Decoded exactly like ``fluentd``: the two
  cannot be told apart on the wire.
- ``fluent-bit``: Fluent Bit ``out_kafka`` with ``format json``: ``@timestamp``
  (double, ``iso8601`` or ``iso8601_ns``) is the envelope time and is removed
  from the record. (With another ``timestamp_key``, use ``json`` and point the
  field map's ``event_time`` at that key.)
- ``logstash``: the Logstash ``kafka`` output with ``codec => json``. ``@timestamp``
  is the envelope time. ``@timestamp``, ``@version`` and ``@metadata`` are
  removed, and so are the ECS objects that inputs add (``event``, ``host``,
  ``http``, ``url``, ``user_agent``), but only when their value is an object:
  a record's own ``"event": "click"`` is kept. When the top level lacks the
  record (``record_key`` is absent, or nothing but ``message``/``tags`` is
  left), the record is taken from ``event.original``, else from ``message``,
  when that string holds a JSON object.

Auto-detection (``fmt="auto"``), per message, on the parsed JSON object:

1. an ``@version`` key -> ``logstash``;
2. else ``@timestamp`` as the first key -> ``fluent-bit`` (it packs it first);
3. else ``@timestamp`` anywhere -> ``logstash`` (a pipeline that drops
   ``@version``; a Fluentd ``time_key @timestamp`` decodes the same way);
4. else -> ``json`` (which covers ``fluentd``).

Bad input raises ``RejectedMessage``:

- ``logstash_plain_codec``: the value is not JSON and starts with an ISO
  timestamp and a space: Logstash's default ``plain`` codec.
- ``not_json``: anything else that is not JSON, including invalid UTF-8,
  lone surrogates and nesting deeper than 1024.
- ``not_object``: JSON that is not an object.
- ``bad_time``: an envelope time that ``parse_time`` rejects.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity`` literals, which are not
JSON, and a literal such as ``1e400`` overflows a double. Such a value is still
parsed (into float NaN and inf, with the standard library, only after orjson
refused it), so the mapping's NaN/inf rule decides its fate instead of the
whole message becoming ``not_json``. Where the time comes from: the mapping
prefers the record's own event-time field and falls back to the envelope time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ingest.errors import RejectedMessage
from ingest.wire.paths import has_path
from ingest.wire.timeparse import parse_time

FORMATS = ("auto", "fluentd", "fluent-bit", "logstash", "json")
"""Accepted values of ``fmt``: per topic, or ``auto`` to detect per message."""

ENVELOPE_TIME_KEY = "@timestamp"
"""Where Fluent Bit (its default ``timestamp_key``) and Logstash put the time."""

_LOGSTASH_DROPPED = ("@version", "@metadata")
_ECS_OBJECTS = ("event", "host", "http", "url", "user_agent")
_NOT_RECORD_KEYS = frozenset(("message", "tags"))
_PLAIN_CODEC = re.compile(rb"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\S* ")
_NON_JSON_NUMBER = re.compile(rb"NaN|Infinity|[0-9][eE]\+?[0-9]{3}")
_NOT_JSON = object()


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded message: the forwarded record, and the time its envelope carried.

    ``time`` is epoch seconds or ``None`` when the envelope has no time.
    ``time_key`` names the record field ``time`` was read from when that field
    stays in the record (``fluentd``/``json``), so the mapping need not parse
    it twice; it is ``None`` when the time came from a removed envelope key.
    """

    record: dict[str, Any]
    time: float | None
    format: str
    time_key: str | None = None


def unwrap(raw: bytes, fmt: str = "auto", time_key: str = "time", *,
           record_key: str | None = None) -> Envelope:
    """Decode ``raw`` in envelope format ``fmt``; raise ``RejectedMessage`` on bad input.

    ``time_key`` is where ``fluentd``/``json`` messages carry their time.
    ``record_key`` is a dotted path that every record has (the join id); it
    tells the Logstash decoder whether the top level holds the record.
    Raises ``ValueError`` for an ``fmt`` not in ``FORMATS`` (a configuration
    error, not a bad message).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown envelope format {fmt!r}; expected one of {FORMATS}")
    doc = _object(raw)
    if fmt == "auto":
        fmt = detect(doc)
    record, time, used_key = _open(doc, fmt, time_key, record_key)
    return Envelope(record, time, fmt, used_key)


def unwrap_record(raw: bytes, fmt: str, time_key: str, record_key: str | None
                  ) -> tuple[dict[str, Any], float | None, str | None]:
    """``unwrap`` without building an ``Envelope``: ``(record, time, time_key)``.

    The decoder's hot path; same rules and errors, but ``fmt`` must already be
    known to be in ``FORMATS``.
    """
    doc = _object(raw)
    if fmt == "auto":
        fmt = detect(doc)
    return _open(doc, fmt, time_key, record_key)


def detect(doc: dict[str, Any]) -> str:
    """The envelope format of a parsed message, by the auto-detection rules above."""
    if "@version" in doc:
        return "logstash"
    if ENVELOPE_TIME_KEY not in doc:
        return "json"
    return "fluent-bit" if next(iter(doc)) == ENVELOPE_TIME_KEY else "logstash"


def _object(raw: bytes) -> dict[str, Any]:
    doc = _loads(raw)
    if type(doc) is not dict:
        raise RejectedMessage("not_object", f"JSON value is a {_json_type(doc)}, not an object")
    return doc


def _open(doc: dict[str, Any], fmt: str, time_key: str, record_key: str | None
          ) -> tuple[dict[str, Any], float | None, str | None]:
    record, value, used_key = open_document(doc, fmt, time_key, record_key)
    return record, None if value is None else parse_time(value), used_key


def open_document(doc: dict[str, Any], fmt: str, time_key: str, record_key: str | None
                  ) -> tuple[dict[str, Any], Any, str | None]:
    """The envelope rules on a parsed object of known ``fmt`` (not ``auto``), with the
    envelope time left as written: ``(record, time value or None, time_key)``. May change
    ``doc``. The batch decoder parses the times of a whole batch at once from this."""
    if fmt == "json" or fmt == "fluentd":
        return doc, doc.get(time_key), time_key
    value = doc.pop(ENVELOPE_TIME_KEY, None)
    if fmt == "fluent-bit":
        return doc, value, None
    return _logstash_record(doc, record_key), value, None


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = exc
    head = bytes(raw[:64])
    if _PLAIN_CODEC.match(head):
        raise RejectedMessage(
            "logstash_plain_codec",
            "value looks like Logstash's plain codec ('<@timestamp> <host> <message>'), "
            "not JSON: set codec => json in the Logstash kafka output",
        )
    if _NON_JSON_NUMBER.search(raw):
        doc = _loads_lenient(raw)
        if doc is not _NOT_JSON:
            return doc
    raise RejectedMessage("not_json", f"value is not JSON: {error}")


def _loads_lenient(raw: bytes) -> Any:
    """Parse JSON with NaN/Infinity literals or overflowing numbers; ``_NOT_JSON`` if it fails."""
    try:
        doc = json.loads(bytes(raw).decode("utf-8"))
        orjson.dumps(doc)  # rejects what orjson would have: lone surrogates, ints > 64 bits
    except (ValueError, RecursionError, TypeError, orjson.JSONEncodeError):
        return _NOT_JSON
    return doc


def _logstash_record(doc: dict[str, Any], record_key: str | None) -> dict[str, Any]:
    for key in _LOGSTASH_DROPPED:
        doc.pop(key, None)
    event = doc.get("event")
    for key in _ECS_OBJECTS:
        if type(doc.get(key)) is dict:
            del doc[key]
    if _holds_record(doc, record_key):
        return doc
    original = event.get("original") if type(event) is dict else None
    for candidate in (original, doc.get("message")):
        inner = _json_object(candidate)
        if inner is not None:
            return inner
    return doc


def _holds_record(doc: dict[str, Any], record_key: str | None) -> bool:
    if record_key is None:
        return any(key not in _NOT_RECORD_KEYS for key in doc)
    return has_path(doc, record_key)


def _json_object(text: object) -> dict[str, Any] | None:
    if type(text) is not str or not text.lstrip().startswith("{"):
        return None
    try:
        inner = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return inner if type(inner) is dict else None


def _json_type(doc: object) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return names.get(type(doc), "null")
