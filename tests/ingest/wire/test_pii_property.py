"""Property: under PII policies no dead letter, record or detail holds a raw value.

Records with values at hashed and dropped paths are generated, wrapped in
every envelope the decoders read, and broken in every way the decoders know
(not JSON, Logstash's plain codec, not an object, bad types, missing id,
time or prediction, bad, past and future times, non-finite and out-of-range
numbers, invalid UTF-8, deep nesting, huge values). Each goes through the
path of ``repartition = "never"`` (the labeler's decoder, then its dead-letter
step, which redacts once more) and of ``"always"`` (the ingest stage's decoder,
and its ``late_prediction`` letters of the original bytes, redacted by the
stage). The dead letter's bytes, detail and headers, and any decoded
record, must hold none of the raw values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.records import DeadLetter, Outcome, Prediction, SourceRef
from ingest.repartition.frontier import late_letter
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap
from ingest.wire.pii import MIN_KEY_BYTES, FieldPolicy, PiiPolicy, RedactedValue

KEY = b"p" * MIN_KEY_BYTES
T = 1718000000.5
POLICIES = {
    "user_id": FieldPolicy("hash"),
    "features.email": FieldPolicy("drop"),
    "features.phone": FieldPolicy("hash"),
    "ctx.session": FieldPolicy("drop"),
}
FIELDS = FieldMap(join_id=("request_id",))
SOURCE = SourceRef("predictions", 0, 3)

# raw values: distinctive, so that a substring match means a leak
text_value = st.from_regex(r"\Apii[A-Za-z]{6,14}\Z", fullmatch=True)
int_value = st.integers(min_value=10**9, max_value=10**15)
raw_value = st.one_of(text_value, int_value)


def record(values: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": "r-1", "time": T, "model": "ctr", "score": 0.5, "type": "click",
            "value": 1.0, "user_id": values["user_id"],
            "features": {"email": values["email"], "phone": values["phone"], "price": 2.0},
            "ctx": {"session": values["session"], "page": "home"}}


def envelope(kind: str, doc: dict[str, Any]) -> bytes:
    """``doc`` as a forwarder sends it."""
    if kind == "json":
        return orjson.dumps(doc)
    if kind == "fluent-bit":
        return orjson.dumps({"@timestamp": T, **{k: v for k, v in doc.items() if k != "time"}})
    if kind == "logstash":
        body = orjson.dumps(doc).decode()
        return orjson.dumps({"@timestamp": "2024-06-10T06:13:20.500Z", "@version": "1",
                             "message": body, "event": {"original": body}, **doc})
    if kind == "logstash-copy-only":  # the record only inside event.original
        return orjson.dumps({"@timestamp": "2024-06-10T06:13:20.500Z", "@version": "1",
                             "event": {"original": orjson.dumps(doc).decode()}})
    raise AssertionError(kind)


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


BREAKS: dict[str, Callable[[dict[str, Any], str], bytes]] = {
    "none": lambda d, e: envelope(e, d),
    "not_json_truncated": lambda d, e: envelope(e, d)[:-3],
    "not_json_garbage": lambda d, e: b"<<" + envelope(e, d) + b">>",
    "invalid_utf8": lambda d, e: envelope(e, d).replace(b'"home"', b'"\xff\xfe"'),
    "logstash_plain_codec": lambda d, e: b"2024-06-10T06:13:20.500Z web-1 " + envelope(e, d),
    "plain_codec_text": lambda d, e: (f"2024-06-10T06:13:20.500Z web-1 user {d['user_id']} "
                                      f"mail {d['features']['email']}").encode(),
    "not_object_array": lambda d, e: orjson.dumps([d]),
    "not_object_string": lambda d, e: orjson.dumps(orjson.dumps(d).decode()),
    "bad_type_feature": lambda d, e: envelope(e, {**d, "features": {
        **d["features"], "price": {"of": "x"}}}),
    "bad_type_features": lambda d, e: envelope(e, {**d, "features": [d["features"]]}),
    "bad_id": lambda d, e: envelope(e, {**d, "request_id": {"id": "x"}}),
    "bad_ctx": lambda d, e: envelope(e, {**d, "ctx": [d["ctx"]], "user_id": [d["user_id"]]}),
    "missing_id": lambda d, e: envelope(e, _without(d, "request_id")),
    "missing_prediction": lambda d, e: envelope(e, _without(d, "score")),
    "missing_time": lambda d, e: orjson.dumps(_without(d, "time")),
    "bad_time": lambda d, e: envelope(e, {**d, "time": "yesterday-ish"}),
    "past_time": lambda d, e: envelope(e, {**d, "time": 1.0}),
    "future_time": lambda d, e: envelope(e, {**d, "time": T + 10 * 86400}),
    "non_finite": lambda d, e: envelope(e, d).replace(b'"price":2.0', b'"price":Infinity'),
    "out_of_range": lambda d, e: envelope(e, d).replace(b'"price":2.0',
                                                        b'"price":' + b"9" * 25),
    "deep": lambda d, e: b'{"user_id":' + orjson.dumps(d["user_id"]) + b',"x":'
    + b"[" * 2000 + b"]" * 2000 + b"}",
    "huge": lambda d, e: envelope(e, {**d, "features": {
        **d["features"], "email": str(d["features"]["email"]) * 5000}}),
    "empty": lambda d, e: b"",
}


def decoders(pii: PiiPolicy) -> dict[str, Decoder]:
    clock = lambda: T  # noqa: E731 - the future_time check reads it
    return {kind: Decoder(kind, FIELDS, "auto", Counter(), pii=pii,  # type: ignore[arg-type]
                          max_future_s=3600, clock=clock)
            for kind in ("prediction", "outcome")}


POLICY = PiiPolicy(POLICIES, KEY)
DECODERS = decoders(POLICY)


def texts_of(values: dict[str, Any]) -> list[str]:
    return [str(v) for v in values.values()]


def assert_clean(blob: bytes | str, raws: list[str], where: str) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    for raw in raws:
        assert raw not in text, f"{where} holds the raw value {raw!r}"


def check_letter(letter: DeadLetter, raws: list[str], where: str) -> None:
    assert isinstance(letter.raw, RedactedValue), f"{where}: not redacted"
    assert_clean(bytes(letter.raw), raws, f"{where} value")
    assert_clean(letter.detail[:1000], raws, f"{where} detail")
    assert_clean(letter.raw.sha256, raws, f"{where} sha256 header")


def check_record(out: Prediction | Outcome, raws: list[str], where: str) -> None:
    assert_clean(repr(out), raws, where)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({"user_id": raw_value, "email": raw_value,
                                     "phone": raw_value, "session": raw_value}),
       broken=st.sampled_from(sorted(BREAKS)),
       env=st.sampled_from(["json", "fluent-bit", "logstash", "logstash-copy-only"]),
       kind=st.sampled_from(["prediction", "outcome"]))
def test_no_path_leaks_a_raw_value(values: dict[str, Any], broken: str, env: str,
                                   kind: str) -> None:
    raws = texts_of(values)
    raw = BREAKS[broken](record(values), env)
    out = DECODERS[kind].decode(raw, SOURCE)
    where = f"{broken}/{env}/{kind}"
    if isinstance(out, DeadLetter):
        check_letter(out, raws, where)
        # repartition = "never": the labeler's dead-letter step redacts again
        check_letter(POLICY.redact_dead_letter(replace(out, source=SOURCE)), raws, where)
    else:
        check_record(out, raws, where)
        if isinstance(out, Prediction):
            # a late prediction's letter carries the original bytes until redacted:
            # both stages redact it (ingest stage, and the labeler's dead-letter step)
            late = POLICY.redact_dead_letter(late_letter(out.event_time, T + 999, 5.0, raw,
                                                         SOURCE))
            check_letter(late, raws, f"late_prediction/{where}")
