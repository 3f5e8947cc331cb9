"""The cheaper block and label steps against the old ones (tests/drift/reference_blocks.py):
the same matrices (NaN positions included), schema events, category counts in the same key
order, drift events and states, over many random streams; and a state the old code saved
restores into the current code and continues exactly as the old code would have."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

import drift.blocks as blocks
from drift.baseline.profile import build_profile
from drift.model_state import FEATURE, PRED
from drift.monitor import DriftMonitor
from drift.monitors.labels import LabelDrift
from drift.monitors.rates import ShareTest
from drift.reports import Evidence, SchemaLog
from drift.settings import DriftSettings, LabelSettings, PredictionSettings
from ingest.records import Prediction, SourceRef
from tests.drift import reference_blocks as ref

ODD = [None, "2.5", "x", "", True, False, 3, 2**70, [1.0], {"a": 1}, b"1.5", " 4 "]


def odd_value(rng: random.Random) -> Any:
    return rng.choice(ODD)


def numeric_state(rng: random.Random, nf: int, np_: int) -> tuple[Any, list[str], list[str]]:
    st = DriftMonitor(DriftSettings())._new_model("m")
    fnames = [f"f{i}" for i in range(nf)]
    pnames = [f"p{i}" for i in range(np_)]
    rng.shuffle(fnames)
    for name in fnames:
        blocks.register(DriftSettings(), st, FEATURE, name, 0.0)
    for name in pnames:
        blocks.register(DriftSettings(), st, PRED, name, 0.0)
    return st, fnames, pnames


def random_rows(rng: random.Random, names: list[str], n: int, odd: float,
                missing: float) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {"other": "text"}
        for name in names:
            if rng.random() < missing:
                continue
            row[name] = odd_value(rng) if rng.random() < odd else rng.gauss(0.0, 1.0)
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(300))
def test_matrix_is_the_old_matrix_with_the_same_schema_events(seed: int) -> None:
    rng = random.Random(seed)
    nf = rng.randint(0, 6)
    st, fnames, pnames = numeric_state(rng, nf, rng.randint(0 if nf else 1, 2))
    n = rng.randint(1, 20)
    odd = rng.choice([0.0, 0.0, 0.01, 0.1, 0.5])
    missing = rng.choice([0.0, 0.0, 0.02, 0.3])
    feats = random_rows(rng, fnames, n, odd, missing)
    preds = random_rows(rng, pnames, n, odd, missing)

    def record(i: int) -> Evidence:
        return Evidence("m", 1000.0 + i, f"src@{i}")

    results = []
    for matrix in (ref.matrix, blocks.matrix):
        schema, events = SchemaLog(60.0), []
        try:
            a: Any = matrix(schema, st, feats, preds, record, events)
        except Exception as exc:  # noqa: BLE001 - the same failure is the same result
            a = type(exc)
        results.append((a, repr(events), schema.state()))
    (old, old_events, old_log), (new, new_events, new_log) = results
    if isinstance(old, type):
        assert new is old
    else:
        assert new.shape == old.shape and new.dtype == old.dtype
        np.testing.assert_array_equal(new, old)  # NaN where NaN
        assert np.array_equal(np.signbit(new), np.signbit(old))
    assert new_events == old_events and new_log == old_log


class Recorder:
    """A categorical monitor that records the counts it is given, keys in their order."""

    specs: list = []
    window = 1

    def __init__(self) -> None:
        self.seen: list[list[tuple[Any, int]]] = []

    def update(self, counts: Counter) -> None:
        self.seen.append(list(counts.items()))


@pytest.mark.parametrize("seed", range(200))
def test_category_counts_are_the_old_counts_in_the_same_order(seed: int) -> None:
    rng = random.Random(seed)
    names = [(FEATURE, f"c{i}") for i in range(rng.randint(0, 4))]
    names += [(PRED, f"k{i}") for i in range(rng.randint(0, 2))]
    rng.shuffle(names)
    values = ["a", "b", "c", "dd", None, True, False, 1, 2.5, "true"]
    weights = [rng.random() for _ in values]
    plain = rng.random() < 0.5  # strings only
    missing = rng.choice([0.0, 0.0, 0.05])

    def row(src: int) -> dict[str, Any]:
        out: dict[str, Any] = {"x": 1.0}
        for s, name in names:
            if s == src and rng.random() >= missing:
                out[name] = (rng.choice("abc") if plain
                             else rng.choices(values, weights)[0])
        return out

    buf = [Prediction(f"r{i}", float(i), "m", None, row(FEATURE), row(PRED))
           for i in range(rng.choice([0, 1, 5, 64]))]
    seen = []
    for categorical in (ref.categorical, blocks.categorical):
        st = DriftMonitor(DriftSettings())._new_model("m")
        st.cats = {key: Recorder() for key in names}  # type: ignore[misc]
        st.cat_buf = list(buf)
        categorical(st, lambda: Evidence("m", 0.0), [])
        assert st.cat_buf == []
        seen.append([c.seen for c in st.cats.values()])  # type: ignore[attr-defined]
    assert seen[1] == seen[0]


# -- the monitor end to end --------------------------------------------------------------


def stream(seed: int, n: int) -> list[tuple[Prediction, SourceRef]]:
    """Predictions with numeric, categorical and score shifts, features that appear and
    disappear, the odd bad value and a second model."""
    rng = random.Random(seed)
    change = rng.randint(2000, 5000)
    late = rng.randint(1000, n - 1000)
    out = []
    for i in range(n):
        after = i >= change
        feats: dict[str, Any] = {
            "a": rng.gauss(1.0 if after and seed % 3 == 0 else 0.0, 1.0),
            "b": rng.randint(0, 5),
            "c": rng.choices("xyz", [0.2, 0.3, 0.5] if after and seed % 3 == 1
                             else [0.5, 0.3, 0.2])[0],
            "d": rng.random() < (0.6 if after and seed % 3 == 2 else 0.3),
        }
        if i >= late:
            feats["e"] = rng.gauss(5.0, 2.0)
            feats["g"] = rng.choice(["p", "q"])
        if rng.random() < 0.01:
            feats.pop(rng.choice(list(feats)))
        if rng.random() < 0.003:
            feats["a"] = rng.choice(ODD)
        score = rng.betavariate(2 + (2 if after and seed % 2 else 0), 5)
        pred: dict[str, Any] = {"score": score, "cls": "buy" if score > 0.3 else "skip"}
        model = "m" if rng.random() < 0.9 else "n"
        out.append((Prediction(f"r{i}", 1000.0 + i, model, None, feats, pred),
                    SourceRef("predictions", 0, i)))
    return out


def settings(seed: int) -> DriftSettings:
    return DriftSettings(prediction=PredictionSettings(fields=("score", "cls")),
                         schema_cooldown_s=0.0 if seed % 2 else 60.0)


def profile() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(0, 1, 4000), "b": rng.integers(0, 6, 4000),
                       "c": rng.choice(list("xyz"), 4000, p=[0.5, 0.3, 0.2])})
    return build_profile(df)


def run(seed: int, items: list, state: dict | None = None, flush: bool = True) -> tuple:
    s = settings(seed)
    profiles = {"m": profile()} if seed % 4 == 3 else None
    m = DriftMonitor(s, profiles=profiles)
    if state is not None:
        m.restore(state)
    events = []
    for p, src in items:
        events += m.observe_prediction(p, src)
    if flush:
        events += m.flush()
    return repr(events), m


@pytest.mark.parametrize("seed", range(12))
def test_monitor_detects_as_with_the_old_steps(seed: int) -> None:
    items = stream(seed, 12_000)
    with ref.patched():
        old_events, old = run(seed, items)
    new_events, new = run(seed, items)
    assert "'data'" in new_events or "'prediction'" in new_events  # something was found
    assert new_events == old_events
    assert repr(new.state()) == repr(old.state())
    assert new.counts == old.counts


@pytest.mark.parametrize("seed", range(8))
def test_a_state_the_old_steps_saved_continues_as_they_would(seed: int) -> None:
    items = stream(seed, 10_000)
    cut = random.Random(seed).randint(100, 9_000)
    with ref.patched():
        _, first = run(seed, items[:cut], flush=False)
        saved = first.state()
        old_events, old = run(seed, items[cut:], state=saved)
    new_events, new = run(seed, items[cut:], state=saved)
    assert new_events == old_events
    assert repr(new.state()) == repr(old.state())


# -- labels -------------------------------------------------------------------------------


def label_stream(seed: int, n: int) -> tuple[list[float | None], list[bool]]:
    rng = random.Random(seed)
    change = rng.randint(n // 4, n // 2)
    scores: list[float | None] = []
    labels = []
    for i in range(n):
        score = rng.random()
        if i < change:
            p = 0.1 + 0.6 * score
        else:  # the rule flips, or the positive rate rises
            p = 0.7 - 0.5 * score if seed % 2 else 0.4 + 0.3 * score
        labels.append(rng.random() < p)
        r = rng.random()
        scores.append(None if r < 0.03 else math.nan if r < 0.04 else
                      int(score > 0.5) if r < 0.06 else score)
    return scores, labels


LABEL_SETTINGS = [
    LabelSettings(),
    LabelSettings(error="log_loss"),
    LabelSettings(rate_params={"clock": 16}, error_params={"false_alarms_per_million": 10}),
    LabelSettings(rate_detector="ADWIN"),
    LabelSettings(error_detector="ADWIN"),
]


@pytest.mark.parametrize("which", range(len(LABEL_SETTINGS)))
@pytest.mark.parametrize("seed", range(6))
def test_update_many_raises_what_update_raises_label_by_label(seed: int, which: int) -> None:
    s = LABEL_SETTINGS[which]
    scores, labels = label_stream(seed, 30_000)
    one = LabelDrift(s, warmup=500, min_samples=100, cooldown=200)
    expected = [(i, repr(a)) for i, (sc, y) in enumerate(zip(scores, labels, strict=True))
                for a in one.update(sc, y)]
    many = LabelDrift(s, warmup=500, min_samples=100, cooldown=200)
    rng = random.Random(seed)
    got, i = [], 0
    while i < len(labels):
        size = rng.choice([1, 3, 31, 32, 33, 700, 5000])
        got += [(i + j, repr(a)) for j, a in many.update_many(scores[i:i + size],
                                                              labels[i:i + size])]
        i += size
    assert expected, "the change must be found for this test to mean anything"
    assert got == expected
    assert repr(many.state()) == repr(one.state())


@pytest.mark.parametrize("seed", range(8))
def test_share_test_feed_and_statistics_are_the_old_ones(seed: int) -> None:
    rng = random.Random(seed)
    cells = rng.choice([2, 3, 4])
    params = {"clock": rng.choice([1, 4, 32]), "per_level": rng.choice([2, 32]),
              "window": rng.choice([64, 1 << 18]), "false_alarms_per_million": 30.0}
    one, many = ShareTest(cells, params), ShareTest(cells, params)
    n = 20_000
    change = rng.randint(2000, 15000)
    xs = [min(int(rng.random() * (cells if i < change else cells - 0.5)), cells - 1)
          for i in range(n)]
    fired = [i for i, x in enumerate(xs) if one.update(x)]
    got, i = [], 0
    while i < n:
        size = rng.choice([1, 5, 40, 1000])
        added, hit = many.feed(xs[i:i + size])
        i += added
        if hit:
            got.append(i - 1)
        if many._size > 1:
            for new_stat, old_stat in zip(many.statistics(), ref.statistics(many), strict=True):
                assert np.array_equal(new_stat, old_stat)
    assert got == fired
    assert many.state() == one.state()
    copy = ShareTest(cells, params)
    copy.restore(one.state())
    assert np.array_equal(copy._tot[:copy._size], one._tot[:one._size])
    tail = [rng.randrange(cells) for _ in range(3000)]
    assert [copy.update(x) for x in tail] == [one.update(x) for x in tail]


def test_feed_refuses_a_cell_out_of_range() -> None:
    with pytest.raises(Exception, match="cells are 0..1"):
        ShareTest(2).feed([0, 1, 2])


@pytest.mark.parametrize("seed", range(4))
def test_observe_labels_dates_events_like_observe_label(seed: int) -> None:
    scores, labels = label_stream(seed, 20_000)
    times = [1000.0 + i for i in range(len(labels))]
    src = SourceRef("predictions", 1, 9)
    one, many = DriftMonitor(), DriftMonitor()
    expected = [e for t, sc, y in zip(times, scores, labels, strict=True)
                for e in one.observe_label("m", t, sc, y, src, label_name="clicked")]
    got = []
    for i in range(0, len(labels), 999):
        got += many.observe_labels("m", times[i:i + 999], scores[i:i + 999],
                                   labels[i:i + 999], src, label_name="clicked")
    assert expected and got == expected
    assert list(many.history) == list(one.history) and many.counts == one.counts
