"""The dataset schema: each model's column types, persisted in the dataset and shared.

Every worker that writes a dataset reads and extends one schema, stored as
versioned JSON files under ``_schema/`` in the output root (``_``-prefixed,
so pyarrow, pandas, DuckDB, Polars and Spark skip it). Version *n* is
``_schema/v<n:08d>.json``; the highest is in force. A change is a new
version created with ``Storage.put_if_absent``: of two workers widening at
once exactly one creates version *n+1*; the other reloads it, merges its own
change into it and tries *n+2*. So every worker converges on one schema, a
restarted or new worker starts from it, and a column's type never changes
behind a shard already written.

**Widening rule** (``merge_type``), the only way a column's type changes:

- ``null`` (only nulls so far) -> any type;
- numbers are ``double`` from the start (ints included, exact to 2**53), so
  int -> double never has to happen;
- anything -> ``string`` only with ``output.widen_to_string = true``;
- otherwise the column keeps its type: a value that does not fit it is
  written as null and counted (``shard_value_lost.<column>``), never a new type.

The schema also records the partition keys (``model``, ``date`` and, with
``output.partition_by = "hour"``, ``hour``): the first writer's choice is kept
for the dataset's life, as files of two layouts would not read as one table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from labeler.errors import LoglabelError
from labeler.output.storage import Storage

SCHEMA_DIR = "_schema"
FORMAT = 1
MAX_RACES = 64  # put_if_absent rounds lost in a row before giving up (a livelock guard)

ARROW_TYPES: Mapping[str, pa.DataType] = {
    "null": pa.null(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
}
"""Type names used in the schema files and by ``loglabel schema``, and their Arrow types."""
_NAMES = {t: name for name, t in ARROW_TYPES.items()}

PARTITION_TYPES: Mapping[str, str] = {"model": "string", "date": "date", "hour": "int32"}
"""The documented type of each partition key, as every reader is told to read it."""


class SchemaError(LoglabelError):
    """The dataset schema cannot be read or extended."""


def type_name(arrow_type: pa.DataType) -> str:
    try:
        return _NAMES[arrow_type]
    except KeyError:
        raise SchemaError(f"no schema name for Arrow type {arrow_type}") from None


def merge_type(known: str | None, seen: str, widen_to_string: bool) -> str:
    """The column type after a value of type ``seen`` meets a column of type ``known``.

    >>> merge_type(None, "double", False), merge_type("null", "bool", False)
    ('double', 'bool')
    >>> merge_type("double", "string", False), merge_type("double", "string", True)
    ('double', 'string')
    >>> merge_type("string", "null", False)
    'string'
    """
    if known is None or known == "null":
        return seen
    if seen == "null" or seen == known:
        return known
    if widen_to_string:
        return "string"
    return known


@dataclass(frozen=True)
class DatasetSchema:
    """One version of a dataset's schema: partition keys and each model's columns."""

    version: int = 0
    partition_by: tuple[str, ...] = ()
    models: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def columns(self, model: str) -> Mapping[str, str]:
        return self.models.get(model, {})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "partition_by": [{"name": k, "type": PARTITION_TYPES[k]} for k in self.partition_by],
            "models": {m: [{"name": c, "type": t} for c, t in cols.items()]
                       for m, cols in sorted(self.models.items())},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DatasetSchema:
        if doc.get("format") != FORMAT:
            raise SchemaError(f"dataset schema format {doc.get('format')!r} is not {FORMAT}")
        return cls(
            version=int(doc["version"]),
            partition_by=tuple(p["name"] for p in doc["partition_by"]),
            models={m: {c["name"]: c["type"] for c in cols} for m, cols in doc["models"].items()},
        )

    def arrow_schema(self, model: str | None = None) -> pa.Schema:
        """The Arrow schema a reader should use: the columns of ``model`` (default: of
        every model, which must then agree on each shared column's type) followed by
        the partition keys. Columns with only nulls so far are left out, as no file
        holds them. Raises ``SchemaError`` when two models disagree on a column."""
        merged: dict[str, str] = {}
        for name in [model] if model is not None else sorted(self.models):
            for column, kind in self.columns(name).items():
                if kind == "null":
                    continue
                other = merged.setdefault(column, kind)
                if other != kind:
                    raise SchemaError(f"column {column!r} is {other} in one model and {kind} "
                                      f"in another: read one model at a time")
        fields = [pa.field(c, ARROW_TYPES[t]) for c, t in merged.items()]
        fields += [pa.field(k, ARROW_TYPES[PARTITION_TYPES[k]]) for k in self.partition_by]
        return pa.schema(fields)


class SchemaStore:
    """The dataset schema of one output root, as versioned files (see the module docstring).

    Without a ``storage`` the schema lives in memory only (unit tests, one-off encodes).
    """

    def __init__(self, storage: Storage | None, partition_by: tuple[str, ...] = ("model", "date"),
                 widen_to_string: bool = False) -> None:
        self.storage = storage
        self.widen_to_string = widen_to_string
        self.current = DatasetSchema(partition_by=partition_by)
        self.refresh()

    @property
    def partition_by(self) -> tuple[str, ...]:
        return self.current.partition_by

    def refresh(self) -> DatasetSchema:
        """Load the newest persisted version if it is newer than the one held."""
        if self.storage is None:
            return self.current
        latest = _latest(self.storage)
        if latest > self.current.version:
            self.current = load(self.storage, latest)
        return self.current

    def extend(self, model: str, seen: Mapping[str, str]) -> Mapping[str, str]:
        """Apply the widening rule to ``seen`` (column -> type of the values about to be
        written) and persist the result before returning the model's column types.

        Returns at once when nothing changes. Raises ``SchemaError`` after
        ``MAX_RACES`` lost races in a row (other writers changing it without pause).
        """
        for _ in range(MAX_RACES):
            current = self.current
            columns = dict(current.columns(model))
            for column, kind in seen.items():
                columns[column] = merge_type(columns.get(column), kind, self.widen_to_string)
            if model in current.models and columns == current.columns(model):
                return columns
            proposed = DatasetSchema(current.version + 1, current.partition_by,
                                     {**current.models, model: columns})
            if self.storage is None:
                self.current = proposed
                return columns
            data = json.dumps(proposed.to_json(), indent=1).encode()
            if self.storage.put_if_absent(_path(proposed.version), data):
                self.current = proposed
                return columns
            self.refresh()  # lost the race: merge into the winner's version
        raise SchemaError(f"the dataset schema kept changing under {MAX_RACES} attempts")


def _path(version: int) -> str:
    return f"{SCHEMA_DIR}/v{version:08d}.json"


def _latest(storage: Storage) -> int:
    versions = [int(n[1:9]) for n in storage.list(SCHEMA_DIR)
                if n.startswith("v") and n.endswith(".json") and n[1:9].isdigit()]
    return max(versions, default=0)


def load(storage: Storage, version: int | None = None) -> DatasetSchema:
    """The persisted schema (the newest, or ``version``); an empty one if none was written."""
    version = _latest(storage) if version is None else version
    if version == 0:
        return DatasetSchema()
    raw = storage.read(_path(version))
    if raw is None:
        raise SchemaError(f"dataset schema version {version} is missing")
    try:
        return DatasetSchema.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"dataset schema {_path(version)} is corrupt: {exc}") from exc


def reader_schema(root: str, model: str | None = None) -> pa.Schema:
    """The Arrow schema to read the dataset at ``root`` with (see ``DatasetSchema.
    arrow_schema``): give it to pandas, pyarrow or Polars so that a column added after
    the first file, and the typed partition keys, read the same in every reader."""
    return load(Storage(root)).arrow_schema(model)
