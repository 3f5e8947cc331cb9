"""The frozen reference of a numeric column, and its detectors' calibration to it.

:func:`reference` computes the reference constants of a column's reference
values (the warm-up, or the baseline profile's quantiles): the winsorizing
bounds ``lo``/``hi``, the median ``med``, the location ``mu`` and spread
``dmu`` with their standard deviations, and the calibration that
:func:`autocorrelation` derives from the served values:

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
  that much (:func:`allow`).

:func:`trend` tells a ramp from a step, for the cooldown rule of
:class:`drift.monitors.numeric.NumericDrift`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from drift.detectors import Spec

MAX_POOL = 64
"""Most blocks pooled into one super-block (autocorrelation)."""


def allow(specs: list[Spec], extra: float) -> list[Spec]:
    """``specs`` with every CUSUM's allowance raised by ``extra`` (reference uncertainty)."""
    out: list[Spec] = []
    for name, params, scale in specs:
        if name == "CUSUM":
            params = {**params, "delta": round(float(params.get("delta", 1.0)) + extra, 4)}
        out.append((name, params, scale))
    return out


CHUNK = 128
"""Events per chunk whose own mean is removed before the autocorrelation is estimated."""


def lag1(x: np.ndarray) -> float:
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


def phi_bound(phi: float, n: float) -> float:
    """A conservative lag-1 autocorrelation: 0 unless significant, else raised by 2 SE."""
    if not math.isfinite(n) or n < 3:
        return 0.0
    se = 1.0 / math.sqrt(n)
    if phi < 2.0 * se:
        return 0.0
    return min(phi + 2.0 * math.sqrt(max(1.0 - phi * phi, 0.0) / n), 0.98)


def pool(phi: float, k: int) -> int:
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


def reference(x: np.ndarray, winsorize: float, k: int, iid: bool = False) -> dict[str, float]:
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
    ref.update(autocorrelation(None if iid else x, ref, k, math.inf if iid else float(x.size)))
    return ref


def autocorrelation(
    x: np.ndarray | None, ref: dict[str, float], k: int, n_ref: float
) -> dict[str, float]:
    """Calibration to the autocorrelation of served values ``x``, for a reference of ``n_ref``.

    Returns the z-score factors (``inv``, ``dinv``), the pooled blocks ``m``,
    the CUSUM allowance increments (``k_loc``, ``k_disp``) and ``phi``.
    """
    phi = phid = 0.0
    if x is not None and x.size >= 3:
        c = np.clip(x, ref["lo"], ref["hi"])
        phi = phi_bound(lag1(c), x.size)
        # |x - median| of an autocorrelated stream stays correlated over more
        # lags than its lag-1 value says (phi^2k for an AR(1)): take the larger.
        phid = max(phi_bound(lag1(np.abs(c - ref["med"])), x.size), phi)
    vif, vifd = (1.0 + phi) / (1.0 - phi), (1.0 + phid) / (1.0 - phid)
    m = pool(max(phi, phid), k)
    L = k * m
    return {
        "inv": 1.0 / (ref["sd"] * math.sqrt(vif)),
        "dinv": 1.0 / (ref["dsd"] * math.sqrt(vifd)),
        "m": float(m),
        "phi": phi,
        "k_loc": math.sqrt(L * vif / n_ref) if math.isfinite(n_ref) else 0.0,
        "k_disp": math.sqrt(L * vifd / n_ref) if math.isfinite(n_ref) else 0.0,
    }


def trend(x: np.ndarray, ref: Mapping[str, float], stream: str) -> int:
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
