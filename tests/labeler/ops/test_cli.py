"""The command line: help everywhere, clear config errors, and the profile command."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from drift.settings import DriftSettings, SkewSettings
from ingest.records import Prediction, SourceRef
from labeler.ops.cli import cli
from labeler.runtime.drift_hub import DriftHub

COMMANDS = ["run", "simulate", "bench", "bench-state", "demo", "doctor", "profile", "drift-eval",
            "check-message", "topics", "topics create", "report", "tail"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and "password" not in result.output.lower()


def test_an_unknown_config_key_fails_run_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[join]\nwindow_minutes = 5\n")
    result = CliRunner().invoke(cli, ["run", "--config", str(config)])
    assert result.exit_code == 1
    assert "unknown key 'join.window_minutes'" in result.output


def _training(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    n = 4000
    frame = pd.DataFrame({
        "prediction_id": [f"t{i}" for i in range(n)],
        "feat_price": rng.normal(10.0, 2.0, n),
        "feat_visits": rng.integers(0, 20, n),
        "feat_country": rng.choice(["DE", "US", "FR"], n, p=[0.5, 0.3, 0.2]),
        "pred_score": rng.uniform(0, 1, n),
        "label_clicked": rng.uniform(0, 1, n) < 0.1,
    })
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    return path


def test_profile_command_writes_a_schema_and_statistics(tmp_path: Path) -> None:
    out = tmp_path / "baseline.json"
    result = CliRunner().invoke(cli, ["profile", str(_training(tmp_path)), "-o", str(out)])
    assert result.exit_code == 0, result.output
    profile = json.loads(out.read_text())
    features = profile["features"]
    assert set(features) == {"price", "visits", "country"}
    assert abs(features["price"]["numeric"]["mean"] - 10.0) < 0.2
    assert set(features["country"]["categorical"]["domain"]) == {"DE", "US", "FR"}


def test_serving_that_differs_from_the_baseline_is_reported_as_skew(tmp_path: Path) -> None:
    out = tmp_path / "baseline.json"
    CliRunner().invoke(cli, ["profile", str(_training(tmp_path)), "-o", str(out)])
    settings = DriftSettings(baseline_path=str(out), skew=SkewSettings(window=1000))
    hub = DriftHub(settings, "unused", Counter(), "clicked")
    rng = np.random.default_rng(6)
    for i in range(3000):  # serving: no "visits", a new country, a string price now and then
        features = {"price": float(rng.normal(10.0, 2.0)),
                    "country": "JP" if i % 4 == 0 else "DE"}
        hub.observe_prediction(Prediction(f"s{i}", 1.7e9 + i, "m", None, features,
                                          {"score": 0.5}), SourceRef("p", 0, i))
    hub.flush()
    found = {(e.kind, e.feature) for e in hub.events}
    assert ("schema", "visits") in found, found
    assert any(kind in ("schema", "skew") and feature == "country" for kind, feature in found)
    assert hub.counters["drift.schema"] >= 1
