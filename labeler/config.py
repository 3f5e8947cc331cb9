"""Every configuration key of loglabel, validated in one place.

The configuration is one TOML file. Each key can be overridden by an
environment variable ``LOGLABEL_<SECTION>__<KEY>`` (for example
``LOGLABEL_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or
``LOGLABEL_JOIN__WINDOW_S=600``); the value is read as a TOML value when it
parses as one, else as a string. Unknown keys are errors that name the key.
Field mapping keys are ``ingest.wire.mapping.FieldMap``'s fields; drift keys are
``drift.settings.DriftSettings``' fields: both are validated here too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from drift.settings import DriftSettings
from ingest.errors import RejectedMessage
from ingest.wire.mapping import FieldMap
from ingest.wire.pii import MIN_KEY_BYTES, FieldPolicy, PiiPolicy, needs_key
from ingest.wire.timeparse import parse_time
from labeler.errors import ConfigError
from labeler.join.labels import AGGREGATIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "LOGLABEL_"
PASSWORD_ENV = "LOGLABEL_KAFKA__SASL_PASSWORD"  # noqa: S105 - a variable name
"""The variable that holds the SASL password (``kafka.sasl_password``)."""
SECRET_KEYS = frozenset({("kafka", "sasl_password")})
"""Keys whose environment value is always taken as it is, never parsed as TOML: a
password ``1234`` or ``true`` stays that string."""


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

    @field_validator("sasl_password", mode="before")
    @classmethod
    def _a_string(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | SecretStr):
            raise ValueError(f"must be a string: quote it in the file, or set {PASSWORD_ENV} "
                             "(always read as a string)")
        return value

    def client_options(self) -> dict[str, Any]:
        """kafka-python options shared by consumers, producers and admin clients.

        Raises ``ConfigError`` naming ``LOGLABEL_KAFKA__SASL_PASSWORD`` when a SASL
        mechanism is set without a password (or ``kafka.sasl_username`` without a
        user): a config may validate without its secret, a client may not start.
        """
        if self.sasl_mechanism and (self.sasl_password is None or not self.sasl_username):
            if not self.sasl_username:
                raise ConfigError(f"kafka.sasl_mechanism is {self.sasl_mechanism} but "
                                  "kafka.sasl_username is not set")
            raise ConfigError(f"kafka.sasl_mechanism is {self.sasl_mechanism} but no password "
                              f"is set: set the environment variable {PASSWORD_ENV} (or "
                              "kafka.sasl_password in the config file)")
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
    # internal (repartition = "always"); empty: "<raw topic>.loglabel-rekeyed", so two
    # pipelines on one cluster never share internal topics (Kafka Streams prefixes its own)
    rekeyed_predictions: str = ""
    rekeyed_outcomes: str = ""

    @model_validator(mode="after")
    def _internal_names(self) -> TopicsConfig:
        if not self.rekeyed_predictions:
            object.__setattr__(self, "rekeyed_predictions", f"{self.predictions}.loglabel-rekeyed")
        if not self.rekeyed_outcomes:
            object.__setattr__(self, "rekeyed_outcomes", f"{self.outcomes}.loglabel-rekeyed")
        return self


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
    max_future_s: float = Field(3600.0, ge=0)  # 0: no limit
    # events before this are past_time dead letters; "": no lower bound
    min_time: str = "2000-01-01T00:00:00Z"
    schema_infer_from: int = Field(1000, ge=0)  # 0: no inference, only [ingest.schemas]
    schemas: dict[str, SchemaConfig] = {}  # model name ("*" for every model) -> schema

    @field_validator("min_time", mode="before")
    @classmethod
    def _a_time(cls, value: Any) -> str:
        if isinstance(value, datetime):  # TOML's own datetime (a file or an env override)
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            value = value.isoformat()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = repr(float(value))
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 time or epoch seconds")
        if value:
            try:
                parse_time(value)
            except RejectedMessage as exc:
                raise ValueError(f"must be an ISO-8601 time or epoch seconds ({exc.detail})"
                                 ) from None
        return value

    def min_epoch(self) -> float | None:
        """``min_time`` as epoch seconds, or ``None`` when it is off (``""``)."""
        return parse_time(self.min_time) if self.min_time else None


class JoinConfig(_Section):
    window_s: float = Field(1800.0, gt=0)
    grace_s: float = Field(0.0, ge=0)
    early_tolerance_s: float = Field(5.0, ge=0)
    allowed_lateness_s: float = Field(10.0, ge=0)
    idle_after_s: float = Field(30.0, gt=0)
    frontier_votes: int = Field(3, ge=1)
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
    max_bytes: ByteSize = ByteSize(128 * 1024**2)
    max_span_s: float = Field(86_400.0, gt=0)
    # "date": files per model and day, hour a column; "hour": a directory per hour too
    partition_by: Literal["date", "hour"] = "date"
    # a value that clashes with its column's type makes the column string (else: null)
    widen_to_string: bool = False


class StateConfig(_Section):
    """Where pending predictions live while their windows are open."""

    # bytes of pending predictions kept in memory per worker ("512MiB", "2GB" or a
    # number); beyond it the oldest spill to SQLite files under spill_dir
    memory_budget: ByteSize = ByteSize(1024**3)
    spill_dir: str = ""  # "": a loglabel-spill directory in the system's temp directory


class LoggingConfig(_Section):
    """Logs on stderr: ``format = "json"`` (one JSON object a line, for machines) or
    ``"console"`` (aligned, coloured on a terminal, drift events spelled out)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    status_interval_s: float = Field(10.0, gt=0)
    format: Literal["json", "console"] = "json"


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


