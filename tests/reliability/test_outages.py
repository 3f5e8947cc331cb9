"""Outages, against the oracle: a broker killed with SIGKILL and restarted mid-stream,
and a worker frozen past its session timeout. Live traffic (event time follows the
wall clock), a worker running throughout, then a bounded end with ``--drain``.

The broker of these tests is their own (another port, its own data directory):
killing the shared one would break every other test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ingest.kafka.topics import ensure_topics
from labeler.join.rules import join_rules
from labeler.tools.oracle import oracle_from_raw, read_raw
from labeler.tools.produce import send_traffic
from labeler.tools.simulate import TrafficSpec
from tests.oracle import assert_equals_oracle

from ._attempts import ATTEMPTS, own_streams, until_premise_holds
from ._worker import start_worker, write_config

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
PORT = 19192


def _dead(pid: int) -> bool:
    """No such process, or a zombie nobody has reaped yet (``kill -0`` still succeeds on
    one, but it holds no port and no file: for the tests, the broker is gone)."""
    if not Path("/proc/self/stat").exists():  # no /proc here: only whether it exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")  # the field after the name


class Broker:
    """A broker of our own from deploy/kafka, which a test may kill."""

    def __init__(self, home: Path) -> None:
        self.env = {**os.environ, "LOGLABEL_KAFKA_PORT": str(PORT),
                    "LOGLABEL_KAFKA_HOME": str(home), "PYTHON": sys.executable}
        self.home = home

    def start(self) -> None:
        subprocess.run([str(KAFKA_SH), "start"], env=self.env, check=True)

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL the JVM: no clean shutdown, the data directory stays. Returns once it
        is dead; fails the test if it is not within ``timeout``."""
        pid = int((self.home / "kafka.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while not _dead(pid):
            if time.monotonic() > deadline:
                pytest.fail(f"the broker (pid {pid}) still ran {timeout:.0f} s after SIGKILL")
            time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run([str(KAFKA_SH), "stop"], env=self.env, check=False)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("kafka-own"))
    broker.start()
    yield broker
    broker.stop()


def _live(kafka_config: Any, tmp_path: Path, bootstrap: str, **sections: Any
          ) -> tuple[Any, Path]:
    config = kafka_config(join={"window_s": 4.0, "early_tolerance_s": 1.0,
                                "allowed_lateness_s": 3.0}, **sections)
    tmp_path.mkdir(parents=True, exist_ok=True)
    if bootstrap:
        config = config.model_copy(update={"kafka": config.kafka.model_copy(
            update={"bootstrap_servers": bootstrap})})
    path = write_config(tmp_path / "worker.toml", config,
                        kafka={"bootstrap_servers": config.kafka.bootstrap_servers,
                               "max_poll_records": 500},
                        output={"flush_interval_s": 0.5}, logging={"status_interval_s": 2.0})
    return config, path


class Traffic(threading.Thread):
    """The simulated live traffic, sent from a thread that remembers when the broker had
    acknowledged every message (``done_at``, wall clock), or why sending failed.

    Its producer (a forwarder) buffers through an outage of minutes and resends when
    the broker is back; one still waiting to resend when the worker's ``--until-idle``
    has passed voids the scenario's premise (all traffic sent before the bounded
    end)."""

    def __init__(self, config: Any, seconds: float, rate: float) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.spec = TrafficSpec(count=int(seconds * rate / 1.35), seed=3,
                                spacing=1.35 / rate, click_rate=0.3, window=4.0,
                                early_tolerance=1.0, max_disorder=0.5, start=time.time())
        self.rate = rate
        self.done_at: float | None = None
        self.error: BaseException | None = None
        # the topics exist before the worker starts (it refuses to start without them)
        ensure_topics(config.kafka.client_options(),
                      [config.topics.predictions, config.topics.outcomes], 4)
        self.start()

    def run(self) -> None:
        config = self.config
        try:
            send_traffic(client_options=config.kafka.client_options(), spec=self.spec,
                         prediction_topic=config.topics.predictions,
                         outcome_topic=config.topics.outcomes, rate=self.rate, partitions=4,
                         labels=join_rules(config).labels,
                         producer_settings={"delivery_timeout_ms": 600_000})
            self.done_at = time.time()
        except BaseException as exc:  # noqa: BLE001 - reported by finish(), in the test
            self.error = exc

    def finish(self, timeout: float) -> float:
        """Wait for the traffic; when every message was acknowledged (wall clock)."""
        self.join(timeout)
        assert not self.is_alive(), f"the traffic was still being sent after {timeout} s"
        if self.error is not None:
            raise AssertionError("sending the traffic failed") from self.error
        assert self.done_at is not None
        return self.done_at


def _events(log_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_path.read_text().splitlines()
            if line.startswith("{")]


def _bounded_end(events: list[dict[str, Any]]) -> float:
    """When the run decided its ``--until-idle`` end (wall clock): the earliest of the
    ingest stage's end (beside the worker, it reads the raw topics) and the worker's."""
    ends = [e["ts"] for e in events
            if e["event"] in ("ingest.idle", "worker.idle", "worker.standby_done")]
    assert ends, "the worker logged no end of its bounded run"
    return min(ends)


def _wait_for(log_path: Path, needle: bytes, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in log_path.read_bytes():
        assert time.monotonic() < deadline, f"{needle!r} never logged"
        time.sleep(0.1)


def _compare(config: Any) -> None:
    rules = join_rules(config)
    truth, counts = oracle_from_raw(read_raw(config), rules.window, rules.early_tolerance,
                                    rules.lateness, rules.frontier_votes, rules.labels)
    assert counts["late_predictions"] == 0
    assert_equals_oracle(pd.read_parquet(config.output.path), truth)
    assert 0.05 < truth.label_clicked.mean() < 0.95


@pytest.mark.parametrize(("repartition", "away_s"), [("never", 15.0), ("always", 70.0)])
@pytest.mark.timeout(ATTEMPTS * 1000 + 120)  # an attempt's waits add up to about 900 s
def test_a_broker_killed_and_restarted_mid_stream(kafka_config: Any, unique: Any,
                                                  tmp_path: Path, own_broker: Broker,
                                                  repartition: str, away_s: float) -> None:
    """The outage is logged when it starts and when it ends, and the labels equal the
    oracle's. Away 70 s, longer than a flush's wait and a coordinator call's timeout,
    the stages defer their commits and go on. Premise: the producer resent what it
    buffered before the worker's bounded end (a restart on a loaded machine can take
    half a minute); an attempt in which it did not runs again, fresh."""

    def attempt(n: int) -> str | None:
        here = tmp_path / f"a{n}"
        config, path = _live(kafka_config, here, f"127.0.0.1:{PORT}",
                             ingest={"repartition": repartition},
                             output={"path": str(here / "out")}, **own_streams(unique, n))
        traffic = Traffic(config, seconds=30.0, rate=600.0)
        log_path = here / "worker.log"
        with open(log_path, "ab") as log:
            worker = start_worker(path, log, "--until-idle", "6", "--drain")
            try:
                _wait_for(log_path, b'"partition.assigned"')
                time.sleep(6.0)  # the scenario: mid-stream
                own_broker.kill()
                time.sleep(away_s)  # the scenario: the broker stays away
                own_broker.start()
                acknowledged = traffic.finish(timeout=300)
                assert worker.wait(timeout=300) == 0, log_path.read_text()[-4000:]
            finally:
                if worker.poll() is None:  # a failed attempt leaves no worker behind
                    worker.kill()
                    worker.wait(timeout=30)
        events = _events(log_path)
        assert any(e["event"] == "broker.unreachable" for e in events), "the outage is logged"
        assert any(e["event"] == "broker.reachable" for e in events)
        ended = _bounded_end(events)
        if ended < acknowledged:
            return (f"the producer's last message was acknowledged "
                    f"{acknowledged - ended:.1f} s after the worker's bounded end")
        _compare(config)
        return None

    until_premise_holds(attempt, "the traffic acknowledged before the worker's bounded end")


def test_a_worker_frozen_past_its_session_timeout(kafka_config: Any, tmp_path: Path) -> None:
    config, path = _live(kafka_config, tmp_path, "")
    traffic = Traffic(config, seconds=25.0, rate=400.0)
    log_path = tmp_path / "worker.log"
    with open(log_path, "ab") as log:
        worker = start_worker(path, log, "--until-idle", "6", "--drain")
        _wait_for(log_path, b'"partition.assigned"')
        time.sleep(4.0)
        worker.send_signal(signal.SIGSTOP)
        time.sleep(config.kafka.session_timeout_ms / 1000 + 4)  # past the session timeout
        worker.send_signal(signal.SIGCONT)
        acknowledged = traffic.finish(timeout=300)
        assert worker.wait(timeout=300) == 0, log_path.read_text()[-4000:]
    events = _events(log_path)
    assert _bounded_end(events) > acknowledged, "the run ended before the traffic"
    # the scenario happened: evicted while frozen, the worker lost its partitions
    assert any(e["event"] in ("partition.lost", "partition.fenced", "group.stuck")
               for e in events), "the freeze did not cost the worker its partitions"
    _compare(config)


def test_offered_load_above_capacity_then_a_drain(kafka_config: Any, tmp_path: Path) -> None:
    """Traffic offered faster than one worker labels it (the lag grows for the whole
    run), then a bounded end: every label equal to the oracle, none closed early."""
    config, path = _live(kafka_config, tmp_path, "")
    traffic = Traffic(config, seconds=20.0, rate=8000.0)
    log_path = tmp_path / "worker.log"
    with open(log_path, "ab") as log:
        worker = start_worker(path, log, "--until-idle", "6", "--drain")
        acknowledged = traffic.finish(timeout=600)
        assert worker.wait(timeout=600) == 0, log_path.read_text()[-4000:]
    events = _events(log_path)
    assert _bounded_end(events) > acknowledged, "the run ended before the traffic"
    statuses = [e for e in events if e["event"] == "status"]
    lags = [e["lag"] for e in statuses if e.get("lag") is not None]
    print(f"max lag {max(lags, default=0)} messages over {len(statuses)} status lines")
    assert statuses[-1]["outcomes_after_close"] == 0
    _compare(config)
