"""The bench's yardstick for the join: the same event-time join written by hand on
kafka-python, with no durability, no drift and no dead letters, and the check of a
labeled dataset against the oracle.

What someone would write in an afternoon: one consumer over both raw topics,
``orjson.loads`` per message, predictions kept in a dict (the first copy wins),
outcomes in a dict per join id (deduplicated by outcome id), a watermark as the
minimum over every raw partition of its highest event time minus the allowed
lateness, a heap of close times, and the closed rows written as zstd Parquet
through ``pyarrow.Table.from_pylist`` every 50,000 rows. It assumes what the bench's
traffic guarantees (well-formed JSON with the event time in seconds under ``time``, or
``@timestamp`` for Fluent Bit, every partition non-empty, nothing late) and checks
nothing else, which is what makes it a floor.
"""

from __future__ import annotations

import heapq
import math
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, TopicPartition

FLUSH_ROWS = 50_000


def raw_consumer(bootstrap: str, predictions: str, outcomes: str
                 ) -> tuple[KafkaConsumer, list[TopicPartition]]:
    """A consumer without a group over every partition of both raw topics, from their
    beginnings, with the bench's fetch sizes; and those partitions (the bench's joins
    read with it)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, max_poll_records=5000,
                             fetch_max_bytes=64 * 1024 * 1024,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    tps = [TopicPartition(t, p) for t in (predictions, outcomes)
           for p in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return consumer, tps


def hand_join(bootstrap: str, predictions: str, outcomes: str, expected: int, window: float,
              early: float, grace: float, lateness: float, out: str,
              time_key: str = "time") -> dict[str, Any]:
    """Join ``expected`` raw messages into ``out`` (Parquet); CPU and wall figures.
    ``time_key``: the event time's field (``@timestamp`` for Fluent Bit)."""
    consumer, tps = raw_consumer(bootstrap, predictions, outcomes)
    highest = {tp: -math.inf for tp in tps}
    pending: dict[str, tuple[float, dict[str, Any]]] = {}
    clicks: dict[str, dict[Any, tuple[float, str]]] = {}
    closed: set[str] = set()
    closing: list[tuple[float, str]] = []
    rows: list[dict[str, Any]] = []
    files = 0
    seen = 0
    first = last = None
    cpu0 = time.process_time()
    deadline = time.monotonic() + 600

    def close(rid: str) -> None:
        t, doc = pending.pop(rid)
        closed.add(rid)
        inside = [(u, kind) for u, kind in clicks.pop(rid, {}).values()
                  if t - early <= u <= t + window]
        row = {"prediction_id": rid, "event_time": t, "model": doc.get("model"),
               "pred_score": doc.get("score"),
               "label_clicked": any(kind == "click" for _, kind in inside),
               "outcome_count": len(inside)}
        for name, value in (doc.get("features") or {}).items():
            row["feat_" + name] = value
        rows.append(row)

    def flush() -> None:
        nonlocal files, rows
        if rows:
            pq.write_table(pa.Table.from_pylist(rows), f"{out}/part-{files}.parquet",
                           compression="zstd")
            files += 1
            rows = []

    while seen < expected and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for tp, messages in batch.items():
            if first is None:
                first = time.monotonic()
            top = highest[tp]
            if tp.topic == predictions:
                for m in messages:
                    doc = orjson.loads(m.value)
                    rid, t = doc["request_id"], doc[time_key]
                    top = t if t > top else top
                    if rid in pending or rid in closed:
                        continue
                    pending[rid] = (t, doc)
                    heapq.heappush(closing, (t + window + grace, rid))
            else:
                for m in messages:
                    doc = orjson.loads(m.value)
                    rid, u = doc["request_id"], doc[time_key]
                    top = u if u > top else top
                    if rid in closed:
                        continue
                    key = doc.get("outcome_id") or (doc.get("type"), u)
                    clicks.setdefault(rid, {}).setdefault(key, (u, doc.get("type", "outcome")))
            highest[tp] = top
            seen += len(messages)
        watermark = min(highest.values()) - lateness
        while closing and closing[0][0] < watermark:
            close(heapq.heappop(closing)[1])
        if len(rows) >= FLUSH_ROWS:
            flush()
        if batch:
            last = time.monotonic()
    while closing:
        close(heapq.heappop(closing)[1])
    flush()
    cpu = time.process_time() - cpu0
    consumer.close()
    return {"events": seen, "seconds": (last or 0) - (first or 0), "cpu_s": cpu,
            "first_at": first, "last_at": last}


def oracle_mismatches(dataset: str | Path, truth: pd.DataFrame) -> int | None:
    """Rows of ``dataset`` that differ from the oracle's ``truth`` (labels and outcome
    counts, by prediction id), plus the rows one has and the other lacks; ``None``
    when the dataset cannot be read."""
    try:
        got = pd.read_parquet(dataset, columns=["prediction_id", "label_clicked",
                                                "outcome_count"])
    except (OSError, ValueError, pa.ArrowException):
        return None
    got = got.astype({"prediction_id": str})
    merged = truth.merge(got, on="prediction_id", how="outer", suffixes=("", "_got"),
                         indicator=True)
    unmatched = int((merged["_merge"] != "both").sum())
    both = merged[merged["_merge"] == "both"]
    differ = ((both["label_clicked"].astype(bool) != both["label_clicked_got"].astype(bool))
              | (both["outcome_count"].astype(int) != both["outcome_count_got"].astype(int)))
    return unmatched + int(differ.sum()) + max(0, len(got) - got["prediction_id"].nunique())