class PiiFieldConfig(_Section):
    """One field's PII policy (``ingest.wire.pii``): ``width`` for bucket, ``keep`` for
    generalize."""

    policy: Literal["drop", "hash", "bucket", "generalize"]
    width: int | float | None = Field(None, gt=0, allow_inf_nan=False)
    keep: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _parameters(self) -> PiiFieldConfig:
        self.rule()  # ingest's FieldPolicy states the parameter rules; a ValueError names them
        return self

    def rule(self) -> FieldPolicy:
        return FieldPolicy(self.policy, self.width, self.keep)


class PiiConfig(_Section):
    """Per-field PII policies, applied at ingest before anything else sees a record.

    ``fields`` maps a dotted record path to its policy. ``key_env`` names the
    environment variable holding the HMAC key of ``hash`` policies; the key
    itself is never part of the config, so it is never printed or logged.
    """

    key_env: str = Field("LOGLABEL_PII_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    fields: dict[str, PiiFieldConfig] = {}

    @field_validator("key_env")
    @classmethod
    def _not_an_override(cls, value: str) -> str:
        if value.upper().startswith(ENV_PREFIX) and "__" in value:
            raise ValueError("must not look like a config override (LOGLABEL_<SECTION>__<KEY>)")
        return value

    @field_validator("fields")
    @classmethod
    def _paths(cls, value: dict[str, PiiFieldConfig]) -> dict[str, PiiFieldConfig]:
        for path in value:
            if not path or "" in path.split("."):
                raise ValueError(f"path {path!r} has an empty part")
        return value

    def policy(self, environ: Mapping[str, str] | None = None) -> PiiPolicy | None:
        """The policy to apply, or ``None`` when no field has one.

        The hash key is read from ``environ`` (default ``os.environ``). Raises
        ``ConfigError`` when a hash policy exists and the key is unset, empty
        or shorter than ``ingest.wire.pii.MIN_KEY_BYTES`` bytes: loglabel refuses
        to start rather than pass raw values through.
        """
        if not self.fields:
            return None
        rules = {path: f.rule() for path, f in self.fields.items()}
        key = None
        if needs_key(rules):
            hashed = sorted(path for path, rule in rules.items() if rule.policy == "hash")
            text = (os.environ if environ is None else environ).get(self.key_env, "")
            key = text.encode()
            if len(key) < MIN_KEY_BYTES:
                state = "is not set" if not text else f"is shorter than {MIN_KEY_BYTES} bytes"
                raise ConfigError(
                    f"pii: the hash policy on {', '.join(hashed)} needs a secret key of at "
                    f"least {MIN_KEY_BYTES} bytes in the environment variable "
                    f"{self.key_env}, which {state} (pii.key_env names the variable)")
        return PiiPolicy(rules, key)


class Config(_Section):
    """The whole configuration of a loglabel process."""

    kafka: KafkaConfig = KafkaConfig()
    topics: TopicsConfig = TopicsConfig()
    ingest: IngestConfig = IngestConfig()
    fields: FieldMap = FieldMap()
    join: JoinConfig = JoinConfig()
    labels: tuple[LabelConfig, ...] = (LabelConfig(name="clicked"),)
    output: OutputConfig = OutputConfig()
    state: StateConfig = StateConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
    drift: DriftSettings = DriftSettings()
    pii: PiiConfig = PiiConfig()

    @model_validator(mode="before")
    @classmethod
    def _drift_watches_the_prediction(cls, data: Any) -> Any:
        """``drift.prediction.fields`` defaults to the fields ``fields.prediction`` maps
        (their names, the last part of each path), not to a fixed ``score``."""
        if not isinstance(data, dict):
            return data
        fields = data.get("fields")
        paths = fields.get("prediction") if isinstance(fields, dict) else None
        drift = data.get("drift", {})
        prediction = drift.get("prediction", {}) if isinstance(drift, dict) else None
        if (paths is None or not isinstance(prediction, dict) or "fields" in prediction
                or not isinstance(paths, list | tuple)):
            return data
        names = [str(p).rsplit(".", 1)[-1] for p in paths]
        return {**data, "drift": {**drift, "prediction": {**prediction, "fields": names}}}


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
        node[path[-1]] = raw if tuple(path) in SECRET_KEYS else _env_value(raw)


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def redacted(config: Config) -> dict[str, Any]:
    """The config as plain data with every secret shown as ``**********``."""
    return config.model_dump(mode="json")
