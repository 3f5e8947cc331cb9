"""Wiring drift monitoring into the worker, and publishing what it reports.

Every drift event goes to four places at once: a JSON log line
(``"event": "drift"``), the ``topics.drift`` Kafka topic (JSON, keyed by
model), Fluentd through fluent-logger when ``drift.fluentd.enabled``, and the
``drift.<kind>`` counters.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from typing import Any

import orjson
from kafka import KafkaProducer

from drift.events import DriftEvent
from drift.monitor import DriftMonitor
from drift.settings import DriftSettings
from ingest.emitter import EmitterConfig, FluentEmitter
from ingest.records import Prediction, SourceRef
from ingest.schema import parse_skew_key
from labeler.logs import log
from labeler.records import LabeledExample

SCHEMA_KINDS = {"new_feature": "new_feature", "missing_feature": "missing_feature",
                "numeric_string": "type_mismatch"}


class DriftHub:
    """Feeds the drift monitor from the worker and publishes its events.

    The label monitored is the first label column; it must be boolean (an
    ``any`` label). The score is the prediction field ``drift.prediction.fields[0]``.
    """

    def __init__(self, settings: DriftSettings, topic: str, counters: Counter[str],
                 label_name: str | None) -> None:
        self.settings = settings
        self.monitor = DriftMonitor(settings)
        self.topic = topic
        self.counters = counters
        self.label_name = label_name
        self.score_field = settings.prediction.fields[0] if settings.prediction.fields else None
        self.events: deque[DriftEvent] = deque(maxlen=1000)
        self._producer: KafkaProducer | None = None
        self._skew_seen: dict[str, int] = {}
        self._last_time = -math.inf
        self._fluent: FluentEmitter | None = None
        if settings.fluentd.enabled:
            f = settings.fluentd
            self._fluent = FluentEmitter(f.label, EmitterConfig(
                host=f.host, port=f.port, tag_prefix=f.tag, timeout=f.timeout))

    def attach(self, producer: KafkaProducer) -> None:
        """Publish to Kafka with the worker's producer (flushed before each commit)."""
        self._producer = producer if self.settings.kafka.enabled else None

    def _failed(self, where: str, exc: Exception) -> None:
        """A monitoring bug must not stop labeling: count it, log the first few."""
        self.counters["drift.internal_error"] += 1
        if self.counters["drift.internal_error"] <= 5:
            log("drift.internal_error", logging.ERROR, where=where,
                error=f"{type(exc).__name__}: {exc}")

    def observe_prediction(self, prediction: Prediction, source: SourceRef | None) -> None:
        self._last_time = prediction.event_time
        try:
            events = self.monitor.observe_prediction(prediction, source)
        except Exception as exc:  # noqa: BLE001
            self._failed("observe_prediction", exc)
            return
        if events:
            self.publish(events)

    def observe_labeled(self, example: LabeledExample) -> None:
        if self.label_name is None:
            return
        label = example.labels[0]
        if not isinstance(label, bool):
            return
        p = example.prediction
        score = p.prediction.get(self.score_field) if self.score_field else None
        try:
            events = self.monitor.observe_label(
                p.model, p.event_time, score if isinstance(score, int | float) else None, label,
                None, label_name=self.label_name,
            )
        except Exception as exc:  # noqa: BLE001
            self._failed("observe_label", exc)
            return
        if events:
            self.publish(events)

    def check_schema(self, counters: Counter[str]) -> None:
        """Report schema skew that ingest counted since the last call."""
        for key, count in list(counters.items()):
            parsed = parse_skew_key(key)
            if parsed is None or self._skew_seen.get(key) == count:
                continue
            self._skew_seen[key] = count
            what, model, feature = parsed
            try:
                events = self.monitor.observe_schema_skew(
                    model, self._last_time, SCHEMA_KINDS.get(what, what), feature,
                    f"{count} predictions so far")
            except Exception as exc:  # noqa: BLE001
                self._failed("observe_schema_skew", exc)
                continue
            if events:
                self.publish(events)

    def flush(self) -> None:
        """Evaluate partial blocks (at shutdown and at the end of a backfill)."""
        try:
            events = self.monitor.flush()
        except Exception as exc:  # noqa: BLE001
            self._failed("flush", exc)
            return
        if events:
            self.publish(events)

    def publish(self, events: list[DriftEvent]) -> None:
        for event in events:
            doc = event.to_dict()
            self.events.append(event)
            self.counters[f"drift.{event.kind}"] += 1
            fields = {k: v for k, v in doc.items() if k != "event"}
            log("drift", logging.WARNING, **fields)
            if self._producer is not None:
                self._producer.send(self.topic, value=orjson.dumps(doc),
                                    key=event.model.encode())
            if self._fluent is not None:
                self._fluent.emit(doc)

    def close(self) -> None:
        if self._fluent is not None:
            self._fluent.close()


def build_hub(settings: DriftSettings, topic: str, counters: Counter[str],
              labels: Any) -> DriftHub | None:
    """The drift hub for a worker, or ``None`` when drift monitoring is off."""
    if not settings.enabled:
        return None
    first = labels[0] if labels else None
    label_name = first.name if first is not None and first.agg == "any" else None
    return DriftHub(settings, topic, counters, label_name)
