"""A new user's first commands: required and announced configs, check-message,
topics create, and every known failure as one line with the fix."""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailedError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from ingest.kafka.topics import partition_counts
from labeler.ops.cli import cli
from labeler.ops.failures import explain
from labeler.ops.messages import split_messages

PREDICTION = (b'{"request_id":"r1","model":"ctr","features":{"price":2},"score":0.5,'
              b'"time":"2024-06-10T06:13:20Z"}')
CLICK = b'{"request_id":"r1","type":"click","time":1718000005}'


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port nothing listens on (bound, never listening, so nobody takes it)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _config(tmp_path: Path, text: str = "") -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def test_run_requires_a_config() -> None:
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 2 and "Missing option '--config'" in result.output


def test_doctor_without_config_says_which_defaults_it_checks(closed_port: int) -> None:
    result = CliRunner().invoke(cli, ["doctor", "--timeout", "1"], env={
        "LOGLABEL_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port}"})
    assert result.exit_code == 1
    assert (f"no --config given: checking the built-in defaults (kafka.bootstrap_servers="
            f"127.0.0.1:{closed_port}, topics predictions/outcomes)") in result.stderr


def test_simulate_with_no_broker_is_one_line_with_the_fix(closed_port: int) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--count", "10"], env={
        "LOGLABEL_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port}"})
    assert result.exit_code == 1
    assert "warning: no --config given: using built-in defaults" in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert f"127.0.0.1:{closed_port}" in line and "kafka.bootstrap_servers" in line
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an exception


@pytest.mark.parametrize("command", [["run"], ["simulate", "--count", "1"], ["topics", "create"]])
def test_a_sasl_config_without_password_names_the_variable(tmp_path: Path,
                                                           command: list[str]) -> None:
    path = _config(tmp_path, '[kafka]\nsecurity_protocol = "SASL_SSL"\n'
                             'sasl_mechanism = "SCRAM-SHA-512"\nsasl_username = "svc"\n')
    result = CliRunner().invoke(cli, [*command, "--config", path])
    assert result.exit_code == 1, result.output
    assert "LOGLABEL_KAFKA__SASL_PASSWORD" in result.stderr
    assert "NoneType" not in result.output and not isinstance(result.exception, AttributeError)


@pytest.mark.parametrize(("error", "expected"), [
    (SaslAuthenticationFailedError("bad"), "LOGLABEL_KAFKA__SASL_PASSWORD"),
    (TopicAuthorizationFailedError(), "grant this user"),
    (UnknownTopicOrPartitionError(), "loglabel topics create --config FILE"),
    (KafkaConnectionError("refused"), "kafka.bootstrap_servers"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/x.parquet"),
     "disk full writing /data/out/x.parquet"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/out"),
     "permission denied on /data/out"),
])
def test_known_failures_become_a_sentence_with_the_fix(error: BaseException,
                                                       expected: str) -> None:
    message = explain(error)
    assert message is not None and expected in message
    assert "\n" not in message


def test_an_unknown_exception_is_left_alone() -> None:
    assert explain(KeyError("bug")) is None
    assert explain(OSError(errno.EIO, "I/O error")) is None


