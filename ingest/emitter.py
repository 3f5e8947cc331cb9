"""Emitter SDK: model servers log predictions and outcomes to Fluentd with fluent-logger.

Records come out in the shape loglabel's default ``FieldMap`` reads, so a
forwarder configured as in ``deploy/`` needs no field mapping at all::

    prediction: {"request_id", "time", "model", "model_version", "features", "score", ...}
    outcome:    {"request_id", "time", "type", "value"?, "outcome_id"?}

``time`` is float epoch seconds with a sub-second part, and the Fluentd event
time of the same message is that instant as an EventTime (nanoseconds), so a
forwarder that injects or re-stamps the time keeps the sub-second part too.

``log()`` never raises, and a Fluentd outage costs events (counted in
``stats``), never requests. Asynchronous mode (the default) only enqueues: a
bounded circular queue drops the oldest event when full, and a background
thread does the network I/O. Synchronous mode writes in the caller's thread;
while Fluentd is unreachable a call may wait up to ``timeout``, at most once
per ``retry_interval``.

The configuration and the counters are in :mod:`ingest.emitter_config`, the
senders under :class:`FluentEmitter` in :mod:`ingest.emitter_senders`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, SupportsFloat, TypeVar

from ingest.emitter_config import DEFAULT_TAG_PREFIX, Discard, EmitterConfig, EmitterStats
from ingest.emitter_senders import AsyncSender, SyncSender, Tally, plain_value, stamp_time

__all__ = [
    "DEFAULT_TAG_PREFIX",
    "OUTCOME_LABEL",
    "PREDICTION_LABEL",
    "Discard",
    "EmitterConfig",
    "EmitterStats",
    "FluentEmitter",
    "OutcomeLogger",
    "PredictionLogger",
]

PREDICTION_LABEL = "prediction"
OUTCOME_LABEL = "outcome"


class FluentEmitter:
    """Sends records with tag ``"{tag_prefix}.{label}"`` over the Fluentd forward protocol.

    ``emit`` never raises and returns whether the event was written (sync) or
    queued (async) right now. ``False`` means it was rejected, the emitter is
    closed, or (sync) it waits in the unsent buffer for the next successful
    write. ``stats`` says which.
    """

    def __init__(self, label: str, config: EmitterConfig | None = None) -> None:
        self.config = config if config is not None else EmitterConfig()
        self.tag = f"{self.config.tag_prefix}.{label}" if self.config.tag_prefix else label
        self._tally = Tally(self.config.retry_interval, self.config.on_discard)
        self._closed = False
        # Makes "closed" a clean cut: an emit either finished before close began or is dropped.
        self._gate = threading.Lock()
        common: dict[str, Any] = {
            "host": self.config.host,
            "port": self.config.port,
            "bufmax": self.config.bufmax,
            "timeout": self.config.timeout,
            "nanosecond_precision": True,
            "forward_packet_error": False,  # a bad record is rejected, never sent as a stand-in
            "msgpack_kwargs": {"default": plain_value},
            "buffer_overflow_handler": self._overflowed,
        }
        self._sender: Any
        if self.config.asynchronous:
            self._sender = AsyncSender(
                self._tally, self.tag, queue_maxsize=self.config.queue_maxsize,
                queue_circular=True, queue_overflow_handler=self._dropped, **common)
        else:
            self._sender = SyncSender(self._tally, self.tag, **common)

    def emit(self, record: Mapping[str, Any], event_time: float | None = None) -> bool:
        """Send ``record`` with its ``time`` field set to ``event_time`` (default: now)."""
        try:
            seconds, stamp = stamp_time(event_time)
            body = dict(record)
            body["time"] = seconds
        except Exception as exc:  # noqa: BLE001 - log() must never raise into a model server
            self.reject(exc)
            return False
        with self._gate:
            if self._closed:
                self._tally.add(emitted=1, dropped=1)
                return False
            # Counted before sending so that a concurrent snapshot never shows pending < 0.
            self._tally.add(emitted=1)
            try:
                return bool(self._sender.emit_with_time(None, stamp, body))
            except Exception as exc:  # noqa: BLE001 - msgpack refused the record
                self._tally.error(exc, emitted=-1, rejected=1)
                return False

    def reject(self, exc: BaseException) -> None:
        """Count a record the caller could not build (it is never sent)."""
        self._tally.error(exc, rejected=1)

    @property
    def stats(self) -> EmitterStats:
        return self._tally.snapshot()

    def close(self, flush: bool = True) -> EmitterStats:
        """Send what is queued (one fresh connection attempt), then release the socket.

        Events still unsent afterwards are counted as overflowed and passed to
        ``on_discard``; with ``flush=False`` the queued ones are counted as
        dropped. While Fluentd is down this blocks for about one ``timeout``
        (``retry_interval`` > 0 spares the queued events one each). Returns
        the final stats, in which ``pending`` is 0.
        """
        with self._gate:
            if self._closed:
                return self.stats
            self._closed = True
        self._tally.allow_one_attempt()
        try:
            if self.config.asynchronous:
                self._sender.close(flush=flush)
            else:
                self._sender.close()
        except Exception as exc:  # noqa: BLE001 - shutdown must finish
            self._tally.error(exc)
        leftover = self._sender.pendings
        if leftover:  # the async sender leaves its unsent bytes here at close
            self._sender.pendings = None
            self._tally.discarded(leftover, overflow=True)
        unsettled = self.stats.pending  # close(flush=False) empties the queue without a hook
        if unsettled:
            self._tally.add(dropped=unsettled)
        return self.stats

    def __enter__(self) -> FluentEmitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _overflowed(self, data: bytes) -> None:
        self._tally.discarded(data, overflow=True)

    def _dropped(self, data: bytes) -> None:
        self._tally.discarded(data, overflow=False)


_PREDICTION_FIELDS = frozenset({"request_id", "time", "model", "model_version", "features"})
_OUTCOME_FIELDS = frozenset({"request_id", "time", "type", "value", "outcome_id"})


def _merge(record: dict[str, Any], fields: Mapping[str, Any] | None,
           reserved: frozenset[str]) -> dict[str, Any]:
    if fields:
        clash = reserved.intersection(fields)
        if clash:
            raise ValueError(f"fields {sorted(clash)} are set by the logger itself")
        record.update(fields)
    return record


_L = TypeVar("_L", bound="_Logger")


class _Logger:
    """What both loggers share: their emitter, its stats, and closing."""

    emitter: FluentEmitter

    @property
    def stats(self) -> EmitterStats:
        return self.emitter.stats

    def close(self, flush: bool = True) -> EmitterStats:
        """See ``FluentEmitter.close``."""
        return self.emitter.close(flush)

    def __enter__(self: _L) -> _L:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PredictionLogger(_Logger):
    """Logs one prediction per call, tag ``ml.prediction`` by default.

    ``score`` is either the single prediction value (written as ``"score"``)
    or a mapping of prediction fields written at the top level (e.g.
    ``{"score": 0.7, "label": "click"}``; tell loglabel with
    ``FieldMap.prediction``). ``extra`` adds top-level fields, such as the
    second part of a composite id (``{"item_id": "i7"}`` with
    ``FieldMap(join_id=("request_id", "item_id"))``). ``request_id`` is sent
    as a string: forwarders only key Kafka messages by string fields.

    With Fluentd down, a synchronous logger keeps the event for a retry,
    and counts it as overflowed if it is still unsent at close:

    >>> log = PredictionLogger("ctr", "3", EmitterConfig(port=1, asynchronous=False))
    >>> log.log("r1", {"price": 12.5}, 0.73)
    False
    >>> log.stats.pending
    1
    >>> log.close().overflowed
    1
    """

    def __init__(self, model: str, model_version: str | None = None,
                 config: EmitterConfig | None = None, label: str = PREDICTION_LABEL) -> None:
        self.model = model
        self.model_version = model_version
        self.emitter = FluentEmitter(label, config)

    def log(self, request_id: str | int, features: Mapping[str, Any],
            score: SupportsFloat | Mapping[str, Any], *, event_time: float | None = None,
            extra: Mapping[str, Any] | None = None) -> bool:
        """Emit one prediction; never raises (see ``FluentEmitter.emit``)."""
        try:
            record: dict[str, Any] = {"request_id": str(request_id), "model": self.model}
            if self.model_version is not None:
                record["model_version"] = self.model_version
            record["features"] = features
            if isinstance(score, Mapping):
                _merge(record, score, _PREDICTION_FIELDS)
            else:
                record["score"] = score
            _merge(record, extra, _PREDICTION_FIELDS | frozenset(record))
        except Exception as exc:  # noqa: BLE001 - never raise into a model server
            self.emitter.reject(exc)
            return False
        return self.emitter.emit(record, event_time)


class OutcomeLogger(_Logger):
    """Logs one outcome (click, purchase, dwell, ...) per call, tag ``ml.outcome`` by default.

    ``value`` and ``outcome_id`` are left out when ``None``. ``outcome_id``
    lets loglabel count a redelivered copy once; ``extra`` carries the other
    parts of a composite id, as for ``PredictionLogger``.
    """

    def __init__(self, config: EmitterConfig | None = None, label: str = OUTCOME_LABEL) -> None:
        self.emitter = FluentEmitter(label, config)

    def log(self, request_id: str | int, outcome_type: str,
            value: SupportsFloat | None = None, *,
            outcome_id: str | None = None, event_time: float | None = None,
            extra: Mapping[str, Any] | None = None) -> bool:
        """Emit one outcome; never raises (see ``FluentEmitter.emit``)."""
        try:
            record: dict[str, Any] = {"request_id": str(request_id), "type": outcome_type}
            if value is not None:
                record["value"] = value
            if outcome_id is not None:
                record["outcome_id"] = str(outcome_id)
            _merge(record, extra, _OUTCOME_FIELDS)
        except Exception as exc:  # noqa: BLE001 - never raise into a model server
            self.emitter.reject(exc)
            return False
        return self.emitter.emit(record, event_time)
