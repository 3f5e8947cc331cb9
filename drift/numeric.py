"""Change detection on numeric columns, a block of events at a time.

Calling a detector for every feature of every event costs more than the rest
of the pipeline, so the monitor hands over a block of ``block_size`` events as
a float matrix (one column per stream, NaN where a value is missing) and this
module works column-wise with numpy. For each column it feeds two detectors:

- location: the block mean of the values, winsorized at the reference's
  quantiles (heavy tails would otherwise look like changes), as a z-score
  against the reference;
- dispersion: the block mean absolute deviation from the reference median,
  also as a z-score.

Under no change both inputs are close to N(0, 1) whatever the feature's
scale, which is what lets one detector setting serve every feature. They are
multiplied by ``z_scale`` because ADWIN's bound has a range term that assumes
inputs in [0, 1]; scaled up, its variance term decides.

Each column keeps its own life cycle: it learns its reference from ``warmup``
events, is armed, may alarm once it has fed ``min_samples`` events and at
least ``cooldown`` events have passed since its last alarm, and after an alarm
learns a new reference (the changed distribution is the new normal), so one
change gives one alarm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Detector, Firing, make_detector
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
    __slots__ = ("name", "kind", "params", "learn", "warm", "loc", "disp", "fed", "since", "ref")

    def __init__(self, name: str, kind: str, params: dict[str, Any], warmup: int) -> None:
        self.name = name
        self.kind = kind
        self.params = params
        self.learn = warmup
        self.warm: list[np.ndarray] = []
        self.loc: Detector | None = None
        self.disp: Detector | None = None
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
        detector: str,
        params: Mapping[str, Any],
        z_scale: float,
        z_clip: float,
        winsorize: float,
        dispersion: bool,
        warmup: int,
        min_samples: int,
        cooldown: int,
        summary_blocks: int,
    ) -> None:
        self._detector = detector
        self._params = dict(params)
        make_detector(detector, self._params)  # fail fast on a bad configuration
        self._z_scale = z_scale
        self._z_clip = z_clip * z_scale
        self._winsorize = winsorize
        self._dispersion = dispersion
        self._warmup = max(warmup, 2)
        self._min_samples = min_samples
        self._cooldown = cooldown
        self._cols: list[_Column] = []
        # Reference constants per column; NaN while a column is learning.
        self._lo = np.empty(0)
        self._hi = np.empty(0)
        self._mu = np.empty(0)
        self._inv = np.empty(0)
        self._med = np.empty(0)
        self._dmu = np.empty(0)
        self._dinv = np.empty(0)
        # Raw sums of the last blocks, for the "current" summary of an alarm.
        self._ring = np.zeros((max(summary_blocks, 1), 3, 0))
        self._ring_i = 0

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(name, kind) of every column, in matrix order."""
        return [(c.name, c.kind) for c in self._cols]

    def add(self, name: str, kind: str, params: Mapping[str, Any] | None = None) -> int:
        """Register a column (``kind`` is carried to its alarms); returns its index."""
        merged = {**self._params, **(params or {})}
        self._cols.append(_Column(name, kind, merged, self._warmup))
        nan = np.array([math.nan])
        for attr in ("_lo", "_hi", "_mu", "_inv", "_med", "_dmu", "_dinv"):
            setattr(self, attr, np.concatenate([getattr(self, attr), nan]))
        self._ring = np.concatenate([self._ring, np.zeros((*self._ring.shape[:2], 1))], axis=2)
        return len(self._cols) - 1

    def process(self, a: np.ndarray) -> list[NumericAlarm]:
        """Update every column with one block; returns the alarms it raised."""
        k = a.shape[0]
        missing = np.isnan(a)
        c = np.clip(a, self._lo, self._hi)
        if missing.any():
            present = ~missing
            cnt = present.sum(axis=0).astype(float)
            a0 = np.where(present, a, 0.0)
            den = np.where(cnt > 0, cnt, math.nan)
            loc = np.where(present, c, 0.0).sum(axis=0) / den
            disp = np.where(present, np.abs(c - self._med), 0.0).sum(axis=0) / den
        else:
            cnt = np.full(a.shape[1], float(k))
            a0 = a
            loc = c.mean(axis=0)
            disp = np.abs(c - self._med).mean(axis=0)
        root = np.sqrt(cnt)
        clip = self._z_clip
        z_loc = np.clip((loc - self._mu) * root * self._inv, -clip, clip).tolist()
        z_disp = np.clip((disp - self._dmu) * root * self._dinv, -clip, clip).tolist()
        slot = self._ring[self._ring_i % len(self._ring)]
        slot[0] = cnt
        slot[1] = a0.sum(axis=0)
        slot[2] = (a0 * a0).sum(axis=0)
        self._ring_i += 1

        alarms: list[NumericAlarm] = []
        counts = cnt.tolist()
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
            fired = col.loc.update(zl)  # type: ignore[union-attr]
            stream = "mean"
            if dispersion and col.disp.update(zd) and not fired:  # type: ignore[union-attr]
                fired, stream = True, "dispersion"
            if fired and col.fed >= min_samples and col.since >= cooldown:
                alarms.append(self._alarm(j, stream))
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
        self._lo[j], self._hi[j], self._mu[j], self._med[j] = lo, hi, mu, med
        self._inv[j] = self._z_scale / sd
        self._dmu[j] = float(dev.mean())
        self._dinv[j] = self._z_scale / dsd
        col.ref = numeric_summary(float(x.size), float(x.mean()), float(x.std()))
        col.loc = make_detector(self._detector, col.params)
        col.disp = make_detector(self._detector, col.params) if self._dispersion else None
        col.fed = 0

    def _alarm(self, j: int, stream: str) -> NumericAlarm:
        col = self._cols[j]
        detector = col.loc if stream == "mean" else col.disp
        assert detector is not None and detector.last_firing is not None  # noqa: S101
        # "current" covers the blocks after the estimated change point when the
        # detector knows it, else the whole summary ring.
        size = len(self._ring)
        m = min(detector.last_firing.recent or size, size, self._ring_i)
        rows = [(self._ring_i - 1 - i) % size for i in range(m)]
        n, s1, s2 = self._ring[rows, :, j].sum(axis=0).tolist()
        mean = s1 / n if n else math.nan
        std = math.sqrt(max(s2 / n - mean * mean, 0.0)) if n else math.nan
        alarm = NumericAlarm(
            name=col.name,
            kind=col.kind,
            stream=stream,
            firing=detector.last_firing,
            params={**col.params, "z_scale": self._z_scale, "winsorize": self._winsorize},
            reference=col.ref,
            current=numeric_summary(n, mean, std),
        )
        # Relearn: the changed distribution becomes the reference.
        col.learn = self._warmup
        col.since = 0.0
        col.loc = col.disp = None
        for attr in ("_lo", "_hi", "_mu", "_inv", "_med", "_dmu", "_dinv"):
            getattr(self, attr)[j] = math.nan
        return alarm
