"""How fast any detector can find a mean shift at a given false-alarm rate: the
yardstick for the evaluation's delays.

The CUSUM of the log-likelihood ratio, told the shift ``delta`` (in standard
deviations) and the exact pre-change mean, is the optimal detector of a Gaussian
mean shift (Lorden, Moustakides): no detector with the same false-alarm rate has a
smaller worst-case mean delay. Its run lengths are computed here without
simulation, by the Markov-chain method of Brook and Evans (1972): the statistic
``S = max(0, S + delta * x - delta**2 / 2)`` is discretized into ``cells`` states
on ``[0, h]``, crossing ``h`` is absorbing, and

* the false-alarm rate per event is the leak of the chain's quasi-stationary
  distribution under ``x ~ N(0, 1)`` (one minus the dominant eigenvalue of the
  transient block, by power iteration: the rate at which a long-running detector
  alarms);
* the delay is the first passage under ``x ~ N(delta, 1)``, started from that
  quasi-stationary state (the detector has been running when the change comes, as
  in ``loglabel drift-eval``); its median is the first step at which at least half
  of the mass has crossed.

The CUSUM minimises the worst-case mean delay at a given mean time to a false
alarm (Lorden, Moustakides); for a change that comes while the detector runs the
Shiryaev-Roberts procedure is optimal, and it is within about one event of these
medians here. So the figures are near-optimal rather than strict bounds on
medians: a detector that must also estimate the reference and the shift, watch both
directions, and report at the end of blocks can be expected to be slower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

CELLS = 400  # rates within about 1% of 1,200 cells' at these thresholds
MAX_STEPS = 20_000


@dataclass(frozen=True)
class Bound:
    """The ideal CUSUM at one threshold."""

    threshold: float
    false_alarms_per_event: float
    median_delay: int
    mean_delay: float


def _transient(delta: float, h: float, mean: float, cells: int) -> np.ndarray:
    """The transition matrix among the non-absorbed states when ``x ~ N(mean, 1)``:
    state j is the cell of width ``w = 2h / (2 cells - 1)`` centered on ``j w`` (state
    0 also holds the atom at 0 and everything below), the last one ending at h."""
    width = 2.0 * h / (2 * cells - 1)
    centers = np.arange(cells) * width
    edges = (np.arange(cells + 1) - 0.5) * width  # the last: (cells - 1/2) w = h
    # increment Z = delta * x - delta**2 / 2 ~ N(delta * mean - delta**2 / 2, delta**2)
    loc, scale = delta * mean - delta * delta / 2, delta
    cdf = norm.cdf((edges[None, :] - centers[:, None] - loc) / scale)
    q = np.diff(cdf, axis=1)
    q[:, 0] = cdf[:, 1]  # everything below the first cell's upper edge lands in state 0
    return q


def delay_distribution(delta: float, h: float, cells: int = CELLS, running: bool = True,
                       ) -> tuple[float, np.ndarray]:
    """The false-alarm rate per event of the ideal CUSUM for ``delta`` at threshold
    ``h``, and the distribution of its delay after the change: ``F[t - 1]`` is the
    chance that it has alarmed within ``t`` events of the change (counting the one
    that alarms), until at least 99.9% has. The change finds it ``running``
    (quasi-stationary) or, if not, fresh at 0."""
    rate, stationary = _leak(_transient(delta, h, 0.0, cells))
    if running:
        mass = stationary
    else:
        mass = np.zeros(cells)
        mass[0] = 1.0
    shifted = _transient(delta, h, delta, cells)
    crossed = []
    for _ in range(MAX_STEPS):
        mass = mass @ shifted
        crossed.append(1.0 - float(mass.sum()))
        if crossed[-1] >= 0.999:
            return rate, np.array(crossed)
    raise ValueError(f"the delay is not settled within {MAX_STEPS} events (h = {h})")


def ideal_cusum(delta: float, h: float, cells: int = CELLS, running: bool = True) -> Bound:
    """The false-alarm rate per event and the median and mean delay (events after the
    change, counting the one that alarms) of the ideal CUSUM for ``delta`` at threshold
    ``h``; see :func:`delay_distribution`."""
    rate, alarmed = delay_distribution(delta, h, cells, running)
    median = int(np.argmax(alarmed >= 0.5)) + 1
    mean = float((1.0 - alarmed).sum()) + 1.0  # E[T] = sum over t >= 0 of P(T > t)
    return Bound(h, rate, median, mean)


def _leak(q: np.ndarray) -> tuple[float, np.ndarray]:
    """The quasi-stationary distribution of the transient block ``q`` and the mass it
    loses per step (one minus the Perron eigenvalue), by power iteration: the chain
    forgets its start within tens of steps, far sooner than it alarms."""
    v = np.full(q.shape[0], 1.0 / q.shape[0])
    rate = math.nan
    for step in range(1, MAX_STEPS + 1):
        w = v @ q
        kept = float(w.sum())
        v = w / kept
        if step % 50 == 0:
            if abs(1.0 - kept - rate) <= 1e-9 * (1.0 - kept):
                break
            rate = 1.0 - kept
    return 1.0 - kept, v


def threshold_for(delta: float, rate: float, cells: int = CELLS) -> Bound:
    """The ideal CUSUM whose false-alarm rate per event is at most ``rate`` (bisection on
    h to 0.01: a delay's worth of about 0.1 event)."""
    low, high = 0.5, 40.0
    while high - low > 0.01:
        middle = (low + high) / 2
        if ideal_cusum(delta, middle, cells).false_alarms_per_event > rate:
            low = middle
        else:
            high = middle
    return ideal_cusum(delta, high, cells)


def limit_lines(delta: float = 0.5, rates: tuple[float, ...] = (1e-7, 1e-8, 1e-9)) -> list[str]:
    """Sentences for people: the ideal CUSUM's median delay on a ``+delta`` sigma shift
    at each false-alarm rate."""
    parts = []
    for rate in rates:
        bound = threshold_for(delta, rate)
        per_million = rate * 1e6
        parts.append(f"{bound.median_delay} events at {per_million:g} false alarms per 10^6 "
                     f"(10^{round(math.log10(rate))} per event)")
    return [f"an ideal detector of +{delta:g} sigma (the CUSUM told the shift and the exact "
            "reference, by the Brook-Evans chain; near-optimal, not a strict bound): median "
            "delay " + ", ".join(parts)]
