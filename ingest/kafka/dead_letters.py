"""Dead letters out, and knowing that every send the offsets cover was acknowledged."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from ingest.errors import IngestError
from ingest.events import log_event
from ingest.records import DeadLetter
from ingest.wire.pii import RedactedValue


class DeliveryFailed(IngestError):
    """A record the offsets would cover was not acknowledged by the broker.

    ``KafkaProducer.flush()`` waits for sends but does not raise for failed
    ones; ``DeliveryTracker`` remembers failures so that no offset is committed
    past a lost record.
    """


# How long a commit in a running loop waits for a batch of the producer's to be
# acknowledged: any longer would hold the loop (its status lines, its outage probes)
# while the broker is away. kafka-python's flush waits that long for each batch in
# turn, so a broker that acknowledges batches slowly, one by one, can hold it longer;
# a broker that is away holds it once. A last commit before exiting waits up to
# FINAL_FLUSH_TIMEOUT_S per batch.
FLUSH_TIMEOUT_S = 5.0
FINAL_FLUSH_TIMEOUT_S = 60.0
# How long the producers of the running stages (re-keyed records, marks, dead letters,
# drift events) keep retrying a send through an outage before it fails (kafka-python's
# default is 2 min). A failed send stops the stage: nothing is committed past it.
DELIVERY_TIMEOUT_MS = 300_000


class NotYetAcknowledged(IngestError):
    """A batch of sends was not acknowledged within the flush's wait (the broker is away).

    Nothing that covers those sends may be committed yet; the caller defers its
    commit and flushes again at the next one. kafka-python keeps retrying the sends
    until ``DELIVERY_TIMEOUT_MS``; a watched send that fails then is
    ``DeliveryFailed`` at the next ``DeliveryTracker.check``.
    """


def flush(producer: KafkaProducer, timeout: float) -> None:
    """Wait for every send, up to ``timeout`` seconds for each batch still in flight;
    ``NotYetAcknowledged`` if one is not acknowledged in that time."""
    try:
        producer.flush(timeout=timeout)
    except KafkaTimeoutError as exc:
        raise NotYetAcknowledged(f"sends not acknowledged within {timeout:g} s") from exc


class CommitGate:
    """Whether a commit round may go ahead: the producer's sends it covers are all
    acknowledged. While the broker leaves a batch unacknowledged the round is
    deferred: counted in ``counters[counter]``, logged as ``event`` once per outage
    (the first deferral after a round that went ahead). A ``final`` round (the last
    before exiting) waits ``FINAL_FLUSH_TIMEOUT_S`` and raises ``NotYetAcknowledged``."""

    def __init__(self, counters: Counter[str], counter: str, event: str) -> None:
        self.counters = counters
        self.counter = counter
        self.event = event
        self.deferring = False  # the last round was deferred

    def open(self, producer: KafkaProducer, final: bool = False, **fields: Any) -> bool:
        """Flush ``producer``; True when the round may commit, False when it waits.
        ``fields`` go into the deferral's log line."""
        try:
            flush(producer, FINAL_FLUSH_TIMEOUT_S if final else FLUSH_TIMEOUT_S)
        except NotYetAcknowledged as exc:
            if final:
                raise
            self.counters[self.counter] += 1
            if not self.deferring:
                log_event(self.event, logging.WARNING, error=str(exc), **fields)
            self.deferring = True
            return False
        self.deferring = False
        return True


class DeliveryTracker:
    """Counts failed sends through the futures' errbacks (called on the producer's
    I/O thread)."""

    def __init__(self) -> None:
        self.failed = 0
        self.last_error: BaseException | None = None

    def watch(self, future: Any) -> None:
        future.add_errback(self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        self.last_error = exc

    def check(self, what: str) -> None:
        """Raise ``DeliveryFailed`` if any watched send failed (call after ``flush()``)."""
        if self.failed:
            raise DeliveryFailed(f"{self.failed} {what} not acknowledged by the broker: "
                                 f"{self.last_error}; offsets are not committed")


class DeadLetterSink:
    """Publishes dead letters: the original bytes, the reason in headers.

    Headers: ``loglabel.reason``, ``loglabel.detail``, ``loglabel.source.topic``,
    ``loglabel.source.partition``, ``loglabel.source.offset``. A value that a
    PII policy redacted (``ingest.wire.pii.RedactedValue``) adds ``loglabel.pii``
    (``redacted`` or ``withheld``) and ``loglabel.original.sha256``, and is
    sent without the message key, which may be a raw id. The caller must
    ``flush()`` before committing the offsets that the dead letters cover.
    """

    def __init__(self, producer: KafkaProducer, topic: str,
                 counters: Counter[str] | None = None) -> None:
        self.producer = producer
        self.topic = topic
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.delivery = DeliveryTracker()

    def send(self, letter: DeadLetter, key: bytes | None = None) -> None:
        headers = [
            ("loglabel.reason", letter.reason.encode()),
            ("loglabel.detail", letter.detail[:1000].encode()),
        ]
        if letter.source is not None:
            headers += [
                ("loglabel.source.topic", letter.source.topic.encode()),
                ("loglabel.source.partition", str(letter.source.partition).encode()),
                ("loglabel.source.offset", str(letter.source.offset).encode()),
            ]
        raw = letter.raw
        if isinstance(raw, RedactedValue):
            headers += [("loglabel.pii", raw.kind.encode()),
                        ("loglabel.original.sha256", raw.sha256.encode())]
            key = None
            raw = bytes(raw)  # plain bytes: some encoders refuse subclasses
        self.delivery.watch(self.producer.send(self.topic, value=raw, key=key, headers=headers))
        self.counters["dead_letters_sent"] += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every dead letter: ``DeliveryFailed`` if one was lost,
        ``NotYetAcknowledged`` if the broker has not answered within ``timeout``."""
        flush(self.producer, timeout)
        self.delivery.check("dead letters")
