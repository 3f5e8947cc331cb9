"""Where a fired detector's change began, and ADWIN's split test at the splits we can see.

River exposes no change point, nor where ADWIN cut its window. When a detector
fires, :func:`cut` estimates the number of updates since the change from the
recent inputs, and :func:`adwin_cut` re-runs ADWIN's test (Bifet & Gavalda,
2007) over the recent inputs and the grid of prefix sums a :class:`Prefix`
keeps, to report the split that crossed ADWIN's bound the most.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

RECENT = 256
"""Inputs kept per detector to locate a change and check ADWIN's cut when it fires."""


def cut(
    recent: list[float], n: int, total: float, sumsq: float, adwin: Mapping[str, Any] | None
) -> tuple[float, float, int]:
    """The likeliest change point, and ADWIN's test at the splits we can see.

    Tries every split between the last n1 values (n1 up to the recent values
    kept) and the rest. Returns, with ``adwin`` parameters, (|mean gap|, bound)
    of the split that exceeds ADWIN's bound (Bifet & Gavalda, 2007) most, and
    always the n1 whose mean gap is largest in standard errors: the estimated
    number of values since the change.
    """
    if n < 3:
        return math.nan, math.nan, 0
    mean = total / n
    var = max(sumsq / n - mean * mean, 0.0)
    mwl = int(adwin.get("min_window_length", 5)) if adwin is not None else 1
    delta = float(adwin.get("delta", 0.002)) if adwin is not None else 0.5
    dd = math.log(max(2.0 * math.log(n) / delta, 1.0 + 1e-12))
    best = (-math.inf, math.nan, math.nan)
    split, split_t = 0, -1.0
    tail = 0.0
    for n1, x in enumerate(reversed(recent), start=1):
        if n1 >= n:
            break
        tail += x
        n0 = n - n1
        gap = abs((total - tail) / n0 - tail / n1)
        m_recip = 1.0 / max(n0 - mwl + 1, 1) + 1.0 / max(n1 - mwl + 1, 1)
        eps = math.sqrt(2.0 * m_recip * var * dd) + 2.0 / 3.0 * dd * m_recip
        if gap - eps > best[0]:
            best = (gap - eps, gap, eps)
        t = gap * math.sqrt(n0 * n1 / n)
        if t > split_t:
            split, split_t = n1, t
    return best[1], best[2], split


class Prefix:
    """Prefix sums of a detector's inputs since its (re)start, on a grid that coarsens.

    ADWIN may cut its window anywhere, and River does not say where; these
    sums let :func:`adwin_cut` test every grid split (plus every split of
    the last :data:`RECENT` inputs) at a bounded memory: when the grid holds
    :data:`GRID` points, every other point is dropped and the step doubles.
    """

    __slots__ = ("step", "sums")

    def __init__(self) -> None:
        self.step = 8
        self.sums: list[float] = []

    def add(self, n: int, total: float) -> None:
        """Record the sum of the first ``n`` inputs (called after every input)."""
        if n % self.step:
            return
        self.sums.append(total)
        if len(self.sums) >= GRID:
            self.sums = self.sums[1::2]
            self.step *= 2

    def clear(self) -> None:
        self.step = 8
        self.sums = []

    def splits(self) -> list[tuple[int, float]]:
        """(n0, sum of the first n0 inputs) at every grid point."""
        step = self.step
        return [((i + 1) * step, v) for i, v in enumerate(self.sums)]


GRID = 2048
"""Most prefix sums a :class:`Prefix` keeps."""


def adwin_bound(n: int, n0: int, n1: int, var: float, mwl: int, delta: float) -> float:
    """ADWIN's bound on the mean gap of a split into n0 older and n1 recent values."""
    dd = math.log(max(2.0 * math.log(n) / delta, 1.0 + 1e-12))
    m_recip = 1.0 / max(n0 - mwl + 1, 1) + 1.0 / max(n1 - mwl + 1, 1)
    return math.sqrt(2.0 * m_recip * var * dd) + 2.0 / 3.0 * dd * m_recip


def adwin_cut(
    recent: list[float],
    n: int,
    total: float,
    sumsq: float,
    params: Mapping[str, Any],
    prefix: Prefix,
    scale: float = 1.0,
) -> tuple[float, float, int, int]:
    """(mean gap, ADWIN's bound, recent size, direction) of the split that crossed most.

    Candidates are every split of the last :data:`RECENT` inputs and every
    grid split of ``prefix``, tested with ADWIN's bound (Bifet & Gavalda,
    2007) over the whole window since the restart; the one whose gap exceeds
    its bound the most is reported, so the reported gap is above the reported
    bound whenever any candidate's is (in the evaluation, every firing).
    The inputs are the caller's values; ADWIN saw them times ``scale``.
    """
    if n < 3:
        return math.nan, math.nan, 0, 0
    mean = total / n
    var = max(sumsq / n - mean * mean, 0.0) * scale * scale
    mwl = int(params.get("min_window_length", 5))
    delta = float(params.get("delta", 0.002))
    best = (-math.inf, math.nan, math.nan, 0, 0)
    candidates = [(n - n0, total - head) for n0, head in prefix.splits() if 0 < n0 < n]
    tail = 0.0
    for n1, x in enumerate(reversed(recent), start=1):
        if n1 >= n:
            break
        tail += x
        candidates.append((n1, tail))
    for n1, tail in candidates:
        n0 = n - n1
        diff = (tail / n1 - (total - tail) / n0) * scale
        eps = adwin_bound(n, n0, n1, var, mwl, delta)
        if abs(diff) - eps > best[0]:
            best = (abs(diff) - eps, abs(diff), eps, n1, 1 if diff > 0 else -1)
    return best[1], best[2], best[3], best[4]
