"""Concept drift: the positive-label rate and the error stream of one model.

Labels are far fewer than features per event, so each label updates two
detectors directly: the positive rate (0/1 per label) and, when the score is
known, the error stream (0/1: was this example an error?). An error is either
the thresholded score disagreeing with the label, or a log loss above the
``loss_quantile`` of the warm-up losses, so the error rate has a known level
(1 - quantile) whatever the model's calibration.
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


class LabelDrift:
    """Positive-rate and error-rate detectors for one (model, label)."""

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
        if st.fed < self._min_samples or st.since < self._cooldown:
            return None
        firing = st.det.last_firing  # type: ignore[union-attr]
        assert firing is not None  # noqa: S101
        current = {"n": float(len(st.recent)), "rate": sum(st.recent) / len(st.recent)}
        alarm = LabelAlarm(st.name, firing, st.params, st.ref, current)
        st.since = 0.0
        st.learn = self._warmup
        st.det = None
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
