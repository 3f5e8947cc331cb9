"""Prometheus metrics and health endpoints of a worker, over HTTP.

``start_metrics_server`` serves, on ``[metrics] host:port``:

- ``/metrics``: Prometheus text format. ``WorkerCollector`` reads the worker's
  ``status()`` snapshot at scrape time, so every value is as fresh as the
  scrape and the hot path pays nothing.
- ``/healthz``: liveness (200, or 503 with the problems as JSON).
- ``/readyz``: readiness (same shape). See ``labeler.ops.health`` for the rules.

Counter keys map to metrics as follows (all prefixed ``loglabel_``):
``messages`` -> ``messages_total``; ``<kind>.decoded`` ->
``decoded_total{kind}``; ``<kind>.dead_letter.<reason>`` ->
``dead_letters_total{kind,reason}``; ``drift.<kind>`` (a ``DriftEvent`` kind)
-> ``drift_events_total{kind}``; ``schema_skew.<what>.<model>.<feature>`` ->
``schema_skew_total{what,model}`` (features summed, to bound the series);
the join and shard counters in ``COUNTERS`` by name; any other key ->
``events_total{event}``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from drift.events import KINDS
from ingest.wire.schema import parse_skew_key
from labeler.config import METRICS_PORT, MetricsConfig
from labeler.errors import ConfigError
from labeler.ops.health import BrokerView, HealthMonitor, StatusSource, Verdict, lags

if TYPE_CHECKING:  # types only: the worker imports nothing from here at run time
    from labeler.config import KafkaConfig
    from labeler.runtime.status import WorkerStatus
    from labeler.runtime.worker import Worker

DEFAULT_PORT = METRICS_PORT
"""The metrics port (the one OpenTelemetry's Prometheus exporter uses by default)."""
HEALTH_PATHS = {"liveness": "/healthz", "readiness": "/readyz"}

COUNTERS: Mapping[str, str] = {
    "messages": "Messages consumed from the prediction and outcome topics.",
    "labeled": "Labeled examples emitted (windows closed).",
    "positives": "Labeled examples whose first label is positive.",
    "late_outcomes": "Outcomes behind their partition's frontier by more than the lateness.",
    "outcomes_after_close": "On-time outcomes whose window had closed (a watermark moved "
                            "too early; only idleness can do it).",
    "predictions_after_close": "On-time predictions whose window had closed on arrival.",
    "ahead_of_frontier": "Records more than a window ahead of their partition's frontier.",
    "source_marks_sent": "Event-time marks written into the internal topics.",
    "ingest_stalls": "Raw partitions seen with unread input and no progress.",
    "early_expired": "Early outcomes whose prediction never came.",
    "outside_window": "Outcomes outside their prediction's attribution window.",
    "duplicate_predictions": "Prediction ids seen again and ignored.",
    "duplicate_outcomes": "Outcomes counted once after being seen again.",
    "late_predictions": "Predictions behind their partition's frontier: dead letters.",
    "partitions_fenced": "Partitions dropped because another worker had claimed them.",
    "group_rejoins": "Times a member stuck in a rebalance rebuilt its consumer.",
    "state_compactions": "State segments rewritten as one segment of the live state.",
    "shards_written": "Parquet shard files written.",
    "shard_bytes": "Bytes of Parquet shards written.",
    "rows_written": "Rows written to Parquet shards.",
    "dead_letters_sent": "Messages published to the dead-letter topic.",
    "corrections_written": "Correction rows written for late outcomes.",
    "raw_messages": "Raw messages consumed by the ingest stage.",
    "rekeyed": "Records re-keyed into the internal topics by the ingest stage.",
}


def _split(key: str) -> tuple[str, str] | None:
    head, sep, rest = key.partition(".")
    return (head, rest) if sep else None


class WorkerCollector(Collector):
    """Turns one ``status()`` snapshot (and the broker's end offsets) into metrics."""

    def __init__(self, status: StatusSource, broker: BrokerView | None = None) -> None:
        self.status = status
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        status = self.status()
        yield from self._counters(status.counters)
        yield from self._partitions(status)
        running = GaugeMetricFamily("loglabel_running", "1 while the worker loop runs.")
        running.add_metric([], 1.0 if status.running else 0.0)
        yield running
        if status.last_input_at is not None:
            idle = GaugeMetricFamily("loglabel_seconds_since_input",
                                     "Seconds since the worker last read a message.")
            idle.add_metric([], max(0.0, time.monotonic() - status.last_input_at))
            yield idle
        if self.broker is not None:
            snapshot = self.broker.snapshot()
            up = GaugeMetricFamily("loglabel_broker_up",
                                   "1 if the last end-offset request to the broker succeeded.")
            up.add_metric([], 1.0 if snapshot.error is None and snapshot.answered_at else 0.0)
            yield up
            lag = GaugeMetricFamily("loglabel_consumer_lag",
                                    "Messages not yet read, per assigned partition.",
                                    labels=["topic", "partition"])
            for (topic, index), value in sorted(lags(status, snapshot.end_offsets).items()):
                lag.add_metric([topic, str(index)], float(value))
            yield lag

    def _counters(self, counters: Mapping[str, int]) -> Iterator[Metric]:
        named = {name: CounterMetricFamily(f"loglabel_{name}", text)
                 for name, text in COUNTERS.items()}
        decoded = CounterMetricFamily("loglabel_decoded", "Messages decoded into records.",
                                      labels=["kind"])
        dead = CounterMetricFamily("loglabel_dead_letters",
                                   "Messages rejected by the decoder, by reason.",
                                   labels=["kind", "reason"])
        drift = CounterMetricFamily("loglabel_drift_events", "Drift events, by kind.",
                                    labels=["kind"])
        skew = CounterMetricFamily("loglabel_schema_skew",
                                   "Schema skew seen in predictions, by kind and model.",
                                   labels=["what", "model"])
        other = CounterMetricFamily("loglabel_events", "Other pipeline counters, by name.",
                                    labels=["event"])
        skews: dict[tuple[str, str], int] = {}
        drifts: dict[str, int] = {}
        for key, value in sorted(counters.items()):
            parsed = parse_skew_key(key)
            split = _split(key)
            if key in named:
                named[key].add_metric([], float(value))
            elif parsed is not None:
                what, model, _ = parsed
                skews[(what, model)] = skews.get((what, model), 0) + value
            elif split and split[0] == "drift" and split[1] in KINDS:
                drifts[split[1]] = drifts.get(split[1], 0) + value
            elif split and split[1] == "decoded":
                decoded.add_metric([split[0]], float(value))
            elif split and split[1].startswith("dead_letter."):
                dead.add_metric([split[0], split[1][len("dead_letter."):]], float(value))
            else:
                other.add_metric([key], float(value))
        for name, family in named.items():
            if not family.samples:
                family.add_metric([], float(counters.get(name, 0)))
        for (what, model), value in sorted(skews.items()):
            skew.add_metric([what, model], float(value))
        for kind, value in sorted(drifts.items()):
            drift.add_metric([kind], float(value))
        yield from named.values()
        yield from (decoded, dead, drift, skew, other)

    def _partitions(self, status: WorkerStatus) -> Iterator[Metric]:
        assigned = GaugeMetricFamily("loglabel_assigned_partitions",
                                     "Partition indexes assigned to this worker.")
        assigned.add_metric([], float(len(status.partitions)))
        gauges = {
            "pending": GaugeMetricFamily("loglabel_pending_predictions",
                                         "Predictions waiting for their window to close.",
                                         labels=["partition"]),
            "on_disk": GaugeMetricFamily("loglabel_pending_predictions_on_disk",
                                         "Pending predictions spilled beyond the memory "
                                         "budget.", labels=["partition"]),
            "early": GaugeMetricFamily("loglabel_early_outcomes_buffered",
                                       "Outcomes waiting for their prediction.",
                                       labels=["partition"]),
            "watermark": GaugeMetricFamily("loglabel_watermark_seconds",
                                           "Event-time watermark (epoch seconds).",
                                           labels=["partition"]),
            "lag": GaugeMetricFamily("loglabel_watermark_lag_seconds",
                                     "Wall clock minus the watermark.", labels=["partition"]),
            "epoch": GaugeMetricFamily("loglabel_checkpoint_epoch",
                                       "Checkpoint epoch of the partition.", labels=["partition"]),
        }
        offsets = GaugeMetricFamily("loglabel_consumer_offset",
                                    "Next offset to read, per topic and partition.",
                                    labels=["topic", "partition"])
        for index, part in sorted(status.partitions.items()):
            label = [str(index)]
            gauges["pending"].add_metric(label, float(part.pending))
            gauges["on_disk"].add_metric(label, float(part.pending_on_disk))
            gauges["early"].add_metric(label, float(part.early_buffered))
            gauges["epoch"].add_metric(label, float(part.epoch))
            if math.isfinite(part.watermark):
                gauges["watermark"].add_metric(label, part.watermark)
                gauges["lag"].add_metric(label, part.watermark_lag_s)
            for topic, offset in sorted(part.offsets.items()):
                offsets.add_metric([topic, str(index)], float(offset))
        yield assigned
        yield from gauges.values()
        yield offsets


class MetricsServer:
    """The running HTTP endpoint; ``close()`` stops it and the broker view."""

    def __init__(self, httpd: ThreadingHTTPServer, broker: BrokerView | None,
                 monitor: HealthMonitor, registry: CollectorRegistry) -> None:
        self._httpd = httpd
        self.broker = broker
        self.monitor = monitor
        self.registry = registry
        self.host = str(httpd.server_address[0])
        self.port = int(httpd.server_address[1])
        self._thread = threading.Thread(target=httpd.serve_forever, name="loglabel-metrics",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        if self.broker is not None:
            self.broker.close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _handler(registry: CollectorRegistry, monitor: HealthMonitor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path in (HEALTH_PATHS["liveness"], HEALTH_PATHS["readiness"]):
                check = monitor.liveness if path == HEALTH_PATHS["liveness"] else monitor.readiness
                verdict: Verdict = check()
                self._send(200 if verdict.ok else 503, "application/json", verdict.to_json())
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # probes every few seconds would flood the JSON logs

    return Handler


def start_metrics_server(config: MetricsConfig, status: StatusSource, *,
                         broker: BrokerView | None = None) -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread.

    ``status`` is the worker's ``status`` method; ``broker`` (started here if
    given) supplies end offsets for consumer lag and reachability for
    readiness. Raises ``OSError`` when the port is taken. Serves even when
    ``config.enabled`` is false: the caller decides whether to start it.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(status, broker))
    ProcessCollector(registry=registry)
    monitor = HealthMonitor(status, config.stall_after_s, broker)
    httpd = ThreadingHTTPServer((config.host, config.port), _handler(registry, monitor))
    httpd.daemon_threads = True
    if broker is not None:
        broker.start()
    return MetricsServer(httpd, broker, monitor, registry)


def serve_worker(metrics: MetricsConfig, kafka: KafkaConfig, worker: Worker
                 ) -> MetricsServer | None:
    """Start the endpoint for ``worker`` if ``metrics.enabled`` (else return ``None``).

    The broker view connects with ``kafka``'s settings. Raises ``ConfigError``
    when the port cannot be bound. The caller must ``close()`` the server.
    """
    if not metrics.enabled:
        return None
    broker = BrokerView(kafka, worker.topics, interval_s=metrics.broker_check_interval_s,
                        timeout_s=metrics.broker_timeout_s)
    try:
        return start_metrics_server(metrics, worker.status, broker=broker)
    except OSError as exc:
        raise ConfigError(f"metrics: cannot listen on {metrics.host}:{metrics.port} "
                          f"({exc.strerror}); set metrics.port or metrics.host") from None
