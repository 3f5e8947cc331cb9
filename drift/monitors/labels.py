"""Concept drift: the positive-label rate and the error stream of one model.

Each label is one observation of the positive rate (0/1) and, when the score
is known, of the error stream (0/1: was this example an error?). An error is
either the thresholded score disagreeing with the label, or a log loss above
the ``loss_quantile`` of the warm-up losses, so the error rate has a known
level (1 - quantile) whatever the model's calibration.

With the default detector (``GLR``, :class:`drift.monitors.rates.ShareTest`)
a scored label falls in one of four cells, (label, error), and one test
watches the four shares: a concept change moves the label and the error
together (a flipped rule turns some positives into errors), and the joint
test sees both parts of the move at once, where two separate tests each see
only their own and must both pay for false-alarm control. Its alarm is
reported as ``positive_rate`` or ``error_rate``, whichever moved more against
its own noise (the larger of the two rates' own likelihood ratios at the
split the test found). A label without a score goes to a second, two-cell
test of the positive rate. A ``GLR`` on one stream only (the other with a
River detector) is a two-cell test of that stream.

The first ``warmup`` observations of a test are its first history, tested
from then on (none is thrown away; with ``log_loss`` errors the loss cut is
learned from them first). The alarm's ``reference`` and ``current`` are the
rates before and after the split the test found (``n``, the reported
stream's ``rate``, and each stream's rate by name). After an alarm the test
starts a new history with the next label and keeps watching: a second change
a few hundred labels after the first is detected (why not from the split:
:mod:`drift.monitors.rates`).

River's detectors (``ADWIN``, ``DDM``, ...) remain selectable per stream; they
compare the stream with its own recent past, restart after an alarm, and the
"reference" of their next alarm is the rate since this one.

``cooldown`` suppresses reporting (not detecting) a change in the same
direction within ``cooldown`` labels of the last reported alarm of that
stream; they are counted in :attr:`LabelDrift.suppressed`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Detector, Firing, make_detector
from drift.monitors.rates import NAME as GLR
from drift.monitors.rates import STATISTIC, ShareTest, Split
from drift.settings import LabelSettings

_EPS = 1e-7

POSITIVE, ERROR = "positive_rate", "error_rate"
"""The label streams' names in drift events."""


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


