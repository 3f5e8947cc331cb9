"""The dataset schema: persisted, shared by writers, the same after a restart."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.records import Prediction
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.dataset_schema import (
    SCHEMA_DIR,
    DatasetSchema,
    SchemaError,
    SchemaStore,
    load,
    merge_type,
)
from labeler.output.shards import ShardEncoder, ShardFile
from labeler.output.storage import Storage

T0 = 1718000000.0  # 2024-06-10 06:13 UTC


def example(join_id: str, t: float, features: dict, model: str = "m") -> LabeledExample:
    return LabeledExample(Prediction(join_id, t, model, "v1", features, {"score": 0.25}),
                          (True,), 1, 1.5)


def encoder(storage: Storage, **options: bool) -> ShardEncoder:
    return ShardEncoder((LabelSpec("clicked"),), schema=SchemaStore(storage, **options))


def publish(storage: Storage, files: list[ShardFile]) -> None:
    for f in files:
        storage.write(f.path, f.data)


def test_a_column_null_in_a_whole_shard_then_a_string_reads_as_one_table(
        tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    enc = encoder(storage)
    publish(storage, enc.encode([example("a", T0, {"x": 1.0, "tag": None})], "s1"))
    publish(storage, enc.encode([example("b", T0 + 1, {"x": 2.0, "tag": "blue"})], "s2"))
    frame = pd.read_parquet(tmp_path, schema=load(storage).arrow_schema())
    assert frame.sort_values("prediction_id").feat_tag.fillna("-").tolist() == ["-", "blue"]
    assert load(storage).columns("m")["feat_tag"] == "string"


def test_the_schema_is_persisted_before_the_files_are_returned(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    encoder(storage).encode([example("a", T0, {"x": 1, "ok": True})], "s1")
    (name,) = storage.list(SCHEMA_DIR)
    doc = json.loads(storage.read(f"{SCHEMA_DIR}/{name}") or b"")
    columns = {c["name"]: c["type"] for c in doc["models"]["m"]}
    assert columns["feat_x"] == "double" and columns["feat_ok"] == "bool"
    assert columns["hour"] == "int32" and columns["label_clicked"] == "bool"
    assert [p["name"] for p in doc["partition_by"]] == ["model", "date"]


def test_a_restarted_encoder_applies_the_same_types(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    encoder(storage).encode([example("a", T0, {"x": 1.5, "name": "q"})], "s1")
    fresh = encoder(storage)  # a restart: nothing in memory
    (f,) = fresh.encode([example("b", T0, {"x": "text", "name": 7})], "s2")
    written = pq.read_table(io.BytesIO(f.data))
    assert written.schema.field("feat_x").type == pa.float64()
    assert written.schema.field("feat_name").type == pa.string()
    assert written.column("feat_x").to_pylist() == [None]
    assert fresh.types.lost == {"shard_value_lost.feat_x": 1, "shard_value_lost.feat_name": 1}


def test_two_encoders_sharing_a_storage_converge(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    one, two = encoder(storage), encoder(storage)
    one.encode([example("a", T0, {"x": 1.0})], "s1")  # both know version 1 ...
    two.encode([example("b", T0, {"x": 2.0})], "s2")
    one.encode([example("c", T0, {"y": "red"})], "s3")  # ... then each adds a column:
    two.encode([example("d", T0, {"y": 3.0, "z": True})], "s4")  # y lost the race
    schema = load(storage)
    assert schema.columns("m")["feat_y"] == "string"
    assert schema.columns("m")["feat_z"] == "bool"
    assert one.schema.refresh().models == two.schema.current.models == schema.models
    assert two.types.lost == {"shard_value_lost.feat_y": 1}


def test_losing_the_put_if_absent_race_reloads_and_merges(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    slow = SchemaStore(storage)
    fast = SchemaStore(storage)
    fast.extend("m", {"feat_a": "double"})  # version 1, not yet seen by `slow`
    columns = slow.extend("m", {"feat_a": "string", "feat_b": "bool"})
    assert columns == {"feat_a": "double", "feat_b": "bool"}
    assert load(storage).version == 2


def test_widening_rule() -> None:
    assert merge_type(None, "string", False) == "string"
    assert merge_type("null", "double", False) == "double"
    assert merge_type("bool", "double", False) == "bool"
    assert merge_type("bool", "double", True) == "string"
    assert merge_type("double", "double", True) == "double"


def test_the_partition_layout_of_an_existing_dataset_wins(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    SchemaStore(storage, partition_by=("model", "date", "hour")).extend("m", {"feat_a": "bool"})
    assert SchemaStore(storage).partition_by == ("model", "date", "hour")


def test_a_corrupt_schema_file_is_a_clear_error(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    storage.write(f"{SCHEMA_DIR}/v00000001.json", b"{not json")
    with pytest.raises(SchemaError, match="corrupt"):
        load(storage)


def test_models_that_disagree_cannot_share_one_reader_schema() -> None:
    schema = DatasetSchema(1, ("model", "date"), {"a": {"feat_x": "double"},
                                                  "b": {"feat_x": "string"}})
    with pytest.raises(SchemaError, match="one model at a time"):
        schema.arrow_schema()
    assert schema.arrow_schema("b").field("feat_x").type == pa.string()


def test_loglabel_schema_prints_columns_types_and_partition_keys(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labeler.ops.cli import cli

    storage = Storage(str(tmp_path))
    encoder(storage).encode([example("a", T0, {"price": 2, "tag": None})], "s1")
    result = CliRunner().invoke(cli, ["schema", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "partition keys (in the path): model (string), date (date)" in result.output
    assert "feat_price             double" in result.output
    assert "feat_tag               null  (only nulls so far" in result.output
    result = CliRunner().invoke(cli, ["schema", str(tmp_path), "--json"])
    assert DatasetSchema.from_json(json.loads(result.output)) == load(storage)
    empty = CliRunner().invoke(cli, ["schema", str(tmp_path / "nothing")])
    assert empty.exit_code == 1 and "has no dataset schema" in empty.output


def test_profile_sees_a_feature_added_after_the_first_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labeler.ops.cli import cli

    storage = Storage(str(tmp_path / "data"))
    enc = encoder(storage)
    publish(storage, enc.encode([example("a", T0, {"x": 1.0})], "s1"))
    publish(storage, enc.encode([example("b", T0 + 1, {"x": 2.0, "later": 3.0})], "s2"))
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(cli, ["profile", str(tmp_path / "data"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert set(json.loads(out.read_text())["features"]) == {"x", "later"}
