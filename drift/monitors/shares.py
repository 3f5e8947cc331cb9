"""Category shares and their L-infinity distance, for the categorical monitor."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

OTHER = "__other__"
"""The bucket of every category outside the tracked ones."""


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
