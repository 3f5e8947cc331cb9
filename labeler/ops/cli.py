"""The ``loglabel`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from ingest.errors import LoglabelError
from labeler.config import Config, load_config
from labeler.logs import log, setup
from labeler.ops.failures import explain
from labeler.tools.simulate import ENVELOPES, TrafficSpec, parse_start


def load_or_fail(path: str | None) -> Config:
    """The config at ``path``; a ``ClickException`` naming the problem if it is invalid.

    Without a path, built-in defaults (and the environment) are used, and a
    warning on stderr says which broker and topics that means, so nobody
    talks to 127.0.0.1:9092 without knowing it.
    """
    try:
        config = load_config(path)
    except LoglabelError as exc:  # config, broker unreachable, bad credentials
        raise click.ClickException(str(exc)) from None
    if path is None:
        click.echo(f"warning: no --config given: using built-in defaults "
                   f"(kafka.bootstrap_servers={config.kafka.bootstrap_servers}, "
                   f"topics.predictions={config.topics.predictions}, "
                   f"topics.outcomes={config.topics.outcomes}) and LOGLABEL_* variables",
                   err=True)
    return config


class _Commands(click.Group):
    """The command group: a known failure (broker down, credentials refused, topic
    missing, disk full, permission denied) ends any command with one line that
    says the fix and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - explain() says which ones are known
            message = explain(exc)
            if message is None:
                raise
            # the sentence is for people; the log keeps where it happened
            logging.getLogger("loglabel").debug("command.failed", exc_info=True,
                                                extra={"fields": {"error": str(exc)}})
            raise click.ClickException(message) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loglabel")
def cli() -> None:
    """loglabel: prediction logs in Kafka to training labels and drift alerts."""


def _require_raw_topics(config: Config) -> None:
    """Fail with the fix when the broker is unreachable or a raw topic is missing."""
    from ingest.kafka.broker import check_broker
    from ingest.kafka.topics import partition_counts

    check_broker(config.kafka, timeout_s=10)
    t = config.topics
    counts = partition_counts(config.kafka.client_options(), [t.predictions, t.outcomes])
    missing = [name for name in (t.predictions, t.outcomes) if name not in counts]
    if missing:
        raise click.ClickException(
            f"topic {', '.join(repr(m) for m in missing)} does not exist on "
            f"{config.kafka.bootstrap_servers}: create the topics with `loglabel topics "
            "create --config FILE`, or fix topics.predictions / topics.outcomes")


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              required=True,
              help="TOML config file (environment LOGLABEL_SECTION__KEY overrides it).")
@click.option("--until-idle", type=float, default=None, metavar="SECONDS",
              help="Exit cleanly after this many seconds without input.")
@click.option("--drain", is_flag=True, help="Close every window at exit (backfills, tests).")
@click.option("--stage", type=click.Choice(["all", "ingest", "label"]), default="all",
              show_default=True, help="Run every stage, or only one (for scale-out).")
def run(config_path: str, until_idle: float | None, drain: bool, stage: str) -> None:
    """Consume, label, write Parquet shards and watch drift until stopped."""
    from labeler.ops.metrics import serve_worker
    from labeler.runtime.compose import run_pipeline

    config = load_or_fail(config_path)
    setup(config.logging.level, config.logging.format)
    _require_raw_topics(config)
    try:
        counters = run_pipeline(
            config, until_idle=until_idle, drain=drain, stage=stage,  # type: ignore[arg-type]
            serve=lambda worker: serve_worker(config.metrics, config.kafka, worker))
    except LoglabelError as exc:  # config, broker unreachable, bad credentials
        raise click.ClickException(str(exc)) from None
    log("worker.stopped", labeled=counters["labeled"], rows_written=counters["rows_written"])


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Config whose kafka, topics and join.window_s are used.")
@click.option("--count", type=int, default=10_000, show_default=True,
              help="Number of predictions.")
@click.option("--rate", type=float, default=0.0, show_default=True,
              help="Messages per second (0: as fast as possible).")
@click.option("--duration", type=float, default=None,
              help="Seconds to run at --rate (sets --count).")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--envelope", type=click.Choice(ENVELOPES), default="fluentd", show_default=True)
@click.option("--partitions", type=int, default=4, show_default=True,
              help="Partitions of the raw topics if they must be created.")
@click.option("--partitioner", type=click.Choice(["murmur2", "crc32", "none"]),
              default="murmur2", show_default=True,
              help="Key hashing: murmur2 (Java clients), crc32 (Fluentd default), none (no key).")
@click.option("--click-rate", type=float, default=0.1, show_default=True)
@click.option("--spacing", type=float, default=0.01, show_default=True,
              help="Event-time seconds between predictions.")
@click.option("--start", "start", default=None, metavar="TIME",
              help="Event time of the first prediction: ISO-8601 or epoch seconds "
                   "(default: the run's last event is at most a minute from now).")
@click.option("--drift-at", type=float, default=None,
              help="Fraction of the run where f00 shifts and the click rate changes.")
@click.option("--truth", type=click.Path(dir_okay=False), default=None,
              help="Write the exact expected labels (CSV, or Parquet by suffix).")
