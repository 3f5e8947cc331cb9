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

With a warm-up reference the stream relearns its reference after an alarm.
With a baseline (training) reference it keeps it: a full window that stands
off the reference by the threshold (at five standard errors) also raises an
alarm, even with no change to detect, and the episode lasts until the distance
falls below half the threshold, so a lasting shift is one alarm.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from drift.detectors import Firing, Spec, Watch
from drift.events import top_summary

K = TypeVar("K", bound=Hashable)

OTHER = "__other__"
"""The bucket of every category outside the tracked ones."""

MISSING = "__missing__"
"""The category of a missing or null value."""


def linf_distance(p: Mapping[K, float], q: Mapping[K, float]) -> tuple[float, K | None]:
    """Largest |p(c) - q(c)| over the union of categories, and the category.

    A category absent from one side has share 0 there.

    >>> linf_distance({"a": 0.6, "b": 0.4}, {"a": 0.25, "b": 0.5, "c": 0.25})
    (0.35, 'a')
    """
    best, arg = 0.0, None
    key: K
    for key, share in p.items():
        d = abs(share - q.get(key, 0.0))
        if d > best:
            best, arg = d, key
    for key, share in q.items():
        if key not in p and share > best:
            best, arg = share, key
    return best, arg


def shares(counts: Mapping[K, float]) -> dict[K, float]:
    """Counts to shares (empty if the total is 0)."""
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def pool(current: Mapping[Hashable, float], ref: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Fold the categories unknown to ``ref`` into OTHER, if ``ref`` has an OTHER share."""
    if OTHER not in ref:
        return dict(current)
    pooled: dict[Hashable, float] = {}
    for key, share in current.items():
        k = key if key in ref else OTHER
        pooled[k] = pooled.get(k, 0.0) + share
    return pooled


def top(shares_: Mapping[K, float], k: int) -> list[tuple[K, float]]:
    """The ``k`` largest shares, largest first."""
    return sorted(shares_.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]


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
    ) -> None:
        self.specs: list[Spec] = [(name, dict(params), scale) for name, params, scale in specs]
        Watch(self.specs)  # fail fast on a bad configuration
        self.threshold = threshold
        self.window = window
        self._z_clip = z_clip
        self._max_categories = max_categories
        self._min_expected = min_expected
        self._block = block
        self._top_k = top_k
        self._warmup = warmup
        self._min_samples = min_samples
        self._cooldown = cooldown
        self._fixed = reference is not None
        self._learn = 0 if reference is not None else warmup
        self._warm: Counter[Hashable] = Counter()
        self._blocks: deque[tuple[Counter[Hashable], int]] = deque()
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
        self._firing: Firing | None = None
        self._ref_n = 0.0
        if reference is not None:
            self._set_reference(dict(reference), n=math.inf)

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
        if self._learn > 0:
            self._warm.update(block)
            self._learn -= n
            if self._learn <= 0:
                self._set_reference(shares(self._warm), n=sum(self._warm.values()))
                self._warm = Counter()
            return None
        self._fed += n
        fired = self._feed(block, n)
        if self._fixed:
            fired = self._level(fired)
        if fired is not None and self._fed >= self._min_samples and self._since >= self._cooldown:
            self._pending = self.window
            self._firing = fired
        if self._pending > 0:
            self._pending -= n
            dist, category = self.distance()
            if dist >= self.threshold:
                return self._alarm(dist, category)
        return None

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
            return None
        p = min(max(self._ref.get(category, 0.0), 1e-3), 1.0 - 1e-3)
        if fired is None and dist >= self.threshold:
            if dist >= 5.0 * math.sqrt(p * (1.0 - p) / self._n):
                fired = Firing("reference", "linf", dist, self.threshold, self._fed)
        return fired

    def _slide(self, block: Counter[Hashable], n: int) -> None:
        self._blocks.append((block, n))
        self._counts.update(block)
        self._n += n
        while self._n - self._blocks[0][1] >= self.window:
            old, m = self._blocks.popleft()
            self._counts.subtract(old)
            self._n -= m
            for key in old:
                if self._counts[key] <= 0:
                    del self._counts[key]

    def _feed(self, block: Counter[Hashable], n: int) -> Firing | None:
        other = len(self._p) - 1
        bucket_counts = [0] * len(self._p)
        get = self._bucket.get
        for key, c in block.items():
            bucket_counts[get(key, other)] += c
        root = math.sqrt(n)
        clip = self._z_clip
        fired = None
        for b, watch in enumerate(self._watches):
            z = (bucket_counts[b] / n - self._p[b]) * root / self._sd[b]
            firing = watch.update(min(max(z, -clip), clip))
            if fired is None:
                fired = firing
        return fired

    def _set_reference(self, ref: dict[Hashable, float], n: float) -> None:
        self._ref = ref
        self._ref_n = n
        # A category gets its own detector only if a block holds enough of it
        # for its share to be near-normal; the rest share the OTHER bucket.
        ranked = top({k: v for k, v in ref.items() if k != OTHER}, self._max_categories)
        tracked = [k for k, s in ranked if s * self._block >= self._min_expected]
        self._bucket = {k: i for i, k in enumerate(tracked)}
        p = [ref[k] for k in tracked]
        p.append(max(0.0, 1.0 - sum(p)))
        # A share of 0 (or 1) would make every block infinitely surprising.
        floor = 0.5 / n if math.isfinite(n) and n > 0 else 1e-3
        self._p = p
        clamped = [min(max(s, floor), 1.0 - floor) for s in p]
        self._sd = [math.sqrt(s * (1.0 - s)) for s in clamped]
        self._watches = [Watch(self.specs) for _ in p]
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
            "fed": self._fed, "since": self._since, "pending": self._pending,
            "active": self._active, "ref": dict(self._ref), "ref_n": self._ref_n,
            "bucket": dict(self._bucket), "p": list(self._p), "sd": list(self._sd),
            "watches": [w.state() for w in self._watches],
            "firing": None if f is None else [f.detector, f.statistic_name, f.statistic,
                                               f.threshold, f.n, f.recent, f.direction],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` of a stream with the same settings."""
        self._learn = int(state["learn"])
        self._warm = Counter(state["warm"])
        self._blocks = deque((Counter(b), int(n)) for b, n in state["blocks"])
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
        f = state["firing"]
        self._firing = None if f is None else Firing(
            str(f[0]), str(f[1]), float(f[2]), float(f[3]), int(f[4]), int(f[5]), int(f[6]))

    def _alarm(self, dist: float, category: Hashable | None) -> CategoricalAlarm:
        assert self._firing is not None  # noqa: S101 - pending implies a firing
        alarm = CategoricalAlarm(
            firing=self._firing,
            category=str(category),
            distance=dist,
            threshold=self.threshold,
            reference=top_summary(top(self._ref, self._top_k), self._ref_n),
            current=top_summary(top(self.window_shares(), self._top_k), self._n),
        )
        self._since = 0.0
        self._pending = 0
        if self._fixed:
            for watch in self._watches:
                watch.reset()
            self._fed = 0
            self._active = True
        else:
            self._learn = self._warmup
            self._ref, self._watches = {}, []
        return alarm
