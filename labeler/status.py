"""Plain snapshots of a worker's state, for logs, metrics and health checks."""

from __future__ import annotations

from dataclasses import dataclass


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
