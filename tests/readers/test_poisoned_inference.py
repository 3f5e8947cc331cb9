"""A few wrongly typed values among a model's first predictions cannot poison the dataset.

Raw messages go through the real decoder with an inferred schema; the
minority is dead-lettered, the field stays checked, and the labeled rows read
back as one table with a double column.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pandas as pd

from ingest.records import DeadLetter, Prediction
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap
from ingest.wire.schema import SchemaEnforcer
from labeler.join.labels import LabelSpec
from labeler.join.records import LabeledExample
from labeler.output.dataset_schema import SchemaStore, reader_schema
from labeler.output.shards import ShardEncoder
from labeler.output.storage import Storage

T0 = 1718000000.0
N = 200
WRONG = {7, 50, 120}  # positions, among the first N, of a string in numeric fields


def message(i: int, f0: object, score: object) -> bytes:
    return orjson.dumps({"request_id": f"r{i}", "time": T0 + i, "model": "ctr",
                         "features": {"f0": f0, "country": "DE"}, "score": score})


def test_the_minority_is_dead_lettered_and_the_dataset_reads(tmp_path: Path) -> None:
    counters: Counter[str] = Counter()
    decoder = Decoder("prediction", FieldMap(), counters=counters,
                      schema=SchemaEnforcer(infer_from=N))
    records, dead = [], []
    for i in range(N + 100):
        wrong = i in WRONG or i == N + 50
        out = decoder.decode(message(i, "n/a" if wrong else 0.1 * i,
                                     "high" if wrong else 0.5))
        (dead if isinstance(out, DeadLetter) else records).append(out)
    assert [d.reason for d in dead] == ["bad_type"] * 4
    assert all("schema inference" in d.detail or "schema says" in d.detail for d in dead)
    assert counters["prediction.dead_letter.bad_type"] == 4
    schema = decoder.schema.schema("ctr") if decoder.schema else None
    assert schema is not None and schema.features["f0"] == "float"
    assert schema.prediction["score"] == "float"
    storage = Storage(str(tmp_path))
    encoder = ShardEncoder((LabelSpec("clicked"),), schema=SchemaStore(storage))
    rows = [LabeledExample(r, (False,), 0, None) for r in records if isinstance(r, Prediction)]
    for start in range(0, len(rows), 64):  # several epochs, each its own files
        for f in encoder.encode(rows[start:start + 64], f"part-{start:05d}"):
            storage.write(f.path, f.data)
    frame = pd.read_parquet(tmp_path, schema=reader_schema(str(tmp_path)))
    assert len(frame) == N + 100 - 4
    assert pd.api.types.is_float_dtype(frame["feat_f0"])
    assert pd.api.types.is_float_dtype(frame["pred_score"])
    assert not encoder.types.lost
