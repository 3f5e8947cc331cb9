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

Calibration, from the reference data:

- *autocorrelation*: the lag-1 autocorrelation ``phi`` of the reference
  (raised by two standard errors when significant, else 0) gives the
  long-run variance factor ``(1 + phi) / (1 - phi)``; z-scores are divided by
  its square root, and blocks are pooled into super-blocks of ``m`` blocks
  (``m`` the smallest power of two for which successive super-block means of
  an AR(1) with that ``phi`` correlate below 0.05) before they reach the
  detectors, so the false-alarm rate of i.i.d. data holds;
- *reference uncertainty*: the reference mean is known to about
  ``sqrt(L / n_eff)`` z-units (``L`` events per super-block, ``n_eff`` the
  reference's effective sample size), and the CUSUM's allowance is raised by
  that much;
- *rare binary features*: a 0/1 column whose rarer value is expected fewer
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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Detector, Firing, Spec, Watch, make_detector, spec_params
from drift.events import numeric_summary

RARE = 5.0
"""A 0/1 column whose rarer value is expected fewer times per block is watched as a rate."""

MIN_QUANTILES = 20
"""Distinct baseline quantiles needed to use them as the reference (else the warm-up)."""

MAX_POOL = 64
"""Most blocks pooled into one super-block (autocorrelation)."""

_LEARN, _Z, _RATE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class NumericAlarm:
    """A column whose location, dispersion or rate changed."""

    name: str
    kind: str
    stream: str
    firing: Firing
    params: Mapping[str, Any]
    reference: Mapping[str, float]
    current: Mapping[str, float]


class _Column:
    __slots__ = ("name", "kind", "specs", "mode", "warm", "warm_n", "next", "final", "loc",
                 "disp", "rate", "m", "acc", "acc_l", "acc_d", "fed", "since", "last",
                 "ref", "baseline", "calib")

    def __init__(self, name: str, kind: str, specs: list[Spec], first: int) -> None:
        self.name = name
        self.kind = kind
        self.specs = specs
        self.mode = _LEARN
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
        self._cols: list[_Column] = []
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
        col = _Column(name, kind, specs, self._provisional)
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
            self._set(width, _reference(col.baseline, self._winsorize, self._k, iid=True))
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
            if mode == _LEARN:
                continue
            col.fed += n
            firing: Firing | None = None
            stream = "mean"
            if mode == _RATE:
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
        if col.mode == _Z and final and not col.final:
            # Refreshing now would reset detectors half-way to an alarm: let
            # them decide first (up to four warm-ups).
            busy = max(col.loc.pressure(), col.disp.pressure() if col.disp else 0.0)  # type: ignore[union-attr]
            if busy >= 0.5 and col.warm_n < 4 * self._warmup:
                return False
        binary = bool(np.all((x == 0.0) | (x == 1.0)))
        p = float(x.mean())
        if binary and min(p, 1.0 - p) * self._k < RARE and col.baseline is None:
            col.mode = _RATE
            col.rate = make_detector("ADWIN", self._rate_params)
            col.loc = col.disp = None
            col.warm, col.final = None, True
            col.ref = numeric_summary(float(x.size), p, float(x.std()))
            col.calib = {"rate": p}
            self._clear(j)
            col.fed = 0.0
            return True
        if col.baseline is not None:
            ref = _reference(col.baseline, self._winsorize, self._k, iid=True)
            ref.update(_autocorrelation(x, ref, self._k, math.inf))
        else:
            ref = _reference(x, self._winsorize, self._k)
        self._set(j, ref)
        if final:
            col.warm, col.final = None, True
        else:
            col.next = self._warmup
        col.ref = numeric_summary(float(x.size), float(x.mean()), float(x.std()))
        return True

    def _ramp(self, col: _Column, stream: str) -> int:
        """The direction of a ramp in the values since the column relearned (0: none seen)."""
        if col.mode != _Z or not col.warm:
            return 0
        return _trend(np.concatenate(col.warm), col.calib, stream)

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
        col.mode = _Z
        col.rate = None
        col.loc = Watch(_allow(col.specs, ref["k_loc"]))
        # Spread is watched by the CUSUM alone: spread changes move the z-score
        # a lot (a doubled variance is +0.4 sd of |x - median| per event), and
        # against the frozen reference it also sees a spread that is off from
        # arming on, which a backstop comparing the stream with its past cannot.
        disp = [sp for sp in col.specs if sp[0] == "CUSUM"] or col.specs
        col.disp = Watch(_allow(disp, ref["k_disp"])) if self._dispersion else None
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
        blocks = firing.recent * col.m if col.mode == _Z else -(-firing.recent // self._k)
        m = max(min(blocks or size, size, self._ring_i), 1)
        rows = [(self._ring_i - 1 - i) % size for i in range(m)]
        n, s1, s2 = self._ring[rows, :, j].sum(axis=0).tolist()
        mean = s1 / n if n else math.nan
        std = math.sqrt(max(s2 / n - mean * mean, 0.0)) if n else math.nan
        extra: dict[str, Any] = {"z_clip": self._z_clip, "winsorize": self._winsorize,
                                 "pooled_blocks": col.m, "phi": col.calib.get("phi", 0.0)}
        specs = col.specs
        if col.mode == _RATE:
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
        col.mode = _LEARN
        col.warm, col.warm_n, col.next, col.final = [], 0, self._provisional, False
        col.loc = col.disp = col.rate = None
        col.baseline = None
        col.last = (stream, firing.direction)
        self._clear(j)
        return alarm

    # -- state ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` continues exactly."""
        cols = []
        for col in self._cols:
            cols.append({
                "name": col.name, "kind": col.kind,
                "specs": [[n, dict(p), s] for n, p, s in col.specs],
                "mode": col.mode,
                "warm": None if col.warm is None
                else np.concatenate(col.warm or [np.empty(0)]).tolist(),
                "warm_n": col.warm_n, "next": col.next, "final": col.final,
                "loc": col.loc.state() if col.loc else None,
                "disp": col.disp.state() if col.disp else None,
                "rate": col.rate.state() if col.rate else None,
                "m": col.m, "acc": [col.acc, col.acc_l, col.acc_d], "fed": col.fed,
                "since": col.since, "last": list(col.last),
                "ref": dict(col.ref), "calib": dict(col.calib),
                "baseline": None if col.baseline is None else col.baseline.tolist(),
            })
        return {
            "columns": cols,
            "lo": self._lo.tolist(), "hi": self._hi.tolist(), "med": self._med.tolist(),
            "z_mu": self._z_mu.tolist(), "z_inv": self._z_inv.tolist(),
            "ring": self._ring.tolist(), "ring_i": self._ring_i, "suppressed": self.suppressed,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` (of a monitor with the same settings)."""
        self._cols = []
        for s in state["columns"]:
            specs: list[Spec] = [(n, p, float(sc)) for n, p, sc in s["specs"]]
            col = _Column(s["name"], s["kind"], specs, int(s["next"]))
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
            self._cols.append(col)
        for attr, key in (("_lo", "lo"), ("_hi", "hi"), ("_med", "med"), ("_z_mu", "z_mu"),
                          ("_z_inv", "z_inv")):
            setattr(self, attr, np.asarray(state[key], dtype=float))
        self._ring = np.asarray(state["ring"], dtype=float).reshape(
            self._ring.shape[0], 3, len(self._cols))
        self._ring_i = int(state["ring_i"])
        self.suppressed = int(state["suppressed"])


def _allow(specs: list[Spec], extra: float) -> list[Spec]:
    """``specs`` with every CUSUM's allowance raised by ``extra`` (reference uncertainty)."""
    out: list[Spec] = []
    for name, params, scale in specs:
        if name == "CUSUM":
            params = {**params, "delta": round(float(params.get("delta", 1.0)) + extra, 4)}
        out.append((name, params, scale))
    return out


CHUNK = 128
"""Events per chunk whose own mean is removed before the autocorrelation is estimated."""


def _lag1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``x`` within chunks of :data:`CHUNK` (0 if undefined).

    Each chunk is centred on its own mean, so a level change inside the
    reference data (a step during warm-up) does not pass for autocorrelation.
    """
    if x.size < 3:
        return 0.0
    if x.size >= 2 * CHUNK:
        x = x[: x.size // CHUNK * CHUNK].reshape(-1, CHUNK)
        d = x - x.mean(axis=1, keepdims=True)
        den = float((d * d).sum())
        return float((d[:, 1:] * d[:, :-1]).sum()) / den if den > 0 else 0.0
    d = x - x.mean()
    den = float(d @ d)
    return float(d[1:] @ d[:-1]) / den if den > 0 else 0.0


def _phi_bound(phi: float, n: float) -> float:
    """A conservative lag-1 autocorrelation: 0 unless significant, else raised by 2 SE."""
    if not math.isfinite(n) or n < 3:
        return 0.0
    se = 1.0 / math.sqrt(n)
    if phi < 2.0 * se:
        return 0.0
    return min(phi + 2.0 * math.sqrt(max(1.0 - phi * phi, 0.0) / n), 0.98)


def _pool(phi: float, k: int) -> int:
    """Blocks per super-block so that successive super-block means of an AR(1) barely correlate."""
    m = 1
    while phi > 0 and m < MAX_POOL:
        L = k * m
        tail = (1.0 - phi**L) / (1.0 - phi)
        cov = phi * tail * tail
        var = L * (1.0 + phi) / (1.0 - phi) - 2.0 * phi * tail / (1.0 - phi)
        if cov / var < 0.05:
            break
        m *= 2
    return m


def _reference(x: np.ndarray, winsorize: float, k: int, iid: bool = False) -> dict[str, float]:
    """The frozen reference constants of values ``x`` (in arrival order unless ``iid``)."""
    lo, hi = np.quantile(x, [winsorize, 1.0 - winsorize])
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
    ref = {"lo": float(lo), "hi": float(hi), "med": med, "mu": mu, "dmu": float(dev.mean()),
           "sd": sd, "dsd": dsd}
    ref.update(_autocorrelation(None if iid else x, ref, k, math.inf if iid else float(x.size)))
    return ref


def _autocorrelation(
    x: np.ndarray | None, ref: dict[str, float], k: int, n_ref: float
) -> dict[str, float]:
    """Calibration to the autocorrelation of served values ``x``, for a reference of ``n_ref``.

    Returns the z-score factors (``inv``, ``dinv``), the pooled blocks ``m``,
    the CUSUM allowance increments (``k_loc``, ``k_disp``) and ``phi``.
    """
    phi = phid = 0.0
    if x is not None and x.size >= 3:
        c = np.clip(x, ref["lo"], ref["hi"])
        phi = _phi_bound(_lag1(c), x.size)
        # |x - median| of an autocorrelated stream stays correlated over more
        # lags than its lag-1 value says (phi^2k for an AR(1)): take the larger.
        phid = max(_phi_bound(_lag1(np.abs(c - ref["med"])), x.size), phi)
    vif, vifd = (1.0 + phi) / (1.0 - phi), (1.0 + phid) / (1.0 - phid)
    m = _pool(max(phi, phid), k)
    L = k * m
    return {
        "inv": 1.0 / (ref["sd"] * math.sqrt(vif)),
        "dinv": 1.0 / (ref["dsd"] * math.sqrt(vifd)),
        "m": float(m),
        "phi": phi,
        "k_loc": math.sqrt(L * vif / n_ref) if math.isfinite(n_ref) else 0.0,
        "k_disp": math.sqrt(L * vifd / n_ref) if math.isfinite(n_ref) else 0.0,
    }


def _trend(x: np.ndarray, ref: Mapping[str, float], stream: str) -> int:
    """+1 or -1 if ``x`` is a ramp: a significant slope that a line fits better than a step.

    The slope's t-statistic (with the autocorrelation factor) must exceed 3,
    and a straight line must leave less residual than the best single step:
    a second step inside ``x`` is a new change, not the old one continuing.
    """
    c = np.clip(x, ref["lo"], ref["hi"])
    v = np.abs(c - ref["med"]) if stream == "dispersion" else c
    n = v.size
    if n < 8:
        return 0
    t = np.arange(n, dtype=float) - (n - 1) / 2.0
    sxx = float(t @ t)
    d = v - v.mean()
    slope = float(t @ d) / sxx
    sse_line = float(d @ d) - slope * slope * sxx
    phi = ref["phi"]
    sd = math.sqrt(max(sse_line / (n - 2), 1e-300) * (1.0 + phi) / (1.0 - phi))
    if abs(slope) * math.sqrt(sxx) / sd <= 3.0:
        return 0
    # Best single step: SSE = total - max over splits of n1 n2 / n (mean gap)^2.
    cs = np.cumsum(d)[:-1]
    n1 = np.arange(1, n, dtype=float)
    gain = float(np.max(cs * cs * n / (n1 * (n - n1))))
    sse_step = float(d @ d) - gain
    if sse_line > sse_step:
        return 0
    return 1 if slope > 0 else -1
