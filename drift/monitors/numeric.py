"""Change detection on numeric columns, a block of events at a time.

Calling a detector for every feature of every event costs more than the rest
of the pipeline, so the monitor hands over a block of events as a float matrix
(one column per stream, NaN where a value is missing) and this module works
column-wise with numpy. Per block and column it computes two statistics:

- location: the mean of the values, winsorized at the reference's quantiles
  (heavy tails would otherwise look like changes);
- spread: the mean absolute deviation of those values from the reference
  median.

Each becomes a z-score against a **frozen reference** (the warm-up, or the
baseline profile's quantiles), clipped to +/- ``z_clip`` so that one odd
block cannot raise an alarm on its own. Both are watched by every detector
spec: by default a two-sided CUSUM against the reference (so a level that
differs from the reference from the first armed block on is a change) and
ADWIN as a backstop for small lasting shifts of location (spread goes to the
CUSUM alone).

Calibration, from the reference data (:mod:`drift.monitors.calibration`):
the lag-1 autocorrelation of the reference sets the z-scores' scale and the
blocks pooled into super-blocks, and the reference's own uncertainty raises
the CUSUM's allowance. A 0/1 column whose rarer value is expected fewer
than :data:`RARE` times per block is watched as a rate, one ADWIN update
per event (as labels are), not as a z-score.

Life cycle of a column: after ``provisional`` events it is armed against a
provisional reference; after ``warmup`` events the reference is refreshed
from all of them (unless a CUSUM is half-way to an alarm, then later) and
frozen. With a baseline, it is armed from its first event. After an alarm the
column relearns (the changed distribution is the new normal) and is armed
again ``provisional`` events later, so a second change right after the first
is detected too. ``cooldown`` only suppresses *reporting* the same change:
an alarm of the same stream in the same direction within ``cooldown`` events
of the last reported one is counted in :attr:`NumericDrift.suppressed`, not
reported, when the values since the relearning are a ramp in that direction
(a slope at 3 standard errors that a line fits better than any single step);
a second step is reported.

Per block, the work is column-wise numpy wherever it can be: the z-scores,
the counters of every column, and (through a :class:`~drift.monitors.zbank.ZBank`)
the default detectors of every z-scored column; Python runs per column only
for columns collecting reference values, rate columns, columns with other
detectors, and a column whose detector fired.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from drift.detectors import Firing, Spec, Watch, make_detector, spec_params
from drift.events import numeric_summary
from drift.monitors.calibration import allow, autocorrelation, reference, trend
from drift.monitors.columns import LEARN, RATE, Z_SCORE, Column, NumericAlarm, counters
from drift.monitors.zbank import Row, ZBank, takes

try:  # the ufunc itself: np.clip costs twice as much per call, in its Python wrapper
    from numpy._core.umath import clip as _clip  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - numpy < 2
    _clip = np.clip

__all__ = ["MIN_QUANTILES", "RARE", "NumericAlarm", "NumericDrift"]

RARE = 5.0
"""A 0/1 column whose rarer value is expected fewer times per block is watched as a rate."""

MIN_QUANTILES = 20
"""Distinct baseline quantiles needed to use them as the reference (else the warm-up)."""

BANK_FROM = 8
"""Columns from which a bank runs the default detectors (see :mod:`drift.monitors.zbank`).

