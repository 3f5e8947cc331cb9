"""Reading a co-partition's two raw partitions directly (``repartition = "never"``).

The reader of a partition judges lateness (``ingest.repartition.frontier``):
here that is the worker, which reads partition *i* of both raw topics itself.
Each input has its frontier; a late prediction is refused (the caller makes it
a ``late_prediction`` dead letter), a late outcome goes to the join marked late,
and every record reports its input's frontier to the co-partition's watermark,
whose sources are exactly these two inputs.

>>> from ingest.records import Outcome, Prediction
>>> from labeler.join.partition import PartitionJoin
>>> from labeler.join.rules import JoinRules
>>> join = PartitionJoin(JoinRules(window=10.0, lateness=1.0, frontier_votes=1))
>>> inputs = DirectInputs(join, ("predictions", 0), ("outcomes", 0))
>>> inputs.prediction(Prediction("a", 100.0, "m", None, {}, {}))
True
>>> inputs.outcome(Outcome("a", 104.0, "click"))
>>> join.watermark.value()   # min(100, 104) - 1
99.0
>>> inputs.prediction(Prediction("b", 90.0, "m", None, {}, {}))   # 10 s behind: late
False
"""

from __future__ import annotations

from typing import Any

from ingest.records import Outcome, Prediction
from labeler.join.partition import PartitionJoin
from labeler.join.watermark import SourceKey


class DirectInputs:
    """The two raw inputs of one co-partition; owned by the worker thread."""

    __slots__ = ("join", "_prediction_source", "_outcome_source", "_predictions", "_outcomes")

    def __init__(self, join: PartitionJoin, prediction_source: SourceKey,
                 outcome_source: SourceKey) -> None:
        self.join = join
        self._prediction_source = prediction_source
        self._outcome_source = outcome_source
        join.watermark.expect((prediction_source, outcome_source))
        frontiers, rules = join.frontiers, join.rules
        self._predictions = frontiers.setdefault(prediction_source[0], rules.frontier())
        self._outcomes = frontiers.setdefault(outcome_source[0], rules.frontier())

    def prediction(self, prediction: Prediction, packed: list[Any] | None = None) -> bool:
        """Join an on-time prediction; return ``False`` (and join nothing) if it is late.
        ``packed``: its ``ingest.wire.codec.pack`` form, if the caller has it."""
        frontier = self._predictions
        ahead = frontier.ahead
        late = frontier.observe(prediction.event_time)
        if frontier.ahead != ahead:
            self.join.counters["ahead_of_frontier"] += 1
        if late:
            self.join.counters["late_predictions"] += 1
            return False
        self.join.add_prediction(prediction, packed)
        self.join.watermark.update(self._prediction_source, frontier.mark)
        return True

    def outcome(self, outcome: Outcome) -> None:
        frontier = self._outcomes
        ahead = frontier.ahead
        late = frontier.observe(outcome.event_time)
        if frontier.ahead != ahead:
            self.join.counters["ahead_of_frontier"] += 1
        self.join.add_outcome(outcome, late)
        if not late:
            self.join.watermark.update(self._outcome_source, frontier.mark)

    @property
    def prediction_mark(self) -> float:
        return self._predictions.mark
