"""Envelope decoding: the shared fixture set, auto-detection, Logstash ECS and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import RejectedMessage
from ingest.wire.envelope import FORMATS, detect, unwrap

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "envelopes.json").read_text())
CASES = FIXTURES["cases"]
RECORDS = FIXTURES["records"]
INJECTED = {"tag", "time", "hostname", "message_key"}  # what <inject> and message_key_key add
AUTO_NAME = {"fluentd": "json", "json": "json", "fluent-bit": "fluent-bit", "logstash": "logstash"}


def rejected(raw: bytes, fmt: str = "auto", **kwargs: Any) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as caught:
        unwrap(raw, fmt, **kwargs)
    return caught.value


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("fmt", ["auto", "explicit"])
def test_every_fixture_yields_the_forwarded_record_and_its_time(case: dict[str, Any], fmt: str
                                                                ) -> None:
    given = case["format"] if fmt == "explicit" else "auto"
    envelope = unwrap(case["value"].encode(), given, record_key="request_id")
    expected = RECORDS[case["kind"]]
    assert envelope.format == (case["format"] if fmt == "explicit" else AUTO_NAME[case["format"]])
    assert envelope.time == pytest.approx(case["time"], abs=1e-6)
    if case["format"] in ("fluentd", "json"):
        # the record is the message itself; <inject> keys stay, nothing else is added
        assert {k: v for k, v in envelope.record.items() if k not in INJECTED} == expected
    else:
        # envelope-only keys are gone: the record is exactly what the model server logged
        assert envelope.record == expected


@pytest.mark.parametrize(("doc", "expected"), [
    ({"request_id": "r1"}, "json"),
    ({"request_id": "r1", "time": 1.0, "tag": "ml.prediction"}, "json"),
    ({"@timestamp": 1.0, "request_id": "r1"}, "fluent-bit"),
    ({"@timestamp": "2024-06-10T06:13:20.123Z", "@version": "1", "request_id": "r1"}, "logstash"),
    ({"request_id": "r1", "@timestamp": "2024-06-10T06:13:20.123Z"}, "logstash"),
    ({"@version": "1", "request_id": "r1"}, "logstash"),
])
def test_auto_detection_rules(doc: dict[str, Any], expected: str) -> None:
    assert detect(doc) == expected
    assert unwrap(json.dumps(doc).encode()).format == expected


def test_fluentd_keeps_its_record_and_reads_time_from_time_key() -> None:
    envelope = unwrap(b'{"request_id":"r1","ts":1718000000.5,"tag":"ml.prediction"}',
                      "fluentd", time_key="ts")
    assert envelope.time == 1718000000.5
    assert envelope.time_key == "ts"
    assert envelope.record == {"request_id": "r1", "ts": 1718000000.5, "tag": "ml.prediction"}


def test_a_message_without_time_has_no_envelope_time() -> None:
    assert unwrap(b'{"request_id":"r1"}').time is None
    assert unwrap(b'{"request_id":"r1","time":null}').time is None


def test_fluent_bit_explicit_takes_timestamp_wherever_it_is() -> None:
    envelope = unwrap(b'{"request_id":"r1","@timestamp":1718000000.25}', "fluent-bit")
    assert envelope.time == 1718000000.25
    assert envelope.record == {"request_id": "r1"}
    assert envelope.time_key is None


def test_logstash_keeps_record_fields_that_only_share_an_ecs_name() -> None:
    raw = json.dumps({"request_id": "r1", "event": "click", "host": "web-1", "url": "/p/1",
                      "@timestamp": "2024-06-10T06:13:20.123Z", "@version": "1"}).encode()
    envelope = unwrap(raw, record_key="request_id")
    assert envelope.record == {"request_id": "r1", "event": "click", "host": "web-1",
                               "url": "/p/1"}


def test_logstash_top_level_wins_over_event_original_when_it_holds_the_record() -> None:
    raw = json.dumps({"request_id": "top", "@version": "1",
                      "event": {"original": '{"request_id": "inner"}'}}).encode()
    assert unwrap(raw, record_key="request_id").record == {"request_id": "top"}


def test_logstash_event_original_comes_before_message() -> None:
    raw = json.dumps({"@version": "1", "message": '{"request_id": "from-message"}',
                      "event": {"original": '{"request_id": "from-original"}'}}).encode()
    assert unwrap(raw, record_key="request_id").record == {"request_id": "from-original"}


def test_logstash_without_record_key_uses_message_when_nothing_else_is_left() -> None:
    raw = json.dumps({"@version": "1", "@timestamp": "2024-06-10T06:13:20.123Z",
                      "message": '{"request_id": "r1"}', "tags": ["_jsonparsefailure"],
                      "host": {"ip": "10.0.0.7"}}).encode()
    assert unwrap(raw).record == {"request_id": "r1"}


@pytest.mark.parametrize("inner", ['not json', '["r1"]', '{"request_id": ', 42])
def test_logstash_falls_back_to_the_top_level_when_no_json_object_is_embedded(inner: object
                                                                             ) -> None:
    raw = json.dumps({"@version": "1", "other": 1, "message": inner,
                      "event": {"original": inner}}).encode()
    assert unwrap(raw, record_key="request_id").record == {"other": 1, "message": inner}


def test_dotted_record_key_counts_as_present_at_the_top_level() -> None:
    raw = json.dumps({"@version": "1", "ctx": {"id": "top"},
                      "event": {"original": '{"ctx": {"id": "inner"}}'}}).encode()
    assert unwrap(raw, record_key="ctx.id").record == {"ctx": {"id": "top"}}


@pytest.mark.parametrize("line", [
    b"2024-06-10T06:13:20.123Z web-1 {\"request_id\":\"r1\",\"score\":0.73}",
    b"2024-06-10T06:13:20.123Z %{host} hello world",
    b"2024-06-10T06:13:20Z 10.0.0.7 ",
])
@pytest.mark.parametrize("fmt", FORMATS)
def test_logstash_plain_codec_is_rejected_with_the_fix(line: bytes, fmt: str) -> None:
    error = rejected(line, fmt)
    assert error.reason == "logstash_plain_codec"
    assert "codec => json" in error.detail


@pytest.mark.parametrize("raw", [
    b"{", b"hello", b'{"a":1} trailing', b"\xff\xfe{}", b'{"a":"\xff"}', b"{'a': 1}",
    b'{"a":nan}', b'{"a":"\\ud800","b":NaN}', b"[" * 2000 + b"]" * 2000,
    b'{"a":' + b"[" * 5000 + b"NaN" + b"]" * 5000 + b"}",
])
def test_values_that_are_not_json_are_rejected(raw: bytes) -> None:
    assert rejected(raw).reason == "not_json"


@pytest.mark.parametrize("raw", [b"[1,2]", b'"r1"', b"1", b"null", b"true", b"NaN"])
def test_json_that_is_not_an_object_is_rejected(raw: bytes) -> None:
    assert rejected(raw).reason == "not_object"


def test_nan_and_infinity_literals_are_parsed_for_the_mapping_to_judge() -> None:
    # Python's json.dumps writes these; the mapping then nulls NaN and rejects infinity
    envelope = unwrap(b'{"a":NaN,"b":Infinity,"c":-Infinity,"d":1e400,"e":0}')
    record = envelope.record
    assert math.isnan(record["a"])
    assert record["b"] == math.inf
    assert record["c"] == -math.inf
    assert record["d"] == math.inf
    assert record["e"] == 0


@pytest.mark.parametrize(("raw", "fmt"), [
    (b'{"@timestamp":"yesterday","request_id":"r1"}', "auto"),
    (b'{"request_id":"r1","time":true}', "fluentd"),
    (b'{"request_id":"r1","@timestamp":{"s":1},"@version":"1"}', "logstash"),
])
def test_unparseable_envelope_time_is_bad_time(raw: bytes, fmt: str) -> None:
    assert rejected(raw, fmt).reason == "bad_time"


def test_unknown_format_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown envelope format"):
        unwrap(b"{}", "gelf")
