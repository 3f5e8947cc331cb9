"""The shard encoder's column building against the plain rules it implements: directory
runs as ``time.gmtime`` of each row names them, and columns as Arrow types a list of
dicts (struct inference), for uniform batches, ragged ones and clashing types."""

from __future__ import annotations

import random
import time
from typing import Any

import pyarrow as pa
import pytest

from ingest.records import Prediction
from labeler.join.records import LabeledExample
from labeler.output.shards import _columns, _runs


def _gmtime_runs(rows: list[LabeledExample], hourly: bool) -> list[tuple[tuple[str, int], int]]:
    runs: list[tuple[tuple[str, int], int]] = []
    for row in rows:
        t = time.gmtime(row.prediction.event_time)
        key = (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", t.tm_hour if hourly else 0)
        if runs and runs[-1][0] == key:
            runs[-1] = (key, runs[-1][1] + 1)
        else:
            runs.append((key, 1))
    return runs


@pytest.mark.parametrize("seed", range(20))
def test_runs_are_the_gmtime_runs(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(30):
        base = rng.choice([0.0, 1.7e9, -3 * 86400.0, 946684800.0])
        times = sorted(base + rng.choice([0, 3600, 86400]) * rng.randint(-3, 3)
                       + rng.choice([0.0, -1e-6, 1e-6, rng.uniform(-7200, 7200)])
                       for _ in range(rng.randint(1, 40)))
        rows = [LabeledExample(Prediction("a", t, "m", None, {}, {}), (), 0, None)
                for t in times]
        for hourly in (True, False):
            assert _runs(rows, hourly) == _gmtime_runs(rows, hourly)
    assert _runs([], True) == []


def _struct_columns(records: list[dict[str, Any]]) -> dict[str, pa.DataType] | None:
    """What Arrow infers for the batch as a struct; None when it refuses the batch."""
    try:
        struct = pa.array(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if not pa.types.is_struct(struct.type):
        return {}
    return {f.name: f.type for f in struct.type}


@pytest.mark.parametrize("seed", range(30))
def test_columns_type_a_batch_as_arrow_does(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"f{i}" for i in range(rng.randint(1, 6))]
    kinds = {n: rng.choice(["float", "int", "str", "bool", "mixed", "null"]) for n in names}

    def value(kind: str) -> Any:
        if rng.random() < 0.1 or kind == "null":
            return None
        if kind == "mixed":
            kind = rng.choice(["float", "int", "str"])
        return {"float": rng.random(), "int": rng.randint(-5, 5), "str": rng.choice("ab"),
                "bool": rng.random() < 0.5}[kind]

    ragged = rng.random() < 0.4
    records = [{n: value(kinds[n]) for n in names if not (ragged and rng.random() < 0.2)}
               for _ in range(rng.randint(1, 50))]
    got = _columns(records, widen_to_string=False)
    expected = _struct_columns(records)
    seen: dict[str, None] = {}
    for r in records:
        seen.update(dict.fromkeys(r))
    assert [name for name, _ in got] == list(seen)
    for name, column in got:
        values = [r.get(name) for r in records]
        if column.array is None:  # a clash: the values kept for conform, Arrow refuses them
            assert column.values == values
            with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
                pa.array(values)
        else:
            assert column.array.to_pylist() == values
            if expected is not None:
                assert column.array.type == expected[name]
