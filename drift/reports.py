"""From what a detector or a check found to a :class:`DriftEvent`.

The monitors report alarms in their own terms (a numeric column, a category
bucket, a label stream, a skew finding); this module names them the same way
for every consumer of drift events. :class:`SchemaLog` keeps schema events to
one per (model, kind, feature) and cooldown, however often they occur.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drift.baseline.skew import SkewFinding
from drift.detectors import Spec, spec_params
from drift.events import DriftEvent, DriftKind
from drift.monitors.categorical import CategoricalAlarm
from drift.monitors.labels import LabelAlarm
from drift.monitors.numeric import NumericAlarm


@dataclass(frozen=True, slots=True)
class Evidence:
    """The model, event time and input offset an event is reported at."""

    model: str
    event_time: float
    source: str | None = None


def numeric_event(alarm: NumericAlarm, at: Evidence) -> DriftEvent:
    """A data or prediction event for a numeric stream (``mean`` or ``dispersion``)."""
    kind: DriftKind = "prediction" if alarm.kind == "prediction" else "data"
    return _detector_event(alarm, kind, alarm.name, at)


def _detector_event(alarm: NumericAlarm | LabelAlarm, kind: DriftKind, feature: str,
                    at: Evidence) -> DriftEvent:
    """An event whose statistic is the firing detector's own."""
    f = alarm.firing
    return DriftEvent(
        model=at.model,
        kind=kind,
        stream=alarm.stream,
        feature=feature,
        detector=f.detector,
        params=alarm.params,
        statistic_name=f.statistic_name,
        statistic=f.statistic,
        threshold=f.threshold,
        event_time=at.event_time,
        source=at.source,
        reference=alarm.reference,
        current=alarm.current,
    )


def categorical_event(
    alarm: CategoricalAlarm, specs: Sequence[Spec], window: int, kind: str, name: str, at: Evidence
) -> DriftEvent:
    """A data or prediction event for a categorical stream, in L-infinity distance."""
    return DriftEvent(
        model=at.model,
        kind="prediction" if kind == "prediction" else "data",
        stream="distribution",
        feature=name,
        detector=alarm.firing.detector,
        params=spec_params(specs, alarm.firing.detector, window=window),
        statistic_name="linf",
        statistic=alarm.distance,
        threshold=alarm.threshold,
        event_time=at.event_time,
        source=at.source,
        reference=alarm.reference,
        current=alarm.current,
        detail=f"largest change in category {alarm.category!r}",
    )


def label_event(alarm: LabelAlarm, label: str, at: Evidence) -> DriftEvent:
    """A concept event: the positive rate or the error rate of ``label`` changed."""
    return _detector_event(alarm, "concept", label, at)


def skew_event(finding: SkewFinding, window: int, at: Evidence) -> DriftEvent:
    """A skew event: a served window's distribution differs from training."""
    name = "jensen_shannon" if finding.detail == "jensen_shannon" else "linf"
    return DriftEvent(
        model=at.model,
        kind="skew",
        stream=finding.check,
        feature=finding.feature,
        detector="baseline",
        params={"window": window},
        statistic_name=name,
        statistic=finding.statistic,
        threshold=finding.threshold,
        event_time=at.event_time,
        source=at.source,
        reference=finding.reference,
        current=finding.current,
        detail=finding.detail,
    )


class SchemaLog:
    """Schema events, at most one per (model, kind, feature) per ``cooldown_s`` of event time.

    Suppressed occurrences are counted; the next event reports them all in
    its ``statistic`` (``occurrences``) unless the check gave its own statistic.
    """

    def __init__(self, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self._seen: dict[tuple[str, str, str | None], list[float]] = {}

    def report(
        self,
        at: Evidence,
        kind: str,
        feature: str | None,
        detail: str,
        statistic: float | None = None,
        threshold: float = math.nan,
    ) -> list[DriftEvent]:
        """The event for this occurrence, or none if one was reported recently."""
        key = (at.model, kind, feature)
        seen = self._seen.get(key)
        if seen is not None and at.event_time - seen[0] < self.cooldown_s:
            seen[1] += 1.0
            return []
        count = 1.0 if seen is None else seen[1] + 1.0
        self._seen[key] = [at.event_time, 0.0]
        return [
            DriftEvent(
                model=at.model,
                kind="schema",
                stream=kind,
                feature=feature,
                detector="schema",
                params={"cooldown_s": self.cooldown_s},
                statistic_name="occurrences" if statistic is None else kind,
                statistic=count if statistic is None else statistic,
                threshold=threshold,
                event_time=at.event_time,
                source=at.source,
                detail=detail,
            )
        ]

    def state(self) -> list[list[Any]]:
        """Plain data for :meth:`restore`: [model, kind, feature, last time, suppressed]."""
        return [[m, k, f, t, c] for (m, k, f), (t, c) in self._seen.items()]

    def restore(self, state: list[list[Any]]) -> None:
        """Continue from a :meth:`state`."""
        self._seen = {(m, k, f): [float(t), float(c)] for m, k, f, t, c in state}

    def findings(
        self, findings: Sequence[SkewFinding], window: int, at: Evidence
    ) -> list[DriftEvent]:
        """Events for skew-check findings: schema ones through the log, skew ones directly."""
        events: list[DriftEvent] = []
        for f in findings:
            if f.kind == "schema":
                events += self.report(at, f.check, f.feature, f.detail, f.statistic, f.threshold)
            else:
                events.append(skew_event(f, window, at))
        return events
