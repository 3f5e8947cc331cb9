"""River's drift detectors behind loglabel's own interface.

River's API has changed before (``change_detected`` became ``drift_detected``)
and its flag is true for exactly one update, after which the detector resets
itself on the next update. :class:`Detector` hides both: ``update(x)`` returns
whether this update fired, the wrapper restarts a fresh River detector at once,
and :attr:`Detector.last_firing` keeps what fired, after how many updates, on
which statistic and threshold. :class:`Watch` runs a primary detector and
an optional backstop on one z-score stream.

loglabel's own CUSUM lives in :mod:`drift.cusum`, the change-point estimate
and ADWIN's split test in :mod:`drift.cuts`, and what is read from River's
internals in :mod:`drift.river_access`.

>>> d = make_detector("ADWIN", {"delta": 0.002, "clock": 1})
>>> fired = [i for i, x in enumerate([0.0] * 300 + [1.0] * 100) if d.update(x)]
>>> fired[0] > 300, d.last_firing.detector
(True, 'ADWIN')
"""

from __future__ import annotations

import importlib
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drift.cusum import Cusum
from drift.cuts import RECENT, Prefix, adwin_cut, cut
from drift.errors import DriftConfigError, DriftError
from drift.river_access import PAGE_STATE, probe, verdict

_RIVER: dict[str, tuple[str, str]] = {
    # River's classes are imported when a detector is first built: importing
    # ``river.drift`` loads SciPy (about a second), and validating a config, or a
    # worker with drift off, needs none of it
    "ADWIN": ("river.drift", "ADWIN"),
    "KSWIN": ("river.drift", "KSWIN"),
    "PageHinkley": ("river.drift", "PageHinkley"),
    "DDM": ("river.drift.binary", "DDM"),
    "EDDM": ("river.drift.binary", "EDDM"),
    "FHDDM": ("river.drift.binary", "FHDDM"),
    "HDDM_A": ("river.drift.binary", "HDDMA"),
    "HDDM_W": ("river.drift.binary", "HDDMW"),
}


def _factory(name: str) -> Callable[..., Any] | None:
    """The class that ``make_detector(name)`` builds (``None``: no such detector)."""
    if name == "CUSUM":
        return Cusum
    home = _RIVER.get(name)
    if home is None:
        return None
    module, attr = home
    try:
        factory: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise DriftConfigError(f"detector {name} needs {module}.{attr}, which the installed "
                               f"River does not have ({exc}); install the version "
                               "pyproject.toml pins") from exc
    return factory


def load_river() -> None:
    """Import every River detector class now (about a second: River loads SciPy).

    A worker with drift monitoring on calls this while it starts, so the first
    poll batch does not pay for it and an incompatible River stops the start
    with its reason instead of turning into monitoring errors."""
    for name in _RIVER:
        _factory(name)


NUMERIC_DETECTORS = ("CUSUM", "ADWIN", "KSWIN", "PageHinkley")
"""Detectors for real-valued streams."""

BINARY_DETECTORS = ("DDM", "EDDM", "FHDDM", "HDDM_A", "HDDM_W")
"""Detectors for 0/1 streams (errors, labels); ADWIN also accepts 0/1."""

Spec = tuple[str, Mapping[str, Any], float]
"""A detector as the monitors take it: (name, River parameters, z_scale)."""

DETECTORS = ("CUSUM", *_RIVER)
"""Every detector name :func:`make_detector` accepts."""


