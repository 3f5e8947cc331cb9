"""What an emitter is told (:class:`EmitterConfig`) and what it reports (:class:`EmitterStats`).

Both are re-exported by :mod:`ingest.emitter`, the SDK's entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TAG_PREFIX = "ml"
"""The tag prefix of every emitter unless configured: tags are ``ml.<label>``."""

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
