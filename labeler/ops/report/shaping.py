"""The numbers a report draws, computed from plain rows and events (no I/O, no HTML).

Distances are the skew check's own (:mod:`drift.baseline.skew`): Jensen-Shannon
divergence of a numeric feature's histogram in the reference's bins, and the
L-infinity distance between category shares, with categories unknown to the
reference pooled as the check pools them. The reference is a baseline profile
(``loglabel profile``) when given, else a profile of the model's first
``window`` rows: the warm-up the drift monitor learns from.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from drift.baseline.profile import bin_counts, build_profile
from drift.baseline.skew import SkewChecker, js_divergence
from drift.monitors.categorical import OTHER, linf_distance, pool, shares
from drift.settings import SkewSettings
from labeler.console import describe_drift
from labeler.ops.report.sources import DeadLetterRecord

BUCKETS_S = (10, 60, 300, 900, 3600)
"""Time buckets, finest first: hourly unless the data spans too little time for it."""
MIN_POINTS = 24
FEATURE_PREFIX = "feat_"
TOP_K = 10


def iso(t: float) -> str:
    """Epoch seconds as ISO-8601 UTC (what the charts' time axes take)."""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def plot_time(t: float) -> str:
    """Epoch seconds as the zone-less UTC date string plotly's date axes read."""
    return iso(t)[:-1]


def choose_bucket(span_s: float) -> int:
    """Hourly buckets when there are at least ``MIN_POINTS`` of them, else finer ones.

    >>> choose_bucket(3 * 86400), choose_bucket(2000), choose_bucket(300)
    (3600, 60, 10)
    """
    for bucket in reversed(BUCKETS_S):
        if span_s / bucket >= MIN_POINTS:
            return bucket
    return BUCKETS_S[0]


def bucket_name(bucket_s: int) -> str:
    return "hour" if bucket_s == 3600 else f"{bucket_s // 60} min" if bucket_s >= 60 \
        else f"{bucket_s} s"


def epoch_seconds(times: pd.Series) -> np.ndarray:
    """A UTC timestamp column as float epoch seconds."""
    stamps = pd.to_datetime(times, utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)


def label_column(frame: pd.DataFrame, wanted: str | None = None) -> str | None:
    """The binary label to draw: ``label_<wanted>``, else the first boolean label column."""
    if wanted is not None:
        name = wanted if wanted.startswith("label_") else f"label_{wanted}"
        return name if name in frame.columns else None
    for col in frame.columns:
        if str(col).startswith("label_") and pd.api.types.is_bool_dtype(frame[col]):
            return str(col)
    return None


def score_column(frame: pd.DataFrame, wanted: str | None = None) -> str | None:
    """The score to draw: ``pred_<wanted>``, else the first numeric prediction column."""
    if wanted is not None:
        name = wanted if wanted.startswith("pred_") else f"pred_{wanted}"
        return name if name in frame.columns else None
    for col in frame.columns:
        if str(col).startswith("pred_") and pd.api.types.is_float_dtype(frame[col]):
            return str(col)
    return None


@dataclass(frozen=True, slots=True)
class Volume:
    """Labeled rows and positive rate per time bucket of prediction event time."""

    bucket_s: int
    starts: list[float]  # bucket starts, epoch seconds
    rows: list[int]
    positive_rate: list[float | None]  # None: no rows, or no label column


def volume(frame: pd.DataFrame, label: str | None, bucket_s: int | None = None) -> Volume:
    """Rows and positive rate per bucket (buckets with no rows are kept, as zero rows)."""
    t = epoch_seconds(frame["event_time"]) if len(frame) else np.empty(0)
    if not t.size:
        return Volume(bucket_s or 3600, [], [], [])
    bucket = bucket_s or choose_bucket(float(t.max() - t.min()))
    first = math.floor(t.min() / bucket) * bucket
    index = ((t - first) // bucket).astype(int)
    n = int(index.max()) + 1
    rows = np.bincount(index, minlength=n)
    rate: list[float | None] = [None] * n
    if label is not None:
        y = frame[label].to_numpy()
        known = ~pd.isna(y)
        hits = np.bincount(index[known], weights=y[known].astype(float), minlength=n)
        seen = np.bincount(index[known], minlength=n)
        rate = [float(h / s) if s else None for h, s in zip(hits, seen, strict=True)]
    return Volume(bucket, [first + i * bucket for i in range(n)], rows.tolist(), rate)


def event_rows(events: Iterable[Mapping[str, Any]], model: str) -> list[dict[str, Any]]:
    """The drift events of ``model`` in event-time order, as the report's table shows them."""
    out = []
    for doc in events:
        if str(doc.get("model")) != model:
            continue
        t = doc.get("event_time")
        out.append({
            "t": float(t) if isinstance(t, int | float) else None,
            "time": iso(float(t)) if isinstance(t, int | float) else "",
            "x": plot_time(float(t)) if isinstance(t, int | float) else None,
            "kind": doc.get("kind") or "", "stream": doc.get("stream") or "",
            "feature": doc.get("feature") or "", "detector": doc.get("detector") or "",
            "statistic_name": doc.get("statistic_name") or "",
            "statistic": doc.get("statistic"), "threshold": doc.get("threshold"),
            "source": doc.get("source") or "", "sentence": describe_drift(doc),
        })
    return sorted(out, key=lambda r: (r["t"] is None, r["t"] or 0.0))


@dataclass(frozen=True, slots=True)
class FeatureComparison:
    """One feature's serving distribution now against its reference."""

    feature: str
    kind: str  # "numeric" (histogram in the reference's bins) or "categorical" (top-k)
    bins: list[str]  # bin or category names, in drawing order
    reference: list[float]  # shares per bin
    current: list[float]
    distance_name: str  # "jensen_shannon" or "linf"
    distance: float  # NaN when a side is empty
    threshold: float
    n_current: int


def reference_profile(frame: pd.DataFrame, window: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """A warm-up profile (the first ``window`` rows) and the rows it is compared with.

    The current rows are the last ``window`` ones; with fewer than ``2 * window``
    rows, the first half is compared with the second.
    """
    size = window if len(frame) >= 2 * window else max(1, len(frame) // 2)
    warm = frame.iloc[:size]
    cols = [c for c in frame.columns if str(c).startswith(FEATURE_PREFIX)]
    profile = build_profile(warm, cols, prefix=FEATURE_PREFIX) if cols and len(warm) else {
        "features": {}}
    return profile, frame.iloc[-size:]


def compare_features(current: pd.DataFrame, profile: Mapping[str, Any],
                     settings: SkewSettings | None = None) -> list[FeatureComparison]:
    """Each profiled feature served in ``current``, largest distance first."""
    s = settings or SkewSettings()
    checker = SkewChecker(profile, s)
    out = []
    for name, spec in dict(profile.get("features", {})).items():
        column = FEATURE_PREFIX + name
        if column not in current.columns:
            continue
        values = current[column].dropna()
        if "numeric" in spec:
            out.append(_numeric(name, spec["numeric"], values, s.numeric_threshold))
        elif "categorical" in spec:
            ref = checker.reference_shares(name) or {}
            out.append(_categorical(name, ref, values, s.categorical_threshold))
    return sorted(out, key=lambda c: (math.isnan(c.distance), -np.nan_to_num(c.distance)))


def _bin_names(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    e = [f"{x:.3g}" for x in edges]
    return [f"< {e[0]}"] + [f"{a} to {b}" for a, b in zip(e, e[1:], strict=False)] + [
        f">= {e[-1]}"]


def _numeric(name: str, spec: Mapping[str, Any], values: pd.Series,
             threshold: float) -> FeatureComparison:
    hist = spec["histogram"]
    ref = np.asarray(hist["counts"], dtype=float)
    try:
        x = values.to_numpy(dtype=float)
    except (TypeError, ValueError):  # text served where training had numbers
        x = np.empty(0)
    cur = bin_counts(x[~np.isnan(x)], hist["edges"]).astype(float)
    distance = js_divergence(ref, cur)
    return FeatureComparison(name, "numeric", _bin_names(hist["edges"]), _norm(ref), _norm(cur),
                             "jensen_shannon", distance, threshold, int(x.size))


def _categorical(name: str, ref: Mapping[Any, float], values: pd.Series,
                 threshold: float) -> FeatureComparison:
    served: Counter[Hashable] = Counter(_category(v) for v in values)
    cur = pool(shares(served), dict(ref))
    distance, _ = linf_distance(cur, ref) if cur and ref else (math.nan, None)
    ranked = sorted(set(ref) | set(cur), key=lambda k: -max(ref.get(k, 0.0), cur.get(k, 0.0)))
    keep = [k for k in ranked if k != OTHER][:TOP_K]
    rest_ref = max(0.0, 1.0 - sum(ref.get(k, 0.0) for k in keep))
    rest_cur = max(0.0, 1.0 - sum(cur.get(k, 0.0) for k in keep)) if cur else 0.0
    bins = [str(k) for k in keep]
    refs = [float(ref.get(k, 0.0)) for k in keep]
    curs = [float(cur.get(k, 0.0)) for k in keep]
    if rest_ref > 1e-9 or rest_cur > 1e-9:
        bins.append("(other)")
        refs.append(rest_ref)
        curs.append(rest_cur)
    return FeatureComparison(name, "categorical", bins, refs, curs, "linf", float(distance),
                             threshold, int(sum(served.values())))


def _category(value: Any) -> str:
    """A served value named as the profile names categories (booleans as true/false)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def _norm(counts: np.ndarray) -> list[float]:
    total = float(counts.sum())
    return [float(c / total) for c in counts] if total else [0.0] * len(counts)


@dataclass(frozen=True, slots=True)
class ScoreByLabel:
    """The score's histogram for positive and negative rows, and a calibration curve."""

    edges: list[float]
    positives: list[int]
    negatives: list[int]
    mean_score: list[float]  # per non-empty calibration bin
    positive_rate: list[float]
    bin_rows: list[int]


def score_by_label(frame: pd.DataFrame, score: str, label: str, bins: int = 20,
                   calibration_bins: int = 10) -> ScoreByLabel:
    """Histograms of the score by label, and mean score vs positive rate per score bin.

    Bins are uniform over [0, 1] when every score is in it (a probability),
    else over the scores' range.
    """
    rows = frame[[score, label]].dropna()
    s = rows[score].to_numpy(dtype=float)
    y = rows[label].to_numpy().astype(bool)
    low, high = (0.0, 1.0) if s.size == 0 or (s.min() >= 0.0 and s.max() <= 1.0) else (
        float(s.min()), float(s.max()) or 1.0)
    edges = np.linspace(low, high, bins + 1)
    pos, _ = np.histogram(s[y], bins=edges)
    neg, _ = np.histogram(s[~y], bins=edges)
    cal_edges = np.linspace(low, high, calibration_bins + 1)
    which = np.clip(np.searchsorted(cal_edges, s, side="right") - 1, 0, calibration_bins - 1)
    mean_score, rate, counts = [], [], []
    for b in range(calibration_bins):
        mask = which == b
        if mask.any():
            mean_score.append(float(s[mask].mean()))
            rate.append(float(y[mask].mean()))
            counts.append(int(mask.sum()))
    return ScoreByLabel(edges.tolist(), pos.tolist(), neg.tolist(), mean_score, rate, counts)


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """Dead letters by reason: totals, and counts per time bucket of their arrival."""

    totals: dict[str, int]
    bucket_s: int
    starts: list[float]
    series: dict[str, list[int]]


def dead_letters(records: Sequence[DeadLetterRecord]) -> DeadLetters:
    totals = Counter(r.reason for r in records)
    if not records:
        return DeadLetters({}, 60, [], {})
    t = np.array([r.timestamp for r in records])
    bucket = choose_bucket(float(t.max() - t.min()))
    first = math.floor(t.min() / bucket) * bucket
    n = int((t.max() - first) // bucket) + 1
    series = {reason: [0] * n for reason in totals}
    for r in records:
        series[r.reason][int((r.timestamp - first) // bucket)] += 1
    return DeadLetters(dict(totals.most_common()), bucket, [first + i * bucket for i in range(n)],
                       series)


STATUS_COUNTERS = ("late_outcomes", "late_predictions", "early_expired", "outside_window",
                   "dead_letters")


def status_series(lines: Sequence[Mapping[str, Any]],
                  names: Sequence[str] = STATUS_COUNTERS) -> dict[str, Any]:
    """The cumulative counters of a run's ``status`` lines over their wall-clock time."""
    ordered = sorted((d for d in lines if isinstance(d.get("ts"), int | float)),
                     key=lambda d: float(d["ts"]))
    return {"t": [float(d["ts"]) for d in ordered],
            "counters": {n: [int(d.get(n) or 0) for d in ordered] for n in names}}
