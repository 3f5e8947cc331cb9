"""PII policies: each policy, paths, hashing, the decoder, the dead-letter rule, the config."""

from __future__ import annotations

import copy
import doctest
import hashlib
import hmac
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

import ingest.wire.pii
from ingest.kafka.dead_letters import DeadLetterSink
from ingest.records import DeadLetter, Outcome, Prediction, SourceRef
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap
from ingest.wire.pii import (
    MIN_KEY_BYTES,
    SAFE_DETAIL_REASONS,
    WITHHELD_DETAIL,
    WITHHELD_KEY,
    FieldPolicy,
    PiiPolicy,
    RedactedValue,
)
from ingest.wire.schema import Schema, SchemaEnforcer
from labeler.config import validate
from labeler.errors import ConfigError

KEY = b"k" * MIN_KEY_BYTES
OTHER_KEY = b"o" * MIN_KEY_BYTES
SOURCE = SourceRef("predictions", 0, 7)
T = 1718000000.5
EMAIL = "alice.quinn@example.org"
FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "envelopes.json").read_text())

POLICY = {
    "features.email": FieldPolicy("drop"),
    "features.age": FieldPolicy("bucket", width=10),
    "features.zip": FieldPolicy("generalize", keep=3),
    "user_id": FieldPolicy("hash"),
}


