"""A change in the shares of a few cells: a two-window likelihood-ratio test on counts.

Labels arrive one at a time and each falls in one of a few cells (positive or
not; with a score, also error or not: four cells). When nothing changes the
cells' shares are constant; a concept change moves them. :class:`ShareTest`
asks, every ``clock`` labels, whether the labels since some earlier point
have other shares than the labels before it: for each candidate split it
computes the generalized log-likelihood ratio (GLR) of "two multinomials, one
before and one after the split" against "one multinomial throughout"::

    L = sum_c a_c log(a_c / n_a) + b_c log(b_c / n_b) - (a_c + b_c) log((a_c + b_c) / n)

(``a``/``b`` the cell counts before/after, ``n_a``/``n_b`` their totals).
That is the statistic a change-point test on counts should use: it weighs a
move of a rare cell by that cell's own noise, and one test of the joint cells
sees a change that shows partly in the positive rate and partly in the error
rate at full strength, where two separate tests each see only their part.

Why not ADWIN: its per-check confidence ``delta`` is repeated over every
check without accounting (about 31,000 checks per 10^6 labels gave ~0.07
false alarms per 10^6 per stream in ``drift-eval``), and its bound is built
for any stream in [0, 1], not for counts. Here the threshold comes from a
target false-alarm rate per label, ``false_alarms_per_million``: under no
change ``2 L`` at one split is about chi-square with ``cells - 1`` degrees of
freedom, and a Bonferroni bound over the candidate splits of a check and
over the checks (one per ``clock`` labels) gives each split the level
``alpha * clock / M`` for ``alpha`` false alarms per label and ``M``
candidates. The bound is conservative, because the splits of one check and
successive checks are strongly correlated: at the default target, 1 per
10^6, stationary streams gave 0.1 per 10^6 (two cells, Bernoulli(0.2)) and
0.05 per 10^6 (four cells, shares of the evaluation's label stream), 2·10^7
labels each; at a target of 10, 0.3 and about 1 per 10^6. The default is
the lowest of the targets tried (0.3, 1, 3, 10) whose delays beat ADWIN's on
every seed (0-5) of the evaluation's label-rate and SEA streams (README,
Evaluation).

Candidate splits lie on a geometric grid of the block boundaries (a block is
``clock`` labels): the most recent ``per_level`` boundaries are all kept,
then every second one over the next ``2 * per_level`` blocks, every fourth
over the next ``4 * per_level``, and so on, so a split is always within
about ``1 / per_level`` of its age, and memory is a few hundred count
vectors however long the history. History older than ``window`` labels is
forgotten (the grid is thinned every fourth block).

After an alarm the history starts again with the labels that follow it. Not
with those after the split: that piece was picked *because* it looks unlike
what came before, so as a history it is biased, and when the stream turns
out to be as before (a false alarm, or an overshoot of a real change) the
test finds a "change back" against it. Restarting at the split, each of the
three false alarms on 10^7 stationary Bernoulli(0.2) labels (target 10 per
10^6) was followed by such an echo within 500 labels.

>>> import random
>>> rng = random.Random(7)
>>> test = ShareTest(2)
>>> hits = [i for i in range(20_000)
...         if test.update(int(rng.random() < (0.2 if i < 10_000 else 0.4)))]
>>> 10_000 < hits[0] < 10_600, test.last.statistic >= test.last.threshold
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from drift.errors import DriftConfigError, DriftError

NAME = "GLR"
"""The detector name of a :class:`ShareTest` in settings and drift events."""

STATISTIC = "log_likelihood_ratio"
"""The ``statistic_name`` of its firings."""

DEFAULTS: Mapping[str, float | int] = {
    "false_alarms_per_million": 1.0,
    "clock": 32,
    "per_level": 32,
    "window": 1 << 18,
}
"""The parameters a :class:`ShareTest` takes, with their defaults."""


@dataclass(frozen=True, slots=True)
class Split:
    """What a :class:`ShareTest` found when it fired.

    ``statistic`` is the largest log-likelihood ratio of this check, at the
    split between ``before`` and ``after`` (cell counts), and ``threshold``
    the level it crossed (``statistic >= threshold``). ``candidates`` is the
    number of splits tested at this check, ``n`` the labels in the history.
    """

    statistic: float
    threshold: float
    before: tuple[int, ...]
    after: tuple[int, ...]
    candidates: int
    n: int


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X chi-square with ``df`` (a positive integer) degrees of freedom.

    The closed forms of the regularized upper gamma function at integer and
    half-integer shape, accurate far into the tail (no scipy at run time).

    >>> round(chi2_sf(3.841458820694124, 1), 6), round(chi2_sf(7.814727903251178, 3), 6)
    (0.05, 0.05)
    """
    if x <= 0.0:
        return 1.0
    h = x / 2.0
    if df % 2 == 0:
        term = total = math.exp(-h)
        for i in range(1, df // 2):
            term *= h / i
            total += term
        return total
    total = math.erfc(math.sqrt(h))
    term = math.exp(-h) * math.sqrt(h) / math.gamma(1.5)
    for i in range((df - 1) // 2):
        total += term
        term *= h / (i + 1.5)
    return total


@lru_cache(maxsize=4096)
def threshold(df: int, level: float) -> float:
    """The log-likelihood ratio ``L`` with P(chi-square(df) > 2 L) = ``level``."""
    if not 0.0 < level < 1.0:
        raise DriftConfigError(f"a test level must be in (0, 1), not {level}")
    lo, hi = 0.0, 1.0
    while chi2_sf(hi, df) > level:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if chi2_sf(mid, df) > level:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * hi:
            break
    return hi / 2.0


_TABLE = np.zeros(1)
"""``v log v`` for v = 0, 1, 2, ... (grown on demand): counts are integers, a lookup beats a log."""


def _xlogx(limit: int) -> np.ndarray:
    """The table of ``v log v`` covering 0..``limit``."""
    global _TABLE
    if limit >= _TABLE.size:
        v = np.arange(max(limit + 1, 2 * _TABLE.size, 1 << 12), dtype=float)
        v[0] = 1.0
        _TABLE = v * np.log(v)
    return _TABLE


class ShareTest:
    """GLR test for a change in the shares of ``cells`` cells; one thread only.

    ``update(cell)`` adds one observation (an int in ``range(cells)``) and
    returns True when this update completed a check that fired; ``last``
    then holds the :class:`Split` and the history starts again with the next
    observation (not at the split: see the module docstring).
    ``test=False`` adds the observation without checking (warm-up), and so
    does a check while the history holds fewer than ``min_history`` observations.
    """

    __slots__ = ("cells", "params", "alpha", "clock", "per_level", "window", "min_history",
                 "_pos", "_cum", "_tot", "_base", "_size", "_now", "_fill", "_blocks",
                 "fired", "last", "taken")

    def __init__(
        self, cells: int, params: Mapping[str, Any] | None = None, *, min_history: int = 0
    ) -> None:
        unknown = set(params or {}) - set(DEFAULTS)
        if unknown:
            raise DriftConfigError(
                f"unknown {NAME} parameter(s) {sorted(unknown)}; it takes {sorted(DEFAULTS)}")
        p = {**DEFAULTS, **(params or {})}
        if cells < 2:
            raise DriftConfigError("a share test needs at least 2 cells")
        try:
            self.alpha = float(p["false_alarms_per_million"]) * 1e-6
            self.clock, self.per_level = int(p["clock"]), int(p["per_level"])
            self.window = int(p["window"])
        except (TypeError, ValueError) as exc:
            raise DriftConfigError(f"bad parameters for {NAME}: {exc}") from exc
        if not 0.0 < self.alpha * self.clock < 1.0 or self.clock < 1 or self.per_level < 1:
            raise DriftConfigError(
                f"bad parameters for {NAME}: false_alarms_per_million must be > 0 and "
                f"small against 10^6 / clock; clock and per_level must be >= 1")
        if self.window < 2 * self.clock:
            raise DriftConfigError(f"bad parameters for {NAME}: window must be >= 2 clocks")
        self.cells = cells
        self.min_history = min_history
        self.params: dict[str, Any] = dict(p)
        # Block boundaries kept as candidate splits, in rows 0.._size-1: block
        # number (since the test began) and the cumulative cell counts there;
        # row 0 is the start of the history. _base holds each split's part of
        # the statistic that depends on the labels before it only; _tot each
        # row's total (its cumulative count of labels).
        self._pos = np.zeros(64, dtype=np.int64)
        self._cum = np.zeros((64, cells), dtype=np.int64)
        self._tot = np.zeros(64, dtype=np.int64)
        self._base = np.zeros(64)
        self._size = 1
        self._now = [0] * cells
        self._fill = 0
        self._blocks = 0
        self.fired = 0
        self.last: Split | None = None
        self.taken = 0  # cells the last feed added (also when it raised)

    @property
    def n(self) -> int:
        """Observations in the history (since the start or the last restart)."""
        return int(sum(self._now) - self._cum[0].sum())

    def counts(self) -> tuple[int, ...]:
        """Cell counts of the history."""
        return tuple(int(v) for v in np.asarray(self._now) - self._cum[0])

    def update(self, cell: int, *, test: bool = True) -> bool:
        """Add one observation in ``cell``; True if a check on it fired."""
        self._now[cell] += 1
        self._fill += 1
        if self._fill < self.clock:
            return False
        return self._tick(test)

    def add(self, counts: Sequence[int], *, test: bool = True) -> bool:
        """Add observations given as counts per cell, a block at once; True if a check
        on them fired (``test=False``: add without checking).

        A check runs once a clock's worth is in (a block that passes the
        clock is counted whole before it), so with blocks of ``clock``
        observations each block is one check and the splits lie between blocks.
        """
        now = self._now
        for c, k in enumerate(counts):
            now[c] += k
        self._fill += sum(counts)
        if self._fill < self.clock:
            return False
        return self._tick(test)

    def feed(self, cells: Sequence[int]) -> tuple[int, bool]:
        """Add observations in order until a check fires: (how many were added, fired).

        The same as ``update`` on each of ``cells`` up to the first that
        returns True, a clock's worth of labels at a time.
        """
        now, clock, m, i = self._now, self.clock, len(cells), 0
        self.taken = 0
        while i < m:
            take = max(min(clock - self._fill, m - i), 1)
            chunk = cells[i:i + take]
            counts = [chunk.count(c) for c in range(self.cells)]
            if sum(counts) != take:  # before anything is added: the test stays as it was
                raise DriftError(f"a {NAME} test's cells are 0..{self.cells - 1}")
            for c, k in enumerate(counts):
                now[c] += k
            self._fill += take
            i += take
            self.taken = i  # what is in, should the check below fail
            if self._fill >= clock and self._tick(True):
                return i, True
        return i, False

    def _tick(self, test: bool) -> bool:
        """A clock's worth of labels is in: check (if ``test``), keep the boundary, thin."""
        self._fill = 0
        self._blocks += 1
        fired = test and self._check()
        self._append()
        if not self._blocks % 4:
            self._prune()
        return fired

    def threshold(self, candidates: int) -> float:
        """The level a check with ``candidates`` splits must reach."""
        return threshold(self.cells - 1, self.alpha * self.clock / max(candidates, 1))

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Log-likelihood ratio of every candidate split now, and the splits' block numbers."""
        k = self._size
        now = np.asarray(self._now, dtype=np.int64)
        total = now - self._cum[0]
        whole = sum(self._now)
        n = whole - int(self._tot[0])
        table = _xlogx(n)
        after = now - self._cum[1:k]
        # (the labels after each split: integers, so the row totals give them exactly)
        stat = self._base[1:k] + table[after].sum(axis=1) - table[whole - self._tot[1:k]]
        stat += table[n] - table[total].sum()
        return stat, self._pos[1:k]

    def _check(self) -> bool:
        if self._size < 2 or (self.min_history and self.n < self.min_history):
            return False
        stat, _ = self.statistics()
        best = int(np.argmax(stat))
        level = self.threshold(stat.size)
        if not stat[best] >= level:
            return False
        j = best + 1
        now = np.asarray(self._now, dtype=np.int64)
        before = self._cum[j] - self._cum[0]
        after = now - self._cum[j]
        self.last = Split(
            statistic=float(stat[best]),
            threshold=level,
            before=tuple(int(v) for v in before),
            after=tuple(int(v) for v in after),
            candidates=int(stat.size),
            n=sum(self._now) - int(self._tot[0]),
        )
        self.fired += 1
        # Restart: the labels after this check are the new history (see the
        # module docstring for why not those after the split).
        self._size = 0
        return True

    def _append(self) -> None:
        k = self._size
        if k == self._pos.size:
            self._pos = np.concatenate([self._pos, np.zeros_like(self._pos)])
            self._cum = np.concatenate([self._cum, np.zeros_like(self._cum)])
            self._base = np.concatenate([self._base, np.zeros_like(self._base)])
            self._tot = np.concatenate([self._tot, np.zeros_like(self._tot)])
        self._pos[k] = self._blocks
        self._cum[k] = self._now
        self._tot[k] = sum(self._now)
        before = self._cum[k] - self._cum[0]
        na = int(before.sum())
        table = _xlogx(na)
        self._base[k] = table[before].sum() - table[na]
        self._size = k + 1

    def _keep(self, rows: np.ndarray) -> None:
        """Keep these rows (row ``rows[0]`` becomes the start of the history)."""
        origin_moved = rows[0] != 0
        k = rows.size
        self._pos[:k] = self._pos[rows]
        self._cum[:k] = self._cum[rows]
        self._base[:k] = self._base[rows]
        self._tot[:k] = self._tot[rows]
        self._size = k
        if origin_moved and k > 1:
            before = self._cum[1:k] - self._cum[0]
            na = before.sum(axis=1)
            table = _xlogx(int(na.max()))
            self._base[1:k] = table[before].sum(axis=1) - table[na]

    def _prune(self) -> None:
        """Thin the boundaries to the geometric grid and forget history beyond ``window``."""
        k = self._size
        pos = self._pos[:k]
        oldest = self._blocks - self.window // self.clock
        start = 0
        if pos[0] < oldest:
            start = min(int(np.searchsorted(pos, oldest)), k - 1)
        rest = pos[start + 1:]
        age = self._blocks - rest
        level = np.floor(np.log2(age / self.per_level + 1.0)).astype(np.int64)
        keep = (rest & ((np.int64(1) << level) - 1)) == 0
        if start == 0 and keep.all():
            return
        self._keep(np.concatenate([[start], start + 1 + np.flatnonzero(keep)]))

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` continues exactly."""
        k = self._size
        return {"name": NAME, "cells": self.cells, "params": dict(self.params),
                "pos": self._pos[:k].tolist(), "cum": self._cum[:k].tolist(),
                "now": list(self._now), "fill": self._fill, "blocks": self._blocks,
                "fired": self.fired}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a :meth:`state` of a test with the same cells and parameters."""
        if state.get("name") != NAME or int(state["cells"]) != self.cells:
            raise DriftError(f"state of a {state.get('name')} test with {state.get('cells')} "
                             f"cells given to a {NAME} test with {self.cells}")
        pos = np.asarray(state["pos"], dtype=np.int64)
        k = pos.size
        cap = max(64, 1 << (k - 1).bit_length())
        self._pos = np.zeros(cap, dtype=np.int64)
        self._cum = np.zeros((cap, self.cells), dtype=np.int64)
        self._base = np.zeros(cap)
        self._pos[:k] = pos
        self._cum[:k] = np.asarray(state["cum"], dtype=np.int64).reshape(k, self.cells)
        self._tot = np.zeros(cap, dtype=np.int64)
        self._tot[:k] = self._cum[:k].sum(axis=1)
        self._size = k
        if k > 1:  # rebuild the per-split constants
            before = self._cum[1:k] - self._cum[0]
            na = before.sum(axis=1)
            table = _xlogx(int(na.max()))
            self._base[1:k] = table[before].sum(axis=1) - table[na]
        self._now = [int(v) for v in state["now"]]
        self._fill, self._blocks = int(state["fill"]), int(state["blocks"])
        self.fired = int(state["fired"])
        self.last = None


CHANGE_LEVEL = 0.05
"""The level at which :func:`since_change` places a change (Bonferroni over its candidates)."""


def since_change(before: Sequence[Sequence[int]], after: Sequence[Sequence[int]]) -> int:
    """How many of the last ``before`` blocks (cell counts, oldest first) belong with
    ``after``: all of them, unless the likeliest single change point, the first ``j``
    of ``before`` against the rest with ``after``, has a GLR (the module's ``L``)
    significant at :data:`CHANGE_LEVEL`; then the ``len(before) - j`` after it.

    A categorical stream's window still holds blocks from before the change an
    alarm reports (the alarm can come after fewer events than the window holds);
    those must not join the history it is re-armed with, or the change would be
    found again in it.
    """
    k = len(before)
    if not k or not after or len(after[0]) < 2:
        return k
    rows = np.array([*before, *after], dtype=np.int64)
    total = rows.sum(axis=0)
    first = np.cumsum(rows, axis=0)[:k]  # candidate j = 1 .. k: the first j blocks
    rest = total - first
    n1, n2, n = first.sum(axis=1), rest.sum(axis=1), int(total.sum())
    table = _xlogx(n)
    llr = (table[first].sum(axis=1) - table[n1] + table[rest].sum(axis=1) - table[n2]
           - (table[total].sum() - table[n]))
    llr = np.where((n1 > 0) & (n2 > 0), llr, -np.inf)
    j = int(np.argmax(llr))
    if not llr[j] > threshold(rows.shape[1] - 1, CHANGE_LEVEL / k):
        return k
    return k - (j + 1)
