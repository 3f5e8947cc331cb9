"""deploy/kafka/kafka.sh judges its own process, not whoever answers on the port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
COMMAND_BOUND_S = 120  # a bound on the subprocess, not a timing assertion


def kafka_sh(command: str, port: int, home: Path, **extra: str
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOGLABEL_KAFKA_PORT": str(port), "LOGLABEL_KAFKA_HOME": str(home),
           "PYTHON": sys.executable, **extra}
    return subprocess.run([str(KAFKA_SH), command], env=env, capture_output=True, text=True,
                          timeout=COMMAND_BOUND_S)


@pytest.fixture
def listener() -> Iterator[int]:
    """Something that is not a Kafka broker, listening on a 127.0.0.1 port."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_start_refuses_a_port_held_by_another_program(listener: int, tmp_path: Path) -> None:
    started = kafka_sh("start", listener, tmp_path / "home")
    assert started.returncode == 1
    assert f"port {listener} on 127.0.0.1 is taken by another process" in started.stderr
    assert "LOGLABEL_KAFKA_PORT" in started.stderr
    assert "started" not in started.stderr
    status = kafka_sh("status", listener, tmp_path / "home")
    assert status.returncode == 3
    assert "not running" in status.stderr and "taken by another process" in status.stderr
    assert "answering" not in status.stderr


@pytest.mark.kafka
def test_a_second_broker_on_a_running_brokers_port_is_not_reported_started(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    started = kafka_sh("start", port, tmp_path / "second")
    assert started.returncode == 1, started.stderr
    assert "taken by another process" in started.stderr and "started" not in started.stderr
    status = kafka_sh("status", port, tmp_path / "second")
    assert status.returncode == 3 and "answering" not in status.stderr


def _free_port_pair() -> int:
    """A port p with p and p+1 free right now (the broker's client and controller ports)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port pair")


@pytest.mark.kafka  # needs the broker jars, which the kafka fixture fetched
def test_a_broker_that_dies_while_starting_is_reported_at_once(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    # a JVM that cannot start (a heap below its minimum) dies before it binds anything;
    # storage marked formatted, so that the broker itself is what dies
    home = tmp_path / "dying"
    (home / "data").mkdir(parents=True)
    (home / "data" / "meta.properties").write_text("cluster.id=dying-cluster\nnode.id=1\n")
    started = kafka_sh("start", _free_port_pair(), home, LOGLABEL_KAFKA_HEAP="1k")
    assert started.returncode == 1
    assert "exited during start-up" in started.stderr, started.stderr
    assert "did not answer within" not in started.stderr  # not a 90 s wait for a dead pid


def test_no_password_is_ever_on_a_command_line() -> None:
    """`ps` shows argv: the SCRAM password reaches scram_user.py through its environment."""
    script = KAFKA_SH.read_text()
    assert "--add-scram" not in script
    uses = [line.strip() for line in script.splitlines()
            if "$scram_password" in line or "${scram_password" in line]
    assert uses == ["LOGLABEL_KAFKA_SCRAM_PASSWORD=$scram_password \\"], uses
    helper = (ROOT / "deploy" / "kafka" / "scram_user.py").read_text()
    assert re.search(r'os\.environ\.get\("LOGLABEL_KAFKA_SCRAM_PASSWORD"', helper)


@pytest.mark.parametrize("target", ["demo", "bench", "kafka-start", "kafka-status"])
def test_make_targets_use_loglabel_kafka_port(target: str) -> None:
    dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "LOGLABEL_KAFKA_PORT": "29999"},
                         timeout=COMMAND_BOUND_S)
    assert dry.returncode == 0, dry.stderr
    assert "9092" not in dry.stdout
    if target in ("demo", "bench"):
        assert "--bootstrap 127.0.0.1:29999" in dry.stdout
    default = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items()
                                  if k != "LOGLABEL_KAFKA_PORT"}, timeout=COMMAND_BOUND_S)
    if target in ("demo", "bench"):
        assert "--bootstrap 127.0.0.1:9092" in default.stdout
