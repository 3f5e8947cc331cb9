"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

LOGGER_NAME = "loglabel"


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "event", ...fields}``.

    Structured fields travel in ``extra={"fields": {...}}``; the message is the
    event name.
    """

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None) or getattr(record, "drift", None)
        if fields:
            doc.update(fields)  # a drift record carries "event": "drift" itself
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        return orjson.dumps(doc, default=str, option=options).decode()


def setup(level: str = "INFO") -> logging.Logger:
    """Send loglabel's logs as JSON lines to stderr (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(getattr(h, "_loglabel", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._loglabel = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    return logger


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with structured ``fields`` on loglabel's logger."""
    logging.getLogger(LOGGER_NAME).log(level, event, extra={"fields": fields})


def now() -> float:
    return time.time()