def mac(text: str, key: bytes = KEY) -> str:
    """The expected hash, computed independently of the code under test."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def policy(**fields: FieldPolicy) -> PiiPolicy:
    return PiiPolicy(fields, KEY)


def one(path: str, rule: FieldPolicy, value: Any) -> Any:
    """``value`` at ``path`` after the policy, or ``...`` when it was removed."""
    record = PiiPolicy({path: rule}, KEY).apply({path: value})
    return record.get(path, ...)


def user_record(**overrides: Any) -> dict[str, Any]:
    record = {"request_id": "r1", "user_id": "uid-alice", "time": T, "score": 0.5,
              "features": {"email": EMAIL, "age": 37, "zip": "94107", "price": 2.5}}
    record.update(overrides)
    return record


# -- drop -------------------------------------------------------------------------------


def test_drop_removes_the_field_and_the_feature_is_then_missing() -> None:
    decoder = Decoder("prediction", FieldMap(), pii=PiiPolicy(POLICY, KEY))
    record = decoder.decode(orjson.dumps(user_record()))
    assert isinstance(record, Prediction)
    assert "email" not in record.features
    assert record.features["price"] == 2.5


def test_drop_removes_null_too_but_other_policies_keep_null() -> None:
    assert one("x", FieldPolicy("drop"), None) is ...
    for rule in (FieldPolicy("hash"), FieldPolicy("bucket", width=5),
                 FieldPolicy("generalize", keep=2)):
        assert one("x", rule, None) is None


def test_a_dropped_required_feature_dead_letters_as_missing_required() -> None:
    schema = SchemaEnforcer(default=Schema(features={"email": "str"},
                                           required=frozenset({"email"})))
    decoder = Decoder("prediction", FieldMap(), schema=schema, pii=PiiPolicy(POLICY, KEY))
    letter = decoder.decode(orjson.dumps(user_record()))
    assert isinstance(letter, DeadLetter) and letter.reason == "missing_required"


# -- hash -------------------------------------------------------------------------------


def test_hash_is_the_keyed_hmac_sha256_of_the_text() -> None:
    assert one("u", FieldPolicy("hash"), "uid-alice") == mac("uid-alice")
    assert one("u", FieldPolicy("hash"), 42) == mac("42") == one("u", FieldPolicy("hash"), "42")
    assert one("u", FieldPolicy("hash"), True) == mac("true")
    assert one("u", FieldPolicy("hash"), 1.5) == mac("1.5")


def test_hash_is_deterministic_and_depends_on_the_key() -> None:
    first = PiiPolicy({"u": FieldPolicy("hash")}, KEY)
    again = PiiPolicy({"u": FieldPolicy("hash")}, bytes(KEY))
    other = PiiPolicy({"u": FieldPolicy("hash")}, OTHER_KEY)
    values = [first.hash_value(f"user-{i}") for i in range(100)]
    assert values == [again.hash_value(f"user-{i}") for i in range(100)]
    assert len(set(values)) == 100
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in values)
    assert not set(values) & {other.hash_value(f"user-{i}") for i in range(100)}


def test_hash_of_an_object_ignores_key_order() -> None:
    a = one("o", FieldPolicy("hash"), {"b": 1, "a": [1, "x"]})
    b = one("o", FieldPolicy("hash"), {"a": [1, "x"], "b": 1})
    assert a == b == mac('{"a":[1,"x"],"b":1}')


def test_a_hashed_join_id_still_joins_predictions_and_outcomes() -> None:
    pii = PiiPolicy({"user_id": FieldPolicy("hash"), "request_id": FieldPolicy("hash")}, KEY)
    fields = FieldMap(join_id=("user_id", "request_id"))
    predict = Decoder("prediction", fields, pii=pii)
    outcome = Decoder("outcome", fields, pii=pii)
    p = predict.decode(orjson.dumps(user_record(request_id=17)))
    same = outcome.decode(orjson.dumps({"user_id": "uid-alice", "request_id": "17", "time": T,
                                        "type": "click"}))
    other = outcome.decode(orjson.dumps({"user_id": "uid-bob", "request_id": "17", "time": T}))
    assert isinstance(p, Prediction) and isinstance(same, Outcome)
    assert isinstance(other, Outcome)
    assert p.join_id == same.join_id == f"{mac('uid-alice')}\x1f{mac('17')}"
    assert other.join_id != p.join_id
    assert "uid-alice" not in p.join_id


@pytest.mark.parametrize("case", FIXTURES["cases"], ids=[c["name"] for c in FIXTURES["cases"]])
def test_every_envelope_is_redacted_the_same_way(case: dict[str, Any]) -> None:
    pii = PiiPolicy({"request_id": FieldPolicy("hash"), "features.country": FieldPolicy("drop"),
                     "features.price": FieldPolicy("bucket", width=10)}, KEY)
    record = Decoder(case["kind"], FieldMap(), case["format"], pii=pii).decode(
        case["value"].encode())
    assert isinstance(record, Prediction | Outcome)
    assert record.join_id == mac("r1")
    if isinstance(record, Prediction):
        assert "country" not in record.features
        assert record.features["price"] == 10.0


# -- bucket -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "width", "expected"), [
    (37, 10, 30), (30, 10, 30), (39, 10, 30), (0, 10, 0), (-3, 10, -10), (10**20 + 7, 10, 10**20),
    (37.9, 10, 30.0), (37, 2.5, 35.0), (37.3, 0.1, 37.3), (0.35, 0.1, 0.3), (-0.05, 0.1, -0.1),
    ("37", 10, "30"), ("37.5", 5, "35.0"),
])
def test_bucket_is_the_lower_bound_and_keeps_the_type(value: Any, width: float,
                                                      expected: Any) -> None:
    got = one("age", FieldPolicy("bucket", width=width), value)
    assert got == expected
    assert type(got) is type(expected)


def test_bucket_leaves_nan_and_infinity_to_the_mapping_rule() -> None:
    pii = PiiPolicy({"features.age": FieldPolicy("bucket", width=10)})
    decoder = Decoder("prediction", FieldMap(), pii=pii)
    nan = decoder.decode(b'{"request_id":"r","time":1718000001,"score":1,'
                         b'"features":{"age":NaN}}')
    inf = decoder.decode(b'{"request_id":"r","time":1718000001,"score":1,'
                         b'"features":{"age":Infinity}}')
    assert isinstance(nan, Prediction) and nan.features == {"age": None}
    assert isinstance(inf, DeadLetter) and inf.reason == "non_finite"


@pytest.mark.parametrize("value", ["thirty", "007", True, {"y": 37}, [37]])
def test_bucket_drops_what_it_cannot_bucket_and_counts_it(value: Any) -> None:
    counters: Counter[str] = Counter()
    pii = PiiPolicy({"features.age": FieldPolicy("bucket", width=10)})
    out = pii.apply({"features": {"age": value, "n": 1}}, counters)
    assert out == {"features": {"n": 1}}
    assert counters == Counter({"pii.unfit.features.age": 1})


# -- generalize -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("94107", "941"), ("SW1A 1AA", "SW1"), ("94", "94"), ("", ""), (94107, "941"),
    (-5, "-5"),
])
def test_generalize_keeps_the_first_characters(value: Any, expected: str) -> None:
    assert one("zip", FieldPolicy("generalize", keep=3), value) == expected


@pytest.mark.parametrize("value", [941.07, False, ["94107"]])
def test_generalize_drops_what_is_not_text_or_int(value: Any) -> None:
    assert one("zip", FieldPolicy("generalize", keep=3), value) is ...


# -- paths ------------------------------------------------------------------------------


def test_nested_and_literal_dotted_paths_are_both_redacted() -> None:
    pii = PiiPolicy({"features.email": FieldPolicy("drop"),
                     "ctx.user.name": FieldPolicy("hash")}, KEY)
    record = {"features.email": EMAIL, "features": {"email": EMAIL, "n": 1},
              "ctx": {"user": {"name": "Alice Quinn", "tier": "gold"}, "app": "web"}}
    assert pii.apply(record) == {
        "features": {"n": 1},
        "ctx": {"user": {"name": mac("Alice Quinn"), "tier": "gold"}, "app": "web"},
    }


def test_missing_fields_and_paths_through_non_objects_are_left_alone() -> None:
    pii = PiiPolicy(POLICY, KEY)
    for record in ({"request_id": "r1"}, {"features": "flat text"}, {"features": None},
                   {"features": {"price": 1.0}}, {"user": {"user_id": "x"}}):
        assert pii.apply(record) is record, "an untouched record is not even copied"


def test_apply_never_changes_its_input() -> None:
    record = user_record()
    before = copy.deepcopy(record)
    out = PiiPolicy(POLICY, KEY).apply(record)
    assert record == before
    assert out["features"] == {"age": 30, "zip": "941", "price": 2.5}
    assert out["user_id"] == mac("uid-alice")


def test_a_policy_on_an_object_applies_to_the_whole_object() -> None:
    pii = PiiPolicy({"features": FieldPolicy("hash"), "features.email": FieldPolicy("drop")},
                    KEY)
    out = pii.apply({"features": {"email": EMAIL}})
    assert out == {"features": mac(f'{{"email":"{EMAIL}"}}')}
    assert pii.covers("features.email") and pii.covers("features")
    assert not pii.covers("feature") and not pii.covers("featuresx")


def test_a_policy_on_the_time_field_is_what_the_mapping_reads() -> None:
    pii = PiiPolicy({"time": FieldPolicy("bucket", width=3600)})
    record = Decoder("outcome", FieldMap(), "json", pii=pii).decode(
        b'{"request_id":"r1","time":1718000123.25}')
    assert isinstance(record, Outcome) and record.event_time == 1717999200.0
    dropped = Decoder("outcome", FieldMap(), "json", pii=PiiPolicy({"time": FieldPolicy("drop")}))
    letter = dropped.decode(b'{"request_id":"r1","time":1718000123.25}')
    assert isinstance(letter, DeadLetter) and letter.reason == "missing_time"


# -- no policy: no work -----------------------------------------------------------------


def test_without_a_policy_no_pii_code_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_: object, **__: object) -> Any:
        raise AssertionError("PII code ran without a policy")

    for name in ("apply", "redact_dead_letter", "covers", "hash_value"):
        monkeypatch.setattr(PiiPolicy, name, forbidden)
    for pii in (None, PiiPolicy({})):
        decoder = Decoder("prediction", FieldMap(), pii=pii)
        assert decoder.pii is None
        assert isinstance(decoder.decode(orjson.dumps(user_record())), Prediction)
        assert isinstance(decoder.decode(b"{oops"), DeadLetter)


def test_without_a_policy_dead_letters_keep_the_original_bytes_and_key() -> None:
    raw = orjson.dumps(user_record(time=None))
    letter = Decoder("prediction", FieldMap()).decode(raw, SOURCE)
    assert isinstance(letter, DeadLetter) and letter.raw == raw
    assert type(letter.raw) is bytes
    producer = RecordingProducer()
    DeadLetterSink(producer, "dlq").send(letter, b"key-1")
    (sent,) = producer.sent
    assert sent["value"] == raw and sent["key"] == b"key-1"
    assert "loglabel.pii" not in dict(sent["headers"])


@pytest.mark.bench
def test_print_the_per_event_cost_of_a_policy() -> None:
    raw = orjson.dumps(user_record())
    n = 50_000
    for name, pii in (("no policy", None), ("4 policies", PiiPolicy(POLICY, KEY))):
        decoder = Decoder("prediction", FieldMap(), pii=pii)
        start = time.perf_counter()
        for _ in range(n):
            decoder.decode(raw)
        print(f"decode, {name}: {(time.perf_counter() - start) / n * 1e6:.2f} us/event")
    assert decoder.counters["prediction.decoded"] == n


# -- dead letters -----------------------------------------------------------------------


class RecordingProducer:
    """Stands in for KafkaProducer in unit tests: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, **kwargs: Any) -> _Sent:
        self.sent.append({"topic": topic, **kwargs})
        return _Sent()


