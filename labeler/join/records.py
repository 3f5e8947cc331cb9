"""The labeler's output record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.records import Prediction


@dataclass(frozen=True, slots=True)
class LabeledExample:
    """A prediction with its label columns, emitted once its window closed.

    ``labels`` follow the order of the configured label definitions.
    ``first_outcome_delay`` is seconds from the prediction to its earliest
    in-window outcome of any type (negative for an outcome logged slightly
    before its prediction), or ``None`` when none came.
    """

    prediction: Prediction
    labels: tuple[Any, ...]
    outcome_count: int
    first_outcome_delay: float | None
    late: bool = False
