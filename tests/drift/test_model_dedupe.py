"""One event per change per model across a worker's partitions (labeler.runtime.drift_hub)."""

import random
from collections import Counter

import msgpack

from drift.settings import DriftSettings
from ingest.records import Prediction, SourceRef
from labeler.runtime.drift_hub import DriftHub


def feed(hub: DriftHub, partitions: int, n: int, shift_at: list[int], shift: float,
         rng: random.Random, t0: float = 0.0) -> None:
    """Interleave partitions; partition p's mean moves by ``shift`` at its own ``shift_at[p]``."""
    for i in range(n):
        for p in range(partitions):
            mean = shift if i >= shift_at[p] else 0.0
            pred = Prediction(f"{p}-{i}", t0 + i * 10.0 + p, "m", None,
                              {"x": rng.gauss(mean, 1.0)}, {})
            hub.observe_prediction(pred, SourceRef("p", p, i))


def test_one_change_seen_by_three_partitions_far_apart_is_one_event() -> None:
    # Detections land thousands of event-seconds apart, beyond episode_s.
    hub = DriftHub(DriftSettings(episode_s=60.0), "unused", Counter(), None)
    feed(hub, 3, 9000, [3000, 4500, 6000], 2.0, random.Random(0))
    published = [(e.feature, e.stream) for e in hub.events]
    assert published == [("x", "mean")]
    assert hub.counters["drift.same_episode"] == 2


def test_a_partition_reporting_again_is_a_new_change() -> None:
    hub = DriftHub(DriftSettings(episode_s=60.0), "unused", Counter(), None)
    rng = random.Random(1)
    feed(hub, 2, 6000, [2000, 2500], 2.0, rng)
    assert len(hub.events) == 1
    # Both partitions come back down to 0 (shift 0 from their first event):
    # a new change, reported once again.
    feed(hub, 2, 4000, [0, 0], 0.0, rng, t0=1e6)
    assert [e.current["mean"] < e.reference["mean"] for e in hub.events] == [False, True]
    assert hub.counters["drift.same_episode"] == 2


def test_hub_state_is_per_partition_and_restores_the_monitor() -> None:
    settings = DriftSettings()
    a = DriftHub(settings, "unused", Counter(), None)
    rng = random.Random(2)
    feed(a, 2, 1500, [10**9, 10**9], 0.0, rng)
    blob = msgpack.packb(a.state(1))
    b = DriftHub(settings, "unused", Counter(), None)
    b.restore(1, msgpack.unpackb(blob, strict_map_key=False))
    assert b.monitors[1].state() == a.monitors[1].state()
    assert a.state(7) is None
    b.restore(3, {"version": 1, "models": {"m": {}}, "schema": []})  # broken: fresh, counted
    assert b.counters["drift.internal_error"] == 1 and b.monitors[3].state()["models"] == {}
