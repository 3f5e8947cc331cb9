"""The hot path: a poll batch of one partition into its join.

With ``repartition = "always"`` the records are the ingest stage's: canonical
records, late outcomes and source marks. With ``"never"`` they are raw
forwarder messages, decoded here, with lateness judged by ``DirectInputs``.
Bad input becomes a dead letter with its reason; nothing stops the partition.
Runs on the worker thread (a part of ``Worker``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from ingest.kafka.dead_letters import DeadLetterSink
from ingest.records import DeadLetter, LateOutcome, Outcome, Prediction, SourceRef
from ingest.repartition.frontier import late_letter
from ingest.wire.batch import BatchDecoder
from ingest.wire.pii import PiiPolicy
from labeler.join.inputs import DirectInputs
from labeler.join.rules import JoinRules
from labeler.logs import log
from labeler.runtime.partitions import DriftObserver, OwnedPartition

if TYPE_CHECKING:
    from labeler.runtime.assignment import Restoring
from labeler.runtime.progress import InputProgress

DEAD_LETTER_LOGS = 10  # logged per reason per status interval; the rest are counted


class Intake:
    """The worker's reading of records (see the module docstring)."""

    rules: JoinRules
    counters: Counter[str]
    topics: tuple[str, str]
    decoders: dict[str, Any]
    columnar: bool  # decode raw poll batches as a whole (False: a row at a time)
    _batch_decoders: dict[str, BatchDecoder]
    repartitioned: bool
    partitions: dict[int, OwnedPartition]
    restoring: dict[int, Restoring]
    drift: DriftObserver | None
    pii: PiiPolicy | None
    dead_letters: DeadLetterSink | None
    _consumer: KafkaConsumer | None
    _progress: InputProgress | None
    _dead_letter_logs: Counter[str]
    _sources: Callable[[int], list[tuple[str, int]]]  # Assignment's
    _last_commit: float  # monotonic time of the last commit (Worker's)
    commit: Callable[[], None]  # Worker's

    def _process(self, batch: dict[TopicPartition, list[Any]], now: float,
                 flush_every: float | None = None) -> None:
        """Take a poll batch, a partition's messages at a time. With ``flush_every``, a
        commit that falls due while the batch is taken is made between two partitions'
        messages (each partition's state and offsets stand where its last message was
        taken), so rows labeled before the batch are not held for the rest of it."""
        progress = self._progress
        skipped = 0
        for tp, messages in batch.items():
            if flush_every is not None and time.monotonic() - self._last_commit >= flush_every:
                self.commit()
            part = self.partitions.get(tp.partition)
            if part is None:
                restoring = self.restoring.get(tp.partition)
                if restoring is not None:  # read again once restored (it seeks back)
                    restoring.skipped(tp.topic, messages[0].offset)
                # else revoked during this poll: the next owner reads it again
                skipped += len(messages)
                continue
            data = (self._take_internal(part, tp, messages) if self.repartitioned
                    else self._take_raw(part, tp, messages))
            part.offsets[tp.topic] = messages[-1].offset + 1
            part.dirty = True
            if progress is not None and data:  # marks alone are not input (--until-idle)
                progress.delivered(tp, now)
        self.counters["messages"] += sum(len(m) for m in batch.values()) - skipped

    def _take_internal(self, part: OwnedPartition, tp: TopicPartition, messages: list[Any]
                       ) -> bool:
        """Records of the ingest stage: canonical records, late outcomes, source marks.
        Returns whether any was more than a source mark."""
        data = False
        decode = self.decoders[tp.topic].decode_sourced
        join, drift = part.join, self.drift
        watched: list[Prediction] = []  # for drift, with their sources
        sources: list[SourceRef] = []
        for message in messages:
            decoded = decode(message.value)
            if type(decoded) is DeadLetter:
                self._dead_letter(decoded, SourceRef(tp.topic, tp.partition, message.offset),
                                  message.key)
                data = True
                continue
            origin, records = decoded
            if origin is not None:
                records = join.not_replayed(origin, records)
            for record in records:
                kind = type(record)
                if kind is Prediction:
                    join.add_prediction(record)
                    if drift is not None:
                        watched.append(record)
                        sources.append(SourceRef(tp.topic, tp.partition, message.offset))
                elif kind is Outcome:
                    join.add_outcome(record)
                elif kind is LateOutcome:
                    join.add_outcome(record.outcome, late=True)
                else:
                    join.watermark.update((record.topic, record.partition), record.mark,
                                          record.idle)
                    continue
                data = True
        if watched:
            drift.observe_predictions(watched, sources)  # type: ignore[union-attr]
        return data

    def _take_raw(self, part: OwnedPartition, tp: TopicPartition, messages: list[Any]) -> bool:
        """Raw messages (``repartition = "never"``): decode, judge lateness, join.

        The poll batch is decoded as a whole (``ingest.wire.batch``: the row decoder
        judges every row the fast path cannot vouch for); with ``columnar`` off each
        message goes through the row decoder, the reference path."""
        inputs, drift = part.inputs, self.drift
        if inputs is None:
            inputs = part.inputs = DirectInputs(part.join, *self._sources(part.index))
        is_prediction = tp.topic == self.topics[0]
        if not self.columnar:
            return self._take_raw_rows(inputs, is_prediction, tp, messages)
        batch = self._batch_decoder(tp.topic).decode([m.value for m in messages])
        letters = batch.letters
        waiting = 0  # the next dead letter to send, in its place among the records
        topic, partition = tp.topic, tp.partition
        take, outcome = inputs.prediction, inputs.outcome
        watched: list[Prediction] = []  # for drift, with their sources
        sources: list[SourceRef] = []
        for index, row in zip(batch.positions, batch.packed, strict=True):
            while waiting < len(letters) and letters[waiting][0] < index:
                self._raw_letter(tp, messages, *letters[waiting])
                waiting += 1
            if not is_prediction:
                outcome(Outcome(row[1], row[2], row[3], row[4], row[5]))
                continue
            record = Prediction(row[1], row[2], row[3], row[4], row[5], row[6])
            if not take(record, row):
                self._late_prediction(record, inputs.prediction_mark, tp, messages[index])
            elif drift is not None:
                watched.append(record)
                sources.append(SourceRef(topic, partition, messages[index].offset))
        for letter in letters[waiting:]:
            self._raw_letter(tp, messages, *letter)
        if watched:
            drift.observe_predictions(watched, sources)  # type: ignore[union-attr]
        return True

    def _raw_letter(self, tp: TopicPartition, messages: list[Any], index: int,
                    letter: DeadLetter) -> None:
        message = messages[index]
        self._dead_letter(letter, SourceRef(tp.topic, tp.partition, message.offset),
                          message.key)

    def _take_raw_rows(self, inputs: DirectInputs, is_prediction: bool, tp: TopicPartition,
                       messages: list[Any]) -> bool:
        """``_take_raw`` a row at a time, with the row decoder (the reference)."""
        decode = self.decoders[tp.topic].decode
        drift = self.drift
        for message in messages:
            record = decode(message.value)
            if type(record) is DeadLetter:
                self._dead_letter(record, SourceRef(tp.topic, tp.partition, message.offset),
                                  message.key)
            elif not is_prediction:
                inputs.outcome(record)
            elif not inputs.prediction(record):
                self._late_prediction(record, inputs.prediction_mark, tp, message)
            elif drift is not None:
                drift.observe_prediction(record,
                                         SourceRef(tp.topic, tp.partition, message.offset))
        return True

    def _batch_decoder(self, topic: str) -> BatchDecoder:
        decoder = self._batch_decoders.get(topic)
        if decoder is None:
            decoder = self._batch_decoders[topic] = BatchDecoder(self.decoders[topic])
        return decoder

    def _late_prediction(self, prediction: Prediction, mark: float, tp: TopicPartition,
                         message: Any) -> None:
        self._dead_letter(late_letter(prediction.event_time, mark, self.rules.lateness,
                                      message.value or b""),
                          SourceRef(tp.topic, tp.partition, message.offset), message.key)

    def _positions(self) -> dict[TopicPartition, int | None]:
        """The next offsets of every input partition this worker owns."""
        consumer = self._consumer
        if consumer is None:
            return {}
        return {tp: self._position(tp) for tp in consumer.assignment()
                if tp.partition in self.partitions}

    def _position(self, tp: TopicPartition) -> int | None:
        """The next offset this worker reads of ``tp`` (asks the consumer if unknown;
        ``None`` when it cannot say, e.g. while the broker is away)."""
        part = self.partitions.get(tp.partition)
        known = part.offsets.get(tp.topic) if part is not None else None
        if known is not None:
            return known
        if self._consumer is None:
            return None
        try:
            return self._consumer.position(tp, timeout_ms=5000)
        except (KafkaError, OSError):
            return None

    def _dead_letter(self, letter: DeadLetter, source: SourceRef, key: bytes | None) -> None:
        letter = replace(letter, source=source)
        if self.pii is not None:  # the decoders' letters already are; internal topics' are not
            letter = self.pii.redact_dead_letter(letter)
        if self.dead_letters is not None:
            self.dead_letters.send(letter, key)
        # a flood of bad input must not become a flood of log lines: the first
        # DEAD_LETTER_LOGS of each reason per status interval are logged, the rest counted
        self._dead_letter_logs[letter.reason] += 1
        if self._dead_letter_logs[letter.reason] <= DEAD_LETTER_LOGS:
            log("dead_letter", logging.WARNING, reason=letter.reason, detail=letter.detail,
                source=str(source))
