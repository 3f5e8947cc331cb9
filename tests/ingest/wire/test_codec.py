"""The internal topics' compact serialization."""

from __future__ import annotations

import msgpack
import pytest

from ingest.records import DeadLetter, Outcome, Prediction
from ingest.wire.codec import (
    CanonicalDecoder,
    decode,
    decode_batch,
    encode,
    encode_batch,
    encode_sourced,
    pack,
)

PRED = Prediction("r1\x1fitem-7", 1718000000.123456, "ctr", None,
                  {"price": 12.5, "country": "DE", "n": 0, "gone": None}, {"score": 0.73})
OUT = Outcome("r1\x1fitem-7", 1718000003.5, "purchase", 19.99, None)


def test_records_round_trip_exactly() -> None:
    assert decode(encode(PRED)) == PRED
    assert decode(encode(OUT)) == OUT
    assert decode_batch(encode_batch([pack(PRED), pack(OUT)])) == [PRED, OUT]


def test_encoding_is_smaller_than_the_json_it_came_from() -> None:
    import orjson

    as_json = orjson.dumps({"request_id": PRED.join_id, "time": PRED.event_time,
                            "model": PRED.model, "features": PRED.features, "score": 0.73})
    assert len(encode(PRED)) < len(as_json)


@pytest.mark.parametrize("raw", [b"", b"\xc1", msgpack.packb([9, "x"]), msgpack.packb({"a": 1}),
                                 msgpack.packb([[1, "too", "short"]])])
def test_garbage_is_a_dead_letter_not_an_exception(raw: bytes) -> None:
    decoder = CanonicalDecoder("prediction")
    result = decoder.decode(raw)
    assert isinstance(result, DeadLetter) and result.reason == "bad_internal_record"
    assert decoder.counters["prediction.dead_letter.bad_internal_record"] == 1


def test_a_batch_of_the_wrong_kind_is_rejected_whole() -> None:
    decoder = CanonicalDecoder("outcome")
    assert isinstance(decoder.decode(encode_batch([pack(OUT), pack(PRED)])), DeadLetter)
    assert decoder.decode(encode_batch([pack(OUT), pack(OUT)])) == [OUT, OUT]
    assert decoder.counters["outcome.rekeyed_read"] == 2


@pytest.mark.parametrize("poison", [
    [1, "r1", "1718000000", "ctr", None, {}, {}],  # a string event time
    [1, "r1", float("nan"), "ctr", None, {}, {}],
    [1, 7, 1718000000.0, "ctr", None, {}, {}],  # a number for a join id
    [1, "r1", 1718000000.0, "ctr", None, [], {}],  # a list for the features
    [2, "r1", 1718000000.0, "click", "12", None],  # a string value
    [3, "raw", "0", None, False],  # a source mark with a string partition
])
def test_a_record_of_the_right_shape_but_wrong_types_is_a_dead_letter(poison: list) -> None:
    kind = "prediction" if poison[0] in (1, 3) else "outcome"
    result = CanonicalDecoder(kind).decode(msgpack.packb([poison]))
    assert isinstance(result, DeadLetter) and result.reason == "bad_internal_record"


def test_marks_and_late_outcomes_round_trip() -> None:
    import math

    from ingest.records import LateOutcome, SourceMark

    marks = [SourceMark("raw", 2, 1718000000.5, False), SourceMark("raw", 0, -math.inf, True)]
    batch = encode_batch([pack(m) for m in marks] + [pack(LateOutcome(OUT))])
    assert CanonicalDecoder("outcome").decode(batch) == [*marks, LateOutcome(OUT)]


def test_a_sourced_batch_says_where_its_records_were_read() -> None:
    raw = encode_sourced("raw.predictions", 2, [10, 12], [pack(PRED), pack(PRED)])
    origin, records = CanonicalDecoder("prediction").decode_sourced(raw)  # type: ignore[misc]
    assert origin is not None
    assert (origin.topic, origin.partition, origin.offsets) == ("raw.predictions", 2, [10, 12])
    assert records == [PRED, PRED]
    assert decode_batch(raw) == [PRED, PRED]


@pytest.mark.parametrize("broken", [
    ["sourced", "t", 0, [1], []],  # an offset too many
    ["sourced", "t", "0", [1], [None]],
    ["sourced", "t", 0, ["1"], [None]],
    ["sourced", "t", 0],
])
def test_a_sourced_batch_without_its_source_is_a_dead_letter(broken: list[object]) -> None:
    if len(broken) == 5 and broken[4] == [None]:
        broken[4] = [pack(PRED)]
    result = CanonicalDecoder("prediction").decode(msgpack.packb(broken))
    assert isinstance(result, DeadLetter) and result.reason == "bad_internal_record"


def test_packb_is_msgpack_packb_on_every_thread_and_after_a_failure() -> None:
    import random
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import msgpack

    from ingest.wire.codec import packb

    def values(seed: int) -> list[object]:
        rng = random.Random(seed)
        return [[rng.randrange(4), f"id-{rng.random()}", rng.random(),
                 {f"f{i}": rng.choice([rng.random(), None, "x", True, 7]) for i in range(9)},
                 b"\x00" * rng.randrange(3000)] for _ in range(2000)]

    together = threading.Barrier(4, timeout=60)  # four threads at once, each its packer

    def check(seed: int) -> tuple[int, int, list[int]]:
        """(values compared, failures provoked, indexes that differ); what ``packb``
        raises propagates to the future, and so to the test."""
        together.wait()
        compared, failures, mismatches = 0, 0, []
        for i, value in enumerate(values(seed)):
            if i % 500 == 0:
                with pytest.raises(TypeError):
                    packb([1, object()])  # a failure resets the thread's packer
                failures += 1
            if packb(value) != msgpack.packb(value, use_bin_type=True):
                mismatches.append(i)
            compared += 1
        return compared, failures, mismatches

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {seed: pool.submit(check, seed) for seed in range(4)}
    results = {seed: future.result(timeout=0) for seed, future in futures.items()}
    assert results == {seed: (2000, 4, []) for seed in range(4)}