def binary_llr(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Log-likelihood ratio of two Bernoulli rates (k of n before and after) against one."""
    def xlx(v: float) -> float:
        return v * math.log(v) if v > 0 else 0.0

    k, n = k_a + k_b, n_a + n_b
    return (xlx(k_a) + xlx(n_a - k_a) - xlx(n_a) + xlx(k_b) + xlx(n_b - k_b) - xlx(n_b)
            - xlx(k) - xlx(n - k) + xlx(n))


class _Stream:
    """One 0/1 stream watched by a River detector (the non-GLR choices)."""

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


class _Shares:
    """A :class:`ShareTest` over one or both label streams, with its warm-up.

    ``streams`` are the 0/1 streams its cells encode: one stream gives two
    cells (the bit), both give four (``2 * label + error``).
    """

    __slots__ = ("streams", "params", "test", "learn", "warm")

    def __init__(self, streams: tuple[str, ...], params: Mapping[str, Any], warmup: int,
                 min_samples: int) -> None:
        self.streams = streams
        self.params = dict(params)
        self.test = ShareTest(2 ** len(streams), self.params, min_history=min_samples)
        self.learn = warmup
        # Warm-up observations: (label, raw) with raw the error (0/1) or the
        # log loss, kept until the loss cut is known.
        self.warm: list[tuple[int, float]] = []

    def state(self) -> dict[str, Any]:
        return {"learn": self.learn, "warm": [list(w) for w in self.warm],
                "test": self.test.state()}

    def restore(self, s: Mapping[str, Any]) -> None:
        self.learn = int(s["learn"])
        self.warm = [(int(y), float(raw)) for y, raw in s["warm"]]
        self.test.restore(s["test"])


def _summary(marginals: Mapping[str, tuple[int, int]], stream: str) -> dict[str, float]:
    """``n``, the reported stream's ``rate`` and every stream's rate, of one side of a split."""
    out = {"n": float(marginals[stream][1]), "rate": _rate(*marginals[stream])}
    out.update({name: _rate(k, n) for name, (k, n) in marginals.items()})
    return out


def _direction(before: tuple[int, int], after: tuple[int, int]) -> int:
    """+1 if the rate (ones, n) after is higher than before, else -1."""
    return 1 if after[0] * before[1] > before[0] * after[1] else -1


def _scored(score: float | None) -> bool:
    return score is not None and not math.isnan(score)


def _rate(k: int, n: int) -> float:
    return k / n if n else math.nan


class LabelDrift:
    """Positive-rate and error-rate detectors for one (model, label). One thread only."""

    def __init__(self, settings: LabelSettings, *, warmup: int, min_samples: int, cooldown: int):
        self._s = settings
        self._warmup = max(warmup, 1)
        self._min_samples = min_samples
        self._cooldown = cooldown
        window = settings.summary_window
        glr_rate = settings.rate_detector == GLR
        glr_error = settings.error_detector == GLR
        self._rate: _Stream | None = None
        self._error: _Stream | None = None
        self._joint: _Shares | None = None
        self._plain: _Shares | None = None
        self._errors: _Shares | None = None
        if glr_rate and glr_error:
            # Scored labels: one test of (label, error); unscored ones: the label alone.
            params = {**settings.rate_params, **settings.error_params}
            self._joint = _Shares((POSITIVE, ERROR), params, self._warmup, min_samples)
        if glr_rate:
            self._plain = _Shares((POSITIVE,), settings.rate_params, self._warmup, min_samples)
        else:
            self._rate = _Stream(
                POSITIVE, settings.rate_detector, settings.rate_params, self._warmup, window
            )
        if glr_error and not glr_rate:
            self._errors = _Shares((ERROR,), settings.error_params, self._warmup, min_samples)
        elif not glr_error:
            self._error = _Stream(
                ERROR, settings.error_detector, settings.error_params, self._warmup, window
            )
        self._loss_cut = math.inf
        self._labels = 0
        self.consumed = 0  # examples the last update_many took
        # Per stream: the label count and direction of its last reported GLR alarm.
        self._reported: dict[str, tuple[int, int]] = {}
        self.suppressed = 0

    # -- state -------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` continues exactly."""
        def part(p: _Stream | _Shares | None) -> dict[str, Any] | None:
            return None if p is None else p.state()

        return {"rate": part(self._rate), "error": part(self._error),
                "joint": part(self._joint), "plain": part(self._plain),
                "errors": part(self._errors), "loss_cut": self._loss_cut,
                "labels": self._labels,
                "reported": {k: list(v) for k, v in self._reported.items()},
                "suppressed": self.suppressed}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` of a ``LabelDrift`` with the same settings.

        A part the state lacks (saved under other detector settings, e.g.
        River's ADWIN before ``GLR`` became the default) starts afresh with
        its warm-up; the other parts continue.
        """
        for name in ("rate", "error", "joint", "plain", "errors"):
            mine, saved = getattr(self, f"_{name}"), state.get(name)
            if mine is not None and saved is not None:
                mine.restore(saved)
        self._loss_cut = float(state["loss_cut"])
        self._labels = int(state.get("labels", 0))
        self._reported = {k: (int(v[0]), int(v[1]))
                          for k, v in state.get("reported", {}).items()}
        self.suppressed = int(state["suppressed"])

    # -- updates -----------------------------------------------------------

    def update(self, score: float | None, label: bool) -> list[LabelAlarm]:
        """Feed one labeled example; returns the alarms it raised (usually none)."""
        self._labels += 1
        alarms: list[LabelAlarm] = []
        y = 1 if label else 0
        scored = score is not None and not math.isnan(score)
        if self._rate is not None:
            alarm = self._step(self._rate, float(y), float(y))
            if alarm is not None:
                alarms.append(alarm)
        if self._plain is not None and not (scored and self._joint is not None):
            alarm = self._feed(self._plain, y, 0.0)
            if alarm is not None:
                alarms.append(alarm)
        if scored:
            s = self._s
            assert score is not None  # noqa: S101
            if s.error == "threshold":
                err = 1 if (score >= s.score_threshold) != bool(label) else 0
                raw = float(err)
            else:
                raw = log_loss(score, bool(label))
                err = 1 if raw > self._loss_cut else 0
            if self._error is not None:
                alarm = self._step(self._error, float(err), raw)
            elif self._joint is not None and not self._joint.learn:
                # The common case, without the warm-up's detour.
                joint = self._joint
                alarm = self._report(joint, joint.test.last) if joint.test.update(2 * y + err) \
                    else None
            else:
                shares = self._joint if self._joint is not None else self._errors
                assert shares is not None  # noqa: S101
                alarm = self._feed(shares, y, raw)
            if alarm is not None:
                alarms.append(alarm)
        return alarms

    def update_many(
        self, scores: Sequence[float | None], labels: Sequence[bool],
        out: list[tuple[int, LabelAlarm]] | None = None, start: int = 0,
    ) -> list[tuple[int, LabelAlarm]]:
        """Feed labeled examples in order, from ``start`` on; the alarms raised, each with
        its example's index.

        The same as :meth:`update` on each example. A run of scored examples
        once the joint test is armed goes to it a clock at a time (the usual
        case); the others take :meth:`update`. With ``out``, alarms are appended
        to it as they are raised. If it raises, :attr:`consumed` is the index after
        the example it failed on (that one is taken, as one at a time).
        """
        out = [] if out is None else out
        self.consumed = start
        i, m = start, len(labels)
        while i < m:
            joint = self._joint
            if joint is None or joint.learn or not _scored(scores[i]):
                self.consumed = i + 1
                out.extend((i, alarm) for alarm in self.update(scores[i], labels[i]))
                i += 1
                continue
            j = i + 1
            while j < m and _scored(scores[j]):
                j += 1
            try:
                cells = self._cells(scores[i:j], labels[i:j])
            except Exception:  # noqa: BLE001 - a score the cell rule cannot take: the run
                for r in range(i, j):  # one at a time, so the failure is that example's
                    self.consumed = r + 1
                    out.extend((r, alarm) for alarm in self.update(scores[r], labels[r]))
                i = j
                continue
            done = 0
            test = joint.test
            while done < len(cells):
                try:
                    added, fired = test.feed(cells[done:])
                except Exception:
                    # the cells the test took before it failed are in, the last one
                    # being the example it failed on (as one at a time)
                    self._labels += test.taken
                    self.consumed = i + done + test.taken
                    raise
                done += added
                self._labels += added
                self.consumed = i + done
                if fired:
                    alarm = self._report(joint, test.last)
                    if alarm is not None:
                        out.append((i + done - 1, alarm))
            i = j
        self.consumed = m
        return out

    def _cells(self, scores: Sequence[Any], labels: Sequence[bool]) -> list[int]:
        """The joint test's cell (``2 * label + error``) of each scored example, as ``update``."""
        s = self._s
        if s.error == "threshold":
            t = s.score_threshold
            return [(2 if y else 0) + ((score >= t) != bool(y)) for score, y in
                    zip(scores, labels, strict=True)]
        cut = self._loss_cut
        return [(2 if y else 0) + (log_loss(score, bool(y)) > cut) for score, y in
                zip(scores, labels, strict=True)]

    # -- GLR share tests -----------------------------------------------------

    def _cell(self, shares: _Shares, y: int, raw: float) -> int:
        if shares.streams == (POSITIVE,):
            return y
        if self._s.error == "threshold":
            err = int(raw)
        else:
            err = 1 if raw > self._loss_cut else 0
        return err if shares.streams == (ERROR,) else 2 * y + err

    def _feed(self, shares: _Shares, y: int, raw: float) -> LabelAlarm | None:
        if shares.learn > 0:
            shares.warm.append((y, raw))
            shares.learn -= 1
            if shares.learn == 0:
                self._arm(shares)
            return None
        if not shares.test.update(self._cell(shares, y, raw)):
            return None
        split = shares.test.last
        assert split is not None  # noqa: S101
        return self._report(shares, split)

    def _arm(self, shares: _Shares) -> None:
        """The warm-up becomes the test's first history (after learning the loss cut)."""
        if ERROR in shares.streams and self._s.error == "log_loss":
            losses = np.asarray([raw for _, raw in shares.warm])
            self._loss_cut = float(np.quantile(losses, self._s.loss_quantile))
        for y, raw in shares.warm:
            shares.test.update(self._cell(shares, y, raw), test=False)
        shares.warm = []

    @staticmethod
    def _marginals(shares: _Shares, counts: tuple[int, ...]) -> dict[str, tuple[int, int]]:
        """(ones, n) of each stream of ``shares`` in the cell ``counts``."""
        n = sum(counts)
        if shares.streams == (POSITIVE, ERROR):
            return {POSITIVE: (counts[2] + counts[3], n), ERROR: (counts[1] + counts[3], n)}
        return {shares.streams[0]: (counts[1], n)}

    def _report(self, shares: _Shares, split: Split | None) -> LabelAlarm | None:
        assert split is not None  # noqa: S101
        before, after = self._marginals(shares, split.before), self._marginals(shares, split.after)

        def evidence(stream: str) -> float:
            return binary_llr(*before[stream], *after[stream])

        stream = max(shares.streams, key=evidence)
        reference, current = _summary(before, stream), _summary(after, stream)
        direction = _direction(before[stream], after[stream])
        firing = Firing(GLR, STATISTIC, split.statistic, split.threshold, split.n,
                        sum(split.after), direction)
        if ERROR in shares.streams and self._s.error == "log_loss":
            reference["loss_cut"] = current["loss_cut"] = self._loss_cut
        last = self._reported.get(stream)
        if last is not None and self._labels - last[0] < self._cooldown and direction == last[1]:
            self.suppressed += 1
            return None
        self._reported[stream] = (self._labels, direction)
        params = {**shares.test.params, "cells": shares.test.cells}
        return LabelAlarm(stream, firing, params, reference, current)

    # -- River detectors -----------------------------------------------------

    def _step(self, st: _Stream, x: float, raw: float) -> LabelAlarm | None:
        st.since += 1
        if st.learn > 0:
            st.warm.append(raw)
            st.learn -= 1
            if st.learn == 0:
                self._arm_stream(st)
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

    def _arm_stream(self, st: _Stream) -> None:
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
