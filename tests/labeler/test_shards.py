"""Shard encoding: layout, schema, types that stay stable across shards."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.records import Prediction
from labeler.labels import LabelSpec
from labeler.records import LabeledExample
from labeler.shards import ShardEncoder


def example(join_id: str, t: float, features: dict, model: str = "m") -> LabeledExample:
    return LabeledExample(Prediction(join_id, t, model, "v1", features, {"score": 0.25}),
                          (True, 3), 3, 1.5)


def read(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def test_one_file_per_model_date_hour_with_the_documented_columns() -> None:
    enc = ShardEncoder((LabelSpec("clicked"), LabelSpec("n", agg="count")))
    files = enc.encode([
        example("a", 1718000000.0, {"price": 1.0, "country": "DE"}),  # 2024-06-10 06:13 UTC
        example("b", 1718000000.0 + 3600, {"price": 2.0}),
        example("c", 1718000000.0, {"price": 3.0}, model="other/model"),
    ], "part-0001-000000000042-00000001")
    paths = [f.path for f in files]
    assert paths == [
        "model=m/date=2024-06-10/hour=06/part-0001-000000000042-00000001.parquet",
        "model=m/date=2024-06-10/hour=07/part-0001-000000000042-00000001.parquet",
        "model=other%2Fmodel/date=2024-06-10/hour=06/part-0001-000000000042-00000001.parquet",
    ]
    table = read(files[0].data)
    assert table.column_names == ["prediction_id", "model_version", "event_time", "feat_price",
                                  "feat_country", "pred_score", "label_clicked", "label_n",
                                  "outcome_count", "first_outcome_delay_s"]
    assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert table.column("label_n").to_pylist() == [3]


def test_missing_feature_is_null_not_zero() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),))
    (f,) = enc.encode([example("a", 0.0, {"x": 0.0}), example("b", 1.0, {"y": "q"})], "s")
    table = read(f.data)
    assert table.column("feat_x").to_pylist() == [0.0, None]
    assert table.column("feat_y").to_pylist() == [None, "q"]


def test_an_int_column_that_meets_a_float_widens_and_keeps_values() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),))
    (first,) = enc.encode([example("a", 0.0, {"n": 3})], "s1")
    (second,) = enc.encode([example("b", 0.0, {"n": 2.5})], "s2")
    assert read(first.data).schema.field("feat_n").type == pa.int64()
    assert read(second.data).column("feat_n").to_pylist() == [2.5]


def test_zstd_compression() -> None:
    (f,) = ShardEncoder((LabelSpec("clicked"),)).encode([example("a", 0.0, {"x": 1.0})], "s")
    assert pq.ParquetFile(io.BytesIO(f.data)).metadata.row_group(0).column(0).compression == "ZSTD"
