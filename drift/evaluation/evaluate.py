"""Evaluation of the drift monitors on streams with known change points.

Every scenario of :func:`scenarios` is run through our :class:`DriftMonitor`
(with the given settings, by default the shipped defaults) and, side by side,
through raw River detectors at their defaults, fed one event at a time. For
each pair it reports the detected and missed changes, the median detection
delay (events from the change to the alarm), the false alarms and their rate
per 10^6 events, and the CPU time per event.

An alarm is a detection when it is the first one within ``tolerance`` events
after a change (and before the next change). Our monitor watches several
streams at once (a label-rate change also moves the error rate): the first
alarm of each *other* stream within the tolerance is the same detection, not
a false alarm. On a ramp, a stream's further alarms until the ramp's end plus
the tolerance are *repeats* (counted apart). Any other alarm is false,
including a stream's repeated alarms for one step.

Segmented scenarios (``Scenario.restart``) restart every monitor at each
segment, so a change at event 500 is a change during the warm-up, 30 times
over; the "with baseline" one gives our monitor a training profile of the
unchanged distribution. ``quick`` runs in seconds (used by
the unit tests); ``full`` holds 10^6 events per stationary stream. River's
KSWIN costs about 250 us per update, so it only runs in ``full`` and sees the
first 20 000 events of each stream (its rate per 10^6 is extrapolated).

Run it with ``loglabel drift-eval [--size quick|full]``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.baseline.profile import build_profile
from drift.detectors import make_detector
from drift.evaluation.streams import (
    CATEGORIES,
    Scenario,
    ar1,
    categorical,
    categorical_segments,
    labels,
    numeric,
    rare_binary,
    sea_concept,
    segments,
)
from drift.monitor import DriftMonitor
from drift.settings import DriftSettings
from ingest.records import Prediction

CHUNK = 10_000

SHIFT_C = (0.25, 0.3, 0.2, 0.25)
"""The first change of the two-shift categorical segments (L-infinity 0.15 from SHIFT_A)."""
SHIFT_D = (0.25, 0.3, 0.3, 0.15)
"""Its second change (L-infinity 0.1 from SHIFT_C)."""
KSWIN_LIMIT = 20_000

SIZES = {"quick": (40_000, 40_000, 10), "full": (1_000_000, 1_000_000, 30)}
"""Events of (stationary, changing) streams, and segments of segmented ones."""


@dataclass(frozen=True, slots=True)
class Row:
    """One (scenario, monitor) result."""

    scenario: str
    monitor: str
    events: int
    changes: int
    detected: int
    missed: int
    median_delay: float
    false_alarms: int
    repeats: int
    fa_per_million: float
    us_per_event: float


def scenarios(size: str = "quick") -> list[Scenario]:
    """The evaluation streams at ``size`` (``quick`` or ``full``)."""
    still, moving, seeds = SIZES[size]
    return [
        numeric("gauss stationary", still, kind="gauss"),
        numeric("lognormal stationary", still, kind="lognormal"),
        numeric("poisson(2) stationary", still, kind="poisson"),
        ar1("AR(1) phi=0.5 stationary", still, phi=0.5),
        ar1("AR(1) phi=0.9 stationary", still, phi=0.9),
        rare_binary("rare 0/1 p=0.0005 stationary", still, rate=0.0005),
        rare_binary("rare 0/1 p=0.002 stationary", still, rate=0.002),
        numeric(
            "mean shift 0.2 sd", moving, kind="gauss", shift=0.2, spacing=20_000, tolerance=10_000
        ),
        numeric("mean shift 0.5 sd", moving, kind="gauss", shift=0.5, spacing=5000),
        numeric("mean shift 1 sd", moving, kind="gauss", shift=1.0, spacing=5000),
        numeric("variance x2", moving, kind="scale", shift=2.0**0.5, spacing=5000),
        numeric("sd x2", moving, kind="scale", shift=2.0, spacing=5000),
        segments("+5 sd from event 500", 4000 * seeds, segment=4000, steps=((500, 5.0),)),
        segments("+1 sd step at 500 (warm-up)", 4000 * seeds, segment=4000,
                 steps=((500, 1.0),)),
        segments("+1 sd step at 1008 (arming)", 4000 * seeds, segment=4000,
                 steps=((1008, 1.0),)),
        segments("+1 sd step at 100, with baseline", 4000 * seeds, segment=4000,
                 steps=((100, 1.0),), baseline=_gauss_profile()),
        segments("2nd +1 sd step 400 after the 1st", 5000 * seeds, segment=5000,
                 steps=((2000, 1.0), (2400, 2.0)), tolerance=400),
        segments("ramp +1 sd over 4000", 10_000 * seeds, segment=10_000,
                 steps=((2000, 0.0),), ramp=4000, tolerance=6000),
        numeric("score beta(2,5)<->(2.5,5)", moving, kind="beta", shift=0.5, spacing=5000),
        categorical("categorical stationary", still),
        categorical("categorical linf 0.1", moving, spacing=8000),
        categorical_segments("categorical 2nd shift 900 after the 1st", 6000 * seeds,
                             segment=6000, steps=((2000, SHIFT_C), (2900, SHIFT_D)),
                             tolerance=2000),
        labels("labels stationary p=0.2", still, rate=0.2, alt_rate=0.2),
        labels("label rate 0.2<->0.3", moving, rate=0.2, alt_rate=0.3, spacing=10_000),
        sea_concept("SEA stationary", still // 4),
        sea_concept("SEA concept 0<->3", moving // 2, spacing=10_000),
    ]


def _gauss_profile() -> dict[str, Any]:
    """A training profile of feature ``x`` ~ N(0, 1)."""
    import pandas as pd

    rng = np.random.default_rng(12345)
    return build_profile(pd.DataFrame({"x": rng.standard_normal(100_000)}))


# -- runners: each returns (event index, stream) for every alarm -------------

Alarm = tuple[int, str]
Runner = Callable[[Scenario, np.random.Generator], list[Alarm]]


def ours(settings: DriftSettings | None = None) -> Runner:
    """Our monitor with ``settings`` (default: the shipped defaults)."""

    def run(sc: Scenario, rng: np.random.Generator) -> list[Alarm]:
        profiles = {"*": sc.baseline} if sc.baseline is not None else None
        m = DriftMonitor(settings or DriftSettings(), profiles=profiles)
        alarms: list[Alarm] = []
        i = 0
        for chunk in sc.chunks(rng, CHUNK):
            for item, extra in _ours_items(sc, chunk):
                if sc.restart and i % sc.restart == 0:
                    m = DriftMonitor(settings or DriftSettings(), profiles=profiles)
                events = m.observe_prediction(item) if item is not None else []
                if extra is not None:
                    events += m.observe_label("m", float(i), extra[0], extra[1])
                alarms.extend((i, f"{e.kind}/{e.feature}/{e.stream}") for e in events
                              if e.kind not in ("schema", "skew"))
                i += 1
        return alarms

    return run


def _ours_items(sc: Scenario, chunk: Any) -> Iterator[tuple[Prediction | None, Any]]:
    fam = sc.family
    if fam in ("numeric", "score", "categorical"):
        values = chunk.tolist() if isinstance(chunk, np.ndarray) else chunk
        for v in values:
            if fam == "score":
                yield Prediction("", 0.0, "m", None, {}, {"score": v}), None
            else:
                yield Prediction("", 0.0, "m", None, {"x": v}, {}), None
    elif fam == "labels":
        scores, ys = chunk
        for s, y in zip(scores.tolist(), ys.tolist(), strict=True):
            yield None, (s, y)
    else:
        x, scores, ys = chunk
        for row, s, y in zip(x.tolist(), scores.tolist(), ys.tolist(), strict=True):
            feats = {"x1": row[0], "x2": row[1], "x3": row[2]}
            yield Prediction("", 0.0, "m", None, feats, {"score": s}), (s, y)


def river(name: str, limit: int | None = None) -> Runner:
    """A raw River detector at its defaults, one update per event.

    Numeric streams feed the value; categorical streams one ADWIN per
    category (its 0/1 indicator); label streams the label; the concept
    stream the thresholded model's error.
    """

    def run(sc: Scenario, rng: np.random.Generator) -> list[Alarm]:
        alarms: list[Alarm] = []
        if sc.family == "categorical":
            dets = {c: make_detector(name) for c in CATEGORIES}
        else:
            det = make_detector(name)
        i = 0
        for chunk in sc.chunks(rng, CHUNK):
            for x in _river_values(sc, chunk):
                if limit is not None and i >= limit:
                    return alarms
                if sc.restart and i % sc.restart == 0:
                    if sc.family == "categorical":
                        dets = {c: make_detector(name) for c in CATEGORIES}
                    else:
                        det = make_detector(name)
                if sc.family == "categorical":
                    fired = False
                    for c, d in dets.items():
                        fired = d.update(1.0 if x == c else 0.0) or fired
                else:
                    fired = det.update(x)
                if fired:
                    alarms.append((i, name))
                i += 1
        return alarms

    return run


def _river_values(sc: Scenario, chunk: Any) -> list[Any]:
    if sc.family in ("numeric", "score"):
        return list(chunk.tolist())
    if sc.family == "categorical":
        return list(chunk)
    if sc.family == "labels":
        return [1.0 if y else 0.0 for y in chunk[1].tolist()]
    _, scores, ys = chunk
    return [
        1.0 if (s >= 0.5) != y else 0.0 for s, y in zip(scores.tolist(), ys.tolist(), strict=True)
    ]


def monitors(size: str, settings: DriftSettings | None = None) -> dict[str, dict[str, Runner]]:
    """Monitors per scenario family: ours first, then River's defaults."""
    numeric_ = {
        "ours": ours(settings),
        "river ADWIN": river("ADWIN"),
        "river PageHinkley": river("PageHinkley"),
    }
    if size == "full":
        numeric_["river KSWIN"] = river("KSWIN", KSWIN_LIMIT)
    binary = {
        "ours": ours(settings),
        "river ADWIN": river("ADWIN"),
        "river DDM": river("DDM"),
        "river EDDM": river("EDDM"),
        "river HDDM_A": river("HDDM_A"),
        "river HDDM_W": river("HDDM_W"),
        "river FHDDM": river("FHDDM"),
    }
    return {
        "numeric": numeric_,
        "score": numeric_,
        "categorical": {"ours": ours(settings), "river ADWIN per category": river("ADWIN")},
        "labels": binary,
        "concept": binary,
    }


