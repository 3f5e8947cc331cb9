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
from collections.abc import Callable, Mapping
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
        "_fast",
        "_recent",
        "_sum",
        "_sumsq",
        "_invert",
    )

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        factory = _RIVER.get(name)
        if factory is None:
            raise DriftConfigError(f"unknown drift detector {name!r}; choose one of {DETECTORS}")
        self.name = name
        self.params: dict[str, Any] = dict(params or {})
        try:
            self._river = factory(**self.params)
        except (TypeError, ValueError) as exc:
            raise DriftConfigError(f"bad parameters for {name}: {exc}") from exc
        self.fired = 0
        self.last_firing: Firing | None = None
        # ADWIN's cut point is not exposed; the recent inputs let us report it.
        self._recent: deque[float] | None = deque(maxlen=64) if name == "ADWIN" else None
        # River's FHDDM fires when the rate of 1s falls (MOA's accuracy input),
        # although its docstring says 1 is an error; we feed it 1 - x so that
        # every binary detector here fires when the rate of 1s rises.
        self._invert = name == "FHDDM"
        self._start()

    def _start(self) -> None:
        self.n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        if self._recent is not None:
            self._recent.clear()
        # River's ADWIN.update is a thin Python layer over a Rust window whose
        # update returns the verdict; calling it directly halves the cost.
        # Since we restart on every detection, the layer's only job (resetting
        # on the next update) is ours anyway. Fall back if River changes.
        helper = getattr(self._river, "_helper", None)
        self._fast = getattr(helper, "update", None) if self.name == "ADWIN" else None

    def update(self, x: float) -> bool:
        """Feed one value; True if a change was detected on this value."""
        self.n += 1
        self._sum += x
        self._sumsq += x * x
        if self._fast is not None:
            self._recent.append(x)  # type: ignore[union-attr]
            if not self._fast(x):
                return False
        else:
            if self._recent is not None:
                self._recent.append(x)
            river = self._river
            river.update(1 - x if self._invert else x)
            if not river.drift_detected:
                return False
        self._record()
        self.reset()
        return True

    def _record(self) -> None:
        if self._recent is not None:
            # Until it fires, ADWIN's window is everything since the (re)start.
            stat, threshold, recent = _adwin_cut(
                list(self._recent), self.n, self._sum, self._sumsq, self.params
            )
            name = "mean_gap"
        else:
            name, stat, threshold = _probe(self.name, self._river, self.mean)
            recent = 0
        self.last_firing = Firing(self.name, name, stat, threshold, self.n, recent)
        self.fired += 1

    def reset(self) -> None:
        """Restart with fresh state and the same parameters."""
        self._river = self._river.clone()
        self._start()

    @property
    def mean(self) -> float:
        """Mean of the values seen since the last (re)start, NaN if none."""
        return self._sum / self.n if self.n else math.nan


def make_detector(name: str, params: Mapping[str, Any] | None = None) -> Detector:
    """Build a :class:`Detector`; raises :class:`DriftConfigError` on a bad name or parameter."""
    return Detector(name, params)


def _adwin_cut(
    recent: list[float], n: int, total: float, sumsq: float, params: Mapping[str, Any]
) -> tuple[float, float, int]:
    """The most significant split of the window between its last n1 values and the rest.

    Same bound as ADWIN (Bifet & Gavalda, 2007), tried for every recent length
    we kept: returns (|mean gap|, bound, n1) of the split that exceeds its bound most.
    """
    delta = float(params.get("delta", 0.002))
    mwl = int(params.get("min_window_length", 5))
    if n < 3:
        return math.nan, math.nan, 0
    mean = total / n
    var = max(sumsq / n - mean * mean, 0.0)
    dd = math.log(2.0 * math.log(n) / delta)
    best = (-math.inf, math.nan, math.nan, 0)
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
            best = (gap - eps, gap, eps, n1)
    return best[1], best[2], best[3]


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
