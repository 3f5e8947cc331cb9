"""Shared fixtures: the real local Kafka broker, unique topics, configs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
TEST_PORT = "19092"


def _kafka_env() -> dict[str, str]:
    return {**os.environ, "LOGLABEL_KAFKA_PORT": TEST_PORT, "PYTHON": sys.executable}


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker: ``LOGLABEL_TEST_BOOTSTRAP`` if set, else ours from deploy/kafka."""
    given = os.environ.get("LOGLABEL_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    env = _kafka_env()
    start = subprocess.run([str(KAFKA_SH), "start"], env=env, stderr=subprocess.PIPE,
                           text=True)
    sys.stderr.write(start.stderr)
    if start.returncode:
        raise RuntimeError(f"deploy/kafka/kafka.sh start failed: {start.stderr.strip()}")
    # Stop it afterwards only if this session started it: another session (a second
    # checkout, a run in parallel) may be using a broker that was already running.
    started_here = "kafka: started (pid" in start.stderr
    yield f"127.0.0.1:{TEST_PORT}"
    if started_here:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, check=False)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names for this test's topics and groups."""
    run = uuid.uuid4().hex[:10]
    return lambda prefix: f"{prefix}-{run}"


@pytest.fixture
def kafka_config(kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
                 ) -> Callable[..., Any]:
    """Build a validated ``Config`` with this test's own topics, group and output dir."""
    from labeler.config import validate

    def build(**sections: dict[str, Any]) -> Any:
        data: dict[str, Any] = {
            "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id": unique("group"),
                      "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
            "topics": {"predictions": unique("predictions"), "outcomes": unique("outcomes"),
                       "dead_letter": unique("dead-letter"), "drift": unique("drift")},
            "join": {"window_s": 30.0, "early_tolerance_s": 5.0, "allowed_lateness_s": 5.0},
            "output": {"path": str(tmp_path / "out"), "flush_interval_s": 1.0},
            "logging": {"status_interval_s": 5.0},
        }
        for name, values in sections.items():
            data.setdefault(name, {})
            if isinstance(values, dict):
                data[name].update(values)
            else:
                data[name] = values
        return validate(data)

    return build
