"""Change detection on numeric columns, a block of events at a time.

Calling a detector for every feature of every event costs more than the rest
of the pipeline, so the monitor hands over a block of events as a float matrix
(one column per stream, NaN where a value is missing) and this module works
column-wise with numpy. Per block and column it computes two statistics:

- location: the mean of the values, winsorized at the reference's quantiles
  (heavy tails would otherwise look like changes);
- spread: the mean absolute deviation of those values from the reference
  median.

Each becomes a z-score against the reference, about N(0, 1) whatever the
feature's scale while nothing changes, clipped to +/- ``z_clip`` so that one
odd block cannot raise an alarm on its own. Location is watched by every
detector spec (by default a CUSUM, PageHinkley, for fast detection of shifts of
half a standard deviation or more, and ADWIN as a backstop for smaller lasting
ones); spread by the backstop alone.

Each column has its own life cycle: it learns its reference from ``warmup``
events, is armed, may alarm once it has fed ``min_samples`` events and at
least ``cooldown`` events have passed since its last alarm, and after an alarm
learns a new reference (the changed distribution is the new normal), so one
change gives one alarm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Firing, Spec, Watch, spec_params
from drift.events import numeric_summary


@dataclass(frozen=True, slots=True)
class NumericAlarm:
    """A column whose location or dispersion changed."""

    name: str
    kind: str
    stream: str
    firing: Firing
    params: Mapping[str, Any]
    reference: Mapping[str, float]
    current: Mapping[str, float]


class _Column:
    __slots__ = ("name", "kind", "specs", "learn", "warm", "loc", "disp", "fed", "since", "ref")

    def __init__(self, name: str, kind: str, specs: list[Spec], warmup: int) -> None:
        self.name = name
        self.kind = kind
        self.specs = specs
        self.learn = warmup
        self.warm: list[np.ndarray] = []
        self.loc: Watch | None = None
        self.disp: Watch | None = None
        self.fed = 0
        self.since = math.inf
        self.ref: dict[str, float] = {}


class NumericDrift:
    """Block-wise detection over a growing set of numeric columns.

    ``add`` registers a column and returns its index; ``process`` takes a
    ``(rows, columns)`` float matrix whose column *j* is the stream added
    *j*-th, and returns the alarms raised by this block.
    """

    def __init__(
        self,
        *,
        specs: Sequence[Spec],
        z_clip: float,
        winsorize: float,
        dispersion: bool,
        warmup: int,
        min_samples: int,
        cooldown: int,
        summary_blocks: int,
    ) -> None:
        self._specs: list[Spec] = [(name, dict(params), scale) for name, params, scale in specs]
        Watch(self._specs)  # fail fast on a bad configuration
        self._z_clip = z_clip
        self._winsorize = winsorize
        self._dispersion = dispersion
        self._warmup = max(warmup, 2)
        self._min_samples = min_samples
        self._cooldown = cooldown
        self._cols: list[_Column] = []
        # Reference constants per column; NaN while a column is learning.
        # _z_mu and _z_inv hold location for every column, then spread.
        self._lo = np.empty(0)
        self._hi = np.empty(0)
        self._med = np.empty(0)
        self._z_mu = np.empty(0)
        self._z_inv = np.empty(0)
        # Raw sums of the last blocks, for the "current" summary of an alarm.
        self._ring = np.zeros((max(summary_blocks, 1), 3, 0))
        self._ring_i = 0

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(name, kind) of every column, in matrix order."""
        return [(c.name, c.kind) for c in self._cols]

    def add(self, name: str, kind: str, params: Mapping[str, Any] | None = None) -> int:
        """Register a column (``kind`` is carried to its alarms); returns its index.

        ``params`` override the primary detector's parameters for this column.
        """
        specs: list[Spec] = list(self._specs)
        if params:
            first, first_params, scale = specs[0]
            specs[0] = (first, {**first_params, **params}, scale)
            Watch(specs)
        self._cols.append(_Column(name, kind, specs, self._warmup))
        nan = np.array([math.nan])
        for attr in ("_lo", "_hi", "_med"):
            setattr(self, attr, np.concatenate([getattr(self, attr), nan]))
        width = len(self._lo) - 1
        for attr in ("_z_mu", "_z_inv"):
            v = getattr(self, attr)
            setattr(self, attr, np.concatenate([v[:width], nan, v[width:], nan]))
        self._ring = np.concatenate([self._ring, np.zeros((*self._ring.shape[:2], 1))], axis=2)
        return len(self._cols) - 1

    def process(self, a: np.ndarray) -> list[NumericAlarm]:
        """Update every column with one block; returns the alarms it raised."""
        k, width = a.shape
        missing = np.isnan(a)
        c = np.clip(a, self._lo, self._hi)
        d = np.abs(c - self._med)
        # One reduction for raw sums, raw squares, location and spread: at one
        # call per block, numpy's per-call cost is what there is to save.
        if missing.any():
            present = ~missing
            cnt = present.sum(axis=0).astype(float)
            a0 = np.where(present, a, 0.0)
            parts = (a0, a0 * a0, np.where(present, c, 0.0), np.where(present, d, 0.0))
            sums = np.concatenate(parts, axis=1).sum(axis=0)
            den = np.concatenate((cnt, cnt))
            with np.errstate(invalid="ignore", divide="ignore"):
                z = (sums[2 * width :] / den - self._z_mu) * np.sqrt(den) * self._z_inv
            counts = cnt.tolist()
        else:
            sums = np.concatenate((a, a * a, c, d), axis=1).sum(axis=0)
            z = (sums[2 * width :] * (1.0 / k) - self._z_mu) * (math.sqrt(k) * self._z_inv)
            cnt = np.full(width, float(k))
            counts = [float(k)] * width
        z_all = np.clip(z, -self._z_clip, self._z_clip).tolist()
        z_loc, z_disp = z_all[:width], z_all[width:]
        slot = self._ring[self._ring_i % len(self._ring)]
        slot[0] = cnt
        slot[1] = sums[:width]
        slot[2] = sums[width : 2 * width]
        self._ring_i += 1

        alarms: list[NumericAlarm] = []
        dispersion = self._dispersion
        min_samples, cooldown = self._min_samples, self._cooldown
        for j, (col, n, zl, zd) in enumerate(zip(self._cols, counts, z_loc, z_disp, strict=True)):
            if not n:
                continue
            col.since += n
            if col.learn > 0:
                col.warm.append(a[:, j][~missing[:, j]])
                col.learn -= int(n)
                if col.learn <= 0:
                    self._arm(j)
                continue
            col.fed += n
            firing = col.loc.update(zl)  # type: ignore[union-attr]
            stream = "mean"
            if dispersion:
                other = col.disp.update(zd)  # type: ignore[union-attr]
                if firing is None and other is not None:
                    firing, stream = other, "dispersion"
            if firing is not None and col.fed >= min_samples and col.since >= cooldown:
                alarms.append(self._alarm(j, stream, firing))
        return alarms

    def _arm(self, j: int) -> None:
        col = self._cols[j]
        x = np.concatenate(col.warm)
        col.warm = []
        lo, hi = np.quantile(x, [self._winsorize, 1.0 - self._winsorize])
        if not hi > lo:
            # A (nearly) constant reference: clipping to it would hide any change.
            lo, hi = -math.inf, math.inf
        c = np.clip(x, lo, hi)
        mu = float(c.mean())
        med = float(np.median(x))
        dev = np.abs(c - med)
        scale = max(abs(mu), abs(med), 1.0)
        sd = max(float(c.std()), 1e-9 * scale)
        dsd = max(float(dev.std()), 1e-9 * scale)
        width = len(self._lo)
        self._lo[j], self._hi[j], self._med[j] = lo, hi, med
        self._z_mu[j], self._z_mu[width + j] = mu, float(dev.mean())
        self._z_inv[j], self._z_inv[width + j] = 1.0 / sd, 1.0 / dsd
        col.ref = numeric_summary(float(x.size), float(x.mean()), float(x.std()))
        col.loc = Watch(col.specs)
        # Spread is watched by the backstop alone: spread changes move the
        # z-score a lot (a doubled sd is +1.3 sd of |x - median| per event),
        # so the cheaper detector is fast enough there.
        col.disp = Watch(col.specs[1:] or col.specs) if self._dispersion else None
        col.fed = 0

    def _alarm(self, j: int, stream: str, firing: Firing) -> NumericAlarm:
        col = self._cols[j]
        # "current" covers the blocks after the estimated change point when
        # there is one, else the whole summary ring.
        size = len(self._ring)
        m = min(firing.recent or size, size, self._ring_i)
        rows = [(self._ring_i - 1 - i) % size for i in range(m)]
        n, s1, s2 = self._ring[rows, :, j].sum(axis=0).tolist()
        mean = s1 / n if n else math.nan
        std = math.sqrt(max(s2 / n - mean * mean, 0.0)) if n else math.nan
        alarm = NumericAlarm(
            name=col.name,
            kind=col.kind,
            stream=stream,
            firing=firing,
            params=spec_params(
                col.specs, firing.detector, z_clip=self._z_clip, winsorize=self._winsorize
            ),
            reference=col.ref,
            current=numeric_summary(n, mean, std),
        )
        # Relearn: the changed distribution becomes the reference.
        col.learn = self._warmup
        col.since = 0.0
        col.loc = col.disp = None
        width = len(self._lo)
        for attr in ("_lo", "_hi", "_med"):
            getattr(self, attr)[j] = math.nan
        for attr in ("_z_mu", "_z_inv"):
            getattr(self, attr)[[j, width + j]] = math.nan
        return alarm