class _Sent:
    """The part of kafka-python's FutureRecordMetadata the sink uses."""

    def add_errback(self, _callback: Any) -> None:
        pass


def redacting_decoder(fmt: str = "auto") -> Decoder:
    return Decoder("prediction", FieldMap(), fmt, pii=PiiPolicy(POLICY, KEY))


def assert_no_raw(value: bytes) -> None:
    for raw in (EMAIL, "uid-alice", "94107", '"age":37'):
        assert raw.encode() not in value, raw


def test_a_json_dead_letter_carries_the_redacted_message() -> None:
    raw = orjson.dumps(user_record(time=None, tag="ml.prediction"))
    letter = redacting_decoder().decode(raw, SOURCE)
    assert isinstance(letter, DeadLetter) and letter.reason == "missing_time"
    assert isinstance(letter.raw, RedactedValue)
    assert letter.raw.kind == "redacted"
    assert letter.raw.sha256 == hashlib.sha256(raw).hexdigest()
    assert_no_raw(letter.raw)
    doc = orjson.loads(bytes(letter.raw))
    assert doc["user_id"] == mac("uid-alice")
    assert doc["features"] == {"age": 30, "zip": "941", "price": 2.5}
    assert doc["tag"] == "ml.prediction" and doc["time"] is None
    assert letter.detail == "no event time in the record or its envelope"


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"user_id":"uid-alice","features":{"email":"' + EMAIL.encode(), "not_json"),
    (orjson.dumps(EMAIL), "not_object"),
    (orjson.dumps([user_record()]), "not_object"),
    (b"2024-06-10T06:13:20.123Z web-1 " + orjson.dumps(user_record()), "logstash_plain_codec"),
    (b'{"user_id":"uid-alice","n":' + b"1" * 30 + b',"features":{"email":"'
     + EMAIL.encode() + b'"},"x":1e400,"time":1,"score":1}', "not_json"),
])
def test_what_is_not_a_json_object_is_withheld(raw: bytes, reason: str) -> None:
    letter = redacting_decoder().decode(raw, SOURCE)
    assert isinstance(letter, DeadLetter) and letter.reason == reason
    assert isinstance(letter.raw, RedactedValue) and letter.raw.kind == "withheld"
    assert orjson.loads(bytes(letter.raw)) == {WITHHELD_KEY: True, "bytes": len(raw),
                                        "sha256": hashlib.sha256(raw).hexdigest()}
    assert_no_raw(letter.raw)


