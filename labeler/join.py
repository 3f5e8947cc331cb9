"""The join rules: one partition's predictions and outcomes become labeled examples.

Every semantic rule of loglabel's labeling lives in this file:

* **Window.** A prediction at event time ``t`` collects the outcomes with the
  same join id whose event time ``u`` is in ``[t - early_tolerance, t + window]``.
  Outcomes outside it are counted as ``outside_window``.
* **Close.** The row is emitted once the partition's watermark passes
  ``t + window + grace`` (see ``labeler.watermark``).
* **Early outcomes** (no prediction yet) are buffered until their prediction
  arrives, or until the watermark passes ``u + early_tolerance`` (then no
  prediction that could match them can still be on time): those are counted as
  ``early_expired``.
* **Dedupe.** A join id is labeled once: a second prediction with an id that
  is pending, or closed within ``dedupe_horizon`` seconds, is counted as
  ``duplicate_predictions`` and ignored. An outcome seen twice (same outcome id,
  or else same id, type and time) counts once (``duplicate_outcomes``).
* **Late outcomes** arrive for an id whose row was already written: they are
  counted as ``late_outcomes`` (and kept for corrections, if enabled); the row
  is never rewritten. A redelivered copy of an outcome the row already counted
  (or of a late outcome already kept) is a ``duplicate_outcomes``, not late.
* **Late predictions** (already past their close time on arrival) are still
  labeled with the outcomes buffered for them, and counted.

The class is pure: no I/O, no clock. Callers pass the wall-clock time.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ingest.records import Outcome, Prediction
from labeler.labels import LabelSpec
from labeler.records import LabeledExample
from labeler.watermark import Watermark


@dataclass(frozen=True, slots=True)
class JoinRules:
    """The join's parameters, in seconds of event time (``idle_after``: wall clock)."""

    window: float
    grace: float = 0.0
    early_tolerance: float = 0.0
    lateness: float = 5.0
    idle_after: float = 30.0
    dedupe_horizon: float = 600.0
    labels: tuple[LabelSpec, ...] = (LabelSpec("clicked"),)
    keep_late_outcomes: bool = False


class _Pending:
    __slots__ = ("prediction", "outcomes", "keys")

    def __init__(self, prediction: Prediction) -> None:
        self.prediction = prediction
        self.outcomes: list[Outcome] = []
        self.keys: set[Any] | None = None  # most predictions never see an outcome

    def attach(self, outcome: Outcome) -> bool:
        """Add ``outcome`` unless it was seen already; return whether it was new."""
        key = outcome.dedupe_key
        if self.keys is None:
            self.keys = {key}
        elif key in self.keys:
            return False
        else:
            self.keys.add(key)
        self.outcomes.append(outcome)
        return True


