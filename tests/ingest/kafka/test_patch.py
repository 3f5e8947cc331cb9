"""kafka-python's socket reader must hand over the bytes that came before the peer's close."""

from __future__ import annotations

import socket

import kafka.errors
from kafka.net.transport import KafkaTCPTransport

from ingest.kafka import patch as kafka_fix

kafka_fix.install()  # as ingest.kafka.topics and labeler.ops.health do on import


def reader_with_answer_then_close() -> tuple[KafkaTCPTransport, socket.socket]:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.sendall(b"\x00\x00\x00\x04last")  # an answer ...
    broker.close()                           # ... and the hang-up right behind it
    return KafkaTCPTransport(None, ours), ours


def test_bytes_before_close_are_delivered_and_the_close_follows() -> None:
    transport, sock = reader_with_answer_then_close()
    try:
        assert transport._sock_recv() == (b"\x00\x00\x00\x04last", None)
        data, error = transport._sock_recv()
        assert data == b""
        assert isinstance(error, kafka.errors.KafkaConnectionError)
    finally:
        sock.close()


def test_the_unpatched_reader_loses_them() -> None:
    # The reason for the fix: the original returns the answer and the error together,
    # and kafka-python aborts on the error without passing the answer on.
    original = KafkaTCPTransport._sock_recv.__wrapped__
    transport, sock = reader_with_answer_then_close()
    try:
        data, error = original(transport)
        assert data == b"\x00\x00\x00\x04last"
        assert error is not None
    finally:
        sock.close()


def test_install_is_idempotent_and_names_both_transports() -> None:
    before = KafkaTCPTransport._sock_recv
    assert kafka_fix.install() == ["KafkaTCPTransport", "KafkaSSLTransport"]
    assert KafkaTCPTransport._sock_recv is before
