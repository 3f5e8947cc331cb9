"""``simulate`` generates its traffic as it sends: lazily, in order, deterministically,
with the same messages a full plan sorted by arrival gives, from ``--start``."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from labeler.ops.cli import cli
from labeler.tools.simulate import TrafficSpec, parse_start, plan, resolved, stream


def test_the_stream_is_in_arrival_order_and_complete() -> None:
    spec = TrafficSpec(count=4000, seed=11, start=1.7e9, window=20.0, max_disorder=3.0,
                       drift_at=0.5)
    messages = plan(spec)
    arrivals = [m.arrival for m in messages]
    assert arrivals == sorted(arrivals)
    predictions = {m.key for m in messages if m.topic_kind == "prediction"}
    assert len(predictions) == 4000
    clicks = [m for m in messages if m.topic_kind == "outcome"]
    assert clicks and {m.key for m in clicks} <= predictions
    # late clicks (after the window) and early ones (before the prediction) are there
    times = {m.key: m.event.event_time for m in messages if m.topic_kind == "prediction"}
    delays = [m.event.event_time - times[m.key] for m in clicks]
    assert any(d > spec.window for d in delays) and any(d < 0 for d in delays)


def test_the_same_spec_gives_the_same_messages() -> None:
    spec = resolved(TrafficSpec(count=1500, seed=3))
    first = [(m.topic_kind, m.arrival, m.key, m.record) for m in stream(spec)]
    again = [(m.topic_kind, m.arrival, m.key, m.record) for m in stream(spec)]
    assert first == again


def test_the_stream_is_lazy_whatever_the_count() -> None:
    # a plan of 10^9 predictions could not be built; the stream yields its first at once
    huge = TrafficSpec(count=10**9, seed=5, start=1.7e9)
    head = list(itertools.islice(stream(huge), 1000))
    assert len(head) == 1000
    assert head[0].event.event_time == pytest.approx(1.7e9, abs=huge.max_disorder + 1)


def test_the_default_start_ends_the_run_a_minute_from_now() -> None:
    spec = resolved(TrafficSpec(count=1000, spacing=1.0), clock=1_800_000_000.0)
    assert spec.start == 1_800_000_000.0 - (1000 - 60)
    assert resolved(TrafficSpec(start=1.7e9)).start == 1.7e9


def test_parse_start_takes_iso_or_epoch_and_names_what_it_wants() -> None:
    assert parse_start("2024-06-10T06:13:20Z") == 1718000000.0
    assert parse_start("1718000000") == 1718000000.0
    assert parse_start(None) == 0.0
    with pytest.raises(ValueError, match="ISO-8601 time"):
        parse_start("tomorrow")


def test_simulate_rejects_a_bad_start_before_any_broker_call(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[kafka]\nbootstrap_servers = "127.0.0.1:1"\n')
    result = CliRunner().invoke(cli, ["simulate", "--config", str(config), "--start", "soon"])
    assert result.exit_code == 2 and "--start" in result.output


@pytest.mark.kafka
def test_simulate_sends_from_start_and_writes_the_truth(tmp_path: Path, kafka_bootstrap: str,
                                                        unique: Callable[[str], str]) -> None:
    import orjson
    import pandas as pd

    from ingest.kafka.clients import new_consumer

    predictions, outcomes = unique("sim-p"), unique("sim-o")
    config = tmp_path / "c.toml"
    config.write_text(f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\n[topics]\n'
                      f'predictions = "{predictions}"\noutcomes = "{outcomes}"\n'
                      "[join]\nwindow_s = 30.0\n")
    truth = tmp_path / "truth.csv"
    result = CliRunner().invoke(cli, [
        "simulate", "--config", str(config), "--count", "300", "--spacing", "1",
        "--start", "2024-06-10T00:00:00Z", "--envelope", "json", "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    sent = int(result.stdout.split()[1])
    consumer = new_consumer({"bootstrap_servers": [kafka_bootstrap]}, predictions,
                            auto_offset_reset="earliest", consumer_timeout_ms=5000)
    times = []
    try:
        for message in consumer:
            times.append(orjson.loads(message.value)["time"])
            if len(times) == sent:
                break
    finally:
        consumer.close()
    assert len(times) == sent
    assert min(times) == 1717977600.0 and max(times) == 1717977600.0 + 299
    assert len(pd.read_csv(truth)) == 300
