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
    records for the oracle: duplicated predictions (a later copy 3 s later in event time:
    the first one counts), duplicated outcomes (the same bytes, or the same id with
    another type: the first one counts), outcomes early, on both edges of the window and
    outside it, some without an outcome id; disorder within the lateness."""
    rng = random.Random(seed)
    messages: list[tuple[float, int, bool, bytes]] = []
    predictions, outcomes = [], []
    for i in range(600):
        t = 1_000.0 + i * 0.5
        rid = f"r{i}"
        features = {"f00": rng.gauss(0, 1), "country": rng.choice("ab")}
        doc = {"request_id": rid, "model": "m", "features": features,
               "score": rng.random(), "time": t}
        arrival = t + rng.uniform(0, 2)
        messages.append((arrival, i % 2, True, orjson.dumps(doc)))
        predictions.append(Prediction(rid, t, "m", None, features, {"score": doc["score"]}))
        if rng.random() < 0.1:  # a later copy, later in event time too: it must not count
            later = dict(doc, time=t + 3.0)
            messages.append((arrival + 0.5, i % 2, True, orjson.dumps(later)))
            predictions.append(Prediction(rid, t + 3.0, "m", None, features,
                                          {"score": doc["score"]}))
        for k in range(rng.choice((0, 0, 1, 2))):
            u = t + rng.choice((-EARLY - 1, -EARLY, -EARLY / 2, 1.0, WINDOW - 1, WINDOW,
                                WINDOW + 1))
            kind = rng.choice(("click", "click", "purchase"))
            oid = None if rng.random() < 0.3 else f"o-{rid}-{k}"
            odoc = {"request_id": rid, "type": kind, "value": 1.0, "outcome_id": oid, "time": u}
            arrival = max(u, t) + rng.uniform(0, LATENESS - 0.5)  # within the lateness
            messages.append((arrival, i % 2, False, orjson.dumps(odoc)))
            outcomes.append(Outcome(rid, u, kind, 1.0, oid))
            if rng.random() < 0.15:  # a redelivery: the same bytes, or the id with a new type
                copy = odoc if oid is None or rng.random() < 0.5 else dict(
                    odoc, type="purchase" if kind == "click" else "click")
                messages.append((arrival + 0.1, i % 2, False, orjson.dumps(copy)))
                outcomes.append(Outcome(rid, u, copy["type"], 1.0, oid))
    messages.sort(key=lambda m: m[0])
    return [(p, is_p, v) for _, p, is_p, v in messages], predictions, outcomes


@pytest.mark.parametrize("seed", range(4))
def test_the_columnar_join_gives_the_oracles_labels(seed: int) -> None:
    messages, predictions, outcomes = _traffic(seed)
    keys = [(kind, p) for kind in (True, False) for p in (0, 1)]
    join = ColumnarJoin(keys, WINDOW, EARLY, GRACE, LATENESS)
    rng = random.Random(seed)
    # each partition in its own order, fetched in chunks of uneven sizes and at uneven
    # paces, as a consumer gets them: one partition's frontier runs far ahead of another's
    queues = {key: [v for p, is_p, v in messages if (is_p, p) == key] for key in keys}
    while any(queues.values()):
        key = rng.choice([k for k, q in queues.items() if q])
        take = rng.randint(1, rng.choice((3, 30, 120)))
        values, queues[key] = queues[key][:take], queues[key][take:]
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


def _value(rid: str, t: float, kind: str | None = None) -> bytes:
    if kind is None:
        return orjson.dumps({"request_id": rid, "model": "m", "features": {"f00": 1.0},
                             "score": 0.5, "time": t})
    return orjson.dumps({"request_id": rid, "type": kind, "outcome_id": f"o-{rid}", "time": t})


def test_an_outcome_behind_its_partition_within_the_lateness_still_counts() -> None:
    """Every partition has passed the window's end when the click comes, but by less than
    the lateness: the watermark (their minimum, minus the lateness) keeps it open."""
    keys = [(True, 0), (True, 1), (False, 0), (False, 1)]
    join = ColumnarJoin(keys, WINDOW, EARLY, GRACE, LATENESS)
    join.take((True, 0), [_value("a", 100.0)], True)
    join.take((True, 1), [_value("b", 163.0)], True)
    join.take((False, 1), [_value("c", 163.0, "click")], False)
    join.take((True, 0), [_value("d", 162.0)], True)
    join.take((False, 0), [_value("e", 161.0, "click")], False)
    join.advance()  # every partition is past 160 (a's close), by less than the lateness
    join.take((False, 0), [_value("a", 159.5, "click")], False)  # a's click, 1.5 s behind
    join.advance()
    join.finish()
    table = join.take_rows()
    assert table is not None
    rows = {r["prediction_id"]: r for r in table.to_pylist()}
    assert rows["a"]["label_clicked"] is True and rows["a"]["outcome_count"] == 1
    assert rows["d"]["label_clicked"] is False and rows["b"]["outcome_count"] == 0


def _fluent_bit(value: bytes) -> bytes:
    """``value`` as Fluent Bit writes it: the event time first, under ``@timestamp``."""
    doc = orjson.loads(value)
    return orjson.dumps({"@timestamp": doc.pop("time"), **doc})


def test_fluent_bit_values_label_as_fluentd_ones_with_the_time_key_named() -> None:
    messages, _, _ = _traffic(0)
    keys = [(kind, p) for kind in (True, False) for p in (0, 1)]
    tables = []
    for join, convert in ((ColumnarJoin(keys, WINDOW, EARLY, GRACE, LATENESS), None),
                          (ColumnarJoin(keys, WINDOW, EARLY, GRACE, LATENESS, "@timestamp"),
                           _fluent_bit)):
        for start in range(0, len(messages), 50):
            for p, is_p, value in messages[start:start + 50]:
                join.take((is_p, p), [convert(value) if convert else value], is_p)
            join.advance()
        join.finish()
        table = join.take_rows()
        assert table is not None
        tables.append(table.to_pandas().set_index("prediction_id").sort_index())
    fluentd, fluent_bit = tables
    assert len(fluentd) == 600
    assert (fluent_bit["label_clicked"] == fluentd["label_clicked"]).all()
    assert (fluent_bit["outcome_count"] == fluentd["outcome_count"]).all()
    assert (fluent_bit["event_time"] == fluentd["event_time"]).all()
