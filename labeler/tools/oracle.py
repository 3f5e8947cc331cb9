"""The oracle: the labels a plain in-memory join of the same input gives.

No watermarks, no state, no Kafka: for each distinct prediction id, take the
distinct outcomes with the same id whose event time lies in
``[t - early_tolerance, t + window]`` and aggregate them. Tests and the demo
compare the streaming labeler's shards against this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from ingest.records import Outcome, Prediction
from labeler.join.labels import LabelSpec


def oracle_labels(
    predictions: Iterable[Prediction],
    outcomes: Iterable[Outcome],
    window: float,
    early_tolerance: float,
    labels: Sequence[LabelSpec],
) -> pd.DataFrame:
    """One row per distinct prediction id: ``prediction_id``, each ``label_<name>``,
    ``outcome_count``. The first copy of a duplicated prediction wins."""
    by_id: dict[str, dict[Any, Outcome]] = defaultdict(dict)
    for o in outcomes:
        by_id[o.join_id].setdefault(o.dedupe_key, o)
    rows = []
    seen: set[str] = set()
    for p in predictions:
        if p.join_id in seen:
            continue
        seen.add(p.join_id)
        t = p.event_time
        inside = [
            o for o in by_id.get(p.join_id, {}).values()
            if t - early_tolerance <= o.event_time <= t + window
        ]
        row: dict[str, Any] = {"prediction_id": p.join_id}
        for spec in labels:
            row[spec.column] = spec.compute(t, inside)
        row["outcome_count"] = len(inside)
        rows.append(row)
    return pd.DataFrame(rows)
