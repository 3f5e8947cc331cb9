"""The fencing race on a real broker: two workers in one group, one frozen (SIGSTOP)
past its session timeout while the other takes its partitions over and commits, then
thawed (SIGCONT). The frozen one is a zombie that still believes it owns its
partitions: a commit it makes must be refused by the epoch log (``partition.fenced``;
at least one of up to three attempts, since its client may learn of the loss first),
and every attempt's dataset must equal the oracle."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ._attempts import ATTEMPTS, own_streams, until_premise_holds
from ._worker import start_worker
from .test_outages import Traffic, _bounded_end, _compare, _live
from .test_outages import _events as _all_events

pytestmark = pytest.mark.kafka


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [d for d in docs if d.get("event") == name]


def _owned(log: Path) -> set[int]:
    """The partitions a worker holds at the end of its log."""
    held: set[int] = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("event") == "partition.assigned":
                held.add(doc["partition"])
            elif doc.get("event") in ("partition.revoked", "partition.lost",
                                      "partition.fenced"):
                held.discard(doc["partition"])
    return held


def _highest_epoch(output: Path, partition: int) -> int:
    names = [p.stem for p in output.glob(f"_checkpoints/*/p{partition:04d}.epochs/*.ckpt")]
    return max((int(n) for n in names if n.isdigit()), default=0)


def _until(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.timeout(ATTEMPTS * 400 + 300)  # each attempt's own waits bound it
def test_a_frozen_owner_is_fenced_after_a_takeover(kafka_config: Any, unique: Any,
                                                   tmp_path: Path) -> None:
    """Thawed, the zombie either commits first (and is fenced: what this test is for)
    or its client learns of the new generation first and drops the partitions
    unwritten (``partition.lost``); which one comes first is the client's race, not
    ours. Each attempt must leave the oracle's dataset either way; an attempt that
    was not fenced runs again with fresh topics and group, at most ``ATTEMPTS``
    times, and the test fails if none was."""
    until_premise_holds(
        lambda n: _freeze_and_thaw(kafka_config, unique, tmp_path / f"a{n}", n),
        "the zombie's commit after the take-over was refused")


def _freeze_and_thaw(kafka_config: Any, unique: Any, where: Path, attempt: int) -> str | None:
    """``None`` if the thawed zombie was fenced; else why it was not."""
    where.mkdir(parents=True)
    config, path = _live(kafka_config, where, "", **own_streams(unique, attempt),
                         output={"path": str(where / "out")})
    output = Path(config.output.path)
    # 40 s of traffic: it outlasts the freeze and the take-over on a slow machine, so
    # the heir (idle end after 6 s without input) is still reading when it takes over
    traffic = Traffic(config, seconds=40.0, rate=400.0)
    logs = [where / "zombie.log", where / "heir.log"]
    files = [open(p, "ab") for p in logs]  # noqa: SIM115 - closed below
    try:
        zombie, heir = (start_worker(path, f, "--until-idle", "6", "--drain") for f in files)
        _until(lambda: _owned(logs[0]) and _owned(logs[1])
               and len(_owned(logs[0]) | _owned(logs[1])) == 4,
               "both workers hold partitions")
        frozen = sorted(_owned(logs[0]))
        _until(lambda: all(_highest_epoch(output, i) >= 2 for i in frozen),
               "the first owner committed its partitions")
        zombie.send_signal(signal.SIGSTOP)
        frozen_at = time.time()
        # the heir takes the frozen worker's partitions over and commits past its claim
        _until(lambda: all(any(e["partition"] == i and e["ts"] > frozen_at
                               for e in _events(logs[1], "partition.assigned"))
                           for i in frozen) or _events(logs[1], "worker.idle")
               or heir.poll() is not None, "the heir takes the partitions over")
        assert heir.poll() in (None, 0), logs[1].read_text()[-4000:]
        if _events(logs[1], "worker.idle"):
            zombie.send_signal(signal.SIGCONT)
            traffic.finish(timeout=300)
            return "the heir's bounded run ended before it took the partitions over"
        claimed = {e["partition"]: e["epoch"] for e in _events(logs[1], "partition.assigned")
                   if e["ts"] > frozen_at}
        _until(lambda: all(_highest_epoch(output, i) > claimed[i] for i in frozen),
               "the heir commits the partitions it took over")
        zombie.send_signal(signal.SIGCONT)
        _until(lambda: _events(logs[0], "partition.fenced") or _events(logs[0],
                                                                      "partition.lost"),
               "the thawed worker notices it lost its partitions")
        acknowledged = traffic.finish(timeout=300)
        assert zombie.wait(timeout=300) == 0, logs[0].read_text()[-4000:]
        assert heir.wait(timeout=300) == 0, logs[1].read_text()[-4000:]
    finally:
        for proc in locals().get("zombie"), locals().get("heir"):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        for f in files:
            f.close()
    # a worker left with nothing may end while the other still reads (a standby's end)
    assert max(_bounded_end(_all_events(log)) for log in logs) > acknowledged, \
        "both runs ended before the traffic"
    fenced = _events(logs[0], "partition.fenced")
    assert {e["partition"] for e in fenced} <= set(frozen)
    _compare(config)  # fenced or not, the dataset is the oracle's
    if not fenced:
        return "the zombie noticed the loss before committing"
    print(f"fenced {len(fenced)} partitions: {[e['reason'] for e in fenced]}")
    return None
