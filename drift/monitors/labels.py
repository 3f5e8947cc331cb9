"""Concept drift: the positive-label rate and the error stream of one model.

Labels are far fewer than features per event, so each label updates two
detectors directly: the positive rate (0/1 per label) and, when the score is
known, the error stream (0/1: was this example an error?). An error is either
the thresholded score disagreeing with the label, or a log loss above the
``loss_quantile`` of the warm-up losses, so the error rate has a known level
(1 - quantile) whatever the model's calibration.

After an alarm the stream's detector has restarted (River's ADWIN compares
the stream with its own recent past, so it needs no new reference) and keeps
watching at once: a second change right after the first is detected. The
"reference" summary of the next alarm is the rate since this one.
``cooldown`` suppresses reporting (not detecting) a change in the same
direction within ``cooldown`` labels of the last reported alarm of that
stream; they are counted in :attr:`LabelDrift.suppressed`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Detector, Firing, make_detector
from drift.settings import LabelSettings

_EPS = 1e-7


@dataclass(frozen=True, slots=True)
class LabelAlarm:
    """A change in the positive rate or in the error rate."""

    stream: str
    firing: Firing
    params: Mapping[str, Any]
    reference: Mapping[str, float]
    current: Mapping[str, float]


def log_loss(score: float, label: bool) -> float:
    """Binary log loss of one example, with the score clipped away from 0 and 1."""
    p = min(max(score, _EPS), 1.0 - _EPS)
    return -math.log(p if label else 1.0 - p)


class _Stream:
    __slots__ = (
        "name",
        "detector",
        "params",
        "det",
        "learn",
        "warm",
        "fed",
        "since",
        "recent",
        "ref",
        "last",
    )

    def __init__(
        self, name: str, detector: str, params: Mapping[str, Any], warmup: int, window: int
    ):
        self.name = name
        self.detector = detector
        self.params = dict(params)
        self.det: Detector | None = None
        make_detector(detector, self.params)
        self.learn = warmup
        self.warm: list[float] = []
        self.fed = 0
        self.since = math.inf
        self.recent: deque[float] = deque(maxlen=window)
        self.ref: dict[str, float] = {}
        self.last = 0

    def state(self) -> dict[str, Any]:
        return {"learn": self.learn, "warm": list(self.warm), "fed": self.fed,
                "since": self.since, "recent": list(self.recent), "ref": dict(self.ref),
                "last": self.last, "det": self.det.state() if self.det else None}

    def restore(self, s: Mapping[str, Any]) -> None:
        self.learn, self.warm, self.fed = int(s["learn"]), list(s["warm"]), int(s["fed"])
        self.since, self.last = float(s["since"]), int(s["last"])
        self.recent.clear()
        self.recent.extend(s["recent"])
        self.ref = dict(s["ref"])
        self.det = None
        if s["det"] is not None:
            self.det = make_detector(self.detector, self.params)
            self.det.restore(s["det"])


class LabelDrift:
    """Positive-rate and error-rate detectors for one (model, label). One thread only."""

    def __init__(self, settings: LabelSettings, *, warmup: int, min_samples: int, cooldown: int):
        self._s = settings
        self._warmup = max(warmup, 1)
        self._min_samples = min_samples
        self._cooldown = cooldown
        window = settings.summary_window
        self._rate = _Stream(
            "positive_rate", settings.rate_detector, settings.rate_params, self._warmup, window
        )
        self._error = _Stream(
            "error_rate", settings.error_detector, settings.error_params, self._warmup, window
        )
        self._loss_cut = math.inf
        self.suppressed = 0

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` continues exactly."""
        return {"rate": self._rate.state(), "error": self._error.state(),
                "loss_cut": self._loss_cut, "suppressed": self.suppressed}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` of a ``LabelDrift`` with the same settings."""
        self._rate.restore(state["rate"])
        self._error.restore(state["error"])
        self._loss_cut = float(state["loss_cut"])
        self.suppressed = int(state["suppressed"])

    def update(self, score: float | None, label: bool) -> list[LabelAlarm]:
        """Feed one labeled example; returns the alarms it raised (usually none)."""
        alarms: list[LabelAlarm] = []
        y = 1.0 if label else 0.0
        alarm = self._step(self._rate, y, y)
        if alarm is not None:
            alarms.append(alarm)
        if score is not None and not math.isnan(score):
            s = self._s
            if s.error == "threshold":
                err = 1.0 if (score >= s.score_threshold) != bool(label) else 0.0
                alarm = self._step(self._error, err, err)
            else:
                loss = log_loss(score, bool(label))
                err = 1.0 if loss > self._loss_cut else 0.0
                alarm = self._step(self._error, err, loss)
            if alarm is not None:
                alarms.append(alarm)
        return alarms

    def _step(self, st: _Stream, x: float, raw: float) -> LabelAlarm | None:
        st.since += 1
        if st.learn > 0:
            st.warm.append(raw)
            st.learn -= 1
            if st.learn == 0:
                self._arm(st)
            return None
        st.recent.append(x)
        st.fed += 1
        if not st.det.update(x):  # type: ignore[union-attr]
            return None
        if st.fed < self._min_samples:
            return None
        firing = st.det.last_firing  # type: ignore[union-attr]
        assert firing is not None  # noqa: S101
        # The detector has restarted itself: it keeps watching from here.
        n1 = min(firing.recent or len(st.recent), len(st.recent))
        tail = list(st.recent)[-n1:]
        current = {"n": float(n1), "rate": sum(tail) / n1}
        if st.since < self._cooldown and firing.direction == st.last:
            self.suppressed += 1
            st.ref = {**st.ref, **current}
            return None
        alarm = LabelAlarm(st.name, firing, st.params, st.ref, current)
        st.since = 0.0
        st.last = firing.direction
        st.ref = {**st.ref, **current}
        st.fed = 0
        st.recent.clear()
        return alarm

    def _arm(self, st: _Stream) -> None:
        warm = np.asarray(st.warm)
        st.warm = []
        if st is self._error and self._s.error == "log_loss":
            self._loss_cut = float(np.quantile(warm, self._s.loss_quantile))
            rate = float(np.mean(warm > self._loss_cut))
            st.ref = {"n": float(warm.size), "rate": rate, "loss_cut": self._loss_cut}
        else:
            st.ref = {"n": float(warm.size), "rate": float(warm.mean())}
        st.det = make_detector(st.detector, st.params)
        st.fed = 0
        st.recent.clear()
