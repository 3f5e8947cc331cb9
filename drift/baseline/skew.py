"""Training/serving skew: serving windows compared with the baseline profile.

Schema skew (reported as ``schema`` events):

- ``new_feature``: served, absent from training;
- ``missing_feature``: present in training, mostly absent when served;
- ``type_mismatch``: numeric in training and text when served, text in
  training and numbers when served, integers in training and fractions when served;
- ``unseen_categories``: the share of served values outside a complete
  training domain is above ``unseen_share_threshold``.

Distribution skew (``skew`` events), per window of served predictions:
Jensen-Shannon divergence (base 2, in [0, 1]) between the served histogram and
the training histogram for numeric features, L-infinity distance between
shares for categorical ones. A finding is reported when it starts and again
only after a window in which it had cleared.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from drift.baseline.profile import bin_counts
from drift.monitors.categorical import MISSING, OTHER, linf_distance, pool, shares, top
from drift.settings import SkewSettings

NUMERIC_TYPES = ("int", "float")


@dataclass(frozen=True, slots=True)
class SkewFinding:
    """One schema or distribution mismatch between training and serving."""

    kind: Literal["schema", "skew"]
    check: str
    feature: str
    statistic: float
    threshold: float
    detail: str
    reference: Mapping[str, Any] = field(default_factory=dict)
    current: Mapping[str, Any] = field(default_factory=dict)


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two histograms (normalized here).

    >>> js_divergence([1, 0], [0, 1]), js_divergence([1, 1], [2, 2])
    (1.0, 0.0)
    """
    pa = np.asarray(p, dtype=float)
    qa = np.asarray(q, dtype=float)
    if pa.sum() <= 0 or qa.sum() <= 0:
        return math.nan
    pa, qa = pa / pa.sum(), qa / qa.sum()
    m = 0.5 * (pa + qa)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(pa) + 0.5 * kl(qa))


