"""The ingest stage's event-time frontier, without a broker (a stand-in for the
consumer's assignment, highwater and position bookkeeping)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import orjson
from kafka import TopicPartition

from ingest.repartition.stage import Repartitioner, Route
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value, self.key = offset, value, None


class _Consumer:
    def __init__(self, highwater: dict[TopicPartition, int],
                 position: dict[TopicPartition, int]) -> None:
        self.hw, self.pos, self.paused = highwater, position, set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.hw)

    def highwater(self, tp: TopicPartition) -> int:
        return self.hw[tp]

    def position(self, tp: TopicPartition) -> int:
        return self.pos[tp]

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)


def _messages(first_offset: int, times: list[float]) -> list[_Message]:
    return [_Message(first_offset + i, orjson.dumps(
        {"request_id": f"r{first_offset + i}", "time": t, "score": 0.5}))
        for i, t in enumerate(times)]


def _stage() -> Repartitioner:
    decoder = Decoder("prediction", FieldMap(), counters=Counter(), min_time=None)
    return Repartitioner({}, "g", [Route("p", "p.rekeyed", decoder)], "dlq", max_skew=30.0)


def test_a_partition_committed_before_a_restart_does_not_hold_the_frontier() -> None:
    stage, tp0, tp1 = _stage(), TopicPartition("p", 0), TopicPartition("p", 1)
    consumer = _Consumer({tp0: 1000, tp1: 500}, {tp0: 900, tp1: 500})
    stage._take(tp0, _messages(900, [100.0 + i for i in range(100)]), None)  # type: ignore[arg-type]
    assert stage._frontier(consumer) == math.inf  # tp0 read to its end, tp1 had nothing new
    stage._align(consumer)
    assert consumer.paused == set()


def test_the_frontier_is_the_lowest_mark_among_partitions_still_behind() -> None:
    stage, tp0, tp1 = _stage(), TopicPartition("p", 0), TopicPartition("p", 1)
    consumer = _Consumer({tp0: 1000, tp1: 1000}, {tp0: 0, tp1: 0})
    stage._take(tp0, _messages(0, [100.0, 200.0]), None)  # type: ignore[arg-type]
    stage._take(tp1, _messages(0, [150.0]), None)  # type: ignore[arg-type]
    assert stage._frontier(consumer) == 150.0
    stage._align(consumer)
    assert consumer.paused == {tp0}, "200 is more than max_skew ahead of 150"
    offsets = {tp: min(held) for tp, held in stage._held.items() if held}
    assert offsets == {tp0: 0, tp1: 0}, "nothing released yet: commits stay at the first held"


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def send(self, topic: str, value: bytes, partition: int) -> Any:
        self.sent.append((topic, partition, value))
        return _Future()


class _Future:
    def add_errback(self, _callback: Any) -> None:
        pass


def test_batches_are_split_below_the_size_limit_and_keep_every_record() -> None:
    from ingest.wire.codec import decode_batch

    stage, tp0 = _stage(), TopicPartition("p", 0)
    stage.max_batch_bytes = 2_000
    stage._take(tp0, _messages(0, [100.0 + i for i in range(300)]), None)  # type: ignore[arg-type]
    producer = _Producer()
    stage._release(producer, math.inf)  # type: ignore[arg-type]
    assert all(len(value) <= 2_000 for _, _, value in producer.sent)
    records = [r for _, _, value in producer.sent for r in decode_batch(value)]
    assert sorted(r.join_id for r in records) == sorted(f"r{i}" for i in range(300))
    assert stage._held[tp0] == set()


def test_revoked_partitions_are_forgotten() -> None:
    stage, tp0, tp1 = _stage(), TopicPartition("p", 0), TopicPartition("p", 1)
    stage._take(tp0, _messages(0, [100.0, 101.0]), None)  # type: ignore[arg-type]
    stage._take(tp1, _messages(0, [100.5]), None)  # type: ignore[arg-type]
    stage.forget({tp0})
    assert [entry[5] for entry in stage._heap] == [tp1]
    assert tp0 not in stage._next and tp0 not in stage._held
