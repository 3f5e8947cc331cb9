"""Parquet shards: labeled examples to hive-partitioned, zstd-compressed files.

Layout under the output root::

    model=<model>/date=<YYYY-MM-DD>/hour=<HH>/part-<stream>-<partition>-<offset>-<epoch>.parquet

(``model``, ``date`` and ``hour`` are partition keys, in the path only). The
date and hour are the prediction's event time in UTC. Names are deterministic:
a tag of the input stream, the input partition, the first input offset the
shard covers and the checkpoint epoch, so a replay writes the same name again
instead of a duplicate. Columns are described in the README ("Output schema").

**Rotation.** One epoch's rows of one hour become several files when they
would pass ``Rotation``'s limits: ``max_rows`` rows, ``max_span_s`` seconds
between the first and last prediction time in a file, or ``max_bytes`` (an
estimate from the bytes per row of the files written so far). Rows are
sorted by prediction time (then id) and cut in that order; the second file
of an epoch is named ``...-<epoch>-001``, and so on.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.records import Outcome
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample

FEATURE_PREFIX = "feat_"
PREDICTION_PREFIX = "pred_"


@dataclass(frozen=True, slots=True)
class ShardFile:
    """One Parquet file, encoded and ready to be staged."""

    path: str  # relative final path in the dataset
    data: bytes
    rows: int


class ColumnTypes:
    """Keeps each model's column types stable from one shard to the next.

    Every numeric feature or prediction column is float64, ints included: one
    shard's ints and another's floats would not read back as one dataset
    (integers are exact up to 2**53). Booleans stay bool and strings string.
    A column's kind is fixed the first time it has a value, and a column that
    has only nulls so far is float64. A later value of another kind (possible
    only when ingest enforces no schema) is converted where Arrow can (a
    string column takes any value as text) and is otherwise written as null
    and counted in ``lost`` as ``shard_value_lost.<column>``.
    """

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], pa.DataType] = {}
        self.lost: Counter[str] = Counter()

    def cast(self, model: str, column: str, arr: pa.Array) -> pa.Array:
        """Bring an inferred column to the model's stable type."""
        kind = _stable(arr.type)
        key = (model, column)
        known = self._types.get(key)
        if known is None and kind is not None:
            known = self._types[key] = kind
        target = known or pa.float64()
        if arr.type == target:
            return arr
        if kind is None or kind == target:
            return arr.cast(target, safe=False)  # nulls; ints to float64 (exact to 2**53)
        if pa.types.is_string(target):
            return pa.array([None if v is None else str(v) for v in arr.to_pylist()], target)
        out: list[Any] = []
        for v in arr.to_pylist():
            try:
                out.append(None if v is None else pa.scalar(v).cast(target).as_py())
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                self.lost[f"shard_value_lost.{column}"] += 1
                out.append(None)
        return pa.array(out, target)


def _stable(arrow_type: pa.DataType) -> pa.DataType | None:
    """The column kind an inferred Arrow type maps to (None: no value yet)."""
    if pa.types.is_null(arrow_type):
        return None
    if pa.types.is_boolean(arrow_type):
        return pa.bool_()
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return pa.float64()
    return pa.string()


