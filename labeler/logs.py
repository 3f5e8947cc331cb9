"""Structured logs on stderr: one JSON object per line, or one aligned line for people.

``setup(level, fmt="json")`` is the default, for log shippers;
``fmt="console"`` (``logging.format = "console"``) prints the same events
through :func:`labeler.console.format_line`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

LOGGER_NAME = "loglabel"


FORMATS = ("json", "console")


def event_of(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """The event a record carries: ``{"ts", "level", "event", ...fields}``."""
    doc: dict[str, Any] = {
        "ts": round(record.created, 3),
        "level": record.levelname.lower(),
        "event": record.getMessage(),
    }
    fields = getattr(record, "fields", None) or getattr(record, "drift", None)
    if fields:
        doc.update(fields)  # a drift record carries "event": "drift" itself
    if record.exc_info:
        doc["error"] = formatter.formatException(record.exc_info)
    return doc


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "event", ...fields}``.

    Structured fields travel in ``extra={"fields": {...}}``; the message is the
    event name.
    """

    def format(self, record: logging.LogRecord) -> str:
        options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        return orjson.dumps(event_of(record, self), default=str, option=options).decode()


class ConsoleFormatter(logging.Formatter):
    """Formats a record as one aligned line (:func:`labeler.console.format_line`).

    ``colour`` adds ANSI colours: the caller decides (a TTY gets them, a file
    or a pipe does not).
    """

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        from labeler.console import format_line

        doc = orjson.loads(orjson.dumps(event_of(record, self), default=str,
                                        option=orjson.OPT_SERIALIZE_NUMPY
                                        | orjson.OPT_NON_STR_KEYS))
        return format_line(doc, colour=self.colour)


def formatter_for(fmt: str, stream: Any) -> logging.Formatter:
    """The formatter of ``logging.format`` for ``stream`` (colour only on a TTY)."""
    if fmt == "console":
        isatty = getattr(stream, "isatty", None)
        return ConsoleFormatter(colour=bool(isatty and isatty()))
    if fmt != "json":
        raise ValueError(f"logging.format must be one of {FORMATS}, not {fmt!r}")
    return JsonFormatter()


def setup(level: str = "INFO", fmt: str = "json") -> logging.Logger:
    """Send loglabel's logs to stderr in ``fmt`` (``json`` or ``console``).

    Idempotent: a second call sets the level and the format of the same handler.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    ours = [h for h in logger.handlers if getattr(h, "_loglabel", False)]
    if ours:
        handler = ours[0]
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler._loglabel = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    handler.setLevel(logging.NOTSET)  # ``level`` decides (``log_to_file`` may have raised it)
    handler.setFormatter(formatter_for(fmt, getattr(handler, "stream", None)))
    return logger


def log_to_file(path: str, level: str = "INFO") -> logging.Handler:
    """Also write loglabel's events at ``level`` and above as JSON lines to ``path``.

    The stderr handler keeps its own level (set on it here when the logger's
    own level must drop to let these through). The caller removes the handler
    (``logging.getLogger(LOGGER_NAME).removeHandler(h); h.close()``).
    """
    logger = logging.getLogger(LOGGER_NAME)
    threshold = logging.getLevelName(level)
    if logger.level > threshold:
        for h in logger.handlers:
            if getattr(h, "_loglabel", False) and h.level < logger.level:
                h.setLevel(logger.level)
        logger.setLevel(threshold)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(threshold)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    return handler


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with structured ``fields`` on loglabel's logger."""
    logging.getLogger(LOGGER_NAME).log(level, event, extra={"fields": fields})


def now() -> float:
    return time.time()
