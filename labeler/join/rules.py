"""The join's parameters (``JoinRules``), read from the ``[join]`` and ``[[labels]]``
config; the rules themselves are stated in ``labeler.join.partition``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.repartition.frontier import Frontier
from labeler.join.labels import LabelSpec

if TYPE_CHECKING:
    from labeler.config import Config


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
    frontier_votes: int = 3

    def frontier(self, top: Sequence[float] = ()) -> Frontier:
        """A source partition's frontier under these rules (``top``: a persisted state)."""
        return Frontier(self.lateness, self.frontier_votes, ahead_s=self.window + self.grace,
                        top=top)


def join_rules(config: Config) -> JoinRules:
    """The join's parameters and label columns from the ``[join]`` and ``[[labels]]`` config."""
    j = config.join
    labels = tuple(
        LabelSpec(lc.name, lc.outcome, lc.agg)
        if lc.default is None
        else LabelSpec(lc.name, lc.outcome, lc.agg, lc.default)
        for lc in config.labels
    )
    return JoinRules(
        window=j.window_s, grace=j.grace_s, early_tolerance=j.early_tolerance_s,
        lateness=j.allowed_lateness_s, idle_after=j.idle_after_s,
        dedupe_horizon=j.dedupe_horizon_s, labels=labels,
        keep_late_outcomes=j.keep_late_outcomes, frontier_votes=j.frontier_votes,
    )
