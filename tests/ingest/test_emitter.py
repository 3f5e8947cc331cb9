"""The emitter SDK against a local TCP listener that speaks the Fluentd forward protocol.

No Fluentd is needed: the listener decodes "Message" mode entries
``[tag, time, record]`` with msgpack, EventTime (ExtType 0, ``>II``) included.
Fluentd being down is a bound port that does not listen (connection refused).
"""

from __future__ import annotations

import dataclasses
import math
import queue
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgpack
import numpy as np
import orjson
import pytest
from fluent import asyncsender

from ingest.emitter import (
    EmitterConfig,
    EmitterStats,
    FluentEmitter,
    OutcomeLogger,
    PredictionLogger,
)
from ingest.records import Outcome, Prediction
from ingest.wire.decode import Decoder
from ingest.wire.mapping import JOIN_ID_SEPARATOR, FieldMap

pytestmark = pytest.mark.timeout(60)

T0 = 1718000000.123456


class Stamp(NamedTuple):
    """A decoded Fluentd EventTime."""

    seconds: int
    nanos: int

    @property
    def epoch(self) -> float:
        return self.seconds + self.nanos / 1e9


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0:
        return Stamp(*struct.unpack(">II", data))
    return msgpack.ExtType(code, data)


def decode_entries(data: bytes) -> list[tuple[str, Any, dict[str, Any]]]:
    unpacker = msgpack.Unpacker(ext_hook=_ext_hook, raw=False)
    unpacker.feed(data)
    return [(tag, stamp, record) for tag, stamp, record in unpacker]


