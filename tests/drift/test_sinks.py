"""Drift sinks: JSON log line, Kafka topic, Fluentd forward protocol, counters."""

import json
import logging
import socket
import threading
import uuid

import msgpack
import pytest

from drift.events import DriftEvent
from drift.settings import DriftSettings, FluentdSettings, KafkaSinkSettings
from drift.sinks import (
    DriftCounters,
    FanoutSink,
    FluentdSink,
    KafkaSink,
    LogSink,
    build_sinks,
    encode,
)


def event(model: str = "ctr", kind: str = "data") -> DriftEvent:
    return DriftEvent(
        model=model,
        kind=kind,  # type: ignore[arg-type]
        stream="mean",
        feature="price",
        detector="PageHinkley",
        params={"delta": 1.0},
        statistic_name="cumulative_deviation",
        statistic=9.0,
        threshold=8.0,
        event_time=1718000000.0,
        source="raw[0]@5",
        reference={"mean": 1.0},
        current={"mean": 2.0},
    )


def test_log_sink_writes_one_json_line(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="loglabel.drift")
    LogSink().emit(event())
    (record,) = caplog.records
    payload = json.loads(record.getMessage())
    assert payload["event"] == "drift" and payload["feature"] == "price"
    assert record.drift == payload
    assert "\n" not in record.getMessage()


def test_counters_and_fanout_isolate_a_failing_sink(caplog) -> None:
    class Broken:
        def emit(self, e):
            raise RuntimeError("disk full")

        def flush(self):
            pass

        def close(self):
            pass

    seen = []
    fan = FanoutSink([Broken()], DriftCounters(lambda kind, model: seen.append((kind, model))))
    fan.emit_all([event(), event(kind="concept"), event("cvr")])
    assert fan.errors == 3
    assert fan.counters.by_kind == {"data": 2, "concept": 1}
    assert fan.counters.by_model[("cvr", "data")] == 1
    assert seen[-1] == ("data", "cvr")


class _Listener:
    """A TCP server that collects what a Fluentd client sends (forward protocol)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.data = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while chunk := conn.recv(65536):
                self.data += chunk


def test_fluentd_sink_speaks_the_forward_protocol() -> None:
    listener = _Listener()
    sink = FluentdSink(host="127.0.0.1", port=listener.port, tag="loglabel", label="drift")
    sink.emit(event())
    sink.close()
    listener.thread.join(timeout=5)
    listener.sock.close()
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(listener.data)
    (tag, _time, record), *_ = list(unpacker)
    assert tag == "loglabel.drift"
    assert record["event"] == "drift" and record["model"] == "ctr"
    assert sink.sent == 1 and sink.failed == 0


def test_fluentd_sink_counts_failures_instead_of_raising() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    sink = FluentdSink(host="127.0.0.1", port=port, timeout=0.5)
    sink.emit(event())
    assert sink.failed == 1 and sink.last_error is not None
    sink.close()


def test_build_sinks_follows_the_settings() -> None:
    s = DriftSettings(kafka=KafkaSinkSettings(enabled=True), fluentd=FluentdSettings())
    assert [type(x).__name__ for x in build_sinks(s).sinks] == ["DriftCounters", "LogSink"]


@pytest.mark.kafka
def test_kafka_sink_publishes_json_keyed_by_model(kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"loglabel-drift-test-{uuid.uuid4().hex}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        sink = KafkaSink(producer, topic)
        sink.emit(event("ctr"))
        sink.emit(event("cvr", kind="concept"))
        sink.flush()
        assert (sink.sent, sink.failed) == (2, 0)
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=10_000,
        )
        got = []
        for message in consumer:
            got.append((message.key, json.loads(message.value)))
            if len(got) == 2:
                break
        consumer.close()
        assert [(k, v["kind"]) for k, v in got] == [(b"ctr", "data"), (b"cvr", "concept")]
        assert got[0][1] == json.loads(encode(event("ctr")))
    finally:
        producer.close()
        admin.delete_topics([topic])
        admin.close()
