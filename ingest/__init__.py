"""ingest: the ground floor. From forwarder bytes in Kafka to canonical records.

It holds the canonical records, envelope decoding, field mapping, validation
into dead letters, Kafka I/O helpers and the emitter SDK. It imports nothing
from the other loglabel packages.
"""

from ingest.decode import Decoder
from ingest.envelope import Envelope, unwrap
from ingest.errors import IngestError, LoglabelError, RejectedMessage
from ingest.mapping import FieldMap
from ingest.records import DeadLetter, Outcome, Prediction, SourceRef

__all__ = [
    "DeadLetter",
    "Decoder",
    "Envelope",
    "FieldMap",
    "IngestError",
    "LoglabelError",
    "Outcome",
    "Prediction",
    "RejectedMessage",
    "SourceRef",
    "unwrap",
]
