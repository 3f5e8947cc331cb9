"""Fewer, larger files: a three-week backfill over 3 partitions in tens of files.

The rule (README "Files: fewer, larger"): one file per model and partition
directory (a day by default) per epoch, cut further only by ``max_rows``,
``max_bytes`` and ``max_span_s`` (a day). The hour layout with a one-hour span
is what loglabel wrote before, one file per partition and hour.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from ingest.records import Prediction
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.checkpoint import CheckpointStore, shard_name
from labeler.output.dataset_schema import SchemaStore
from labeler.output.shards import PARTITIONINGS, Rotation, ShardEncoder
from labeler.output.storage import Storage

ROWS = 30_000
PARTITIONS = 3
SPAN_S = 21 * 86_400.0
START = 1790812800.0  # 2026-10-01T00:00:00Z


def backfill() -> dict[int, list[LabeledExample]]:
    out: dict[int, list[LabeledExample]] = {p: [] for p in range(PARTITIONS)}
    for i in range(ROWS):
        t = START + i * SPAN_S / ROWS
        p = Prediction(f"r{i}", t, "ctr", "v1", {"f00": 0.001 * i, "country": "DE"},
                       {"score": 0.5})
        out[i % PARTITIONS].append(LabeledExample(p, (i % 7 == 0,), 1, 3.0))
    return out


def write(root: Path, layout: str, span_s: float) -> tuple[int, float]:
    """Files written and seconds taken to encode and commit the backfill, one epoch per
    partition (as a backfill labeled faster than output.flush_interval_s is)."""
    storage = Storage(str(root))
    store = CheckpointStore(storage, "p+o")
    encoder = ShardEncoder((LabelSpec("clicked"),), rotation=Rotation(max_span_s=span_s),
                           schema=SchemaStore(storage, PARTITIONINGS[layout]))
    files = 0
    started = time.perf_counter()
    for partition, rows in backfill().items():
        shards = encoder.encode(rows, shard_name("p+o", partition, 0, 1, "w"))
        store.commit(partition, 1, {"p": len(rows)}, {}, shards)
        files += len(shards)
    elapsed = time.perf_counter() - started
    assert ds.dataset(str(root), format="parquet", partitioning="hive").count_rows() == ROWS
    return files, elapsed


def test_a_three_week_backfill_writes_one_file_per_partition_and_day() -> None:
    encoder = ShardEncoder((LabelSpec("clicked"),))  # the defaults: date layout, a day's span
    files = [f for partition, rows in backfill().items()
             for f in encoder.encode(rows, shard_name("p+o", partition, 0, 1, "w"))]
    assert len(files) == PARTITIONS * 21
    assert sum(f.rows for f in files) == ROWS
    assert len({f.path.rsplit("/", 1)[0] for f in files}) == 21


@pytest.mark.bench
def test_print_files_and_throughput_of_the_backfill_before_and_after(tmp_path: Path) -> None:
    hourly_files, hourly_s = write(tmp_path / "hour", "hour", 3600.0)
    daily_files, daily_s = write(tmp_path / "date", "date", 86_400.0)
    print(f"\nbackfill of {ROWS} rows over {PARTITIONS} partitions and 21 days, encode + "
          f"commit: hour layout {hourly_files} files {ROWS / hourly_s:,.0f} rows/s; date "
          f"layout {daily_files} files {ROWS / daily_s:,.0f} rows/s; "
          f"speed-up x{hourly_s / daily_s:.2f}")
