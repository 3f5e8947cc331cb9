"""``loglabel topics create``: every topic a config needs, so a new deployment can start.

The raw topics (``topics.predictions``, ``topics.outcomes``) are created with
the same partition count, so they are co-partitioned; the dead-letter and
drift topics with it too; with ``ingest.repartition = "always"`` the two
internal re-keyed topics with ``ingest.internal_partitions`` (0: the same
count) and ``ingest.internal_replication``. A topic that exists is left as it
is and reported with its partition count.
"""

from __future__ import annotations

import click

from ingest.kafka.broker import connect_admin
from ingest.kafka.topics import TopicSpec, TopicState, create_missing
from labeler.config import Config


def topic_specs(config: Config, partitions: int, replication: int) -> list[TopicSpec]:
    """What ``topics create`` creates for ``config``, in that order."""
    t = config.topics
    specs = [TopicSpec(name, partitions, replication)
             for name in (t.predictions, t.outcomes, t.dead_letter, t.drift)]
    if config.ingest.repartition == "always":
        internal = config.ingest.internal_partitions or partitions
        specs += [TopicSpec(name, internal, config.ingest.internal_replication)
                  for name in (t.rekeyed_predictions, t.rekeyed_outcomes)]
    return specs


def create_topics(config: Config, partitions: int, replication: int,
                  timeout_s: float = 10.0) -> list[TopicState]:
    """Create what is missing; raises ``BrokerUnavailable`` or ``TopicError`` with the cause."""
    admin = connect_admin(config.kafka, timeout_s)
    try:
        return create_missing(admin, topic_specs(config, partitions, replication))
    finally:
        admin.close()


def report(config: Config, states: list[TopicState]) -> list[str]:
    """One line per topic, and a warning when the raw topics are not co-partitioned."""
    lines = [f"{'created' if s.created else 'exists ':<8} {s.spec.name} "
             f"({s.partitions} partitions"
             + (f", replication {s.spec.replication})" if s.created else ")")
             for s in states]
    counts = {s.spec.name: s.partitions for s in states}
    p, o = counts[config.topics.predictions], counts[config.topics.outcomes]
    if p != o and config.ingest.repartition != "always":
        lines.append(f"warning  {config.topics.predictions} has {p} partitions but "
                     f"{config.topics.outcomes} has {o}: set ingest.repartition = \"always\" "
                     "or give both the same count")
    return lines


@click.group("topics")
def topics_command() -> None:
    """Create the Kafka topics a config names."""


@topics_command.command("create")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="TOML config whose [kafka], [topics] and [ingest] are used.")
@click.option("--partitions", type=click.IntRange(min=1), default=4, show_default=True,
              help="Partitions of the raw, dead-letter and drift topics.")
@click.option("--replication", type=click.IntRange(min=1), default=1, show_default=True,
              help="Replication factor of the topics (at most the number of brokers).")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the broker.")
def create_command(config_path: str, partitions: int, replication: int,
                   timeout_s: float) -> None:
    """Create the raw, dead-letter, drift (and internal) topics that do not exist yet."""
    from labeler.ops.cli import load_or_fail

    config = load_or_fail(config_path)
    for line in report(config, create_topics(config, partitions, replication, timeout_s)):
        click.echo(line)
