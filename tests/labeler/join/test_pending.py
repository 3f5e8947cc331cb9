"""Pending predictions beyond the memory budget spill to SQLite and nothing changes for
the join: the same rows, in the same order, as with everything in memory. And the
state segments of the checkpoint rebuild it after a restart."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest

from ingest.records import Outcome, Prediction
from labeler.join.inputs import DirectInputs
from labeler.join.labels import LabelSpec
from labeler.join.partition import PartitionJoin
from labeler.join.pending import Pending, PendingStore, resident_size
from labeler.join.records import LabeledExample
from labeler.join.rules import JoinRules
from labeler.output.checkpoint import CheckpointStore
from labeler.output.storage import Storage

WALL = 1_000_000.0


def pred(join_id: str, t: float) -> Prediction:
    return Prediction(join_id, t, "m", "1", {"x": t, "c": "a"}, {"score": 0.25})


def entry_size() -> int:
    return resident_size(Pending(pred("id-00000", 0.0)))


def tiny_store(tmp_path: Path, entries: int) -> PendingStore:
    """A store whose budget holds about ``entries`` predictions in memory."""
    return PendingStore(entries * entry_size(), tmp_path / "spill")


def test_beyond_the_budget_the_oldest_go_to_disk(tmp_path: Path) -> None:
    store = tiny_store(tmp_path, 3000)
    for i in range(10_000):
        store.add(Pending(pred(f"id-{i:05d}", float(i))), float(i) + 60.0)
    assert len(store) == 10_000
    assert store.on_disk > 0 and store.in_memory <= 3000
    assert "id-00000" in store and "id-09999" in store and "nope" not in store
    assert list((tmp_path / "spill").glob("*.sqlite"))
    # an outcome for a spilled prediction brings it back
    found = store.get("id-00001")
    assert found is not None and found.prediction.event_time == 1.0
    assert store.promoted_total == 1
    due = store.pop_due(100.0 + 60.0)
    assert [p.prediction.join_id for p in due] == [f"id-{i:05d}" for i in range(100)]
    assert len(store) == 9_900
    assert sorted(p.prediction.join_id for p in store.values()) == [
        f"id-{i:05d}" for i in range(100, 10_000)]
    store.close()
    assert not list((tmp_path / "spill").glob("*.sqlite"))
    assert len(store) == 0


def test_without_a_budget_nothing_touches_the_disk(tmp_path: Path) -> None:
    store = PendingStore(None, tmp_path / "spill")
    for i in range(5000):
        store.add(Pending(pred(f"id-{i}", float(i))), float(i))
    assert store.on_disk == 0 and not (tmp_path / "spill").exists()


def test_discard_finds_a_prediction_on_disk(tmp_path: Path) -> None:
    store = tiny_store(tmp_path, 100)
    for i in range(6000):
        store.add(Pending(pred(f"id-{i:05d}", float(i))), float(i))
    assert store.discard("id-00002") is not None
    assert store.discard("id-00002") is None
    assert "id-00002" not in store and len(store) == 5999


@functools.cache
def inputs_of(join: PartitionJoin) -> DirectInputs:
    """The join read as the worker reads raw partitions (one input of each kind)."""
    return DirectInputs(join, ("p", 0), ("o", 0))


def random_events(seed: int, n: int) -> list[Prediction | Outcome | float]:
    """Predictions; clicks on recent ones (some after the window, some twice, some before
    their prediction); repeated prediction ids; and points where time advances."""
    rng = random.Random(seed)
    events: list[Prediction | Outcome | float] = []
    recent: list[Prediction] = []
    t = 1000.0
    next_id = f"id-{rng.randrange(int(n * 0.9)):06d}"
    for i in range(n):
        t += rng.expovariate(20.0)
        if rng.random() < 0.05:  # its click comes first
            events.append(Outcome(next_id, t + 0.5, "click", 1.0, None))
        events.append(p := pred(next_id, t))
        recent = (recent + [p])[-3000:]
        next_id = f"id-{rng.randrange(int(n * 0.9)):06d}"  # some ids repeat
        if rng.random() < 0.3:
            target = recent[rng.randrange(len(recent))]
            click = Outcome(target.join_id, t, "click", 1.0,
                            f"o{i}" if rng.random() < 0.5 else None)
            events.append(click)
            if rng.random() < 0.2:
                events.append(click)
        if rng.random() < 0.02:
            events.append(WALL)  # time to advance (the wall clock stays: never idle)
    return events


def play(join: PartitionJoin, events: list[Prediction | Outcome | float]
         ) -> list[LabeledExample]:
    rows = []
    for event in events:
        if isinstance(event, Prediction):
            inputs_of(join).prediction(event)
        elif isinstance(event, Outcome):
            inputs_of(join).outcome(event)
        else:
            rows.extend(join.advance())
    return rows


def keyed(rows: list[LabeledExample]) -> list[tuple[str, tuple, int]]:
    return [(r.prediction.join_id, r.labels, r.outcome_count) for r in rows]


RULES = JoinRules(window=60.0, grace=1.0, early_tolerance=2.0, lateness=1.0, idle_after=30.0,
                  dedupe_horizon=50.0,
                  labels=(LabelSpec("clicked"), LabelSpec("clicks", agg="count")))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spilling_gives_the_same_rows_in_the_same_order(tmp_path: Path, seed: int) -> None:
    events = random_events(seed, 20_000)
    in_memory = PartitionJoin(RULES)
    spilling = PartitionJoin(RULES, store=tiny_store(tmp_path, 100))
    expected = play(in_memory, events) + in_memory.drain()
    got = play(spilling, events)
    assert spilling.pending.spilled_total > 0 and spilling.pending.promoted_total > 0
    got += spilling.drain()
    assert keyed(got) == keyed(expected)
    assert spilling.counters == in_memory.counters


Segments = list[tuple[int, str]]


def commit(store: CheckpointStore, join: PartitionJoin, epoch: int, segments: Segments
           ) -> Segments:
    checkpoint = store.commit(0, epoch, {"p": epoch}, join.snapshot(), [], log=join.log,
                              segments=segments, keep_from=join.oldest_needed_epoch())
    join.logged(epoch)
    return checkpoint.segments


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_a_restart_from_state_segments_continues_exactly(tmp_path: Path, seed: int) -> None:
    events = random_events(seed, 12_000)
    storage = Storage(str(tmp_path / "out"))
    store = CheckpointStore(storage, "p+o")
    join = PartitionJoin(RULES, store=tiny_store(tmp_path, 40))
    rows: list[LabeledExample] = []
    segments: Segments = []
    chunks = [events[i:i + 1000] for i in range(0, len(events), 1000)]
    cut = len(chunks) // 2
    for epoch, chunk in enumerate(chunks[:cut], start=1):
        rows += play(join, chunk)
        segments = commit(store, join, epoch, segments)
    # segments whose predictions all closed are gone; the oldest kept one is still needed
    assert segments[0][0] > 1 and segments == sorted(segments)
    files = storage.list("_checkpoints/p%2Bo/p0000.state")
    assert files == [f"{e:08d}-{store.owner}.seg" for e, _ in segments]

    checkpoint = store.recover(0)
    assert checkpoint is not None
    restored = PartitionJoin.restore(RULES, checkpoint.state, store.segments(checkpoint),
                                     store=tiny_store(tmp_path / "again", 40),
                                     epoch=checkpoint.epoch + 1)
    assert restored.pending_count == join.pending_count
    assert restored.pending.on_disk > 0
    rest = [e for chunk in chunks[cut:] for e in chunk]
    assert keyed(play(restored, rest) + restored.drain()) == keyed(play(join, rest) + join.drain())


def test_recover_drops_a_segment_the_checkpoint_does_not_list(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    join = PartitionJoin(RULES)
    inputs_of(join).prediction(pred("a", 100.0))
    segments = commit(store, join, 1, [])
    assert segments == [(1, store.owner)]
    name = f"00000002-{store.owner}.seg"
    storage.write(f"_checkpoints/p%2Bo/p0000.state/{name}", b"torn")  # crash before 3
    checkpoint = store.recover(0)
    assert checkpoint is not None and checkpoint.segments == [(1, store.owner)]
    assert storage.list("_checkpoints/p%2Bo/p0000.state") == [f"00000001-{store.owner}.seg"]
    restored = PartitionJoin.restore(RULES, checkpoint.state, store.segments(checkpoint))
    assert [r.prediction.join_id for r in restored.drain()] == ["a"]


def test_a_missing_segment_is_a_clear_error(tmp_path: Path) -> None:
    from labeler.errors import CheckpointError

    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    join = PartitionJoin(RULES)
    inputs_of(join).prediction(pred("a", 100.0))
    commit(store, join, 1, [])
    storage.delete(f"_checkpoints/p%2Bo/p0000.state/00000001-{store.owner}.seg")
    checkpoint = store.load(0)
    assert checkpoint is not None
    with pytest.raises(CheckpointError, match="00000001-.*seg.*is missing"):
        list(store.segments(checkpoint))


def test_a_truncated_segment_is_a_clear_error(tmp_path: Path) -> None:
    from labeler.errors import CheckpointError

    storage = Storage(str(tmp_path))
    store = CheckpointStore(storage, "p+o")
    join = PartitionJoin(RULES)
    inputs_of(join).prediction(pred("a", 100.0))
    inputs_of(join).prediction(pred("b", 101.0))
    commit(store, join, 1, [])
    path = f"_checkpoints/p%2Bo/p0000.state/00000001-{store.owner}.seg"
    raw = storage.read(path)
    assert raw is not None
    storage.write(path, raw[:-3])
    checkpoint = store.load(0)
    assert checkpoint is not None
    with pytest.raises(CheckpointError, match="00000001-.*seg is corrupt.*cut short"):
        PartitionJoin.restore(RULES, checkpoint.state, store.segments(checkpoint))


def test_spill_files_of_dead_processes_are_swept(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from labeler.join.pending import sweep_spill_dir

    spill = tmp_path / "spill"
    spill.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = spill / f"s-p0000.{int(gone.stdout)}.7f00.sqlite"
    mine_stale = spill / f"s-p0001.{os.getpid()}.1.sqlite"
    other_alive = spill / f"s-p0002.{os.getppid()}.2.sqlite"
    dead_rows = spill / f"closed-p0000.{int(gone.stdout)}.7f01.rows"  # the closed ids' kind
    for path in (dead, mine_stale, other_alive, dead_rows):
        path.write_bytes(b"x")
    store = tiny_store(tmp_path, 10)
    for i in range(100):  # spills, so it opens its file and sweeps the directory
        store.add(Pending(pred(f"id-{i:03d}", float(i))), float(i))
    assert store.on_disk > 0
    left = sorted(p.name for p in spill.iterdir())
    assert dead.name not in left and mine_stale.name not in left and dead_rows.name not in left
    assert other_alive.name in left and len(left) == 2  # and the store's own file
    assert sweep_spill_dir(spill) == []  # the open store's file is kept
    store.close()
