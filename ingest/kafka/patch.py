"""A fix for kafka-python 3.0's socket reader, applied before loglabel builds a Kafka client.

kafka-python 3.0 (``kafka.net.transport``) reads a socket until it would block.
When the bytes it read are followed by the peer's close in the same pass, it
returns both and the caller aborts the connection *without* delivering the
bytes. A broker's last answer before it hangs up is lost that way: the SASL
"authentication failed" response (the broker closes right after it), so a
wrong password shows up as a bare "socket disconnected" whenever the client
is slower than the broker's close.

The fix hands the bytes over first and leaves the close for the next read,
which sees the same end of stream (or reset) again and closes as before.
It patches only the classes and method it knows, once, and logs when the
installed kafka-python no longer looks like the one it was written for.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_MARK = "_loglabel_keeps_bytes_before_eof"
Reader = Callable[[Any], tuple[bytes, BaseException | None]]


def _deliver_before_close(read: Reader) -> Reader:
    @functools.wraps(read)
    def read_then_close(transport: Any) -> tuple[bytes, BaseException | None]:
        data, error = read(transport)
        if data and error is not None:
            return data, None  # the next read meets the same EOF or reset and closes
        return data, error

    setattr(read_then_close, _MARK, True)
    return read_then_close


def install() -> list[str]:
    """Patch kafka-python's transports; returns the names of the classes patched."""
    try:
        from kafka.net import transport
    except ImportError:  # an older kafka-python without kafka.net: nothing to fix
        return []
    patched = []
    for name in ("KafkaTCPTransport", "KafkaSSLTransport"):
        cls = getattr(transport, name, None)
        read = cls.__dict__.get("_sock_recv") if cls is not None else None
        if read is None:
            log.warning("kafka-python changed: %s._sock_recv not found; the fix for "
                        "answers lost before a broker's close is not applied", name)
            continue
        if not getattr(read, _MARK, False):
            cls._sock_recv = _deliver_before_close(read)  # type: ignore[union-attr]
        patched.append(name)
    return patched
