"""The fields of the periodic status line."""

from __future__ import annotations

import math

from labeler.runtime.status import PartitionStatus, WorkerStatus, status_line


def part(pending: int, on_disk: int, lag: float) -> PartitionStatus:
    return PartitionStatus(pending=pending, early_buffered=0, watermark=0.0, watermark_lag_s=lag,
                           offsets={}, epoch=1, pending_on_disk=on_disk)


def test_status_line_sums_partitions_and_derives_negatives() -> None:
    status = WorkerStatus(counters={}, partitions={0: part(10, 4, 2.34), 3: part(5, 0, math.inf)},
                          last_input_at=None, running=True)
    counters = {"messages": 200, "labeled": 90, "positives": 12, "late_outcomes": 3,
                "prediction.dead_letter.not_json": 2, "outcome.dead_letter.bad_time": 1}
    line = status_line(status, counters, elapsed=4.0)
    assert line["rate_per_s"] == 50.0
    assert (line["labeled"], line["positives"], line["negatives"]) == (90, 12, 78)
    assert line["dead_letters"] == 3 and line["late_outcomes"] == 3
    assert line["duplicate_outcomes"] == 0
    assert (line["pending"], line["pending_on_disk"]) == (15, 4)
    assert line["watermark_lag_s"] == {0: 2.3}  # no watermark yet: left out, not infinite
    assert status_line(status, counters, elapsed=0.0)["rate_per_s"] is None
