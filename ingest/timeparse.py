"""Event-time parsing: every form a forwarder writes, to epoch seconds (UTC)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from ingest.errors import RejectedMessage

_MS_EPOCH_THRESHOLD = 1e11  # larger than any plausible epoch-seconds value before year 5138


def parse_time(value: object) -> float:
    """Return ``value`` as epoch seconds, or raise ``RejectedMessage('bad_time')``.

    Accepts epoch seconds (int or float, e.g. Fluentd's ``time_type float``),
    epoch milliseconds (ints above 1e11), numeric strings, and ISO-8601 strings
    with up to nanosecond fractions (``Z`` or an offset; naive means UTC).

    >>> parse_time(1718000000.123456)
    1718000000.123456
    >>> parse_time("2024-06-10T06:13:20.123456789Z")
    1718000000.123456
    """
    if isinstance(value, bool) or value is None:
        raise RejectedMessage("bad_time", f"time is {value!r}")
    if isinstance(value, int | float):
        t = float(value)
        if not math.isfinite(t) or t < 0:
            raise RejectedMessage("bad_time", f"time {value!r} is not a finite epoch")
        return t / 1000.0 if t > _MS_EPOCH_THRESHOLD else t
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_time(float(text))
        except ValueError:
            pass
        return _parse_iso(text)
    raise RejectedMessage("bad_time", f"time has type {type(value).__name__}")


def _parse_iso(text: str) -> float:
    body = text.replace("Z", "+00:00").replace("z", "+00:00")
    # datetime handles at most microseconds: cut a longer fraction (iso8601_ns) to six digits.
    dot = body.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(body) and body[end].isdigit():
            end += 1
        digits = body[dot + 1 : end]
        body = body[: dot + 1] + digits[:6].ljust(6, "0") + body[end:]
    try:
        parsed = datetime.fromisoformat(body)
    except ValueError:
        raise RejectedMessage("bad_time", f"unparseable timestamp {text[:64]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
