"""Every configuration key of loglabel, validated in one place.

The configuration is one TOML file. Each key can be overridden by an
environment variable ``LOGLABEL_<SECTION>__<KEY>`` (for example
``LOGLABEL_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or
``LOGLABEL_JOIN__WINDOW_S=600``); the value is read as a TOML value when it
parses as one, else as a string. Unknown keys are errors that name the key.
Field mapping keys are ``ingest.mapping.FieldMap``'s fields; drift keys are
``drift.settings.DriftSettings``' fields: both are validated here too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from drift.settings import DriftSettings
from ingest.mapping import FieldMap
from labeler.errors import ConfigError
from labeler.labels import AGGREGATIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "LOGLABEL_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaConfig(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "loglabel"
    client_id: str = "loglabel"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_ms: int = Field(2_000, ge=100)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    max_poll_records: int = Field(5_000, ge=1)
    group_instance_id: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def client_options(self) -> dict[str, Any]:
        """kafka-python options shared by consumers, producers and admin clients."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key):
                options[key] = getattr(self, key)
        return options


class TopicsConfig(_Section):
    predictions: str = "predictions"
    outcomes: str = "outcomes"
    dead_letter: str = "loglabel.dead-letter"
    drift: str = "loglabel.drift"
    rekeyed_predictions: str = "loglabel.predictions.rekeyed"
    rekeyed_outcomes: str = "loglabel.outcomes.rekeyed"


class SchemaConfig(_Section):
    """The expected types of one model's fields: ``int``, ``float``, ``str`` or ``bool``."""

    features: dict[str, Literal["int", "float", "str", "bool"]] = {}
    prediction: dict[str, Literal["int", "float", "str", "bool"]] = {}
    required: tuple[str, ...] = ()


class IngestConfig(_Section):
    prediction_format: Literal["auto", "fluentd", "fluent-bit", "logstash", "json"] = "auto"
    outcome_format: Literal["auto", "fluentd", "fluent-bit", "logstash", "json"] = "auto"
    repartition: Literal["never", "always"] = "never"
    internal_partitions: int = Field(0, ge=0)  # 0: as many as the raw prediction topic
    internal_replication: int = Field(1, ge=1)
    flush_interval_s: float = Field(1.0, gt=0)
    max_skew_s: float = Field(30.0, gt=0)
    schema_infer_from: int = Field(1000, ge=0)  # 0: no inference, only [ingest.schemas]
    schemas: dict[str, SchemaConfig] = {}  # model name ("*" for every model) -> schema


class JoinConfig(_Section):
    window_s: float = Field(1800.0, gt=0)
    grace_s: float = Field(0.0, ge=0)
    early_tolerance_s: float = Field(5.0, ge=0)
    allowed_lateness_s: float = Field(10.0, ge=0)
    idle_after_s: float = Field(30.0, gt=0)
    dedupe_horizon_s: float = Field(3600.0, ge=0)
    keep_late_outcomes: bool = False


class LabelConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    outcome: str = "click"
    agg: str = "any"
    default: float | int | bool | None = None

    @field_validator("agg")
    @classmethod
    def _known_agg(cls, value: str) -> str:
        if value not in AGGREGATIONS:
            raise ValueError(f"must be one of {', '.join(AGGREGATIONS)}")
        return value


class OutputConfig(_Section):
    path: str = "./loglabel-output"
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    flush_interval_s: float = Field(10.0, gt=0)
    max_rows: int = Field(200_000, ge=1)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    status_interval_s: float = Field(10.0, gt=0)


METRICS_PORT = 9464


class MetricsConfig(_Section):
    """The HTTP endpoint for metrics and health probes.

    Off by default and bound to loopback: enabling it on all interfaces
    (``host = "0.0.0.0"``, as containers need) is a deliberate choice.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(METRICS_PORT, ge=0, le=65535)  # 0: any free port
    stall_after_s: float = Field(120.0, gt=0)  # liveness fails after this long stuck
    broker_check_interval_s: float = Field(5.0, gt=0)
    broker_timeout_s: float = Field(10.0, gt=0)


class Config(_Section):
    """The whole configuration of a loglabel process."""

    kafka: KafkaConfig = KafkaConfig()
    topics: TopicsConfig = TopicsConfig()
    ingest: IngestConfig = IngestConfig()
    fields: FieldMap = FieldMap()
    join: JoinConfig = JoinConfig()
    labels: tuple[LabelConfig, ...] = (LabelConfig(name="clicked"),)
    output: OutputConfig = OutputConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
    drift: DriftSettings = DriftSettings()


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or only defaults and environment when ``None``) into a ``Config``.

    Raises ``ConfigError`` naming the offending key and what was expected.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    apply_environment(data, os.environ if environ is None else environ)
    return validate(data)


def validate(data: Mapping[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
                problems.append(f"unknown key {key!r}")
            else:
                problems.append(f"{key}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Overlay ``LOGLABEL_SECTION__KEY`` variables onto ``data`` (in place)."""
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a section")
        node[path[-1]] = _env_value(raw)


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def redacted(config: Config) -> dict[str, Any]:
    """The config as plain data with every secret shown as ``**********``."""
    return config.model_dump(mode="json")
