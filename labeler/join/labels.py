"""Declarative label definitions and their aggregations.

A label column is defined by an outcome type and an aggregation over the
outcomes of that type that fell inside the prediction's window:

==============  ======================================  ====================
aggregation     value                                   when no outcome came
==============  ======================================  ====================
``any``         True if at least one outcome came       False
``count``       number of outcomes                      0
``sum``         sum of the outcomes' values             0.0
``max``         largest value                           null
``last``        value of the latest outcome (by time)   null
``first_delay`` seconds from prediction to first one    null
==============  ======================================  ====================

``default`` in a definition overrides the "no outcome" value. Outcomes
without a value are skipped by ``sum``, ``max`` and ``last``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ingest.records import Outcome

AGGREGATIONS = ("any", "count", "sum", "max", "last", "first_delay")
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """One label column: ``label_<name>`` = ``agg`` over outcomes of type ``outcome``.

    ``outcome = "*"`` takes every outcome type.
    """

    name: str
    outcome: str = "click"
    agg: str = "any"
    default: Any = _UNSET

    def __post_init__(self) -> None:
        if self.agg not in AGGREGATIONS:
            raise ValueError(f"label {self.name!r}: agg must be one of {AGGREGATIONS}")

    @property
    def column(self) -> str:
        return f"label_{self.name}"

    @property
    def arrow_type(self) -> pa.DataType:
        return {"any": pa.bool_(), "count": pa.int64()}.get(self.agg, pa.float64())

    def empty_value(self) -> Any:
        if self.default is not _UNSET:
            return self.default
        return {"any": False, "count": 0, "sum": 0.0}.get(self.agg)

    def compute(self, prediction_time: float, outcomes: Sequence[Outcome]) -> Any:
        """Aggregate ``outcomes`` (already deduplicated and inside the window)."""
        chosen = [o for o in outcomes if self.outcome in ("*", o.outcome_type)]
        if not chosen:
            return self.empty_value()
        return _AGG[self.agg](prediction_time, chosen)


def _values(outcomes: Sequence[Outcome]) -> list[float]:
    return [o.value for o in outcomes if o.value is not None]


def _max(_: float, outcomes: Sequence[Outcome]) -> float | None:
    values = _values(outcomes)
    return max(values) if values else None


def _last(_: float, outcomes: Sequence[Outcome]) -> float | None:
    valued = [o for o in outcomes if o.value is not None]
    if not valued:
        return None
    return max(valued, key=lambda o: o.event_time).value


_AGG: dict[str, Callable[[float, Sequence[Outcome]], Any]] = {
    "any": lambda _t, _o: True,
    "count": lambda _t, outcomes: len(outcomes),
    "sum": lambda _t, outcomes: float(sum(_values(outcomes))),
    "max": _max,
    "last": _last,
    "first_delay": lambda t, outcomes: min(o.event_time for o in outcomes) - t,
}