def test_a_full_disk_during_a_command_is_one_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "b.json"))

    monkeypatch.setattr("drift.baseline.profile.save_profile", full)
    data = tmp_path / "d.parquet"
    import pandas as pd

    pd.DataFrame({"feat_x": [1.0, 2.0, 3.0]}).to_parquet(data)
    result = CliRunner().invoke(cli, ["profile", str(data), "-o", str(tmp_path / "b.json")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: disk full writing {tmp_path / 'b.json'}: free "
                                     "space there or point output.path elsewhere")


# -- check-message ----------------------------------------------------------------------------


def test_check_message_prints_the_canonical_prediction(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check-message", "--config", _config(tmp_path)],
                                input=PREDICTION)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["prediction"]
    assert record["prediction_id"] == "r1" and record["event_time"] == 1718000000.0
    assert record["partition"] == "model=ctr/date=2024-06-10" and record["hour"] == 6
    assert record["columns"] == {"feat_price": 2, "pred_score": 0.5}


def test_check_message_reads_outcomes_per_line_and_reports_dead_letters(tmp_path: Path) -> None:
    lines = b"\n".join([CLICK, b"not json", b'{"request_id":"r2","score":1,"time":0}']) + b"\n"
    result = CliRunner().invoke(cli, ["check-message", "--config", _config(tmp_path)],
                                input=lines)
    assert result.exit_code == 1
    verdicts = [json.loads(v) for v in result.stdout.replace("}\n{", "}\x00{").split("\x00")]
    assert verdicts[0]["outcome"]["type"] == "click"
    assert verdicts[0]["outcome"]["event_time_utc"] == "2024-06-10T06:13:25.000000+00:00"
    assert verdicts[1]["dead_letter"]["reason"] == "not_json"
    assert verdicts[2]["dead_letter"]["reason"] == "past_time"
    assert "placeholder" in verdicts[2]["dead_letter"]["meaning"]


def test_check_message_follows_the_config(tmp_path: Path) -> None:
    path = _config(tmp_path, '[fields]\njoin_id = ["req.id"]\nprediction = ["p"]\n'
                             '[ingest]\nmin_time = ""\n'
                             '[ingest.schemas.ctr.features]\nprice = "str"\n')
    message = b'{"req":{"id":7},"model":"ctr","features":{"price":2},"p":1,"time":1.0}'
    result = CliRunner().invoke(cli, ["check-message", "--config", path], input=message)
    verdict = json.loads(result.stdout)
    assert verdict["dead_letter"]["reason"] == "bad_type", verdict  # price must be a str
    ok = message.replace(b'"price":2', b'"price":"2"')
    result = CliRunner().invoke(cli, ["check-message", "--config", path, "--kind",
                                      "prediction"], input=ok)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prediction"]["partition"].endswith("date=1970-01-01")


def test_split_messages_takes_one_document_or_lines() -> None:
    pretty = b'{\n  "request_id": "r1",\n  "time": 1\n}\n'
    assert split_messages(pretty) == [pretty.strip()]
    assert split_messages(b'{"a":1}\n\n{"b":2}\n') == [b'{"a":1}', b'{"b":2}']
    assert split_messages(b"") == [b""]


# -- topics create (real broker) --------------------------------------------------------------


@pytest.mark.kafka
def test_topics_create_makes_every_topic_once(tmp_path: Path, kafka_config: Callable[..., Any],
                                              kafka_bootstrap: str,
                                              unique: Callable[[str], str]) -> None:
    config = kafka_config(ingest={"repartition": "always", "internal_partitions": 3},
                          topics={"rekeyed_predictions": unique("rekeyed-p"),
                                  "rekeyed_outcomes": unique("rekeyed-o")})
    t = config.topics
    path = tmp_path / "c.toml"
    path.write_text(
        f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\n[ingest]\nrepartition = "always"\n'
        "internal_partitions = 3\n[topics]\n"
        + "".join(f'{key} = "{getattr(t, key)}"\n' for key in type(t).model_fields))
    first = CliRunner().invoke(cli, ["topics", "create", "--config", str(path),
                                     "--partitions", "2"])
    assert first.exit_code == 0, first.output
    assert first.stdout.count("created ") == 6
    counts = partition_counts(config.kafka.client_options(),
                              [t.predictions, t.outcomes, t.dead_letter, t.drift,
                               t.rekeyed_predictions, t.rekeyed_outcomes])
    assert counts == {t.predictions: 2, t.outcomes: 2, t.dead_letter: 2, t.drift: 2,
                      t.rekeyed_predictions: 3, t.rekeyed_outcomes: 3}
    again = CliRunner().invoke(cli, ["topics", "create", "--config", str(path),
                                     "--partitions", "5"])
    assert again.exit_code == 0 and again.stdout.count("exists ") == 6
    assert f"exists   {t.predictions} (2 partitions)" in again.stdout


@pytest.mark.kafka
def test_topics_create_reports_an_impossible_replication(tmp_path: Path,
                                                         kafka_config: Callable[..., Any],
                                                         kafka_bootstrap: str) -> None:
    t = kafka_config().topics
    path = _config(tmp_path, f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\n[topics]\n'
                             f'predictions = "{t.predictions}"\noutcomes = "{t.outcomes}"\n')
    result = CliRunner().invoke(cli, ["topics", "create", "--config", path,
                                      "--replication", "3"])
    assert result.exit_code == 1
    assert f"cannot create topic {t.predictions!r}" in result.stderr
    assert "replication 3" in result.stderr and "Traceback" not in result.output


@pytest.mark.kafka
def test_run_on_missing_topics_names_topics_create(tmp_path: Path,
                                                   kafka_config: Callable[..., Any],
                                                   kafka_bootstrap: str) -> None:
    t = kafka_config().topics
    path = _config(tmp_path, f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\n[topics]\n'
                             f'predictions = "{t.predictions}"\noutcomes = "{t.outcomes}"\n'
                             f'[output]\npath = "{tmp_path / "out"}"\n')
    result = CliRunner().invoke(cli, ["run", "--config", path, "--until-idle", "1"])
    assert result.exit_code == 1
    assert "`loglabel topics create --config FILE`" in result.stderr
    assert repr(t.predictions) in result.stderr
