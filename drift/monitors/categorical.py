"""Categorical drift: a sliding window of shares against a reference.

The distance is L-infinity, the largest change in any category's share (the
measure TFDV uses for categorical skew). A raw threshold on a sliding window
is either slow (the window must fill with the new distribution) or noisy (a
small window), so detection has two parts:

1. *when*: the reference's top categories, plus one bucket for everything
   else (new categories included), each get a detector fed with the
   category's block share as a z-score against its reference share;
2. *how much*: once a detector fires, the alarm is raised as soon as the
   L-infinity distance between the last ``window`` events and the reference
   reaches ``threshold`` (within ``window`` events; otherwise it was a change
   too small to matter).

After an alarm the stream keeps watching. With a warm-up reference it
relearns: the window restarts, the next ``provisional`` events (at least a
``window``) are the new reference (refreshed once ``warmup`` events are in,
unless a change is under way), and the detectors watch against it from then
on, their PageHinkley seeded with :data:`SEED_BLOCKS` blocks at the
reference's level, so a second change soon after the first is found.
With a baseline (training) reference it keeps it: a full window that stands
off the reference by the threshold (at five standard errors) also raises an
alarm, even with no change to detect, and the episode lasts until the distance
falls below half the threshold, so a lasting shift is one alarm; during the
episode, the next ``provisional`` events after the alarm are the level a
further change is measured from (the distance to it must reach the threshold).

A third detector needs no reference at all: a likelihood-ratio test of the
block counts (:class:`drift.monitors.rates.ShareTest`, the test that watches
labels) asks every :data:`SPLIT_BLOCKS` blocks whether the events since some
earlier point have other shares than those before it. It runs after an
alarm: re-armed, the stream gets one with the blocks its new reference was
learned from as its history (with a training reference, one from the end of
the relearning), so a second change that comes while the stream relearns,
and leaks into the new reference, is still measured against the events
before it (the reference-based detectors then see only part of the step;
PageHinkley, which follows its own mean, may never cross). Before a
stream's first alarm it does not run: there the reference is the whole
warm-up and the other detectors are not blind, and a stream that never
changes costs nothing more. Its threshold comes from
``split_false_alarms_per_million`` (0 turns it off). Its firing goes through
the same distance gate as the others.

``cooldown`` only suppresses *reporting* the same change: an alarm within
``cooldown`` events of the last reported one, on the same category in the
same direction, is counted in :attr:`CategoricalDrift.suppressed` instead of
returned when that category's block shares since the last report are a ramp
(:func:`drift.monitors.calibration.trend`); a second step is reported.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Firing, Spec, Watch
from drift.events import top_summary
from drift.monitors.calibration import allow, trend
from drift.monitors.rates import NAME as SPLIT
from drift.monitors.rates import STATISTIC, ShareTest, since_change
from drift.monitors.shares import OTHER, linf_distance, pool, shares, top

SEED_BLOCKS = 32
"""In-control blocks a re-armed PageHinkley starts with (:meth:`drift.detectors.Watch.seed`)."""

RAMP_REF = {"lo": -math.inf, "hi": math.inf, "med": 0.0, "phi": 0.0}
"""Calibration for the ramp test on block shares (no clipping, no autocorrelation)."""

SPLIT_BLOCKS = 4
"""Blocks per check of the split test (a check costs about 16 µs: at one per block, 0.25 µs an
event per feature; at one per four, 0.06, with about the same detections in the evaluation).
Its candidate splits: every boundary of the last 16 checks, then sparser (``per_level``), over
at most the last 65,536 events (``window``)."""

MISSING = "__missing__"
"""The category of a missing or null value."""


@dataclass(frozen=True, slots=True)
class CategoricalAlarm:
    """A categorical stream whose distribution moved by at least the threshold."""

    firing: Firing
    category: str
    distance: float
    threshold: float
    reference: Mapping[str, Any]
    current: Mapping[str, Any]


class CategoricalDrift:
    """Drift of one categorical stream, updated a block of counts at a time.

    ``reference`` (shares, e.g. from a training profile) fixes the reference;
    without it the first ``warmup`` events are the reference.
    """

    def __init__(
        self,
        *,
        specs: Sequence[Spec],
        window: int,
        threshold: float,
        z_clip: float,
        max_categories: int,
        min_expected: float,
        block: int,
        top_k: int,
        warmup: int,
        min_samples: int,
        cooldown: int,
        reference: Mapping[Hashable, float] | None = None,
        provisional: int | None = None,
        split_false_alarms_per_million: float = 0.0,
    ) -> None:
        self.specs: list[Spec] = [(name, dict(params), scale) for name, params, scale in specs]
        Watch(self.specs)  # fail fast on a bad configuration
        self.threshold = threshold
        self.window = window
        self.split_params: dict[str, Any] | None = None
        if split_false_alarms_per_million > 0:
            self.split_params = {"false_alarms_per_million": split_false_alarms_per_million,
                                 "clock": SPLIT_BLOCKS * block, "per_level": 16, "window": 65536}
            ShareTest(2, self.split_params)  # fail fast on a bad configuration
        self._z_clip = z_clip
        self._max_categories = max_categories
        self._min_expected = min_expected
        self._block = block
        self._top_k = top_k
        self._warmup = warmup
        self._min_samples = min_samples
        self._cooldown = cooldown
        # A reference of shares needs more events than a mean: relearn from a
        # full window at least (an episode's level, against a baseline, less).
        least = 1 if reference is not None else window
        self._provisional = max(1, min(max(provisional or warmup, least), warmup))
        self._fixed = reference is not None
        self._learn = 0 if reference is not None else warmup
        self._warm: Counter[Hashable] = Counter()
        self._warm_n = 0
        self._collect = 0  # events still to add to a provisional reference
        self._first: Counter[Hashable] = Counter()  # the events it was learned from
        self._episode: dict[Hashable, float] = {}  # fixed reference: the level after an alarm
        self._last: tuple[str, int] = ("", 0)  # category and direction last reported
        self._trail: list[tuple[float, int]] = []  # that category's counts per block since
        self.suppressed = 0
        self._blocks: deque[tuple[Counter[Hashable], int]] = deque()
        # the window's blocks when the last alarm came (until the stream is re-armed)
        self._before: list[tuple[Counter[Hashable], int]] = []
        self._counts: Counter[Hashable] = Counter()
        self._n = 0
        self._fed = 0
        self._since = math.inf
        self._pending = 0
        self._active = False
        self._ref: dict[Hashable, float] = {}
        self._bucket: dict[Hashable, int] = {}
        self._p: list[float] = []
        self._sd: list[float] = []
        self._watches: list[Watch] = []
        self._split: ShareTest | None = None
        self._firing: Firing | None = None
        self._ref_n = 0.0
        if reference is not None:
            self._set_reference(dict(reference), n=math.inf)

    @property
    def reported_specs(self) -> list[Spec]:
        """The detectors an alarm can name, with their parameters."""
        if self.split_params is None:
            return self.specs
        return [*self.specs, (SPLIT, dict(self.split_params), 1.0)]

    @property
    def reference(self) -> dict[Hashable, float]:
        """The reference shares (empty while learning)."""
        return dict(self._ref)

    def window_shares(self) -> dict[Hashable, float]:
        """Shares over the last ``window`` events."""
        return shares(self._counts)

    def distance(self) -> tuple[float, Hashable | None]:
        """L-infinity distance between the window and the reference.

        A reference with an :data:`OTHER` share (a training profile that kept
        only its top values) is compared with the window pooled the same way.
        """
        return linf_distance(pool(self.window_shares(), self._ref), self._ref)

    def update(self, block: Counter[Hashable]) -> CategoricalAlarm | None:
        """Count one block of values, given as counts per category."""
        n = sum(block.values())
        if not n:
            return None
        self._slide(block, n)
        self._since += n
        if self._last[0] and len(self._trail) * self._block < self._cooldown:
            self._trail.append((float(block.get(self._last[0], 0)), n))
        if self._learn > 0:
            self._warm.update(block)
            self._warm_n += n
            self._learn -= n
            if self._learn <= 0:
                self._learned()
            return None
        if self._collect > 0:
            self._warm.update(block)
            self._warm_n += n
            self._collect -= n
            if self._collect <= 0:
                self._refresh()
        self._fed += n
        fired = self._feed(block, n)
        if self._fixed:
            fired = self._level(fired)
        if fired is not None and self._fed >= self._min_samples:
            self._pending = self.window
            self._firing = fired
        if self._pending > 0:
            self._pending -= n
            dist, category = self._gate()
            if dist >= self.threshold:
                return self._alarm(dist, category)
        return None

    def _gate(self) -> tuple[float, Hashable | None]:
        """The distance an alarm needs: to the reference, or to the episode's level."""
        if self._fixed and self._active and self._episode:
            return linf_distance(self.window_shares(), self._episode)
        return self.distance()

    def _learned(self) -> None:
        """The events after the start or an alarm are in: arm against them."""
        learned, n = shares(self._warm), self._warm_n
        if self._fixed:
            self._episode = learned
            for watch in self._watches:
                watch.reset()
            self._split = self._new_split([])
            self._fed = 0
        else:
            self._set_reference(learned, n=n)
            self._collect = max(0, self._warmup - n)
        if self._last[0] and not self._fixed:
            # Re-armed after an alarm: the detectors start from the reference's
            # level, as if the stream had stayed there for a while.
            for watch in self._watches:
                watch.seed(SEED_BLOCKS)
        if self._collect:
            self._first = self._warm.copy()
        else:
            self._warm, self._warm_n = Counter(), 0

    def _refresh(self) -> None:
        """Replace a provisional reference by the full warm-up, keeping the detectors.

        Not when the events since arming stand off the provisional reference by
        half the threshold: a change is under way, and folding it into the
        reference would hide it. The provisional reference then stays.
        """
        later = self._warm.copy()
        later.subtract(self._first)
        later = +later
        ref, n = shares(self._warm), self._warm_n
        self._warm, self._warm_n, self._first = Counter(), 0, Counter()
        if linf_distance(pool(shares(later), self._ref), self._ref)[0] >= self.threshold / 2.0:
            return
        tracked = self._tracked(ref)
        if set(tracked) != set(self._bucket):
            self._set_reference(ref, n=n)
            return
        self._ref, self._ref_n = ref, n
        order = sorted(self._bucket, key=self._bucket.__getitem__)
        p = [ref.get(k, 0.0) for k in order]
        p.append(max(0.0, 1.0 - sum(p)))
        self._p, self._sd = p, self._sds(p, n)

    def _level(self, fired: Firing | None) -> Firing | None:
        """Against a fixed reference, also alarm on a standing difference.

        The detectors only see changes; a distribution that differs from
        training from the first event never changes. A full window whose
        distance reaches the threshold, at five standard errors, starts an
        episode; it ends when the distance falls below half the threshold.
        """
        if self._n < self.window:
            return None if self._active else fired
        dist, category = self.distance()
        if self._active:
            if dist < self.threshold / 2.0:
                self._active = False
                self._episode = {}
            return fired if self._episode else None
        p = min(max(self._ref.get(category, 0.0), 1e-3), 1.0 - 1e-3)
        if fired is None and dist >= self.threshold:
            if dist >= 5.0 * math.sqrt(p * (1.0 - p) / self._n):
                fired = Firing("reference", "linf", dist, self.threshold, self._fed)
        return fired

    def _slide(self, block: Counter[Hashable], n: int) -> None:
        # Counter.update and .subtract, written out (they cost more than the sums).
        self._blocks.append((block, n))
        counts = self._counts
        get = counts.get
        for key, c in block.items():
            counts[key] = c + get(key, 0)
        self._n += n
        while self._n - self._blocks[0][1] >= self.window:
            old, m = self._blocks.popleft()
            for key, c in old.items():
                left = get(key, 0) - c
                if left <= 0:
                    counts.pop(key, None)
                else:
                    counts[key] = left
            self._n -= m

    def _buckets(self, block: Counter[Hashable]) -> list[int]:
        """A block's counts per bucket (the tracked categories, then OTHER)."""
        other = len(self._p) - 1
        bucket_counts = [0] * len(self._p)
        get = self._bucket.get
        for key, c in block.items():
            bucket_counts[get(key, other)] += c
        return bucket_counts

    def _new_split(self, blocks: Sequence[tuple[Counter[Hashable], int]]) -> ShareTest | None:
        """A split test over the buckets, with ``blocks`` as its history (unchecked)."""
        if self.split_params is None or len(self._p) < 2:
            return None
        split = ShareTest(len(self._p), self.split_params)
        for block, _ in blocks:
            split.add(self._buckets(block), test=False)
        return split

    def _feed(self, block: Counter[Hashable], n: int) -> Firing | None:
        bucket_counts = self._buckets(block)
        root = math.sqrt(n)
        clip = self._z_clip
        fired = None
        split = self._split
        if split is not None and split.add(bucket_counts):
            found = split.last
            assert found is not None  # noqa: S101 - a firing sets it
            fired = Firing(SPLIT, STATISTIC, found.statistic, found.threshold, self._fed)
        for count, p, sd, watch in zip(bucket_counts, self._p, self._sd, self._watches,
                                       strict=False):  # one bucket per watch
            z = (count / n - p) * root / sd
            firing = watch.update(min(max(z, -clip), clip))
            if fired is None:
                fired = firing
        return fired

    def _tracked(self, ref: Mapping[Hashable, float]) -> list[Hashable]:
        # A category gets its own detector only if a block holds enough of it
        # for its share to be near-normal; the rest share the OTHER bucket.
        ranked = top({k: v for k, v in ref.items() if k != OTHER}, self._max_categories)
        return [k for k, s in ranked if s * self._block >= self._min_expected]

    @staticmethod
    def _sds(p: Sequence[float], n: float) -> list[float]:
        # A share of 0 (or 1) would make every block infinitely surprising.
        floor = 0.5 / n if math.isfinite(n) and n > 0 else 1e-3
        clamped = [min(max(s, floor), 1.0 - floor) for s in p]
        return [math.sqrt(s * (1.0 - s)) for s in clamped]

    def _set_reference(self, ref: dict[Hashable, float], n: float) -> None:
        self._ref = ref
        self._ref_n = n
        tracked = self._tracked(ref)
        self._bucket = {k: i for i, k in enumerate(tracked)}
        p = [ref[k] for k in tracked]
        p.append(max(0.0, 1.0 - sum(p)))
        self._p = p
        self._sd = self._sds(p, n)
        # A CUSUM's allowance grows by the reference's own uncertainty (in
        # block z-units, about sqrt(block / n)).
        extra = math.sqrt(self._block / n) if math.isfinite(n) and n > 0 else 0.0
        self._watches = [Watch(allow(self.specs, extra)) for _ in p]
        # Re-armed after an alarm: a split test whose history is the blocks the
        # reference was learned from, preceded by those of the alarm's window that
        # came after the change it reported (``since_change``), so a next change is
        # measured against all the events known to follow the last one.
        self._split = None
        if self._last[0]:
            fresh = list(self._blocks)
            before = since_change([self._buckets(b) for b, _ in self._before],
                                  [self._buckets(b) for b, _ in fresh])
            self._split = self._new_split([*self._before[len(self._before) - before:], *fresh])
        self._before = []
        self._fed = 0
        self._pending = 0

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`restore` continues exactly.

        Category keys must be strings (the monitor normalizes them so).
        """
        f = self._firing
        return {
            "learn": self._learn, "warm": dict(self._warm),
            "blocks": [[dict(b), n] for b, n in self._blocks], "n": self._n,
            "before": [[dict(b), n] for b, n in self._before],
            "fed": self._fed, "since": self._since, "pending": self._pending,
            "active": self._active, "ref": dict(self._ref), "ref_n": self._ref_n,
            "bucket": dict(self._bucket), "p": list(self._p), "sd": list(self._sd),
            "watches": [w.state() for w in self._watches],
            "split": None if self._split is None else self._split.state(),
            "firing": None if f is None else [f.detector, f.statistic_name, f.statistic,
                                               f.threshold, f.n, f.recent, f.direction],
            "warm_n": self._warm_n, "collect": self._collect, "first": dict(self._first),
            "episode": dict(self._episode),
            "last": list(self._last), "trail": [list(t) for t in self._trail],
            "suppressed": self.suppressed,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` of a stream with the same settings."""
        self._learn = int(state["learn"])
        self._warm = Counter(state["warm"])
        self._blocks = deque((Counter(b), int(n)) for b, n in state["blocks"])
        self._before = [(Counter(b), int(n)) for b, n in state.get("before", [])]
        self._counts = Counter()
        for b, _ in self._blocks:
            self._counts.update(b)
        self._n = int(state["n"])
        self._fed, self._since = int(state["fed"]), float(state["since"])
        self._pending, self._active = int(state["pending"]), bool(state["active"])
        self._ref, self._ref_n = dict(state["ref"]), float(state["ref_n"])
        self._bucket = {k: int(v) for k, v in state["bucket"].items()}
        self._p, self._sd = list(state["p"]), list(state["sd"])
        self._watches = [Watch.from_state(w) for w in state["watches"]]
        split = state.get("split")  # None also in states saved before the split test
        self._split = None
        if split is not None and self.split_params is not None:
            self._split = ShareTest(int(split["cells"]), self.split_params)
            self._split.restore(split)
        f = state["firing"]
        self._firing = None if f is None else Firing(
            str(f[0]), str(f[1]), float(f[2]), float(f[3]), int(f[4]), int(f[5]), int(f[6]))
        # States saved before these fields existed continue as if just armed.
        self._warm_n = int(state.get("warm_n", sum(self._warm.values())))
        self._collect = int(state.get("collect", 0))
        self._first = Counter(state.get("first", {}))
        self._episode = dict(state.get("episode", {}))
        last = state.get("last", ["", 0])
        self._last = (str(last[0]), int(last[1]))
        self._trail = [(float(c), int(n)) for c, n in state.get("trail", [])]
        self.suppressed = int(state.get("suppressed", 0))

    def _alarm(self, dist: float, category: Hashable | None) -> CategoricalAlarm | None:
        assert self._firing is not None  # noqa: S101 - pending implies a firing
        base = self._episode if self._fixed and self._active and self._episode else self._ref
        now = self.window_shares()
        direction = 1 if now.get(category, 0.0) >= base.get(category, 0.0) else -1
        alarm = CategoricalAlarm(
            firing=self._firing,
            category=str(category),
            distance=dist,
            threshold=self.threshold,
            reference=top_summary(top(self._ref, self._top_k), self._ref_n),
            current=top_summary(top(now, self._top_k), self._n),
        )
        same = (self._since < self._cooldown and self._last == (str(category), direction)
                and self._ramp() == direction)
        self._pending = 0
        self._firing = None
        for watch in self._watches:
            watch.reset()
        self._split = None  # a new one with the relearned reference
        self._fed = 0
        self._warm, self._warm_n, self._collect = Counter(), 0, 0
        self._first = Counter()
        self._learn = self._provisional
        if self._fixed:
            self._active = True
            self._episode = {}
        else:
            self._ref, self._watches = {}, []
            self._before = list(self._blocks)
            self._blocks.clear()
            self._counts = Counter()
            self._n = 0
        if same:
            self.suppressed += 1
            return None
        self._since = 0.0
        self._last = (str(category), direction)
        self._trail = []
        return alarm

    def _ramp(self) -> int:
        """+1 or -1 if the last reported category's block shares since that report are a ramp."""
        if len(self._trail) < 8 or self._last[0] == OTHER:
            return 0
        x = np.array([c / n for c, n in self._trail])
        return trend(x, RAMP_REF, "mean")

