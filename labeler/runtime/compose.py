"""Composition: builds the stages from the config and runs them.

``stage = "all"`` (the default) runs everything in one process: with
``ingest.repartition = "always"`` the ingest stage runs in a thread beside the
labeling worker. For scale, run ``--stage ingest`` and ``--stage label`` as
separate consumer groups, each with up to one worker per partition.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Literal, Protocol

from ingest.kafka.broker import check_broker
from ingest.kafka.topics import ensure_topics, partition_counts
from ingest.repartition.stage import Repartitioner, Route, TimeRules
from ingest.wire.decode import Decoder
from ingest.wire.schema import Schema, SchemaEnforcer
from labeler.config import Config
from labeler.errors import ConfigError
from labeler.logs import log
from labeler.runtime import collector
from labeler.runtime.drift_hub import build_hub
from labeler.runtime.worker import Worker

Stage = Literal["all", "ingest", "label"]


class Closeable(Protocol):
    def close(self) -> None: ...


# Starts whatever serves a worker's status (the CLI passes the metrics endpoint).
Serve = Callable[[Worker], "Closeable | None"]


def run_pipeline(config: Config, until_idle: float | None = None, drain: bool = False,
                 install_signals: bool = True, stage: Stage = "all",
                 serve: Serve | None = None) -> Counter[str]:
    """Run the chosen stage(s) until stopped or idle; return the counters.

    ``serve(worker)`` starts an endpoint beside the labeling worker (the CLI
    passes the metrics and health server); it is closed when the run ends.
    """
    counters: Counter[str] = Counter()
    repartition = config.ingest.repartition == "always"
    if stage == "ingest" and not repartition:
        raise ConfigError('--stage ingest needs ingest.repartition = "always"')
    ingest = build_ingest(config, counters) if repartition and stage != "label" else None
    if stage == "ingest" and ingest is not None:
        if install_signals:
            import signal

            signal.signal(signal.SIGTERM, ingest.stop)
            signal.signal(signal.SIGINT, ingest.stop)
        collector.tune()  # once per process: see labeler.runtime.collector
        return ingest.run(until_idle=until_idle)
    worker = build_worker(config, counters)
    if install_signals:
        worker.install_signal_handlers()
    server = serve(worker) if serve is not None else None
    beside = IngestThread(ingest, until_idle, lambda: worker.stopped) if ingest else None
    try:
        counters = worker.run(until_idle=until_idle, drain=drain, upstream=beside)
    finally:
        if beside is not None:
            beside.stop()
        if server is not None:
            server.close()
    if beside is not None and beside.failure() is not None:
        raise beside.failure()  # type: ignore[misc]  # it failed after the worker's last look
    return counters


class IngestThread:
    """The ingest stage on its own thread beside the worker, supervised: the worker
    polls ``failure()`` and ends the run with it (the process exits non-zero), so a
    dead ingest stage never leaves a healthy-looking worker with nothing to read."""

    def __init__(self, stage: Repartitioner, until_idle: float | None,
                 should_stop: Callable[[], bool]) -> None:
        self.stage = stage
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="loglabel-ingest", daemon=True,
                                        args=(until_idle, should_stop))
        self._thread.start()

    def _run(self, until_idle: float | None, should_stop: Callable[[], bool]) -> None:
        try:
            self.stage.run(until_idle=until_idle, should_stop=should_stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the worker, which re-raises it
            log("ingest.failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            self._failure = exc

    def done(self) -> bool:
        """Ended, and without a failure (a failed stage is never "done")."""
        return not self._thread.is_alive() and self._failure is None

    def failure(self) -> BaseException | None:
        return self._failure

    def stop(self) -> None:
        self.stage.stop()
        self._thread.join(timeout=60)


def _raw_partitions(config: Config) -> dict[str, int]:
    check_broker(config.kafka, timeout_s=10)  # a clear error (auth, address) before anything
    topics = config.topics
    counts = partition_counts(config.kafka.client_options(), [topics.predictions, topics.outcomes])
    for topic in (topics.predictions, topics.outcomes):
        if topic not in counts:
            raise ConfigError(f"topic {topic!r} does not exist: create it with "
                              "`loglabel topics create --config FILE` (or set topics.*)")
    return counts


def schema_enforcer(config: Config) -> SchemaEnforcer:
    """The prediction schema check: given per model in config, else inferred."""
    schemas = {
        model: Schema(features=dict(sc.features), prediction=dict(sc.prediction),
                      required=frozenset(sc.required))
        for model, sc in config.ingest.schemas.items()
    }
    default = schemas.pop("*", None)
    return SchemaEnforcer(schemas, default=default, infer_from=config.ingest.schema_infer_from)


def build_ingest(config: Config, counters: Counter[str] | None = None) -> Repartitioner:
    """The ingest stage, with its internal topics created (co-partitioned) if missing."""
    pii = config.pii.policy()  # a hash policy without its key fails here, before any broker call
    topics = config.topics
    counts = _raw_partitions(config)
    partitions = config.ingest.internal_partitions or counts[topics.predictions]
    options = config.kafka.client_options()
    ensure_topics(options, [topics.rekeyed_predictions, topics.rekeyed_outcomes], partitions,
                  config.ingest.internal_replication)
    ensure_topics(options, [topics.dead_letter], partitions)
    counters = counters if counters is not None else Counter()
    routes = [
        Route(topics.predictions, topics.rekeyed_predictions,
              Decoder("prediction", config.fields, config.ingest.prediction_format, counters,
                      schema=schema_enforcer(config), pii=pii,
                      max_future_s=config.ingest.max_future_s or None,
                      min_time=config.ingest.min_epoch())),
        Route(topics.outcomes, topics.rekeyed_outcomes,
              Decoder("outcome", config.fields, config.ingest.outcome_format, counters,
                      pii=pii, max_future_s=config.ingest.max_future_s or None,
                      min_time=config.ingest.min_epoch())),
    ]
    k = config.kafka
    return Repartitioner(
        options, f"{k.group_id}-ingest", routes, topics.dead_letter, counters,
        flush_interval=config.ingest.flush_interval_s, max_poll_records=k.max_poll_records,
        time_rules=TimeRules(lateness=config.join.allowed_lateness_s,
                             votes=config.join.frontier_votes,
                             ahead_s=config.join.window_s + config.join.grace_s,
                             idle_after=config.join.idle_after_s),
        status_interval=config.logging.status_interval_s,
        consumer_options={"session_timeout_ms": k.session_timeout_ms,
                          "heartbeat_interval_ms": k.heartbeat_interval_ms},
    )


def build_worker(config: Config, counters: Counter[str] | None = None) -> Worker:
    """Check the input topics, create loglabel's own, and build the labeling worker."""
    config.pii.policy()  # a hash policy without its key fails here, before any broker call
    options = config.kafka.client_options()
    topics = config.topics
    if config.ingest.repartition == "always":
        build_ingest_topics = [topics.rekeyed_predictions, topics.rekeyed_outcomes]
        partitions = (config.ingest.internal_partitions
                      or _raw_partitions(config)[topics.predictions])
        ensure_topics(options, build_ingest_topics, partitions, config.ingest.internal_replication)
        counts = partition_counts(options, build_ingest_topics)
        inputs = tuple(build_ingest_topics)
        raw = _raw_partitions(config)
    else:
        counts = raw = _raw_partitions(config)
        inputs = (topics.predictions, topics.outcomes)
    if counts[inputs[0]] != counts[inputs[1]]:
        raise ConfigError(
            f"topics {inputs[0]!r} ({counts[inputs[0]]} partitions) and {inputs[1]!r} "
            f"({counts[inputs[1]]}) are not co-partitioned; "
            + ('set ingest.repartition = "always"' if inputs[0] == topics.predictions
               else "recreate the internal topics with equal partition counts")
        )
    ensure_topics(options, [topics.dead_letter, topics.drift], counts[inputs[0]])
    log("pipeline.inputs", topics=list(inputs), partitions=counts[inputs[0]],
        repartition=config.ingest.repartition)
    schema = None if config.ingest.repartition == "always" else schema_enforcer(config)
    counters = counters if counters is not None else Counter()
    # The hub's schema watch dates schema changes by the record, in both stage layouts.
    hub = build_hub(config.drift, topics.drift, counters, config.labels,
                    schema=schema_enforcer(config))
    return Worker(config, drift=hub, counters=counters, schema=schema,
                  raw_partitions={t: raw[t] for t in (topics.predictions, topics.outcomes)})
