"""Parquet shards: labeled examples to hive-partitioned, zstd-compressed files.

Layout under the output root (``output.partition_by``, default ``"date"``)::

    model=<model>/date=<YYYY-MM-DD>/part-<stream>-<partition>-<offset>-<epoch>-<owner>.parquet
    model=<model>/date=<YYYY-MM-DD>/hour=<HH>/part-...parquet     (partition_by = "hour")

``model`` and ``date`` (and ``hour`` in the second layout) are partition keys,
in the path only; with the default layout ``hour`` (0-23, int32) is a column
in the file. The date and hour are the prediction's event time in UTC. Names
(``labeler.output.checkpoint.shard_name``) carry a tag of the input stream,
the input partition, the first input offset the shard covers, the checkpoint
epoch and the owner that wrote it, so no two owners, epochs or restarts
without a checkpoint ever give two files one name (a publish never replaces a
file). Columns are described in the
README ("Output schema"); their types are the dataset schema's
(``labeler.output.dataset_schema``), persisted before any file that needs a
change is returned.

**Files.** One epoch of one input partition writes one file per model and
partition directory (a day by default), cut further by ``Rotation``'s limits:
``max_rows`` rows, ``max_span_s`` seconds between the first and last
prediction time in a file (default one day), or ``max_bytes`` (an estimate
from the bytes per row of the files written so far). So a backfill that
replays three weeks in a few epochs writes a few files per model and day, not
one per hour. Rows are sorted by prediction time (then id) and cut in that
order; the second file of an epoch and directory is named
``...-<owner>-001``, and so on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.records import Outcome
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.dataset_schema import ARROW_TYPES, SchemaStore, type_name

FEATURE_PREFIX = "feat_"
PREDICTION_PREFIX = "pred_"
HOUR_COLUMN = "hour"
PARTITIONINGS: Mapping[str, tuple[str, ...]] = {
    "date": ("model", "date"),
    "hour": ("model", "date", "hour"),
}
"""``output.partition_by`` values and the partition keys each one gives."""


@dataclass(frozen=True, slots=True)
class ShardFile:
    """One Parquet file, encoded and ready to be staged."""

    path: str  # relative final path in the dataset
    data: bytes
    rows: int


class ColumnTypes:
    """Brings each column to its type in the dataset schema (see
    ``labeler.output.dataset_schema`` for the widening rule).

    Every numeric feature or prediction column is float64, ints included: one
    shard's ints and another's floats would not read back as one dataset
    (integers are exact up to 2**53). Booleans stay bool and strings string.
    Within one batch a column whose values have several kinds (possible only
    when ingest enforces no schema) takes the majority kind. A value that does
    not fit its column's type is written as null and counted in ``lost`` as
    ``shard_value_lost.<column>`` (with ``widen_to_string`` it is written as
    text instead, the column having become a string column).
    """

    def __init__(self, store: SchemaStore) -> None:
        self.store = store
        self.lost: Counter[str] = Counter()

    def resolve(self, model: str, seen: Mapping[str, str]) -> Mapping[str, str]:
        """The model's column types once ``seen`` is merged in (persisted first)."""
        self.store.refresh()
        return self.store.extend(model, seen)

    def conform(self, column: str, values: _Column, target: str) -> pa.Array | None:
        """``values`` as an array of type ``target`` (``None``: leave the column out)."""
        if target == "null":
            return None
        arrow_type = ARROW_TYPES[target]
        arr = values.array
        if arr is not None:
            if arr.type == arrow_type:
                return arr
            kind = _kind(arr.type)
            if kind == "null":
                return pa.nulls(len(arr), arrow_type)
            if kind == target or (kind == "double" and target in ("int32", "int64")):
                return arr.cast(arrow_type, safe=False)  # ints to float64: exact to 2**53
            return self._mixed(column, arr.to_pylist(), target)
        return self._mixed(column, values.values, target)

    def _mixed(self, column: str, values: list[Any], target: str) -> pa.Array:
        widen = target == "string" and self.store.widen_to_string
        out: list[Any] = []
        lost = 0
        for v in values:
            if v is None or _value_kind(v) == target:
                out.append(v)
            elif widen:
                out.append(str(v))
            elif target == "double" and _value_kind(v) == "double":
                out.append(float(v))
            else:
                lost += 1
                out.append(None)
        if lost:
            self.lost[f"shard_value_lost.{column}"] += lost
        return pa.array(out, ARROW_TYPES[target])


@dataclass(slots=True)
class _Column:
    """A column of one batch: an Arrow array when its values have one kind, else the
    values themselves with the majority kind."""

    array: pa.Array | None
    values: list[Any]
    kind: str


def _kind(arrow_type: pa.DataType) -> str:
    """The schema type an inferred Arrow type maps to ("null": no value yet)."""
    if pa.types.is_null(arrow_type):
        return "null"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "double"
    return "string"


def _value_kind(value: Any) -> str:
    if type(value) is bool:
        return "bool"
    if type(value) is int or type(value) is float:
        return "double"
    return "string"


