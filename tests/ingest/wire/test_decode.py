"""The decoder over every envelope (contract test), every dead-letter reason, and counters."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingest.records import DeadLetter, Outcome, Prediction, SourceRef
from ingest.wire.decode import DEAD_LETTER_REASONS, DEFAULT_MIN_TIME, Decoder
from ingest.wire.mapping import FieldMap
from ingest.wire.schema import Schema, SchemaEnforcer, skew_key

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "envelopes.json").read_text())
CASES = FIXTURES["cases"]
RECORDS = FIXTURES["records"]
SOURCE = SourceRef("predictions", 3, 1234)
T = 1718000000.5


def canonical(kind: str, time: float) -> Prediction | Outcome:
    """What every envelope of the fixture record must decode to, built from the record."""
    rec = RECORDS[kind]
    if kind == "prediction":
        return Prediction(join_id=rec["request_id"], event_time=time, model=rec["model"],
                          model_version=rec["model_version"], features=rec["features"],
                          prediction={"score": rec["score"]})
    return Outcome(join_id=rec["request_id"], event_time=time, outcome_type=rec["type"],
                   value=rec["value"], outcome_id=rec["outcome_id"])


def same(record: object, expected: Prediction | Outcome) -> None:
    assert type(record) is type(expected), record
    assert isinstance(record, Prediction | Outcome)
    assert record.event_time == pytest.approx(expected.event_time, abs=1e-6)
    assert dataclasses.replace(record, event_time=expected.event_time) == expected


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("fmt", ["auto", "explicit"])
def test_every_envelope_gives_the_same_canonical_record(case: dict[str, Any], fmt: str) -> None:
    counters: Counter[str] = Counter()
    decoder = Decoder(case["kind"], FieldMap(),
                      case["format"] if fmt == "explicit" else "auto", counters)
    record = decoder.decode(case["value"].encode(), SOURCE)
    same(record, canonical(case["kind"], case["time"]))
    assert counters == Counter({f"{case['kind']}.decoded": 1})


def test_the_fixture_set_covers_every_format_for_both_kinds() -> None:
    covered = {(c["kind"], c["format"]) for c in CASES}
    assert covered == {(k, f) for k in ("prediction", "outcome")
                       for f in ("fluentd", "fluent-bit", "logstash", "json")}


def prediction_bytes(**overrides: Any) -> bytes:
    record = {"request_id": "r1", "time": T, "score": 0.5, "features": {"price": 1.0}}
    record.update(overrides)
    return json.dumps({k: v for k, v in record.items() if v is not ...}).encode()


@pytest.mark.parametrize(("raw", "reason"), [
    (None, "empty"),
    (b"", "empty"),
    (b"2024-06-10T06:13:20.123Z web-1 {\"request_id\":\"r1\"}", "logstash_plain_codec"),
    (b"\x82\xa3msg", "not_json"),
    (b"[1]", "not_object"),
    (prediction_bytes(time="tomorrow"), "bad_time"),
    (prediction_bytes(time=...), "missing_time"),
    (prediction_bytes(request_id=...), "missing_id"),
    (prediction_bytes(request_id=1.5), "bad_id"),
    (prediction_bytes(score=...), "missing_prediction"),
    (prediction_bytes(features={"price": [1]}), "bad_type"),
    (b'{"request_id":"r1","time":1718000000,"score":Infinity}', "non_finite"),
    (prediction_bytes(features={"big": 2**64 - 1}), "out_of_range"),
])
def test_each_reason_is_a_dead_letter_with_the_original_bytes(raw: bytes | None,
                                                              reason: str) -> None:
    counters: Counter[str] = Counter()
    letter = Decoder("prediction", FieldMap(), counters=counters).decode(raw, SOURCE)
    assert isinstance(letter, DeadLetter)
    assert letter.reason == reason
    assert reason in DEAD_LETTER_REASONS
    assert letter.raw == (raw or b"")
    assert letter.source == SOURCE
    assert letter.detail
    assert counters == Counter({f"prediction.dead_letter.{reason}": 1})


def test_missing_required_through_the_decoder() -> None:
    schema = SchemaEnforcer(default=Schema(features={"price": "float", "age": "int"},
                                           required=frozenset({"age"})))
    counters: Counter[str] = Counter()
    letter = Decoder("prediction", FieldMap(), counters=counters, schema=schema).decode(
        prediction_bytes())
    assert isinstance(letter, DeadLetter) and letter.reason == "missing_required"
    assert counters["prediction.dead_letter.missing_required"] == 1
    assert counters[skew_key("missing_feature", "default", "age")] == 1


def test_a_decoder_bug_is_an_internal_error_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    counters: Counter[str] = Counter()
    decoder = Decoder("outcome", FieldMap(), counters=counters)

    def broken(*args: Any) -> Outcome:
        raise KeyError("bug")

    monkeypatch.setattr(decoder, "_to_record", broken)
    letter = decoder.decode(b'{"request_id":"r1"}', SOURCE)
    assert isinstance(letter, DeadLetter)
    assert letter.reason == "internal_error"
    assert "KeyError" in letter.detail
    assert counters == Counter({"outcome.dead_letter.internal_error": 1})


def test_counts_add_up_to_the_messages_seen() -> None:
    counters: Counter[str] = Counter()
    decoder = Decoder("outcome", FieldMap(), counters=counters)
    messages = [b'{"request_id":"r1","time":1718000001}', b"{}", None, b"x",
                b'{"request_id":"r2","time":1718000002,"type":"click"}']
    results = [decoder.decode(m) for m in messages]
    assert sum(isinstance(r, Outcome) for r in results) == counters["outcome.decoded"] == 2
    assert sum(counters.values()) == len(messages)


def test_schema_rejections_and_skew_share_the_decoder_counter() -> None:
    counters: Counter[str] = Counter()
    decoder = Decoder("prediction", FieldMap(), counters=counters,
                      schema=SchemaEnforcer(infer_from=2))
    decoder.decode(prediction_bytes(features={"price": 1}))
    decoder.decode(prediction_bytes(features={"price": 2.5}))
    widened = decoder.decode(prediction_bytes(features={"price": 3, "new": "x"}))
    changed = decoder.decode(prediction_bytes(features={"price": "cheap"}))
    assert isinstance(widened, Prediction) and widened.features == {"price": 3.0, "new": "x"}
    assert isinstance(changed, DeadLetter) and changed.reason == "bad_type"
    assert counters == Counter({"prediction.decoded": 3, "prediction.dead_letter.bad_type": 1,
                                skew_key("new_feature", "default", "new"): 1})


def test_each_stream_counts_under_its_own_kind() -> None:
    counters: Counter[str] = Counter()
    Decoder("prediction", FieldMap(), counters=counters).decode(None)
    Decoder("outcome", FieldMap(), counters=counters).decode(
        b'{"request_id":"r1","time":1718000001}')
    assert counters == Counter({"prediction.dead_letter.empty": 1, "outcome.decoded": 1})


@pytest.mark.parametrize(("args", "kwargs"), [
    (("prediction", FieldMap(), "gelf"), {}),
    (("label", FieldMap()), {}),
    (("outcome", FieldMap()), {"schema": SchemaEnforcer()}),
])
def test_configuration_errors_are_raised_at_construction(args: tuple[Any, ...],
                                                         kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Decoder(*args, **kwargs)


def test_an_event_far_ahead_of_the_clock_is_a_dead_letter() -> None:
    now = 1_718_000_000.0
    counters: Counter[str] = Counter()
    decoder = Decoder("prediction", FieldMap(), counters=counters, max_future_s=3600.0,
                      clock=lambda: now)
    fine = b'{"request_id": "a", "time": %d, "features": {"x": 1.0}, "score": 0.5}' % (now + 3500)
    ahead = b'{"request_id": "b", "time": %d, "features": {"x": 1.0}, "score": 0.5}' % (now + 3700)
    year_2100 = b'{"request_id": "c", "time": "2100-01-01T00:00:00Z", "features": {}, "score": 1}'
    assert isinstance(decoder.decode(fine), Prediction)
    letter = decoder.decode(ahead, SOURCE)
    assert isinstance(letter, DeadLetter) and letter.reason == "future_time"
    assert "3700 s ahead" in letter.detail and letter.raw == ahead
    assert decoder.decode(year_2100).reason == "future_time"  # type: ignore[union-attr]
    assert counters == Counter({"prediction.decoded": 1, "prediction.dead_letter.future_time": 2})
    unlimited = Decoder("prediction", FieldMap())
    assert isinstance(unlimited.decode(ahead), Prediction)


def test_an_event_before_min_time_is_a_past_time_dead_letter() -> None:
    counters: Counter[str] = Counter()
    decoder = Decoder("prediction", FieldMap(), counters=counters)  # default: 2000-01-01
    placeholder = b'{"request_id": "a", "time": 1.0, "features": {}, "score": 0.5}'
    y1999 = b'{"request_id": "b", "time": "1999-12-31T23:59:59Z", "features": {}, "score": 0.5}'
    y2000 = b'{"request_id": "c", "time": "2000-01-01T00:00:00Z", "features": {}, "score": 0.5}'
    letter = decoder.decode(placeholder, SOURCE)
    assert isinstance(letter, DeadLetter) and letter.reason == "past_time"
    assert "1970-01-01T00:00:01Z" in letter.detail and "ingest.min_time" in letter.detail
    assert decoder.decode(y1999).reason == "past_time"  # type: ignore[union-attr]
    record = decoder.decode(y2000)
    assert isinstance(record, Prediction) and record.event_time == DEFAULT_MIN_TIME
    assert counters == Counter({"prediction.decoded": 1, "prediction.dead_letter.past_time": 2})
    later = Decoder("prediction", FieldMap(), min_time=1_718_000_000.0)
    assert later.decode(y2000).reason == "past_time"  # type: ignore[union-attr]
    unbounded = Decoder("prediction", FieldMap(), min_time=None)
    assert isinstance(unbounded.decode(placeholder), Prediction)