def test_an_empty_value_stays_empty() -> None:
    for raw in (None, b""):
        letter = redacting_decoder().decode(raw)
        assert isinstance(letter, DeadLetter) and letter.reason == "empty"
        assert letter.raw == b"" and isinstance(letter.raw, RedactedValue)


def test_logstash_record_copies_are_redacted_too() -> None:
    body = orjson.dumps(user_record()).decode()
    raw = orjson.dumps({"@timestamp": "not a time", "@version": "1", "message": "hi " + EMAIL,
                        "event": {"original": body}, "host": {"ip": "10.0.0.7"}})
    letter = redacting_decoder("logstash").decode(raw, SOURCE)
    assert isinstance(letter, DeadLetter) and letter.reason == "bad_time"
    assert isinstance(letter.raw, RedactedValue) and letter.raw.kind == "redacted"
    assert_no_raw(letter.raw)
    doc = orjson.loads(bytes(letter.raw))
    inner = orjson.loads(doc["event"]["original"])
    assert inner["user_id"] == mac("uid-alice") and "email" not in inner["features"]
    digest = hashlib.sha256(("hi " + EMAIL).encode()).hexdigest()
    assert doc["message"] == f"[withheld sha256:{digest}]"
    assert doc["host"] == {"ip": "10.0.0.7"} and doc["@timestamp"] == "not a time"