def _columns(records: list[Any], widen_to_string: bool) -> list[tuple[str, _Column]]:
    """Columns of a list of flat dicts (missing keys become nulls), in the order the
    names first appear, each typed by Arrow from its values.

    A column whose values clash within the batch (a schema violation ingest
    let through) takes its majority kind, the first seen on a tie (or
    ``string`` with ``widen_to_string``); ``ColumnTypes.conform`` then nulls
    and counts the minority.
    """
    names: dict[str, None] = {}
    for r in records[:1]:
        names.update(dict.fromkeys(r))
    width = len(names)
    columns: list[list[Any]] | None = None
    if width and all(len(r) == width for r in records):
        # the usual batch: every record has the same names (one itemgetter per row)
        try:
            rows = map(itemgetter(*names), records)
            columns = ([list(c) for c in zip(*rows, strict=True)] if width > 1
                       else [list(rows)])
        except KeyError:
            columns = None
    if columns is None:
        for r in records:
            names.update(dict.fromkeys(r))
        columns = [[r.get(name) for r in records] for name in names]
    out = []
    for name, values in zip(names, columns, strict=True):
        try:
            arr = pa.array(values)
            out.append((name, _Column(arr, [], _kind(arr.type))))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            kinds = Counter(_value_kind(v) for v in values if v is not None)
            kind = "string" if widen_to_string else kinds.most_common(1)[0][0]
            out.append((name, _Column(None, values, kind)))
    return out


CORRECTIONS_DIR = "_corrections"


def encode_corrections(late: Sequence[tuple[Outcome, float]], name: str,
                       compression: str = "zstd") -> ShardFile:
    """Late outcomes (their row was already written) as correction rows.

    Written under ``_corrections/`` beside the dataset: a consumer that wants
    them re-aggregates by ``prediction_id``; the labeled rows are never rewritten.
    """
    table = pa.table({
        "prediction_id": pa.array([o.join_id for o, _ in late], pa.string()),
        "prediction_time": pa.array([round(t * 1e6) for _, t in late], pa.int64()
                                    ).cast(pa.timestamp("us", tz="UTC")),
        "outcome_type": pa.array([o.outcome_type for o, _ in late], pa.string()),
        "outcome_time": pa.array([round(o.event_time * 1e6) for o, _ in late], pa.int64()
                                 ).cast(pa.timestamp("us", tz="UTC")),
        "outcome_value": pa.array([o.value for o, _ in late], pa.float64()),
        "outcome_id": pa.array([o.outcome_id for o, _ in late], pa.string()),
        "delay_s": pa.array([o.event_time - t for o, t in late], pa.float64()),
    })
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression)
    return ShardFile(f"{CORRECTIONS_DIR}/{name}.parquet", sink.getvalue().to_pybytes(), len(late))


@dataclass(frozen=True, slots=True)
class Rotation:
    """When a shard file is full (see the module docstring)."""

    max_rows: int = 200_000
    max_bytes: int = 128 * 1024 * 1024
    max_span_s: float = 86_400.0


FIRST_ROW_BYTES = 256.0  # bytes per row assumed before the first file is written


