"""What the worker holds for each partition it owns, and what it needs from its
neighbours (the drift hub, the ingest stage beside it). Plain records; the worker
thread owns them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from kafka import KafkaProducer

from ingest.records import Prediction, SourceRef
from labeler.join.inputs import DirectInputs
from labeler.join.partition import PartitionJoin
from labeler.join.records import LabeledExample


class DriftObserver(Protocol):
    """What the worker needs from drift monitoring (``labeler.runtime.drift_hub.DriftHub``)."""

    def attach(self, producer: KafkaProducer) -> None: ...
    def observe_prediction(self, prediction: Prediction, source: SourceRef) -> Any: ...
    def observe_predictions(self, predictions: Sequence[Prediction],
                            sources: Sequence[SourceRef]) -> Any: ...
    def observe_labeled(self, examples: Sequence[LabeledExample], source: SourceRef) -> Any: ...
    def check_schema(self, counters: Counter[str]) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def state(self, partition: int) -> dict[str, Any] | None: ...
    def restore(self, partition: int, state: Any) -> None: ...
    def release(self, partition: int) -> None: ...




class Upstream(Protocol):
    """The ingest stage running beside the worker in one process."""

    def done(self) -> bool: ...
    def failure(self) -> BaseException | None: ...


class OwnedPartition:
    """Everything the worker holds for one assigned partition index."""

    __slots__ = ("index", "join", "inputs", "rows", "emitted_at", "epoch", "offsets",
                 "first_offset", "dirty", "segments")

    def __init__(self, index: int, join: PartitionJoin, epoch: int, offsets: dict[str, int]):
        self.index = index
        self.join = join
        self.inputs: DirectInputs | None = None  # with repartition = "never"
        self.rows: list[LabeledExample] = []
        self.emitted_at: list[tuple[float, int]] = []  # (wall time, rows emitted then)
        self.epoch = epoch
        self.offsets = offsets  # topic -> next offset to read
        self.first_offset = 0
        self.dirty = False
        self.segments: list[tuple[int, str]] = []  # state segments its checkpoint keeps
