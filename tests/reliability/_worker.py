"""Running real worker processes for the reliability tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, config: Any, **overrides: dict[str, Any]) -> Path:
    """Write ``config`` (its non-default keys) plus ``overrides`` as a TOML file for a
    ``loglabel run --config`` subprocess. Scalar keys only, which is all these tests set."""
    data: dict[str, dict[str, Any]] = config.model_dump(mode="json", exclude_defaults=True)
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    lines = []
    for section, values in data.items():
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict | list)}
        if scalars:
            lines.append(f"[{section}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in scalars.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_worker(config_path: Path, log: Any, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``loglabel run --config config_path *extra``; ``env`` adds to the environment
    (``LOGLABEL_SECTION__KEY`` overrides a config key)."""
    return subprocess.Popen(
        [sys.executable, "-m", "labeler.ops.cli", "run", "--config", str(config_path), *extra],
        cwd=ROOT, stdout=log, stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
