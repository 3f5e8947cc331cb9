"""Every aggregation, with and without outcomes (a contract over AGGREGATIONS)."""

from __future__ import annotations

import pytest

from ingest.records import Outcome
from labeler.join.labels import AGGREGATIONS, LabelSpec

T = 100.0
OUTCOMES = [
    Outcome("a", 104.0, "purchase", 5.0),
    Outcome("a", 101.0, "purchase", 20.0),
    Outcome("a", 102.0, "purchase", None),
    Outcome("a", 103.0, "click", 99.0),
]

EXPECTED = {
    "any": (True, False),
    "count": (3, 0),
    "sum": (25.0, 0.0),
    "max": (20.0, None),
    "last": (5.0, None),
    "first_delay": (1.0, None),
}


def test_expected_table_covers_every_aggregation() -> None:
    assert set(EXPECTED) == set(AGGREGATIONS)


@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_aggregation_over_purchases_and_over_nothing(agg: str) -> None:
    spec = LabelSpec("x", "purchase", agg)
    with_outcomes, without = EXPECTED[agg]
    assert spec.compute(T, OUTCOMES) == with_outcomes
    assert spec.compute(T, []) == without
    assert spec.compute(T, [OUTCOMES[3]]) == without  # only other types


def test_star_takes_every_type() -> None:
    assert LabelSpec("n", "*", "count").compute(T, OUTCOMES) == 4


def test_default_overrides_the_no_outcome_value() -> None:
    assert LabelSpec("d", "click", "first_delay", default=-1.0).compute(T, []) == -1.0


def test_unknown_aggregation_is_rejected() -> None:
    with pytest.raises(ValueError, match="agg must be one of"):
        LabelSpec("x", "click", "median")


def test_column_name_and_arrow_types() -> None:
    assert LabelSpec("clicked").column == "label_clicked"
    assert str(LabelSpec("c", agg="count").arrow_type) == "int64"
    assert str(LabelSpec("c", agg="any").arrow_type) == "bool"
    assert str(LabelSpec("c", agg="sum").arrow_type) == "double"