# -- scoring ------------------------------------------------------------------


def score(
    sc: Scenario, alarms: Sequence[Alarm], events: int
) -> tuple[int, int, list[int], int, int]:
    """(detected, missed, delays, false alarms, repeats) of alarms against the change points."""
    cps = [c for c in sc.change_points if c < events]
    found: dict[int, int] = {}
    streams: set[tuple[int, str]] = set()
    false = repeats = 0
    for t, stream in sorted(alarms):
        prior = [c for c in cps if c <= t]
        if prior and t - prior[-1] < sc.tolerance and (prior[-1], stream) not in streams:
            c = prior[-1]
            streams.add((c, stream))
            found.setdefault(c, t - c)
            continue
        if prior and sc.ramp and t - prior[-1] < sc.ramp + sc.tolerance:
            repeats += 1
            continue
        false += 1
    return len(found), len(cps) - len(found), sorted(found.values()), false, repeats


def run_evaluation(
    size: str = "quick",
    *,
    settings: DriftSettings | None = None,
    only: Sequence[str] | None = None,
    seed: int = 0,
    river_baselines: bool = True,
) -> list[Row]:
    """Run every (scenario, monitor) pair; ``only`` filters scenarios by name."""
    rows: list[Row] = []
    for sc in scenarios(size):
        if only and not any(o in sc.name for o in only):
            continue
        for label, runner in monitors(size, settings)[sc.family].items():
            if label != "ours" and not river_baselines:
                continue
            rng = np.random.default_rng(seed)
            t0 = time.process_time()
            alarms = runner(sc, rng)
            spent = time.process_time() - t0
            events = sc.events
            if "KSWIN" in label:
                events = min(events, KSWIN_LIMIT)
            detected, missed, delays, false, repeats = score(sc, alarms, events)
            rows.append(
                Row(
                    scenario=sc.name,
                    monitor=label,
                    events=events,
                    changes=detected + missed,
                    detected=detected,
                    missed=missed,
                    median_delay=statistics.median(delays) if delays else float("nan"),
                    false_alarms=false,
                    repeats=repeats,
                    fa_per_million=false / events * 1e6,
                    us_per_event=spent / events * 1e6,
                )
            )
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table of the rows."""
    head = (
        "| scenario | monitor | events | changes | detected | missed | median delay "
        "| false alarms | FA per 10^6 | repeats | us/event |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        delay = "-" if r.median_delay != r.median_delay else f"{r.median_delay:.0f}"
        lines.append(
            f"| {r.scenario} | {r.monitor} | {r.events} | {r.changes} | {r.detected} "
            f"| {r.missed} | {delay} | {r.false_alarms} | {r.fa_per_million:.1f} "
            f"| {r.repeats} | {r.us_per_event:.2f} |"
        )
    return "\n".join(lines)
