"""Decoding one Kafka message into a canonical record or a dead letter. Never raises.

The steps are ``ingest.wire.envelope.unwrap`` (bytes -> record and envelope time),
``ingest.wire.mapping`` (record -> Prediction/Outcome) and, for predictions, an
optional ``ingest.wire.schema.SchemaEnforcer``. An optional ``ingest.wire.pii.PiiPolicy``
redacts the record between the first two steps and makes every dead letter
safe by its rule. Each rule lives in its module's docstring;
``DEAD_LETTER_REASONS`` lists every reason a message can be dead-lettered with.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Literal

from ingest.errors import RejectedMessage
from ingest.records import DeadLetter, Outcome, Prediction, SourceRef
from ingest.wire.envelope import FORMATS, unwrap_record
from ingest.wire.mapping import FieldMap, outcome_of, prediction_of
from ingest.wire.pii import PiiPolicy
from ingest.wire.schema import SchemaEnforcer

Kind = Literal["prediction", "outcome"]

DEFAULT_MIN_TIME = 946684800.0
"""2000-01-01T00:00:00Z: no prediction log is older; an earlier time is a unit or a
placeholder mistake (``time = 1.0``), dead-lettered as ``past_time``."""

DEAD_LETTER_REASONS: Mapping[str, str] = {
    "empty": "the message has no value (a tombstone) or an empty one",
    "logstash_plain_codec": "Logstash's plain codec output, not JSON: set codec => json",
    "not_json": "the value is not JSON (or not UTF-8, or nested deeper than 1024)",
    "not_object": "the value is JSON but not an object",
    "bad_time": "a time field is present but not a valid time",
    "missing_time": "neither the record nor its envelope has an event time",
    "missing_id": "a join id part is missing, null or empty",
    "bad_id": "a join id part (or the outcome id) is not a string or int, or holds \\x1f",
    "missing_prediction": "none of the configured prediction fields is present",
    "bad_type": "a value has the wrong type (object/array for a scalar, or a schema type change)",
    "non_finite": "a feature, prediction or outcome value is +-infinity",
    "out_of_range": "an int is outside the signed 64-bit range",
    "missing_required": "a feature the schema requires is missing or null",
    "past_time": "the event time is before ingest.min_time (default 2000-01-01): a wrong "
                 "unit or a placeholder such as 0 or 1.0 would create a 1970 partition",
    "future_time": "the event time is further ahead of this host's clock than "
                   "ingest.max_future_s (it would move the watermark and close windows early)",
    "internal_error": "a decoder bug: the message is kept and the stream goes on",
}
"""Every dead-letter reason code, with its meaning (also the counter suffixes)."""


class Decoder:
    """Turns raw message values of one stream into records, counting every message.

    ``counters`` receives exactly one of ``<kind>.decoded`` or
    ``<kind>.dead_letter.<reason>`` per call, so decoded + dead-lettered always
    equals the messages seen; a ``schema`` adds its ``schema_skew.*`` counts
    to the same counter. ``fmt`` is one of ``ingest.wire.envelope.FORMATS``.
    ``pii`` is applied to each record right after its envelope is opened and
    before the mapping, and to every dead letter (``ingest.wire.pii``); without
    one (or with an empty one) nothing of it runs and dead letters keep the
    original bytes. With ``max_future_s``, a record whose event time is that
    far ahead of ``clock()`` is a ``future_time`` dead letter; a record whose
    event time is before ``min_time`` (epoch seconds, default
    ``DEFAULT_MIN_TIME``; ``None``: no lower bound) is a ``past_time`` one. Raises
    ``ValueError`` at construction for an unknown format, or a schema given to
    an outcome decoder.
    """

    def __init__(self, kind: Kind, fields: FieldMap, fmt: str = "auto",
                 counters: Counter[str] | None = None, *,
                 schema: SchemaEnforcer | None = None, pii: PiiPolicy | None = None,
                 max_future_s: float | None = None,
                 min_time: float | None = DEFAULT_MIN_TIME,
                 clock: Callable[[], float] = time.time) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown envelope format {fmt!r}; expected one of {FORMATS}")
        if kind not in ("prediction", "outcome"):
            raise ValueError(f"unknown kind {kind!r}")
        if schema is not None and kind != "prediction":
            raise ValueError("a schema applies to predictions only")
        self.kind = kind
        self.fields = fields
        self.fmt = fmt
        self.schema = schema
        self.pii = pii if pii else None
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.max_future_s = max_future_s
        self.min_time = min_time
        self._clock = clock
        self._time_key = fields.event_time or "time"
        self._record_key = fields.join_id[0]
        self._to_record = prediction_of if kind == "prediction" else outcome_of
        self._decoded = f"{kind}.decoded"
        self._dead = f"{kind}.dead_letter."
        # a policy on the time field: the mapping must read the redacted time, not unwrap's
        self._pii_time = self.pii is not None and self.pii.covers(self._time_key)

    def decode(self, raw: bytes | None, source: SourceRef | None = None
               ) -> Prediction | Outcome | DeadLetter:
        """The record in ``raw``, or a ``DeadLetter`` with its reason and the original bytes
        (with a PII policy: the redacted value of ``ingest.wire.pii``'s dead-letter rule)."""
        try:
            if not raw:
                raise RejectedMessage("empty", "message has no value (tombstone)"
                                      if raw is None else "message value is empty")
            doc, time, time_key = unwrap_record(raw, self.fmt, self._time_key, self._record_key)
            if self.pii is not None:
                doc = self.pii.apply(doc, self.counters)
                if self._pii_time and time_key is not None:
                    time = time_key = None
            record = self._to_record(doc, time, time_key, self.fields)
            if self.min_time is not None and record.event_time < self.min_time:
                raise RejectedMessage(
                    "past_time", f"event time {_utc(record.event_time)} is before "
                    f"ingest.min_time ({_utc(self.min_time)}): check the time field's unit")
            if self.max_future_s is not None:
                ahead = record.event_time - self._clock()
                if ahead > self.max_future_s:
                    raise RejectedMessage(
                        "future_time", f"event time is {ahead:.0f} s ahead of this host's clock "
                        f"(more than ingest.max_future_s = {self.max_future_s:g})")
            if self.schema is not None and isinstance(record, Prediction):
                record = self.schema.check(record, self.counters)
        except RejectedMessage as exc:
            self.counters[self._dead + exc.reason] += 1
            letter = DeadLetter(exc.reason, exc.detail, bytes(raw or b""), source)
            return letter if self.pii is None else self.pii.redact_dead_letter(letter)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the stream
            self.counters[self._dead + "internal_error"] += 1
            letter = DeadLetter("internal_error", f"{type(exc).__name__}: {exc}",
                                bytes(raw or b""), source)
            return letter if self.pii is None else self.pii.redact_dead_letter(letter)
        self.counters[self._decoded] += 1
        return record


def _utc(t: float) -> str:
    """``t`` as an ISO-8601 UTC second, for details a person reads."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