def test_a_message_with_nan_and_infinity_is_still_redacted() -> None:
    raw = (b'{"request_id":"r","user_id":"uid-alice","time":1,"score":Infinity,'
           b'"features":{"email":"' + EMAIL.encode() + b'","age":NaN}}')
    letter = redacting_decoder().decode(raw)
    assert isinstance(letter, DeadLetter) and letter.reason == "non_finite"
    assert isinstance(letter.raw, RedactedValue) and letter.raw.kind == "redacted"
    assert orjson.loads(bytes(letter.raw)) == {
        "request_id": "r", "user_id": mac("uid-alice"), "time": 1, "score": None,
        "features": {"age": None}}


@pytest.mark.parametrize("reason", ["bad_time", "internal_error", "bad_internal_record"])
def test_details_that_may_quote_raw_values_are_withheld(reason: str) -> None:
    assert reason not in SAFE_DETAIL_REASONS
    letter = DeadLetter(reason, f"time {EMAIL!r} is not a time", orjson.dumps(user_record()))
    safe = PiiPolicy(POLICY, KEY).redact_dead_letter(letter)
    assert safe.detail == WITHHELD_DETAIL


def test_a_bad_time_from_the_envelope_does_not_echo_the_value() -> None:
    pii = PiiPolicy({"time": FieldPolicy("hash")}, KEY)
    letter = Decoder("outcome", FieldMap(), "json", pii=pii).decode(
        b'{"request_id":"r1","time":"Alice Quinn born 1990-01-01"}')
    assert isinstance(letter, DeadLetter) and letter.reason == "bad_time"
    assert "Alice" not in letter.detail and b"Alice" not in letter.raw


def test_every_detail_is_scrubbed_of_raw_values_at_policy_paths() -> None:
    letter = DeadLetter("bad_type", f"feature 'email' is {EMAIL!r}; zip 94107",
                        orjson.dumps(user_record()))
    safe = PiiPolicy(POLICY, KEY).redact_dead_letter(letter)
    assert EMAIL not in safe.detail and "94107" not in safe.detail
    assert safe.detail.startswith("feature 'email' is '[redacted]'")


def test_an_internal_error_quoting_a_value_is_withheld() -> None:
    decoder = redacting_decoder()

    def broken(*_: Any) -> Prediction:
        raise KeyError(EMAIL)

    decoder._to_record = broken  # type: ignore[assignment]
    letter = decoder.decode(orjson.dumps(user_record()), SOURCE)
    assert isinstance(letter, DeadLetter) and letter.reason == "internal_error"
    assert EMAIL not in letter.detail
    assert_no_raw(letter.raw)


def test_redacting_twice_changes_nothing_and_deep_nesting_never_raises() -> None:
    pii = PiiPolicy(POLICY, KEY)
    once = pii.redact_dead_letter(DeadLetter("missing_time", "d", orjson.dumps(user_record())))
    assert pii.redact_dead_letter(once) is once
    deep = b'{"features":{"email":' + b"[" * 5000 + b"]" * 5000 + b"}}"
    letter = redacting_decoder().decode(deep)
    assert isinstance(letter, DeadLetter) and isinstance(letter.raw, RedactedValue)
    assert letter.raw.kind == "withheld"


def test_the_sink_says_so_in_headers_and_drops_the_raw_key() -> None:
    raw = orjson.dumps(user_record(time=None))
    letter = redacting_decoder().decode(raw, SOURCE)
    assert isinstance(letter, DeadLetter)
    producer = RecordingProducer()
    DeadLetterSink(producer, "dlq").send(letter, EMAIL.encode())
    (sent,) = producer.sent
    headers = dict(sent["headers"])
    assert sent["key"] is None
    assert headers["loglabel.pii"] == b"redacted"
    assert headers["loglabel.original.sha256"] == hashlib.sha256(raw).hexdigest().encode()
    assert headers["loglabel.reason"] == b"missing_time"
    assert_no_raw(sent["value"])


