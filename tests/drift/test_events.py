"""The drift event record and its JSON log form."""

import json
import math
from typing import Any

import pytest

from drift.events import KINDS, DriftEvent, Episodes, dedupe


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


def test_dedupe_keeps_the_first_report_of_a_change_across_partitions() -> None:
    a = event(partition=0).to_dict()
    near = event(partition=1, event_time=a["event_time"] + 500).to_dict()
    same_level_late = event(partition=2, event_time=a["event_time"] + 1e5,
                            current={"n": 100.0, "mean": 13.5, "std": 2.0}).to_dict()
    other_level_late = event(partition=3, event_time=a["event_time"] + 1e5,
                             current={"n": 100.0, "mean": 10.5, "std": 2.0}).to_dict()
    again_p0 = event(partition=0, event_time=a["event_time"] + 50).to_dict()
    other_feature = event(partition=1, feature="age").to_dict()
    kept = dedupe([a, near, same_level_late, again_p0, other_level_late, other_feature])
    # p1 is near in time, p2 at the same new level: the same change. p0 reporting
    # again is a new change; p3, late and at another level, is one too.
    assert kept == [a, again_p0, other_level_late, other_feature]


def test_dedupe_takes_events_or_their_json_and_respects_episode_s() -> None:
    a, b = event(partition=0), event(partition=1, event_time=1718000000.5 + 120,
                                     current={"n": 1.0, "mean": 10.0, "std": 1.0})
    assert dedupe([a, b], episode_s=600.0) == [a]
    assert dedupe([a, b], episode_s=60.0) == [a, b]
    episodes = Episodes(60.0)
    assert episodes.new(a.to_dict()) and episodes.new(b.to_dict())


def test_two_workers_seeing_one_change_report_it_once_after_dedupe() -> None:
    import random
    from collections import Counter

    from drift.settings import DriftSettings
    from ingest.records import Prediction, SourceRef
    from labeler.runtime.drift_hub import DriftHub

    rng = random.Random(3)
    workers = [DriftHub(DriftSettings(episode_s=60.0), "unused", Counter(), None)
               for _ in range(2)]
    for i in range(8000):
        for p, shift_at in enumerate((3000, 5000)):  # far apart in event time
            x = rng.gauss(2.0 if i >= shift_at else 0.0, 1.0)
            workers[p].observe_prediction(Prediction(f"{p}-{i}", i * 10.0, "m", None,
                                                     {"x": x}, {}), SourceRef("raw", p, i))
    published = sorted((e for w in workers for e in w.events), key=lambda e: e.event_time)
    assert [e.partition for e in published] == [0, 1]  # each worker publishes its own
    topic = [json.loads(json.dumps(e.to_dict())) for e in published]
    assert [r["partition"] for r in dedupe(topic)] == [0]
