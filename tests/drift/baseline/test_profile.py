"""Baseline profiles from DataFrames, plain Parquet and loglabel shard datasets."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drift.baseline.profile import bin_counts, build_profile, load_profile, save_profile
from drift.errors import ProfileError


def frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "price": rng.normal(20.0, 3.0, n),
            "age": rng.integers(18, 80, n),
            "country": rng.choice(["DE", "FR", "IT"], n, p=[0.5, 0.3, 0.2]),
            "member": rng.random(n) < 0.25,
            "note": [None if i % 4 else "x" for i in range(n)],
        }
    )


def test_profile_holds_types_presence_domains_and_statistics() -> None:
    p = build_profile(frame())
    f = p["features"]
    assert p["rows"] == 2000 and p["format"] == "loglabel-profile"
    assert {k: v["type"] for k, v in f.items()} == {
        "price": "float",
        "age": "int",
        "country": "string",
        "member": "bool",
        "note": "string",
    }
    assert f["price"]["presence"] == 1.0 and f["note"]["presence"] == 0.25
    num = f["price"]["numeric"]
    assert num["mean"] == pytest.approx(20.0, abs=0.3) and len(num["quantiles"]) == 101
    assert num["quantiles"][0] == num["min"] and num["quantiles"][-1] == num["max"]
    hist = num["histogram"]
    assert len(hist["counts"]) == len(hist["edges"]) + 1 and sum(hist["counts"]) == 2000
    cat = f["country"]["categorical"]
    assert (
        cat["unique"] == 3 and cat["domain_complete"] and set(cat["domain"]) == {"DE", "FR", "IT"}
    )
    assert dict(cat["top"])["DE"] == pytest.approx(0.5, abs=0.04)
    assert set(f["member"]["categorical"]["domain"]) == {"true", "false"}


def test_high_cardinality_keeps_only_the_top_values() -> None:
    df = pd.DataFrame({"user": [f"u{i % 3000}" for i in range(9000)]})
    cat = build_profile(df, max_domain=1000, top_k=10)["features"]["user"]["categorical"]
    assert cat["unique"] == 3000 and not cat["domain_complete"] and cat["domain"] is None
    assert len(cat["top"]) == 10 and cat["other_share"] == pytest.approx(1 - 10 / 3000)


def test_shard_dataset_with_prefix_and_hive_partitions(tmp_path) -> None:
    df = frame(600)
    for model in ("ctr", "cvr"):
        for hour in ("10", "11"):
            part = tmp_path / f"model={model}" / "date=2024-06-10" / f"hour={hour}"
            part.mkdir(parents=True)
            shard = pd.DataFrame(
                {
                    "prediction_id": [f"{model}-{hour}-{i}" for i in range(300)],
                    "model_version": "v1",
                    "event_time": pd.Timestamp("2024-06-10T10:00Z"),
                    "feat_price": df["price"][:300] + (100 if model == "cvr" else 0),
                    "feat_country": df["country"][:300],
                    "pred_score": np.linspace(0, 1, 300),
                    "label_click": [i % 2 == 0 for i in range(300)],
                    "outcome_count": 1,
                    "first_outcome_delay_s": 1.5,
                }
            )
            pq.write_table(pa.Table.from_pandas(shard, preserve_index=False), part / "s.parquet")
    p = build_profile(tmp_path, prefix="feat_", model="ctr")
    assert set(p["features"]) == {"price", "country"}
    assert p["rows"] == 600
    assert p["features"]["price"]["numeric"]["max"] < 50  # the cvr partition was left out
    preds = build_profile(tmp_path, prefix="pred_")
    assert set(preds["features"]) == {"score"} and preds["rows"] == 1200


def test_plain_parquet_file_and_explicit_columns(tmp_path) -> None:
    path = tmp_path / "train.parquet"
    frame(500).to_parquet(path)
    p = build_profile(path, ["price", "country"])
    assert set(p["features"]) == {"price", "country"}
    with pytest.raises(ProfileError, match="not in the data"):
        build_profile(path, ["price", "nope"])
    with pytest.raises(ProfileError, match="no feature columns"):
        build_profile(path, prefix="feat_")
    with pytest.raises(ProfileError, match="no Parquet data"):
        build_profile(tmp_path / "missing")


def test_save_and_load_round_trip(tmp_path) -> None:
    p = build_profile(frame(300))
    path = tmp_path / "profile.json"
    save_profile(p, path)
    assert load_profile(path) == json.loads(json.dumps(p))
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ProfileError, match="not a loglabel profile"):
        load_profile(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ProfileError):
        load_profile(tmp_path / "broken.json")


def test_bin_counts_puts_outliers_in_the_end_bins() -> None:
    counts = bin_counts(np.array([-5.0, 0.0, 0.5, 1.0, 1.5, 99.0]), [0.0, 1.0])
    assert counts.tolist() == [1, 2, 3]
