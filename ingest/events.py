"""Structured log events from the ingest floor, on loglabel's logger.

The labeler formats them as JSON lines (``labeler.logs``); ingest only names the
event and its fields, so it needs nothing from the floors above.
"""

from __future__ import annotations

import logging
from typing import Any

_logger = logging.getLogger("loglabel")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with structured ``fields``."""
    _logger.log(level, event, extra={"fields": fields})
