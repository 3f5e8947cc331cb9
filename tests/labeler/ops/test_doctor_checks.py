"""Doctor checks that need no broker: settings, output path, clock arithmetic, the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labeler.config import validate
from labeler.errors import ConfigError
from labeler.ops.doctor import check_clock, check_output, check_settings, doctor_command
from labeler.ops.metrics import MetricsConfig, serve_worker
from labeler.runtime.worker import Worker

SASL = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "svc", "sasl_password": "s3cret"}


def severities(findings: list[Any]) -> list[str]:
    return [f.severity for f in findings]


def test_valid_settings_give_one_ok() -> None:
    findings = check_settings(validate({"kafka": SASL}))
    assert severities(findings) == ["ok"]


@pytest.mark.parametrize(("kafka", "expected"), [
    ({"security_protocol": "SASL_SSL"}, "sasl_mechanism is not set"),
    ({"sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "u", "sasl_password": "p"},
     "credentials would not be used"),
    ({**SASL, "sasl_password": None}, "LOGLABEL_KAFKA__SASL_PASSWORD"),
    ({"ssl_cafile": "/nonexistent/ca.pem"}, "kafka.ssl_cafile"),
])
def test_inconsistent_security_settings_are_errors(kafka: dict[str, Any], expected: str) -> None:
    findings = check_settings(validate({"kafka": kafka}))
    errors = [f.message for f in findings if f.severity == "error"]
    assert any(expected in m for m in errors), findings


def test_plaintext_sasl_and_slow_heartbeats_are_warnings() -> None:
    findings = check_settings(validate({"kafka": {
        **SASL, "security_protocol": "SASL_PLAINTEXT",
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 3000}}))
    assert severities(findings) == ["warning", "warning"]
    assert "s3cret" not in repr(findings)


def test_writable_output_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (finding,) = check_output(validate({"output": {"path": str(out)}}))
    assert finding.severity in ("ok", "warning") and "writable" in finding.message
    assert list(out.iterdir()) == []


def test_unwritable_output_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (finding,) = check_output(validate({"output": {"path": str(blocker / "out")}}))
    assert finding.severity == "error" and "output.path" in finding.message


def test_a_clock_in_1970_is_an_error() -> None:
    (finding,) = check_clock(None, validate({}), clock=lambda: 5.0)
    assert finding.severity == "error" and "year 1970" in finding.message


class QuorumAt:
    """Answers DescribeQuorum as a broker whose clock reads ``broker_s``."""

    def __init__(self, broker_s: float) -> None:
        self.broker_ms = int(broker_s * 1000)

    def describe_metadata_quorum(self) -> dict[str, Any]:
        voter = {"replica_id": 1, "last_fetch_timestamp": self.broker_ms,
                 "last_caught_up_timestamp": self.broker_ms}
        return {"topics": [{"partitions": [{"current_voters": [voter], "observers": []}]}]}


@pytest.mark.parametrize(("skew", "severity", "words"), [
    (0.0, "ok", "agrees"),
    (3.0, "warning", "behind"),
    (-30.0, "error", "ahead of"),
])
def test_clock_skew_against_the_broker(skew: float, severity: str, words: str) -> None:
    now = 1_750_000_000.0
    config = validate({"join": {"allowed_lateness_s": 10.0}})
    (finding,) = check_clock(QuorumAt(now + skew), config, clock=lambda: now)
    assert finding.severity == severity and words in finding.message, finding


def test_command_reports_a_bad_config_file_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[kafka]\nbootstrap_server = "x:1"\n')
    result = CliRunner().invoke(doctor_command, ["--config", str(path), "--json"])
    assert result.exit_code == 1
    (line,) = [json.loads(x) for x in result.output.splitlines()]
    assert line["severity"] == "error" and "kafka.bootstrap_server" in line["message"]


def test_serve_worker_is_off_unless_enabled_and_names_a_taken_port(tmp_path: Path) -> None:
    config = validate({"output": {"path": str(tmp_path / "out")}})
    worker = Worker(config)
    assert serve_worker(MetricsConfig(), config.kafka, worker) is None
    first = serve_worker(MetricsConfig(enabled=True, port=0), config.kafka, worker)
    assert first is not None
    try:
        with pytest.raises(ConfigError, match=f"127.0.0.1:{first.port}"):
            serve_worker(MetricsConfig(enabled=True, port=first.port), config.kafka, worker)
    finally:
        first.close()


def test_a_dataset_kept_in_another_layout_is_a_warning(tmp_path: Path) -> None:
    from labeler.output.dataset_schema import SchemaStore
    from labeler.output.storage import Storage

    out = tmp_path / "out"
    SchemaStore(Storage(str(out)), ("model", "date", "hour")).extend("m", {"feat_a": "bool"})
    (finding,) = check_output(validate({"output": {"path": str(out)}}))
    assert finding.severity == "warning" and "partitioned by hour" in finding.message
    (same,) = check_output(validate({"output": {"path": str(out), "partition_by": "hour"}}))
    assert same.severity == "ok"
