"""The ingest stage without a broker: stand-ins for the consumer's assignment, committed
offsets and end offsets, and for the producer's sends (what a real broker would get)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import orjson
import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from ingest.kafka.dead_letters import DeadLetterSink, NotYetAcknowledged
from ingest.kafka.progress import BrokerProgress
from ingest.records import LateOutcome, Outcome, Prediction, SourceMark
from ingest.repartition.stage import Repartitioner, Route, TimeRules
from ingest.wire.codec import decode_batch
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value, self.key = offset, value, None


class _Future:
    def add_errback(self, _callback: Any) -> None:
        pass


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int | None, bytes, dict[str, bytes]]] = []

    def send(self, topic: str, value: bytes, partition: int | None = None, key: Any = None,
             headers: Any = None) -> _Future:
        self.sent.append((topic, partition, value, dict(headers or [])))
        return _Future()

    def flush(self, timeout: float | None = None) -> None:
        pass

    def records(self, topic: str) -> list[tuple[int, Any]]:
        return [(p, r) for t, p, v, _ in self.sent if t == topic for r in decode_batch(v)]


class _Consumer:
    def __init__(self, partitions: set[TopicPartition], ends: dict[TopicPartition, int],
                 committed: dict[TopicPartition, OffsetAndMetadata] | None = None) -> None:
        self.partitions, self.ends, self._committed = partitions, ends, committed or {}
        self.reachable = True
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.partitions)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def committed(self, tp: TopicPartition, metadata: bool = False,
                  timeout_ms: int | None = None) -> OffsetAndMetadata | None:
        return self._committed.get(tp)

    def end_offsets(self, tps: list[TopicPartition], timeout_ms: int | None = None
                    ) -> dict[TopicPartition, int]:
        if not self.reachable:
            raise KafkaTimeoutError("no answer")
        return {tp: self.ends[tp] for tp in tps}

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return 0

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata],
               timeout_ms: int | None = None) -> None:
        assert timeout_ms is not None, "a commit must not hold the loop for a whole outage"
        self.commits.append(offsets)


def _prediction(offset: int, t: float) -> _Message:
    return _Message(offset, orjson.dumps({"request_id": f"r{offset}", "time": t, "score": 0.5}))


def _outcome(offset: int, t: float) -> _Message:
    return _Message(offset, orjson.dumps({"request_id": f"r{offset}", "time": t,
                                          "outcome": "click"}))


def _stage(consumer: _Consumer, producer: _Producer, idle_after: float = 30.0) -> Repartitioner:
    counters: Counter[str] = Counter()
    old_times = {"counters": counters, "min_time": None}  # these tests use times like 100.0
    routes = [Route("p", "p.rekeyed", Decoder("prediction", FieldMap(), **old_times)),
              Route("o", "o.rekeyed", Decoder("outcome", FieldMap(), **old_times))]
    stage = Repartitioner({}, "g", routes, "dlq", counters,
                          time_rules=TimeRules(lateness=5.0, votes=1, idle_after=idle_after))
    stage._dead_letters = DeadLetterSink(producer, "dlq", counters)  # type: ignore[arg-type]
    stage._progress = BrokerProgress(consumer, "test")  # type: ignore[arg-type]
    stage._progress.reachable_since = -math.inf  # the broker was never away
    return stage


def test_marks_follow_the_records_they_cover_into_every_internal_partition() -> None:
    tp = TopicPartition("p", 0)
    consumer, producer = _Consumer({tp}, {tp: 3}), _Producer()
    stage = _stage(consumer, producer)
    stage._take(consumer, tp, [_prediction(i, 100.0 + i) for i in range(3)], 0.0)  # type: ignore[arg-type]
    stage._flush_buckets(producer)  # type: ignore[arg-type]
    stage._send_marks(producer, consumer, 0.0)  # type: ignore[arg-type]
    records = producer.records("p.rekeyed")
    marks = [(p, r) for p, r in records if type(r) is SourceMark]
    assert sorted(p for p, _ in marks) == [0, 1, 2], "a mark goes to every internal partition"
    assert all(r == SourceMark("p", 0, 102.0, False) for _, r in marks)
    for partition in range(3):
        kinds = [type(r) for p, r in records if p == partition]
        assert kinds[-1] is SourceMark and kinds.count(SourceMark) == 1, \
            "the mark comes after the partition's records"
    assert sorted(r.join_id for _, r in records if type(r) is Prediction) == ["r0", "r1", "r2"]
    stage._send_marks(producer, consumer, 0.5)  # type: ignore[arg-type]
    assert len(producer.records("p.rekeyed")) == len(records), "an unchanged mark is not resent"


def test_late_records_become_dead_letters_or_late_outcomes() -> None:
    tp_p, tp_o = TopicPartition("p", 0), TopicPartition("o", 0)
    consumer, producer = _Consumer({tp_p, tp_o}, {tp_p: 2, tp_o: 2}), _Producer()
    stage = _stage(consumer, producer)
    stage._take(consumer, tp_p, [_prediction(0, 1000.0), _prediction(1, 900.0)], 0.0)  # type: ignore[arg-type]
    stage._take(consumer, tp_o, [_outcome(0, 1000.0), _outcome(1, 994.0)], 0.0)  # type: ignore[arg-type]
    stage._flush_buckets(producer)  # type: ignore[arg-type]
    letters = [h for t, _, _, h in producer.sent if t == "dlq"]
    assert [h["loglabel.reason"] for h in letters] == [b"late_prediction"]
    assert b"100.0 s behind" in letters[0]["loglabel.detail"]
    outcomes = [r for _, r in producer.records("o.rekeyed")]
    assert [(type(r), getattr(r, "outcome", r).join_id) for r in outcomes] == \
        [(Outcome, "r0"), (LateOutcome, "r1")], "994 is within 1000 - 5? no: late"
    assert stage.counters["late_predictions"] == 1


def test_the_frontier_is_committed_with_the_offset_and_restored_from_it() -> None:
    tp = TopicPartition("p", 0)
    consumer, producer = _Consumer({tp}, {tp: 2}), _Producer()
    stage = _stage(consumer, producer)
    stage._take(consumer, tp, [_prediction(0, 500.0), _prediction(1, 510.0)], 0.0)  # type: ignore[arg-type]
    stage._commit(producer, consumer)  # type: ignore[arg-type]
    committed = consumer.commits[-1][tp]
    assert committed.offset == 2 and orjson.loads(committed.metadata) == {"top": [510.0]}
    # the next owner replays from offset 2 and judges lateness as the first one would
    after = _Consumer({tp}, {tp: 3}, {tp: committed})
    producer2 = _Producer()
    stage2 = _stage(after, producer2)
    stage2._take(after, tp, [_prediction(2, 400.0)], 0.0)  # type: ignore[arg-type]
    stage2._flush_buckets(producer2)  # type: ignore[arg-type]
    assert [h["loglabel.reason"] for t, _, _, h in producer2.sent if t == "dlq"] == \
        [b"late_prediction"]


class _AwayProducer(_Producer):
    """A producer whose broker does not acknowledge anything until ``back``."""

    def __init__(self) -> None:
        super().__init__()
        self.back = False
        self.waits: list[float | None] = []

    def flush(self, timeout: float | None = None) -> None:
        self.waits.append(timeout)
        if not self.back:
            raise KafkaTimeoutError("Timeout waiting for future")


def test_raw_offsets_wait_until_the_records_they_cover_are_acknowledged() -> None:
    tp = TopicPartition("p", 0)
    consumer, producer = _Consumer({tp}, {tp: 2}), _AwayProducer()
    stage = _stage(consumer, producer)
    stage._take(consumer, tp, [_prediction(0, 500.0), _prediction(1, 510.0)], 0.0)  # type: ignore[arg-type]
    stage._flush_buckets(producer)  # type: ignore[arg-type]
    for _ in range(2):  # the broker is away for two rounds: nothing committed, no raise
        stage._commit(producer, consumer)  # type: ignore[arg-type]
    assert consumer.commits == []
    assert stage.counters["ingest_commits_deferred"] == 2
    assert all(w is not None and w <= 5.0 for w in producer.waits)  # the loop goes on
    with pytest.raises(NotYetAcknowledged):  # the commit before exiting does not defer
        stage._commit(producer, consumer, final=True)  # type: ignore[arg-type]
    producer.back = True
    stage._commit(producer, consumer)  # type: ignore[arg-type]
    assert [c[tp].offset for c in consumer.commits] == [2]


def test_a_quiet_partition_advances_only_when_the_broker_confirms_it_caught_up() -> None:
    tp, empty = TopicPartition("p", 0), TopicPartition("o", 0)
    consumer, producer = _Consumer({tp, empty}, {tp: 1, empty: 0}), _Producer()
    stage = _stage(consumer, producer, idle_after=10.0)
    stage._clock.assigned({tp, empty}, 0.0)
    stage._take(consumer, tp, [_prediction(0, 100.0)], 0.0)  # type: ignore[arg-type]
    stage._next[empty] = 0
    consumer.reachable = False
    stage._confirm(consumer, 40.0)  # type: ignore[arg-type]
    stage._send_marks(producer, consumer, 40.0)  # type: ignore[arg-type]
    marks = {(r.topic, r.mark, r.idle) for _, r in producer.records("p.rekeyed")
             + producer.records("o.rekeyed") if type(r) is SourceMark}
    assert marks == {("p", 100.0, False), ("o", -math.inf, False)}, "an outage is not idleness"
    consumer.reachable = True
    stage._confirm(consumer, 41.0)  # type: ignore[arg-type]  # the broker is back ...
    back = stage._progress.reachable_since
    assert stage._idle_at == {}, "... and quiet time counts from its return, not before"
    stage._confirm(consumer, back + 11.0)  # type: ignore[arg-type]
    stage._send_marks(producer, consumer, back + 11.0)  # type: ignore[arg-type]
    marks = {(r.topic, r.mark, r.idle) for _, r in producer.records("p.rekeyed")
             + producer.records("o.rekeyed") if type(r) is SourceMark}
    assert ("p", 111.0, True) in marks, "its frontier plus the 11 s quiet since the outage"
    assert ("o", -math.inf, True) in marks, "empty and caught up: holds nobody back"


def test_unread_input_is_not_idleness() -> None:
    tp = TopicPartition("p", 0)
    consumer, producer = _Consumer({tp}, {tp: 50}), _Producer()
    stage = _stage(consumer, producer, idle_after=10.0)
    stage._take(consumer, tp, [_prediction(0, 100.0)], 0.0)  # type: ignore[arg-type]
    stage._confirm(consumer, 70.0)  # type: ignore[arg-type]
    assert stage._idle_at == {}
    assert stage.counters["ingest_stalls"] == 1, "unread input and no progress is a stall"


def test_batches_are_split_below_the_size_limit_and_keep_every_record() -> None:
    tp = TopicPartition("p", 0)
    consumer, producer = _Consumer({tp}, {tp: 300}), _Producer()
    stage = _stage(consumer, producer)
    stage.max_batch_bytes = 2_000
    stage._take(consumer, tp, [_prediction(i, 100.0 + i) for i in range(300)], 0.0)  # type: ignore[arg-type]
    stage._flush_buckets(producer)  # type: ignore[arg-type]
    assert all(len(value) <= 2_000 for _, _, value, _ in producer.sent)
    assert sorted(r.join_id for _, r in producer.records("p.rekeyed")) == \
        sorted(f"r{i}" for i in range(300))


def test_revoked_partitions_are_forgotten() -> None:
    tp0, tp1 = TopicPartition("p", 0), TopicPartition("p", 1)
    consumer, producer = _Consumer({tp0, tp1}, {tp0: 2, tp1: 1}), _Producer()
    stage = _stage(consumer, producer)
    stage._take(consumer, tp0, [_prediction(0, 100.0), _prediction(1, 101.0)], 0.0)  # type: ignore[arg-type]
    stage._take(consumer, tp1, [_prediction(2, 100.5)], 0.0)  # type: ignore[arg-type]
    stage.forget({tp0})
    assert tp0 not in stage._next and tp0 not in stage._frontiers
    stage._commit(producer, consumer)  # type: ignore[arg-type]
    assert set(consumer.commits[-1]) == {tp1}, "no offset of a revoked partition is committed"


@pytest.mark.parametrize("votes", [1, 3])
def test_one_record_far_ahead_moves_the_clock_only_with_one_vote(votes: int) -> None:
    rules = TimeRules(lateness=5.0, votes=votes)
    frontier = rules.frontier()
    for t in [100.0, 101.0, 102.0, 3000.0, 103.0]:
        frontier.observe(t)
    assert frontier.mark == (3000.0 if votes == 1 else 102.0)