Per block, a bank costs about 17 µs more than watches for one column, then
about 1 µs per further column against about 3 µs for a Watch pair: they
break even near 8 columns. Fewer columns keep a Watch each; when the monitor
reaches this many, the watches move into the bank through their checkpoint
form, which is exact."""


class NumericDrift:
    """Block-wise detection over a growing set of numeric columns.

    ``add`` registers a column and returns its index; ``process`` takes a
    ``(rows, columns)`` float matrix whose column *j* is the stream added
    *j*-th, and returns the alarms raised by this block. ``block_size`` is the
    number of rows the caller normally passes (it sizes super-blocks and the
    rare-value rule). One thread only.
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
        provisional: int | None = None,
        block_size: int = 16,
        rate_params: Mapping[str, Any] | None = None,
        bank_from: int = BANK_FROM,
    ) -> None:
        self._bank_from = bank_from
        self._specs: list[Spec] = [(name, dict(params), scale) for name, params, scale in specs]
        Watch(self._specs)  # fail fast on a bad configuration
        self._z_clip = z_clip
        self._winsorize = winsorize
        self._dispersion = dispersion
        self._warmup = max(warmup, 2)
        self._provisional = max(min(provisional or self._warmup, self._warmup), 2)
        self._min_samples = min_samples
        self._cooldown = cooldown
        self._k = max(block_size, 1)
        self._rate_params = dict(rate_params or {})
        make_detector("ADWIN", self._rate_params)
        self._cols: list[Column] = []
        self.suppressed = 0
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
        # Counters per column (their checkpoint form: columns.counters).
        self._since = np.empty(0)  # events since the last reported alarm
        self._fed = np.empty(0)  # events fed to the detectors since they started
        self._m = np.empty(0, dtype=np.int64)  # blocks per super-block
        self._acc = np.empty(0, dtype=np.int64)  # blocks in the super-block so far
        self._acc_l = np.empty(0)  # their location z-scores' sum
        self._acc_d = np.empty(0)  # and spread's
        # The default detectors of z-scored columns, and which columns they run.
        self._bank = ZBank()
        self._zlive = np.empty(0, dtype=bool)  # mode Z_SCORE
        self._banked = np.empty(0, dtype=bool)  # ... with the bank's detectors
        self._pooled = np.empty(0, dtype=bool)  # ... pooling blocks (m > 1)
        self._pooling = False  # any column pooled
        self._collecting: list[int] = []  # columns collecting reference values
        self._others: list[int] = []  # rate columns, z-scored ones with other detectors
        self._buf = np.empty((0, 0))  # the block's values, squares, clipped, deviations
        # Per block size: events per column, 1/k, sqrt(k) * _z_inv, the z-score clip.
        self._consts: tuple[np.ndarray, ...] | None = None

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(name, kind) of every column, in matrix order."""
        return [(c.name, c.kind) for c in self._cols]

    def add(
        self,
        name: str,
        kind: str,
        params: Mapping[str, Any] | None = None,
        *,
        baseline: Sequence[float] | None = None,
    ) -> int:
        """Register a column (``kind`` is carried to its alarms); returns its index.

        ``params`` override the primary detector's parameters for this column.
        ``baseline`` (training quantiles, e.g. a profile's q0..q100) is the
        reference from the first event on, if it has at least
        :data:`MIN_QUANTILES` distinct values; the first ``warmup`` served
        events then only calibrate autocorrelation.
        """
        specs: list[Spec] = list(self._specs)
        if params:
            first, first_params, scale = specs[0]
            specs[0] = (first, {**first_params, **params}, scale)
            Watch(specs)
        col = Column(name, kind, specs, self._provisional)
        self._cols.append(col)
        nan = np.array([math.nan])
        for attr in ("_lo", "_hi", "_med"):
            setattr(self, attr, np.concatenate([getattr(self, attr), nan]))
        width = len(self._lo) - 1
        for attr in ("_z_mu", "_z_inv"):
            v = getattr(self, attr)
            setattr(self, attr, np.concatenate([v[:width], nan, v[width:], nan]))
        self._ring = np.concatenate([self._ring, np.zeros((*self._ring.shape[:2], 1))], axis=2)
        self._consts = None
        for attr, fill in (("_since", math.inf), ("_fed", 0.0), ("_m", 1), ("_acc", 0),
                           ("_acc_l", 0.0), ("_acc_d", 0.0), ("_zlive", False),
                           ("_banked", False), ("_pooled", False)):
            v = getattr(self, attr)
            setattr(self, attr, np.concatenate([v, np.array([fill], dtype=v.dtype)]))
        self._bank.grow()
        if width + 1 == self._bank_from:  # the watches so far move into the bank
            for j, c in enumerate(self._cols):
                if isinstance(c.loc, Watch):
                    disp = c.disp if isinstance(c.disp, Watch) else None
                    self._install(j, c.loc.state(), disp.state() if disp else None, c.loc, disp)
                    self._sync(j)
        # Quantiles stand in for the training sample only when they resolve
        # the distribution; a 0/1 or few-valued feature learns from serving.
        if baseline is not None and len(set(baseline)) >= MIN_QUANTILES:
            col.baseline = np.asarray(baseline, dtype=float)
            col.next = self._warmup
            self._set(width, reference(col.baseline, self._winsorize, self._k, iid=True))
        self._sync(width)
        return width

    # -- a block -------------------------------------------------------------

    def process(self, a: np.ndarray) -> list[NumericAlarm]:
        """Update every column with one block; returns the alarms it raised."""
        width = a.shape[1]
        z, cnt, missing = self._scores(a)
        self._since += cnt
        # Columns collecting reference values (Python, per column).
        skip = self._collect(a, missing, cnt) if self._collecting else []
        # Z-scored columns: counters, super-blocks and the bank's detectors, all
        # at once. Usually every z-scored column takes this block.
        whole = missing is None and not skip and not self._pooling
        feed = self._zlive if whole else self._zlive & (cnt > 0.0)
        if skip:
            feed[skip] = False
        self._fed += cnt * feed
        if self._pooling:
            feed = self._pool(z, feed)
        fired: list[int] = []  # bank rows whose CUSUM fired
        hits: list[int] = []  # bank columns whose backstop fired
        if self._bank.active:
            rows = None  # every live row
            if not whole:
                banked = feed & self._banked
                spread_rows = banked if self._dispersion else np.zeros_like(banked)
                rows = np.concatenate((banked, spread_rows))
            fired, hits = self._bank.step(z, rows)
        # Columns that need Python: the others, and those whose detector fired.
        todo: set[int] = {r % width for r in fired} | set(hits) if fired or hits else set()
        if self._others:
            counts = cnt.tolist()
            for j in self._others:
                if feed[j] or (self._cols[j].mode == RATE and counts[j] and j not in skip):
                    todo.add(j)
        if not todo:
            return []
        alarms: list[NumericAlarm] = []
        bank, dispersion = self._bank, self._dispersion
        fired_rows, hit_cols = set(fired), set(hits)
        for j in sorted(todo):
            col = self._cols[j]
            firing: Firing | None = None
            stream = "mean"
            if col.mode == RATE:
                self._fed[j] += cnt[j]
                values = a[~missing[:, j], j] if missing is not None else a[:, j]
                update = col.rate.update  # type: ignore[union-attr]
                for v in values.tolist():
                    if update(v):
                        firing, stream = col.rate.last_firing, "rate"  # type: ignore[union-attr]
                        break
            elif isinstance(col.loc, Row):
                if j in fired_rows:
                    firing = bank.cusum_firing(j)
                elif j in hit_cols:
                    firing = bank.backstop_firing(j)
                if width + j in fired_rows:
                    spread = bank.cusum_firing(width + j)
                    if firing is None:
                        firing, stream = spread, "dispersion"
            else:
                firing = col.loc.update(float(z[j]))  # type: ignore[union-attr]
                if dispersion:
                    other = col.disp.update(float(z[width + j]))  # type: ignore[union-attr]
                    if firing is None and other is not None:
                        firing, stream = other, "dispersion"
            if firing is None or self._fed[j] < self._min_samples:
                continue
            same = (self._since[j] < self._cooldown and col.last == (stream, firing.direction)
                    and self._ramp(col, stream) == firing.direction)
            alarm = self._alarm(j, stream, firing)
            if same:
                self.suppressed += 1
                continue
            self._since[j] = 0.0
            col.last = (stream, firing.direction)
            alarms.append(alarm)
        return alarms

    def _scores(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The block's clipped z-scores (location, then spread), events per column, and
        where values are missing (None: nowhere).

        Also writes the block's raw sums into the summary ring.
        """
        k, width = a.shape
        if self._buf.shape != (k, 4 * width):
            self._buf = np.empty((k, 4 * width))
            self._consts = None
        if self._consts is None:
            self._consts = (np.full(width, float(k)), np.full(2 * width, 1.0 / k),
                            math.sqrt(k) * self._z_inv, np.full(2 * width, -self._z_clip),
                            np.full(2 * width, self._z_clip))
        full, inv_k, z_fac, z_lo, z_hi = self._consts
        # One reduction for raw sums, raw squares, location and spread: at one
        # call per block, numpy's per-call cost is what there is to save.
        buf = self._buf
        c = buf[:, 2 * width : 3 * width]
        d = buf[:, 3 * width :]
        _clip(a, self._lo, self._hi, out=c)
        np.subtract(c, self._med, out=d)
        np.abs(d, out=d)
        np.copyto(buf[:, :width], a)
        np.multiply(a, a, out=buf[:, width : 2 * width])
        sums = buf.sum(axis=0)
        missing = None
        if math.isnan(sum(sums[:width].tolist())):  # a NaN in a, or infinities
            missing = np.isnan(a)
            if not missing.any():
                missing = None
        if missing is not None:
            present = ~missing
            cnt = present.sum(axis=0).astype(float)
            a0 = np.where(present, a, 0.0)
            parts = (a0, a0 * a0, np.where(present, c, 0.0), np.where(present, d, 0.0))
            sums = np.concatenate(parts, axis=1).sum(axis=0)
            den = np.concatenate((cnt, cnt))
            with np.errstate(invalid="ignore", divide="ignore"):
                z = (sums[2 * width :] / den - self._z_mu) * np.sqrt(den) * self._z_inv
        else:
            z = sums[2 * width :] * inv_k
            z -= self._z_mu
            z *= z_fac
            cnt = full
        _clip(z, z_lo, z_hi, out=z)
        slot = self._ring[self._ring_i % len(self._ring)]
        slot[0] = cnt
        slot[1:] = sums[: 2 * width].reshape(2, width)
        self._ring_i += 1
        return z, cnt, missing

    def _collect(self, a: np.ndarray, missing: np.ndarray | None, cnt: np.ndarray) -> list[int]:
        """Collect the block into the reference values of the columns collecting them.

        Returns the columns this block (re)armed or that are learning: their
        detectors skip it (the block that completed a reference is in it).
        """
        skip = []
        counts = cnt.tolist()
        for j in list(self._collecting):
            n = counts[j]
            if not n:
                continue
            col = self._cols[j]
            col.warm.append(a[~missing[:, j], j] if missing is not None  # type: ignore[union-attr]
                            else a[:, j].copy())
            col.warm_n += int(n)
            if col.warm_n >= col.next and self._arm(j):
                skip.append(j)
        return skip

    def _pool(self, z: np.ndarray, feed: np.ndarray) -> np.ndarray:
        """Add the block to the super-blocks of pooled columns in ``feed``.

        Returns the columns whose z-scores reach the detectors: the unpooled
        ones, and the pooled ones whose super-block is complete (their entries
        of ``z`` are replaced by the super-block's z-scores).
        """
        width = len(feed)
        pooled = feed & self._pooled
        if not pooled.any():
            return feed
        np.add(self._acc, 1, out=self._acc, where=pooled)
        np.add(self._acc_l, z[:width], out=self._acc_l, where=pooled)
        np.add(self._acc_d, z[width:], out=self._acc_d, where=pooled)
        ready = pooled & (self._acc >= self._m)
        for j in np.flatnonzero(ready).tolist():
            root = math.sqrt(int(self._acc[j]))
            z[j] = float(self._acc_l[j]) / root
            z[width + j] = float(self._acc_d[j]) / root
            self._acc[j], self._acc_l[j], self._acc_d[j] = 0, 0.0, 0.0
        return feed & ~(pooled & ~ready)

    # -- references --------------------------------------------------------

    def _arm(self, j: int) -> bool:
        """(Re)compute column ``j``'s reference from its collected values; True if armed anew."""
        col = self._cols[j]
        assert col.warm is not None  # noqa: S101 - only called while collecting
        x = np.concatenate(col.warm) if col.warm else np.empty(0)
        if x.size < 2:
            return False
        final = col.warm_n >= self._warmup
        if col.mode == Z_SCORE and final and not col.final:
            # Refreshing now would reset detectors half-way to an alarm: let
            # them decide first (up to four warm-ups).
            busy = max(col.loc.pressure(), col.disp.pressure() if col.disp else 0.0)  # type: ignore[union-attr]
            if busy >= 0.5 and col.warm_n < 4 * self._warmup:
                return False
        binary = bool(np.all((x == 0.0) | (x == 1.0)))
        p = float(x.mean())
        if binary and min(p, 1.0 - p) * self._k < RARE and col.baseline is None:
            col.mode = RATE
            col.rate = make_detector("ADWIN", self._rate_params)
            col.loc = col.disp = None
            col.warm, col.final = None, True
            col.ref = numeric_summary(float(x.size), p, float(x.std()))
            col.calib = {"rate": p}
            self._clear(j)
            self._fed[j] = 0.0
            self._sync(j)
            return True
        if col.baseline is not None:
            ref = reference(col.baseline, self._winsorize, self._k, iid=True)
            ref.update(autocorrelation(x, ref, self._k, math.inf))
        else:
            ref = reference(x, self._winsorize, self._k)
        self._set(j, ref)
        if final:
            col.warm, col.final = None, True
        else:
            col.next = self._warmup
        col.ref = numeric_summary(float(x.size), float(x.mean()), float(x.std()))
        self._sync(j)
        return True

    def _ramp(self, col: Column, stream: str) -> int:
        """The direction of a ramp in the values since the column relearned (0: none seen)."""
        if col.mode != Z_SCORE or not col.warm:
            return 0
        return trend(np.concatenate(col.warm), col.calib, stream)

    def _set(self, j: int, ref: dict[str, float]) -> None:
        """Install reference constants and fresh detectors calibrated to them."""
        col = self._cols[j]
        width = len(self._lo)
        self._lo[j], self._hi[j], self._med[j] = ref["lo"], ref["hi"], ref["med"]
        self._z_mu[j], self._z_mu[width + j] = ref["mu"], ref["dmu"]
        self._z_inv[j], self._z_inv[width + j] = ref["inv"], ref["dinv"]
        self._consts = None
        col.calib = ref
        self._m[j] = int(ref["m"])
        self._acc[j], self._acc_l[j], self._acc_d[j] = 0, 0.0, 0.0
        col.mode = Z_SCORE
        col.rate = None
        loc = Watch(allow(col.specs, ref["k_loc"]))
        # Spread is watched by the CUSUM alone: spread changes move the z-score
        # a lot (a doubled variance is +0.4 sd of |x - median| per event), and
        # against the frozen reference it also sees a spread that is off from
        # arming on, which a backstop comparing the stream with its past cannot.
        disp_specs = [sp for sp in col.specs if sp[0] == "CUSUM"] or col.specs
        disp = Watch(allow(disp_specs, ref["k_disp"])) if self._dispersion else None
        self._install(j, loc.state(), disp.state() if disp else None, loc, disp)
        self._fed[j] = 0.0
        if col.baseline is not None and not col.ref:
            col.ref = numeric_summary(math.inf, ref["mu"], 1.0 / ref["inv"])
        self._sync(j)

    def _install(self, j: int, loc_state: Mapping[str, Any], disp_state: Mapping[str, Any] | None,
                 loc: Watch, disp: Watch | None) -> None:
        """Give column ``j`` its watches: into the bank if it runs them, else as they are."""
        col = self._cols[j]
        if (len(self._cols) >= self._bank_from and takes(loc.specs)
                and (disp is None or [sp[0] for sp in disp.specs] == ["CUSUM"])):
            col.loc = self._bank.load(j, loc_state)
            col.disp = self._bank.load(len(self._cols) + j, disp_state) if disp_state else None
        else:
            col.loc, col.disp = loc, disp

    def _sync(self, j: int) -> None:
        """Bring the per-column masks and lists in line with column ``j``'s mode and watches."""
        col = self._cols[j]
        width = len(self._cols)
        self._zlive[j] = col.mode == Z_SCORE
        self._banked[j] = banked = col.mode == Z_SCORE and isinstance(col.loc, Row)
        self._pooled[j] = col.mode == Z_SCORE and self._m[j] > 1
        self._pooling = bool(self._pooled.any())
        if not banked:
            self._bank.drop(j)
            self._bank.drop(width + j)
        elif col.disp is None:
            self._bank.drop(width + j)
        self._collecting = [i for i, c in enumerate(self._cols) if c.warm is not None]
        self._others = [i for i, c in enumerate(self._cols)
                        if c.mode == RATE or (c.mode == Z_SCORE and not isinstance(c.loc, Row))]

    def _clear(self, j: int) -> None:
        width = len(self._lo)
        for attr in ("_lo", "_hi", "_med"):
            getattr(self, attr)[j] = math.nan
        for attr in ("_z_mu", "_z_inv"):
            getattr(self, attr)[[j, width + j]] = math.nan
        self._consts = None

    def _alarm(self, j: int, stream: str, firing: Firing) -> NumericAlarm:
        col = self._cols[j]
        m = int(self._m[j])
        # "current" covers the blocks after the estimated change point when
        # there is one, else the whole summary ring.
        size = len(self._ring)
        blocks = firing.recent * m if col.mode == Z_SCORE else -(-firing.recent // self._k)
        nb = max(min(blocks or size, size, self._ring_i), 1)
        rows = [(self._ring_i - 1 - i) % size for i in range(nb)]
        n, s1, s2 = self._ring[rows, :, j].sum(axis=0).tolist()
        mean = s1 / n if n else math.nan
        std = math.sqrt(max(s2 / n - mean * mean, 0.0)) if n else math.nan
        extra: dict[str, Any] = {"z_clip": self._z_clip, "winsorize": self._winsorize,
                                 "pooled_blocks": m, "phi": col.calib.get("phi", 0.0)}
        specs = col.specs
        if col.mode == RATE:
            specs, extra = [("ADWIN", self._rate_params, 1.0)], {"per_event": True}
        elif col.loc is not None:
            specs = (col.disp if stream == "dispersion" and col.disp else col.loc).specs
        alarm = NumericAlarm(
            name=col.name,
            kind=col.kind,
            stream=stream,
            firing=firing,
            params=spec_params(specs, firing.detector, **extra),
            reference=col.ref,
            current=numeric_summary(n, mean, std),
        )
        # Relearn: the changed distribution becomes the reference.
        col.mode = LEARN
        col.warm, col.warm_n, col.next, col.final = [], 0, self._provisional, False
        col.loc = col.disp = col.rate = None
        col.baseline = None
        col.last = (stream, firing.direction)
        self._clear(j)
        self._sync(j)
        return alarm

    # -- state ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` continues exactly."""
        return {
            "columns": [col.state(self._counters(j)) for j, col in enumerate(self._cols)],
            "lo": self._lo.tolist(), "hi": self._hi.tolist(), "med": self._med.tolist(),
            "z_mu": self._z_mu.tolist(), "z_inv": self._z_inv.tolist(),
            "ring": self._ring.tolist(), "ring_i": self._ring_i, "suppressed": self.suppressed,
        }

    def _counters(self, j: int) -> dict[str, Any]:
        return counters(int(self._m[j]), int(self._acc[j]), float(self._acc_l[j]),
                        float(self._acc_d[j]), float(self._fed[j]), float(self._since[j]))

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` (of a monitor with the same settings)."""
        cols = state["columns"]
        self._cols = [Column.from_state(s) for s in cols]
        width = len(self._cols)
        for attr, key in (("_lo", "lo"), ("_hi", "hi"), ("_med", "med"), ("_z_mu", "z_mu"),
                          ("_z_inv", "z_inv")):
            setattr(self, attr, np.asarray(state[key], dtype=float))
        self._ring = np.asarray(state["ring"], dtype=float).reshape(
            self._ring.shape[0], 3, width)
        self._ring_i = int(state["ring_i"])
        self.suppressed = int(state["suppressed"])
        self._consts = None
        self._m = np.array([int(s["m"]) for s in cols], dtype=np.int64)
        self._acc = np.array([int(s["acc"][0]) for s in cols], dtype=np.int64)
        self._acc_l = np.array([float(s["acc"][1]) for s in cols])
        self._acc_d = np.array([float(s["acc"][2]) for s in cols])
        self._fed = np.array([float(s["fed"]) for s in cols])
        self._since = np.array([float(s["since"]) for s in cols])
        self._zlive, self._banked, self._pooled = (np.zeros(width, dtype=bool) for _ in range(3))
        self._bank = ZBank()
        for _ in range(width):
            self._bank.grow()
        for j, (col, s) in enumerate(zip(self._cols, cols, strict=True)):
            if isinstance(col.loc, Watch):
                self._install(j, s["loc"], s["disp"], col.loc,
                              col.disp if isinstance(col.disp, Watch) else None)
            self._sync(j)
