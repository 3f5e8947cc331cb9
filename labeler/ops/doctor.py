"""``loglabel doctor``: can this deployment run? One finding per check, each actionable.

Checks, in order: the configuration (validity and consistency of the security
settings), the broker (reachable, credentials accepted), the topics (they
exist, their partition counts, co-partitioning of predictions and outcomes),
the mapping (the latest messages of each raw topic decoded as ``run`` would),
the clock (a sane date, and agreement with the broker's clock), and the output
path (writable). Any ``error`` finding makes the command exit with status 1.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import click
import orjson
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from labeler.config import Config, load_config
from labeler.errors import ConfigError
from labeler.ops.health import BrokerUnavailable, connect_admin
from labeler.output.storage import Storage

Severity = Literal["ok", "warning", "error"]
SANE_YEARS = (2020, 2100)
"""A wall clock outside these years is wrong (an unset RTC says 1970)."""
CLOCK_WARN_S = 1.0
"""Clock skew with the broker above this is worth a warning."""


@dataclass(frozen=True, slots=True)
class Finding:
    """The outcome of one check: ``message`` says what was found and what to do."""

    check: str
    severity: Severity
    message: str


def check_settings(config: Config) -> list[Finding]:
    """Consistency of settings that each validate alone but not together."""
    k = config.kafka
    out: list[Finding] = []
    sasl = k.security_protocol.startswith("SASL_")
    if sasl and not k.sasl_mechanism:
        out.append(Finding("config", "error", f"kafka.security_protocol is {k.security_protocol} "
                           "but kafka.sasl_mechanism is not set (SCRAM-SHA-512, SCRAM-SHA-256 "
                           "or PLAIN)"))
    if k.sasl_mechanism and not sasl:
        out.append(Finding("config", "error", f"kafka.sasl_mechanism is set but "
                           f"kafka.security_protocol is {k.security_protocol}: the credentials "
                           "would not be used; set SASL_SSL (or SASL_PLAINTEXT)"))
    if k.sasl_mechanism and (not k.sasl_username or k.sasl_password is None):
        out.append(Finding("config", "error", "kafka.sasl_username and kafka.sasl_password "
                           "(or LOGLABEL_KAFKA__SASL_PASSWORD) are needed with "
                           f"{k.sasl_mechanism}"))
    if k.security_protocol == "SASL_PLAINTEXT":
        out.append(Finding("config", "warning", "SASL_PLAINTEXT sends data (and PLAIN "
                           "passwords) unencrypted: use SASL_SSL outside a trusted network"))
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(k, key)
        if value and not Path(value).is_file():
            out.append(Finding("config", "error", f"kafka.{key} {value!r} is not a readable file"))
    if k.heartbeat_interval_ms * 3 > k.session_timeout_ms:
        out.append(Finding("config", "warning", f"kafka.heartbeat_interval_ms "
                           f"({k.heartbeat_interval_ms}) should be at most a third of "
                           f"kafka.session_timeout_ms ({k.session_timeout_ms})"))
    if not out:
        out.append(Finding("config", "ok", "configuration is valid"))
    return out


def _describe(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int | None]:
    """Partition count per topic; ``None`` for a topic that does not exist; raises
    ``PermissionError`` naming a topic this client may not describe."""
    out: dict[str, int | None] = {}
    for d in admin.describe_topics(list(dict.fromkeys(topics))):
        code = d.get("error_code", 0)
        if code == 29:  # TOPIC_AUTHORIZATION_FAILED
            raise PermissionError(d["name"])
        out[d["name"]] = None if code else len(d["partitions"])
    return out


def check_topics(admin: KafkaAdminClient, config: Config) -> list[Finding]:
    """The input topics exist and the labeler's inputs are co-partitioned; loglabel's own
    topics may be missing (they are created at start)."""
    t = config.topics
    always = config.ingest.repartition == "always"
    own = [t.dead_letter, t.drift] + ([t.rekeyed_predictions, t.rekeyed_outcomes] if always
                                      else [])
    try:
        counts = _describe(admin, [t.predictions, t.outcomes, *own])
    except PermissionError as exc:
        who = config.kafka.sasl_username or "this client"
        return [Finding("topics", "error", f"not authorized to describe {exc.args[0]!r}: grant "
                        f"DESCRIBE and READ on loglabel's topics to {who}")]
    out: list[Finding] = []
    for key, topic in (("predictions", t.predictions), ("outcomes", t.outcomes)):
        if counts.get(topic) is None:
            out.append(Finding("topics", "error", f"topic {topic!r} (topics.{key}) does not "
                               "exist: create the topics with `loglabel topics create "
                               f"--config FILE` or fix topics.{key}"))
        else:
            out.append(Finding("topics", "ok", f"{topic!r} (topics.{key}) has "
                               f"{counts[topic]} partitions"))
    p, o = counts.get(t.predictions), counts.get(t.outcomes)
    if p is None or o is None:
        return out
    group = config.kafka.group_id
    if not always:
        if p != o:
            small = t.outcomes if o < p else t.predictions
            out.append(Finding("co-partitioning", "error", f"{t.predictions!r} has {p} "
                               f"partitions but {t.outcomes!r} has {o}: they are not "
                               "co-partitioned, so a prediction and its outcomes reach "
                               f"different workers; raise {small!r} to {max(p, o)} partitions "
                               "(Kafka's kafka-topics.sh --alter, or the AdminClient) or set "
                               'ingest.repartition = "always"'))
        else:
            out.append(Finding("co-partitioning", "ok", f"both input topics have {p} "
                               f"partitions: run at most {p} workers in group {group!r}"))
    else:
        expected = config.ingest.internal_partitions or p
        internal = {name: counts.get(name) or expected
                    for name in (t.rekeyed_predictions, t.rekeyed_outcomes)}
        ip, io = internal.values()
        if ip != io:
            out.append(Finding("co-partitioning", "error", f"internal topics "
                               f"{t.rekeyed_predictions!r} ({ip}) and {t.rekeyed_outcomes!r} "
                               f"({io}) would not be co-partitioned: recreate them with equal "
                               "partition counts (ingest.internal_partitions)"))
        else:
            out.append(Finding("co-partitioning", "ok", f"ingest re-keys into {ip} partitions: "
                               f"run at most {max(p, o)} ingest workers (group "
                               f"{group + '-ingest'!r}) and {ip} labeling workers "
                               f"(group {group!r})"))
    for topic in own:
        if counts.get(topic) is None:
            out.append(Finding("topics", "ok", f"{topic!r} will be created at start"))
    return out


def _quorum_time(answer: dict[str, Any]) -> float | None:
    """The broker-side time in a DescribeQuorum answer: the leader reports its own fetch
    and catch-up timestamps as its current time (KIP-836)."""
    stamps = [
        max(r.get("last_fetch_timestamp", -1), r.get("last_caught_up_timestamp", -1))
        for topic in answer.get("topics", ()) for part in topic.get("partitions", ())
        for r in (*part.get("current_voters", ()), *part.get("observers", ()))
    ]
    best = max(stamps, default=-1)
    return best / 1000 if best > 0 else None


def check_clock(admin: KafkaAdminClient | None, config: Config,
                clock: Callable[[], float] = time.time) -> list[Finding]:
    """A plausible date, and (KRaft clusters that allow DescribeQuorum) agreement with the
    broker. Event time drives the windows, but an idle partition's watermark follows the
    wall clock: a skew beyond ``join.allowed_lateness_s`` closes windows early or late."""
    now = clock()
    year = datetime.fromtimestamp(now, timezone.utc).year
    if not SANE_YEARS[0] <= year < SANE_YEARS[1]:
        return [Finding("clock", "error", f"the system clock says year {year}: set the time "
                        "(enable NTP)")]
    if admin is None:
        return [Finding("clock", "ok", f"system clock plausible (year {year})")]
    t0 = clock()
    try:
        answer = admin.describe_metadata_quorum()
    except (KafkaError, OSError) as exc:
        return [Finding("clock", "warning", f"cannot read the broker's clock ({exc}); the "
                        "system date is plausible: make sure NTP runs on every host")]
    t1 = clock()
    broker = _quorum_time(answer)
    if broker is None:
        return [Finding("clock", "warning", "the broker did not report its time; make sure NTP "
                        "runs on every host")]
    # The broker's instant lies between our t0 and t1: skew beyond that window is real.
    skew = broker - (t0 + t1) / 2
    excess = max(0.0, abs(skew) - (t1 - t0) / 2)
    limit = max(config.join.allowed_lateness_s, CLOCK_WARN_S)
    text = (f"this host's clock is {abs(skew):.1f} s "
            f"{'behind' if skew > 0 else 'ahead of'} the broker's")
    if excess > limit:
        return [Finding("clock", "error", f"{text}, more than join.allowed_lateness_s "
                        f"({config.join.allowed_lateness_s:g} s): windows of idle partitions "
                        "would close at the wrong time; synchronize clocks (NTP)")]
    if excess > CLOCK_WARN_S:
        return [Finding("clock", "warning", f"{text}: synchronize clocks (NTP)")]
    return [Finding("clock", "ok", f"agrees with the broker's ({skew:+.3f} s, measured over a "
                    f"{t1 - t0:.3f} s round trip)")]


def check_output(config: Config) -> list[Finding]:
    """``output.path`` accepts a durable write (a dot-file, invisible to Parquet readers)."""
    path = config.output.path
    probe = f".loglabel-doctor-{uuid.uuid4().hex}"
    try:
        storage = Storage(path)
        storage.write(probe, b"probe")
        storage.fs.delete_file(storage.path(probe))
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return [Finding("output", "error", f"output.path {path!r} is not writable ({reason}): "
                        "fix its permissions or set output.path")]
    message = f"output.path {path!r} is writable (checkpoints go to _checkpoints/ under it)"
    layout = _layout_finding(storage, config)
    if layout is not None:
        return [layout]
    if storage.local:
        free = shutil.disk_usage(storage.root).free
        message += f"; {free / 2**30:.1f} GiB free"
        if free < 2**30:
            return [Finding("output", "warning", message + ": less than 1 GiB left")]
    return [Finding("output", "ok", message)]


SAMPLE_PER_TOPIC = 20
"""Recent messages of each raw topic that ``check_messages`` decodes."""
MAPPING_HINTS = {
    "bad_type": "check [fields] (a nested features object in a list is 'path.*') and the "
                "schema",
    "missing_id": "check fields.join_id",
    "missing_prediction": "check fields.prediction",
    "missing_time": "check fields.event_time",
    "bad_time": "check fields.event_time and its unit",
    "past_time": "check the time field's unit (or ingest.min_time)",
    "not_json": "check the forwarder's format (JSON) and ingest.*_format",
    "logstash_plain_codec": "set codec => json in Logstash's kafka output",
}
"""What to look at when sampled messages dead-letter with a reason."""


def check_messages(config: Config, timeout_s: float) -> list[Finding]:
    """Decode the latest ``SAMPLE_PER_TOPIC`` messages of each raw topic as ``run`` would:
    a mapping that dead-letters them is named with the reason (never a value: the
    details are the dead letters' own, redacted under PII policies)."""
    from kafka import TopicPartition

    from ingest.kafka.clients import new_consumer
    from ingest.records import DeadLetter
    from labeler.ops.messages import decoders

    try:
        decoder = decoders(config)
    except ConfigError as exc:
        return [Finding("messages", "error", f"not checked: {exc}")]
    topics = (("prediction", config.topics.predictions), ("outcome", config.topics.outcomes))
    consumer = new_consumer(config.kafka.client_options(), enable_auto_commit=False,
                            group_id=None, request_timeout_ms=int(timeout_s * 1000) + 1000)
    out: list[Finding] = []
    try:
        for kind, topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                continue  # check_topics reports it
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            ends = consumer.end_offsets(tps)
            starts = consumer.beginning_offsets(tps)
            each = max(1, SAMPLE_PER_TOPIC // len(tps))
            wanted = 0
            for tp in tps:
                first = max(starts[tp], ends[tp] - each)
                consumer.seek(tp, first)
                wanted += ends[tp] - first
            values: list[bytes | None] = []
            deadline = time.monotonic() + timeout_s
            while len(values) < wanted and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    values.extend(r.value for r in records)
            if not values:
                out.append(Finding("messages", "ok", f"{topic}: no message yet to check the "
                                   "mapping with (try `loglabel check-message`)"))
                continue
            reasons: dict[str, list[str]] = {}
            for value in values:
                verdict = decoder[kind].decode(value)  # type: ignore[index]
                if isinstance(verdict, DeadLetter):
                    reasons.setdefault(verdict.reason, []).append(verdict.detail)
            out.append(_mapping_finding(topic, kind, len(values), reasons))
    except (KafkaError, OSError) as exc:
        out.append(Finding("messages", "warning", f"could not sample the topics: {exc}"))
    finally:
        consumer.close()
    return out


def _mapping_finding(topic: str, kind: str, n: int, reasons: dict[str, list[str]]) -> Finding:
    dead = sum(len(d) for d in reasons.values())
    if not dead:
        return Finding("messages", "ok", f"{topic}: the latest {n} {kind}s decode with this "
                       "config")
    parts = []
    for reason, details in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        hint = MAPPING_HINTS.get(reason)
        parts.append(f"{reason} x{len(details)} ({details[0]}" + (f"; {hint})" if hint else ")"))
    severity: Severity = "error" if dead == n else "warning"
    return Finding("messages", severity, f"{topic}: {dead} of the latest {n} {kind}s would be "
                   f"dead-lettered: " + "; ".join(parts))


def _layout_finding(storage: Storage, config: Config) -> Finding | None:
    """A warning when the dataset keeps another layout than ``output.partition_by``."""
    from labeler.output.dataset_schema import SchemaError, load
    from labeler.output.shards import PARTITIONINGS

    try:
        schema = load(storage)
    except (SchemaError, OSError) as exc:
        return Finding("output", "error", f"the dataset schema under output.path cannot be "
                       f"read: {exc}")
    wanted = PARTITIONINGS[config.output.partition_by]
    if schema.version and schema.partition_by != wanted:
        kept = "hour" if "hour" in schema.partition_by else "date"
        return Finding("output", "warning", f"the dataset at output.path is partitioned by "
                       f"{kept} (its _schema/), not output.partition_by = "
                       f"{config.output.partition_by!r}: its layout is kept; set "
                       f"partition_by = {kept!r} or write to a new output.path")
    return None


def doctor(config: Config, timeout_s: float = 10.0,
           clock: Callable[[], float] = time.time) -> list[Finding]:
    """Run every check; never raises for a failed check (it becomes an ``error`` finding).

    Bounded in time: the broker gets ``timeout_s`` to answer the bootstrap.
    """
    findings = check_settings(config)
    admin: KafkaAdminClient | None = None
    try:
        admin = connect_admin(config.kafka, timeout_s)
    except BrokerUnavailable as exc:
        findings.append(Finding("broker", "error", str(exc)))
    except ConfigError as exc:  # no client can start (a SASL password missing)
        findings.append(Finding("broker", "error", f"not checked: {exc}"))
    try:
        if admin is not None:
            cluster = admin.describe_cluster()
            brokers = ", ".join(f"{b['host']}:{b['port']}" for b in cluster["brokers"])
            findings.append(Finding("broker", "ok", f"cluster {cluster['cluster_id']} answers "
                                    f"({len(cluster['brokers'])} broker(s): {brokers})"))
            findings.extend(check_topics(admin, config))
            findings.extend(check_messages(config, timeout_s))
        findings.extend(check_clock(admin, config, clock))
    except (KafkaError, OSError) as exc:
        findings.append(Finding("broker", "error", f"the broker stopped answering: {exc}"))
    finally:
        if admin is not None:
            admin.close()
    findings.extend(check_output(config))
    return findings


@contextlib.contextmanager
def _quiet_kafka() -> Iterator[None]:
    """kafka-python logs every retry; the findings already say what went wrong."""
    logger = logging.getLogger("kafka")
    null = logging.NullHandler()
    propagate = logger.propagate
    logger.addHandler(null)
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = propagate
        logger.removeHandler(null)


@click.command("doctor")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="TOML config file (environment LOGLABEL_SECTION__KEY overrides it).")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the broker.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per finding.")
def doctor_command(config_path: str | None, timeout_s: float, as_json: bool) -> None:
    """Check config, broker, topics, clock and output path; exit 1 on any error."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        findings = [Finding("config", "error", str(exc))]
    else:
        if config_path is None:
            click.echo(f"warning: no --config given: checking the built-in defaults "
                       f"(kafka.bootstrap_servers={config.kafka.bootstrap_servers}, topics "
                       f"{config.topics.predictions}/{config.topics.outcomes}) and LOGLABEL_* "
                       "variables", err=True)
        with _quiet_kafka():
            findings = doctor(config, timeout_s)
    for f in findings:
        if as_json:
            click.echo(orjson.dumps({"check": f.check, "severity": f.severity,
                                     "message": f.message}).decode())
        else:
            click.echo(f"{f.severity:<7} {f.check:<15} {f.message}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    if not as_json:
        click.echo(f"doctor: {errors} error(s), {warnings} warning(s)", err=True)
    if errors:
        click.get_current_context().exit(1)


if __name__ == "__main__":
    doctor_command()
