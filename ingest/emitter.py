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
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat, TypeVar

import msgpack
from fluent import asyncsender, sender
from fluent.sender import EventTime

DEFAULT_TAG_PREFIX = "ml"
PREDICTION_LABEL = "prediction"
OUTCOME_LABEL = "outcome"

Discard = Callable[[bytes], None]
"""Receives the msgpack bytes of events that were dropped or overflowed."""


@dataclass(frozen=True, slots=True)
class EmitterConfig:
    """Where and how an emitter sends.

    ``timeout`` bounds every connect and send (seconds). After a failed
    attempt no new connection is tried for ``retry_interval`` seconds; the
    events of that pause wait in the unsent buffer (``bufmax`` bytes) and are
    sent with the next successful write, or counted as overflowed when the
    buffer passes ``bufmax``. ``queue_maxsize`` bounds the asynchronous queue
    (events). ``on_discard`` receives the bytes of every overflowed or dropped
    batch, for example to spool them to a local file; it runs on the sending
    thread, must be quick, and must not log through the same emitter.
    """

    host: str = "localhost"
    port: int = 24224
    tag_prefix: str = DEFAULT_TAG_PREFIX
    asynchronous: bool = True
    timeout: float = 1.0
    retry_interval: float = 1.0
    bufmax: int = 1024 * 1024
    queue_maxsize: int = 10_000
    on_discard: Discard | None = None

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.retry_interval < 0:
            raise ValueError("timeout must be > 0 and retry_interval >= 0")
        if self.bufmax <= 0 or self.queue_maxsize <= 0:
            raise ValueError("bufmax and queue_maxsize must be > 0")


@dataclass(frozen=True, slots=True)
class EmitterStats:
    """A point-in-time copy of an emitter's counters (events unless named bytes).

    ``emitted`` counts events accepted by ``emit``/``log``. Each accepted event
    ends up in exactly one of ``sent`` (written to Fluentd's socket),
    ``overflowed`` (the unsent buffer passed ``bufmax``, or it was still unsent
    at ``close``) or ``dropped`` (the asynchronous queue was full, or the
    emitter was closed), unless it is still ``pending``. ``rejected`` records
    could not be serialised and were never accepted. ``send_failures`` counts
    failed connect/write attempts, not events.
    """

    emitted: int = 0
    sent: int = 0
    sent_bytes: int = 0
    overflowed: int = 0
    overflowed_bytes: int = 0
    dropped: int = 0
    dropped_bytes: int = 0
    rejected: int = 0
    send_failures: int = 0
    last_error: str | None = None

    @property
    def pending(self) -> int:
        """Events queued or buffered but not yet sent, overflowed or dropped."""
        return self.emitted - self.sent - self.overflowed - self.dropped

    @property
    def lost(self) -> int:
        """Events that will never reach Fluentd."""
        return self.overflowed + self.dropped + self.rejected


def _count_packets(data: bytes) -> int:
    """Number of msgpack objects (forward-protocol messages) in ``data``."""
    unpacker = msgpack.Unpacker()
    unpacker.feed(data)
    count = 0
    while True:
        try:
            unpacker.skip()
        except msgpack.OutOfData:
            return count
        count += 1


def _plain(value: Any) -> Any:
    """msgpack fallback: numpy scalars/arrays and other mappings become plain values."""
    if isinstance(value, Mapping):
        return dict(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot serialise a {type(value).__name__}")


class _Tally:
    """Thread-safe counters plus the reconnect pause, shared by an emitter and its sender."""

    def __init__(self, retry_interval: float, on_discard: Discard | None) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("emitted", "sent", "sent_bytes", "overflowed", "overflowed_bytes",
             "dropped", "dropped_bytes", "rejected", "send_failures"), 0)
        self._last_error: str | None = None
        self._retry_interval = retry_interval
        self._retry_at = 0.0
        self._on_discard = on_discard

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._counts[name] += delta

    def error(self, exc: BaseException, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._counts[name] += delta
            self._last_error = f"{type(exc).__name__}: {exc}"

    def snapshot(self) -> EmitterStats:
        with self._lock:
            return EmitterStats(**self._counts, last_error=self._last_error)

    def may_connect(self) -> bool:
        return time.monotonic() >= self._retry_at

    def allow_one_attempt(self) -> None:
        self._retry_at = 0.0

    def send_failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self._retry_interval
        self.error(exc, send_failures=1)

    def discarded(self, data: bytes, *, overflow: bool) -> None:
        if overflow:
            self.add(overflowed=_count_packets(data), overflowed_bytes=len(data))
        else:
            self.add(dropped=1, dropped_bytes=len(data))
        if self._on_discard is not None:
            try:
                self._on_discard(data)
            except Exception as exc:  # noqa: BLE001 - a user hook must not break sending
                self.error(exc)


class _ObservedSend:
    """Mixin over fluent-logger's senders: counts writes and pauses reconnects.

    ``_send_data`` is where both senders (sync in the caller's thread, async in
    its worker thread) write the pending bytes; fluent-logger keeps those bytes
    for a retry when it raises ``OSError``.
    """

    _tally: _Tally

    def _send_data(self, bytes_: bytes) -> None:
        if not self._tally.may_connect():
            raise OSError("Fluentd unreachable; waiting for retry_interval before reconnecting")
        try:
            super()._send_data(bytes_)  # type: ignore[misc]
        except Exception as exc:
            self._tally.send_failed(exc)
            if isinstance(exc, OSError):
                raise
            raise OSError(str(exc)) from exc  # keep fluent-logger's buffering in charge
        self._tally.add(sent=_count_packets(bytes_), sent_bytes=len(bytes_))


class _SyncSender(_ObservedSend, sender.FluentSender):
    def __init__(self, tally: _Tally, tag: str, **kwargs: Any) -> None:
        self._tally = tally
        super().__init__(tag, **kwargs)


class _AsyncSender(_ObservedSend, asyncsender.FluentSender):
    def __init__(self, tally: _Tally, tag: str, **kwargs: Any) -> None:
        self._tally = tally
        super().__init__(tag, **kwargs)


def _event_time(value: float | None) -> tuple[float, Any]:
    """The record's float time and the matching Fluentd EventTime."""
    if value is None:
        now_ns = time.time_ns()
        return now_ns / 1e9, EventTime.from_unix_nano(now_ns)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"event_time is a {type(value).__name__}, not epoch seconds")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"event_time {value!r} is not a finite epoch")
    # Microseconds first: a float epoch carries no more, and it avoids 122999999 ns.
    return float(value), EventTime.from_unix_nano(round(value * 1_000_000) * 1000)


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
        self._tally = _Tally(self.config.retry_interval, self.config.on_discard)
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
            "msgpack_kwargs": {"default": _plain},
            "buffer_overflow_handler": self._overflowed,
        }
        self._sender: Any
        if self.config.asynchronous:
            self._sender = _AsyncSender(
                self._tally, self.tag, queue_maxsize=self.config.queue_maxsize,
                queue_circular=True, queue_overflow_handler=self._dropped, **common)
        else:
            self._sender = _SyncSender(self._tally, self.tag, **common)

    def emit(self, record: Mapping[str, Any], event_time: float | None = None) -> bool:
        """Send ``record`` with its ``time`` field set to ``event_time`` (default: now)."""
        try:
            seconds, stamp = _event_time(event_time)
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
