"""The drift event: one record per detected change, and its JSON form."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

DriftKind = Literal["data", "prediction", "concept", "schema", "skew"]
"""data: a feature; prediction: the model's output; concept: labels and errors;
schema: a structural mismatch; skew: serving differs from the training profile."""

KINDS: tuple[DriftKind, ...] = ("data", "prediction", "concept", "schema", "skew")


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """A change in one stream of one model, reported once per drift episode.

    ``stream`` names the statistic that changed (``mean``, ``dispersion``,
    ``distribution``, ``positive_rate``, ``error_rate``, or the schema/skew
    check); ``feature`` is the feature, prediction field or label concerned.
    ``statistic`` and ``threshold`` are the detector's own (see
    :class:`drift.detectors.Firing`); NaN when not defined. ``event_time`` and
    ``source`` belong to the input that completed the evidence. ``reference``
    and ``current`` summarize before and after: ``mean``/``std``/``n`` for
    numeric streams, ``top`` ([category, share] pairs) for categorical ones,
    ``rate`` for label streams.
    """

    model: str
    kind: DriftKind
    stream: str
    feature: str | None
    detector: str
    params: Mapping[str, Any]
    statistic_name: str
    statistic: float
    threshold: float
    event_time: float
    source: str | None = None
    reference: Mapping[str, Any] = field(default_factory=dict)
    current: Mapping[str, Any] = field(default_factory=dict)
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON log form: ``{"event": "drift", ...}``, with NaN as null."""
        return {
            "event": "drift",
            "model": self.model,
            "kind": self.kind,
            "stream": self.stream,
            "feature": self.feature,
            "detector": self.detector,
            "params": _clean(self.params),
            "statistic_name": self.statistic_name,
            "statistic": _num(self.statistic),
            "threshold": _num(self.threshold),
            "event_time": self.event_time,
            "source": self.source,
            "reference": _clean(self.reference),
            "current": _clean(self.current),
            "detail": self.detail,
        }


def numeric_summary(n: float, mean: float, std: float) -> dict[str, float]:
    """The summary of a numeric stream."""
    return {"n": n, "mean": mean, "std": std}


def top_summary(shares: Sequence[tuple[Any, float]], n: float) -> dict[str, Any]:
    """The summary of a categorical stream: its top categories with shares."""
    return {"n": n, "top": [[str(k), round(v, 6)] for k, v in shares]}


def _num(x: float) -> float | None:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _clean(value: Any) -> Any:
    """Make a summary JSON-safe: non-finite floats become null, tuples lists."""
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value