# -- construction and config ------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"policy": "mask"}, {"policy": "bucket"}, {"policy": "bucket", "width": 0},
    {"policy": "bucket", "width": float("inf")}, {"policy": "drop", "width": 10},
    {"policy": "generalize"}, {"policy": "generalize", "keep": 0},
    {"policy": "hash", "keep": 3},
])
def test_invalid_field_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FieldPolicy(**kwargs)
    with pytest.raises(ConfigError, match=r"pii\.fields\.features\.age"):
        validate({"pii": {"fields": {"features.age": kwargs}}})


def test_a_hash_policy_without_a_long_enough_key_is_refused() -> None:
    with pytest.raises(ValueError):
        PiiPolicy({"u": FieldPolicy("hash")})
    with pytest.raises(ValueError):
        PiiPolicy({"u": FieldPolicy("hash")}, b"short")
    with pytest.raises(ValueError, match="empty part"):
        PiiPolicy({"features..email": FieldPolicy("drop")})


def test_the_config_builds_the_policy_with_the_key_from_the_environment() -> None:
    config = validate({"pii": {"fields": {"user_id": {"policy": "hash"},
                                          "features.age": {"policy": "bucket", "width": 10}}}})
    built = config.pii.policy({"LOGLABEL_PII_KEY": KEY.decode()})
    assert built is not None
    out = built.apply({"user_id": "u", "features": {"age": 41}})
    assert out == {"user_id": mac("u"), "features": {"age": 40}}
    assert type(out["features"]["age"]) is int, "an int width from TOML stays an int"
    assert validate({}).pii.policy({}) is None
    drop_only = validate({"pii": {"fields": {"features.email": {"policy": "drop"}}}})
    assert drop_only.pii.policy({}) is not None, "no hash: no key needed"


def test_a_missing_or_short_key_is_a_config_error_that_never_shows_the_key() -> None:
    config = validate({"pii": {"key_env": "MY_PII_KEY",
                               "fields": {"user_id": {"policy": "hash"}}}})
    with pytest.raises(ConfigError, match="MY_PII_KEY, which is not set") as unset:
        config.pii.policy({})
    assert "user_id" in str(unset.value)
    with pytest.raises(ConfigError, match="shorter than 16 bytes") as short:
        config.pii.policy({"MY_PII_KEY": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(short.value)
    built = config.pii.policy({"MY_PII_KEY": "s3cr3t-value-long-enough"})
    assert "s3cr3t" not in repr(built) and "s3cr3t" not in repr(config)


def test_the_key_variable_cannot_be_a_config_override_or_an_odd_name() -> None:
    for name in ("LOGLABEL_PII__KEY", "has space", ""):
        with pytest.raises(ConfigError, match="pii.key_env"):
            validate({"pii": {"key_env": name}})
    with pytest.raises(ConfigError, match="empty part"):
        validate({"pii": {"fields": {"features.": {"policy": "drop"}}}})


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(ingest.wire.pii).failed == 0


@pytest.mark.parametrize("repartition", ["never", "always"])
def test_the_pipeline_refuses_to_start_without_the_key_before_any_broker_call(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, repartition: str) -> None:
    from labeler.runtime.compose import run_pipeline
    from labeler.runtime.worker import Worker

    monkeypatch.delenv("LOGLABEL_PII_KEY", raising=False)
    config = validate({"kafka": {"bootstrap_servers": "127.0.0.1:1"},
                       "ingest": {"repartition": repartition},
                       "output": {"path": str(tmp_path)},
                       "pii": {"fields": {"user_id": {"policy": "hash"}}}})
    with pytest.raises(ConfigError, match="LOGLABEL_PII_KEY, which is not set"):
        run_pipeline(config, until_idle=0.1, install_signals=False)
    with pytest.raises(ConfigError, match="LOGLABEL_PII_KEY"):
        Worker(config)