def _columns(records: list[Any]) -> list[tuple[str, pa.Array]]:
    """Columns of a list of flat dicts (missing keys become nulls), built by Arrow in C++.

    Values whose types clash within the batch (a schema violation ingest let
    through) fall back to strings rather than being lost.
    """
    try:
        struct = pa.array(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names: dict[str, None] = {}
        for r in records:
            names.update(dict.fromkeys(r))
        out = []
        for name in names:
            values = [r.get(name) for r in records]
            try:
                out.append((name, pa.array(values)))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                out.append((name, pa.array([None if v is None else str(v) for v in values],
                                           pa.string())))
        return out
    if not pa.types.is_struct(struct.type):
        return []  # every record empty
    return [(struct.type.field(i).name, struct.field(i)) for i in range(struct.type.num_fields)]


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
    max_span_s: float = 3600.0


FIRST_ROW_BYTES = 256.0  # bytes per row assumed before the first file is written


class ShardEncoder:
    """Turns a batch of labeled examples into Parquet files: per (model, date, hour),
    cut further by ``rotation``."""

    def __init__(self, labels: Sequence[LabelSpec], compression: str = "zstd",
                 rotation: Rotation | None = None) -> None:
        self.labels = tuple(labels)
        self.compression = compression
        self.rotation = rotation or Rotation()
        self.types = ColumnTypes()
        self.row_bytes = FIRST_ROW_BYTES  # running estimate of encoded bytes per row

    def encode(self, rows: Iterable[LabeledExample], name: str) -> list[ShardFile]:
        groups: dict[tuple[str, str, str], list[LabeledExample]] = defaultdict(list)
        for row in rows:
            t = time.gmtime(row.prediction.event_time)
            day = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
            groups[(row.prediction.model, day, f"{t.tm_hour:02d}")].append(row)
        files = []
        for (model, day, hour), group in sorted(groups.items()):
            group.sort(key=lambda r: (r.prediction.event_time, r.prediction.join_id))
            for k, chunk in enumerate(self._cut(group)):
                table = self.table(model, chunk)
                sink = pa.BufferOutputStream()
                # dictionary encoding pays off for strings, not for unique float features
                dictionary = [f.name for f in table.schema
                              if pa.types.is_string(f.type) or pa.types.is_boolean(f.type)]
                pq.write_table(table, sink, compression=self.compression,
                               use_dictionary=dictionary)
                data = sink.getvalue().to_pybytes()
                self.row_bytes = 0.7 * self.row_bytes + 0.3 * len(data) / len(chunk)
                file_name = f"{name}-{k:03d}" if k else name
                path = f"model={quote(model, safe='')}/date={day}/hour={hour}/{file_name}.parquet"
                files.append(ShardFile(path, data, len(chunk)))
        return files

    def _cut(self, rows: list[LabeledExample]) -> list[list[LabeledExample]]:
        """Rows (sorted by prediction time) cut into files within the rotation limits."""
        limits = self.rotation
        max_rows = max(1, min(limits.max_rows, int(limits.max_bytes // max(self.row_bytes, 1))))
        chunks: list[list[LabeledExample]] = []
        chunk: list[LabeledExample] = []
        first = 0.0
        for row in rows:
            t = row.prediction.event_time
            if chunk and (len(chunk) >= max_rows or t - first > limits.max_span_s):
                chunks.append(chunk)
                chunk = []
            if not chunk:
                first = t
            chunk.append(row)
        if chunk:
            chunks.append(chunk)
        return chunks

    def table(self, model: str, rows: Sequence[LabeledExample]) -> pa.Table:
        """The Arrow table of one model's rows (column order: ids, features, predictions,
        labels, metadata)."""
        preds = [r.prediction for r in rows]
        columns: dict[str, pa.Array] = {
            "prediction_id": pa.array([p.join_id for p in preds], pa.string()),
            "model_version": pa.array([p.model_version for p in preds], pa.string()),
            "event_time": pa.array(
                [round(p.event_time * 1_000_000) for p in preds], pa.int64()
            ).cast(pa.timestamp("us", tz="UTC")),
        }
        for prefix, attr in ((FEATURE_PREFIX, "features"), (PREDICTION_PREFIX, "prediction")):
            for name, values in _columns([getattr(p, attr) for p in preds]):
                columns[prefix + name] = self.types.cast(model, prefix + name, values)
        for i, spec in enumerate(self.labels):
            columns[spec.column] = pa.array([r.labels[i] for r in rows], spec.arrow_type)
        columns["outcome_count"] = pa.array([r.outcome_count for r in rows], pa.int32())
        columns["first_outcome_delay_s"] = pa.array(
            [r.first_outcome_delay for r in rows], pa.float64()
        )
        return pa.table(columns)