def served_type(value: Any) -> str | None:
    """The profile type name of a served value (None for null or unsupported)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def type_mismatch(expected: str, served: str) -> bool:
    """Whether a served type contradicts the training type.

    Ints are fine for floats; floats for ints are judged on the values (a
    float 3.0 is an integer), in :meth:`SkewChecker.evaluate`.
    """
    if expected in NUMERIC_TYPES:
        return served not in NUMERIC_TYPES
    return served != expected


class SkewChecker:
    """Accumulates a window of served values for one model and checks it.

    ``thresholds`` overrides the distribution threshold per feature;
    ``ignore`` names features that are not watched (they are not checked).
    """

    def __init__(
        self,
        profile: Mapping[str, Any],
        settings: SkewSettings,
        thresholds: Mapping[str, float] | None = None,
        ignore: Iterable[str] = (),
    ) -> None:
        skip = set(ignore)
        features: Mapping[str, Any] = profile.get("features", {})
        self._features = {k: v for k, v in features.items() if k not in skip}
        self._s = settings
        self._thresholds = dict(thresholds or {})
        self._events = 0
        self._cat_events = 0
        self._blocks: list[tuple[list[str], np.ndarray]] = []
        self._cats: dict[str, Counter[Hashable]] = {}
        self._active: set[tuple[str, str]] = set()

    def expected(self, feature: str) -> str | None:
        """The training type of ``feature`` (None if it was not in training)."""
        spec = self._features.get(feature)
        return None if spec is None else str(spec.get("type"))

    def reference_shares(self, feature: str) -> dict[Hashable, float] | None:
        """Training shares of a categorical feature, with OTHER for the rest."""
        spec = self._features.get(feature, {}).get("categorical")
        if spec is None:
            return None
        ref: dict[Hashable, float] = dict(spec.get("shares") or dict(spec.get("top", [])))
        if spec.get("other_share", 0.0) > 0.0:
            ref[OTHER] = float(spec["other_share"])
        return ref

    def reference_quantiles(self, feature: str) -> list[float] | None:
        """Training quantiles (q0 .. q100) of a numeric feature, None if the profile has none."""
        spec = self._features.get(feature, {}).get("numeric")
        qs = spec.get("quantiles") if spec else None
        return [float(q) for q in qs] if qs else None

    def on_new_feature(self, feature: str, value: Any) -> list[SkewFinding]:
        """Check a feature the first time it is served."""
        expected = self.expected(feature)
        served = served_type(value)
        if expected is None:
            return [SkewFinding("schema", "new_feature", feature, 1.0, 0.0, "not in training")]
        if served is not None and type_mismatch(expected, served):
            detail = f"training type {expected}, served {served}"
            return [SkewFinding("schema", "type_mismatch", feature, 1.0, 0.0, detail)]
        return []

    def add_block(self, names: list[str], matrix: np.ndarray) -> bool:
        """Add one block of served predictions (numeric columns ``names``, maybe none).

        Returns True once the window is full: call :meth:`evaluate`.
        """
        self._events += matrix.shape[0]
        if matrix.shape[1]:
            self._blocks.append((list(names), matrix))
        return self._events >= self._s.window

    def add_categories(self, events: int, categories: Mapping[str, Counter[Hashable]]) -> None:
        """Add the categorical values of ``events`` served predictions."""
        self._cat_events += events
        for name, counts in categories.items():
            self._cats.setdefault(name, Counter()).update(counts)

    def evaluate(self) -> list[SkewFinding]:
        """Check the window against the profile, start a new one, return new findings."""
        found: dict[tuple[str, str], SkewFinding] = {}
        columns = self._columns()
        for feature, spec in self._features.items():
            for finding in self._check(feature, spec, columns.get(feature)):
                found[(finding.check, feature)] = finding
        self._events = self._cat_events = 0
        self._blocks = []
        self._cats = {}
        new = [f for key, f in found.items() if key not in self._active]
        self._active = set(found)
        return new

    def _columns(self) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {}
        for names, matrix in self._blocks:
            for j, name in enumerate(names):
                parts.setdefault(name, []).append(matrix[:, j])
        return {k: np.concatenate(v) for k, v in parts.items()}

    def _check(
        self, feature: str, spec: Mapping[str, Any], column: np.ndarray | None
    ) -> list[SkewFinding]:
        out: list[SkewFinding] = []
        counts = self._cats.get(feature)
        values = column[~np.isnan(column)] if column is not None else np.empty(0)
        if counts:
            present = sum(v for k, v in counts.items() if k != MISSING)
            presence = present / max(self._cat_events, 1)
        else:
            presence = values.size / max(self._events, 1)
        trained = float(spec.get("presence", 1.0))
        if presence < trained * (1.0 - self._s.min_presence_drop):
            detail = f"presence {presence:.3f} served vs {trained:.3f} in training"
            out.append(SkewFinding("schema", "missing_feature", feature, presence, trained, detail))
        limit = self._thresholds.get(feature)
        if "numeric" in spec and values.size:
            out.extend(self._numeric(feature, spec, values, limit))
        elif "categorical" in spec and counts:
            out.extend(self._categorical(feature, spec, counts, limit))
        return out

    def _numeric(
        self, feature: str, spec: Mapping[str, Any], values: np.ndarray, limit: float | None
    ) -> list[SkewFinding]:
        out: list[SkewFinding] = []
        if spec.get("type") == "int":
            fractional = float(np.mean(values != np.floor(values)))
            if fractional > 0.0:
                detail = f"training type int, {fractional:.1%} of served values are fractional"
                out.append(SkewFinding("schema", "type_mismatch", feature, fractional, 0.0, detail))
        hist = spec["numeric"]["histogram"]
        served = bin_counts(values, hist["edges"])
        js = js_divergence(hist["counts"], served)
        threshold = self._s.numeric_threshold if limit is None else limit
        if js >= threshold:
            num = spec["numeric"]
            out.append(
                SkewFinding(
                    "skew",
                    "distribution",
                    feature,
                    js,
                    threshold,
                    "jensen_shannon",
                    {"n": spec.get("count"), "mean": num["mean"], "std": num["std"]},
                    {"n": values.size, "mean": float(values.mean()), "std": float(values.std())},
                )
            )
        return out

    def _categorical(
        self,
        feature: str,
        spec: Mapping[str, Any],
        counts: Counter[Hashable],
        limit: float | None,
    ) -> list[SkewFinding]:
        out: list[SkewFinding] = []
        cat = spec["categorical"]
        served = {k: v for k, v in counts.items() if k != MISSING}
        total = sum(served.values())
        if not total:
            return out
        if cat.get("domain_complete") and cat.get("domain") is not None:
            domain = set(cat["domain"])
            unseen = sum(v for k, v in served.items() if k not in domain) / total
            if unseen > self._s.unseen_share_threshold:
                examples = [str(k) for k in served if k not in domain][:5]
                detail = f"{unseen:.1%} of served values unseen in training, e.g. {examples}"
                out.append(
                    SkewFinding(
                        "schema",
                        "unseen_categories",
                        feature,
                        unseen,
                        self._s.unseen_share_threshold,
                        detail,
                    )
                )
        ref = self.reference_shares(feature) or {}
        cur = pool(shares(served), ref)
        dist, arg = linf_distance(cur, ref)
        threshold = self._s.categorical_threshold if limit is None else limit
        if dist >= threshold:
            out.append(
                SkewFinding(
                    "skew",
                    "distribution",
                    feature,
                    dist,
                    threshold,
                    f"linf, largest change in {arg!s}",
                    {"n": spec.get("count"), "top": [list(t) for t in top(ref, 5)]},
                    {"n": total, "top": [[str(k), v] for k, v in top(cur, 5)]},
                )
            )
        return out
