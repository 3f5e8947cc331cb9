"""River's drift detectors behind loglabel's own interface.

River's API has changed before (``change_detected`` became ``drift_detected``)
and its flag is true for exactly one update, after which the detector resets
itself on the next update. :class:`Detector` hides both: ``update(x)`` returns
whether this update fired, the wrapper restarts a fresh River detector at once,
and :attr:`Detector.last_firing` keeps what fired, after how many updates, on
which statistic and threshold.

>>> d = make_detector("ADWIN", {"delta": 0.002, "clock": 1})
>>> fired = [i for i, x in enumerate([0.0] * 300 + [1.0] * 100) if d.update(x)]
>>> fired[0] > 300, d.last_firing.detector
(True, 'ADWIN')
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from river.drift import ADWIN, KSWIN, PageHinkley
from river.drift.binary import DDM, EDDM, FHDDM, HDDMA, HDDMW

from drift.errors import DriftConfigError

_RIVER: dict[str, Callable[..., Any]] = {
    "ADWIN": ADWIN,
    "KSWIN": KSWIN,
    "PageHinkley": PageHinkley,
    "DDM": DDM,
    "EDDM": EDDM,
    "FHDDM": FHDDM,
    "HDDM_A": HDDMA,
    "HDDM_W": HDDMW,
}

NUMERIC_DETECTORS = ("ADWIN", "KSWIN", "PageHinkley")
"""Detectors for real-valued streams."""

BINARY_DETECTORS = ("DDM", "EDDM", "FHDDM", "HDDM_A", "HDDM_W")
"""Detectors for 0/1 streams (errors, labels); ADWIN also accepts 0/1."""

Spec = tuple[str, Mapping[str, Any], float]
"""A detector as the monitors take it: (name, River parameters, z_scale)."""

DETECTORS = tuple(_RIVER)
"""Every detector name :func:`make_detector` accepts."""


@dataclass(frozen=True, slots=True)
class Firing:
    """What a detector saw when it fired.

    ``statistic`` and ``threshold`` follow ``statistic_name``; for ADWIN they
    are the gap between the means of an older and a recent sub-window and
    ADWIN's bound for those sizes, and ``recent`` is the length of the recent
    sub-window (the updates since the estimated change; 0 if unknown). ``n``
    is the number of updates since the detector was (re)started. NaN means
    River did not expose the value.
    """

    detector: str
    statistic_name: str
    statistic: float
    threshold: float
    n: int
    recent: int = 0


class Detector:
    """One River detector with a stable contract.

    ``update(x)`` returns True exactly when this update detected a change; the
    detector has then already restarted (fresh state, ``n == 0``), and
    ``last_firing`` describes the change. ``reset()`` restarts it by hand.
    The binary detectors (:data:`BINARY_DETECTORS`) take 0/1 and fire only when
    the rate of 1s rises (``HDDM_A``/``HDDM_W`` also on a fall with
    ``two_sided_test``); ADWIN, KSWIN and PageHinkley are two-sided.
    """

    __slots__ = (
        "name",
        "params",
        "n",
        "fired",
        "last_firing",
        "_river",
        "_factory",
        "_fast",
        "_recent",
        "_sum",
        "_sumsq",
    )

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        factory = _RIVER.get(name)
        if factory is None:
            raise DriftConfigError(f"unknown drift detector {name!r}; choose one of {DETECTORS}")
        self.name = name
        self.params: dict[str, Any] = dict(params or {})
        self._factory = factory
        try:
            self._river = factory(**self.params)
        except (TypeError, ValueError) as exc:
            raise DriftConfigError(f"bad parameters for {name}: {exc}") from exc
        self.fired = 0
        self.last_firing: Firing | None = None
        # River exposes no change point; the recent inputs let us estimate it
        # (and ADWIN's cut statistic) when the detector fires.
        self._recent: deque[float] = deque(maxlen=64)
        self._start()

    def _start(self) -> None:
        self.n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._recent.clear()
        self._fast = _verdict(self._river, self.name)

    def update(self, x: float) -> bool:
        """Feed one value; True if a change was detected on this value."""
        self.n += 1
        self._sum += x
        self._sumsq += x * x
        self._recent.append(x)
        if not self._fast(x):
            return False
        self._fire(list(self._recent), self.n, self._sum, self._sumsq)
        return True

    def _fire(self, recent: list[float], n: int, total: float, sumsq: float) -> Firing:
        """Record a firing after ``n`` values (with their sum and sum of squares), restart."""
        # Until it fires, ADWIN's window is everything since the (re)start.
        adwin = self.params if self.name == "ADWIN" else None
        stat, threshold, split = _cut(recent, n, total, sumsq, adwin)
        name = "mean_gap"
        if adwin is None:
            name, stat, threshold = _probe(self.name, self._river, total / n if n else math.nan)
        self.last_firing = Firing(self.name, name, stat, threshold, n, split)
        self.fired += 1
        self.reset()
        return self.last_firing

    def reset(self) -> None:
        """Restart with fresh state and the same parameters."""
        # Not River's clone(): KSWIN's clone copies its current window along.
        self._river = self._factory(**self.params)
        self._start()

    @property
    def mean(self) -> float:
        """Mean of the values seen since the last (re)start, NaN if none."""
        return self._sum / self.n if self.n else math.nan


def _verdict(river: Any, name: str) -> Callable[[float], bool]:
    """A function that feeds ``river`` one value and says whether it fired."""
    rust_update = getattr(getattr(river, "_helper", None), "update", None)
    if name == "ADWIN" and callable(rust_update):
        # ADWIN.update is a thin Python layer over a Rust window whose update
        # returns the verdict; calling it directly halves the cost. Its other
        # job, resetting on the next update, is ours: we restart on a firing.
        return rust_update
    if name == "FHDDM":
        # River's FHDDM fires when the rate of 1s falls (MOA's accuracy
        # input), although its docstring says 1 is an error; fed 1 - x, it
        # fires when the rate of 1s rises, like every other binary detector.
        def inverted(x: float) -> bool:
            river.update(1.0 - x)
            return bool(river.drift_detected)

        return inverted

    def plain(x: float) -> bool:
        river.update(x)
        return bool(river.drift_detected)

    return plain


def spec_params(specs: Sequence[Spec], fired: str, **extra: Any) -> dict[str, Any]:
    """The parameters to report with an alarm: those of the spec that fired, plus ``extra``."""
    for name, params, scale in specs:
        if name == fired:
            return {**params, "z_scale": scale, **extra}
    return dict(extra)


def make_detector(name: str, params: Mapping[str, Any] | None = None) -> Detector:
    """Build a :class:`Detector`; raises :class:`DriftConfigError` on a bad name or parameter."""
    return Detector(name, params)


def _cut(
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


def _probe(name: str, river: Any, mean: float) -> tuple[str, float, float]:
    """Read a fired River detector's statistic and threshold.

    Reads private attributes, so a River release that renames them degrades
    to the running mean and NaN instead of failing.
    """
    try:
        if name == "PageHinkley":
            up = river._sum_increase - river._min_increase
            down = river._max_decrease - river._sum_decrease
            return "cumulative_deviation", float(max(up, down)), float(river.threshold)
        if name == "KSWIN":
            return "ks_p_value", float(river.p_value), float(river.alpha)
        if name == "DDM":
            p = river._p.get()
            s = math.sqrt(p * (1.0 - p) / river._p.n)
            limit = river._p_min + river.drift_threshold * river._s_min
            return "error_rate_plus_std", p + s, float(limit)
        if name == "EDDM":
            d = river._error_distances
            level = (d.mean.get() + 2.0 * d.get() ** 0.5) / river._p2s_prime_max
            return "distance_ratio", float(level), float(river.beta)
        if name == "HDDM_A":
            z, lo = river._z, river._x_min
            m = (z.n - lo.n) / lo.n / z.n
            eps = math.sqrt(m / 2.0 * math.log(2.0 / river.drift_confidence))
            return "mean_gap", float(z.get() - lo.get()), eps
    except (AttributeError, TypeError, ZeroDivisionError, ValueError):
        pass
    return "mean", mean, math.nan


class Watch:
    """The detectors watching one z-score stream: a primary and an optional backstop.

    Each detector gets the z-score times its own ``z_scale``. ``update``
    returns the :class:`Firing` of the first detector that fired on this
    value (None if none did); every detector of the watch then restarts, so
    the next alarm belongs to a new episode. The watch keeps the bookkeeping
    once for all its detectors, which matters at one call per block per stream.
    """

    __slots__ = ("_detectors", "_steps", "_recent", "n", "_sum", "_sumsq")

    def __init__(self, specs: Sequence[Spec]) -> None:
        self._detectors = [(make_detector(name, params), scale) for name, params, scale in specs]
        self._recent: deque[float] = deque(maxlen=64)
        self._restart()

    def _restart(self) -> None:
        self.n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._recent.clear()
        self._steps = [(det._fast, scale) for det, scale in self._detectors]

    def update(self, z: float) -> Firing | None:
        """Feed one z-score; the firing that happened on it, if any."""
        self.n += 1
        self._sum += z
        self._sumsq += z * z
        self._recent.append(z)
        for i, (step, scale) in enumerate(self._steps):
            if step(z * scale):
                det, scale = self._detectors[i]
                recent = [v * scale for v in self._recent]
                firing = det._fire(recent, self.n, self._sum * scale, self._sumsq * scale * scale)
                self.reset()
                return firing
        return None

    def reset(self) -> None:
        """Restart every detector."""
        for det, _ in self._detectors:
            det.reset()
        self._restart()
