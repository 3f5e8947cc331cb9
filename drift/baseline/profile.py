"""Baseline profile of training data: schema and statistics, as TFDV keeps them.

A profile is a plain JSON-able dict::

    {"format": "loglabel-profile", "version": 1, "rows": 120000,
     "features": {
        "price": {"type": "float", "presence": 1.0, "count": 120000,
                  "numeric": {"mean": ..., "std": ..., "min": ..., "max": ...,
                              "quantiles": [101 values, q0 .. q100],
                              "histogram": {"edges": [...], "counts": [...]}}},
        "country": {"type": "string", "presence": 0.98, "count": 117600,
                    "categorical": {"unique": 31, "domain_complete": true,
                                    "top": [["DE", 0.31], ...], "other_share": 0.0}}}}

``type`` is one of ``int``, ``float``, ``bool``, ``string``. A histogram has
``len(edges) + 1`` bins: below the first edge, between edges, from the last
edge up; :func:`bin_counts` bins serving values the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where a profile is built: a worker never needs pandas
    import pandas as pd

from drift.errors import ProfileError

FORMAT = "loglabel-profile"
VERSION = 1


def build_profile(
    data: pd.DataFrame | str | os.PathLike[str],
    feature_columns: Sequence[str] | None = None,
    *,
    prefix: str | None = None,
    model: str | None = None,
    bins: int = 20,
    top_k: int = 50,
    max_domain: int = 1000,
) -> dict[str, Any]:
    """Profile the feature columns of a DataFrame or a Parquet file/dataset directory.

    Columns are ``feature_columns`` if given, else every column starting with
    ``prefix``, else every column. ``prefix`` is stripped from the profiled
    names, so ``prefix="feat_"`` on loglabel shards gives the names that
    predictions carry. ``model`` keeps only that hive partition (``model=...``)
    of a shard dataset. Raises :class:`ProfileError` if nothing is left to
    profile.
    """
    df = _load(data, model)
    if model is not None and "model" in df.columns:
        df = df[df["model"].astype(str) == model]
    if feature_columns is None:
        cols = [c for c in df.columns if prefix is None or str(c).startswith(prefix)]
    else:
        missing = [c for c in feature_columns if c not in df.columns]
        if missing:
            raise ProfileError(f"columns not in the data: {missing}")
        cols = list(feature_columns)
    if not cols:
        raise ProfileError(f"no feature columns to profile (prefix={prefix!r})")
    rows = len(df)
    features: dict[str, Any] = {}
    for col in cols:
        name = str(col)
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
        features[name] = _profile_column(df[col], rows, bins, top_k, max_domain)
    return {"format": FORMAT, "version": VERSION, "rows": rows, "features": features}


def save_profile(profile: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a profile as JSON (temporary file, then rename)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(profile, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)


def load_profile(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a profile written by :func:`save_profile`; raises :class:`ProfileError`."""
    try:
        profile = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    if not isinstance(profile, dict) or profile.get("format") != FORMAT:
        raise ProfileError(f"{path} is not a loglabel profile")
    if profile.get("version") != VERSION:
        raise ProfileError(f"{path}: unsupported profile version {profile.get('version')!r}")
    return profile


def bin_counts(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the ``len(edges) + 1`` bins of a profile histogram."""
    idx = np.searchsorted(np.asarray(edges, dtype=float), values, side="right")
    return np.bincount(idx, minlength=len(edges) + 1)


def _load(data: pd.DataFrame | str | os.PathLike[str], model: str | None) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    path = Path(data)
    if not path.exists():
        raise ProfileError(f"no Parquet data at {path}")
    filters = [("model", "==", model)] if model is not None and path.is_dir() else None
    try:
        return pd.read_parquet(path, filters=filters)
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read Parquet at {path}: {exc}") from exc


def _kind(s: pd.Series) -> str:
    from pandas.api.types import infer_dtype

    inferred = infer_dtype(s, skipna=True)
    if inferred == "boolean":
        return "bool"
    if inferred == "integer":
        return "int"
    if inferred in ("floating", "mixed-integer-float", "decimal"):
        return "float"
    return "string"


def _profile_column(s: pd.Series, rows: int, bins: int, top_k: int, max_domain: int) -> dict:
    present = s.dropna()
    kind = _kind(present)
    out: dict[str, Any] = {
        "type": kind,
        "count": int(present.size),
        "presence": float(present.size / rows) if rows else 0.0,
    }
    if kind in ("int", "float") and present.size:
        x = present.to_numpy(dtype=float)
        qs = np.quantile(x, np.linspace(0.0, 1.0, 101))
        edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        out["numeric"] = {
            "mean": float(x.mean()),
            "std": float(x.std()),
            "min": float(x.min()),
            "max": float(x.max()),
            "quantiles": qs.tolist(),
            "histogram": {"edges": edges.tolist(), "counts": bin_counts(x, edges).tolist()},
        }
    else:
        values = present.astype(str) if kind == "string" else present.map(_bool_name)
        counts = values.value_counts()
        total = float(counts.sum()) or 1.0
        complete = len(counts) <= max_domain
        keep = counts if complete else counts.iloc[:top_k]
        out["categorical"] = {
            "unique": int(len(counts)),
            "domain_complete": complete,
            "top": [[str(k), float(v / total)] for k, v in keep.iloc[:top_k].items()],
            "domain": [str(k) for k in keep.index] if complete else None,
            "shares": {str(k): float(v / total) for k, v in keep.items()},
            "other_share": float(1.0 - keep.sum() / total),
        }
    return out


def _bool_name(v: Any) -> str:
    return "true" if bool(v) else "false"
