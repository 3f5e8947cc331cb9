"""The hub's concept-drift feed (labeler.runtime.drift_hub.DriftHub.observe_labeled): the
rows a partition labeled, given at once, are watched exactly as a monitor fed one label at a
time would watch them (each model's run of rows at once), and a row that breaks monitoring
costs only that row."""

import dataclasses
import random
from collections import Counter
from typing import Any

import pytest

from drift.events import DriftEvent
from drift.monitor import DriftMonitor
from drift.settings import DriftSettings
from ingest.records import Prediction, SourceRef
from ingest.wire.codec import packb
from labeler.join.records import LabeledExample
from labeler.runtime.drift_hub import DriftHub


def rows(n: int, seed: int) -> list[LabeledExample]:
    """Labeled rows whose positive rate moves from 0.1 to 0.5 half-way; some without a
    usable score (missing, a bool, text) and some with a non-boolean label."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rate = 0.1 if i < n // 2 else 0.5
        score = rng.choice([rng.random(), rng.random(), True, "x", None])
        prediction = {} if score is None else {"score": score}
        label: bool | int | None = rng.random() < rate
        if rng.random() < 0.02:
            label = None
        out.append(LabeledExample(Prediction(f"r{i}", 1000.0 + i, "m", None, {}, prediction),
                                  (label,), 0, None))
    return out


def with_model(e: LabeledExample, model: str) -> LabeledExample:
    return dataclasses.replace(e, prediction=dataclasses.replace(e.prediction, model=model))


Found = list[tuple[str, str | None, float | None]]


def one_at_a_time(examples: list[LabeledExample], source: SourceRef
                  ) -> tuple[list[DriftEvent], int, DriftMonitor]:
    """The same rows fed to a monitor one label at a time, by the hub's stated rules (a
    row whose monitoring raises is counted and skipped): its events, failures, monitor."""
    monitor = DriftMonitor(DriftSettings())
    found: list[DriftEvent] = []
    failures = 0
    for e in examples:
        if not isinstance(e.labels[0], bool):
            continue
        score = e.prediction.prediction.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            score = None
        try:
            found += monitor.observe_label(e.prediction.model, e.prediction.event_time, score,
                                           e.labels[0], source, label_name="clicked")
        except RuntimeError:
            failures += 1
    return found, failures, monitor


def batched(examples: list[LabeledExample], source: SourceRef) -> DriftHub:
    """The same rows given to a hub as the worker emits them, 700 at a time."""
    hub = DriftHub(DriftSettings(episode_s=0.0), "unused", Counter(), "clicked")
    for start in range(0, len(examples), 700):
        hub.observe_labeled(examples[start:start + 700], source)
    return hub


def oracle(examples: list[LabeledExample], source: SourceRef) -> Found:
    return [(e.stream, e.source, e.statistic) for e in one_at_a_time(examples, source)[0]]


@pytest.mark.parametrize("seed", range(3))
def test_rows_given_at_once_are_watched_like_one_at_a_time(seed: int) -> None:
    examples = rows(20_000, seed)
    hub = DriftHub(DriftSettings(episode_s=0.0), "unused", Counter(), "clicked")
    source = SourceRef("predictions", 2, 77)
    for start in range(0, len(examples), 700):  # the worker's emits, a batch at a time
        hub.observe_labeled(examples[start:start + 700], source)
    expected = oracle(examples, source)
    assert expected, "the rate change must be detected for this test to mean anything"
    assert [(e.stream, e.source, e.statistic) for e in hub.events] == expected
    assert all(e.partition == 2 for e in hub.events)


class Treacherous(float):
    """A score whose comparison raises: a bug inside monitoring, on one row."""

    def __ge__(self, other: object) -> bool:
        raise RuntimeError("boom")


@pytest.mark.parametrize("seed", range(3))
def test_a_row_that_breaks_monitoring_costs_that_row_as_one_at_a_time(seed: int) -> None:
    # the rows of a model go to its monitor at once; a failure is counted and costs the
    # row it happened on, and alarms found before it are kept (as one row at a time)
    rng = random.Random(seed)
    examples = rows(20_000, seed)
    for i in rng.sample(range(len(examples)), 40):
        e = examples[i]
        examples[i] = dataclasses.replace(e, prediction=dataclasses.replace(
            e.prediction, prediction={"score": Treacherous(0.5)}))
    source = SourceRef("predictions", 2, 77)
    hub = batched(examples, source)
    expected, failures, monitor = one_at_a_time(examples, source)
    assert failures > 10, "the treacherous scores must be reached"
    assert hub.counters["drift.internal_error"] == failures
    assert expected, "the rate change must be detected for this test to mean anything"
    assert [(e.stream, e.source, e.event_time, e.statistic) for e in hub.events] == \
        [(e.stream, e.source, e.event_time, e.statistic) for e in expected]
    assert packb(hub.state(2)) == packb(monitor.state())


@pytest.mark.parametrize("seed", range(3))
def test_rows_of_several_models_are_watched_per_model_in_order(seed: int) -> None:
    examples = rows(30_000, seed)
    rng = random.Random(seed)
    model, runs = "m", []
    for e in examples:  # runs of one model, then another
        if rng.random() < 0.01:
            model = "m" if model == "n" else "n"
        runs.append(with_model(e, model))
    examples = runs
    source = SourceRef("predictions", 2, 77)
    hub = batched(examples, source)
    expected, _, _ = one_at_a_time(examples, source)
    assert len({e.model for e in expected}) == 2, "both models' changes must be found"
    assert [(e.model, e.event_time, e.stream, e.statistic) for e in hub.events] == \
        [(e.model, e.event_time, e.stream, e.statistic) for e in expected]


def test_monitoring_cpu_is_counted_within_the_callers_own_cpu() -> None:
    import time

    hub = DriftHub(DriftSettings(), "unused", Counter(), "clicked")
    rng = random.Random(9)
    began = time.thread_time()
    for i in range(4000):
        p = Prediction(f"r{i}", 1000.0 + i, "m", None, {"x": rng.gauss(0, 1), "c": "a"},
                       {"score": rng.random()})
        hub.observe_prediction(p, SourceRef("predictions", i % 2, i))
    hub.observe_labeled(rows(2000, 1), SourceRef("predictions", 0, 1))
    hub.state(0)
    spent = time.thread_time() - began
    measured = hub.cpu_s()
    assert 0.0 < measured <= spent
    hub.release(1)  # a revoked partition's monitoring stays counted
    assert hub.cpu_s() == measured


@pytest.mark.parametrize("failing", [(1,), (2, 3), (5, 9, 30)])
def test_a_check_that_fails_after_its_labels_went_in_takes_them_once(
        failing: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    # the share test fails inside its check, after the clock's labels were added: as one
    # at a time, those labels are in (once), the failure is counted, the rest goes on
    from drift.monitors.rates import ShareTest

    real = ShareTest._check
    rng = random.Random(1)
    examples = [dataclasses.replace(e, prediction=dataclasses.replace(  # scored: the joint test
        e.prediction, prediction={"score": rng.random()})) for e in rows(20_000, 1)]

    def run(is_batched: bool) -> tuple[list[Any], int, bytes]:
        calls = [0]

        def check(self: ShareTest) -> bool:
            calls[0] += 1
            if calls[0] in failing:
                raise RuntimeError("check")
            return real(self)

        monkeypatch.setattr(ShareTest, "_check", check)
        source = SourceRef("predictions", 2, 77)
        if is_batched:
            hub = batched(examples, source)
            return ([(e.stream, e.event_time, e.statistic) for e in hub.events],
                    hub.counters["drift.internal_error"], packb(hub.state(2)))
        found, failures, monitor = one_at_a_time(examples, source)
        return ([(e.stream, e.event_time, e.statistic) for e in found], failures,
                packb(monitor.state()))

    one, many = run(False), run(True)
    assert one[1] == len(failing)
    assert one[0], "the rate change must be detected for this test to mean anything"
    assert many == one
