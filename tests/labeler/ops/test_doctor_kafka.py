"""``doctor`` against the real broker: a wrong address, a missing topic, topics that are
not co-partitioned, and a healthy setup, each with the message an operator acts on."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ingest.kafka.topics import ensure_topics
from labeler.ops.doctor import Finding, doctor, doctor_command

pytestmark = pytest.mark.kafka


def errors(findings: list[Finding], check: str) -> list[str]:
    return [f.message for f in findings if f.severity == "error" and f.check == check]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_toml(config: Any, path: Path, **extra: str) -> Path:
    k, t = config.kafka, config.topics
    lines = [
        "[kafka]", f'bootstrap_servers = "{k.bootstrap_servers}"', f'group_id = "{k.group_id}"',
        "[topics]", f'predictions = "{t.predictions}"', f'outcomes = "{t.outcomes}"',
        f'dead_letter = "{t.dead_letter}"', f'drift = "{t.drift}"',
        "[output]", f'path = "{config.output.path}"',
    ]
    for section, body in extra.items():
        lines += [f"[{section}]", body]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_healthy_setup_has_no_error_and_exits_0(kafka_config: Any, tmp_path: Path) -> None:
    config = kafka_config()
    ensure_topics(config.kafka.client_options(), [config.topics.predictions,
                                                  config.topics.outcomes], 3)
    findings = doctor(config, timeout_s=10)
    assert [f for f in findings if f.severity == "error"] == []
    checks = {f.check for f in findings}
    assert {"config", "broker", "topics", "co-partitioning", "clock", "output"} <= checks
    assert any("run at most 3 workers" in f.message for f in findings)

    result = CliRunner().invoke(doctor_command, ["--config", str(write_toml(
        config, tmp_path / "ok.toml"))])
    assert result.exit_code == 0, result.output


def test_wrong_broker_address(kafka_config: Any, tmp_path: Path) -> None:
    config = kafka_config(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    findings = doctor(config, timeout_s=3)
    (message,) = errors(findings, "broker")
    assert "nothing listens at 127.0.0.1:" in message and "kafka.bootstrap_servers" in message
    assert not errors(findings, "topics"), "no topic findings without a broker"

    result = CliRunner().invoke(doctor_command, ["--config", str(write_toml(
        config, tmp_path / "bad.toml")), "--timeout", "3"])
    assert result.exit_code == 1
    assert "nothing listens at" in result.output


def test_missing_topic(kafka_config: Any) -> None:
    config = kafka_config()
    ensure_topics(config.kafka.client_options(), [config.topics.predictions], 2)
    (message,) = errors(doctor(config, timeout_s=10), "topics")
    assert f"topic {config.topics.outcomes!r} (topics.outcomes) does not exist" in message
    assert "loglabel topics create --config FILE" in message  # a command the project ships


def test_topics_that_are_not_co_partitioned(kafka_config: Any) -> None:
    config = kafka_config()
    options = config.kafka.client_options()
    ensure_topics(options, [config.topics.predictions], 4)
    ensure_topics(options, [config.topics.outcomes], 2)
    (message,) = errors(doctor(config, timeout_s=10), "co-partitioning")
    assert "has 4 partitions" in message and "has 2" in message
    assert f"raise {config.topics.outcomes!r} to 4 partitions" in message
    assert 'ingest.repartition = "always"' in message

    repartitioned = kafka_config(topics=config.topics.model_dump(),
                                 ingest={"repartition": "always"})
    assert not errors(doctor(repartitioned, timeout_s=10), "co-partitioning")


def test_internal_topics_must_be_co_partitioned_too(kafka_config: Any, unique: Any) -> None:
    config = kafka_config(ingest={"repartition": "always"},
                          topics={"rekeyed_predictions": unique("rekeyed-p"),
                                  "rekeyed_outcomes": unique("rekeyed-o")})
    options = config.kafka.client_options()
    ensure_topics(options, [config.topics.predictions], 3)
    ensure_topics(options, [config.topics.outcomes], 1)
    ensure_topics(options, [config.topics.rekeyed_predictions], 2)
    findings = doctor(config, timeout_s=10)
    (message,) = errors(findings, "co-partitioning")
    assert f"{config.topics.rekeyed_predictions!r} (2)" in message
    assert f"{config.topics.rekeyed_outcomes!r} (3)" in message, "created like the raw topic"


def test_doctor_names_why_the_latest_messages_would_be_dead_lettered(kafka_config: Any) -> None:
    import orjson
    from kafka import KafkaProducer

    config = kafka_config(fields={"features": ["ctx", "item_id"]})  # ctx is an object
    ensure_topics(config.kafka.client_options(), [config.topics.predictions,
                                                  config.topics.outcomes], 2)
    producer = KafkaProducer(bootstrap_servers=config.kafka.bootstrap_servers)
    for i in range(6):
        producer.send(config.topics.predictions, orjson.dumps(
            {"request_id": f"r{i}", "time": 1718000000.0 + i, "score": 0.5, "item_id": i,
             "ctx": {"price": 2.0}}))
    producer.flush()
    producer.close()
    findings = doctor(config, timeout_s=10)
    (message,) = errors(findings, "messages")
    assert "6 of the latest 6 predictions would be dead-lettered: bad_type x6" in message
    assert "'ctx.*'" in message
    fixed = doctor(kafka_config(topics={"predictions": config.topics.predictions,
                                        "outcomes": config.topics.outcomes},
                                fields={"features": ["ctx.*", "item_id"]}), timeout_s=10)
    assert not errors(fixed, "messages")
    assert any(f.check == "messages" and "the latest 6 predictions decode" in f.message
               for f in fixed)
