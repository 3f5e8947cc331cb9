"""What a report reads: the shards, the run's JSON log, the drift and dead-letter topics.

Every reader returns plain data (a pandas frame of rows, lists of dicts), so
the shaping in :mod:`labeler.ops.report.shaping` is tested without files or a
broker. The readers tolerate a dataset another worker is writing: they list
the files once, skip ``_``- and ``.``-prefixed paths (checkpoints, staging,
schema), read whatever hive partition keys the paths carry (any depth), and
unify the shards' schemas (a feature that appeared later is a null column in
the older shards, not an error).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from labeler.errors import ConfigError

DRIFT_EVENT = "drift"
STATUS_EVENT = "status"


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One message of the dead-letter topic, as the report needs it."""

    reason: str
    kind: str  # the source topic, or "unknown"
    timestamp: float  # the dead letter's Kafka timestamp (epoch seconds)


@dataclass(frozen=True, slots=True)
class RunLog:
    """The lines of a run's JSON log that a report draws: drift events and status lines."""

    drift: list[dict[str, Any]]
    status: list[dict[str, Any]]
    unreadable: int  # lines that were not JSON objects (a torn last line, another format)


def read_dataset(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Every labeled row under ``path`` (a loglabel dataset or any hive-partitioned Parquet).

    Raises :class:`ConfigError` when there is nothing readable there. A shard
    that vanished or is torn between listing and reading is skipped (another
    worker replaced it), so the report shows the dataset as it was a moment ago.
    """
    root = Path(path)
    if not root.exists():
        raise ConfigError(f"no dataset at {root}")
    files = sorted(_shards(root)) if root.is_dir() else [root]
    if not files:
        raise ConfigError(f"no Parquet shards under {root}")
    tables: list[pa.Table] = []
    partitioning = ds.HivePartitioning.discover(infer_dictionary=False)
    for file in files:
        try:
            piece = ds.dataset(str(file), format="parquet", partitioning=partitioning,
                               partition_base_dir=str(root) if root.is_dir() else None)
            tables.append(piece.to_table())
        except (OSError, pa.ArrowInvalid):
            continue  # replaced or half-written right now; the next report sees it
    if not tables:
        raise ConfigError(f"no readable Parquet shards under {root}")
    table = pa.concat_tables(tables, promote_options="permissive")
    frame = table.to_pandas()
    if "event_time" in frame.columns:
        frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
        frame = frame.sort_values("event_time", kind="stable").reset_index(drop=True)
    if "model" not in frame.columns:
        frame["model"] = "(all)"
    frame["model"] = frame["model"].astype(str)
    return frame


def _shards(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
        for name in filenames:
            if name.endswith(".parquet") and not name.startswith(("_", ".")):
                yield Path(dirpath) / name


def parse_log_lines(lines: Iterable[bytes | str]) -> RunLog:
    """The drift events and status lines among a run's JSON log lines.

    Lines of other events are ignored; a line that is not a JSON object is
    counted in ``unreadable``, never an error (a log being written ends in a
    torn line).

    >>> parse_log_lines(['{"event":"status","ts":1,"labeled":3}', 'oops']).unreadable
    1
    """
    drift: list[dict[str, Any]] = []
    status: list[dict[str, Any]] = []
    unreadable = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            unreadable += 1
            continue
        if not isinstance(doc, dict):
            unreadable += 1
        elif doc.get("event") == DRIFT_EVENT:
            drift.append(doc)
        elif doc.get("event") == STATUS_EVENT:
            status.append(doc)
    return RunLog(drift, status, unreadable)


def read_run_log(path: str | os.PathLike[str]) -> RunLog:
    """:func:`parse_log_lines` over a file; :class:`ConfigError` if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return parse_log_lines(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read the log {path}: {exc.strerror}") from None


def drift_events_from_values(values: Iterable[bytes | None]) -> list[dict[str, Any]]:
    """Drift events from the drift topic's message values (JSON objects; others skipped)."""
    events = []
    for value in values:
        if not value:
            continue
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("event") == DRIFT_EVENT:
            events.append(doc)
    return events


def dead_letter_from_headers(headers: Iterable[tuple[str, bytes | None]],
                             timestamp_ms: int) -> DeadLetterRecord:
    """A dead-letter message's reason and source from its ``loglabel.*`` headers."""
    found: Mapping[str, bytes | None] = dict(headers)

    def text(name: str, default: str) -> str:
        raw = found.get(name)
        return raw.decode("utf-8", "replace") if raw else default

    return DeadLetterRecord(reason=text("loglabel.reason", "unknown"),
                            kind=text("loglabel.source.topic", "unknown"),
                            timestamp=timestamp_ms / 1000.0)


def read_topic(options: Mapping[str, Any], topic: str, timeout_s: float = 10.0
               ) -> list[Any]:
    """Every message of ``topic`` from its beginning up to its end offsets as of now.

    Bounded: it stops at the end offsets asked once at the start, or after
    ``timeout_s`` without a new message. A topic that does not exist is a
    :class:`ConfigError` naming it.
    """
    from kafka import TopicPartition

    from ingest.kafka.clients import new_consumer

    consumer = new_consumer(options, enable_auto_commit=False, group_id=None,
                            consumer_timeout_ms=int(timeout_s * 1000))
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(f"topic {topic!r} does not exist")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while wanted and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            if batch:
                deadline = time.monotonic() + timeout_s
            for tp, messages in batch.items():
                out.extend(messages)
                if messages and messages[-1].offset + 1 >= wanted.get(tp, 0):
                    wanted.pop(tp, None)
        return out
    finally:
        consumer.close()
