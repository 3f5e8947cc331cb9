"""The drift event: one record per detected change, its JSON form, and the
rule that keeps one event per change (:class:`Episodes`, :func:`dedupe`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

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
    ``rate`` for label streams. ``partition`` is the input partition whose
    monitor saw the change (None for checks made across partitions).
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
    partition: int | None = None

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
            "partition": self.partition,
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


# -- one event per change ------------------------------------------------------

Record = TypeVar("Record", DriftEvent, Mapping[str, Any])
"""A drift event, as the dataclass or as its JSON form (a record of ``topics.drift``)."""

EpisodeKey = tuple[str, str, str, "str | None"]


def _field(record: DriftEvent | Mapping[str, Any], name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name)


def _level(summary: Mapping[str, Any] | None) -> dict[str, float]:
    """A summary's level as comparable numbers: category shares, mean, or rate."""
    if not summary:
        return {}
    if "top" in summary:
        return {str(k): float(v) for k, v in summary["top"]}
    for name in ("mean", "rate"):
        v = summary.get(name)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            return {name: float(v)}
    return {}


def _linf(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in a.keys() | b.keys()), default=0.0)


def same_level(event: DriftEvent | Mapping[str, Any],
               published: DriftEvent | Mapping[str, Any]) -> bool:
    """Whether ``event``'s current level is nearer ``published``'s current than its reference."""
    now = _level(_field(event, "current"))
    new, old = _level(_field(published, "current")), _level(_field(published, "reference"))
    if not now or not new or not old or not now.keys() & new.keys():
        return False
    return _linf(now, new) < _linf(now, old)


class Episodes:
    """The rule that makes one event of a change seen by several partitions.

    Events are keyed by (model, kind, stream, feature). An event is *the same
    change* as the last one kept for its key, and :meth:`new` returns False,
    when its partition has not reported that key since the kept one and
    either its event time is within ``episode_s`` of the kept one's, or its
    ``current`` level is nearer the kept one's ``current`` than the kept
    one's ``reference`` (numeric ``mean``, label ``rate``, categorical
    ``top`` shares, in L-infinity): the partition moved to the same new level.
    A partition's second event for a key is a new change. An event without a
    partition (a check across partitions) counts as partition -1.

    The worker's drift hub applies it to its own partitions before
    publishing; a consumer of ``topics.drift`` applies it again across
    workers (each partition is owned by one worker at a time, and the topic
    is keyed by model, so one consumer sees every candidate of a change, in
    the order they were published). The result depends only on that order.
    """

    def __init__(self, episode_s: float = 600.0) -> None:
        self.episode_s = episode_s
        self._kept: dict[EpisodeKey, tuple[Any, set[int]]] = {}

    def new(self, event: DriftEvent | Mapping[str, Any]) -> bool:
        """True if ``event`` is a new change (keep it), False if it repeats a kept one."""
        key: EpisodeKey = (str(_field(event, "model")), str(_field(event, "kind")),
                           str(_field(event, "stream")), _field(event, "feature"))
        part = _field(event, "partition")
        partition = -1 if part is None else int(part)
        kept = self._kept.get(key)
        if kept is not None:
            published, seen = kept
            t, t0 = _field(event, "event_time"), _field(published, "event_time")
            near = (isinstance(t, int | float) and isinstance(t0, int | float)
                    and abs(t - t0) <= self.episode_s)
            if partition not in seen and (near or same_level(event, published)):
                seen.add(partition)
                return False
        self._kept[key] = (event, {partition})
        return True


def dedupe(records: Iterable[Record], episode_s: float = 600.0) -> list[Record]:
    """The records that are new changes under :class:`Episodes`, in their order.

    For a reader of ``topics.drift``: pass the records (decoded JSON) in the
    topic's order; events of one change reported by several partitions or
    workers come out once. ``episode_s`` should be the labelers'
    ``drift.episode_s``.

    >>> a = {"model": "m", "kind": "data", "stream": "mean", "feature": "x",
    ...      "event_time": 100.0, "partition": 0}
    >>> b = dict(a, event_time=160.0, partition=1)
    >>> [r["partition"] for r in dedupe([a, b])]
    [0]
    """
    episodes = Episodes(episode_s)
    return [r for r in records if episodes.new(r)]
