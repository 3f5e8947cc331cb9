"""The numeric monitor as it was before its detectors were vectorised: the reference.

:mod:`tests.drift.monitors.test_numeric_equivalence` runs this and
:class:`drift.monitors.numeric.NumericDrift` side by side and requires the same
alarms, suppressed counts and checkpoints. This is a frozen copy of the
per-column implementation (``NumericDrift`` and its ``Column``, one Python
loop iteration and one :class:`~drift.detectors.Watch` per column and block);
do not change it to follow the new code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from drift.detectors import Detector, Firing, Spec, Watch, make_detector, spec_params
from drift.events import numeric_summary
from drift.monitors.calibration import allow, autocorrelation, reference, trend
from drift.monitors.columns import LEARN, RATE, Z_SCORE, NumericAlarm


class Column:
    """One numeric column: its mode, reference values, detectors and calibration."""

    __slots__ = ("name", "kind", "specs", "mode", "warm", "warm_n", "next", "final", "loc",
                 "disp", "rate", "m", "acc", "acc_l", "acc_d", "fed", "since", "last",
                 "ref", "baseline", "calib")

    def __init__(self, name: str, kind: str, specs: list[Spec], first: int) -> None:
        self.name = name
        self.kind = kind
        self.specs = specs
        self.mode = LEARN
        self.warm: list[np.ndarray] | None = []
        self.warm_n = 0
        self.next = first  # events after which the reference is (re)computed
        self.final = False  # the reference is frozen for good
        self.loc: Watch | None = None
        self.disp: Watch | None = None
        self.rate: Detector | None = None
        self.m = 1
        self.acc = 0
        self.acc_l = 0.0
        self.acc_d = 0.0
        self.fed = 0.0
        self.since = math.inf
        self.last: tuple[str, int] = ("", 0)  # stream and direction of the last reported alarm
        self.ref: dict[str, float] = {}
        self.baseline: np.ndarray | None = None
        self.calib: dict[str, float] = {}

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`from_state` rebuilds this column."""
        return {
            "name": self.name, "kind": self.kind,
            "specs": [[n, dict(p), s] for n, p, s in self.specs],
            "mode": self.mode,
            "warm": None if self.warm is None
            else np.concatenate(self.warm or [np.empty(0)]).tolist(),
            "warm_n": self.warm_n, "next": self.next, "final": self.final,
            "loc": self.loc.state() if self.loc else None,
            "disp": self.disp.state() if self.disp else None,
            "rate": self.rate.state() if self.rate else None,
            "m": self.m, "acc": [self.acc, self.acc_l, self.acc_d], "fed": self.fed,
            "since": self.since, "last": list(self.last),
            "ref": dict(self.ref), "calib": dict(self.calib),
            "baseline": None if self.baseline is None else self.baseline.tolist(),
        }

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Column:
        """The column a :meth:`state` describes."""
        specs: list[Spec] = [(n, p, float(sc)) for n, p, sc in s["specs"]]
        col = cls(s["name"], s["kind"], specs, int(s["next"]))
        col.mode = int(s["mode"])
        col.warm = None if s["warm"] is None else [np.asarray(s["warm"], dtype=float)]
        col.warm_n, col.final = int(s["warm_n"]), bool(s["final"])
        col.loc = Watch.from_state(s["loc"]) if s["loc"] else None
        col.disp = Watch.from_state(s["disp"]) if s["disp"] else None
        if s["rate"]:
            col.rate = make_detector("ADWIN", s["rate"]["params"])
            col.rate.restore(s["rate"])
        col.m = int(s["m"])
        col.acc, col.acc_l, col.acc_d = int(s["acc"][0]), float(s["acc"][1]), float(s["acc"][2])
        col.fed, col.since = float(s["fed"]), float(s["since"])
        col.last = (str(s["last"][0]), int(s["last"][1]))
        col.ref, col.calib = dict(s["ref"]), dict(s["calib"])
        col.baseline = None if s["baseline"] is None else np.asarray(s["baseline"], dtype=float)
        return col


RARE = 5.0
"""A 0/1 column whose rarer value is expected fewer times per block is watched as a rate."""

