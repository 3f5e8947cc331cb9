"""Synthetic streams with known change points, for the drift evaluation.

Each :class:`Scenario` yields its events in chunks (so a 10^6-event stream
never sits in memory) and states where its distribution changes. Changes
toggle between two regimes every ``spacing`` events, so one stream holds many
changes in both directions and gives a delay distribution, not an anecdote.
Stationary scenarios have no change at all: every alarm on them is false.

The concept scenario uses River's SEA generator through ``ConceptDriftStream``
(gradual change over about ``width`` events). That generator computes
``exp(4 (position - t) / width)``, which overflows once ``position - t``
exceeds about 177 widths, so the width is kept above ``position / 150``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from river.datasets import synth

Family = Literal["numeric", "score", "categorical", "labels", "concept"]

CATEGORIES = ("a", "b", "c", "d", "e", "f", "g")
STATIONARY_SHARES = (0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02)
SHIFT_A = (0.4, 0.3, 0.2, 0.1)
SHIFT_B = (0.3, 0.3, 0.2, 0.2)  # L-infinity 0.1 from SHIFT_A

SEA_MODEL_THETA = 8.0
"""The "deployed model" of the concept scenario: SEA variant 0's rule (positive above it)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A stream with known change points.

    ``chunks(rng, size)`` yields arrays (or tuples of arrays) of at most
    ``size`` consecutive events; together they hold ``events`` events.
    ``tolerance`` is the longest delay still counted as a detection.
    ``restart`` > 0 makes the stream a series of independent ``restart``-event
    segments: every monitor starts afresh at each one (to measure what
    happens at the start of a stream). ``ramp`` > 0 says each change is a
    ramp of that many events: a stream's further alarms during it are repeats,
    not false alarms. ``baseline`` is a training profile for our monitor.
    """

    name: str
    family: Family
    events: int
    change_points: tuple[int, ...]
    tolerance: int
    chunks: Callable[[np.random.Generator, int], Iterator[Any]]
    note: str
    restart: int = 0
    ramp: int = 0
    baseline: Mapping[str, Any] | None = None


def _toggle(events: int, spacing: int) -> tuple[int, ...]:
    return tuple(range(spacing, events, spacing)) if spacing else ()


def _regime(start: int, n: int, spacing: int) -> np.ndarray:
    """Boolean per event: True where the alternative regime is active."""
    idx = np.arange(start, start + n)
    return (idx // spacing) % 2 == 1 if spacing else np.zeros(n, dtype=bool)


def _ranges(events: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, events, size):
        yield start, min(size, events - start)


def numeric(
    name: str,
    events: int,
    *,
    kind: str,
    shift: float = 0.0,
    spacing: int = 0,
    tolerance: int = 2000,
    note: str = "",
) -> Scenario:
    """Gaussian (mean or scale toggles), lognormal or Poisson values."""

    def chunks(rng: np.random.Generator, size: int) -> Iterator[np.ndarray]:
        for start, n in _ranges(events, size):
            alt = _regime(start, n, spacing)
            if kind == "gauss":
                yield rng.standard_normal(n) + np.where(alt, shift, 0.0)
            elif kind == "scale":
                yield rng.standard_normal(n) * np.where(alt, shift, 1.0)
            elif kind == "lognormal":
                yield rng.lognormal(0.0, 1.0, n)
            elif kind == "poisson":
                yield rng.poisson(2.0, n).astype(float)
            elif kind == "beta":
                yield rng.beta(np.where(alt, 2.0 + shift, 2.0), 5.0)
            else:
                raise ValueError(kind)

    family: Family = "score" if kind == "beta" else "numeric"
    return Scenario(name, family, events, _toggle(events, spacing), tolerance, chunks, note)


def ar1(name: str, events: int, *, phi: float, note: str = "") -> Scenario:
    """A stationary AR(1) stream with unit variance: x[t] = phi x[t-1] + e[t]."""
    from scipy.signal import lfilter

    def chunks(rng: np.random.Generator, size: int) -> Iterator[np.ndarray]:
        zi = np.array([phi * rng.standard_normal()])
        for _, n in _ranges(events, size):
            e = rng.standard_normal(n) * math.sqrt(1.0 - phi * phi)
            x, zi = lfilter([1.0], [1.0, -phi], e, zi=zi * phi)
            zi = x[-1:]
            yield x

    return Scenario(name, "numeric", events, (), 2000, chunks, note)


def rare_binary(name: str, events: int, *, rate: float, note: str = "") -> Scenario:
    """A stationary 0/1 feature that is 1 with probability ``rate``."""

    def chunks(rng: np.random.Generator, size: int) -> Iterator[np.ndarray]:
        for _, n in _ranges(events, size):
            yield (rng.random(n) < rate).astype(float)

    return Scenario(name, "numeric", events, (), 2000, chunks, note)


def segments(
    name: str,
    events: int,
    *,
    segment: int,
    steps: tuple[tuple[int, float], ...] = (),
    ramp: int = 0,
    shift: float = 1.0,
    tolerance: int = 1000,
    baseline: Mapping[str, Any] | None = None,
    note: str = "",
) -> Scenario:
    """Independent N(0, 1) segments, each with the same changes at the same offsets.

    ``steps`` are (offset, cumulative shift in sd) pairs; with ``ramp`` the
    single change at ``steps[0]`` is a linear ramp to ``shift`` over ``ramp``
    events. Monitors restart at each segment.
    """
    offsets = tuple(o for o, _ in steps)

    def level(idx: np.ndarray) -> np.ndarray:
        pos = idx % segment
        out = np.zeros(idx.size)
        if ramp:
            start = offsets[0]
            out = np.clip((pos - start) / ramp, 0.0, 1.0) * shift
            return np.where(pos >= start, out, 0.0)
        for offset, value in steps:
            out = np.where(pos >= offset, value, out)
        return out

    def chunks(rng: np.random.Generator, size: int) -> Iterator[np.ndarray]:
        for start, n in _ranges(events, size):
            yield rng.standard_normal(n) + level(np.arange(start, start + n))

    cps = tuple(s + o for s in range(0, events, segment) for o in offsets if s + o < events)
    return Scenario(name, "numeric", events, cps, tolerance, chunks, note, restart=segment,
                    ramp=ramp, baseline=baseline)


def categorical(name: str, events: int, *, spacing: int = 0, note: str = "") -> Scenario:
    """Stationary seven-category shares, or SHIFT_A <-> SHIFT_B toggles."""

    def chunks(rng: np.random.Generator, size: int) -> Iterator[list[str]]:
        for start, n in _ranges(events, size):
            if not spacing:
                idx = rng.choice(len(STATIONARY_SHARES), n, p=STATIONARY_SHARES)
            else:
                alt = _regime(start, n, spacing)
                a = rng.choice(len(SHIFT_A), n, p=SHIFT_A)
                b = rng.choice(len(SHIFT_B), n, p=SHIFT_B)
                idx = np.where(alt, b, a)
            yield [CATEGORIES[i] for i in idx.tolist()]

    return Scenario(name, "categorical", events, _toggle(events, spacing), 4000, chunks, note)


def categorical_segments(
    name: str,
    events: int,
    *,
    segment: int,
    steps: tuple[tuple[int, tuple[float, ...]], ...],
    tolerance: int,
    note: str = "",
) -> Scenario:
    """Independent categorical segments: SHIFT_A shares, then ``steps`` (offset, shares).

    Monitors restart at each segment (a second change soon after the first
    alarm, 30 times over).
    """

    def shares_at(pos: int) -> tuple[float, ...]:
        current: tuple[float, ...] = SHIFT_A
        for offset, p in steps:
            if pos >= offset:
                current = p
        return current

    def chunks(rng: np.random.Generator, size: int) -> Iterator[list[str]]:
        for start, n in _ranges(events, size):
            out: list[str] = []
            pos = start % segment
            i = 0
            while i < n:
                # runs of one regime: up to the next step or segment end
                edges = [o for o, _ in steps if o > pos] + [segment]
                run = min(min(edges) - pos, n - i)
                p = shares_at(pos)
                idx = rng.choice(len(p), run, p=p)
                out += [CATEGORIES[j] for j in idx.tolist()]
                i += run
                pos = (pos + run) % segment
            yield out

    cps = tuple(s + o for s in range(0, events, segment) for o, _ in steps if s + o < events)
    return Scenario(name, "categorical", events, cps, tolerance, chunks, note, restart=segment)


def labels(
    name: str, events: int, *, rate: float, alt_rate: float, spacing: int = 0, note: str = ""
) -> Scenario:
    """Labels with a calibrated score: score ~ Beta with mean ``rate``, label ~ Bernoulli(score)."""

    def chunks(rng: np.random.Generator, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start, n in _ranges(events, size):
            mean = np.where(_regime(start, n, spacing), alt_rate, rate)
            scores = rng.beta(4.0 * mean, 4.0 * (1.0 - mean))
            yield scores, rng.random(n) < scores

    return Scenario(name, "labels", events, _toggle(events, spacing), 5000, chunks, note)


def sea_concept(
    name: str, events: int, *, spacing: int = 0, width: int = 500, note: str = ""
) -> Scenario:
    """SEA features with a fixed model (variant 0's rule) and concept changes 0 <-> 3.

    Yields (features x1..x3 as an (n, 3) array, scores, labels). The score is a
    logistic of the model's margin, so the error rate rises when the concept
    moves to variant 3 and falls back when it returns. Change *j* is the centre
    of a ``ConceptDriftStream`` piece that spans ``spacing`` events around it.
    """
    half = spacing // 2
    # ConceptDriftStream evaluates exp(4 (position - t) / width), which
    # overflows once position - t exceeds about 177 widths.
    safe_width = max(width, math.ceil(half / 150)) if spacing else width

    def rows(seed: int) -> Iterator[tuple[list[float], bool]]:
        first = synth.SEA(variant=0, noise=0.1, seed=seed)
        for x, y in first.take(half if spacing else events):
            yield [x[0], x[1], x[2]], bool(y)
        j = 1
        while spacing:
            a, b = (0, 3) if j % 2 else (3, 0)
            piece = synth.ConceptDriftStream(
                stream=synth.SEA(variant=a, noise=0.1, seed=seed + 2 * j),
                drift_stream=synth.SEA(variant=b, noise=0.1, seed=seed + 2 * j + 1),
                position=half,
                width=safe_width,
                seed=seed + j,
            )
            for x, y in piece.take(spacing):
                yield [x[0], x[1], x[2]], bool(y)
            j += 1

    def chunks(rng: np.random.Generator, size: int) -> Iterator[tuple[Any, ...]]:
        it = rows(int(rng.integers(1 << 30)))
        for _, n in _ranges(events, size):
            block = [next(it) for _ in range(n)]
            x = np.array([r[0] for r in block])
            y = np.array([r[1] for r in block])
            margin = (x[:, 0] + x[:, 1]) - SEA_MODEL_THETA
            yield x, 1.0 / (1.0 + np.exp(-2.0 * margin)), y

    return Scenario(name, "concept", events, _toggle(events, spacing), 6000, chunks, note)
