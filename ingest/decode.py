"""Decoding one Kafka message into a canonical record or a dead letter. Never raises."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from ingest.envelope import unwrap
from ingest.errors import RejectedMessage
from ingest.mapping import FieldMap, to_outcome, to_prediction
from ingest.records import DeadLetter, Outcome, Prediction, SourceRef

Kind = Literal["prediction", "outcome"]


class Decoder:
    """Turns raw message values of one stream into records, counting every message.

    ``counters`` receives ``decoded`` or ``dead_letter.<reason>`` for each call,
    so that decoded + dead-lettered always equals the messages seen.
    """

    def __init__(self, kind: Kind, fields: FieldMap, fmt: str = "auto",
                 counters: Counter[str] | None = None) -> None:
        self.kind = kind
        self.fields = fields
        self.fmt = fmt
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self._time_key = fields.event_time or "time"
        self._to_record = to_prediction if kind == "prediction" else to_outcome

    def decode(self, raw: bytes | None, source: SourceRef | None = None
               ) -> Prediction | Outcome | DeadLetter:
        try:
            if raw is None:
                raise RejectedMessage("empty", "message has no value (tombstone)")
            record = self._to_record(unwrap(raw, self.fmt, self._time_key), self.fields)
        except RejectedMessage as exc:
            self.counters[f"{self.kind}.dead_letter.{exc.reason}"] += 1
            return DeadLetter(exc.reason, exc.detail, raw or b"", source)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the stream
            self.counters[f"{self.kind}.dead_letter.internal_error"] += 1
            return DeadLetter("internal_error", f"{type(exc).__name__}: {exc}", raw or b"", source)
        self.counters[f"{self.kind}.decoded"] += 1
        return record
