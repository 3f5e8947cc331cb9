"""Event-time parsing: every time form a forwarder writes, to epoch seconds (UTC).

Accepted forms, and the rules that decide between them:

- **Numbers** (JSON int or float) are epoch values. Their magnitude picks the
  unit: below 1e11 seconds (Fluentd ``time_type float`` / ``unixtime``, Fluent
  Bit ``double``), below 1e14 milliseconds, below 1e17 microseconds, otherwise
  nanoseconds. 1e11 s is the year 5138, so no real seconds value is taken for
  milliseconds.
- **Numeric strings** (exactly a JSON number, e.g. ``"1718000000.5"``) follow
  the number rule. ``"NaN"``, ``"inf"``, ``"1_000"`` or padded text are not numbers.
- **ISO-8601 strings**: ``YYYY-MM-DD``, then ``T``, ``t`` or a space, then
  ``HH:MM:SS``, an optional fraction (``.`` or ``,``, any number of digits,
  truncated to microseconds as Fluentd does), and an optional zone (``Z``,
  ``+HH:MM``, ``+HHMM`` or ``+HH``, optionally after one space as Ruby's
  ``%z`` formats write it). Fluent Bit ``iso8601`` / ``iso8601_ns``, Logstash's
  ``@timestamp`` and Fluentd ``time_type string`` all match.
- **A time without a zone is taken as UTC.** Fluentd's ``time_type string``
  writes local time unless ``utc true`` is set; loglabel cannot know the
  forwarder's zone, so set ``utc true`` (or a ``time_format`` with ``%z``) there.

Anything else is rejected with ``RejectedMessage("bad_time")``: booleans,
null, objects, negative or non-finite numbers, dates past the year 9999, and
impossible dates such as month 13.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from ingest.errors import RejectedMessage

_MS_EPOCH = 1e11
_US_EPOCH = 1e14
_NS_EPOCH = 1e17
_MAX_EPOCH = 253402300800.0  # 10000-01-01T00:00:00Z: datetime's own limit

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?"
    r"(?: ?(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?))?"
)
_UTC = timezone.utc


def is_number_text(text: str) -> bool:
    """True when ``text`` is exactly a JSON number literal (no padding, no NaN/inf)."""
    return _NUMBER.fullmatch(text) is not None


def parse_time(value: object) -> float:
    """Return ``value`` as epoch seconds (UTC), or raise ``RejectedMessage('bad_time')``.

    >>> parse_time(1718000000.123456)
    1718000000.123456
    >>> parse_time(1718000000123)
    1718000000.123
    >>> parse_time("2024-06-10T06:13:20.123456789Z")
    1718000000.123456
    >>> parse_time("2024-06-10 08:13:20 +0200")
    1718000000.0
    """
    if isinstance(value, bool):
        raise RejectedMessage("bad_time", f"time is a bool: {value!r}")
    if isinstance(value, float | int):
        return _epoch(value, value)
    if isinstance(value, str):
        text = value.strip()
        if text[:1].isdigit() and len(text) < 400 and _NUMBER.fullmatch(text):
            return _epoch(float(text), value)
        return _parse_iso(text, value)
    raise RejectedMessage("bad_time", f"time is a {type(value).__name__}: {_show(value)}")


def _epoch(number: float, original: object) -> float:
    try:
        t = float(number)
    except OverflowError:  # an int beyond float range (only from non-orjson parsing paths)
        t = math.inf
    if not math.isfinite(t) or t < 0:
        raise RejectedMessage("bad_time", f"time {_show(original)} is not a finite epoch >= 0")
    if t >= _MS_EPOCH:
        t /= 1e3 if t < _US_EPOCH else 1e6 if t < _NS_EPOCH else 1e9
    if t >= _MAX_EPOCH:
        raise RejectedMessage("bad_time", f"time {_show(original)} is past the year 9999")
    return t


def _parse_iso(text: str, original: object) -> float:
    m = _ISO.fullmatch(text)
    if m is None:
        raise RejectedMessage("bad_time", f"unparseable timestamp {_show(original)}")
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = m.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          tzinfo=_UTC)
    except ValueError:
        raise RejectedMessage("bad_time", f"impossible date {_show(original)}") from None
    t = moment.timestamp()
    if sign is not None:
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        if offset >= timedelta(hours=24):
            raise RejectedMessage("bad_time", f"impossible zone offset in {_show(original)}")
        t += -offset.total_seconds() if sign == "+" else offset.total_seconds()
    if fraction:
        t += int(fraction[:6].ljust(6, "0")) / 1e6
    if t < 0 or t >= _MAX_EPOCH:
        raise RejectedMessage("bad_time", f"time {_show(original)} is out of range")
    return t


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."
