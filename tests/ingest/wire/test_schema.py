"""Schemas: given or inferred per model, type rules, coercion, skew counters."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ingest.errors import RejectedMessage
from ingest.records import Prediction
from ingest.wire.schema import (
    LATE_VOTES,
    MAX_MODELS,
    MAX_NEW_FEATURES,
    OTHER_FEATURES,
    Schema,
    SchemaEnforcer,
    parse_skew_key,
    skew_key,
)

SCHEMA = Schema(features={"n": "int", "x": "float", "c": "str", "b": "bool"},
                prediction={"score": "float"})


def pred(features: dict[str, Any], model: str = "m", score: Any = 0.5) -> Prediction:
    return Prediction("r1", 1718000000.0, model, None, features, {"score": score})


def full(**overrides: Any) -> dict[str, Any]:
    return {"n": 1, "x": 1.5, "c": "DE", "b": True, **overrides}


def check(features: dict[str, Any], schema: Schema = SCHEMA, **kw: Any
          ) -> tuple[Prediction, Counter[str]]:
    counters: Counter[str] = Counter()
    return SchemaEnforcer(default=schema).check(pred(features, **kw), counters), counters


def rejection(features: dict[str, Any], schema: Schema = SCHEMA, **kw: Any) -> str:
    with pytest.raises(RejectedMessage) as caught:
        check(features, schema, **kw)
    return caught.value.reason


def test_conforming_prediction_passes_unchanged_and_uncounted() -> None:
    p = pred(full())
    counters: Counter[str] = Counter()
    assert SchemaEnforcer(default=SCHEMA).check(p, counters) is p
    assert counters == Counter()


def test_int_where_float_is_expected_is_widened() -> None:
    out, _ = check(full(x=3))
    assert out.features["x"] == 3.0 and type(out.features["x"]) is float


def test_integral_float_where_int_is_expected_is_narrowed() -> None:
    out, _ = check(full(n=3.0))
    assert out.features["n"] == 3 and type(out.features["n"]) is int


@pytest.mark.parametrize("value", [3.5, 2.0**60, -(2.0**54)])
def test_inexact_float_where_int_is_expected_is_a_type_change(value: float) -> None:
    assert rejection(full(n=value)) == "bad_type"


@pytest.mark.parametrize(("feature", "text", "expected"), [
    ("x", "12.5", 12.5), ("x", "0", 0.0), ("x", "-1e3", -1000.0),
    ("n", "0", 0), ("n", "42", 42), ("n", "4e1", 40), ("n", "-7.0", -7),
])
def test_numeric_strings_are_parsed_in_numeric_fields_and_counted(
        feature: str, text: str, expected: float) -> None:
    out, counters = check(full(**{feature: text}))
    assert out.features[feature] == expected
    assert type(out.features[feature]) is type(expected)
    assert counters == Counter({skew_key("numeric_string", "m", feature): 1})


@pytest.mark.parametrize(("feature", "text", "expected"), [
    ("x", "abc", "bad_type"), ("x", "", "bad_type"), ("x", " 1", "bad_type"),
    ("x", "0x10", "bad_type"), ("n", "1.5", "bad_type"), ("x", "inf", "non_finite"),
    ("n", "-Infinity", "non_finite"), ("x", "1e400", "non_finite"),
    ("n", "99999999999999999999", "out_of_range"),
])
def test_other_strings_in_numeric_fields_are_rejected(feature: str, text: str,
                                                      expected: str) -> None:
    assert rejection(full(**{feature: text})) == expected


@pytest.mark.parametrize("text", ["NaN", "nan"])
def test_nan_text_in_a_numeric_field_is_null(text: str) -> None:
    out, _ = check(full(x=text, n=text))
    assert out.features["x"] is None and out.features["n"] is None


@pytest.mark.parametrize("features", [
    full(c=3), full(c=True), full(b=1), full(b="true"), full(n=True), full(x=False),
    full(n="abc"),
])
def test_type_changes_are_rejected(features: dict[str, Any]) -> None:
    assert rejection(features) == "bad_type"


def test_strings_stay_strings_in_string_fields() -> None:
    out, _ = check(full(c="0"))
    assert out.features["c"] == "0"


def test_null_is_allowed_and_kept() -> None:
    out, counters = check(full(n=None, x=None, c=None, b=None))
    assert out.features == {"n": None, "x": None, "c": None, "b": None}
    assert counters == Counter()


def test_prediction_values_are_typed_too() -> None:
    out, _ = check(full(), score=1)
    assert out.prediction == {"score": 1.0}
    assert rejection(full(), score="high") == "bad_type"


def test_new_and_missing_features_are_counted_not_rejected() -> None:
    features = {"n": 1, "x": 0.5, "extra": "y"}
    out, counters = check(features)
    assert out.features == features
    assert counters == Counter({
        skew_key("new_feature", "m", "extra"): 1,
        skew_key("missing_feature", "m", "c"): 1,
        skew_key("missing_feature", "m", "b"): 1,
    })


def test_required_features_must_be_present_and_not_null() -> None:
    schema = Schema(features={"n": "int", "c": "str"}, required=frozenset({"n"}))
    assert rejection({"c": "DE"}, schema) == "missing_required"
    assert rejection({"n": None, "c": "DE"}, schema) == "missing_required"
    out, counters = check({"n": 0}, schema)  # zero is a value; optional c only counts
    assert out.features == {"n": 0}
    assert counters == Counter({skew_key("missing_feature", "m", "c"): 1})


@pytest.mark.parametrize("kwargs", [
    {"features": {"n": "integer"}},
    {"features": {"n": "int"}, "prediction": {"score": "double"}},
    {"features": {"n": "int"}, "required": frozenset({"absent"})},
])
def test_invalid_schemas_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Schema(**kwargs)


def test_schema_is_chosen_per_model_with_a_default() -> None:
    enforcer = SchemaEnforcer({"a": Schema(features={"v": "str"})},
                              default=Schema(features={"v": "int"}), infer_from=0)
    counters: Counter[str] = Counter()
    assert enforcer.check(pred({"v": "s"}, model="a"), counters).features == {"v": "s"}
    assert enforcer.check(pred({"v": 1}, model="b"), counters).features == {"v": 1}
    with pytest.raises(RejectedMessage):
        enforcer.check(pred({"v": 1}, model="a"), counters)
    with pytest.raises(RejectedMessage):
        enforcer.check(pred({"v": "s"}, model="b"), counters)


def test_inference_then_enforcement() -> None:
    enforcer = SchemaEnforcer(infer_from=3)
    counters: Counter[str] = Counter()
    first = [{"n": 1, "x": 1, "c": "DE", "mixed": 1, "nul": None},
             {"n": 2, "x": 2.5, "c": "FR", "mixed": "a", "nul": None},
             {"n": 3, "x": 3, "c": "DE", "mixed": 2.5, "nul": None, "late": True}]
    for features in first:  # too few votes yet to outvote anything: all pass
        assert enforcer.check(pred(features), counters).features == features
        assert enforcer.schema("m") is None or features is first[-1]
    assert enforcer.schema("m") == Schema(
        features={"n": "int", "x": "float", "c": "str", "mixed": "float", "late": "bool"},
        prediction={"score": "float"})
    assert counters == Counter()
    # now enforced: int -> string is a type change; the majority decided `mixed`
    with pytest.raises(RejectedMessage) as caught:
        enforcer.check(pred({"n": "three", "x": 1.0, "c": "DE", "late": False}), counters)
    assert caught.value.reason == "bad_type"
    with pytest.raises(RejectedMessage):
        enforcer.check(pred({"n": 4, "x": 4, "c": "IT", "mixed": "b"}), counters)
    ok = enforcer.check(pred({"n": 4, "x": 4, "c": "IT", "late": False, "mixed": 3,
                              "nul": "now"}), counters)
    assert ok.features["x"] == 4.0 and ok.features["mixed"] == 3.0
    assert not [k for k in counters if "new_feature" in k]  # `mixed`, `nul` were seen


def test_a_few_wrong_types_among_the_first_predictions_are_dead_lettered() -> None:
    enforcer = SchemaEnforcer(infer_from=50)
    counters: Counter[str] = Counter()
    rejected = []
    for i in range(50):
        features = {"f0": "oops" if i in (10, 20, 30) else 0.5 * i, "c": "DE"}
        score = "high" if i == 40 else 0.25
        try:
            enforcer.check(pred(features, score=score), counters)
        except RejectedMessage as exc:
            rejected.append((i, exc.reason, exc.detail))
    assert [(i, r) for i, r, _ in rejected] == [(10, "bad_type"), (20, "bad_type"),
                                                (30, "bad_type"), (40, "bad_type")]
    assert "oops" not in rejected[0][2] and "schema inference" in rejected[0][2]
    schema = enforcer.schema("m")
    assert schema is not None
    assert schema.features["f0"] == "float" and schema.prediction["score"] == "float"
    with pytest.raises(RejectedMessage):  # still checked, for good
        enforcer.check(pred({"f0": "later", "c": "DE"}), counters)


def test_a_field_seen_only_as_null_is_typed_by_its_later_values() -> None:
    enforcer = SchemaEnforcer(infer_from=2)
    counters: Counter[str] = Counter()
    for _ in range(2):
        enforcer.check(pred({"a": 1.0, "later": None}), counters)
    schema = enforcer.schema("m")
    assert schema is not None and "later" not in schema.features
    for i in range(LATE_VOTES):
        value: object = "x" if i == 50 else float(i)
        if i == 50:
            with pytest.raises(RejectedMessage):  # outvoted while the field is inferred
                enforcer.check(pred({"a": 1.0, "later": value}), counters)
            continue
        enforcer.check(pred({"a": 1.0, "later": value}), counters)
    enforcer.check(pred({"a": 1.0, "later": 1.0}), counters)
    schema = enforcer.schema("m")
    assert schema is not None and schema.features["later"] == "float"
    with pytest.raises(RejectedMessage):
        enforcer.check(pred({"a": 1.0, "later": "y"}), counters)


def test_inference_is_per_model() -> None:
    enforcer = SchemaEnforcer(infer_from=2)
    counters: Counter[str] = Counter()
    enforcer.check(pred({"v": 1}, model="a"), counters)
    enforcer.check(pred({"v": "s"}, model="b"), counters)
    enforcer.check(pred({"v": 2}, model="a"), counters)
    assert enforcer.schema("a") == Schema(features={"v": "int"}, prediction={"score": "float"})
    assert enforcer.schema("b") is None
    assert tuple(enforcer.models()) == ("a",)
    enforcer.check(pred({"v": "t"}, model="b"), counters)  # still inferring b: passes
    with pytest.raises(RejectedMessage):
        enforcer.check(pred({"v": 3}, model="b"), counters)  # b is now str
    assert enforcer.check(pred({"v": 3}, model="a"), counters).features == {"v": 3}


def test_infer_from_zero_leaves_models_unchecked() -> None:
    enforcer = SchemaEnforcer(infer_from=0)
    counters: Counter[str] = Counter()
    for value in (1, "a", None, 2.5):
        assert enforcer.check(pred({"v": value}), counters).features == {"v": value}
    assert enforcer.schema("m") is None
    with pytest.raises(ValueError):
        SchemaEnforcer(infer_from=-1)


@pytest.mark.parametrize(("what", "model", "feature"), [
    ("new_feature", "ctr-v3", "price"),
    ("missing_feature", "ctr", "page.section"),
    ("numeric_string", "m", "a.b.c"),
])
def test_skew_keys_round_trip(what: str, model: str, feature: str) -> None:
    key = skew_key(what, model, feature)
    assert key.startswith("schema_skew.")
    assert parse_skew_key(key) == (what, model, feature)


def test_other_counters_are_not_skew_keys() -> None:
    assert parse_skew_key("prediction.decoded") is None
    assert parse_skew_key("schema_skew.oops") is None


def test_new_feature_names_are_bounded_per_model() -> None:
    enforcer = SchemaEnforcer(default=Schema(features={"n": "int"}))
    counters: Counter[str] = Counter()
    for i in range(MAX_NEW_FEATURES + 10):
        enforcer.check(pred({"n": 1, f"f{i}": 1}), counters)
    enforcer.check(pred({"n": 1, "f0": 1}), counters)  # a name already counted keeps its key
    new = {parse_skew_key(k)[2]: n for k, n in counters.items()  # type: ignore[index]
           if k.startswith("schema_skew.new_feature.")}
    assert len(new) == MAX_NEW_FEATURES + 1
    assert new[OTHER_FEATURES] == 10
    assert new["f0"] == 2


def test_inferred_models_are_bounded() -> None:
    enforcer = SchemaEnforcer(infer_from=1)
    counters: Counter[str] = Counter()
    for i in range(MAX_MODELS + 5):
        enforcer.check(pred({"v": 1}, model=f"m{i}"), counters)
    assert len(tuple(enforcer.models())) == MAX_MODELS
    late = pred({"v": "not an int"}, model=f"m{MAX_MODELS + 1}")
    assert enforcer.check(late, counters) is late
