"""Property tests: whatever the bytes, the decoder returns a record or a dead letter.

It never raises, never reports an internal error, and every call moves exactly
one of the ``<kind>.decoded`` / ``<kind>.dead_letter.*`` counters by one.
Examples are bounded (sizes, counts) so the module runs in a few seconds.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.records import DeadLetter, Outcome, Prediction, SourceRef
from ingest.wire.decode import DEAD_LETTER_REASONS, Decoder
from ingest.wire.mapping import FieldMap
from ingest.wire.schema import Schema, SchemaEnforcer

BOUNDED = settings(max_examples=150, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow])
SOURCE = SourceRef("t", 0, 0)
NAN_LIKE = ["NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "1e400", "0", "-0", "",
            "null", "true", "1_000", "0x1F", "\x00", "\ud7ff", "2024-06-10T06:13:20Z"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(),  # unbounded: beyond 64 bits too
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(NAN_LIKE),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=6) | st.sampled_from(["request_id", "time", "features", "@timestamp"]),
        inner, max_size=4),
    max_leaves=20,
)
# Mostly plausible values, so that many examples get past the id and time checks.
words = st.text(st.characters(codec="utf-8", exclude_characters="\x1f"), min_size=1, max_size=8)
ids = st.one_of(words, words, st.integers(0, 2**64), scalars)
times = (st.floats(0, 2e9) | st.integers(0, 2**62) | st.floats(1e9, 2e9)
         | st.sampled_from(["2024-06-10T06:13:20.123Z", "2024-06-10 15:13:20 +0900",
                            "1718000000.5", "2024-06-10T06:13:20"]) | scalars)
numbers = st.floats(-1e6, 1e6) | st.integers(-(2**70), 2**70) | scalars
features = st.dictionaries(st.sampled_from("abcdefgh") | st.text(max_size=6), numbers,
                           max_size=8)
near_records = st.fixed_dictionaries({"request_id": ids, "time": times, "score": numbers},
                                     optional={
    "model": st.sampled_from(["m1", "m2"]) | scalars,
    "model_version": scalars, "type": st.sampled_from(["click", "buy"]) | ids,
    "value": numbers, "outcome_id": ids, "features": features | json_values,
    "event": json_values, "message": json_values, "host": json_values,
})
envelopes = st.sampled_from(["json", "fluent-bit", "logstash", "logstash-original"])


def decoders() -> list[Decoder]:
    counters: Counter[str] = Counter()
    inferred = SchemaEnforcer(infer_from=3)
    given_schema = SchemaEnforcer(default=Schema(
        features={"a": "int", "b": "float", "c": "str", "d": "bool"},
        required=frozenset({"a"})))
    return [
        Decoder("prediction", FieldMap(), counters=counters),
        Decoder("outcome", FieldMap(), counters=counters),
        Decoder("prediction", FieldMap(), "logstash", counters, schema=inferred),
        Decoder("prediction", FieldMap(join_id=("request_id", "type"),
                                       features=("features.a", "features.b", "host")),
                "fluent-bit", counters, schema=given_schema),
        Decoder("outcome", FieldMap(event_time=None), "json", counters),
    ]


DECODERS = decoders()


def assert_sound(decoder: Decoder, raw: bytes | None) -> None:
    before = Counter(decoder.counters)
    result = decoder.decode(raw, SOURCE)
    moved = {key: n - before[key] for key, n in decoder.counters.items()
             if n != before[key] and key.startswith(f"{decoder.kind}.")}
    assert list(moved.values()) == [1], moved
    (key,) = moved
    if isinstance(result, DeadLetter):
        assert result.reason != "internal_error", result.detail
        assert result.reason in DEAD_LETTER_REASONS
        assert key == f"{decoder.kind}.dead_letter.{result.reason}"
        assert result.raw == (raw or b"")
        return
    assert key == f"{decoder.kind}.decoded"
    assert isinstance(result, Prediction if decoder.kind == "prediction" else Outcome)
    assert result.join_id and math.isfinite(result.event_time) and result.event_time >= 0
    if isinstance(result, Prediction):
        for value in (*result.features.values(), *result.prediction.values()):
            assert value is None or type(value) in (str, bool, int, float)
            assert type(value) is not float or math.isfinite(value)
            assert type(value) is not int or -(2**63) <= value < 2**63
    else:
        assert result.value is None or math.isfinite(result.value)


def wrap(record: dict[str, Any], envelope: str) -> dict[str, Any]:
    if envelope == "fluent-bit":
        return {"@timestamp": record.pop("time", 1718000000.5), **record}
    if envelope == "logstash":
        return {**record, "@timestamp": "2024-06-10T06:13:20.123Z", "@version": "1"}
    if envelope == "logstash-original":
        return {"@version": "1", "event": {"original": json.dumps(record)}}
    return record


@BOUNDED
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    for decoder in DECODERS:
        assert_sound(decoder, raw)


@BOUNDED
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    raw = json.dumps(value).encode()  # NaN/Infinity literals included, as Python writes them
    for decoder in DECODERS:
        assert_sound(decoder, raw)


@settings(BOUNDED, max_examples=300)
@given(near_records, envelopes)
@example({"request_id": "r1", "time": 1.0, "score": 2**63, "features": {"a": 2**64 - 1}}, "json")
@example({"request_id": 0, "time": "1718000000.5", "score": math.nan,
          "features": {"a": math.nan, "b": -math.inf}}, "fluent-bit")
@example({"request_id": "r1", "time": 1e10, "score": 1, "features": {"a": "1e400"}},
         "logstash-original")
def test_records_that_almost_fit(record: dict[str, Any], envelope: str) -> None:
    raw = json.dumps(wrap(record, envelope)).encode()
    for decoder in DECODERS:
        assert_sound(decoder, raw)


@BOUNDED
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_json_with_garbage_around_it(prefix: bytes, suffix: bytes) -> None:
    raw = prefix + b'{"request_id":"r1","time":1718000000,"score":0.5,"f":NaN}' + suffix
    for decoder in DECODERS:
        assert_sound(decoder, raw)


@pytest.mark.parametrize("depth", [10, 254, 256, 1023, 1024, 1025, 5000, 50000])
@pytest.mark.parametrize("leaf", [b"1", b"NaN", b'"x"'])
def test_deep_nesting(depth: int, leaf: bytes) -> None:
    arrays = b"[" * depth + leaf + b"]" * depth
    objects = b'{"a":' * depth + leaf + b"}" * depth
    in_features = (b'{"request_id":"r1","time":1,"score":1,"features":{"x":'
                   + arrays + b"}}")
    for raw in (arrays, objects, in_features):
        for decoder in DECODERS:
            assert_sound(decoder, raw)


@pytest.mark.parametrize("raw", [None, b"", b" ", b"\x00", b"{}", b"null", b"\xef\xbb\xbf{}"])
def test_degenerate_values(raw: bytes | None) -> None:
    for decoder in DECODERS:
        assert_sound(decoder, raw)
