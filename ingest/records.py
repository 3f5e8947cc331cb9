"""Canonical records that flow between loglabel's stages.

They are plain, immutable and cheap: frozen dataclasses with ``__slots__``.
Times are event times in epoch seconds (UTC) as floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Value = float | int | str | bool | None
"""A feature or prediction value after validation."""


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from: ``topic[partition]@offset``."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True, slots=True)
class Prediction:
    """One logged model prediction.

    ``join_id`` is the (possibly composite) key that outcomes refer to;
    ``features`` and ``prediction`` map names to validated values, with a
    missing field absent and a JSON null kept as ``None``.
    """

    join_id: str
    event_time: float
    model: str
    model_version: str | None
    features: Mapping[str, Any]
    prediction: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome event (click, purchase, dwell, ...) that refers to a prediction.

    ``outcome_id`` identifies a redelivered copy; when it is ``None`` a copy is
    recognised by (join_id, outcome_type, event_time).
    """

    join_id: str
    event_time: float
    outcome_type: str
    value: float | None = None
    outcome_id: str | None = None

    @property
    def dedupe_key(self) -> tuple[str, str, float] | str:
        if self.outcome_id is not None:
            return self.outcome_id
        return (self.join_id, self.outcome_type, self.event_time)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be decoded, with its reason and original bytes."""

    reason: str
    detail: str
    raw: bytes
    source: SourceRef | None = None


@dataclass(frozen=True, slots=True)
class SourceMark:
    """How far one raw partition's event time has come, as its reader saw it.

    The ingest stage writes these into every internal partition it feeds, after
    the records they cover, so the labeler can take its watermark as the
    minimum over every raw partition it depends on (Flink and Dataflow carry
    watermarks across a shuffle the same way).

    ``mark`` is the partition's event-time frontier (``ingest.repartition.frontier``),
    advanced by the time elapsed since its last event when the reader confirmed
    it caught up with the broker (``idle``). ``-inf`` means nothing read yet; an
    ``idle`` source with ``-inf`` is empty and caught up, and holds nobody back.
    """

    topic: str
    partition: int
    mark: float
    idle: bool = False


@dataclass(frozen=True, slots=True)
class LateOutcome:
    """An outcome that arrived behind its own raw partition's frontier by more than
    ``join.allowed_lateness_s``. By loglabel's rules it is never joined: it is
    counted as late (and kept as a correction, if configured)."""

    outcome: Outcome
