"""What loglabel reads from River's detectors beyond their public API.

:func:`verdict` feeds a detector one value and says whether it fired (the
fast path for ADWIN, the inverted input for FHDDM); :func:`probe` reads a
fired detector's statistic and threshold; :data:`PAGE_STATE` names
PageHinkley's running state for checkpoints. These read private attributes:
a River release that renames them degrades :func:`probe` to the running mean
and NaN instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

PAGE_STATE = ("_drift_detected", "_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease")
"""PageHinkley's running state besides its mean (River 0.26; plain numbers)."""


def verdict(river: Any, name: str) -> Callable[[float], bool]:
    """A function that feeds ``river`` one value and says whether it fired."""
    if name == "CUSUM":
        return river.update
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


def probe(name: str, river: Any, mean: float) -> tuple[str, float, float]:
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