MIN_QUANTILES = 20
"""Distinct baseline quantiles needed to use them as the reference (else the warm-up)."""


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
    ) -> None:
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
        # Quantiles stand in for the training sample only when they resolve
        # the distribution; a 0/1 or few-valued feature learns from serving.
        if baseline is not None and len(set(baseline)) >= MIN_QUANTILES:
            col.baseline = np.asarray(baseline, dtype=float)
            col.next = self._warmup
            self._set(width, reference(col.baseline, self._winsorize, self._k, iid=True))
        return width

    def process(self, a: np.ndarray) -> list[NumericAlarm]:
        """Update every column with one block; returns the alarms it raised."""
        k, width = a.shape
        missing = np.isnan(a)
        c = np.clip(a, self._lo, self._hi)
        d = np.abs(c - self._med)
        # One reduction for raw sums, raw squares, location and spread: at one
        # call per block, numpy's per-call cost is what there is to save.
        any_missing = bool(missing.any())
        if any_missing:
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
        for j, (col, n, zl, zd) in enumerate(zip(self._cols, counts, z_loc, z_disp, strict=True)):
            if not n:
                continue
            col.since += n
            if col.warm is not None:
                col.warm.append(a[~missing[:, j], j] if any_missing else a[:, j].copy())
                col.warm_n += int(n)
                if col.warm_n >= col.next and self._arm(j):
                    continue  # the block that completed the reference is in it
            mode = col.mode
            if mode == LEARN:
                continue
            col.fed += n
            firing: Firing | None = None
            stream = "mean"
            if mode == RATE:
                values = a[~missing[:, j], j] if any_missing else a[:, j]
                update = col.rate.update  # type: ignore[union-attr]
                for v in values.tolist():
                    if update(v):
                        firing, stream = col.rate.last_firing, "rate"  # type: ignore[union-attr]
                        break
            else:
                if col.m > 1:
                    col.acc += 1
                    col.acc_l += zl
                    col.acc_d += zd
                    if col.acc < col.m:
                        continue
                    root = math.sqrt(col.acc)
                    zl, zd = col.acc_l / root, col.acc_d / root
                    col.acc, col.acc_l, col.acc_d = 0, 0.0, 0.0
                firing = col.loc.update(zl)  # type: ignore[union-attr]
                if dispersion:
                    other = col.disp.update(zd)  # type: ignore[union-attr]
                    if firing is None and other is not None:
                        firing, stream = other, "dispersion"
            if firing is None or col.fed < self._min_samples:
                continue
            same = (col.since < self._cooldown and col.last == (stream, firing.direction)
                    and self._ramp(col, stream) == firing.direction)
            alarm = self._alarm(j, stream, firing)
            if same:
                self.suppressed += 1
                continue
            col.since = 0.0
            col.last = (stream, firing.direction)
            alarms.append(alarm)
        return alarms

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
            col.fed = 0.0
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
        col.calib = ref
        col.m = int(ref["m"])
        col.acc, col.acc_l, col.acc_d = 0, 0.0, 0.0
        col.mode = Z_SCORE
        col.rate = None
        col.loc = Watch(allow(col.specs, ref["k_loc"]))
        # Spread is watched by the CUSUM alone: spread changes move the z-score
        # a lot (a doubled variance is +0.4 sd of |x - median| per event), and
        # against the frozen reference it also sees a spread that is off from
        # arming on, which a backstop comparing the stream with its past cannot.
        disp = [sp for sp in col.specs if sp[0] == "CUSUM"] or col.specs
        col.disp = Watch(allow(disp, ref["k_disp"])) if self._dispersion else None
        col.fed = 0.0
        if col.baseline is not None and not col.ref:
            col.ref = numeric_summary(math.inf, ref["mu"], 1.0 / ref["inv"])

    def _clear(self, j: int) -> None:
        width = len(self._lo)
        for attr in ("_lo", "_hi", "_med"):
            getattr(self, attr)[j] = math.nan
        for attr in ("_z_mu", "_z_inv"):
            getattr(self, attr)[[j, width + j]] = math.nan

    def _alarm(self, j: int, stream: str, firing: Firing) -> NumericAlarm:
        col = self._cols[j]
        # "current" covers the blocks after the estimated change point when
        # there is one, else the whole summary ring.
        size = len(self._ring)
        blocks = firing.recent * col.m if col.mode == Z_SCORE else -(-firing.recent // self._k)
        m = max(min(blocks or size, size, self._ring_i), 1)
        rows = [(self._ring_i - 1 - i) % size for i in range(m)]
        n, s1, s2 = self._ring[rows, :, j].sum(axis=0).tolist()
        mean = s1 / n if n else math.nan
        std = math.sqrt(max(s2 / n - mean * mean, 0.0)) if n else math.nan
        extra: dict[str, Any] = {"z_clip": self._z_clip, "winsorize": self._winsorize,
                                 "pooled_blocks": col.m, "phi": col.calib.get("phi", 0.0)}
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
        return alarm

    # -- state ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` continues exactly."""
        return {
            "columns": [col.state() for col in self._cols],
            "lo": self._lo.tolist(), "hi": self._hi.tolist(), "med": self._med.tolist(),
            "z_mu": self._z_mu.tolist(), "z_inv": self._z_inv.tolist(),
            "ring": self._ring.tolist(), "ring_i": self._ring_i, "suppressed": self.suppressed,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` (of a monitor with the same settings)."""
        self._cols = [Column.from_state(s) for s in state["columns"]]
        for attr, key in (("_lo", "lo"), ("_hi", "hi"), ("_med", "med"), ("_z_mu", "z_mu"),
                          ("_z_inv", "z_inv")):
            setattr(self, attr, np.asarray(state[key], dtype=float))
        self._ring = np.asarray(state["ring"], dtype=float).reshape(
            self._ring.shape[0], 3, len(self._cols))
        self._ring_i = int(state["ring_i"])
        self.suppressed = int(state["suppressed"])

