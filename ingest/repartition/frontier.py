"""The event-time frontier of one source partition, and which of its records are late.

The rules, in the order a record meets them:

* **Frontier.** A partition's frontier is the ``votes``-th highest event time read
  from it so far (``-inf`` before that many were read). With ``votes = 3`` one or
  two records far ahead of the rest (a wrong clock, a test event) do not move
  it: it takes three records to move the clock. A record more than
  ``ahead_s`` beyond the frontier is counted as ``ahead`` (an outlier).
* **Late.** A record whose event time is below ``frontier - lateness``, the
  frontier as it stood before the record, is *late*. This depends only on the
  order of records within the partition, so a replay from any committed offset
  (with the frontier committed beside it) classifies every record the same way.
* **What the frontier promises.** Every later record of the partition is either
  at or above ``frontier - lateness``, or late. That is what makes a watermark
  of ``min(frontiers) - lateness`` over every partition an input depends on
  safe: no window it closes can still get an on-time record.

>>> f = Frontier(lateness=5.0, votes=2)
>>> f.observe(100.0), f.mark
(False, -inf)
>>> f.observe(101.0), f.mark
(False, 100.0)
>>> f.observe(5000.0), f.mark        # one record far ahead: the frontier holds
(False, 101.0)
>>> f.observe(96.5), f.observe(90.0)  # 96.5 is within the lateness, 90 is late
(False, True)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

import orjson

from ingest.records import DeadLetter, SourceRef


def late_letter(t: float, mark: float, lateness: float, raw: bytes,
                source: SourceRef | None = None) -> DeadLetter:
    """The ``late_prediction`` dead letter of a prediction at ``t`` behind ``mark``."""
    return DeadLetter("late_prediction",
                      f"event time {t:.3f} is {mark - t:.1f} s behind its partition's frontier "
                      f"{mark:.3f}, more than join.allowed_lateness_s = {lateness:g}",
                      raw, source)


class Frontier:
    """The frontier of one partition; owned by the single thread that reads it."""

    __slots__ = ("lateness", "votes", "ahead_s", "_top", "late", "ahead")

    def __init__(self, lateness: float, votes: int = 3, ahead_s: float = math.inf,
                 top: Sequence[float] = ()) -> None:
        if votes < 1:
            raise ValueError("votes must be >= 1")
        self.lateness = lateness
        self.votes = votes
        self.ahead_s = ahead_s
        self._top: list[float] = sorted(top)[-votes:]  # the highest times, ascending
        self.late = 0  # records classified late
        self.ahead = 0  # records more than ahead_s beyond the frontier

    @property
    def mark(self) -> float:
        """The frontier: the ``votes``-th highest event time read (``-inf`` before)."""
        top = self._top
        return top[0] if len(top) == self.votes else -math.inf

    @property
    def top(self) -> list[float]:
        """The state to persist beside the offset (``Frontier(top=...)`` restores it)."""
        return list(self._top)

    def metadata(self) -> str:
        """The frontier as a committed offset's metadata (``from_metadata`` reads it)."""
        return orjson.dumps({"top": self._top}).decode()

    def from_metadata(self, metadata: str | None) -> Frontier:
        """A frontier under these rules with the state in ``metadata`` (fresh when it
        holds none)."""
        try:
            doc = orjson.loads(metadata) if metadata and metadata.startswith("{") else {}
        except orjson.JSONDecodeError:
            doc = {}
        top = doc.get("top", []) if isinstance(doc, dict) else []
        return Frontier(self.lateness, self.votes, self.ahead_s, [float(x) for x in top])

    def observe(self, event_time: float) -> bool:
        """Account for the next record of the partition; return whether it is late."""
        mark = self.mark
        if event_time < mark - self.lateness:
            self.late += 1
            return True
        if event_time - mark > self.ahead_s:
            self.ahead += 1
        top = self._top
        if len(top) < self.votes:
            bisect.insort(top, event_time)
        elif event_time > top[0]:
            top[0] = event_time
            top.sort()
        return False

    def observe_all(self, times: Iterable[float]) -> list[tuple[int, float]]:
        """``observe`` for each time, in order: ``(position, mark)`` of each late one, with
        the frontier it was judged against (a late record leaves the frontier as it is).
        The same frontier, counters and verdicts as one call per record (it is that)."""
        observe = self.observe
        return [(i, self.mark) for i, t in enumerate(times) if observe(t)]
