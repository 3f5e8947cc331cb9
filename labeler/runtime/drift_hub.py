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

import dataclasses
import itertools
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from kafka import KafkaProducer

from drift.detectors import load_river
from drift.events import DriftEvent, Episodes
from drift.monitor import DriftMonitor
from drift.schema_watch import SAMPLE, SchemaWatch
from drift.settings import DriftSettings
from drift.sinks import DriftCounters, FanoutSink, build_sinks
from ingest.records import Prediction, SourceRef
from ingest.wire.schema import SchemaEnforcer, parse_skew_key
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.logs import log

SCHEMA_KINDS = {"new_feature": "new_feature", "missing_feature": "missing_feature",
                "numeric_string": "type_mismatch"}

MASK = SAMPLE - 1
"""``offset & MASK == 0`` on one offset in :data:`drift.schema_watch.SAMPLE` (a power of two)."""

WATCHED = frozenset(("new_feature", "missing_feature"))
"""Schema skew the watch finds on the records (not read from the counters then)."""


class DriftHub:
    """Feeds drift monitors from the worker and publishes their events.

    Each input partition has its own ``DriftMonitor``: event time is ordered
    within a partition but not across partitions (a backfill may read one
    partition's whole day before the next one's), and a worker in a scaled-out
    group only sees its own partitions anyway.

    One event per change per model: the hub publishes an event only when
    :class:`drift.events.Episodes` (``drift.episode_s``) says it is a new
    change across this worker's partitions, and counts the others as
    ``drift.same_episode``. Each published event names its ``partition``, so
    a consumer of ``topics.drift`` can apply the same rule across workers
    (:func:`drift.events.dedupe`).

    Schema changes (features missing from or new to a model's schema) are
    found on the records themselves by a :class:`drift.schema_watch.SchemaWatch`
    when the hub is given a schema enforcer (``schema``), in either stage
    layout, and carry the record's event time and source. Other schema skew
    that ingest counts (numeric strings) is read from the counters by
    :meth:`check_schema`, dated by the last prediction seen.

    Called from the worker's poll thread only.

    The label watched for concept drift is the first label column when it is
    boolean (an ``any`` label); the score is ``drift.prediction.fields[0]``.
    """

    def __init__(self, settings: DriftSettings, topic: str, counters: Counter[str],
                 label_name: str | None, schema: SchemaEnforcer | None = None) -> None:
        self.settings = settings
        self.monitors: dict[int, DriftMonitor] = {}
        self.schema_monitor = DriftMonitor(settings)
        self._episodes = Episodes(settings.episode_s)
        self._watch = None if schema is None else SchemaWatch(schema, self._schema_finding)
        self._width = {} if self._watch is None else self._watch.width
        self.topic = topic
        self.counters = counters
        self.label_name = label_name
        self.score_field = settings.prediction.fields[0] if settings.prediction.fields else None
        self.events: deque[DriftEvent] = deque(maxlen=settings.history)
        self._kinds = DriftCounters(on_event=self._count)
        self._sinks: FanoutSink = build_sinks(settings, counters=self._kinds)
        self._skew_seen: dict[str, int] = {}
        self._last_time = -math.inf
        self._cpu_s = 0.0  # thread CPU of label watching and state (blocks: the monitors')
        self._released_cpu_s = 0.0  # blocks of monitors since released

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
            if partition >= 0:
                event = dataclasses.replace(event, partition=partition)
            if not self._episodes.new(event):
                self.counters["drift.same_episode"] += 1
                continue
            self.events.append(event)
            self._sinks.emit(event)

    def observe_prediction(self, prediction: Prediction, source: SourceRef) -> None:
        # the hot path: no closure, few dict lookups; the feature names are
        # compared when the count changes and on one offset in SAMPLE
        self._last_time = prediction.event_time
        monitor = self.monitors.get(source.partition) or self.monitor(source.partition)
        try:
            if (len(prediction.features) != self._width.get(prediction.model)
                    or not source.offset & MASK) and self._watch is not None:
                self._watch.check(prediction, source)
            events = monitor.observe_prediction(prediction, source)
        except Exception as exc:  # noqa: BLE001 - monitoring must not stop labeling
            self._failed("observe_prediction", exc)
            return
        if events:
            self._publish(events, source.partition)

    def observe_predictions(self, predictions: Sequence[Prediction],
                            sources: Sequence[SourceRef]) -> None:
        """:meth:`observe_prediction` on each of one partition's predictions, in order, at
        once: the monitor takes the runs between two schema-watch checks whole. Events,
        state and failures are those of one prediction at a time (a failure is counted
        and costs the prediction it happened on)."""
        if not predictions:
            return
        self._last_time = predictions[-1].event_time
        partition = sources[0].partition
        monitor = self.monitors.get(partition) or self.monitor(partition)
        watch, width = self._watch, self._width
        start = 0
        if watch is not None:
            for i, (p, source) in enumerate(zip(predictions, sources, strict=True)):
                if len(p.features) != width.get(p.model) or not source.offset & MASK:
                    self._observe_run(monitor, predictions[start:i], sources[start:i], partition)
                    start = i
                    try:
                        watch.check(p, source)
                    except Exception as exc:  # noqa: BLE001 - monitoring must not stop labeling
                        self._failed("observe_prediction", exc)
                        start = i + 1  # as one at a time: this prediction is not watched
        self._observe_run(monitor, predictions[start:], sources[start:], partition)

    def _observe_run(self, monitor: DriftMonitor, predictions: Sequence[Prediction],
                     sources: Sequence[SourceRef], partition: int) -> None:
        """Feed ``monitor`` a run of predictions and publish what it found. A failure is
        counted and the monitor goes on after the prediction it happened on."""
        found: list[DriftEvent] = []
        start = 0
        while start < len(predictions):
            try:
                monitor.observe_predictions(predictions, sources, found, start)
                break
            except Exception as exc:  # noqa: BLE001 - monitoring must not stop labeling
                self._failed("observe_prediction", exc)
                start = max(monitor.consumed, start + 1)
        if found:
            self._publish(found, partition)

    def observe_labeled(self, examples: Sequence[LabeledExample], source: SourceRef) -> None:
        """Watch the rows one partition just labeled; ``source``: the prediction input's
        position when they were labeled (it dates their drift events)."""
        if self.label_name is None or not examples:
            return
        began = time.thread_time()
        try:
            self._watch_labels(examples, source)
        finally:
            self._cpu_s += time.thread_time() - began

    def _watch_labels(self, examples: Sequence[LabeledExample], source: SourceRef) -> None:
        # Each run of one model's rows goes to its monitor at once (events keep
        # the rows' order and are dated by the row that raised them).
        monitor = self.monitor(source.partition)
        field = self.score_field
        rows: list[tuple[str, float, float | None, bool]] = []
        for example in examples:
            label = example.labels[0]
            if not isinstance(label, bool):
                continue
            p = example.prediction
            score = p.prediction.get(field) if field else None
            if isinstance(score, bool) or not isinstance(score, int | float):
                score = None
            rows.append((p.model, p.event_time, score, label))
        for model, run in itertools.groupby(rows, key=itemgetter(0)):
            _, times, scores, labels = zip(*run, strict=True)
            self._label_run(monitor, model, list(times), list(scores), list(labels), source)

    def _label_run(self, monitor: DriftMonitor, model: str, times: list[float],
                   scores: list[float | None], labels: list[bool], source: SourceRef) -> None:
        """One model's consecutive labeled rows. A failure is counted and costs the row it
        happened on, as one row at a time (the monitor goes on after it)."""
        found: list[DriftEvent] = []
        name = self.label_name or "label"
        start = 0
        while start < len(labels):
            try:
                monitor.observe_labels(model, times, scores, labels, source, label_name=name,
                                       found=found, start=start)
                break
            except Exception as exc:  # noqa: BLE001 - monitoring must not stop labeling
                self._failed("observe_label", exc)
                start = max(monitor.consumed, start + 1)
        if found:
            self._publish(found, source.partition)

    def _schema_finding(self, model: str, event_time: float, kind: str, feature: str,
                        detail: str, source: SourceRef | None) -> None:
        self._publish(self.schema_monitor.observe_schema_skew(
            model, event_time, kind, feature, detail, source), -1)

    def check_schema(self, counters: Counter[str]) -> None:
        """Report the schema skew that ingest counted since the last call (what the
        watch does not find on the records itself)."""
        for key, count in list(counters.items()):
            parsed = parse_skew_key(key)
            if parsed is None or self._skew_seen.get(key) == count:
                continue
            self._skew_seen[key] = count
            what, model, feature = parsed
            if self._watch is not None and what in WATCHED:
                continue
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
        if monitor is None:
            return None
        began = time.thread_time()
        try:
            return monitor.state()
        finally:
            self._cpu_s += time.thread_time() - began

    def cpu_s(self) -> float:
        """Thread CPU seconds spent in monitoring: the monitors' blocks (where nearly all
        of the cost is), label watching and checkpointed state; the per-prediction
        buffering between blocks is not timed (timing it would cost more than it does)."""
        blocks = sum(m.block_cpu_s for m in (*self.monitors.values(), self.schema_monitor))
        return self._cpu_s + blocks + self._released_cpu_s

    def restore(self, partition: int, state: Mapping[str, Any] | None) -> None:
        """Load ``partition``'s monitor from a :meth:`state` (None: start fresh)."""
        self.release(partition)
        monitor = self.monitors[partition] = DriftMonitor(self.settings)
        if state is not None:
            try:
                monitor.restore(state)
            except Exception as exc:  # noqa: BLE001 - a bad drift state must not stop labeling
                self._failed("restore", exc)
                self.monitors[partition] = DriftMonitor(self.settings)

    def release(self, partition: int) -> None:
        """Forget ``partition``'s monitor (the partition was revoked)."""
        monitor = self.monitors.pop(partition, None)
        if monitor is not None:
            self._released_cpu_s += monitor.block_cpu_s

    def close(self) -> None:
        self._sinks.close()


def build_hub(settings: DriftSettings, topic: str, counters: Counter[str],
              labels: Sequence[Any], schema: SchemaEnforcer | None = None) -> DriftHub | None:
    """The drift hub for a worker, or ``None`` when drift monitoring is off.

    ``schema``: an enforcer of its own for the hub's schema watch (the
    configured schemas; it infers the others from the records it is shown)."""
    if not settings.enabled:
        return None
    load_river()
    first: LabelSpec | Any = labels[0] if labels else None
    label_name = first.name if first is not None and first.agg == "any" else None
    return DriftHub(settings, topic, counters, label_name, schema)
