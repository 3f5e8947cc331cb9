"""Log events for people: one aligned line per event, drift events spelled out.

The JSON log line stays the machine form (``logging.format = "json"``, the
default). ``logging.format = "console"`` prints the same events as::

    14:02:17.120 WARN  drift          ctr-v3 data/mean f00: mean 0.04 -> 1.08 (CUSUM ...)
    14:02:20.004 INFO  status         messages=7087 labeled=6000 positives=892 ...

time, level, event name padded to fixed widths, then the fields as
``key=value``. On a terminal (a TTY) the level is coloured and drift events
are bold yellow; elsewhere no escape codes are written. ``loglabel tail`` and
the HTML report use :func:`describe_drift` for the same sentence.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

RESET = "\x1b[0m"
COLOURS = {"debug": "\x1b[2m", "info": "\x1b[36m", "warning": "\x1b[33m",
           "error": "\x1b[31m", "critical": "\x1b[1;31m"}
HIGHLIGHT = {"drift": "\x1b[1;33m", "dead_letter": "\x1b[35m"}
LEVEL_NAMES = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR",
               "critical": "CRIT"}
EVENT_WIDTH = 22
OMITTED = frozenset({"ts", "level", "event"})


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"


def _summary(side: Mapping[str, Any] | None) -> str | None:
    """A reference or current summary as a few words: a mean, a rate, the top shares."""
    if not side:
        return None
    if side.get("mean") is not None:
        return f"mean {_num(side['mean'])}"
    if side.get("rate") is not None:
        return f"rate {_num(side['rate'])}"
    top = side.get("top")
    if top:
        return ", ".join(f"{k} {float(v):.0%}" for k, v in list(top)[:3])
    return None


def describe_drift(doc: Mapping[str, Any]) -> str:
    """One sentence for a drift event (its JSON form, as logged or on the drift topic).

    >>> describe_drift({"model": "ctr", "kind": "data", "stream": "mean", "feature": "f00",
    ...                 "detector": "CUSUM", "statistic_name": "cumulative_deviation",
    ...                 "statistic": 8.16, "threshold": 8.0, "reference": {"mean": 0.04},
    ...                 "current": {"mean": 1.08}})
    'ctr: f00 mean changed from mean 0.04 to mean 1.08 (CUSUM cumulative_deviation 8.16 >= 8)'
    """
    what = " ".join(str(p) for p in (doc.get("feature"), doc.get("stream")) if p)
    before, after = _summary(doc.get("reference")), _summary(doc.get("current"))
    change = f" from {before} to {after}" if before and after else ""
    sentence = f"{doc.get('model', '?')}: {what or doc.get('kind', 'drift')} changed{change}"
    statistic, threshold = doc.get("statistic"), doc.get("threshold")
    if statistic is not None:
        name = doc.get("statistic_name") or "statistic"
        versus = f" >= {_num(threshold)}" if threshold is not None else ""
        sentence += f" ({doc.get('detector', '')} {name} {_num(statistic)}{versus})".replace(
            "( ", "(")
    detail = doc.get("detail")
    return f"{sentence}: {detail}" if detail else sentence


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else orjson.dumps(
            value).decode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _num(value)
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def format_line(doc: Mapping[str, Any], colour: bool = False) -> str:
    """One event (the dict a JSON log line holds) as an aligned console line.

    >>> format_line({"ts": 0.0, "level": "info", "event": "status", "labeled": 3}
    ...             ).split(" ", 1)[1]
    'INFO  status                 labeled=3'
    """
    ts = doc.get("ts")
    clock = " " * 12
    if isinstance(ts, int | float):
        millis = int(float(ts) * 1000) % 1000
        clock = time.strftime("%H:%M:%S", time.gmtime(float(ts))) + f".{millis:03d}"
    level = str(doc.get("level", "info")).lower()
    event = str(doc.get("event", ""))
    if event == "drift":
        body = describe_drift(doc)
        when = doc.get("event_time")
        if isinstance(when, int | float):
            body += f" at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(when))}"
        if doc.get("source"):
            body += f" [{doc['source']}]"
        body = f"{doc.get('kind', '')}/{doc.get('stream', '')} {body}"
    else:
        body = " ".join(f"{k}={_value(v)}" for k, v in doc.items() if k not in OMITTED)
    name = LEVEL_NAMES.get(level, level.upper())
    if not colour:
        return f"{clock} {name:<5} {event:<{EVENT_WIDTH}} {body}".rstrip()
    tint = COLOURS.get(level, "")
    line = f"{clock} {tint}{name:<5}{RESET} {event:<{EVENT_WIDTH}} {body}".rstrip()
    mark = HIGHLIGHT.get(event)
    return f"{mark}{line}{RESET}" if mark else line
