"""SASL/SCRAM through a broker of our own, started by deploy/kafka/kafka.sh with
``LOGLABEL_KAFKA_SCRAM=1`` on its own port and state directory, stopped at the end.

Right credentials produce and consume; a wrong password makes ``doctor`` and
``run`` exit non-zero with the cause named, the secret never printed, and
only a handful of attempts at the broker (backoff, not a hot retry loop).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from ingest.kafka.topics import ensure_topics
from labeler.config import KafkaConfig, validate
from labeler.ops.doctor import doctor

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[3]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
PORT = int(os.environ.get("LOGLABEL_TEST_SCRAM_PORT", "19192"))
SCRAM_PORT = PORT + 2
# all digits: it must reach the broker as this string, not as a TOML number
USER, PASSWORD = "loglabel-test", "0314159265358979"
WRONG = "not-the-password-42"
MAX_ATTEMPTS = 40  # exponential backoff gives ~10 in 30 s; a hot loop gives thousands
COMMAND_BOUND_S = 180  # a bound on the subprocess, not a timing assertion


class Broker:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.bootstrap = f"127.0.0.1:{SCRAM_PORT}"

    def failed_authentications(self) -> int:
        log = self.home / "logs" / "server.log"
        return log.read_text(errors="replace").count("Failed authentication") if log.exists() else 0


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    home = tmp_path_factory.mktemp("kafka-scram")
    env = {**os.environ, "LOGLABEL_KAFKA_PORT": str(PORT), "LOGLABEL_KAFKA_HOME": str(home),
           "LOGLABEL_KAFKA_SCRAM": "1", "LOGLABEL_KAFKA_SCRAM_USER": USER,
           "LOGLABEL_KAFKA_SCRAM_PASSWORD": PASSWORD, "PYTHON": sys.executable}
    started = subprocess.run([str(KAFKA_SH), "start"], env=env, capture_output=True, text=True,
                             timeout=300)
    try:
        assert started.returncode == 0, started.stderr
        assert f"SASL_PLAINTEXT (SCRAM-SHA-256/512) on 127.0.0.1:{SCRAM_PORT}" in started.stderr
        assert PASSWORD not in started.stderr
        props = (home / "server.properties").read_text()
        assert PASSWORD not in props, "the secret lives only in the KRaft metadata"
        yield Broker(home)
    finally:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, capture_output=True, timeout=120)


def sasl(broker: Broker, password: str, mechanism: str = "SCRAM-SHA-256") -> dict[str, Any]:
    return {"bootstrap_servers": broker.bootstrap, "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism, "sasl_username": USER, "sasl_password": password}


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_right_credentials_produce_and_consume(scram_broker: Broker, mechanism: str,
                                               tmp_path: Path) -> None:
    config = validate({"kafka": sasl(scram_broker, PASSWORD, mechanism),
                       "output": {"path": str(tmp_path / "out")}})
    options = config.kafka.client_options()
    topic = f"scram-{uuid.uuid4().hex[:10]}"
    ensure_topics(options, [topic], 1)
    producer = KafkaProducer(**options)
    sent = [f"m{i}".encode() for i in range(20)]
    for value in sent:
        producer.send(topic, value=value)
    producer.flush(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, **options, auto_offset_reset="earliest")
    got: list[bytes] = []
    for _ in range(100):  # bounded: at most 100 polls of 0.3 s
        for records in consumer.poll(timeout_ms=300).values():
            got.extend(r.value for r in records)
        if len(got) >= len(sent):
            break
    consumer.close()
    assert got == sent

    findings = doctor(config, timeout_s=10)
    assert [f.message for f in findings if f.check == "broker" and f.severity == "error"] == []


def test_plaintext_listener_still_works_beside_scram(scram_broker: Broker) -> None:
    options = KafkaConfig(bootstrap_servers=f"127.0.0.1:{PORT}").client_options()
    assert ensure_topics(options, [f"plain-{uuid.uuid4().hex[:10]}"], 1)


def write_config(path: Path, broker: Broker, tmp: Path) -> Path:
    path.write_text(f"""
[kafka]
bootstrap_servers = "{broker.bootstrap}"
security_protocol = "SASL_PLAINTEXT"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "{USER}"

[output]
path = "{tmp / 'out'}"
""")
    return path


def run_with_wrong_password(args: list[str], broker: Broker, tmp_path: Path
                            ) -> tuple[subprocess.CompletedProcess[str], int]:
    config = write_config(tmp_path / "loglabel.toml", broker, tmp_path)
    env = {**os.environ, "LOGLABEL_KAFKA__SASL_PASSWORD": WRONG}
    before = broker.failed_authentications()
    result = subprocess.run([sys.executable, "-m", *args, "--config", str(config)], env=env,
                            capture_output=True, text=True, timeout=COMMAND_BOUND_S, cwd=ROOT)
    return result, broker.failed_authentications() - before


def test_wrong_password_fails_doctor_with_a_clear_message(scram_broker: Broker,
                                                          tmp_path: Path) -> None:
    result, attempts = run_with_wrong_password(["labeler.ops.doctor", "--timeout", "5"],
                                               scram_broker, tmp_path)
    assert result.returncode == 1
    assert (f"the broker at {scram_broker.bootstrap} rejected user '{USER}' with SCRAM-SHA-512"
            in result.stdout), result.stdout
    assert "LOGLABEL_KAFKA__SASL_PASSWORD" in result.stdout
    assert WRONG not in result.stdout + result.stderr
    assert 1 <= attempts <= MAX_ATTEMPTS, attempts


def test_wrong_password_fails_run_without_a_hot_loop(scram_broker: Broker,
                                                     tmp_path: Path) -> None:
    result, attempts = run_with_wrong_password(["labeler.ops.cli", "run"], scram_broker, tmp_path)
    assert result.returncode != 0
    assert f"the broker at {scram_broker.bootstrap}" in result.stderr, result.stderr[-2000:]
    assert WRONG not in result.stdout + result.stderr
    assert 1 <= attempts <= MAX_ATTEMPTS, attempts


def test_wrong_password_fails_simulate_with_one_line(scram_broker: Broker,
                                                    tmp_path: Path) -> None:
    result, attempts = run_with_wrong_password(["labeler.ops.cli", "simulate", "--count", "5"],
                                               scram_broker, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert f"the broker at {scram_broker.bootstrap} rejected user '{USER}'" in line
    assert WRONG not in result.stdout + result.stderr
    assert 1 <= attempts <= MAX_ATTEMPTS, attempts


def test_a_numeric_password_from_the_environment_is_accepted(scram_broker: Broker,
                                                             tmp_path: Path) -> None:
    config = write_config(tmp_path / "loglabel.toml", scram_broker, tmp_path)
    env = {**os.environ, "LOGLABEL_KAFKA__SASL_PASSWORD": PASSWORD}
    result = subprocess.run([sys.executable, "-m", "labeler.ops.doctor", "--timeout", "10",
                             "--config", str(config)], env=env, capture_output=True, text=True,
                            timeout=COMMAND_BOUND_S, cwd=ROOT)
    assert "ok      broker" in result.stdout, result.stdout
    assert PASSWORD not in result.stdout + result.stderr
