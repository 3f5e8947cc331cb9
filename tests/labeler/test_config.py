"""The configuration: validation, errors that name the key, environment overrides."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from labeler.config import Config, load_config, redacted, validate
from labeler.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "loglabel.toml"


def _keys(model: Any, prefix: str = "") -> set[str]:
    out = set()
    for name in type(model).model_fields:
        value = getattr(model, name)
        if hasattr(type(value), "model_fields"):
            out |= _keys(value, f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out


def test_the_shipped_example_is_valid_and_equals_the_defaults() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config == Config()


def test_the_shipped_example_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    for key in _keys(Config()):
        section, _, name = key.rpartition(".")
        if section in ("", "labels"):
            continue
        assert f"{name} =" in text or f"[{key}." in text, f"{key} is not documented"


def test_unknown_key_is_an_error_that_names_it(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[join]\nwindow = 10\n")
    with pytest.raises(ConfigError, match="unknown key 'join.window'"):
        load_config(path, environ={})


def test_unknown_section_and_unknown_field_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'joins'"):
        validate({"joins": {}})
    with pytest.raises(ConfigError, match="unknown key 'fields.feature'"):
        validate({"fields": {"feature": "x"}})


def test_wrong_type_names_the_key_and_the_expectation() -> None:
    with pytest.raises(ConfigError, match=r"join.window_s: .*number"):
        validate({"join": {"window_s": "soon"}})
    with pytest.raises(ConfigError, match=r"labels.0.agg: .*must be one of"):
        validate({"labels": [{"name": "x", "agg": "median"}]})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[join]\nwindow_s = 10\n[kafka]\nbootstrap_servers = "a:1"\n')
    config = load_config(path, environ={"LOGLABEL_JOIN__WINDOW_S": "60",
                                        "LOGLABEL_KAFKA__BOOTSTRAP_SERVERS": "b:2,c:3",
                                        "LOGLABEL_FIELDS__JOIN_ID": '["request_id", "item"]',
                                        "UNRELATED": "1"})
    assert config.join.window_s == 60.0
    assert config.kafka.client_options()["bootstrap_servers"] == ["b:2", "c:3"]
    assert config.fields.join_id == ("request_id", "item")


def test_an_unknown_environment_key_is_an_error_too() -> None:
    with pytest.raises(ConfigError, match="unknown key 'join.windw_s'"):
        load_config(None, environ={"LOGLABEL_JOIN__WINDW_S": "1"})


def test_secrets_never_appear_when_printed() -> None:
    config = validate({"kafka": {"sasl_mechanism": "PLAIN", "sasl_username": "u",
                                 "sasl_password": "hunter2"}})
    assert "hunter2" not in repr(config) and "hunter2" not in str(redacted(config))
    assert config.kafka.client_options()["sasl_plain_password"] == "hunter2"


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[join\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_toml_module_parses_the_example() -> None:
    assert "join" in tomllib.loads(EXAMPLE.read_text())


def test_the_sasl_password_from_the_environment_is_always_a_string() -> None:
    for raw in ("1234", "true", "1e3", "[1]", " padded "):
        config = load_config(None, environ={"LOGLABEL_KAFKA__SASL_PASSWORD": raw})
        assert config.kafka.sasl_password is not None
        assert config.kafka.sasl_password.get_secret_value() == raw
    other = load_config(None, environ={"LOGLABEL_JOIN__WINDOW_S": "600"})
    assert other.join.window_s == 600.0  # other keys are still read as TOML


def test_an_unquoted_numeric_password_in_the_file_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[kafka]\nsasl_password = 1234\n")
    with pytest.raises(ConfigError, match="kafka.sasl_password: .*must be a string.*"
                                          "LOGLABEL_KAFKA__SASL_PASSWORD") as caught:
        load_config(path, environ={})
    assert "1234" not in str(caught.value)


def test_a_sasl_mechanism_without_password_names_the_variable() -> None:
    config = validate({"kafka": {"security_protocol": "SASL_SSL",
                                 "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "svc"}})
    assert config.kafka.sasl_password is None  # a config may be checked without its secret
    with pytest.raises(ConfigError, match="no password is set: set the environment variable "
                                          "LOGLABEL_KAFKA__SASL_PASSWORD"):
        config.kafka.client_options()
    no_user = validate({"kafka": {"sasl_mechanism": "PLAIN", "sasl_password": "p"}})
    with pytest.raises(ConfigError, match="kafka.sasl_username is not set"):
        no_user.kafka.client_options()


def test_min_time_accepts_iso_epoch_toml_datetimes_and_off(tmp_path: Path) -> None:
    assert Config().ingest.min_epoch() == 946684800.0  # 2000-01-01T00:00:00Z
    assert validate({"ingest": {"min_time": 1.6e9}}).ingest.min_epoch() == 1.6e9
    assert validate({"ingest": {"min_time": ""}}).ingest.min_epoch() is None
    path = tmp_path / "c.toml"
    path.write_text("[ingest]\nmin_time = 2020-01-01T00:00:00Z\n")  # a TOML datetime
    assert load_config(path, environ={}).ingest.min_epoch() == 1577836800.0
    env = load_config(None, environ={"LOGLABEL_INGEST__MIN_TIME": "2020-01-01 00:00:00"})
    assert env.ingest.min_epoch() == 1577836800.0
    with pytest.raises(ConfigError, match="ingest.min_time: .*ISO-8601 time or epoch"):
        validate({"ingest": {"min_time": "last tuesday"}})


def test_a_mapping_that_cannot_work_is_a_config_error_naming_the_key() -> None:
    from labeler.config import validate

    with pytest.raises(ConfigError, match=r"fields\.features: 'features' names an object.*"
                                          r"'features\.\*'"):
        validate({"fields": {"features": ["features", "item_id"]}})
    assert validate({"fields": {"features": ["features.*", "item_id"]}}).fields.features == (
        "features.*", "item_id")


def test_drift_watches_the_mapped_prediction_fields_by_default() -> None:
    from labeler.config import validate

    assert validate({"fields": {"prediction": ["out.p_click"]}}).drift.prediction.fields == (
        "p_click",)
    chosen = validate({"fields": {"prediction": ["p", "q"]},
                       "drift": {"prediction": {"fields": ["q"]}}})
    assert chosen.drift.prediction.fields == ("q",)
    assert validate({}).drift.prediction.fields == ("score",)
