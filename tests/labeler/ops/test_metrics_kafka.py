"""A real worker against the real broker, observed only over HTTP: /metrics, /healthz, /readyz."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from ingest.kafka.topics import ensure_topics
from labeler.ops.metrics import MetricsConfig, MetricsServer, serve_worker
from labeler.runtime.compose import build_worker
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec

pytestmark = pytest.mark.kafka

PARTITIONS = 2
DEADLINE_S = 90.0


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local test
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, body = get(server.url + "/metrics")
    assert code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode()) for s in family.samples
    }


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= set(ls))


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


class Prober(threading.Thread):
    """Polls /metrics, /healthz and /readyz in a tight loop; any answer but 200/503
    (a 500 from a probe that raised, a broken connection) is an error."""

    def __init__(self, url: str) -> None:
        super().__init__(name="prober", daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.answers = 0
        self.errors: list[str] = []

    def run(self) -> None:
        paths = ("/metrics", "/healthz", "/readyz")
        while not self.stop.is_set() and self.answers < 200_000:
            path = paths[self.answers % 3]
            try:
                code, body = get(self.url + path)
            except OSError as exc:
                self.errors.append(f"{path}: {exc}")
                continue
            self.answers += 1
            if code not in (200, 503):
                self.errors.append(f"{path}: {code} {body[:200]!r}")


def test_metrics_and_probes_of_a_running_worker(kafka_config: Any) -> None:
    config = kafka_config(join={"window_s": 2.0, "early_tolerance_s": 1.0,
                                "allowed_lateness_s": 1.0, "idle_after_s": 1.0})
    options = config.kafka.client_options()
    topics = config.topics
    ensure_topics(options, [topics.predictions, topics.outcomes], PARTITIONS)
    worker = build_worker(config)
    server = serve_worker(MetricsConfig(enabled=True, port=0, broker_check_interval_s=0.5),
                          config.kafka, worker)
    assert server is not None
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    prober = Prober(server.url)
    try:
        code, body = get(server.url + "/readyz")
        assert code == 503, "not ready before the worker joined its group"
        thread.start()
        prober.start()  # probes hammer the worker throughout the run
        wait_for(lambda: get(server.url + "/readyz")[0] == 200, "/readyz to turn ready")
        first = scrape(server)
        assert first[("loglabel_assigned_partitions", ())] == PARTITIONS
        assert first[("loglabel_broker_up", ())] == 1
        assert total(first, "loglabel_messages_total") == 0
        assert ("loglabel_seconds_since_input", ()) not in first, "no input read yet"

        sent = send_traffic(options, TrafficSpec(count=300, seed=5, spacing=0.01,
                                                 click_rate=0.3, window=2.0,
                                                 early_tolerance=1.0, max_disorder=0.5),
                            topics.predictions, topics.outcomes, partitions=PARTITIONS)
        producer = KafkaProducer(**options)
        last_sent_at = time.monotonic()  # the worker reads the last message after this
        producer.send(topics.predictions, value=b"{not json", key=b"k").get(timeout=30)
        producer.close()
        predictions = sent["prediction"] + 1  # one of them is malformed

        def caught_up() -> bool:
            s = scrape(server)
            return (total(s, "loglabel_messages_total") == predictions + sent["outcome"]
                    and total(s, "loglabel_shards_written_total") > 0
                    and total(s, "loglabel_consumer_lag") == 0)

        wait_for(caught_up, "every message read and a shard written")
        now = scrape(server)
        scraped_at = time.monotonic()
        assert total(now, "loglabel_decoded_total", kind="prediction") == sent["prediction"]
        assert total(now, "loglabel_decoded_total", kind="outcome") == sent["outcome"]
        assert total(now, "loglabel_dead_letters_total", kind="prediction") == 1
        assert total(now, "loglabel_dead_letters_sent_total") == 1
        assert total(now, "loglabel_labeled_total") > 0
        assert total(now, "loglabel_shard_bytes_total") > 0
        for index in range(PARTITIONS):
            assert ("loglabel_consumer_lag",
                    (("partition", str(index)), ("topic", topics.predictions))) in now
            assert total(now, "loglabel_consumer_offset", topic=topics.predictions,
                         partition=str(index)) > 0
        # the worker read the last message (the malformed one) after it was sent, and
        # this process's metrics server measures from the same monotonic clock
        idle = now[("loglabel_seconds_since_input", ())]
        assert 0 <= idle <= scraped_at - last_sent_at, (idle, scraped_at - last_sent_at)
        code, body = get(server.url + "/healthz")
        assert code == 200 and json.loads(body)["ok"] is True
        prober.stop.set()
        prober.join(timeout=30)
        assert prober.answers > 100 and not prober.errors, prober.errors[:5]
    finally:
        prober.stop.set()
        worker.stop()
        thread.join(timeout=60)
        assert not thread.is_alive()
        stopped = get(server.url + "/readyz")
        server.close()
    assert stopped[0] == 503 and "not running" in stopped[1].decode()
