"""The closed ids behave exactly as a plain dict with a heap of forget times, however
they are split between memory, the hash runs and the file, and whatever the hashes
collide on; and they take a few bytes each in memory."""

from __future__ import annotations

import os
import random
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from labeler.join import closed as closed_module
from labeler.join import closed_index
from labeler.join.closed import ClosedIds, default_hash

IDS = [f"id-{i:03d}" for i in range(40)]
KEYS = st.one_of(st.sampled_from(["o1", "o2", "o3"]),
                 st.tuples(st.sampled_from(IDS), st.just("click"), st.floats(0, 10)))


def crc(join_id: str) -> int:
    return zlib.crc32(join_id.encode())


HASHES = {
    "python": default_hash,
    "three values": lambda j: (crc(j) % 3) * 0x5555_5555_5555_5555,  # one above 2**63
    "one value": lambda j: 2**64 - 1,
}


class Model:
    """What the join kept before: closed ids in a dict, every close in a heap."""

    def __init__(self) -> None:
        self.ids: dict[str, tuple[float, set[Any] | None, float]] = {}
        self.closes: list[tuple[float, int]] = []  # (forget at, epoch), one per add

    def add(self, join_id: str, t: float, keys: set[Any] | None, forget_at: float,
            epoch: int) -> None:
        self.ids[join_id] = (t, set(keys) if keys else None, forget_at)
        self.closes.append((forget_at, epoch))

    def forget(self, watermark: float) -> Counter[int]:
        counts = Counter(e for f, e in self.closes if f < watermark)
        self.closes = [(f, e) for f, e in self.closes if f >= watermark]
        self.ids = {j: v for j, v in self.ids.items() if v[2] >= watermark}
        return counts


