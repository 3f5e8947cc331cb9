"""The event-time watermark of one co-partition (its prediction and outcome inputs).

Each input stream has its own high mark: the max event time read from it.
The watermark is that max minus the allowed lateness, taken over the streams
in a way that never outruns data still waiting in Kafka:

* a stream that is **behind** (its partition has unread messages) holds the
  watermark at its own high mark, so a backfill that reads all predictions
  before the first outcome does not close windows its outcomes would fill;
* streams that are **caught up** do not hold it back: the watermark is the
  highest high mark of all streams, minus the lateness;
* when no input at all arrived for ``idle_after`` seconds of wall-clock time
  and no input is behind, the watermark advances with the wall clock from
  there, so windows still close (and negatives still come out) on a quiet
  stream. A stall of our own loop while messages wait does not count as idle.

The watermark never goes backwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class Watermark:
    """Tracks one co-partition's watermark. Times are epoch seconds.

    >>> w = Watermark(lateness=5.0, idle_after=30.0)
    >>> w.observe(0, 100.0, wall=1000.0)
    >>> w.value(wall=1010.0)
    95.0
    >>> w.value(wall=1010.0, behind=(False, True))   # outcomes unread: nothing read there yet
    95.0
    >>> w.observe(1, 90.0, wall=1011.0)
    >>> w.value(wall=1012.0, behind=(False, True))
    95.0
    >>> w.value(wall=1052.0)   # idle for 41 s: the event clock moved on with the wall
    136.0
    """

    __slots__ = ("lateness", "idle_after", "marks", "last_input_wall", "_value")

    def __init__(self, lateness: float, idle_after: float, streams: int = 2) -> None:
        self.lateness = lateness
        self.idle_after = idle_after
        self.marks = [-math.inf] * streams
        self.last_input_wall = -math.inf
        self._value = -math.inf

    @property
    def max_event_time(self) -> float:
        return max(self.marks)

    def observe(self, stream: int, event_time: float, wall: float) -> None:
        """Account for an input event of ``stream`` that arrived at ``wall``."""
        if event_time > self.marks[stream]:
            self.marks[stream] = event_time
        self.last_input_wall = wall

    def value(self, wall: float, behind: Sequence[bool] = ()) -> float:
        """The watermark at wall-clock time ``wall``; ``behind[i]`` tells whether
        stream ``i`` still has unread input."""
        top = max(self.marks)
        if top == -math.inf:
            return self._value
        lagging = [m for m, b in zip(self.marks, behind, strict=False) if b]
        candidate = (min(lagging) if lagging else top) - self.lateness
        idle = wall - self.last_input_wall
        if idle > self.idle_after and not lagging:
            candidate = max(candidate, top - self.lateness + idle)
        if candidate > self._value:
            self._value = candidate
        return self._value

    @property
    def last_value(self) -> float:
        """The watermark as last computed (no clock involved)."""
        return self._value

    @property
    def durable_value(self) -> float:
        """The value to checkpoint: never the +inf of ``close_all`` (a drain closes
        this run's windows, not the next run's)."""
        if self._value == math.inf:
            return max(self.marks) - self.lateness
        return self._value

    def restore(self, marks: Sequence[float], value: float, wall: float) -> None:
        """Resume from a checkpoint; idleness is counted from ``wall``."""
        self.marks = list(marks)
        self._value = value
        self.last_input_wall = wall

    def close_all(self) -> None:
        """Move the watermark past every event time (used by ``--drain``)."""
        self._value = math.inf
