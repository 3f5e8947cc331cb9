"""The commonest forwarder time string, read without a regular expression: the batch
decoder's shortcut to ``ingest.wire.timeparse.parse_time``.

Fluent Bit's ``iso8601``/``iso8601_ns`` and Logstash's ``@timestamp`` are all
``YYYY-MM-DDTHH:MM:SS[.fraction]Z``. ``iso_utc`` reads exactly that shape, and
gives ``parse_time``'s value bit for bit (the same integer seconds, plus the
fraction truncated to microseconds divided by 1e6); for any other text, or a
time ``parse_time`` would reject, it returns ``None`` and the caller asks
``parse_time``. A property test holds the two equal.

>>> iso_utc("2024-06-10T06:13:20.123Z")
1718000000.123
>>> iso_utc("2024-06-10T06:13:20+02:00") is None
True
"""

from __future__ import annotations

from datetime import datetime, timezone

_DAYS: dict[str, int | None] = {}  # "YYYY-MM-DD" -> epoch seconds of its midnight (None: invalid)
_MAX_DAYS = 100_000
_MAX_EPOCH = 253402300800.0  # parse_time's limit: 10000-01-01T00:00:00Z


def iso_utc(text: str) -> float | None:
    """``parse_time(text)`` for ``YYYY-MM-DDTHH:MM:SS[.digits]Z``; ``None`` otherwise."""
    if len(text) < 20 or text[-1] != "Z" or text[10] != "T" or text[13] != ":" \
            or text[16] != ":":
        return None
    day = _DAYS.get(text[:10], -1)
    if day == -1:
        day = _midnight(text[:10])
    clock = text[11:13] + text[14:16] + text[17:19]
    if day is None or not (clock.isascii() and clock.isdigit()):
        return None
    hour, minute, second = int(clock[:2]), int(clock[2:4]), int(clock[4:])
    if hour > 23 or minute > 59 or second > 59:
        return None
    t = float(day + hour * 3600 + minute * 60 + second)
    if len(text) > 20:
        fraction = text[20:-1]
        if text[19] not in ".," or not fraction or not (fraction.isascii()
                                                        and fraction.isdigit()):
            return None
        t += int(fraction[:6].ljust(6, "0")) / 1e6
    return t if 0 <= t < _MAX_EPOCH else None


def _midnight(date: str) -> int | None:
    """Epoch seconds of ``date``'s UTC midnight, remembered; ``None`` if not a date."""
    value: int | None = None
    if date[4] == "-" and date[7] == "-":
        digits = date[:4] + date[5:7] + date[8:]
        if digits.isascii() and digits.isdigit():
            try:
                value = int(datetime(int(digits[:4]), int(digits[4:6]), int(digits[6:]),
                                     tzinfo=timezone.utc).timestamp())
            except ValueError:
                value = None
    if len(_DAYS) >= _MAX_DAYS:
        _DAYS.clear()
    _DAYS[date] = value
    return value
