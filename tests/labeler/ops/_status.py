"""Worker status snapshots built by hand, for the unit tests of metrics and health."""

from __future__ import annotations

from labeler.runtime.status import PartitionStatus, WorkerStatus


def part(offsets: dict[str, int] | None = None, pending: int = 0, early: int = 0,
         watermark: float = float("-inf"), lag: float = float("inf"),
         epoch: int = 0, on_disk: int = 0) -> PartitionStatus:
    return PartitionStatus(pending=pending, early_buffered=early, watermark=watermark,
                           watermark_lag_s=lag, offsets=dict(offsets or {}), epoch=epoch,
                           pending_on_disk=on_disk)


def status(partitions: dict[int, PartitionStatus] | None = None,
           counters: dict[str, int] | None = None, running: bool = True,
           last_input_at: float | None = None) -> WorkerStatus:
    return WorkerStatus(counters=dict(counters or {}), partitions=dict(partitions or {}),
                        last_input_at=last_input_at, running=running)