@dataclass(frozen=True, slots=True)
class Firing:
    """What a detector saw when it fired.

    ``statistic`` and ``threshold`` follow ``statistic_name``; the statistic
    is the one that crossed the threshold on this update. For ADWIN they are
    the gap between the means of an older and a recent sub-window and ADWIN's
    bound for those sizes (the split ADWIN cut at, read from its window, or a
    split of the recent inputs that exceeds the bound further); for CUSUM the
    cumulative sum and ``h``. ``recent`` is the length of the recent
    sub-window (the updates since the estimated change; 0 if unknown).
    ``direction`` is +1 for a rise, -1 for a fall, 0 if unknown. ``n`` is
    the number of updates since the detector was (re)started. NaN means River
    did not expose the value.
    """

    detector: str
    statistic_name: str
    statistic: float
    threshold: float
    n: int
    recent: int = 0
    direction: int = 0


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
        "_prefix",
    )

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        factory = _factory(name)
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
        self._recent: deque[float] = deque(maxlen=RECENT)
        self._prefix = Prefix()
        self._start()

    def _start(self) -> None:
        self.n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._recent.clear()
        self._prefix.clear()
        self._fast = verdict(self._river, self.name)

    def update(self, x: float) -> bool:
        """Feed one value; True if a change was detected on this value."""
        self.n += 1
        self._sum += x
        self._sumsq += x * x
        self._recent.append(x)
        self._prefix.add(self.n, self._sum)
        if not self._fast(x):
            return False
        self._fire(list(self._recent), self.n, self._sum, self._sumsq, self._prefix)
        return True

    def _fire(
        self, recent: list[float], n: int, total: float, sumsq: float, prefix: Prefix,
        scale: float = 1.0,
    ) -> Firing:
        """Record a firing after ``n`` values (with their sum and sum of squares), restart.

        ``recent``, the sums and ``prefix`` (prefix sums of the inputs) are
        the caller's values, which the detector received times ``scale``.
        """
        name = "mean_gap"
        river = self._river
        if self.name == "ADWIN":
            stat, threshold, split, direction = adwin_cut(
                recent, n, total, sumsq, self.params, prefix, scale
            )
        elif self.name == "CUSUM":
            rise = river.up >= river.down
            name, threshold = "cumulative_deviation", river.threshold
            stat = max(river.up, river.down)
            split = river.up_n if rise else river.down_n
            direction = 1 if rise else -1
        else:
            _, _, split = cut(recent, n, total, sumsq, None)
            name, stat, threshold = probe(self.name, river, total * scale / n if n else math.nan)
            direction = 0
            if split and n > split:
                tail = sum(recent[-split:])
                direction = 1 if tail / split > (total - tail) / (n - split) else -1
        self.last_firing = Firing(self.name, name, stat, threshold, n, split, direction)
        self.fired += 1
        self.reset()
        return self.last_firing

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` rebuilds this detector exactly.

        Supported for CUSUM and ADWIN (River's own serialization of its
        window); raises :class:`DriftError` for the other detectors.
        """
        river = self._river
        out: dict[str, Any] = {"name": self.name, "params": dict(self.params), "n": self.n,
                               "sum": self._sum, "sumsq": self._sumsq,
                               "recent": list(self._recent), "fired": self.fired,
                               "prefix": [self._prefix.step, list(self._prefix.sums)]}
        if self.name == "CUSUM":
            out["cusum"] = [river.up, river.down, river.n, river.up_n, river.down_n]
        elif self.name == "ADWIN":
            out["adwin"] = bytes(river._helper.__getstate__())
        elif self.name == "PageHinkley":
            out["page"] = {k: getattr(river, k) for k in PAGE_STATE}
            out["page"]["mean"] = [river._x_mean.n, river._x_mean._mean]
        else:
            raise DriftError(f"{self.name} state cannot be saved; use CUSUM, ADWIN or PageHinkley")
        return out

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a :meth:`state` of a detector with the same name and parameters."""
        if state["name"] != self.name:
            raise DriftError(f"state of {state['name']} given to {self.name}")
        self.reset()
        river = self._river
        if self.name == "CUSUM":
            river.up, river.down, river.n, river.up_n, river.down_n = state["cusum"]
        elif self.name == "PageHinkley":
            for k in PAGE_STATE:
                setattr(river, k, state["page"][k])
            river._x_mean.n, river._x_mean._mean = state["page"]["mean"]
        else:
            river._helper.__setstate__(state["adwin"])
            self._fast = verdict(river, self.name)
        self.n = int(state["n"])
        self._sum, self._sumsq = float(state["sum"]), float(state["sumsq"])
        self._recent.extend(state["recent"])
        self._prefix.step, self._prefix.sums = int(state["prefix"][0]), list(state["prefix"][1])
        self.fired = int(state["fired"])

    def pressure(self) -> float:
        """How close a CUSUM is to firing (its larger sum over ``h``); 0 for other detectors."""
        river = self._river
        if self.name != "CUSUM":
            return 0.0
        return float(max(river.up, river.down) / river.threshold)

    def seed(self, n: int, mean: float = 0.0) -> None:
        """Start a fresh PageHinkley as if it had seen ``n`` inputs averaging ``mean``.

        PageHinkley measures deviations from its own running mean, so right
        after a restart a change a few inputs later barely moves it: its mean
        follows the new level at once. Seeded with the reference's level, it
        compares the first inputs with that level instead. Other detectors
        are left as they are.
        """
        if self.name == "PageHinkley" and self.n == 0:
            self._river._x_mean.n, self._river._x_mean._mean = float(n), float(mean)

    def reset(self) -> None:
        """Restart with fresh state and the same parameters."""
        # Not River's clone(): KSWIN's clone copies its current window along.
        self._river = self._factory(**self.params)
        self._start()

    @property
    def mean(self) -> float:
        """Mean of the values seen since the last (re)start, NaN if none."""
        return self._sum / self.n if self.n else math.nan




def spec_params(specs: Sequence[Spec], fired: str, **extra: Any) -> dict[str, Any]:
    """The parameters to report with an alarm: those of the spec that fired, plus ``extra``."""
    for name, params, scale in specs:
        if name == fired:
            return {**params, "z_scale": scale, **extra}
    return dict(extra)


def make_detector(name: str, params: Mapping[str, Any] | None = None) -> Detector:
    """Build a :class:`Detector`; raises :class:`DriftConfigError` on a bad name or parameter."""
    return Detector(name, params)


class Watch:
    """The detectors watching one z-score stream: a primary and an optional backstop.

    Each detector gets the z-score times its own ``z_scale``. ``update``
    returns the :class:`Firing` of the first detector that fired on this
    value (None if none did); every detector of the watch then restarts, so
    the next alarm belongs to a new episode. The watch keeps the bookkeeping
    once for all its detectors, which matters at one call per block per stream.
    Called from one thread only (the monitor's owner).
    """

    __slots__ = ("_detectors", "_steps", "_recent", "n", "_sum", "_sumsq", "specs", "_prefix",
                 "_track")

    def __init__(self, specs: Sequence[Spec]) -> None:
        self.specs: list[Spec] = [(name, dict(params), scale) for name, params, scale in specs]
        self._detectors = [(make_detector(name, params), scale) for name, params, scale in specs]
        # A CUSUM reports its own statistic and change point; only the other
        # detectors need the inputs' history to report theirs.
        self._track = any(name != "CUSUM" for name, _, _ in specs)
        self._recent: deque[float] = deque(maxlen=RECENT)
        self._prefix = Prefix()
        self._restart()

    def _restart(self) -> None:
        self.n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._recent.clear()
        self._prefix.clear()
        self._steps = [(det._fast, scale) for det, scale in self._detectors]

    def update(self, z: float) -> Firing | None:
        """Feed one z-score; the firing that happened on it, if any."""
        self.n += 1
        if self._track:
            self._sum += z
            self._sumsq += z * z
            self._recent.append(z)
            prefix = self._prefix
            if not self.n % prefix.step:
                prefix.add(self.n, self._sum)
        for i, (step, scale) in enumerate(self._steps):
            if step(z * scale):
                det, scale = self._detectors[i]
                firing = det._fire(
                    list(self._recent), self.n, self._sum, self._sumsq, self._prefix, scale
                )
                self.reset()
                return firing
        return None

    def reset(self) -> None:
        """Restart every detector."""
        for det, _ in self._detectors:
            det.reset()
        self._restart()

    def pressure(self) -> float:
        """The largest CUSUM sum over its threshold (0 without a CUSUM): evidence building up."""
        return max((det.pressure() for det, _ in self._detectors), default=0.0)

    def seed(self, n: int) -> None:
        """Seed a fresh watch's PageHinkley with ``n`` in-control z-scores (see
        :meth:`Detector.seed`)."""
        for det, _ in self._detectors:
            det.seed(n)

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) for :meth:`restore`; see :meth:`Detector.state`."""
        return {
            "specs": [[name, dict(params), scale] for name, params, scale in self.specs],
            "n": self.n,
            "sum": self._sum,
            "sumsq": self._sumsq,
            "recent": list(self._recent),
            "prefix": [self._prefix.step, list(self._prefix.sums)],
            "detectors": [det.state() for det, _ in self._detectors],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Watch:
        """A watch that continues exactly where the one that gave ``state`` stood."""
        watch = cls([(name, params, float(scale)) for name, params, scale in state["specs"]])
        for (det, _), det_state in zip(watch._detectors, state["detectors"], strict=True):
            det.restore(det_state)
        watch._restart()
        watch.n = int(state["n"])
        watch._sum, watch._sumsq = float(state["sum"]), float(state["sumsq"])
        watch._recent.extend(state["recent"])
        watch._prefix.step, watch._prefix.sums = int(state["prefix"][0]), list(state["prefix"][1])
        return watch
