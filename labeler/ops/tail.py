"""``loglabel tail``: drift events (and dead letters) from their topics, as console lines.

A reader, not a group member: it assigns every partition of the topics
itself, commits nothing, and starts at their end (or their beginning with
``from_beginning``). It stops after ``max_events`` lines, or once no message
came for ``timeout_s`` seconds, or on Ctrl-C; without either bound it follows
the topics until stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from labeler.console import format_line
from labeler.errors import ConfigError
from labeler.ops.report.sources import dead_letter_from_headers, drift_events_from_values

DEAD_LETTER_EVENT = "dead_letter"


def drift_line(value: bytes | None, colour: bool) -> str | None:
    """The console line of a drift topic's message value (None if it is not a drift event)."""
    for doc in drift_events_from_values([value]):
        at = doc.get("event_time")
        return format_line({"ts": at, "level": "warning", **doc}, colour=colour)
    return None


def dead_letter_line(message: Any, colour: bool) -> str:
    """The console line of a dead-letter message: its reason, source and detail."""
    headers: Iterable[tuple[str, bytes | None]] = message.headers or []
    letter = dead_letter_from_headers(headers, message.timestamp)
    found: Mapping[str, bytes | None] = dict(message.headers or [])
    source = None
    if found.get("loglabel.source.topic"):
        source = (f"{letter.kind}[{(found.get('loglabel.source.partition') or b'?').decode()}]"
                  f"@{(found.get('loglabel.source.offset') or b'?').decode()}")
    doc: dict[str, Any] = {"ts": letter.timestamp, "level": "warning",
                           "event": DEAD_LETTER_EVENT, "reason": letter.reason,
                           "source": source}
    detail = found.get("loglabel.detail")
    if detail:
        doc["detail"] = detail.decode("utf-8", "replace")
    return format_line(doc, colour=colour)


def tail(options: Mapping[str, Any], drift_topic: str, dead_letter_topic: str | None,
         emit: Callable[[str], None], *, from_beginning: bool = False,
         max_events: int | None = None, timeout_s: float | None = None,
         colour: bool = False) -> int:
    """Print the topics' events through ``emit``; the number of lines printed.

    Raises :class:`ConfigError` when a topic does not exist.
    """
    from kafka import TopicPartition

    from ingest.kafka.clients import new_consumer

    consumer = new_consumer(options, enable_auto_commit=False, group_id=None)
    printed = 0
    try:
        assigned = []
        for topic in (drift_topic, dead_letter_topic):
            if topic is None:
                continue
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise ConfigError(f"topic {topic!r} does not exist: check topics.drift / "
                                  "topics.dead_letter, or create them with `loglabel topics "
                                  "create --config FILE`")
            assigned += [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            consumer.seek_to_beginning(*assigned)
        else:
            consumer.seek_to_end(*assigned)
        last = time.monotonic()
        while max_events is None or printed < max_events:
            if timeout_s is not None and time.monotonic() - last >= timeout_s:
                break
            batch = consumer.poll(timeout_ms=500)
            if batch:
                last = time.monotonic()
            for tp, messages in sorted(batch.items(), key=lambda kv: kv[0]):
                for message in messages:
                    if tp.topic == drift_topic:
                        line = drift_line(message.value, colour)
                    else:
                        line = dead_letter_line(message, colour)
                    if line is None:
                        continue
                    emit(line)
                    printed += 1
                    if max_events is not None and printed >= max_events:
                        return printed
        return printed
    finally:
        consumer.close()
