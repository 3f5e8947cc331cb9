"""What the ingest stage is given: its routes (raw topic -> decoder -> internal topic)
and the event-time rules it applies; and its error for a bounded run that cannot end."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ingest.errors import IngestError
from ingest.repartition.frontier import Frontier
from ingest.wire.decode import Decoder


class IncompleteRun(IngestError):
    """``--until-idle`` could not end cleanly: nothing was assigned, or input is unread."""


@dataclass(frozen=True, slots=True)
class Route:
    """One raw topic, how to decode it, and the internal topic it feeds."""

    raw_topic: str
    internal_topic: str
    decoder: Decoder


@dataclass(frozen=True, slots=True)
class TimeRules:
    """How the stage judges event time (the labeler's ``[join]`` settings)."""

    lateness: float = 10.0
    votes: int = 3
    ahead_s: float = math.inf
    idle_after: float = 30.0

    def frontier(self, top: list[float] | tuple[float, ...] = ()) -> Frontier:
        return Frontier(self.lateness, self.votes, self.ahead_s, top)
