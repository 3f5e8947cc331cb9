"""Where drift events go: a JSON log line, a Kafka topic, Fluentd, counters.

A sink never lets a delivery problem stop the pipeline: Kafka and Fluentd
failures are counted (and logged), not raised. Every sink has ``emit``,
``flush`` and ``close``; :func:`build_sinks` assembles them from settings.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import orjson

from drift.events import DriftEvent
from drift.settings import DriftSettings

_log = logging.getLogger(__name__)


class DriftSink(Protocol):
    """Anything that takes drift events."""

    def emit(self, event: DriftEvent) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def encode(event: DriftEvent) -> bytes:
    """The event's JSON form as UTF-8 bytes (``{"event": "drift", ...}``)."""
    return orjson.dumps(event.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)


class LogSink:
    """One JSON line per event on ``logger`` (``loglabel.drift`` by default).

    The message is the JSON text itself; the fields are also attached to the
    record as ``record.drift`` for formatters that merge extras.
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.WARNING):
        self._logger = logger or logging.getLogger("loglabel.drift")
        self._level = level

    def emit(self, event: DriftEvent) -> None:
        payload = event.to_dict()
        text = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        self._logger.log(self._level, "%s", text, extra={"drift": payload})

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class KafkaSink:
    """Publish each event to ``topic`` with a kafka-python ``KafkaProducer``.

    The value is the event's JSON, the key the model name (UTF-8), so one
    model's events stay in order. The producer belongs to the caller (it is
    flushed here, never closed). ``sent`` and ``failed`` count deliveries as
    the broker acknowledges them.
    """

    def __init__(self, producer: Any, topic: str = "loglabel.drift") -> None:
        self._producer = producer
        self.topic = topic
        self.sent = 0
        self.failed = 0

    def emit(self, event: DriftEvent) -> None:
        try:
            future = self._producer.send(
                self.topic, key=event.model.encode("utf-8"), value=encode(event)
            )
        except Exception as exc:  # a full buffer or a closed producer
            self._failure(exc)
            return
        future.add_callback(self._success)
        future.add_errback(self._failure)

    def _success(self, _metadata: Any) -> None:
        self.sent += 1

    def _failure(self, exc: BaseException) -> None:
        self.failed += 1
        _log.warning("drift event not delivered to %s: %s", self.topic, exc)

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        self.flush()


class FluentdSink:
    """Send each event with fluent-logger (tag ``"{tag}.{label}"``).

    Give it a ``FluentSender`` or let it build one from host, port and tag
    (then it also closes it). fluent-logger buffers what it cannot send and
    reports failure through ``emit``'s return value; failures are counted in
    ``failed`` with the last error in ``last_error``.
    """

    def __init__(
        self,
        sender: Any = None,
        *,
        host: str = "localhost",
        port: int = 24224,
        tag: str = "loglabel",
        label: str = "drift",
        timeout: float = 3.0,
    ) -> None:
        self._own = sender is None
        if sender is None:
            from fluent.sender import FluentSender

            sender = FluentSender(tag, host=host, port=port, timeout=timeout)
        self._sender = sender
        self._label = label
        self.sent = 0
        self.failed = 0
        self.last_error: BaseException | None = None

    def emit(self, event: DriftEvent) -> None:
        if self._sender.emit(self._label, event.to_dict()):
            self.sent += 1
            return
        self.failed += 1
        self.last_error = self._sender.last_error
        self._sender.clear_last_error()
        _log.warning("drift event not delivered to Fluentd: %s", self.last_error)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._own:
            self._sender.close()


class DriftCounters:
    """Counts events by kind (and by (model, kind)); optional callback per event.

    ``on_event(kind, model)`` can feed a metrics library, e.g. a Prometheus
    counter's ``labels(kind=kind, model=model).inc()``.
    """

    def __init__(self, on_event: Callable[[str, str], None] | None = None) -> None:
        self.by_kind: Counter[str] = Counter()
        self.by_model: Counter[tuple[str, str]] = Counter()
        self._on_event = on_event

    def emit(self, event: DriftEvent) -> None:
        self.by_kind[event.kind] += 1
        self.by_model[(event.model, event.kind)] += 1
        if self._on_event is not None:
            self._on_event(event.kind, event.model)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class FanoutSink:
    """Emit to several sinks; one sink's exception is logged and counted, not raised."""

    def __init__(self, sinks: Iterable[DriftSink], counters: DriftCounters | None = None):
        self.counters = counters or DriftCounters()
        self.sinks: list[DriftSink] = [self.counters, *sinks]
        self.errors = 0

    def emit(self, event: DriftEvent) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:  # monitoring must not stop the pipeline
                self.errors += 1
                _log.exception("drift sink %s failed", type(sink).__name__)

    def emit_all(self, events: Iterable[DriftEvent]) -> None:
        for event in events:
            self.emit(event)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def build_sinks(
    settings: DriftSettings,
    *,
    producer: Any = None,
    topic: str = "loglabel.drift",
    logger: logging.Logger | None = None,
    fluent_sender: Any = None,
    counters: DriftCounters | None = None,
) -> FanoutSink:
    """The sinks the settings ask for: log line always, Kafka if a producer is given."""
    sinks: list[DriftSink] = [LogSink(logger)]
    if settings.kafka.enabled and producer is not None:
        sinks.append(KafkaSink(producer, topic))
    if settings.fluentd.enabled:
        f = settings.fluentd
        sinks.append(
            FluentdSink(
                fluent_sender,
                host=f.host,
                port=f.port,
                tag=f.tag,
                label=f.label,
                timeout=f.timeout,
            )
        )
    return FanoutSink(sinks, counters)
