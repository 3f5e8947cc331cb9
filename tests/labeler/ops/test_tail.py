"""``loglabel tail`` and ``loglabel report`` reading the drift and dead-letter topics of the
real broker, written as the pipeline writes them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from drift.events import DriftEvent
from ingest.kafka.dead_letters import DeadLetterSink
from ingest.records import DeadLetter, SourceRef
from labeler.ops.cli import cli

from .report.test_shaping import T0, rows

pytestmark = pytest.mark.kafka


def _event(feature: str, at: float) -> DriftEvent:
    return DriftEvent(model="ctr", kind="data", stream="mean", feature=feature,
                      detector="CUSUM", params={"threshold": 8.0},
                      statistic_name="cumulative_deviation", statistic=9.5, threshold=8.0,
                      event_time=at, source="predictions[1]@40",
                      reference={"n": 256, "mean": 0.0, "std": 1.0},
                      current={"n": 96, "mean": 1.1, "std": 1.0})


@pytest.fixture
def topics(kafka_bootstrap: str, unique: Callable[[str], str]) -> dict[str, Any]:
    drift, dead = unique("drift"), unique("dead-letter")
    options = {"bootstrap_servers": kafka_bootstrap}
    admin = KafkaAdminClient(**options)
    admin.create_topics([NewTopic(drift, 2, 1), NewTopic(dead, 1, 1)])
    admin.close()
    producer = KafkaProducer(**options)
    for i, feature in enumerate(("f00", "f01")):
        producer.send(drift, json.dumps(_event(feature, T0 + 100 * i).to_dict()).encode(),
                      key=b"ctr", partition=i)
    producer.send(drift, b"not a drift event", partition=0)
    sink = DeadLetterSink(producer, dead)
    sink.send(DeadLetter("not_json", "expected a JSON object", b"oops",
                         SourceRef("predictions", 3, 17)))
    sink.flush()
    producer.close()
    return {"bootstrap": kafka_bootstrap, "drift": drift, "dead": dead}


def test_tail_prints_drift_events_and_dead_letters_from_the_beginning(topics: dict[str, Any]
                                                                      ) -> None:
    result = CliRunner().invoke(cli, [
        "tail", "--bootstrap", topics["bootstrap"], "--drift-topic", topics["drift"],
        "--dead-letters", "--dead-letter-topic", topics["dead"], "--from-beginning",
        "--max-events", "3", "--timeout", "30", "--no-colour"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3, lines
    drift = sorted(x for x in lines if " drift " in x)
    assert len(drift) == 2 and "\x1b" not in result.output
    assert "ctr: f00 mean changed from mean 0 to mean 1.1 (CUSUM cumulative_deviation 9.5 >= 8)" \
        in drift[0]
    assert "[predictions[1]@40]" in drift[0] and "f01" in drift[1]
    dead = next(x for x in lines if " dead_letter " in x)
    assert "reason=not_json" in dead and "source=predictions[3]@17" in dead
    assert 'detail="expected a JSON object"' in dead


def test_tail_from_the_end_stops_after_its_timeout_with_nothing_new(topics: dict[str, Any]
                                                                    ) -> None:
    result = CliRunner().invoke(cli, ["tail", "--bootstrap", topics["bootstrap"],
                                      "--drift-topic", topics["drift"], "--timeout", "2"])
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_tail_names_a_missing_topic(topics: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli, ["tail", "--bootstrap", topics["bootstrap"],
                                      "--drift-topic", "no-such-topic-here", "--timeout", "2"])
    assert result.exit_code == 1
    assert "topic 'no-such-topic-here' does not exist" in result.output


def test_report_reads_drift_events_and_dead_letters_from_their_topics(
        topics: dict[str, Any], tmp_path: Path) -> None:
    shard = tmp_path / "data" / "model=ctr" / "date=2024-06-10" / "part.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(rows(800).drop(columns=["model"]),
                                        preserve_index=False), shard)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, [
        "report", "--dataset", str(tmp_path / "data"), "-o", str(out),
        "--bootstrap", topics["bootstrap"], "--drift-topic", topics["drift"],
        "--dead-letter-topic", topics["dead"]])
    assert result.exit_code == 0, result.output
    assert f"report written to {out}" in result.output
    text = out.read_text()
    assert "2 drift events" in text and "predictions[1]@40" in text
    assert "1 dead letters in the topic" in text and "<td>not_json</td>" in text


def test_tail_colours_when_asked_even_into_a_pipe(topics: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli, [
        "tail", "--bootstrap", topics["bootstrap"], "--drift-topic", topics["drift"],
        "--from-beginning", "--max-events", "1", "--timeout", "30", "--colour"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("\x1b[1;33m") and "drift" in result.output
