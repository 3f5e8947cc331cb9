"""The one msgpack codec of canonical records: internal topics and state logs.

A record is a msgpack array: ``[kind, ...fields]`` with kind ``1`` for a
prediction and ``2`` for an outcome. It is about a third of the size of the
forwarded JSON and decodes without any field mapping.

Internal messages carry a *batch*: a msgpack array of such records, all for
the same internal partition. One Kafka record per batch instead of per event
removes most of the producer's per-record cost; a batch is atomic, so the
labeler's offsets still say exactly which records it has read.

A batch of records read from one raw partition is *sourced*:
``["sourced", raw topic, raw partition, [raw offsets], [records]]``, each
record with the raw offset it was read at. A restarted ingest stage reads its
raw partitions again from its last commit and sends those records again; the
labeler keeps, per raw partition, the highest raw offset it has taken, and
skips what is not above it (``replayed_records``). Event time cannot tell a
replay in a fast backfill: the replayed ids may be past the dedupe horizon.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

import msgpack

from ingest.records import DeadLetter, LateOutcome, Outcome, Prediction, SourceMark, SourceRef

_PREDICTION = 1
_OUTCOME = 2
_SOURCE_MARK = 3
_LATE_OUTCOME = 4

Internal = Prediction | Outcome | SourceMark | LateOutcome
"""What an internal topic's batch holds."""

SOURCED = "sourced"  # the first element of a sourced batch (a record starts with an int)

_packers = threading.local()


def packb(value: Any) -> bytes:
    """``msgpack.packb(value, use_bin_type=True)`` with a packer kept per thread: the
    module function builds a packer on every call, which is most of the cost of the
    small arrays the state log writes (a packer resets itself when packing fails)."""
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    data: bytes = packer.pack(value)
    return data


_NUMBER = (int, float)
_TEXT = (str, type(None))


def pack(record: Internal) -> list[Any]:
    """The plain array form of ``record``."""
    kind = type(record)
    if kind is Prediction:
        p: Any = record
        return [_PREDICTION, p.join_id, p.event_time, p.model, p.model_version,
                dict(p.features), dict(p.prediction)]
    if kind is Outcome:
        o: Any = record
        return [_OUTCOME, o.join_id, o.event_time, o.outcome_type, o.value, o.outcome_id]
    if kind is LateOutcome:
        return [_LATE_OUTCOME, *pack(record.outcome)[1:]]  # type: ignore[union-attr]
    m: Any = record
    return [_SOURCE_MARK, m.topic, m.partition, None if m.mark == -math.inf else m.mark, m.idle]


def unpack(v: Any) -> Internal:
    """Inverse of ``pack``. Every field's type is checked, so a malformed record is a
    ``ValueError`` here (and a dead letter for the caller), never a ``TypeError``
    deep in the join."""
    if type(v) is not list or not v:
        raise ValueError("not a canonical record")
    kind = v[0]
    if kind == _PREDICTION and len(v) == 7:
        if not (type(v[1]) is str and _finite(v[2]) and type(v[3]) is str
                and type(v[4]) in _TEXT and type(v[5]) is dict and type(v[6]) is dict):
            raise ValueError("a prediction with a field of the wrong type")
        return Prediction(v[1], float(v[2]), v[3], v[4], v[5], v[6])
    if kind in (_OUTCOME, _LATE_OUTCOME) and len(v) == 6:
        if not (type(v[1]) is str and _finite(v[2]) and type(v[3]) is str
                and (v[4] is None or type(v[4]) in _NUMBER) and type(v[5]) in _TEXT):
            raise ValueError("an outcome with a field of the wrong type")
        outcome = Outcome(v[1], float(v[2]), v[3], v[4], v[5])
        return outcome if kind == _OUTCOME else LateOutcome(outcome)
    if kind == _SOURCE_MARK and len(v) == 5:
        if not (type(v[1]) is str and type(v[2]) is int and type(v[4]) is bool
                and (v[3] is None or _finite(v[3]))):
            raise ValueError("a source mark with a field of the wrong type")
        return SourceMark(v[1], v[2], -math.inf if v[3] is None else float(v[3]), v[4])
    raise ValueError("not a canonical record")


