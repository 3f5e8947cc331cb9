"""Predictions given to drift monitoring a batch at a time (``DriftMonitor.observe_predictions``,
``DriftHub.observe_predictions``) are watched exactly as one at a time: the same events, in
the same order, with the same dates, and the same state afterwards."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from drift.monitor import DriftMonitor
from drift.settings import DriftSettings, SamplingSettings
from ingest.records import Prediction, SourceRef
from ingest.wire.codec import packb
from ingest.wire.schema import Schema, SchemaEnforcer
from labeler.runtime.drift_hub import DriftHub

COUNTRIES = ("DE", "US", "FR")


def traffic(n: int, seed: int) -> list[tuple[Prediction, SourceRef]]:
    """Two models, runs of each; a mean shift, a category shift and a feature that goes
    and comes back (schema events), with gaps in the offsets."""
    rng = random.Random(seed)
    out = []
    model, offset = "m", 0
    for i in range(n):
        if rng.random() < 0.02:
            model = "n" if model == "m" else "m"
        shift = 1.5 if i > n // 2 else 0.0
        feats: dict[str, Any] = {"a": rng.gauss(shift, 1.0), "b": rng.gauss(0.0, 2.0),
                                 "c": rng.choice(COUNTRIES[: 2 if i < n // 3 else 3])}
        if n // 4 < i < n // 4 + 40:
            del feats["b"]  # missing_feature, then back
        if 2 * n // 3 < i < 2 * n // 3 + 300:
            feats["b2"] = feats.pop("b")  # a rename that keeps the count: sampled offsets
        if rng.random() < 0.001:
            feats["extra"] = 1.0  # new_feature
        offset += 1 + (rng.random() < 0.1)
        out.append((Prediction(f"r{i}", 1000.0 + i, model, None, feats,
                               {"score": rng.random()}), SourceRef("p", 1, offset)))
    return out


def batches(items: list[Any], rng: random.Random) -> list[list[Any]]:
    out, i = [], 0
    while i < len(items):
        size = rng.choice((1, 2, 7, 16, 17, 100, 600))
        out.append(items[i:i + size])
        i += size
    return out


def key(e: Any) -> tuple[Any, ...]:
    return (e.kind, e.model, e.stream, e.feature, e.event_time, e.source, e.statistic)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("every", [1, 3])
def test_the_monitor_watches_a_batch_as_one_prediction_at_a_time(seed: int, every: int) -> None:
    settings = DriftSettings(warmup=300, provisional=200, sampling=SamplingSettings(every=every))
    items = traffic(6000, seed)
    one, many = DriftMonitor(settings), DriftMonitor(settings)
    expected = [e for p, s in items for e in one.observe_prediction(p, s)]
    got: list[Any] = []
    for batch in batches(items, random.Random(seed + 100)):
        got += many.observe_predictions([p for p, _ in batch], [s for _, s in batch])
    assert [key(e) for e in got] == [key(e) for e in expected]
    assert any(e.kind != "schema" for e in expected), "the traffic must raise drift events"
    assert packb(many.state()) == packb(one.state())  # bytes: NaN == NaN


def hub(settings: DriftSettings) -> DriftHub:
    schema = SchemaEnforcer({"m": Schema({"a": "float", "b": "float", "c": "str"})},
                            infer_from=50)
    return DriftHub(settings, "unused", Counter(), None, schema)


@pytest.mark.parametrize("seed", range(6))
def test_the_hub_watches_a_batch_as_one_prediction_at_a_time(seed: int) -> None:
    settings = DriftSettings(warmup=300, provisional=200, episode_s=0.0)
    items = traffic(6000, seed)
    one, many = hub(settings), hub(settings)
    for p, s in items:
        one.observe_prediction(p, s)
    for batch in batches(items, random.Random(seed)):
        many.observe_predictions([p for p, _ in batch], [s for _, s in batch])
    kinds = Counter(e.kind for e in one.events)
    assert kinds["schema"] and len(kinds) > 1, "the traffic must raise schema and drift events"
    assert [key(e) for e in many.events] == [key(e) for e in one.events]
    assert packb(many.state(1)) == packb(one.state(1))
    assert many.counters == one.counters


@pytest.mark.parametrize("seed", range(3))
def test_failures_cost_what_they_cost_one_prediction_at_a_time(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # a monitoring bug on some blocks and in some schema checks: each failure is counted,
    # costs the prediction it happened on, and the rest is watched as one at a time
    settings = DriftSettings(warmup=300, provisional=200, episode_s=0.0)
    items = traffic(6000, seed)
    rng = random.Random(seed)
    bad_blocks = {s.offset for _, s in items if rng.random() < 0.1}
    bad_checks = {s.offset for _, s in items if rng.random() < 0.1}
    hubs = []
    for batched in (False, True):
        h = hub(settings)
        monitor = h.monitor(1)
        real_flush, watch = monitor._flush, h._watch
        assert watch is not None
        real_check = watch.check

        def flush(st: Any, last: Prediction, source: SourceRef | None, force: bool = False,
                  real: Any = real_flush) -> Any:
            if source is not None and source.offset in bad_blocks:
                st.buf, st.srcs = [], []  # as a failing block: its buffer is taken
                raise RuntimeError("block")
            return real(st, last, source, force)

        def check(p: Prediction, source: SourceRef | None, real: Any = real_check) -> None:
            if source is not None and source.offset in bad_checks:
                raise RuntimeError("check")
            real(p, source)

        monkeypatch.setattr(monitor, "_flush", flush)
        monkeypatch.setattr(watch, "check", check)
        if batched:
            for batch in batches(items, random.Random(seed + 7)):
                h.observe_predictions([p for p, _ in batch], [s for _, s in batch])
        else:
            for p, s in items:
                h.observe_prediction(p, s)
        hubs.append(h)
    one, many = hubs
    assert one.counters["drift.internal_error"] >= 10, "the failures must happen"
    assert many.counters == one.counters
    assert [key(e) for e in many.events] == [key(e) for e in one.events]
    assert any(e.kind != "schema" for e in one.events)
    assert packb(many.state(1)) == packb(one.state(1))