class ForwardListener:
    """Accepts forward-protocol connections on 127.0.0.1 and queues every decoded entry."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.entries: queue.Queue[tuple[str, Any, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def listen(self) -> None:
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self._spawn(self._accept_loop)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._read, conn)

    def _read(self, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(ext_hook=_ext_hook, raw=False)
        conn.settimeout(0.05)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                unpacker.feed(data)
                for tag, stamp, record in unpacker:
                    self.entries.put((tag, stamp, record))

    def take(self, n: int) -> list[tuple[str, Any, dict[str, Any]]]:
        return [self.entries.get(timeout=10) for _ in range(n)]

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def fluentd() -> Iterator[ForwardListener]:
    listener = ForwardListener()
    listener.listen()
    yield listener
    listener.close()


@pytest.fixture
def down_port() -> Iterator[int]:
    """A port that refuses connections, held so that nothing else takes it."""
    listener = ForwardListener()
    yield listener.port
    listener.close()


def sync(port: int, **kwargs: Any) -> EmitterConfig:
    return EmitterConfig(host="127.0.0.1", port=port, asynchronous=False, **kwargs)


def asyn(port: int, **kwargs: Any) -> EmitterConfig:
    return EmitterConfig(host="127.0.0.1", port=port, asynchronous=True, **kwargs)


def fluentd_kafka_value(tag: str, stamp: Stamp, record: dict[str, Any]) -> bytes:
    """What out_kafka2 writes with ``<format> @type json`` and ``<inject>`` tag/time float."""
    micros = stamp.seconds * 1_000_000 + stamp.nanos // 1000
    return orjson.dumps({**record, "tag": tag, "time": micros / 1e6})


def assert_settled(stats: EmitterStats) -> None:
    assert stats.pending == 0
    assert stats.emitted == stats.sent + stats.overflowed + stats.dropped


# --- the happy path: tag, time and record shape ------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_prediction_arrives_with_tag_event_time_and_record_shape(
        fluentd: ForwardListener, asynchronous: bool) -> None:
    config = EmitterConfig(host="127.0.0.1", port=fluentd.port, asynchronous=asynchronous)
    logger = PredictionLogger("ctr", "3", config)
    assert logger.log("r1", {"price": 12.5, "country": "DE"}, 0.73, event_time=T0) is True
    stats = logger.close()

    [(tag, stamp, record)] = fluentd.take(1)
    assert tag == "ml.prediction"
    assert stamp == Stamp(1718000000, 123456000)
    assert record == {"request_id": "r1", "time": T0, "model": "ctr", "model_version": "3",
                      "features": {"price": 12.5, "country": "DE"}, "score": 0.73}
    assert (stats.emitted, stats.sent, stats.send_failures) == (1, 1, 0)
    assert stats.sent_bytes > 0
    assert_settled(stats)


def test_default_time_is_now_with_a_subsecond_event_time(fluentd: ForwardListener) -> None:
    before = time.time()
    with OutcomeLogger(sync(fluentd.port)) as logger:
        logger.log("r1", "click")
    after = time.time()

    [(_, stamp, record)] = fluentd.take(1)
    assert isinstance(stamp, Stamp), "nanosecond_precision sends an EventTime, not an int"
    assert isinstance(record["time"], float)
    assert before <= record["time"] <= after
    assert abs(stamp.epoch - record["time"]) < 1e-6


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_outcomes_leave_out_unset_value_and_outcome_id(
        fluentd: ForwardListener, asynchronous: bool) -> None:
    config = EmitterConfig(host="127.0.0.1", port=fluentd.port, asynchronous=asynchronous)
    with OutcomeLogger(config) as logger:
        logger.log("r1", "click", event_time=T0)
        logger.log(42, "purchase", 19.99, outcome_id="o-9", event_time=T0 + 1)

    entries = fluentd.take(2)
    assert [tag for tag, _, _ in entries] == ["ml.outcome", "ml.outcome"]
    assert [record for _, _, record in entries] == [
        {"request_id": "r1", "type": "click", "time": T0},
        {"request_id": "42", "type": "purchase", "value": 19.99, "outcome_id": "o-9",
         "time": T0 + 1},
    ]


def test_emitted_records_decode_with_the_default_field_map(fluentd: ForwardListener) -> None:
    with PredictionLogger("ctr", "3", sync(fluentd.port)) as predictions:
        predictions.log("r1", {"price": 12.5}, 0.73, event_time=T0)
    with OutcomeLogger(sync(fluentd.port)) as outcomes:
        outcomes.log("r1", "purchase", 5.0, outcome_id="o1", event_time=T0 + 2)
    # two connections: the listener may see them in either order
    (o_tag, o_stamp, o_rec), (p_tag, p_stamp, p_rec) = sorted(fluentd.take(2),
                                                             key=lambda e: e[0])
    assert (p_tag, o_tag) == ("ml.prediction", "ml.outcome")

    prediction = Decoder("prediction", FieldMap()).decode(
        fluentd_kafka_value(p_tag, p_stamp, p_rec))
    outcome = Decoder("outcome", FieldMap()).decode(fluentd_kafka_value(o_tag, o_stamp, o_rec))

    assert prediction == Prediction("r1", T0, "ctr", "3", {"price": 12.5}, {"score": 0.73})
    assert outcome == Outcome("r1", T0 + 2, "purchase", 5.0, "o1")


def test_tag_prefix_composite_id_and_prediction_fields(fluentd: ForwardListener) -> None:
    config = sync(fluentd.port, tag_prefix="shop")
    with PredictionLogger("rank", config=config) as logger:
        logger.log("r1", {}, {"score": 0.4, "rank": 2}, extra={"item_id": "i7"}, event_time=T0)
    [(tag, stamp, record)] = fluentd.take(1)

    assert tag == "shop.prediction"
    assert "model_version" not in record
    assert (record["item_id"], record["score"], record["rank"]) == ("i7", 0.4, 2)
    fields = FieldMap(join_id=("request_id", "item_id"), prediction=("score", "rank"))
    decoded = Decoder("prediction", fields).decode(fluentd_kafka_value(tag, stamp, record))
    assert isinstance(decoded, Prediction)
    assert decoded.join_id == f"r1{JOIN_ID_SEPARATOR}i7"
    assert decoded.prediction == {"score": 0.4, "rank": 2}


def test_numpy_values_are_sent_as_plain_numbers(fluentd: ForwardListener) -> None:
    with PredictionLogger("ctr", config=sync(fluentd.port)) as logger:
        logger.log("r1", {"a": np.float32(1.5), "b": np.int64(3), "v": np.arange(2)},
                   np.float32(0.25))
    [(_, _, record)] = fluentd.take(1)
    assert record["features"] == {"a": 1.5, "b": 3, "v": [0, 1]}
    assert record["score"] == 0.25


# --- bad input: counted, never raised ---------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_unserialisable_record_is_rejected_and_the_next_one_still_goes(
        fluentd: ForwardListener, asynchronous: bool) -> None:
    config = EmitterConfig(host="127.0.0.1", port=fluentd.port, asynchronous=asynchronous)
    logger = PredictionLogger("ctr", config=config)
    assert logger.log("bad", {"x": object()}, 0.1) is False
    assert logger.log("good", {"x": 1}, 0.2) is True
    stats = logger.close()

    [(_, _, record)] = fluentd.take(1)
    assert record["request_id"] == "good"
    assert (stats.rejected, stats.emitted, stats.sent) == (1, 1, 1)
    assert stats.last_error is not None and "object" in stats.last_error


@pytest.mark.parametrize("bad", [
    {"extra": {"time": 5}},
    {"extra": {"request_id": "other"}},
    {"event_time": math.nan},
    {"event_time": True},
    {"event_time": -1.0},
])
def test_reserved_fields_and_bad_times_are_rejected(down_port: int, bad: dict[str, Any]) -> None:
    logger = PredictionLogger("ctr", config=sync(down_port))
    assert logger.log("r1", {}, 0.5, **bad) is False
    stats = logger.close()
    assert (stats.rejected, stats.emitted, stats.send_failures) == (1, 0, 0)


def test_emit_after_close_is_dropped_not_raised(fluentd: ForwardListener) -> None:
    logger = OutcomeLogger(asyn(fluentd.port))
    logger.close()
    assert logger.log("r1", "click") is False
    assert logger.stats.dropped == 1
    assert_settled(logger.stats)


def test_stats_is_a_frozen_snapshot(down_port: int) -> None:
    logger = OutcomeLogger(sync(down_port))
    before = logger.stats
    logger.log("r1", "click")
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.emitted = 5  # type: ignore[misc]
    assert before.emitted == 0
    assert logger.close().emitted == 1


def test_config_rejects_unbounded_settings() -> None:
    with pytest.raises(ValueError, match="timeout"):
        EmitterConfig(timeout=0)
    with pytest.raises(ValueError, match="queue_maxsize"):
        EmitterConfig(queue_maxsize=0)


# --- Fluentd down --------------------------------------------------------------------------


def test_sync_fluentd_down_buffers_then_hands_the_events_to_on_discard(down_port: int) -> None:
    discarded: list[bytes] = []
    config = sync(down_port, retry_interval=0, on_discard=discarded.append)
    logger = PredictionLogger("ctr", config=config)
    results = [logger.log(f"r{i}", {}, 0.5) for i in range(3)]
    during = logger.stats
    final = logger.close()

    assert results == [False, False, False]
    assert (during.emitted, during.sent, during.pending, during.send_failures) == (3, 0, 3, 3)
    assert (final.overflowed, final.lost) == (3, 3)
    assert_settled(final)
    spooled = [record["request_id"] for data in discarded for _, _, record in decode_entries(data)]
    assert spooled == ["r0", "r1", "r2"]
    assert final.overflowed_bytes == sum(map(len, discarded))


def test_sync_buffer_past_bufmax_is_counted_as_overflow(down_port: int) -> None:
    logger = OutcomeLogger(sync(down_port, retry_interval=0, bufmax=1))
    for i in range(5):
        logger.log(f"r{i}", "click")
    stats = logger.stats
    logger.close()

    assert stats.overflowed >= 1
    assert stats.overflowed + stats.pending == 5
    assert stats.overflowed_bytes > 0


def test_retry_interval_limits_connection_attempts(down_port: int) -> None:
    logger = OutcomeLogger(sync(down_port, retry_interval=3600))
    for i in range(5):
        logger.log(f"r{i}", "click")
    during = logger.stats
    final = logger.close()

    assert (during.send_failures, during.pending) == (1, 5)
    assert final.send_failures == 2, "close makes one fresh attempt"
    assert final.overflowed == 5


def test_sync_sends_the_backlog_once_fluentd_is_up() -> None:
    fluentd = ForwardListener()  # bound, not yet listening: refuses connections
    try:
        logger = OutcomeLogger(sync(fluentd.port, retry_interval=0))
        assert logger.log("r1", "click") is False
        assert logger.log("r2", "click") is False
        fluentd.listen()
        assert logger.log("r3", "click") is True
        stats = logger.close()
        assert [record["request_id"] for _, _, record in fluentd.take(3)] == ["r1", "r2", "r3"]
        assert (stats.sent, stats.send_failures, stats.lost) == (3, 2, 0)
        assert_settled(stats)
    finally:
        fluentd.close()


def test_async_fluentd_down_never_raises_and_accounts_for_every_event(down_port: int) -> None:
    logger = PredictionLogger("ctr", config=asyn(down_port, queue_maxsize=8))
    results = [logger.log(f"r{i}", {"x": i}, 0.5) for i in range(50)]
    stats = logger.close()

    assert all(results), "async log only enqueues"
    assert (stats.emitted, stats.sent) == (50, 0)
    assert stats.overflowed + stats.dropped == 50
    assert_settled(stats)


def test_async_full_queue_drops_the_oldest_and_counts_them(down_port: int) -> None:
    """The worker thread is held inside on_discard, so the queue fills deterministically."""
    worker_blocked, release = threading.Event(), threading.Event()
    discarded: list[bytes] = []

    def on_discard(data: bytes) -> None:
        discarded.append(data)
        if len(discarded) == 1:  # first call: the worker's buffer overflow
            worker_blocked.set()
            release.wait(timeout=10)

    config = asyn(down_port, retry_interval=0, bufmax=1, queue_maxsize=3, on_discard=on_discard)
    logger = OutcomeLogger(config)
    logger.log("e1", "click")
    logger.log("e2", "click")  # the worker overflows e1+e2 and blocks in on_discard
    assert worker_blocked.wait(timeout=10)
    for i in range(3, 11):
        assert logger.log(f"e{i}", "click") is True
    during = logger.stats
    release.set()
    final = logger.close()

    assert (during.dropped, during.pending) == (5, 3)
    dropped_ids = [record["request_id"] for data in discarded[1:6]
                   for _, _, record in decode_entries(data)]
    assert dropped_ids == ["e3", "e4", "e5", "e6", "e7"]
    assert (final.emitted, final.sent, final.dropped, final.overflowed) == (10, 0, 5, 5)
    all_ids = {record["request_id"] for data in discarded for _, _, record in decode_entries(data)}
    assert all_ids == {f"e{i}" for i in range(1, 11)}


def test_async_close_without_flush_counts_the_queue_as_dropped(down_port: int) -> None:
    worker_blocked, release = threading.Event(), threading.Event()

    def on_discard(data: bytes) -> None:
        if not worker_blocked.is_set():
            worker_blocked.set()
            release.wait(timeout=10)

    logger = OutcomeLogger(asyn(down_port, retry_interval=0, bufmax=1, on_discard=on_discard))
    logger.log("e1", "click")
    logger.log("e2", "click")
    assert worker_blocked.wait(timeout=10)
    for i in range(3, 7):
        logger.log(f"e{i}", "click")
    # close(flush=False) empties the queue, then queues fluent-logger's end marker and
    # joins the worker: the worker is let go only once that marker is in the queue, so
    # what it finds next is the marker, never an event
    sender_queue = logger.emitter._sender._queue
    real_put = sender_queue.put

    def put(item: object, *args: Any, **kwargs: Any) -> None:
        real_put(item, *args, **kwargs)
        if item is asyncsender._TOMBSTONE:
            release.set()

    sender_queue.put = put
    stats = logger.emitter.close(flush=False)

    assert release.is_set(), "close() never queued the end marker"
    assert stats.overflowed == 2
    assert stats.dropped == 4
    assert_settled(stats)


def test_a_failing_on_discard_hook_is_contained(down_port: int) -> None:
    def on_discard(data: bytes) -> None:
        raise RuntimeError("spool full")

    logger = FluentEmitter("x", sync(down_port, retry_interval=0, bufmax=1, on_discard=on_discard))
    for i in range(4):
        assert logger.emit({"request_id": f"r{i}"}) is False
    stats = logger.close()
    assert stats.overflowed == 4
    assert stats.last_error is not None and "spool full" in stats.last_error