class ShardEncoder:
    """Turns a batch of labeled examples into Parquet files: per model and partition
    directory, cut further by ``rotation``; column types from ``schema`` (a
    dataset-wide ``SchemaStore``; by default one in memory with the date layout)."""

    def __init__(self, labels: Sequence[LabelSpec], compression: str = "zstd",
                 rotation: Rotation | None = None, schema: SchemaStore | None = None) -> None:
        self.labels = tuple(labels)
        self.compression = compression
        self.rotation = rotation or Rotation()
        self.schema = schema or SchemaStore(None)
        self.types = ColumnTypes(self.schema)
        self.row_bytes = FIRST_ROW_BYTES  # running estimate of encoded bytes per row
        # pyarrow imports pandas (its pandas shim, ~0.2 s) the first time it builds an
        # array from Python objects: paid here, at start-up, not by the first shard
        pa.array([0], pa.int64())

    def encode(self, rows: Iterable[LabeledExample], name: str) -> list[ShardFile]:
        by_model: dict[str, list[LabeledExample]] = {}
        for row in rows:
            by_model.setdefault(row.prediction.model, []).append(row)
        hourly = HOUR_COLUMN in self.schema.partition_by
        files = []
        for model, group in sorted(by_model.items()):
            group.sort(key=lambda r: (r.prediction.event_time, r.prediction.join_id))
            table = self.table(model, group)
            start = 0
            for (day, hour), count in _runs(group, hourly):
                directory = f"model={quote(model, safe='')}/date={day}"
                if hourly:
                    directory += f"/hour={hour:02d}"
                run = group[start:start + count]
                offset = start
                for k, size in enumerate(self._cut(run)):
                    files.append(self._file(table.slice(offset, size), directory,
                                            f"{name}-{k:03d}" if k else name))
                    offset += size
                start += count
        return files

    def _file(self, table: pa.Table, directory: str, file_name: str) -> ShardFile:
        sink = pa.BufferOutputStream()
        # dictionary encoding pays off for strings, not for unique float features
        dictionary = [f.name for f in table.schema
                      if pa.types.is_string(f.type) or pa.types.is_boolean(f.type)]
        pq.write_table(table, sink, compression=self.compression, use_dictionary=dictionary)
        data = sink.getvalue().to_pybytes()
        self.row_bytes = 0.7 * self.row_bytes + 0.3 * len(data) / max(table.num_rows, 1)
        return ShardFile(f"{directory}/{file_name}.parquet", data, table.num_rows)

    def _cut(self, rows: list[LabeledExample]) -> list[int]:
        """Sizes of the files that rows (sorted by prediction time) are cut into."""
        limits = self.rotation
        max_rows = max(1, min(limits.max_rows, int(limits.max_bytes // max(self.row_bytes, 1))))
        sizes: list[int] = []
        size = 0
        first = 0.0
        for row in rows:
            t = row.prediction.event_time
            if size and (size >= max_rows or t - first > limits.max_span_s):
                sizes.append(size)
                size = 0
            if not size:
                first = t
            size += 1
        if size:
            sizes.append(size)
        return sizes

    def table(self, model: str, rows: Sequence[LabeledExample]) -> pa.Table:
        """The Arrow table of one model's rows, typed by the dataset schema (column
        order: ids, time, features, predictions, labels, metadata; every column the
        schema knows for the model, null where a row has no value)."""
        preds = [r.prediction for r in rows]
        event_time = pa.array([round(p.event_time * 1_000_000) for p in preds], pa.int64()
                              ).cast(pa.timestamp("us", tz="UTC"))
        fixed: dict[str, pa.Array] = {
            "prediction_id": pa.array([p.join_id for p in preds], pa.string()),
            "model_version": pa.array([p.model_version for p in preds], pa.string()),
            "event_time": event_time,
        }
        if HOUR_COLUMN not in self.schema.partition_by:
            fixed[HOUR_COLUMN] = pc.hour(event_time).cast(pa.int32())
        tail: dict[str, pa.Array] = {}
        for i, spec in enumerate(self.labels):
            tail[spec.column] = pa.array([r.labels[i] for r in rows], spec.arrow_type)
        tail["outcome_count"] = pa.array([r.outcome_count for r in rows], pa.int32())
        tail["first_outcome_delay_s"] = pa.array([r.first_outcome_delay for r in rows],
                                                 pa.float64())
        inferred: dict[str, _Column] = {}
        for prefix, attr in ((FEATURE_PREFIX, "features"), (PREDICTION_PREFIX, "prediction")):
            for name, values in _columns([getattr(p, attr) for p in preds],
                                         self.schema.widen_to_string):
                inferred[prefix + name] = values
        seen = {c: type_name(a.type) for c, a in fixed.items()}
        seen.update((c, col.kind) for c, col in inferred.items())
        seen.update((c, type_name(a.type)) for c, a in tail.items())
        types = self.types.resolve(model, seen)
        columns: dict[str, pa.Array] = {}
        for column, target in types.items():
            given = fixed.get(column) if column in fixed else tail.get(column)
            if given is not None:
                source = _Column(given, [], _kind(given.type))
            elif column in inferred:
                source = inferred[column]
            else:
                source = _Column(pa.nulls(len(rows)), [], "null")
            arr = self.types.conform(column, source, target)
            if arr is not None:
                columns[column] = arr
        return pa.table(_ordered(columns))


def _ordered(columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """Columns in the documented order, each group in the schema's order."""
    def rank(name: str) -> int:
        if name.startswith(FEATURE_PREFIX):
            return 1
        if name.startswith(PREDICTION_PREFIX):
            return 2
        if name.startswith("label_"):
            return 3
        if name in ("outcome_count", "first_outcome_delay_s"):
            return 4
        return 0
    return dict(sorted(columns.items(), key=lambda item: rank(item[0])))


def _runs(rows: Sequence[LabeledExample], hourly: bool) -> list[tuple[tuple[str, int], int]]:
    """(day, hour) and length of each run of rows (sorted by time) in one directory:
    runs of equal UTC day (or hour) number, ``floor(t / 86400)`` (``/ 3600``), as
    ``time.gmtime`` floors a time; each run named by its first row."""
    if not rows:
        return []
    times = np.fromiter((r.prediction.event_time for r in rows), dtype=np.float64,
                        count=len(rows))
    bucket = np.floor_divide(times, 3600.0 if hourly else 86400.0)
    starts = [0, *(np.flatnonzero(bucket[1:] != bucket[:-1]) + 1).tolist()]
    ends = [*starts[1:], len(rows)]
    runs: list[tuple[tuple[str, int], int]] = []
    for start, end in zip(starts, ends, strict=True):
        t = time.gmtime(float(times[start]))
        key = (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", t.tm_hour if hourly else 0)
        runs.append((key, end - start))
    return runs
