"""Wiring drift monitoring into the worker.

The worker feeds every decoded prediction and every labeled example to a
``DriftHub``. Each drift event the monitor reports goes through
``drift.sinks`` to four places at once: a JSON log line (``"event":
"drift"``), the ``topics.drift`` Kafka topic (JSON, keyed by model), Fluentd
through fluent-logger when ``drift.fluentd.enabled``, and the
``drift.<kind>`` counters. A failure inside monitoring is counted
(``drift.internal_error``) and logged, and never stops labeling.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import KafkaProducer

from drift.events import DriftEvent
from drift.monitor import DriftMonitor
from drift.settings import DriftSettings
from drift.sinks import DriftCounters, FanoutSink, build_sinks
from ingest.records import Prediction, SourceRef
from ingest.wire.schema import parse_skew_key
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.logs import log

SCHEMA_KINDS = {"new_feature": "new_feature", "missing_feature": "missing_feature",
                "numeric_string": "type_mismatch"}


class DriftHub:
    """Feeds drift monitors from the worker and publishes their events.

    Each input partition has its own ``DriftMonitor``: event time is ordered
    within a partition but not across partitions (a backfill may read one
    partition's whole day before the next one's), and a worker in a scaled-out
    group only sees its own partitions anyway.

    One event per change per model (within this worker): an event for
    (model, kind, stream, feature) from partition *p* is the change last
    published for that key, and is counted as ``drift.same_episode`` instead
    of published, when *p* has not reported that key since the publication
    and either (a) it came within ``drift.episode_s`` of event time, or (b)
    its ``current`` level is nearer the published event's ``current`` than the
    published event's ``reference`` (numeric ``mean``, label ``rate``, or
    categorical ``top`` shares, in L-infinity): the partition moved to the
    same new level. A partition's second event for a key is always a new
    change. Across workers the same rule applies to the ``topics.drift``
    records, keyed by model (for a consumer that dedupes).

    Called from the worker's poll thread only.

    The label watched for concept drift is the first label column when it is
    boolean (an ``any`` label); the score is ``drift.prediction.fields[0]``.
    """

    def __init__(self, settings: DriftSettings, topic: str, counters: Counter[str],
                 label_name: str | None) -> None:
        self.settings = settings
        self.monitors: dict[int, DriftMonitor] = {}
        self.schema_monitor = DriftMonitor(settings)
        # Per (model, kind, stream, feature): the last published event and the
        # partitions that have reported it.
        self._episodes: dict[tuple[str, str, str, str | None],
                             tuple[DriftEvent, set[int]]] = {}
        self.topic = topic
        self.counters = counters
        self.label_name = label_name
        self.score_field = settings.prediction.fields[0] if settings.prediction.fields else None
        self.events: deque[DriftEvent] = deque(maxlen=settings.history)
        self._kinds = DriftCounters(on_event=self._count)
        self._sinks: FanoutSink = build_sinks(settings, counters=self._kinds)
        self._skew_seen: dict[str, int] = {}
        self._last_time = -math.inf

    def _count(self, kind: str, _model: str) -> None:
        self.counters[f"drift.{kind}"] += 1

    def attach(self, producer: KafkaProducer) -> None:
        """Publish to ``topics.drift`` with the worker's producer, which the commit
        protocol flushes before offsets move on."""
        self._sinks.close()
        self._sinks = build_sinks(self.settings, producer=producer, topic=self.topic,
                                  counters=self._kinds)

    def monitor(self, partition: int) -> DriftMonitor:
        monitor = self.monitors.get(partition)
        if monitor is None:
            monitor = self.monitors[partition] = DriftMonitor(self.settings)
        return monitor

    def _new_episode(self, event: DriftEvent, partition: int) -> bool:
        """Whether ``event`` from ``partition`` is a new change for its model (see the class)."""
        key = (event.model, event.kind, event.stream, event.feature)
        last = self._episodes.get(key)
        if last is not None:
            published, seen = last
            if partition not in seen and (
                abs(event.event_time - published.event_time) <= self.settings.episode_s
                or same_level(event, published)
            ):
                seen.add(partition)
                return False
        self._episodes[key] = (event, {partition})
        return True

    def _failed(self, where: str, exc: Exception) -> None:
        self.counters["drift.internal_error"] += 1
        if self.counters["drift.internal_error"] <= 5:
            log("drift.internal_error", logging.ERROR, where=where,
                error=f"{type(exc).__name__}: {exc}")

    def _guard(self, where: str, call: Callable[[], Sequence[DriftEvent]],
               partition: int = -1) -> None:
        try:
            events = call()
        except Exception as exc:  # noqa: BLE001 - monitoring must not stop labeling
            self._failed(where, exc)
            return
        self._publish(events, partition)

    def _publish(self, events: Sequence[DriftEvent], partition: int) -> None:
        for event in events:
            if not self._new_episode(event, partition):
                self.counters["drift.same_episode"] += 1
                continue
            self.events.append(event)
            self._sinks.emit(event)

    def observe_prediction(self, prediction: Prediction, source: SourceRef) -> None:
        # the hot path: no closure, one dict lookup
        self._last_time = prediction.event_time
        monitor = self.monitors.get(source.partition) or self.monitor(source.partition)
        try:
            events = monitor.observe_prediction(prediction, source)
        except Exception as exc:  # noqa: BLE001 - monitoring must not stop labeling
            self._failed("observe_prediction", exc)
            return
        if events:
            self._publish(events, source.partition)

    def observe_labeled(self, example: LabeledExample, source: SourceRef) -> None:
        """``source``: the prediction input's position when the row was labeled."""
        if self.label_name is None or not isinstance(example.labels[0], bool):
            return
        p = example.prediction
        score = p.prediction.get(self.score_field) if self.score_field else None
        if isinstance(score, bool) or not isinstance(score, int | float):
            score = None
        monitor = self.monitor(source.partition)
        self._guard("observe_label", lambda: monitor.observe_label(
            p.model, p.event_time, score, bool(example.labels[0]), source,
            label_name=self.label_name or "label"), source.partition)

    def check_schema(self, counters: Counter[str]) -> None:
        """Report the schema skew that ingest counted since the last call."""
        for key, count in list(counters.items()):
            parsed = parse_skew_key(key)
            if parsed is None or self._skew_seen.get(key) == count:
                continue
            self._skew_seen[key] = count
            what, model, feature = parsed
            self._guard("observe_schema_skew", lambda: self.schema_monitor.observe_schema_skew(
                model, self._last_time, SCHEMA_KINDS.get(what, what), feature,  # noqa: B023
                f"{count} predictions so far"))  # noqa: B023

    def flush(self) -> None:
        """Evaluate partial blocks (at shutdown and at the end of a backfill)."""
        for partition, monitor in self.monitors.items():
            self._guard("flush", monitor.flush, partition)

    def state(self, partition: int) -> dict[str, Any] | None:
        """Plain data (msgpack-able) of ``partition``'s drift monitor, None if it has none.

        Save it with that partition's join state at a checkpoint: it covers
        every input the monitor was fed, as the checkpoint's offsets do.
        """
        monitor = self.monitors.get(partition)
        return None if monitor is None else monitor.state()

    def restore(self, partition: int, state: Mapping[str, Any] | None) -> None:
        """Load ``partition``'s monitor from a :meth:`state` (None: start fresh)."""
        monitor = self.monitors[partition] = DriftMonitor(self.settings)
        if state is not None:
            try:
                monitor.restore(state)
            except Exception as exc:  # noqa: BLE001 - a bad drift state must not stop labeling
                self._failed("restore", exc)
                self.monitors[partition] = DriftMonitor(self.settings)

    def release(self, partition: int) -> None:
        """Forget ``partition``'s monitor (the partition was revoked)."""
        self.monitors.pop(partition, None)

    def close(self) -> None:
        self._sinks.close()


def _level(summary: Mapping[str, Any]) -> dict[str, float]:
    """A summary's level as comparable numbers: mean, rate, or category shares."""
    if "top" in summary:
        return {str(k): float(v) for k, v in summary["top"]}
    for name in ("mean", "rate"):
        v = summary.get(name)
        if isinstance(v, int | float) and math.isfinite(v):
            return {name: float(v)}
    return {}


def _linf(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in a.keys() | b.keys()), default=0.0)


def same_level(event: DriftEvent, published: DriftEvent) -> bool:
    """Whether ``event``'s current level is nearer ``published``'s current than its reference."""
    now, new, old = _level(event.current), _level(published.current), _level(published.reference)
    if not now or not new or not old or now.keys() & new.keys() == set():
        return False
    return _linf(now, new) < _linf(now, old)


def build_hub(settings: DriftSettings, topic: str, counters: Counter[str],
              labels: Sequence[Any]) -> DriftHub | None:
    """The drift hub for a worker, or ``None`` when drift monitoring is off."""
    if not settings.enabled:
        return None
    first: LabelSpec | Any = labels[0] if labels else None
    label_name = first.name if first is not None and first.agg == "any" else None
    return DriftHub(settings, topic, counters, label_name)
