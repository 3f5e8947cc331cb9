"""The emitter's senders: fluent-logger's, counting what they write and pausing reconnects.

:class:`Tally` holds an emitter's thread-safe counters and the reconnect
pause after a failed attempt; :class:`SyncSender` (writes in the caller's
thread) and :class:`AsyncSender` (a background thread) are fluent-logger's
senders with :class:`ObservedSend` over their writes. :func:`stamp_time`
gives a record's float time and the matching Fluentd EventTime.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

import msgpack
from fluent import asyncsender, sender
from fluent.sender import EventTime

from ingest.emitter_config import Discard, EmitterStats


def count_packets(data: bytes) -> int:
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


def plain_value(value: Any) -> Any:
    """msgpack fallback: numpy scalars/arrays and other mappings become plain values."""
    if isinstance(value, Mapping):
        return dict(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot serialise a {type(value).__name__}")


class Tally:
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
            self.add(overflowed=count_packets(data), overflowed_bytes=len(data))
        else:
            self.add(dropped=1, dropped_bytes=len(data))
        if self._on_discard is not None:
            try:
                self._on_discard(data)
            except Exception as exc:  # noqa: BLE001 - a user hook must not break sending
                self.error(exc)


class ObservedSend:
    """Mixin over fluent-logger's senders: counts writes and pauses reconnects.

    ``_send_data`` is where both senders (sync in the caller's thread, async in
    its worker thread) write the pending bytes; fluent-logger keeps those bytes
    for a retry when it raises ``OSError``.
    """

    _tally: Tally

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
        self._tally.add(sent=count_packets(bytes_), sent_bytes=len(bytes_))


class SyncSender(ObservedSend, sender.FluentSender):
    """fluent-logger's synchronous sender, observed."""

    def __init__(self, tally: Tally, tag: str, **kwargs: Any) -> None:
        self._tally = tally
        super().__init__(tag, **kwargs)


class AsyncSender(ObservedSend, asyncsender.FluentSender):
    """fluent-logger's asynchronous sender (bounded queue, worker thread), observed."""

    def __init__(self, tally: Tally, tag: str, **kwargs: Any) -> None:
        self._tally = tally
        super().__init__(tag, **kwargs)


def stamp_time(value: float | None) -> tuple[float, Any]:
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
