"""The bench's second yardstick: the hand-written join of ``bench_handjoin`` done a poll
batch at a time with Arrow instead of a record at a time with dicts.

It answers what a columnar design can reach on kafka-python before durability, dead
letters or drift: a poll batch's values are parsed by pyarrow's JSON reader
straight into columns (no Python object per record), pending predictions are
Arrow tables with their close times in numpy, and the predictions a watermark
closes are joined with their outcomes by ``Table.join`` and labeled by
``Table.group_by``, then written as zstd Parquet every 50,000 rows. The same
rules as the hand join: the first copy of a prediction wins, outcomes are
deduplicated by outcome id, a watermark is the minimum over every raw partition
of its highest event time minus the allowed lateness. Ids are deduplicated in a
Python set (the one step left per record). It assumes what the bench's traffic
guarantees (well-formed Fluentd JSON, one schema, every partition non-empty,
nothing late, a redelivered outcome the same bytes as its first copy) and checks
nothing else: a floor, not a labeler.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from labeler.tools.bench_handjoin import raw_consumer

FLUSH_ROWS = 50_000
_READ = pj.ReadOptions(use_threads=False, block_size=64 * 1024 * 1024)


def _parse(values: list[bytes], time_key: str = "time") -> pa.Table:
    """One poll batch of JSON values as a table (every number a double), the event time
    (``time_key``: ``@timestamp`` for Fluent Bit) in ``time``."""
    table = pj.read_json(pa.py_buffer(b"\n".join(values)), read_options=_READ)
    if time_key != "time":
        table = table.rename_columns(["time" if n == time_key else n for n in table.column_names])
    return table.cast(pa.schema([f.with_type(pa.float64()) if pa.types.is_integer(f.type)
                                 else f for f in table.schema]))


class _Pending:
    """Pending predictions: Arrow tables of first copies, their close times in numpy."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.chunks: list[tuple[pa.Table, np.ndarray]] = []

    def add(self, table: pa.Table, close_after: float) -> None:
        add, seen = self.seen.add, self.seen
        ids = table.column("request_id").to_pylist()
        first = [r not in seen and not add(r) for r in ids]  # also within the batch
        if not all(first):
            table = table.filter(pa.array(first))
        if table.num_rows:
            close = table.column("time").to_numpy() + close_after
            self.chunks.append((table, close))

    def pop_due(self, watermark: float) -> pa.Table | None:
        due, kept = [], []
        for table, close in self.chunks:
            mask = close < watermark
            if not mask.any():
                kept.append((table, close))
                continue
            due.append(table.filter(pa.array(mask)))
            if not mask.all():
                kept.append((table.filter(pa.array(~mask)), close[~mask]))
        self.chunks = kept
        return pa.concat_tables(due) if due else None

    def pop_all(self) -> pa.Table | None:
        return self.pop_due(math.inf)


