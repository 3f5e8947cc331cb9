"""The one comparison every reliability and end-to-end test makes: the dataset
against the oracle (``labeler.tools.oracle``, the plain in-memory join)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def assert_equals_oracle(shards: pd.DataFrame, truth: pd.DataFrame,
                         columns: Sequence[str] = ("label_clicked", "outcome_count")) -> None:
    """Every id of the truth exactly once, with the same value in every ``columns``
    (each of which both sides must have); the message names how many rows differ and
    shows a few."""
    for column in columns:
        assert column in truth.columns, f"the oracle has no column {column!r}"
        assert column in shards.columns, (
            f"the dataset has no column {column!r} (it has {sorted(shards.columns)})")
    duplicated = shards.prediction_id[shards.prediction_id.duplicated()]
    assert duplicated.empty, f"{len(duplicated)} labels written twice, e.g. {list(duplicated[:5])}"
    missing = set(truth.prediction_id) - set(shards.prediction_id)
    extra = set(shards.prediction_id) - set(truth.prediction_id)
    assert not missing, f"{len(missing)} of {len(truth)} labels missing, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} rows the oracle does not have, e.g. {sorted(extra)[:5]}"
    merged = truth.merge(shards, on="prediction_id", suffixes=("_truth", "_out"))
    for column in columns:
        wrong = merged[merged[f"{column}_truth"] != merged[f"{column}_out"]]
        assert wrong.empty, (
            f"{len(wrong)} of {len(merged)} rows differ in {column}:\n"
            + wrong[["prediction_id", f"{column}_truth", f"{column}_out"]].head(10).to_string())