class PartitionJoin:
    """Join state and watermark of one (co-)partition."""

    def __init__(self, rules: JoinRules, counters: Counter[str] | None = None) -> None:
        self.rules = rules
        self._no_outcome_labels = tuple(spec.empty_value() for spec in rules.labels)
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.watermark = Watermark(rules.lateness, rules.idle_after)
        self.pending: dict[str, _Pending] = {}
        self.early: dict[str, list[Outcome]] = {}
        self.closed: dict[str, float] = {}  # join id -> prediction event time
        self.closed_keys: dict[str, set[Any]] = {}  # outcome keys of closed ids that had any
        self.late_outcomes: list[tuple[Outcome, float]] = []  # (outcome, prediction time)
        self._close_heap: list[tuple[float, str]] = []
        self._early_heap: list[tuple[float, str]] = []
        self._forget_heap: list[tuple[float, str]] = []

    # -- input -------------------------------------------------------------------------

    def add_prediction(self, prediction: Prediction, wall: float) -> None:
        self.watermark.observe(0, prediction.event_time, wall)
        join_id = prediction.join_id
        if join_id in self.pending or join_id in self.closed:
            self.counters["duplicate_predictions"] += 1
            return
        t = prediction.event_time
        close_at = t + self.rules.window + self.rules.grace
        if close_at < self.watermark.last_value:
            self.counters["late_predictions"] += 1
        pending = _Pending(prediction)
        self.pending[join_id] = pending
        heapq.heappush(self._close_heap, (close_at, join_id))
        early = self.early.pop(join_id, None)
        if early:
            for outcome in early:
                self._attach(pending, outcome)

    def add_outcome(self, outcome: Outcome, wall: float) -> None:
        self.watermark.observe(1, outcome.event_time, wall)
        join_id = outcome.join_id
        pending = self.pending.get(join_id)
        if pending is not None:
            self._attach(pending, outcome)
            return
        closed_time = self.closed.get(join_id)
        if closed_time is not None:
            keys = self.closed_keys.get(join_id)
            if keys is not None and outcome.dedupe_key in keys:
                self.counters["duplicate_outcomes"] += 1
                return
            if self._in_window(closed_time, outcome.event_time):
                self.closed_keys.setdefault(join_id, set()).add(outcome.dedupe_key)
                self.counters["late_outcomes"] += 1
                if self.rules.keep_late_outcomes:
                    self.late_outcomes.append((outcome, closed_time))
            else:
                self.counters["outside_window"] += 1
            return
        self.early.setdefault(join_id, []).append(outcome)
        heapq.heappush(
            self._early_heap, (outcome.event_time + self.rules.early_tolerance, join_id)
        )

    def _in_window(self, t: float, u: float) -> bool:
        return t - self.rules.early_tolerance <= u <= t + self.rules.window

    def _attach(self, pending: _Pending, outcome: Outcome) -> None:
        if not self._in_window(pending.prediction.event_time, outcome.event_time):
            self.counters["outside_window"] += 1
        elif not pending.attach(outcome):
            self.counters["duplicate_outcomes"] += 1

    # -- time --------------------------------------------------------------------------

    def advance(self, wall: float, behind: tuple[bool, bool] = (False, False)
                ) -> list[LabeledExample]:
        """Emit every row whose window the watermark has passed; expire old state.

        ``behind`` tells, for the prediction and the outcome input, whether
        unread messages wait in Kafka (see ``labeler.watermark``).
        """
        return self._advance_to(self.watermark.value(wall, behind))

    def drain(self) -> list[LabeledExample]:
        """Close every window now, whatever the watermark (for ``--drain``)."""
        self.watermark.close_all()
        return self._advance_to(math.inf)

    def _advance_to(self, watermark: float) -> list[LabeledExample]:
        emitted: list[LabeledExample] = []
        heap = self._close_heap
        horizon = self.rules.dedupe_horizon
        while heap and heap[0][0] < watermark:
            close_at, join_id = heapq.heappop(heap)
            pending = self.pending.pop(join_id)
            emitted.append(self._label(pending))
            self.closed[join_id] = pending.prediction.event_time
            if pending.keys:
                self.closed_keys[join_id] = pending.keys
            heapq.heappush(self._forget_heap, (close_at + horizon, join_id))
        if emitted:
            self.counters["labeled"] += len(emitted)
            if self.rules.labels and self.rules.labels[0].agg == "any":
                self.counters["positives"] += sum(1 for r in emitted if r.labels[0] is True)
        self._expire_early(watermark)
        forget = self._forget_heap
        while forget and forget[0][0] < watermark:
            join_id = heapq.heappop(forget)[1]
            self.closed.pop(join_id, None)
            self.closed_keys.pop(join_id, None)
        return emitted

    def _expire_early(self, watermark: float) -> None:
        heap = self._early_heap
        tolerance = self.rules.early_tolerance
        while heap and heap[0][0] < watermark:
            _, join_id = heapq.heappop(heap)
            buffered = self.early.get(join_id)
            if buffered is None:
                continue  # its prediction arrived and took it
            kept = [o for o in buffered if o.event_time + tolerance >= watermark]
            self.counters["early_expired"] += len(buffered) - len(kept)
            if kept:
                self.early[join_id] = kept
            else:
                del self.early[join_id]

    def _label(self, pending: _Pending) -> LabeledExample:
        prediction = pending.prediction
        outcomes = pending.outcomes
        if not outcomes:
            return LabeledExample(prediction, self._no_outcome_labels, 0, None)
        t = prediction.event_time
        labels = tuple(spec.compute(t, outcomes) for spec in self.rules.labels)
        return LabeledExample(prediction, labels, len(outcomes),
                              min(o.event_time for o in outcomes) - t)

    # -- introspection and checkpoints -------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self.pending)

    def snapshot(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which ``restore`` rebuilds this state exactly."""
        return {
            "marks": list(self.watermark.marks),
            "watermark": self.watermark.durable_value,
            "pending": [
                [_pack_prediction(p.prediction), [_pack_outcome(o) for o in p.outcomes]]
                for p in self.pending.values()
            ],
            "early": [_pack_outcome(o) for outs in self.early.values() for o in outs],
            "closed": list(self.closed.items()),
            "closed_keys": [[k, [list(x) if isinstance(x, tuple) else x for x in v]]
                            for k, v in self.closed_keys.items()],
        }

    @classmethod
    def restore(cls, rules: JoinRules, snap: dict[str, Any], wall: float,
                counters: Counter[str] | None = None) -> PartitionJoin:
        join = cls(rules, counters)
        join.watermark.restore(snap["marks"], snap["watermark"], wall)
        window_end = rules.window + rules.grace
        for packed, outcomes in snap["pending"]:
            pending = _Pending(_unpack_prediction(packed))
            for packed_outcome in outcomes:
                pending.attach(_unpack_outcome(packed_outcome))
            join.pending[pending.prediction.join_id] = pending
            join._close_heap.append((pending.prediction.event_time + window_end,
                                     pending.prediction.join_id))
        heapq.heapify(join._close_heap)
        for packed_outcome in snap["early"]:
            outcome = _unpack_outcome(packed_outcome)
            join.early.setdefault(outcome.join_id, []).append(outcome)
            join._early_heap.append((outcome.event_time + rules.early_tolerance, outcome.join_id))
        heapq.heapify(join._early_heap)
        for join_id, keys in snap.get("closed_keys", ()):
            join.closed_keys[join_id] = {tuple(k) if isinstance(k, list) else k for k in keys}
        for join_id, t in snap["closed"]:
            join.closed[join_id] = t
            join._forget_heap.append((t + window_end + rules.dedupe_horizon, join_id))
        heapq.heapify(join._forget_heap)
        return join


def _pack_prediction(p: Prediction) -> list[Any]:
    return [p.join_id, p.event_time, p.model, p.model_version, dict(p.features),
            dict(p.prediction)]


def _unpack_prediction(v: list[Any]) -> Prediction:
    return Prediction(v[0], v[1], v[2], v[3], v[4], v[5])


def _pack_outcome(o: Outcome) -> list[Any]:
    return [o.join_id, o.event_time, o.outcome_type, o.value, o.outcome_id]


def _unpack_outcome(v: list[Any]) -> Outcome:
    return Outcome(v[0], v[1], v[2], v[3], v[4])
