"""Composition: builds the stages from the config and runs them."""

from __future__ import annotations

from collections import Counter

from ingest.kafka_io import ensure_topics, partition_counts
from labeler.config import Config
from labeler.errors import ConfigError
from labeler.worker import Worker


def run_pipeline(config: Config, until_idle: float | None = None, drain: bool = False,
                 install_signals: bool = True) -> Counter[str]:
    """Run the labeling worker (with drift monitoring) until stopped or idle."""
    worker = build_worker(config)
    if install_signals:
        worker.install_signal_handlers()
    return worker.run(until_idle=until_idle, drain=drain)


def build_worker(config: Config) -> Worker:
    """Check the topics, create loglabel's own, and build the worker and its monitors."""
    options = config.kafka.client_options()
    topics = config.topics
    counts = partition_counts(options, [topics.predictions, topics.outcomes])
    for topic in (topics.predictions, topics.outcomes):
        if topic not in counts:
            raise ConfigError(f"topic {topic!r} does not exist (topics.* in the config)")
    if counts[topics.predictions] != counts[topics.outcomes]:
        raise ConfigError(
            f"topics {topics.predictions!r} ({counts[topics.predictions]} partitions) and "
            f"{topics.outcomes!r} ({counts[topics.outcomes]}) are not co-partitioned; "
            "set ingest.repartition = \"always\""
        )
    ensure_topics(options, [topics.dead_letter, topics.drift], counts[topics.predictions])
    return Worker(config)