def _finite(x: Any) -> bool:
    return type(x) in _NUMBER and math.isfinite(x)


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


def encode(record: Internal) -> bytes:
    return packb(pack(record))


def decode(raw: bytes) -> Internal:
    """Inverse of ``encode``; raises ``ValueError`` on anything else."""
    return unpack(_loads(raw))


def encode_batch(packed: list[list[Any]]) -> bytes:
    """One internal message holding already ``pack``-ed records."""
    return packb(packed)


def encode_sourced(topic: str, partition: int, offsets: list[int],
                   packed: list[list[Any]]) -> bytes:
    """One internal message of records read from raw ``topic[partition]`` at ``offsets``."""
    return packb([SOURCED, topic, partition, offsets, packed])


class Source:
    """Where the records of a sourced batch were read: a raw partition, an offset each."""

    __slots__ = ("topic", "partition", "offsets")

    def __init__(self, topic: str, partition: int, offsets: list[int]) -> None:
        self.topic = topic
        self.partition = partition
        self.offsets = offsets


def decode_sourced(raw: bytes) -> tuple[Source | None, list[Internal]]:
    """A batch and, if it is sourced, where its records were read; ``ValueError`` on
    anything else."""
    batch = _loads(raw)
    if not isinstance(batch, list):
        raise ValueError("not a batch of canonical records")
    if not batch or batch[0] != SOURCED:
        return None, [unpack(v) for v in batch]
    if not (len(batch) == 5 and type(batch[1]) is str and type(batch[2]) is int
            and type(batch[3]) is list and type(batch[4]) is list
            and len(batch[3]) == len(batch[4]) and all(type(o) is int for o in batch[3])):
        raise ValueError("a sourced batch without its raw topic, partition and offsets")
    return Source(batch[1], batch[2], batch[3]), [unpack(v) for v in batch[4]]


def decode_batch(raw: bytes) -> list[Internal]:
    """Inverse of ``encode_batch`` (and of ``encode_sourced``, without the source);
    raises ``ValueError`` on anything else."""
    return decode_sourced(raw)[1]


def _loads(raw: bytes) -> Any:
    try:
        return msgpack.unpackb(raw, raw=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise ValueError(f"not msgpack: {exc}") from None


class CanonicalDecoder:
    """Decodes the batches of an internal (re-keyed) topic.

    ``decode`` returns the list of records in one message (records of this
    topic's kind, late outcomes and source marks), or a ``DeadLetter`` with
    reason ``bad_internal_record``: a malformed batch never stops a partition.
    """

    batched = True

    def __init__(self, kind: str, counters: Counter[str] | None = None) -> None:
        self.kind = kind
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self._types: tuple[type, ...] = ((Prediction, SourceMark) if kind == "prediction"
                                         else (Outcome, LateOutcome, SourceMark))

    def decode(self, raw: bytes | None, source: SourceRef | None = None
               ) -> list[Internal] | DeadLetter:
        decoded = self.decode_sourced(raw, source)
        return decoded if type(decoded) is DeadLetter else decoded[1]  # type: ignore[index]

    def decode_sourced(self, raw: bytes | None, source: SourceRef | None = None
                       ) -> tuple[Source | None, list[Internal]] | DeadLetter:
        """``decode``, with where a sourced batch's records were read."""
        try:
            origin, records = decode_sourced(raw or b"")
            if any(type(r) not in self._types for r in records):
                raise ValueError(f"a record that does not belong in the {self.kind} topic")
        except ValueError as exc:
            self.counters[f"{self.kind}.dead_letter.bad_internal_record"] += 1
            return DeadLetter("bad_internal_record", str(exc), raw or b"", source)
        self.counters[f"{self.kind}.rekeyed_read"] += sum(
            1 for r in records if type(r) is not SourceMark)
        return origin, records
