"""The join rules: one partition's predictions and outcomes become labeled examples.

Every semantic rule of loglabel's labeling lives in this file (time itself, the
frontier and the watermark, in ``ingest.repartition.frontier`` and
``labeler.join.watermark``):

* **Late records.** A record behind its own raw partition's frontier by more
  than ``allowed_lateness`` is *late*; the reader of that partition decides it
  (the ingest stage, or the worker with ``repartition = "never"``), from the
  partition's own order, so every replay decides alike. A late prediction never
  gets here: it is a ``late_prediction`` dead letter. A late outcome is never
  joined: it is counted as ``late_outcomes`` and, if enabled, kept as a
  correction when its prediction is known.
* **Window.** A prediction at event time ``t`` collects the on-time outcomes with
  the same join id whose event time ``u`` is in ``[t - early_tolerance, t + window]``.
  Outcomes outside it are counted as ``outside_window``.
* **Close.** The row is emitted once the partition's watermark passes
  ``t + window + grace``. With no record late, this gives exactly the plain join
  of all the input: a window closes only when every source is past it.
* **Early outcomes** (no prediction yet) are buffered until their prediction
  arrives, or until the watermark passes ``u + early_tolerance`` (then no
  prediction that could match them can still be on time): those are counted as
  ``early_expired``.
* **Dedupe.** A join id is labeled once: a second prediction with an id that
  is pending, or closed within ``dedupe_horizon`` seconds, is counted as
  ``duplicate_predictions`` and ignored. An outcome seen twice (same outcome id,
  or else same id, type and time) counts once (``duplicate_outcomes``).
* **After the close.** An on-time outcome whose row was already written means
  the watermark moved past its window too early, which only idleness (time
  without input, confirmed by the broker) can do: it is counted as
  ``outcomes_after_close`` (the audit counter; the worker warns), and kept as a
  correction if enabled. The row is never rewritten. A redelivered copy of an
  outcome the row already counted is a ``duplicate_outcomes``.
* **Predictions after the close** (their close time already behind the watermark
  on arrival, which again only idleness can cause) are labeled with the outcomes
  buffered for them and counted as ``predictions_after_close``.

The class is pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import msgpack

from ingest.records import Outcome, Prediction
from ingest.repartition.frontier import Frontier
from ingest.wire.codec import Source, pack, packb, unpack_outcome, unpack_prediction
from labeler.join.bulk import BulkLoad
from labeler.join.changelog import ADD, ATTACH, CLOSE, LATE, change
from labeler.join.closed import ClosedIds
from labeler.join.pending import Pending, PendingStore
from labeler.join.records import LabeledExample
from labeler.join.rules import JoinRules
from labeler.join.watermark import Watermark

COMPACT_MIN_CHANGES = 100_000  # below this a restore is quick anyway
COMPACT_RATIO = 3  # compact when a restore would replay this many changes per live one


class PartitionJoin:
    """Join state and watermark of one (co-)partition.

    Every change to the pending predictions and the recently closed ids is
    also appended to ``log``: the checkpoint keeps those logs as state
    segments instead of snapshotting that state each time (see
    ``labeler.output.checkpoint``), and ``restore`` replays them. A segment is needed
    while a prediction it brought in is pending, or a close it records is
    within the dedupe horizon (``oldest_needed_epoch``).
    """

    def __init__(self, rules: JoinRules, counters: Counter[str] | None = None,
                 store: PendingStore | None = None, epoch: int = 1,
                 closed: ClosedIds | None = None) -> None:
        self.rules = rules
        self._no_outcome_labels = tuple(spec.empty_value() for spec in rules.labels)
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self.watermark = Watermark(rules.lateness)
        # with repartition = "never": the frontier of each input partition (topic -> ...)
        self.frontiers: dict[str, Frontier] = {}
        self.pending = store if store is not None else PendingStore()
        self.early: dict[str, list[Outcome]] = {}
        # the ids closed within the dedupe horizon, their prediction times and outcome keys
        self.closed = closed if closed is not None else ClosedIds()
        self.late_outcomes: list[tuple[Outcome, float]] = []  # (outcome, prediction time)
        self._early_heap: list[tuple[float, str]] = []
        self.log: list[bytes] = []  # changes since the last checkpoint, msgpack-encoded
        self.epoch = epoch  # the checkpoint epoch that will hold ``log``
        self._arrivals: Counter[int] = Counter()  # epoch -> its arrivals still pending
        self._closes: Counter[int] = Counter()  # epoch -> its closes not yet forgotten
        self._logged: dict[int, int] = {}  # epoch -> changes its segment holds
        self._bulk: BulkLoad | None = None  # while restoring
        # per raw partition, the highest raw offset taken from the ingest stage's batches
        self.raw_seen: dict[tuple[str, int], int] = {}

    # -- input -------------------------------------------------------------------------

    def add_prediction(self, prediction: Prediction, packed: list[Any] | None = None) -> None:
        """An on-time prediction (late ones are dead letters before they get here);
        ``packed``: its ``ingest.wire.codec.pack`` form, if the caller has it."""
        join_id = prediction.join_id
        if join_id in self.closed or join_id in self.pending:
            self.counters["duplicate_predictions"] += 1
            return
        t = prediction.event_time
        close_at = t + self.rules.window + self.rules.grace
        if close_at < self.watermark.last_value:
            self.counters["predictions_after_close"] += 1
        pending = Pending(prediction, self.epoch)
        self.log.append(_arrival(prediction, packed))
        self._arrivals[self.epoch] += 1
        early = self.early.pop(join_id, None)
        if early:
            for outcome in early:
                self._attach(pending, outcome)
        self.pending.add(pending, close_at)

    def add_outcome(self, outcome: Outcome, late: bool = False) -> None:
        """An outcome; ``late`` when its reader found it behind its partition's frontier."""
        join_id = outcome.join_id
        found = self.closed.get(join_id)  # a closed id is never pending too
        if found is not None:
            closed_time, keys = found
            if keys is not None and outcome.dedupe_key in keys:
                self.counters["duplicate_outcomes"] += 1
                return
            if self._in_window(closed_time, outcome.event_time):
                key = outcome.dedupe_key
                self.closed.add_key(join_id, key)
                self.log.append(change([LATE, join_id, key]))
                self.counters["late_outcomes" if late else "outcomes_after_close"] += 1
                if self.rules.keep_late_outcomes:
                    self.late_outcomes.append((outcome, closed_time))
            else:
                self.counters["outside_window"] += 1
            return
        if late:
            self.counters["late_outcomes"] += 1
            waiting = self.pending.get(join_id)
            if waiting is not None and self.rules.keep_late_outcomes and self._in_window(
                    waiting.prediction.event_time, outcome.event_time):
                self.late_outcomes.append((outcome, waiting.prediction.event_time))
            return
        pending = self.pending.get(join_id)
        if pending is not None:
            self._attach(pending, outcome)
            return
        self.early.setdefault(join_id, []).append(outcome)
        heapq.heappush(
            self._early_heap, (outcome.event_time + self.rules.early_tolerance, join_id)
        )

    def not_replayed(self, origin: Source, records: list[Any]) -> list[Any]:
        """The records of a sourced batch (``ingest.wire.codec``) read from their raw
        partition after every record taken so far: what a restarted ingest stage sends
        again is counted as ``replayed_records`` and left out."""
        where = (origin.topic, origin.partition)
        seen = self.raw_seen.get(where, -1)
        offsets = origin.offsets
        if offsets and offsets[0] > seen:
            self.raw_seen[where] = max(offsets[-1], seen)
            return records
        fresh = [r for r, offset in zip(records, offsets, strict=True) if offset > seen]
        self.counters["replayed_records"] += len(records) - len(fresh)
        if offsets:
            self.raw_seen[where] = max(max(offsets), seen)
        return fresh

    def _in_window(self, t: float, u: float) -> bool:
        return t - self.rules.early_tolerance <= u <= t + self.rules.window

    def _attach(self, pending: Pending, outcome: Outcome) -> None:
        if not self._in_window(pending.prediction.event_time, outcome.event_time):
            self.counters["outside_window"] += 1
        elif not pending.attach(outcome):
            self.counters["duplicate_outcomes"] += 1
        else:
            self.log.append(change([ATTACH, outcome.join_id, pack(outcome)]))

    # -- time --------------------------------------------------------------------------

    def advance(self) -> list[LabeledExample]:
        """Emit every row whose window the watermark has passed; expire old state."""
        return self._advance_to(self.watermark.value())

    def drain(self) -> list[LabeledExample]:
        """Close every window now, whatever the watermark (for ``--drain``)."""
        self.watermark.close_all()
        return self._advance_to(math.inf)

    def _advance_to(self, watermark: float) -> list[LabeledExample]:
        emitted: list[LabeledExample] = []
        horizon = self.rules.dedupe_horizon + self.rules.window + self.rules.grace
        for pending in self.pending.pop_due(watermark):
            emitted.append(self._label(pending))
            join_id = pending.prediction.join_id
            t = pending.prediction.event_time
            self._close(join_id, t, pending.keys, self.epoch, horizon, known_open=True)
            self.log.append(change([CLOSE, join_id, t, list(pending.keys or ())]))
            self._closed_arrival(pending.epoch)
        if emitted:
            self.counters["labeled"] += len(emitted)
            if self.rules.labels and self.rules.labels[0].agg == "any":
                self.counters["positives"] += sum(1 for r in emitted if r.labels[0] is True)
        self._expire_early(watermark)
        self._forget(watermark)
        return emitted

    def _forget(self, watermark: float) -> None:
        """Drop the closed ids whose dedupe horizon the watermark has passed."""
        closes = self._closes
        for epoch, n in self.closed.forget(watermark).items():
            left = closes[epoch] - n
            if left > 0:
                closes[epoch] = left
            else:
                closes.pop(epoch, None)

    def _close(self, join_id: str, t: float, keys: set[Any] | None, epoch: int,
               horizon: float, known_open: bool = False) -> None:
        self.closed.add(join_id, t, keys, t + horizon, epoch, known_open)
        self._closes[epoch] += 1

    def _closed_arrival(self, epoch: int) -> None:
        _take(self._arrivals, epoch)

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

    def _label(self, pending: Pending) -> LabeledExample:
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

    def oldest_needed_epoch(self) -> int:
        """The oldest epoch whose state segment a restore still needs: the earliest with
        a prediction still pending or a close still within the dedupe horizon."""
        return min(min(self._arrivals, default=self.epoch), min(self._closes, default=self.epoch))

    def logged(self, epoch: int) -> None:
        """The checkpoint of ``epoch`` holds ``log``: start the next one."""
        if self.log:
            self._logged[epoch] = len(self.log)
        keep_from = self.oldest_needed_epoch()
        for old in [e for e in self._logged if e < keep_from]:
            del self._logged[old]
        self.log = []
        self.epoch = epoch + 1

    def kept_changes(self) -> int:
        """Changes a restore would replay now: those of the segments still needed,
        plus this epoch's."""
        return sum(self._logged.values()) + len(self.log)

    def compact_due(self) -> bool:
        """Whether the segments a restore needs hold many more changes than the state
        they add up to (a few old predictions keep many epochs' segments alive)."""
        kept = self.kept_changes()
        return kept >= COMPACT_MIN_CHANGES and kept > COMPACT_RATIO * self.live_entries()

    def live_entries(self) -> int:
        """Changes a compacted log of the state holds: pending predictions, their
        outcomes (counted one each) and the closed ids within the horizon."""
        return len(self.pending) + len(self.closed)

    def compact(self) -> None:
        """Replace this epoch's log by the whole live state, so its segment alone
        restores it and every older one can go: a ``CLOSE`` per id closed within
        the horizon (with all its outcome keys), then an ``ADD`` per pending
        prediction with an ``ATTACH`` per outcome it collected. Restoring it gives
        the state it was written from (tested)."""
        epoch = self.epoch
        closed = self.closed.empty_copy()  # the same closes, all logged in this epoch now
        log = []
        for join_id, t, keys, forget_at, _ in self.closed.entries():
            log.append(change([CLOSE, join_id, t, list(keys or ())]))
            closed.add(join_id, t, set(keys) if keys else None, forget_at, epoch)
        self.closed.close()
        self.closed = closed
        for pending in self.pending.values():
            log.append(_arrival(pending.prediction))
            log.extend(change([ATTACH, o.join_id, pack(o)]) for o in pending.outcomes)
        self.pending.set_epoch(epoch)
        self._arrivals = Counter({epoch: len(self.pending)}) if len(self.pending) else Counter()
        self._closes = Counter({epoch: len(closed)}) if len(closed) else Counter()
        self._logged.clear()
        self.log = log
        self.counters["state_compactions"] += 1

    def snapshot(self) -> dict[str, Any]:
        """The state the logs do not hold, as plain data (msgpack-able): watermarks and
        early outcomes, both small. ``restore`` needs it and the logs."""
        return {
            "watermark": self.watermark.snapshot(),
            "frontiers": {topic: f.top for topic, f in self.frontiers.items()},
            "early": [pack(o) for outs in self.early.values() for o in outs],
            "raw_seen": [[topic, p, offset] for (topic, p), offset in self.raw_seen.items()],
        }

    @classmethod
    def restore(cls, rules: JoinRules, snap: dict[str, Any],
                logs: Iterable[tuple[int, Iterable[list[Any]]]] = (),
                counters: Counter[str] | None = None, store: PendingStore | None = None,
                epoch: int = 1) -> PartitionJoin:
        """Rebuild the state of a checkpoint: ``snap`` and the ``(epoch, log)`` segments
        it keeps, oldest first. ``epoch`` is the next epoch to log into.

        The same in steps (a worker restores from its poll loop, a slice at a
        time): ``from_snapshot``, then ``replay`` of each segment's changes in
        order, in as many calls as wanted, then ``restored``."""
        join = cls.from_snapshot(rules, snap, counters, store, epoch)
        for logged_in, log in logs:
            join.replay(logged_in, log)
        join.restored(snap)
        return join

    def close(self) -> None:
        """Delete the scratch files of the pending predictions and the closed ids."""
        self.pending.close()
        self.closed.close()

    @classmethod
    def from_snapshot(cls, rules: JoinRules, snap: dict[str, Any],
                      counters: Counter[str] | None = None, store: PendingStore | None = None,
                      epoch: int = 1, closed: ClosedIds | None = None) -> PartitionJoin:
        """The first step of ``restore``: the watermark and frontiers of ``snap``."""
        join = cls(rules, counters, store, epoch, closed)
        join._bulk = BulkLoad(join.pending)
        join.watermark.restore(snap["watermark"])
        for topic, top in snap.get("frontiers", {}).items():
            join.frontiers[topic] = rules.frontier(top)
        join.raw_seen = {(topic, p): offset for topic, p, offset in snap.get("raw_seen", ())}
        return join

    def replay(self, logged_in: int, log: Iterable[list[Any]]) -> int:
        """Apply changes of the state segment of epoch ``logged_in``, in their order
        (a segment may come in several calls). Returns how many were applied."""
        rules = self.rules
        window_end = rules.window + rules.grace
        horizon = window_end + rules.dedupe_horizon
        bulk = self._bulk
        if bulk is None:
            raise RuntimeError("replay() comes between from_snapshot() and restored()")
        closed = self.closed
        applied = 0
        self._logged[logged_in] = self._logged.get(logged_in, 0)
        for entry in log:
            applied += 1
            kind = entry[0]
            if kind == ADD:
                if len(entry) == 4:
                    _, join_id, t, blob = entry
                else:  # written before arrivals carried their id and time outside
                    prediction = unpack_prediction(entry[1])
                    join_id, t = prediction.join_id, prediction.event_time
                    blob = msgpack.packb(entry[1], use_bin_type=True)
                closed.discard(join_id)  # if closed, the original run had forgotten it
                bulk.add(join_id, t + window_end, logged_in, blob)
                self._arrivals[logged_in] += 1
            elif kind == ATTACH:
                bulk.attach(entry[1], entry[2])
            elif kind == CLOSE:
                _, join_id, t, keys = entry
                arrived = bulk.discard(join_id)
                if arrived is not None:
                    self._closed_arrival(arrived)
                self._close(join_id, t, {_key(k) for k in keys} or None, logged_in, horizon)
            elif kind == LATE and entry[1] in closed:
                closed.add_key(entry[1], _key(entry[2]))
        self._logged[logged_in] += applied
        return applied

    def restored(self, snap: dict[str, Any]) -> None:
        """The last step of ``restore``, after every segment was replayed."""
        if self._bulk is not None:
            self._bulk.finish()
            self._bulk = None
        self._forget(self.watermark.last_value)  # what the checkpointed run forgot already
        keep_from = self.oldest_needed_epoch()
        for old in [e for e in self._logged if e < keep_from]:
            del self._logged[old]
        tolerance = self.rules.early_tolerance
        for packed_outcome in snap["early"]:
            outcome = unpack_outcome(packed_outcome)
            self.early.setdefault(outcome.join_id, []).append(outcome)
            self._early_heap.append((outcome.event_time + tolerance, outcome.join_id))
        heapq.heapify(self._early_heap)


def _arrival(prediction: Prediction, packed: list[Any] | None = None) -> bytes:
    """The ``ADD`` change: the id and time outside, so a restore can place the
    prediction without decoding it, and the prediction (``packed``, its ``pack`` form
    if given) as msgpack bytes."""
    blob = packb(packed if packed is not None else pack(prediction))
    return change([ADD, prediction.join_id, prediction.event_time, blob])


def _take(counts: Counter[int], epoch: int) -> None:
    left = counts[epoch] - 1
    if left > 0:
        counts[epoch] = left
    else:
        del counts[epoch]


def _key(packed: Any) -> Any:
    """An outcome's dedupe key as msgpack gave it back (tuples come back as lists)."""
    return tuple(packed) if isinstance(packed, list) else packed
