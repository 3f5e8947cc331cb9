"""Many seeds of random work on ``ClosedIds`` against a plain dict and a heap of every
close: the same answers, the same forget counts per epoch, whatever is young, frozen,
colliding, dead, shadowed or rebuilt after a restart."""

from __future__ import annotations

import heapq
import random
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from labeler.join import closed as closed_module
from labeler.join import closed_index
from labeler.join.closed import ClosedIds, default_hash

IDS = [f"id-{i:02d}" for i in range(30)] + ["idé-ünï", "x"]


class Reference:
    """Closed ids in a dict, every close in a heap: what the join held before."""

    def __init__(self) -> None:
        self.ids: dict[str, tuple[float, set[Any] | None, float, int]] = {}  # .., seq
        self.heap: list[tuple[float, int, int, str]] = []  # (forget at, seq, epoch, id)
        self.epochs: dict[str, int] = {}  # the epoch of each id's last close
        self.seq = 0

    def add(self, join_id: str, t: float, keys: set[Any] | None, forget_at: float,
            epoch: int) -> None:
        self.seq += 1
        self.ids[join_id] = (t, set(keys) if keys else None, forget_at, self.seq)
        self.epochs[join_id] = epoch
        heapq.heappush(self.heap, (forget_at, self.seq, epoch, join_id))

    def add_key(self, join_id: str, key: Any) -> None:
        t, keys, forget_at, seq = self.ids[join_id]
        self.ids[join_id] = (t, (keys or set()) | {key}, forget_at, seq)

    def forget(self, watermark: float) -> Counter[int]:
        counts: Counter[int] = Counter()
        while self.heap and self.heap[0][0] < watermark:
            _, seq, epoch, join_id = heapq.heappop(self.heap)
            counts[epoch] += 1
            if join_id in self.ids and self.ids[join_id][3] == seq:
                del self.ids[join_id]
        return counts

    def get(self, join_id: str) -> tuple[float, set[Any] | None] | None:
        found = self.ids.get(join_id)
        return None if found is None else (found[0], found[1])


def weak(modulus: int) -> Any:
    return lambda j: (zlib.crc32(j.encode()) % modulus) * 0x9E37_79B9_7F4A_7C15 % 2**64


HASHES = [default_hash, weak(5), weak(2), lambda j: 2**64 - 1]


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(closed_module, "YOUNG_MIN", 3)
    monkeypatch.setattr(closed_module, "YOUNG_MAX", 6)
    monkeypatch.setattr(closed_module, "GENERATION_MAX", 4)
    monkeypatch.setattr(closed_module, "COMPACT_AFTER", 5)
    monkeypatch.setattr(closed_index, "RUN_MAX", 24)
    monkeypatch.setattr(closed_index, "MEMBERS_MAX", 4)
    monkeypatch.setattr(closed_index, "BUILD_BITS", 64 * 8)
    monkeypatch.setattr(closed_index, "BUILD_SLICES", 1)


def _key(rng: random.Random) -> Any:
    if rng.random() < 0.5:
        return f"o-{rng.randrange(6)}"
    return (rng.choice(IDS), "click", float(rng.randrange(4)))


def _check(closed: ClosedIds, ref: Reference) -> None:
    assert len(closed) == len(ref.ids)
    expected = [j in ref.ids for j in IDS]
    assert [j in closed for j in IDS] == expected
    assert closed.contains_many(IDS).tolist() == expected
    for join_id in IDS:
        assert closed.get(join_id) == ref.get(join_id), join_id
    assert sorted(closed.entries()) == sorted(
        (j, t, k, f, ref.epochs[j]) for j, (t, k, f, _) in ref.ids.items())


@pytest.mark.parametrize("seed", range(120))
def test_random_work_matches_the_reference(seed: int, small: None, tmp_path: Path) -> None:
    rng = random.Random(seed)
    hash_fn = HASHES[seed % len(HASHES)]
    budget = [0, None, 4000][seed // len(HASHES) % 3]
    closed = ClosedIds(budget, tmp_path, hash_fn=hash_fn)
    ref = Reference()
    watermark, epoch = 0.0, 1
    for step in range(400):
        op = rng.random()
        join_id = rng.choice(IDS)
        if op < 0.40:
            epoch += rng.random() < 0.1
            t = float(rng.randrange(-5, 50))
            keys = {_key(rng) for _ in range(rng.randrange(3))} or None
            # mostly in forget order, as the join closes; some behind the watermark
            forget_at = watermark + rng.choice([rng.uniform(-3, 30), 20.0 + step * 0.05])
            known_open = join_id not in ref.ids and rng.random() < 0.7
            ref.add(join_id, t, keys, forget_at, epoch)
            closed.add(join_id, t, set(keys) if keys else None, forget_at, epoch, known_open)
        elif op < 0.55:
            key = _key(rng)
            if join_id in ref.ids:
                ref.add_key(join_id, key)
                closed.add_key(join_id, key)
            else:
                with pytest.raises(KeyError):
                    closed.add_key(join_id, key)
        elif op < 0.62:
            ref.ids.pop(join_id, None)
            closed.discard(join_id)
        elif op < 0.80:
            watermark += rng.uniform(-2, 6)
            assert closed.forget(watermark) == ref.forget(watermark)
        elif op < 0.86:
            closed.freeze()
        elif op < 0.90:
            assert closed.get(join_id) == ref.get(join_id)
            assert (join_id in closed) == (join_id in ref.ids)
        elif op < 0.93:
            # a restart: a compaction re-adds the live closes, logged in a new epoch
            epoch += 1
            again = closed.empty_copy()
            live = list(closed.entries())
            closed.close()
            assert not list(tmp_path.glob("*.rows"))
            ref = Reference()
            for j, t, keys, forget_at, _ in live:
                again.add(j, t, set(keys) if keys else None, forget_at, epoch)
                ref.add(j, t, keys, forget_at, epoch)
            again.forget(watermark)  # the restore's advance: nothing below the watermark
            ref.forget(watermark)
            closed = again
        elif op < 0.95:
            closed._index.build()
        elif op < 0.97 and closed._index.next is None:
            closed._index.start()
        if step % 20 == 0:
            _check(closed, ref)
    _check(closed, ref)
    assert closed.forget(watermark + 1e6) == ref.forget(watermark + 1e6)
    assert len(closed) == 0 and closed.on_disk == 0
    closed.close()
    assert not list(tmp_path.iterdir())
