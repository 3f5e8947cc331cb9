"""The shared oracle comparison (tests/oracle.py) fails, and does not skip, where a
column it compares is missing on either side."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.oracle import assert_equals_oracle


def _frame(**extra: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"prediction_id": ["a", "b"], **extra})


def test_equal_frames_pass() -> None:
    same = _frame(label_clicked=[1, 0], outcome_count=[2, 0])
    assert_equals_oracle(same, same.copy())


@pytest.mark.parametrize("side", ["dataset", "oracle", "both"])
@pytest.mark.parametrize("column", ["label_clicked", "outcome_count"])
def test_a_missing_column_fails(side: str, column: str) -> None:
    full = _frame(label_clicked=[1, 0], outcome_count=[2, 0])
    short = full.drop(columns=[column])
    shards = short if side in ("dataset", "both") else full
    truth = short if side in ("oracle", "both") else full
    with pytest.raises(AssertionError, match=f"no column '{column}'"):
        assert_equals_oracle(shards, truth)


def test_a_differing_value_fails() -> None:
    with pytest.raises(AssertionError, match="1 of 2 rows differ in label_clicked"):
        assert_equals_oracle(_frame(label_clicked=[1, 1], outcome_count=[2, 0]),
                             _frame(label_clicked=[1, 0], outcome_count=[2, 0]))


def test_only_the_named_columns_are_compared() -> None:
    """A test whose labels are not the default ones names the columns it compares."""
    assert_equals_oracle(_frame(label_bought=[0, 1]), _frame(label_bought=[0, 1]),
                         columns=("label_bought",))