class ClosedMachine(RuleBasedStateMachine):
    hash_name = "python"

    @initialize(budget=st.sampled_from([None, 0]))
    def start(self, budget: int | None) -> None:
        self.dir = Path(self.tmp)
        self.closed = ClosedIds(budget, self.dir, hash_fn=HASHES[self.hash_name])
        self.model = Model()
        self.watermark = 0.0
        self.epoch = 1

    tmp = ""

    @rule(join_id=st.sampled_from(IDS), t=st.floats(-5, 50),
          keys=st.one_of(st.none(), st.sets(KEYS, max_size=3)), ahead=st.floats(-3, 30),
          next_epoch=st.booleans())
    def add(self, join_id: str, t: float, keys: set[Any] | None, ahead: float,
            next_epoch: bool) -> None:
        self.epoch += next_epoch
        forget_at = self.watermark + ahead
        self.model.add(join_id, t, keys, forget_at, self.epoch)
        self.closed.add(join_id, t, set(keys) if keys else None, forget_at, self.epoch)

    @rule(join_id=st.sampled_from(IDS), key=KEYS)
    def add_key(self, join_id: str, key: Any) -> None:
        if join_id not in self.model.ids:
            with pytest.raises(KeyError):
                self.closed.add_key(join_id, key)
            return
        t, keys, forget_at = self.model.ids[join_id]
        self.model.ids[join_id] = (t, (keys or set()) | {key}, forget_at)
        self.closed.add_key(join_id, key)

    @rule(join_id=st.sampled_from(IDS))
    def discard(self, join_id: str) -> None:
        self.model.ids.pop(join_id, None)
        self.closed.discard(join_id)

    @rule(step=st.floats(-2, 10))
    def forget(self, step: float) -> None:
        self.watermark += step
        assert self.closed.forget(self.watermark) == self.model.forget(self.watermark)

    @rule()
    def freeze(self) -> None:
        self.closed.freeze()

    @precondition(lambda self: self.closed.memory_budget is not None)
    @rule()
    def rebuild_the_bitmap(self) -> None:
        self.closed._index.build()

    @precondition(lambda self: self.closed._index.next is None)
    @rule()
    def start_a_bitmap(self) -> None:
        self.closed._index.start()

    @invariant()
    def same_as_the_model(self) -> None:
        closed, model = self.closed, self.model
        assert len(closed) == len(model.ids)
        expected = [j in model.ids for j in IDS]
        assert [j in closed for j in IDS] == expected
        assert closed.contains_many(IDS).tolist() == expected
        for join_id in IDS:
            want = model.ids.get(join_id)
            assert closed.get(join_id) == (None if want is None else want[:2])
        assert sorted((j, t, k) for j, t, k, _, _ in closed.entries()) == sorted(
            (j, t, k) for j, (t, k, _) in model.ids.items())

    def teardown(self) -> None:
        self.closed.close()
        assert not list(self.dir.glob("*.rows"))


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generations of a few ids and runs of a few dozen: every path in a short test."""
    monkeypatch.setattr(closed_module, "YOUNG_MIN", 3)
    monkeypatch.setattr(closed_module, "YOUNG_MAX", 5)
    monkeypatch.setattr(closed_module, "GENERATION_MAX", 4)  # a big freeze makes several
    monkeypatch.setattr(closed_index, "RUN_MAX", 24)
    monkeypatch.setattr(closed_index, "MEMBERS_MAX", 5)
    monkeypatch.setattr(closed_index, "BUILD_BITS", 64 * 16)  # a bitmap built in 8 steps
    monkeypatch.setattr(closed_index, "BUILD_SLICES", 1)


@pytest.mark.parametrize("hash_name", sorted(HASHES))
def test_the_closed_ids_are_the_model(hash_name: str, small: None, tmp_path: Path) -> None:
    machine = type(f"Closed_{hash_name.replace(' ', '_')}", (ClosedMachine,),
                   {"hash_name": hash_name, "tmp": str(tmp_path)})
    test = machine.TestCase
    test.settings = settings(max_examples=60, stateful_step_count=60, deadline=None,
                             suppress_health_check=list(HealthCheck))
    test().runTest()


def test_colliding_hashes_never_drop_a_prediction(tmp_path: Path) -> None:
    """All ids on one hash, in many generations: only the exact rows answer."""
    closed = ClosedIds(0, tmp_path, hash_fn=HASHES["one value"])
    for i in range(5000):
        closed.add(f"c-{i}", float(i), {f"o-{i}"} if i % 7 == 0 else None, 1e9 + i, 1)
    assert closed.on_disk > 0 and len(closed._index.runs) > 1
    assert all(f"c-{i}" in closed for i in range(0, 5000, 97))
    assert not any(f"n-{i}" in closed for i in range(200))
    assert closed.get("c-14") == (14.0, {"o-14"})
    assert closed.get("n-1") is None
    mixed = [f"c-{i}" if i % 2 else f"n-{i}" for i in range(300)]
    assert closed.contains_many(mixed).tolist() == [i % 2 == 1 for i in range(300)]
    closed.close()


def test_forgetting_follows_the_watermark_and_counts_by_epoch(tmp_path: Path) -> None:
    closed = ClosedIds(0, tmp_path)
    for i in range(10_000):
        closed.add(f"id-{i}", float(i), None, float(i) + 100.0, 1 + i // 2500)
    closed.add("id-5", 5.0, None, 50_000.0, 9)  # a re-close: the old one still counts
    assert closed.forget(2600.0) == Counter({1: 2500})  # forget times 100 .. 2599
    assert "id-4" not in closed and "id-5" in closed and "id-2500" in closed
    assert len(closed) == 7501
    assert closed.forget(1e9) == Counter({2: 2500, 3: 2500, 4: 2500, 9: 1})
    assert len(closed) == 0 and closed.on_disk == 0
    closed.close()


def test_a_few_bytes_an_id_within_the_budget(tmp_path: Path) -> None:
    budget = 16 * 1024 * 1024
    closed = ClosedIds(budget, tmp_path)
    n = 300_000
    for i in range(n):
        closed.add(f"{i:08x}-4a1b-9c2d-{i:012x}", float(i), None, float(i) + 1e6, i // 1000)
    assert len(closed) == n and closed.on_disk >= n - closed_module.YOUNG_MAX
    frozen = closed._frozen_bytes()
    assert frozen / closed.on_disk < 20
    assert closed.memory_bytes() <= budget
    assert f"{7:08x}-4a1b-9c2d-{7:012x}" in closed and "4a1b" not in closed
    closed.close()


def test_no_budget_opens_no_file(tmp_path: Path) -> None:
    closed = ClosedIds(None, tmp_path)
    for i in range(5000):
        closed.add(f"id-{i}", 0.0, None, 10.0, 1)
    assert closed.on_disk == 0 and not list(tmp_path.iterdir())
    assert closed.forget(11.0) == Counter({1: 5000}) and len(closed) == 0


def test_the_file_is_deleted_on_close_and_left_files_are_swept(tmp_path: Path) -> None:
    left = tmp_path / "closed.999999999.abc.rows"  # of a process that is gone
    left.write_bytes(b"x")
    closed = ClosedIds(0, tmp_path)
    for i in range(3000):
        closed.add(f"id-{i}", 0.0, None, 10.0, 1)
    assert closed.on_disk and len(list(tmp_path.glob("*.rows"))) == 1 and not left.exists()
    closed.close()
    assert not list(tmp_path.glob("*.rows")) and len(closed) == 0
    closed.add("again", 1.0, None, 2.0, 1)  # reusable
    assert "again" in closed


def test_a_key_after_the_close_is_kept_on_disk(tmp_path: Path) -> None:
    closed = ClosedIds(0, tmp_path)
    closed.add("a", 1.0, {("a", "click", 2.0)}, 100.0, 1)
    closed.freeze()
    closed.add_key("a", "o-9")
    assert closed.get("a") == (1.0, {("a", "click", 2.0), "o-9"})
    with pytest.raises(KeyError):
        closed.add_key("b", "o-1")
    closed.close()


def test_hashes_above_two_to_the_63_round_trip() -> None:
    values = np.array([2**64 - 1, 2**63, 5], dtype=np.uint64)
    values.sort()
    assert int(values.searchsorted(2**64 - 1)) == 2 and values[2] == 2**64 - 1


def test_an_id_discarded_while_its_generation_is_being_forgotten(tmp_path: Path) -> None:
    closed = ClosedIds(None, tmp_path)
    for i in range(10):
        closed.add(f"id-{i}", 0.0, None, float(i), 1)
    closed.freeze()
    assert closed.forget(4.5) == Counter({1: 5})  # the watermark is inside the generation
    closed.discard("id-7")
    closed.add("id-8", 0.0, None, 100.0, 2)  # closed again: the frozen close dies
    assert len(closed) == 4 and "id-7" not in closed and "id-8" in closed
    assert closed.forget(8.5) == Counter({1: 4})  # 5 to 8: two of them died before
    assert len(closed) == 2 and closed.on_disk == 1
    assert closed.forget(50.0) == Counter({1: 1})
    assert len(closed) == 1 and closed.on_disk == 0 and closed.get("id-8") == (0.0, None)
    closed.close()


def test_a_close_already_behind_the_watermark_stays_until_the_next_forget(
        tmp_path: Path) -> None:
    """As in the heap: a prediction after its close, with no horizon, is closed from its
    close to the next forget (the same advance), never frozen with a forget time that
    a lookup would already call forgotten."""
    closed = ClosedIds(0, tmp_path)
    assert closed.forget(100.0) == Counter()
    for i in range(3000):
        closed.add(f"late-{i}", 1.0, None, 50.0, 4)
    assert len(closed) == 3000 and closed.on_disk == 0 and "late-7" in closed
    closed.add("on-time", 1.0, None, 500.0, 4)
    closed.freeze()
    assert closed.on_disk == 1
    assert closed.forget(100.0) == Counter({4: 3000})
    assert len(closed) == 1 and "late-7" not in closed and "on-time" in closed
    closed.close()


def test_a_new_budget_resizes_the_young_part(tmp_path: Path) -> None:
    closed = ClosedIds(None, tmp_path)
    for i in range(2000):
        closed.add(f"id-{i}", 0.0, None, 10.0, 1)
    assert closed.on_disk == 0
    closed.memory_budget = 0  # the young part shrinks to YOUNG_MIN at the next add
    closed.add("one-more", 0.0, None, 10.0, 1)
    assert closed.on_disk == 2001 and len(closed) == 2001
    closed.close()


def test_the_disk_of_forgotten_generations_is_given_back(tmp_path: Path) -> None:
    """Steady closing and forgetting: the file holds the live generations, not every one
    ever written (dropped extents are punched out, reused, or cut off the end)."""
    closed = ClosedIds(0, tmp_path)
    rows = closed._rows
    for i in range(20_000):
        closed.add(f"{i:08x}-4a1b-9c2d-{i:012x}", float(i), None, float(i) + 5_000.0, 1, True)
    full = rows.disk_bytes()
    assert full > 20_000 * 60
    for second in range(20_000, 120_000, 1000):  # 5,000 live at a time, 100,000 in all
        for i in range(second, second + 1000):
            closed.add(f"{i:08x}-4a1b-9c2d-{i:012x}", float(i), None, float(i) + 5_000.0, 1,
                       True)
        closed.forget(float(second))
        assert rows.disk_bytes() <= full
    assert len(closed) < 7_000
    assert os.fstat(rows._fd).st_size <= 2 * full  # extents reused, not appended forever
    closed.forget(1e9)
    assert closed.on_disk == 0 and rows.disk_bytes() == 0
    closed.close()
    assert not list(tmp_path.iterdir())


def test_outcomes_after_a_freeze_do_not_load_generations_early(tmp_path: Path) -> None:
    """Late outcomes on frozen ids (their keys make the id young again, with its first
    forget time) must not make ``forget`` load every later generation long before its
    rows' forget times: the memory per id stays about that of the index."""
    closed = ClosedIds(50_000_000, tmp_path)  # a budget: the young part is frozen as it fills
    horizon, step, behind = 60.0, 0.001, 50_000  # outcomes for ids closed 50 s before
    rng = random.Random(4)
    n = 200_000
    for i in range(n):
        t = i * step
        closed.add(f"id-{i}", t, None, t + horizon, 1 + i // 10_000, known_open=True)
        if i >= behind and rng.random() < 0.005:
            closed.add_key(f"id-{i - behind}", ("click", float(i)))
        if i % 1000 == 999:
            closed.forget(t - 1.0)  # the watermark just behind the newest closes
    assert closed.on_disk > 40_000
    loaded = sum(gen.size for gen in closed._inside.values())
    assert loaded <= 2 * closed_module.YOUNG_MAX, "generations loaded long before their time"
    # about 37 bytes an id here (the young part of so small a store included); 65 when
    # every generation was loaded early
    assert closed.memory_bytes() / len(closed) < 50
    closed.close()
