"""The bench's columnar yardstick labels as the oracle does (no broker: its poll batches
are made here)."""

from __future__ import annotations

import random

import orjson
import pytest

from ingest.records import Outcome, Prediction
from labeler.join.labels import LabelSpec
from labeler.tools.bench_columnar import ColumnarJoin
from labeler.tools.oracle import oracle_labels

WINDOW, EARLY, GRACE, LATENESS = 60.0, 5.0, 0.0, 5.0


def _traffic(seed: int) -> tuple[list[tuple[int, bool, bytes]], list[Prediction], list[Outcome]]:
    """Messages (partition, is prediction, value) in arrival order, and the same events as
    records for the oracle: duplicated predictions and outcomes, outcomes early, late
    and outside the window, some without an outcome id; disorder within the lateness."""
    rng = random.Random(seed)
    messages: list[tuple[float, int, bool, bytes]] = []
    predictions, outcomes = [], []
    for i in range(600):
        t = 1_000.0 + i * 0.5
        rid = f"r{i}"
        features = {"f00": rng.gauss(0, 1), "country": rng.choice("ab")}
        doc = {"request_id": rid, "model": "m", "features": features,
               "score": rng.random(), "time": t}
        copies = 2 if rng.random() < 0.05 else 1
        for _ in range(copies):
            messages.append((t + rng.uniform(0, 2), i % 2, True, orjson.dumps(doc)))
        predictions.append(Prediction(rid, t, "m", None, features, {"score": doc["score"]}))
        for k in range(rng.choice((0, 0, 1, 2))):
            u = t + rng.choice((-EARLY - 1, -EARLY / 2, 1.0, WINDOW - 1, WINDOW + 1))
            kind = rng.choice(("click", "click", "purchase"))
            oid = None if rng.random() < 0.3 else f"o-{rid}-{k}"
            odoc = {"request_id": rid, "type": kind, "value": 1.0, "outcome_id": oid, "time": u}
            arrival = max(u, t) + rng.uniform(0, 2)
            for _ in range(2 if rng.random() < 0.1 else 1):
                messages.append((arrival, i % 2, False, orjson.dumps(odoc)))
            outcomes.append(Outcome(rid, u, kind, 1.0, oid))
    messages.sort(key=lambda m: m[0])
    return [(p, is_p, v) for _, p, is_p, v in messages], predictions, outcomes


@pytest.mark.parametrize("seed", range(4))
def test_the_columnar_join_gives_the_oracles_labels(seed: int) -> None:
    messages, predictions, outcomes = _traffic(seed)
    keys = [(kind, p) for kind in (True, False) for p in (0, 1)]
    join = ColumnarJoin(keys, WINDOW, EARLY, GRACE, LATENESS)
    rng = random.Random(seed)
    start = 0
    while start < len(messages):  # poll batches of uneven sizes
        batch = messages[start:start + rng.randint(1, 80)]
        start += len(batch)
        for key in keys:
            values = [v for p, is_p, v in batch if (is_p, p) == key]
            if values:
                join.take(key, values, key[0])
        join.advance()
    join.finish()
    table = join.take_rows()
    assert table is not None
    got = table.to_pandas().set_index("prediction_id")
    truth = oracle_labels(predictions, outcomes, WINDOW, EARLY,
                          (LabelSpec("clicked"),)).set_index("prediction_id")
    assert got.index.is_unique
    assert sorted(got.index) == sorted(truth.index)
    got = got.loc[truth.index]
    assert (got["label_clicked"] == truth["label_clicked"]).all()
    assert (got["outcome_count"] == truth["outcome_count"]).all()
    assert truth["outcome_count"].sum() > 0 and truth["label_clicked"].any()
