"""Field mapping: ids, times, missing/null/zero, dotted paths, scalar and NaN/inf rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ingest.errors import RejectedMessage
from ingest.records import Outcome, Prediction
from ingest.wire.envelope import Envelope
from ingest.wire.mapping import (
    JOIN_ID_SEPARATOR,
    FieldMap,
    checked,
    is_missing,
    lookup,
    to_outcome,
    to_prediction,
)

T = 1718000000.5


def env(record: dict[str, Any], time: float | None = None, time_key: str | None = None
        ) -> Envelope:
    return Envelope(record, time, "json", time_key)


def prediction(record: dict[str, Any], fields: FieldMap | None = None, **kw: Any) -> Prediction:
    base = {"request_id": "r1", "time": T, "score": 0.5}
    return to_prediction(env({**base, **record}, **kw), fields or FieldMap())


def outcome(record: dict[str, Any], fields: FieldMap | None = None) -> Outcome:
    return to_outcome(env({"request_id": "r1", "time": T, **record}), fields or FieldMap())


def reason(fn: Any, *args: Any) -> str:
    with pytest.raises(RejectedMessage) as caught:
        fn(*args)
    return caught.value.reason


def test_missing_null_and_zero_stay_distinct() -> None:
    p = prediction({"features": {"zero": 0, "fzero": 0.0, "null": None, "empty": "",
                                 "false": False, "text_zero": "0"}})
    assert "absent" not in p.features
    assert p.features["null"] is None
    assert p.features["zero"] == 0 and type(p.features["zero"]) is int
    assert p.features["fzero"] == 0.0 and type(p.features["fzero"]) is float
    assert p.features["false"] is False
    assert p.features["empty"] == ""
    assert p.features["text_zero"] == "0"  # a string is never silently a number


def test_missing_and_null_features_object_give_no_features() -> None:
    assert prediction({}).features == {}
    assert prediction({"features": None}).features == {}


def test_dotted_path_features_are_named_by_their_last_part() -> None:
    fields = FieldMap(features=("ctx.user.age", "ctx.geo.country", "price", "ctx.absent"))
    p = prediction({"ctx": {"user": {"age": 41}, "geo": {"country": None}}, "price": 0},
                   fields)
    assert p.features == {"age": 41, "country": None, "price": 0}


def test_a_key_with_dots_is_matched_before_the_nested_path() -> None:
    record = {"a.b": "flat", "a": {"b": "nested"}}
    assert lookup(record, "a.b") == "flat"
    assert lookup({"a": {"b": "nested"}}, "a.b") == "nested"
    assert is_missing(lookup({"a": 1}, "a.b"))
    assert is_missing(lookup({"a": {"c": 1}}, "a.b"))
    assert lookup({"a": {"b": None}}, "a.b") is None


def test_prediction_paths_may_be_dotted_and_several() -> None:
    fields = FieldMap(prediction=("out.score", "out.label"))
    p = prediction({"out": {"score": 0.9, "label": "spam"}}, fields)
    assert p.prediction == {"score": 0.9, "label": "spam"}


@pytest.mark.parametrize(("paths", "record", "parts"), [
    (("request_id", "item_id"), {"request_id": "r1", "item_id": "sku-9"}, ["r1", "sku-9"]),
    (("request_id", "position"), {"request_id": "r1", "position": 0}, ["r1", "0"]),
    (("request_id", "position"), {"request_id": "r1", "position": 7}, ["r1", "7"]),
    (("ctx.request", "ctx.slot"), {"ctx": {"request": 12, "slot": "top"}}, ["12", "top"]),
])
def test_composite_join_ids(paths: tuple[str, ...], record: dict[str, Any], parts: list[str]
                            ) -> None:
    fields = FieldMap(join_id=paths)
    p = to_prediction(env({**record, "time": T, "score": 1.0}), fields)
    assert p.join_id == JOIN_ID_SEPARATOR.join(parts)
    o = to_outcome(env({**record, "time": T}), fields)
    assert o.join_id == p.join_id  # an outcome reaches its prediction through the same id


def test_composite_ids_differ_per_item_of_one_request() -> None:
    fields = FieldMap(join_id=("request_id", "position"))
    ids = {to_outcome(env({"request_id": "r1", "position": i, "time": T}), fields).join_id
           for i in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(("record", "expected"), [
    ({}, "missing_id"),
    ({"request_id": None}, "missing_id"),
    ({"request_id": ""}, "missing_id"),
    ({"request_id": 1.5}, "bad_id"),
    ({"request_id": True}, "bad_id"),
    ({"request_id": {"id": 1}}, "bad_id"),
    ({"request_id": ["r1"]}, "bad_id"),
    ({"request_id": "r\x1f1"}, "bad_id"),
])
def test_bad_join_ids(record: dict[str, Any], expected: str) -> None:
    fields = FieldMap()
    assert reason(to_outcome, env({"time": T, **record}), fields) == expected
    assert reason(to_prediction, env({"time": T, "score": 1, **record}), fields) == expected


def test_second_part_of_a_composite_id_is_checked_too() -> None:
    fields = FieldMap(join_id=("request_id", "position"))
    assert reason(to_outcome, env({"request_id": "r1", "time": T}), fields) == "missing_id"


def test_int_join_id_is_its_decimal_text() -> None:
    assert outcome({"request_id": 18446744073709551615}).join_id == "18446744073709551615"


def test_record_time_wins_over_envelope_time_and_null_falls_back() -> None:
    fields = FieldMap()
    own = to_outcome(env({"request_id": "r1", "time": "2024-06-10T06:13:20Z"}, time=T), fields)
    assert own.event_time == 1718000000.0
    fallback = to_outcome(env({"request_id": "r1", "time": None}, time=T), fields)
    assert fallback.event_time == T
    envelope_only = to_outcome(env({"request_id": "r1"}, time=T),
                               FieldMap(event_time=None))
    assert envelope_only.event_time == T


def test_time_already_parsed_by_the_envelope_is_reused() -> None:
    # the envelope read "time" itself: the record value is not parsed again
    o = to_outcome(env({"request_id": "r1", "time": "unparsed"}, time=T, time_key="time"),
                   FieldMap())
    assert o.event_time == T


def test_missing_and_bad_times() -> None:
    assert reason(to_outcome, env({"request_id": "r1"}), FieldMap()) == "missing_time"
    assert reason(to_outcome, env({"request_id": "r1", "time": "soon"}), FieldMap()) == "bad_time"


@pytest.mark.parametrize(("features", "expected"), [
    ({"x": {"nested": 1}}, "bad_type"),
    ({"x": [1, 2]}, "bad_type"),
    ({"x": math.inf}, "non_finite"),
    ({"x": -math.inf}, "non_finite"),
    ({"x": 2**63}, "out_of_range"),
    ({"x": -(2**63) - 1}, "out_of_range"),
])
def test_feature_values_must_be_finite_scalars(features: dict[str, Any], expected: str) -> None:
    assert reason(prediction, {"features": features}) == expected


def test_features_must_be_an_object() -> None:
    assert reason(prediction, {"features": [1, 2]}) == "bad_type"
    assert reason(prediction, {"features": "price=1"}) == "bad_type"


def test_int64_bounds_are_values() -> None:
    p = prediction({"features": {"hi": 2**63 - 1, "lo": -(2**63)}})
    assert p.features == {"hi": 2**63 - 1, "lo": -(2**63)}


def test_nan_is_null_and_the_input_is_left_alone() -> None:
    features = {"a": math.nan, "b": 1.5}
    p = prediction({"features": features, "score": math.nan})
    assert p.features == {"a": None, "b": 1.5}
    assert p.prediction == {"score": None}
    assert math.isnan(features["a"])  # a NaN forces a copy, never an edit in place


def test_checked_returns_the_same_dict_when_nothing_changes() -> None:
    values = {"a": 1, "b": 2.5, "c": "x", "d": None, "e": True}
    assert checked(values) is values


def test_missing_prediction() -> None:
    record = {"request_id": "r1", "time": T}
    assert reason(to_prediction, env(record), FieldMap()) == "missing_prediction"
    # null is present: it is a prediction with no value, not a missing one
    assert to_prediction(env({**record, "score": None}), FieldMap()).prediction == {"score": None}


def test_model_defaults_and_types() -> None:
    assert prediction({}).model == "default"
    assert prediction({"model": None}).model == "default"
    assert prediction({"model": "ctr", "model_version": 3}).model_version == "3"
    assert prediction({"model_version": None}).model_version is None
    assert reason(prediction, {"model": {"name": "ctr"}}) == "bad_type"
    assert reason(prediction, {"model_version": ["3"]}) == "bad_type"


def test_outcome_fields() -> None:
    o = outcome({"type": "purchase", "value": 5, "outcome_id": 77})
    assert (o.outcome_type, o.value, o.outcome_id) == ("purchase", 5.0, "77")
    assert type(o.value) is float
    bare = outcome({})
    assert (bare.outcome_type, bare.value, bare.outcome_id) == ("outcome", None, None)
    assert outcome({"value": 0}).value == 0.0
    assert outcome({"value": math.nan}).value is None


@pytest.mark.parametrize(("record", "expected"), [
    ({"value": "5"}, "bad_type"),
    ({"value": True}, "bad_type"),
    ({"value": {"amount": 5}}, "bad_type"),
    ({"value": math.inf}, "non_finite"),
    ({"type": ["click"]}, "bad_type"),
    ({"outcome_id": 1.5}, "bad_id"),
    ({"outcome_id": {"id": 1}}, "bad_id"),
])
def test_bad_outcomes(record: dict[str, Any], expected: str) -> None:
    assert reason(outcome, record) == expected


@pytest.mark.parametrize("kwargs", [
    {"join_id": ()},
    {"join_id": ("request_id", "")},
    {"prediction": ()},
    {"features": ("a.price", "b.price")},
])
def test_field_maps_that_cannot_work_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FieldMap(**kwargs)


def test_a_nested_object_and_top_level_fields_mix_with_dot_star() -> None:
    from ingest.wire.mapping import features_of

    record = {"features": {"price": 2.0, "item_id": "nested"}, "item_id": 7, "other": 1}
    assert features_of(record, ("features.*", "item_id")) == {"price": 2.0, "item_id": 7}
    assert features_of({"item_id": 7}, ("features.*", "item_id")) == {"item_id": 7}
    with pytest.raises(RejectedMessage) as caught:
        features_of({"features": [1]}, ("features.*",))
    assert caught.value.reason == "bad_type"


def test_an_object_at_a_listed_feature_path_names_the_fix() -> None:
    from ingest.wire.mapping import features_of

    with pytest.raises(RejectedMessage) as caught:
        features_of({"ctx": {"a": 1}}, ("ctx", "item_id"))
    assert caught.value.reason == "bad_type" and "'ctx.*'" in caught.value.detail


@pytest.mark.parametrize(("features", "message"), [
    (("features", "item_id"), "'features' names an object"),
    (("ctx", "ctx.a"), "'ctx' names an object (it holds ctx.a)"),
    (("a.*.b",), "'*' is allowed only as a last '.*'"),
    ("features.*", "'*' is allowed only"),
    (("a..b",), "not a dotted path"),
])
def test_a_mapping_that_cannot_produce_a_valid_record_is_refused(features: object,
                                                                 message: str) -> None:
    with pytest.raises(ValueError, match="fields.features") as caught:
        FieldMap(features=features)  # type: ignore[arg-type]
    assert message in str(caught.value)