class _Outcomes:
    """Outcomes not yet joined, as one Arrow table (request id, type, dedupe key, time,
    and ``seq``, the order they came in: the first copy of a key is the one counted)."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.seq = 0

    def add(self, table: pa.Table) -> None:
        kind = table.column("type")
        key = pc.coalesce(pc.cast(table.column("outcome_id"), pa.string()),
                          pc.binary_join_element_wise(kind, pc.cast(table.column("time"),
                                                                     pa.string()), "|"))
        seq = np.arange(self.seq, self.seq + table.num_rows, dtype=np.int64)
        self.seq += table.num_rows
        self.tables.append(pa.table({"request_id": table.column("request_id"), "type": kind,
                                     "key": key, "outcome_time": table.column("time"),
                                     "seq": seq}))

    def table(self) -> pa.Table:
        if len(self.tables) > 1:
            self.tables = [pa.concat_tables(self.tables).combine_chunks()]
        return self.tables[0] if self.tables else pa.table(
            {"request_id": pa.array([], pa.string()), "type": pa.array([], pa.string()),
             "key": pa.array([], pa.string()), "outcome_time": pa.array([], pa.float64()),
             "seq": pa.array([], pa.int64())})

    def drop_before(self, horizon: float) -> None:
        """Forget outcomes no pending prediction can still take (every prediction that
        could have was closed)."""
        table = self.table()
        if table.num_rows:
            self.tables = [table.filter(pc.greater_equal(table.column("outcome_time"), horizon))]


def _label(due: pa.Table, outcomes: pa.Table, window: float, early: float) -> pa.Table:
    """The rows of the closed predictions ``due``: ids, time, model, score, the
    ``clicked`` label and the outcome count of their distinct in-window outcomes (the
    first copy of each dedupe key, as the oracle takes it), the features flattened."""
    ids = due.select(["request_id", "time"])
    hits = ids.join(outcomes, keys="request_id", join_type="inner")
    if hits.num_rows:
        first = hits.group_by(["request_id", "key"]).aggregate([("seq", "min")])
        hits = hits.filter(pc.is_in(hits.column("seq"), value_set=first.column("seq_min")))
        t, u = hits.column("time"), hits.column("outcome_time")
        inside = pc.and_(pc.greater_equal(u, pc.subtract(t, early)),
                         pc.less_equal(u, pc.add(t, window)))
        hits = hits.filter(inside)
    counted = hits.append_column(
        "click", pc.equal(hits.column("type"), "click")).group_by("request_id").aggregate(
        [("key", "count"), ("click", "any")])
    rows = due.flatten().join(counted, keys="request_id", join_type="left outer")
    columns: dict[str, Any] = {
        "prediction_id": rows.column("request_id"),
        "event_time": rows.column("time"),
        "model": rows.column("model"),
        "pred_score": rows.column("score"),
        "label_clicked": pc.fill_null(rows.column("click_any"), False),
        "outcome_count": pc.cast(pc.fill_null(rows.column("key_count"), 0), pa.int32()),
    }
    for name in rows.column_names:
        if name.startswith("features."):
            columns["feat_" + name.removeprefix("features.")] = rows.column(name)
    return pa.table(columns)


class ColumnarJoin:
    """The join of a stream of poll batches (see the module docstring): ``take`` each
    partition's batch, ``advance`` after each poll, ``finish`` at the end; the labeled
    rows collect in ``rows``. ``partitions``: every raw partition's key, the
    watermark's inputs."""

    def __init__(self, partitions: list[Any], window: float, early: float, grace: float,
                 lateness: float, time_key: str = "time") -> None:
        self.window, self.early, self.grace, self.lateness = window, early, grace, lateness
        self.time_key = time_key
        self.highest = {key: -math.inf for key in partitions}
        self.pending, self.outcomes = _Pending(), _Outcomes()
        self.rows: list[pa.Table] = []
        self.labeled = 0

    def take(self, partition: Any, values: list[bytes], predictions: bool) -> None:
        table = _parse(values, self.time_key)
        self.highest[partition] = max(self.highest[partition],
                                      pc.max(table.column("time")).as_py())
        if predictions:
            self.pending.add(table, self.window + self.grace)
        else:
            self.outcomes.add(table)

    def advance(self) -> None:
        """Label what the watermark closes; forget the outcomes nothing can take now."""
        watermark = min(self.highest.values()) - self.lateness
        self._close(self.pending.pop_due(watermark))
        self.outcomes.drop_before(watermark - self.window - self.early - self.grace)

    def finish(self) -> None:
        self._close(self.pending.pop_all())

    def _close(self, due: pa.Table | None) -> None:
        if due is not None and due.num_rows:
            self.rows.append(_label(due, self.outcomes.table(), self.window, self.early))
            self.labeled += due.num_rows

    def take_rows(self) -> pa.Table | None:
        """The rows labeled since the last call, as one table."""
        rows, self.rows, self.labeled = self.rows, [], 0
        return pa.concat_tables(rows, promote_options="permissive") if rows else None


def columnar_join(bootstrap: str, predictions: str, outcomes: str, expected: int,
                  window: float, early: float, grace: float, lateness: float,
                  out: str, time_key: str = "time") -> dict[str, Any]:
    """Join ``expected`` raw messages into ``out`` (Parquet), column-wise; CPU and wall
    figures, as ``bench_handjoin.hand_join`` gives them."""
    consumer, tps = raw_consumer(bootstrap, predictions, outcomes)
    join = ColumnarJoin(tps, window, early, grace, lateness, time_key)
    files = seen = 0
    first = last = None
    cpu0 = time.process_time()
    deadline = time.monotonic() + 600

    def flush() -> None:
        nonlocal files
        table = join.take_rows()
        if table is not None:
            pq.write_table(table, f"{out}/part-{files}.parquet", compression="zstd")
            files += 1

    while seen < expected and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for tp, messages in batch.items():
            if first is None:
                first = time.monotonic()
            join.take(tp, [m.value for m in messages], tp.topic == predictions)
            seen += len(messages)
        join.advance()
        if join.labeled >= FLUSH_ROWS:
            flush()
        if batch:
            last = time.monotonic()
    join.finish()
    flush()
    cpu = time.process_time() - cpu0
    consumer.close()
    return {"events": seen, "seconds": (last or 0) - (first or 0), "cpu_s": cpu,
            "first_at": first, "last_at": last}
