"""The drift event record and its JSON log form."""

import json
import math
from typing import Any

import pytest

from drift.events import KINDS, DriftEvent


def event(**over: Any) -> DriftEvent:
    base: dict[str, Any] = dict(
        model="ctr",
        kind="data",
        stream="mean",
        feature="price",
        detector="PageHinkley",
        params={"delta": 1.0, "threshold": 8.0},
        statistic_name="cumulative_deviation",
        statistic=9.5,
        threshold=8.0,
        event_time=1718000000.5,
        source="raw.predictions[3]@1200",
        reference={"n": 1000.0, "mean": 10.0, "std": 2.0},
        current={"n": 144.0, "mean": 14.0, "std": 2.1},
    )
    base.update(over)
    return DriftEvent(**base)


def test_to_dict_is_the_json_log_form() -> None:
    d = event().to_dict()
    assert d["event"] == "drift"
    for key in ("model", "kind", "stream", "feature", "detector", "params", "statistic"):
        assert key in d
    assert d["threshold"] == 8.0 and d["source"] == "raw.predictions[3]@1200"
    assert d["reference"]["mean"] == 10.0 and d["current"]["n"] == 144.0
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_non_finite_numbers_become_null() -> None:
    d = event(threshold=math.nan, reference={"n": math.inf, "top": [("a", 0.5)]}).to_dict()
    assert d["threshold"] is None
    assert d["reference"] == {"n": None, "top": [["a", 0.5]]}
    json.dumps(d, allow_nan=False)


def test_events_are_immutable_and_kinds_are_listed() -> None:
    e = event()
    with pytest.raises(AttributeError):
        e.model = "other"  # type: ignore[misc]
    assert set(KINDS) == {"data", "prediction", "concept", "schema", "skew"}
