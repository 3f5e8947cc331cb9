"""Plain snapshots of a worker's state, for logs, metrics and health checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    pending: int
    early_buffered: int
    watermark: float  # epoch seconds; -inf before any input
    watermark_lag_s: float  # wall clock minus watermark
    offsets: dict[str, int]  # topic -> next offset to read
    epoch: int
    pending_on_disk: int = 0  # of ``pending``, those spilled beyond the memory budget


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    counters: dict[str, int]
    partitions: dict[int, PartitionStatus]
    last_input_at: float | None  # monotonic seconds
    running: bool
    last_poll_at: float | None = None  # monotonic seconds: the loop is alive
    restoring: tuple[int, ...] = ()  # assigned partitions still being restored


# What happened to records that did not simply join: genuinely late data (behind its
# partition's frontier), and the audit counters of a watermark that moved too early
# (``*_after_close``: only idleness can cause them; the worker warns when they grow).
AUDITED = ("late_outcomes", "late_predictions", "outcomes_after_close",
           "predictions_after_close", "ahead_of_frontier", "early_expired", "outside_window",
           "duplicate_predictions", "duplicate_outcomes")


def status_line(status: WorkerStatus, counters: Mapping[str, int], elapsed: float
                ) -> dict[str, Any]:
    """The fields of the periodic ``status`` log line (documented in the README)."""
    c = counters
    messages = c.get("messages", 0)
    labeled, positives = c.get("labeled", 0), c.get("positives", 0)
    return {
        "elapsed_s": round(elapsed, 1),
        "messages": messages,
        "rate_per_s": round(messages / elapsed, 1) if elapsed > 0 else None,
        "labeled": labeled, "positives": positives, "negatives": labeled - positives,
        **{name: c.get(name, 0) for name in AUDITED},
        "dead_letters": sum(v for k, v in c.items() if ".dead_letter." in k),
        "pending": sum(p.pending for p in status.partitions.values()),
        "pending_on_disk": sum(p.pending_on_disk for p in status.partitions.values()),
        "watermark_lag_s": {i: round(p.watermark_lag_s, 1)
                            for i, p in status.partitions.items()
                            if math.isfinite(p.watermark_lag_s)},
        "shards_written": c.get("shards_written", 0), "rows_written": c.get("rows_written", 0),
        "restoring": list(status.restoring),
    }
