"""ingest: the ground floor. From forwarder bytes in Kafka to canonical records.

It holds the canonical records, envelope decoding, field mapping, validation
into dead letters, Kafka I/O helpers and the emitter SDK. It imports nothing
from the other loglabel packages.
"""

from ingest.emitter import (
    EmitterConfig,
    EmitterStats,
    FluentEmitter,
    OutcomeLogger,
    PredictionLogger,
)
from ingest.errors import IngestError, LoglabelError, RejectedMessage
from ingest.records import DeadLetter, Outcome, Prediction, SourceRef
from ingest.wire.decode import DEAD_LETTER_REASONS, Decoder
from ingest.wire.envelope import FORMATS, Envelope, unwrap
from ingest.wire.mapping import FieldMap
from ingest.wire.schema import Schema, SchemaEnforcer
from ingest.wire.timeparse import parse_time

__all__ = [
    "DEAD_LETTER_REASONS",
    "FORMATS",
    "DeadLetter",
    "Decoder",
    "EmitterConfig",
    "EmitterStats",
    "Envelope",
    "FieldMap",
    "FluentEmitter",
    "IngestError",
    "LoglabelError",
    "Outcome",
    "OutcomeLogger",
    "Prediction",
    "PredictionLogger",
    "RejectedMessage",
    "Schema",
    "SchemaEnforcer",
    "SourceRef",
    "parse_time",
    "unwrap",
]
