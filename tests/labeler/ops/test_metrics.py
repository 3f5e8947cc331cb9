"""Metrics from a status snapshot, the [metrics] section, and the HTTP endpoint (no broker)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from labeler.ops.metrics import (
    COUNTERS,
    DEFAULT_PORT,
    MetricsConfig,
    MetricsServer,
    WorkerCollector,
    start_metrics_server,
)
from labeler.runtime.status import WorkerStatus

from ._status import part, status

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_text(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def collect(snapshot: WorkerStatus) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(lambda: snapshot))
    return scrape_text(generate_latest(registry).decode())


def test_counters_map_to_named_metrics_with_labels() -> None:
    got = collect(status(counters={
        "messages": 120, "labeled": 40, "positives": 7, "shard_bytes": 4096,
        "prediction.decoded": 80, "outcome.decoded": 35,
        "prediction.dead_letter.bad_json": 3, "outcome.dead_letter.missing_field": 2,
        "drift.data": 2, "drift.concept": 1,
        "schema_skew.new_feature.ctr.f.x": 4, "schema_skew.new_feature.ctr.g": 1,
        "schema_skew.missing_feature.ctr.h": 6,
        "drift.internal_error": 1, "prediction.rekeyed_read": 9,
    }))
    assert got[("loglabel_messages_total", ())] == 120
    assert got[("loglabel_labeled_total", ())] == 40
    assert got[("loglabel_shard_bytes_total", ())] == 4096
    assert got[("loglabel_decoded_total", (("kind", "prediction"),))] == 80
    assert got[("loglabel_dead_letters_total",
                (("kind", "prediction"), ("reason", "bad_json")))] == 3
    assert got[("loglabel_dead_letters_total",
                (("kind", "outcome"), ("reason", "missing_field")))] == 2
    assert got[("loglabel_drift_events_total", (("kind", "data"),))] == 2
    assert got[("loglabel_drift_events_total", (("kind", "concept"),))] == 1
    assert got[("loglabel_schema_skew_total", (("model", "ctr"), ("what", "new_feature")))] == 5
    assert got[("loglabel_schema_skew_total", (("model", "ctr"), ("what", "missing_feature")))] == 6
    assert got[("loglabel_events_total", (("event", "prediction.rekeyed_read"),))] == 9
    assert got[("loglabel_events_total", (("event", "drift.internal_error"),))] == 1, \
        "a monitoring failure is not a drift event"
    assert ("loglabel_drift_events_total", (("kind", "internal_error"),)) not in got


def test_every_known_counter_is_exported_even_before_it_moves() -> None:
    got = collect(status())
    for name in COUNTERS:
        assert got[(f"loglabel_{name}_total", ())] == 0


def test_partition_gauges_follow_the_snapshot() -> None:
    got = collect(status({
        3: part({"p": 17, "o": 5}, pending=12, early=2, watermark=1_700_000_000.0, lag=4.5,
                epoch=9, on_disk=7),
        1: part({}, pending=0),
    }))
    assert got[("loglabel_assigned_partitions", ())] == 2
    assert got[("loglabel_pending_predictions", (("partition", "3"),))] == 12
    assert got[("loglabel_pending_predictions_on_disk", (("partition", "3"),))] == 7
    assert got[("loglabel_early_outcomes_buffered", (("partition", "3"),))] == 2
    assert got[("loglabel_watermark_seconds", (("partition", "3"),))] == 1_700_000_000.0
    assert got[("loglabel_watermark_lag_seconds", (("partition", "3"),))] == 4.5
    assert got[("loglabel_checkpoint_epoch", (("partition", "3"),))] == 9
    assert got[("loglabel_consumer_offset", (("partition", "3"), ("topic", "p")))] == 17
    assert got[("loglabel_running", ())] == 1
    assert ("loglabel_watermark_seconds", (("partition", "1"),)) not in got, \
        "no watermark before the first event: no sample rather than -inf"


def test_metrics_section_is_safe_by_default_and_strict() -> None:
    config = MetricsConfig()
    assert (config.enabled, config.host, config.port) == (False, "127.0.0.1", DEFAULT_PORT)
    with pytest.raises(ValidationError, match="prot"):
        MetricsConfig.model_validate({"prot": 1})
    with pytest.raises(ValidationError):
        MetricsConfig(port=70000)
    with pytest.raises(ValidationError):
        MetricsConfig(stall_after_s=0)


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local test
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[], WorkerStatus]], str]]:
    servers: list[MetricsServer] = []

    def start(source: Callable[[], WorkerStatus]) -> str:
        server = start_metrics_server(MetricsConfig(enabled=True, port=0), source)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.close()


def test_http_endpoint_serves_metrics_and_probes(serve: Callable[..., str]) -> None:
    current = {"s": status(counters={"messages": 5}, running=False)}
    url = serve(lambda: current["s"])

    code, ctype, body = get(url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert scrape_text(body.decode())[("loglabel_messages_total", ())] == 5
    assert any(name.startswith("process_") for name, _ in scrape_text(body.decode()))

    code, _, body = get(url + "/healthz")
    assert code == 200 and json.loads(body) == {"ok": True, "problems": []}
    code, _, body = get(url + "/readyz")
    assert code == 503 and "not running" in json.loads(body)["problems"][0]

    current["s"] = status({0: part({"p": 1})}, counters={"messages": 6})
    code, _, _ = get(url + "/readyz")
    assert code == 200
    code, _, body = get(url + "/metrics")
    assert scrape_text(body.decode())[("loglabel_messages_total", ())] == 6, \
        "values are read at scrape time"
    assert get(url + "/nope")[0] == 404


def test_a_taken_port_is_an_error(serve: Callable[..., str]) -> None:
    url = serve(status)
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        start_metrics_server(MetricsConfig(enabled=True, port=port), status)
