"""Shard encoding: layout, schema, types that stay stable across shards."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.records import Prediction
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.dataset_schema import SchemaStore
from labeler.output.shards import PARTITIONINGS, Rotation, ShardEncoder


def example(join_id: str, t: float, features: dict, model: str = "m") -> LabeledExample:
    return LabeledExample(Prediction(join_id, t, model, "v1", features, {"score": 0.25}),
                          (True, 3), 3, 1.5)


def read(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def test_one_file_per_model_and_date_with_the_documented_columns() -> None:
    enc = ShardEncoder((LabelSpec("clicked"), LabelSpec("n", agg="count")))
    files = enc.encode([
        example("a", 1718000000.0, {"price": 1.0, "country": "DE"}),  # 2024-06-10 06:13 UTC
        example("b", 1718000000.0 + 3600, {"price": 2.0}),
        example("d", 1718000000.0 + 86400, {"price": 4.0}),
        example("c", 1718000000.0, {"price": 3.0}, model="other/model"),
    ], "part-0001-000000000042-00000001")
    paths = [f.path for f in files]
    assert paths == [
        "model=m/date=2024-06-10/part-0001-000000000042-00000001.parquet",
        "model=m/date=2024-06-11/part-0001-000000000042-00000001.parquet",
        "model=other%2Fmodel/date=2024-06-10/part-0001-000000000042-00000001.parquet",
    ]
    table = read(files[0].data)
    assert table.column_names == ["prediction_id", "model_version", "event_time", "hour",
                                  "feat_price", "feat_country", "pred_score", "label_clicked",
                                  "label_n", "outcome_count", "first_outcome_delay_s"]
    assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("hour").type == pa.int32()
    assert table.column("hour").to_pylist() == [6, 7]
    assert table.column("label_n").to_pylist() == [3, 3]


def test_hour_layout_keeps_one_directory_per_hour() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),),
                       schema=SchemaStore(None, partition_by=PARTITIONINGS["hour"]))
    files = enc.encode([example("a", 1718000000.0, {"price": 1.0}),
                        example("b", 1718000000.0 + 3600, {"price": 2.0})], "s")
    assert [f.path for f in files] == ["model=m/date=2024-06-10/hour=06/s.parquet",
                                       "model=m/date=2024-06-10/hour=07/s.parquet"]
    assert "hour" not in read(files[0].data).column_names


def test_missing_feature_is_null_not_zero() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),))
    (f,) = enc.encode([example("a", 0.0, {"x": 0.0}), example("b", 1.0, {"y": "q"})], "s")
    table = read(f.data)
    assert table.column("feat_x").to_pylist() == [0.0, None]
    assert table.column("feat_y").to_pylist() == [None, "q"]


def test_numeric_columns_are_float64_in_every_shard_and_read_back_as_one(tmp_path) -> None:
    enc = ShardEncoder((LabelSpec("clicked"),))
    shards = [enc.encode([example("a", 0.0, {"n": 3})], "s1")[0],
              enc.encode([example("b", 0.0, {"n": 2.5})], "s2")[0],
              enc.encode([example("c", 0.0, {"n": 2**53 + 2})], "s3")[0]]
    for shard in shards:
        assert read(shard.data).schema.field("feat_n").type == pa.float64()
        path = tmp_path / shard.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(shard.data)
    import pandas as pd

    frame = pd.read_parquet(tmp_path).sort_values("prediction_id")
    assert frame.feat_n.tolist() == [3.0, 2.5, float(2**53 + 2)]


def test_a_value_of_another_kind_is_null_and_counted_never_a_new_type() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),))
    enc.encode([example("a", 0.0, {"flag": True, "name": "x", "n": 1.5})], "s1")
    (f,) = enc.encode([example("b", 0.0, {"flag": "maybe", "name": 7, "n": "many"})], "s2")
    table = read(f.data)
    assert table.schema.field("feat_name").type == pa.string()
    assert table.schema.field("feat_flag").type == pa.bool_()
    assert table.column("feat_name").to_pylist() == [None]
    assert table.column("feat_flag").to_pylist() == [None]
    assert table.column("feat_n").to_pylist() == [None]
    assert enc.types.lost == {"shard_value_lost.feat_flag": 1, "shard_value_lost.feat_n": 1,
                              "shard_value_lost.feat_name": 1}


def test_with_widen_to_string_a_clash_makes_the_column_string() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),), schema=SchemaStore(None, widen_to_string=True))
    enc.encode([example("a", 0.0, {"n": 1.5})], "s1")
    (f,) = enc.encode([example("b", 0.0, {"n": "many"}), example("c", 1.0, {"n": 2.0})], "s2")
    assert read(f.data).column("feat_n").to_pylist() == ["many", "2.0"]
    assert enc.schema.current.columns("m")["feat_n"] == "string"
    assert not enc.types.lost


def test_a_clash_within_one_batch_takes_the_majority_kind() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),))
    rows = [example(f"r{i}", float(i), {"f0": 0.5 * i}) for i in range(5)]
    rows.append(example("bad", 9.0, {"f0": "oops"}))
    (f,) = enc.encode(rows, "s")
    table = read(f.data)
    assert table.schema.field("feat_f0").type == pa.float64()
    assert table.column("feat_f0").to_pylist() == [0.0, 0.5, 1.0, 1.5, 2.0, None]
    assert enc.types.lost == {"shard_value_lost.feat_f0": 1}


def test_zstd_compression() -> None:
    (f,) = ShardEncoder((LabelSpec("clicked"),)).encode([example("a", 0.0, {"x": 1.0})], "s")
    assert pq.ParquetFile(io.BytesIO(f.data)).metadata.row_group(0).column(0).compression == "ZSTD"


def test_rotation_by_rows_cuts_in_prediction_time_order() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),), rotation=Rotation(max_rows=4))
    rows = [example(f"r{i}", 1718000000.0 + (9 - i), {"x": float(i)}) for i in range(10)]
    files = enc.encode(rows, "part-x")
    assert [f.path.rsplit("/", 1)[1] for f in files] == [
        "part-x.parquet", "part-x-001.parquet", "part-x-002.parquet"]
    assert [f.rows for f in files] == [4, 4, 2]
    ids = [read(f.data).column("prediction_id").to_pylist() for f in files]
    assert ids == [["r9", "r8", "r7", "r6"], ["r5", "r4", "r3", "r2"], ["r1", "r0"]]


def test_rotation_by_event_time_span() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),), rotation=Rotation(max_span_s=60.0))
    base = 1718000000.0  # 06:13:20, so everything stays within hour 06
    rows = [example(f"r{i}", base + 25.0 * i, {"x": 1.0}) for i in range(8)]  # 175 s
    files = enc.encode(rows, "p")
    spans = []
    for f in files:
        times = read(f.data).column("event_time").to_pylist()
        spans.append((times[-1] - times[0]).total_seconds())
    assert [f.rows for f in files] == [3, 3, 2] and max(spans) <= 60.0


def test_rotation_by_bytes_uses_what_earlier_files_weighed() -> None:
    enc = ShardEncoder((LabelSpec("clicked"),))
    rows = [example(f"r{i:05d}", 1718000000.0 + i * 0.01, {"x": float(i), "s": f"v{i}"})
            for i in range(2000)]
    (first,) = enc.encode(rows, "a")  # no limit hit: one file, and the bytes per row learnt
    per_row = len(first.data) / first.rows
    small = ShardEncoder((LabelSpec("clicked"),),
                         rotation=Rotation(max_bytes=int(per_row * 500)))
    small.row_bytes = enc.row_bytes
    files = small.encode(rows, "b")
    assert len(files) >= 3
    assert sum(f.rows for f in files) == 2000
    assert all(len(f.data) <= per_row * 500 * 1.5 for f in files)