def simulate(config_path: str | None, count: int, rate: float, duration: float | None, seed: int,
             envelope: str, partitions: int, partitioner: str, click_rate: float,
             spacing: float, start: str | None, drift_at: float | None,
             truth: str | None) -> None:
    """Send realistic prediction and click traffic into the raw topics."""
    from ingest.kafka.broker import check_broker
    from labeler.join.rules import join_rules
    from labeler.tools.produce import send_traffic

    config = load_or_fail(config_path)
    try:
        first = parse_start(start)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--start") from None
    if duration is not None:
        if rate <= 0:
            raise click.UsageError("--duration needs a --rate")
        count = int(duration * rate / (1 + click_rate))
    check_broker(config.kafka, timeout_s=10)  # the same clear error as `run` (auth, address)
    spec = TrafficSpec(count=count, seed=seed, start=first, spacing=spacing,
                       click_rate=click_rate,
                       window=config.join.window_s, early_tolerance=config.join.early_tolerance_s,
                       max_disorder=min(2.0, config.join.allowed_lateness_s / 2),
                       drift_at=drift_at)
    rules = join_rules(config)
    sent = send_traffic(config.kafka.client_options(), spec, config.topics.predictions,
                        config.topics.outcomes, envelope=envelope, rate=rate,
                        partitions=partitions, partitioner=partitioner, truth=truth,
                        labels=rules.labels)
    click.echo(f"sent {sent['prediction']} predictions and {sent['outcome']} outcomes"
               + (f"; truth in {truth}" if truth else ""))


@cli.command("drift-eval")
@click.option("--size", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: seconds; full: 10^6 stationary events per stream (minutes).")
@click.option("--only", multiple=True, help="Scenario name substring (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ours-only", is_flag=True, help="Skip the raw River baselines.")
def drift_eval(size: str, only: tuple[str, ...], seed: int, ours_only: bool) -> None:
    """Run every drift monitor over streams with known change points; print the table (and,
    with the +0.5 sigma mean shift in it, the delays an ideal detector needs)."""
    from drift.evaluation.evaluate import format_table, run_evaluation

    rows = run_evaluation(size, only=list(only) or None, seed=seed,
                          river_baselines=not ours_only)
    click.echo(format_table(rows))
    if any(r.scenario == "mean shift 0.5 sd" for r in rows):
        from drift.evaluation.limits import limit_lines

        for line in limit_lines():
            click.echo(line)


@cli.command()
@click.argument("dataset", type=click.Path(exists=True))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True,
              help="Where to write the baseline profile (JSON).")
@click.option("--prefix", default=None,
              help="Profile the columns with this prefix, named without it "
                   "(default: feat_ for loglabel shards, else every column).")
@click.option("--model", default=None, help="Only the rows of this model (loglabel shards).")
def profile(dataset: str, output: str, prefix: str | None, model: str | None) -> None:
    """Build a baseline profile (schema and statistics) from training data in Parquet.

    DATASET is loglabel's own shards or any Parquet file or directory. Point
    ``drift.baseline_path`` at the result to get training/serving skew reports.
    """
    import pandas as pd

    from drift.baseline.profile import build_profile, save_profile
    from labeler.output.dataset_schema import reader_schema

    try:  # a loglabel dataset: every column, also one added after the first file
        schema = reader_schema(dataset, model) if Path(dataset).is_dir() else None
    except LoglabelError:
        schema = None
    frame = pd.read_parquet(dataset, schema=schema if schema is not None and schema.names
                            else None)
    if model is not None and "model" in frame.columns:
        frame = frame[frame["model"].astype(str) == model]
    if prefix is None and any(str(c).startswith("feat_") for c in frame.columns):
        prefix = "feat_"
    built = build_profile(frame, prefix=prefix, model=model)
    save_profile(built, output)
    click.echo(f"profiled {len(frame)} rows, {len(built.get('features', {}))} features -> {output}")


@cli.command("schema")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print the schema file's JSON.")
def schema_command(dataset: str, as_json: bool) -> None:
    """Print the dataset schema of DATASET (an output path or URI): each model's
    columns and types, and the partition keys, as every worker writes them."""
    import json

    from labeler.output.dataset_schema import PARTITION_TYPES, load
    from labeler.output.storage import Storage

    current = load(Storage(dataset))
    if current.version == 0:
        raise click.ClickException(f"{dataset} has no dataset schema (_schema/): nothing "
                                   f"was written there yet, or not by this loglabel version")
    if as_json:
        click.echo(json.dumps(current.to_json(), indent=2))
        return
    keys = ", ".join(f"{k} ({PARTITION_TYPES[k]})" for k in current.partition_by)
    click.echo(f"dataset {dataset}: schema version {current.version}")
    click.echo(f"partition keys (in the path): {keys}")
    for model, columns in sorted(current.models.items()):
        click.echo(f"model {model}: {len(columns)} columns")
        width = max(len(c) for c in columns)
        for column, kind in columns.items():
            note = "  (only nulls so far: in no file yet)" if kind == "null" else ""
            click.echo(f"  {column:<{width}}  {kind}{note}")


