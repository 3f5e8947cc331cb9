"""The whole dataset reads as one table in pandas, pyarrow, DuckDB, Polars and Spark.

The dataset is written by the real encoder and commit protocol (no broker
needed): its schema evolves (a feature null in a whole shard gets a value
later, a new feature appears, an int arrives in a double column), a worker
restarts with nothing in memory, a second worker writes beside it, and
loglabel's own state (``_checkpoints``, ``_staging`` with a torn commit's
file, ``_schema``, ``_corrections``) sits in the root. Each reader runs the
README's own line ("5. Read the table") and must return every row with the
documented columns and types.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.records import Outcome, Prediction
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.checkpoint import CheckpointStore, shard_name
from labeler.output.dataset_schema import SchemaStore, reader_schema
from labeler.output.epoch_log import STAGING_DIR
from labeler.output.shards import ShardEncoder, encode_corrections
from labeler.output.storage import Storage

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
DAY = 86_400.0
T0 = 1718000000.0  # 2024-06-10 06:13:20 UTC
STREAM = "predictions+outcomes"
LABELS = (LabelSpec("clicked"),)


def _snippet(info: str, marker: str) -> str:
    start = README.index("\n### 5. Read the table\n")
    text = README[start:README.index("\n## ", start)]
    blocks = [body for i, body in re.findall(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M)
              if i.strip() == info and marker in body]
    assert len(blocks) == 1, f"one {info!r} block with {marker!r} in the README"
    return blocks[0]


def row(join_id: str, t: float, features: dict[str, Any], model: str = "ctr") -> LabeledExample:
    return LabeledExample(Prediction(join_id, t, model, "v1", features, {"score": 0.5}),
                          (join_id.endswith("1"),), 1, 2.0)


def commit(store: CheckpointStore, encoder: ShardEncoder, partition: int, epoch: int,
           first_offset: int, rows: list[LabeledExample], late: bool = False) -> None:
    name = shard_name(store.stream, partition, first_offset, epoch, store.owner)
    files = encoder.encode(rows, name)
    if late:
        late = [(Outcome(rows[0].prediction.join_id, T0 + 99, "click", None, "o1"), T0)]
        files.append(encode_corrections(late, name))
    store.commit(partition, epoch, {"predictions": first_offset + len(rows)}, {}, files)


def encoder(storage: Storage) -> ShardEncoder:
    return ShardEncoder(LABELS, schema=SchemaStore(storage))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readers") / "loglabel-output"
    storage = Storage(str(root))
    first = CheckpointStore(storage, STREAM)
    writer = encoder(storage)
    # day 1: `tag` is null in every row of the shard; `n` holds ints
    commit(first, writer, 0, 1, 0, [row(f"a{i}", T0 + 60 * i, {"x": 0.5 * i, "tag": None,
                                                               "n": i}) for i in range(4)])
    # a restart: a new process, nothing in memory
    restarted, writer = CheckpointStore(storage, STREAM), encoder(storage)
    claimed = restarted.recover(0).epoch
    # day 2: `tag` gets a value, `fresh` is new, `n` gets floats
    commit(restarted, writer, 0, claimed + 1, 4, [row(f"b{i}", T0 + DAY + 60 * i,
                                                      {"x": 1.0, "tag": "blue", "fresh": True,
                                                       "n": 2.5}) for i in range(3)],
           late=True)
    # a second worker on another partition, beside the first
    commit(CheckpointStore(storage, STREAM), encoder(storage), 1, 1, 0,
           [row(f"c{i}", T0 + 2 * DAY + 3600 * i, {"x": 2.0, "late_feature": "z"})
            for i in range(2)])
    # a torn commit's staged file, of another shape, must be invisible
    pq.write_table(pa.table({"junk": ["x"]}), str(root / STAGING_DIR / "junk.parquet"))
    for state in ("_checkpoints", "_staging", "_schema", "_corrections"):
        assert (root / state).is_dir(), state
    return root


ROWS = 9
EXPECTED_COLUMNS = {"prediction_id", "model_version", "event_time", "hour", "feat_x", "feat_tag",
                    "feat_n", "feat_fresh", "feat_late_feature", "pred_score", "label_clicked",
                    "outcome_count", "first_outcome_delay_s", "model", "date"}


def read_all(dataset: Path) -> dict[str, pd.DataFrame]:
    scope: dict[str, Any] = {}
    here = Path.cwd()
    os.chdir(dataset.parent)
    try:
        exec(_snippet("python", "reader_schema"), scope)  # noqa: S102 - the README's lines
        return {"pandas": scope["df"], "pyarrow": scope["table"].to_pandas(),
                "duckdb": scope["rel"].df(), "polars": scope["frame"].to_pandas()}
    finally:
        os.chdir(here)


def check(reader: str, frame: pd.DataFrame) -> None:
    assert set(frame.columns) == EXPECTED_COLUMNS, reader
    assert len(frame) == ROWS, reader
    by_id = {r["prediction_id"]: r for r in frame.to_dict("records")}
    assert _text(by_id["a0"]["feat_tag"]) is None and by_id["b0"]["feat_tag"] == "blue", reader
    assert by_id["b2"]["feat_fresh"] is True or by_id["b2"]["feat_fresh"] == 1, reader
    assert _text(by_id["a0"]["feat_fresh"]) is None, reader
    assert by_id["c1"]["feat_late_feature"] == "z", reader
    assert [by_id["a3"]["feat_n"], by_id["b0"]["feat_n"]] == [3.0, 2.5], reader
    assert {str(m) for m in frame["model"]} == {"ctr"}, reader
    dates = {_date(d) for d in frame["date"]}
    assert dates == {dt.date(2024, 6, 10), dt.date(2024, 6, 11), dt.date(2024, 6, 12)}, reader
    assert {int(by_id[k]["hour"]) for k in ("a0", "c0", "c1")} == {6, 7}, reader
    assert all(isinstance(h, int) or hasattr(h, "dtype") for h in frame["hour"]), reader
    assert pd.api.types.is_integer_dtype(frame["hour"]), reader
    assert pd.api.types.is_float_dtype(frame["feat_x"]), reader


def _text(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) or (
        value is pd.NA) else value


def _date(value: Any) -> dt.date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    assert isinstance(value, dt.date), f"date is a {type(value).__name__}"
    return value


def test_every_reader_returns_one_table_with_the_documented_types(dataset: Path) -> None:
    for reader, frame in read_all(dataset).items():
        check(reader, frame)


def test_the_reader_schema_names_the_partition_keys_typed(dataset: Path) -> None:
    schema = reader_schema(str(dataset))
    assert schema.field("date").type == pa.date32()
    assert schema.field("model").type == pa.string()
    assert schema.field("hour").type == pa.int32()
    assert schema.field("feat_n").type == pa.float64()
    assert set(schema.names) == EXPECTED_COLUMNS


def test_plain_pandas_read_skips_loglabel_state(dataset: Path) -> None:
    frame = pd.read_parquet(dataset)  # no schema: the first file's columns, still one table
    assert len(frame) == ROWS and "junk" not in frame.columns


def _spark() -> Any:
    pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (.[spark])")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime for Spark (install OpenJDK 17)")
    try:
        return (pyspark.sql.SparkSession.builder.master("local[1]").appName("loglabel-readers")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    except Exception as exc:  # noqa: BLE001 - any start failure is a skip with its reason
        pytest.skip(f"Spark cannot start here: {exc}")


@pytest.mark.slow
def test_spark_reads_the_same_table(dataset: Path) -> None:
    spark = _spark()
    try:
        scope: dict[str, Any] = {"spark": spark}
        # the JVM resolves relative paths against its own start directory
        snippet = _snippet("python spark", "mergeSchema").replace('"loglabel-output"',
                                                                  repr(str(dataset)))
        exec(snippet, scope)  # noqa: S102 - the README's line
        frame = scope["spark_df"]
        types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        assert types["date"] == "date" and types["hour"] == "int" and types["model"] == "string"
        assert types["feat_x"] == "double" and types["feat_tag"] == "string"
        rows = {r["prediction_id"]: r.asDict() for r in frame.collect()}
        check("spark", pd.DataFrame(list(rows.values())))
    finally:
        spark.stop()
