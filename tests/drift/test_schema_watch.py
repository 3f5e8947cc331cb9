"""The schema watch dates feature changes by the record that showed them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from drift.schema_watch import SAMPLE, SchemaWatch
from drift.settings import DriftSettings
from ingest.records import Prediction, SourceRef
from ingest.wire.schema import Schema, SchemaEnforcer
from labeler.runtime.drift_hub import DriftHub

Found = list[tuple[str, float, str, str, Any]]


def pred(i: int, **feats: Any) -> Prediction:
    return Prediction(f"r{i}", 1000.0 + i, "m", None, feats, {})


def watch(enforcer: SchemaEnforcer) -> tuple[SchemaWatch, Found]:
    found: Found = []
    w = SchemaWatch(enforcer, lambda m, t, k, f, d, s: found.append((m, t, k, f, s)))
    return w, found


def test_a_feature_that_goes_then_one_that_comes_are_dated_by_their_records() -> None:
    w, found = watch(SchemaEnforcer({"m": Schema({"a": "float", "b": "str"})}))
    for i in range(10):
        w.check(pred(i, a=1.0, b="x"), SourceRef("t", 0, i))
    for i in range(10, 20):
        w.check(pred(i, a=1.0), SourceRef("t", 0, i))  # b gone from 10 on: one finding
    w.check(pred(20, a=1.0, c=2), SourceRef("t", 0, 20))
    assert found == [("m", 1010.0, "missing_feature", "b", SourceRef("t", 0, 10)),
                     ("m", 1020.0, "new_feature", "c", SourceRef("t", 0, 20))]
    assert w.width == {"m": 2}


def test_the_schema_is_inferred_first_and_nothing_is_reported_meanwhile() -> None:
    w, found = watch(SchemaEnforcer(infer_from=5))
    for i in range(5):
        w.check(pred(i, a=1.0, b=2.0), SourceRef("t", 0, i))
    assert found == [] and w.width == {}
    w.check(pred(5, a=1.0), SourceRef("t", 0, 5))
    assert [f[2:4] for f in found] == [("missing_feature", "b")]


def test_a_rename_that_keeps_the_count_is_caught_on_a_sampled_offset() -> None:
    hub = DriftHub(DriftSettings(), "unused", Counter(), None,
                   SchemaEnforcer({"m": Schema({"a": "float", "b": "float"})}))
    for i in range(40):
        feats = {"a": 1.0, "b": 2.0} if i < 21 else {"a": 1.0, "z": 2.0}
        hub.observe_prediction(pred(i, **feats), SourceRef("t", 3, i))
    schema = sorted((e.stream, e.feature, e.source) for e in hub.events if e.kind == "schema")
    at = f"t[3]@{2 * SAMPLE}"  # the first sampled offset after 21
    assert schema == [("missing_feature", "b", at), ("new_feature", "z", at)]


def test_counted_skew_the_watch_finds_is_not_reported_twice() -> None:
    hub = DriftHub(DriftSettings(), "unused", Counter(), None,
                   SchemaEnforcer({"m": Schema({"a": "float"})}))
    hub.observe_prediction(pred(0, a=1.0), SourceRef("t", 0, 1))
    counters = Counter({"schema_skew.missing_feature.m.a": 3,
                        "schema_skew.numeric_string.m.a": 2})
    hub.check_schema(counters)
    assert [(e.stream, e.feature) for e in hub.events] == [("type_mismatch", "a")]
    plain = DriftHub(DriftSettings(), "unused", Counter(), None)  # no watch: counters only
    plain.check_schema(counters)
    assert sorted(e.stream for e in plain.events) == ["missing_feature", "type_mismatch"]


def test_a_record_the_watchs_own_inference_rejects_is_no_finding_and_no_error() -> None:
    # ingest judged these records with what it had seen; the watch's enforcer infers from
    # the records it is shown and may disagree, which is neither a finding nor a failure
    hub = DriftHub(DriftSettings(), "unused", Counter(), None, SchemaEnforcer(infer_from=6))
    for i in range(12):
        hub.observe_prediction(pred(i, a="x" if i < 4 else 1.5), SourceRef("t", 0, i))
    assert hub.counters["drift.internal_error"] == 0
    assert [e for e in hub.events if e.kind == "schema"] == []
