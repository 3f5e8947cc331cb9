"""The one msgpack codec of canonical records: internal topics and state logs.

A record is a msgpack array: ``[kind, ...fields]`` with kind ``1`` for a
prediction and ``2`` for an outcome. It is about a third of the size of the
forwarded JSON and decodes without any field mapping.

Internal messages carry a *batch*: a msgpack array of such records, all for
the same internal partition. One Kafka record per batch instead of per event
removes most of the producer's per-record cost; a batch is atomic, so the
labeler's offsets still say exactly which records it has read.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgpack

from ingest.records import DeadLetter, Outcome, Prediction, SourceRef

_PREDICTION = 1
_OUTCOME = 2


def pack(record: Prediction | Outcome) -> list[Any]:
    """The plain array form of ``record``."""
    if type(record) is Prediction:
        return [_PREDICTION, record.join_id, record.event_time, record.model,
                record.model_version, dict(record.features), dict(record.prediction)]
    o: Any = record
    return [_OUTCOME, o.join_id, o.event_time, o.outcome_type, o.value, o.outcome_id]


def unpack(v: Any) -> Prediction | Outcome:
    """Inverse of ``pack``; raises ``ValueError`` on anything else."""
    if isinstance(v, list) and v and v[0] == _PREDICTION and len(v) == 7:
        return Prediction(v[1], v[2], v[3], v[4], v[5], v[6])
    if isinstance(v, list) and v and v[0] == _OUTCOME and len(v) == 6:
        return Outcome(v[1], v[2], v[3], v[4], v[5])
    raise ValueError("not a canonical record")


def unpack_prediction(v: Any) -> Prediction:
    """``unpack`` for a value that must be a prediction; raises ``ValueError`` otherwise."""
    record = unpack(v)
    if type(record) is not Prediction:
        raise ValueError("not a canonical prediction")
    return record


def unpack_outcome(v: Any) -> Outcome:
    """``unpack`` for a value that must be an outcome; raises ``ValueError`` otherwise."""
    record = unpack(v)
    if type(record) is not Outcome:
        raise ValueError("not a canonical outcome")
    return record


def encode(record: Prediction | Outcome) -> bytes:
    return msgpack.packb(pack(record), use_bin_type=True)


def decode(raw: bytes) -> Prediction | Outcome:
    """Inverse of ``encode``; raises ``ValueError`` on anything else."""
    return unpack(_loads(raw))


def encode_batch(packed: list[list[Any]]) -> bytes:
    """One internal message holding already ``pack``-ed records."""
    return msgpack.packb(packed, use_bin_type=True)


def decode_batch(raw: bytes) -> list[Prediction | Outcome]:
    """Inverse of ``encode_batch``; raises ``ValueError`` on anything else."""
    batch = _loads(raw)
    if not isinstance(batch, list):
        raise ValueError("not a batch of canonical records")
    return [unpack(v) for v in batch]


def _loads(raw: bytes) -> Any:
    try:
        return msgpack.unpackb(raw, raw=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise ValueError(f"not msgpack: {exc}") from None


class CanonicalDecoder:
    """Decodes the batches of an internal (re-keyed) topic.

    ``decode`` returns the list of records in one message, or a ``DeadLetter``.
    """

    batched = True

    def __init__(self, kind: str, counters: Counter[str] | None = None) -> None:
        self.kind = kind
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self._type = Prediction if kind == "prediction" else Outcome

    def decode(self, raw: bytes | None, source: SourceRef | None = None
               ) -> list[Prediction | Outcome] | DeadLetter:
        try:
            records = decode_batch(raw or b"")
            if any(type(r) is not self._type for r in records):
                raise ValueError(f"expected only {self.kind}s")
        except ValueError as exc:
            self.counters[f"{self.kind}.dead_letter.bad_internal_record"] += 1
            return DeadLetter("bad_internal_record", str(exc), raw or b"", source)
        self.counters[f"{self.kind}.rekeyed_read"] += len(records)
        return records