def _kafka_options(config_path: str | None, bootstrap: str | None) -> tuple[Config, dict[str, Any]]:
    """The config (for topic names) and client options, with ``--bootstrap`` winning."""
    config = load_config(config_path) if config_path else load_config(None)
    options = config.kafka.client_options()
    if bootstrap:
        options["bootstrap_servers"] = bootstrap.split(",")
    return config, options


@cli.command()
@click.option("--dataset", required=True, type=click.Path(exists=True),
              help="The labeled dataset (output.path), as it is now: shards being written "
                   "are read as far as they are published.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (one self-contained file, works offline).")
@click.option("--drift-log", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The run's JSON log: its drift events and status lines.")
@click.option("--drift-topic", default=None, help="Read drift events from this topic.")
@click.option("--dead-letter-topic", default=None,
              help="Read dead letters (reason, arrival time) from this topic.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Config for the Kafka connection (with the topic options).")
@click.option("--bootstrap", default=None, metavar="H:P",
              help="Broker to read the topics from (overrides the config's).")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A baseline profile (loglabel profile) to compare features with, instead "
                   "of each model's warm-up rows.")
@click.option("--window", type=int, default=1000, show_default=True,
              help="Rows in the warm-up reference and in the 'now' window.")
@click.option("--label", default=None, help="The boolean label to draw (default: the first).")
@click.option("--score", default=None, help="The score to draw (default: the first numeric "
                                            "prediction field).")
def report(dataset: str, output: str, drift_log: str | None, drift_topic: str | None,
           dead_letter_topic: str | None, config_path: str | None, bootstrap: str | None,
           baseline: str | None, window: int, label: str | None, score: str | None) -> None:
    """Write an HTML report of labels, drift events, features and dead letters."""
    from labeler.ops.report import make_report

    options: dict[str, Any] | None = None
    if drift_topic or dead_letter_topic:
        try:
            _, options = _kafka_options(config_path, bootstrap)
        except LoglabelError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        path = make_report(dataset, output, drift_log=drift_log, drift_topic=drift_topic,
                           dead_letter_topic=dead_letter_topic, kafka_options=options,
                           baseline=baseline, window=window, label=label, score=score)
    except LoglabelError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"report written to {path}")


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Config whose kafka section and topics.drift / "
                                 "topics.dead_letter are used.")
@click.option("--bootstrap", default=None, metavar="H:P", help="Overrides the config's broker.")
@click.option("--drift-topic", default=None, help="Overrides topics.drift.")
@click.option("--dead-letters", is_flag=True, help="Also print the dead-letter topic's messages.")
@click.option("--dead-letter-topic", default=None, help="Overrides topics.dead_letter.")
@click.option("--from-beginning", is_flag=True, help="Start at the topics' beginning, "
                                                     "not their end.")
@click.option("--max-events", type=int, default=None, help="Stop after this many lines.")
@click.option("--timeout", "timeout_s", type=float, default=None, metavar="SECONDS",
              help="Stop after this many seconds without a message.")
@click.option("--colour/--no-colour", default=None,
              help="ANSI colours (default: when stdout is a terminal).")
def tail(config_path: str | None, bootstrap: str | None, drift_topic: str | None,
         dead_letters: bool, dead_letter_topic: str | None, from_beginning: bool,
         max_events: int | None, timeout_s: float | None, colour: bool | None) -> None:
    """Print drift events (and dead letters) from their topics, one line each."""
    from labeler.ops.tail import tail as follow

    try:
        config, options = _kafka_options(config_path, bootstrap)
    except LoglabelError as exc:
        raise click.ClickException(str(exc)) from None
    dead = (dead_letter_topic or config.topics.dead_letter) if dead_letters else None
    tty = colour if colour is not None else sys.stdout.isatty()
    try:
        follow(options, drift_topic or config.topics.drift, dead,
               lambda line: click.echo(line, color=tty), from_beginning=from_beginning,
               max_events=max_events, timeout_s=timeout_s, colour=tty)
    except LoglabelError as exc:
        raise click.ClickException(str(exc)) from None


def _demo_report(result: dict[str, Any]) -> Any:
    """The report of a demo run: its shards, its log, its dead-letter topic."""
    from labeler.ops.report import make_report

    config = result["config"]
    return make_report(result["labels_path"], result["report_path"],
                       drift_log=result["log_path"],
                       dead_letter_topic=config.topics.dead_letter,
                       kafka_options=config.kafka.client_options())


def _register() -> None:
    from labeler.ops.doctor import doctor_command
    from labeler.ops.messages import check_message_command
    from labeler.ops.topics import topics_command
    from labeler.tools import demo
    from labeler.tools.bench import bench_command
    from labeler.tools.bench_state import bench_state_command, phase_command
    from labeler.tools.demo import demo_command

    cli.add_command(bench_command)
    cli.add_command(bench_state_command)
    cli.add_command(phase_command)
    cli.add_command(demo_command)
    demo.REPORTER = _demo_report
    cli.add_command(doctor_command)
    cli.add_command(check_message_command)
    cli.add_command(topics_command)


_register()


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
