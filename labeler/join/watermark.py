"""The event-time watermark of one co-partition: how far event time has surely come.

A co-partition (partition *i* of the prediction input and of the outcome input)
depends on a set of **sources**: the raw partitions whose records can reach it.

* With ``ingest.repartition = "never"`` the sources are its own two input
  partitions, and the worker reports their frontiers as it reads them.
* With ``"always"`` every raw partition of both raw topics can reach every
  internal partition, so all of them are sources. The ingest stage writes each
  raw partition's frontier into the internal partitions, after the records it
  covers (``ingest.records.SourceMark``), and the worker hands those on here.

The watermark is ``min(source marks) - allowed_lateness``, over **every** source
the co-partition depends on:

* a source not heard from yet holds the watermark (it stays where it was);
* a source that reported itself empty and caught up (``idle`` with no mark)
  holds nobody back;
* a source's mark only grows (the largest report wins: a replayed or stale
  report can never move a watermark back);
* the watermark never goes backwards.

Nothing here looks at a clock: time without input moves a watermark only
through the marks a reader reports after confirming with the broker that a
source is caught up (``ingest.repartition.stage``, ``labeler.runtime.worker``).

>>> w = Watermark(lateness=5.0, sources=[("p", 0), ("o", 0)])
>>> w.update(("p", 0), 100.0)
>>> w.value()                 # ("o", 0) not heard from: it holds the watermark
-inf
>>> w.update(("o", 0), 90.0)
>>> w.value()
85.0
>>> w.update(("o", 0), 80.0)  # a stale report changes nothing
>>> w.value()
85.0
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any

SourceKey = tuple[str, int]  # (topic, partition)


class Watermark:
    """Tracks one co-partition's watermark; owned by the worker thread."""

    __slots__ = ("lateness", "expected", "marks", "idle", "_value")

    def __init__(self, lateness: float, sources: Iterable[Hashable] = ()) -> None:
        self.lateness = lateness
        self.expected: set[Any] = set(sources)
        self.marks: dict[Any, float] = {}
        self.idle: dict[Any, bool] = {}
        self._value = -math.inf

    def expect(self, sources: Iterable[Hashable]) -> None:
        """Add sources this co-partition depends on (they hold it until heard from)."""
        self.expected.update(sources)

    def update(self, source: Hashable, mark: float, idle: bool = False) -> None:
        """A source's report: its frontier ``mark`` (possibly advanced for idleness)."""
        self.expected.add(source)
        if mark > self.marks.get(source, -math.inf):
            self.marks[source] = mark
        else:
            self.marks.setdefault(source, mark)
        self.idle[source] = idle

    def value(self) -> float:
        """The watermark now (see the module docstring)."""
        low = math.inf
        for source in self.expected:
            mark = self.marks.get(source)
            if mark is None:
                return self._value  # not heard from: hold
            if mark == -math.inf:
                if self.idle.get(source):
                    continue  # empty and caught up
                return self._value
            if mark < low:
                low = mark
        if low < math.inf and low - self.lateness > self._value:
            self._value = low - self.lateness
        return self._value

    @property
    def last_value(self) -> float:
        """The watermark as last computed."""
        return self._value

    @property
    def durable_value(self) -> float:
        """The value to checkpoint: never the +inf of ``close_all`` (a drain closes
        this run's windows, not the next run's)."""
        if self._value == math.inf:
            finite = [m for m in self.marks.values() if m > -math.inf]
            return min(finite) - self.lateness if finite else -math.inf
        return self._value

    def close_all(self) -> None:
        """Move the watermark past every event time (used by ``--drain``)."""
        self._value = math.inf

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the checkpoint (``restore`` reads it back)."""
        return {
            "value": _finite_or_none(self.durable_value),
            "sources": [[*source, _finite_or_none(self.marks[source]), self.idle.get(source, False)]
                        for source in sorted(self.marks)],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Resume from a checkpoint's ``snapshot()``."""
        self._value = _inf_if_none(snap.get("value"))
        for topic, partition, mark, idle in snap.get("sources", ()):
            self.update((topic, partition), _inf_if_none(mark), idle)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _inf_if_none(x: float | None) -> float:
    return -math.inf if x is None else x
