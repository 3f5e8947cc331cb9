"""Ids closed within the dedupe horizon: exact, a few bytes each in memory, the rest on disk.

A join id is labeled once, so every id closed within the dedupe horizon must
be remembered (with its prediction time and the dedupe keys of the outcomes
it counted): at 5,000 predictions a second and a one-hour horizon that is 18
million ids, 5-10 GB as Python dicts. ``ClosedIds`` holds them exactly in about
16 bytes each of memory (measured at 18 M ids: ``memory_bytes`` 16.3 B, the
process's peak RSS 18 B; 68 B each on disk), plus a bounded set of the newest as
plain objects (``python -m labeler.tools.bench_closed`` measures them):

* **young**: the newest closes, a dict and a heap of forget times, up to
  ``YOUNG_MAX`` entries (fewer when the budget is tight);
* **generations**: a freeze moves the young ids into one generation: rows in a
  SQLite scratch file (like ``labeler.join.pending``: no journal, deleted on
  close, files of dead processes swept), keyed by (generation, join id);
* **runs**: the 64-bit hashes of the frozen ids with their generation, sorted
  uint64 arrays merged as they grow (at most ``RUN_MAX`` each), and in front of
  them a **bitmap**, a blocked Bloom filter of 8 to 32 bits an id (two bits in
  one 64-bit word).

A miss, the common case (every new prediction asks), costs a dict lookup and
two bitmap probes; only a bitmap hit searches the runs, and only a hash found
there reads the file. A hash collision therefore costs one read, never a
prediction: the answer always comes from the exact row.

Forgetting follows the forget time, which closes reach nearly in order (it is
the close time plus the horizon): a generation wholly past the watermark is
deleted at once; one the watermark is inside loads its forget times (sorted)
and is counted step by step. ``forget`` returns, per epoch, how many closes
passed their forget time, a replaced or discarded one included, exactly as a
heap of every close would: the checkpoint keeps a state segment while a close
it logs is counted as not forgotten.
"""

from __future__ import annotations

import heapq
import itertools
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from labeler.join.pending import close_scratch, default_spill_dir, open_scratch

YOUNG_MAX = 8192  # newest ids kept as objects: a freeze moves them to disk in one transaction
YOUNG_MIN = 1024  # however tight the budget: smaller generations only cost more of them
YOUNG_ENTRY_BYTES = 400  # a young id: its string, entry, dict slot and heap tuple (measured)
GENERATION_BYTES = 600  # the bookkeeping of one generation
RUN_MAX = 1 << 20  # hashes in one run: bounds the pause of a merge (~100 ms)
BUILD_BITS = 1 << 20  # a slice of a bitmap being built
BUILD_SLICES = 4  # slices built per freeze or forget
BITS_PER_ID = 16  # of the bitmap when built; rebuilt below 8 (a miss passes with p < 1/20)
CACHE_KIB = 4 * 1024  # SQLite's page cache: the rows of hits, counted in memory_bytes
M64 = (1 << 64) - 1

Hash = Callable[[str], int]
Keys = set[Any]


class _Young:
    __slots__ = ("t", "keys", "forget_at", "epoch", "seq")

    def __init__(self, t: float, keys: Keys | None, forget_at: float, epoch: int,
                 seq: int) -> None:
        self.t, self.keys, self.forget_at, self.epoch, self.seq = t, keys, forget_at, epoch, seq


class _Generation:
    """One frozen batch: rows on disk, hashes in a run; slots number them by forget time."""

    __slots__ = ("number", "size", "live", "min_forget", "max_forget", "epochs", "counted",
                 "forget", "epoch", "alive")

    def __init__(self, number: int, size: int, min_forget: float, max_forget: float,
                 epochs: Counter[int]) -> None:
        self.number, self.size, self.live = number, size, size
        self.min_forget, self.max_forget, self.epochs = min_forget, max_forget, epochs
        self.counted = 0  # slots below this are forgotten (and counted)
        # loaded once the watermark is inside the generation, by slot:
        self.forget: npt.NDArray[np.float64] | None = None
        self.epoch: npt.NDArray[np.int64] | None = None
        self.alive: npt.NDArray[np.bool_] | None = None

    def nbytes(self) -> int:
        arrays = (self.forget, self.epoch, self.alive)
        return GENERATION_BYTES + sum(a.nbytes for a in arrays if a is not None)


class _Bitmap:
    """A bitmap being built, slice by slice, while the one in use answers."""

    __slots__ = ("bits", "nbits", "shift", "cursor", "set", "stale")

    def __init__(self, nbits: int, live: int, stale: int) -> None:
        self.bits = bytearray(nbits // 8)
        self.nbits, self.shift, self.cursor = nbits, 64 - (nbits.bit_length() - 1 - 6), 0
        self.set, self.stale = live + stale, stale  # as _bits_set and _bits_stale will be


class _Run:
    """Sorted hashes of some generations, each with its generation's number."""

    __slots__ = ("hashes", "gens", "members", "stale")

    def __init__(self, hashes: npt.NDArray[np.uint64], gens: npt.NDArray[np.uint32],
                 members: set[int]) -> None:
        self.hashes, self.gens, self.members, self.stale = hashes, gens, members, 0

    def __len__(self) -> int:
        return len(self.hashes)


def default_hash(join_id: str) -> int:
    """A join id's 64-bit hash: Python's own (SipHash, cached in the string, salted per
    process, which is fine for a store that never outlives its process)."""
    return hash(join_id) & M64


class ClosedIds:
    """The closed ids of one partition within the dedupe horizon, exactly.

    ``memory_budget`` (bytes, mutable) bounds ``memory_bytes()``: the young ids
    shrink to fit what the frozen ones (about 16 bytes each) leave; ``None``
    keeps every id young and never opens a file. ``hash_fn`` maps a join id to
    an int in [0, 2**64) (tests inject colliding ones).

    >>> closed = ClosedIds()
    >>> closed.add("a1", t=10.0, keys=None, forget_at=3700.0, epoch=1)
    >>> "a1" in closed, "b2" in closed
    (True, False)
    >>> closed.add_key("a1", "o-1")
    >>> closed.get("a1")
    (10.0, {'o-1'})
    >>> closed.forget(4000.0)
    Counter({1: 1})
    >>> len(closed), closed.get("a1")
    (0, None)
    """

    def __init__(self, memory_budget: int | None = None, spill_dir: str | Path | None = None,
                 name: str = "closed", hash_fn: Hash = default_hash) -> None:
        self._budget = memory_budget
        self._spill_dir, self._name = spill_dir, name
        self._spill_path = (Path(spill_dir or default_spill_dir())
                            / f"{name}.{os.getpid()}.{id(self):x}.sqlite")
        self._hash = hash_fn
        self._db: sqlite3.Connection | None = None
        self._seq = itertools.count()
        self._numbers = itertools.count(1)
        self._young: dict[str, _Young] = {}
        self._heap: list[tuple[float, int, int, str]] = []  # (forget at, seq, epoch, id)
        self._gens: dict[int, _Generation] = {}
        self._waiting: list[tuple[float, int]] = []  # (min forget, number), none forgotten
        self._inside: dict[int, _Generation] = {}  # generations the watermark is inside
        self._runs: list[_Run] = []
        self._bits = bytearray(8)
        self._shift = 64  # a hash's word in the bitmap is hash >> shift
        self._bits_set = 0  # hashes put in the bitmap since it was built, stale ones too
        self._bits_stale = 0
        self._next: _Bitmap | None = None  # the bitmap being built
        self._forgotten = -float("inf")  # the highest watermark forgotten up to
        self._frozen_live = 0
        self._keys_bytes = 0.0  # bytes of a young id's keys, a running estimate
        self._adds = 0
        self._limit = self._young_limit()
        self._stuck = 0  # young ids a freeze could not move (see add)
        self.frozen_total = 0  # ids ever moved to disk

    # -- the set -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._young) + self._frozen_live

    @property
    def on_disk(self) -> int:
        """Closed ids held on disk (the rest are young)."""
        return self._frozen_live

    @property
    def memory_budget(self) -> int | None:
        return self._budget

    @memory_budget.setter
    def memory_budget(self, budget: int | None) -> None:
        self._budget = budget
        self._limit = self._young_limit()

    def __contains__(self, join_id: str) -> bool:
        if join_id in self._young:
            return True
        if not self._runs:
            return False
        h = self._hash(join_id)
        w = (h >> self._shift) << 6
        a, b = w | (h & 63), w | ((h >> 6) & 63)
        bits = self._bits
        if not (bits[a >> 3] >> (a & 7)) & (bits[b >> 3] >> (b & 7)) & 1:
            return False
        return self._locate(join_id, h) is not None

    def _find(self, join_id: str) -> tuple[int, float, bytes | None, int] | None:
        """The live row of a frozen id, through the bitmap."""
        if not self._runs:
            return None
        h = self._hash(join_id)
        w = (h >> self._shift) << 6
        a, b = w | (h & 63), w | ((h >> 6) & 63)
        bits = self._bits
        if not (bits[a >> 3] >> (a & 7)) & (bits[b >> 3] >> (b & 7)) & 1:
            return None
        return self._locate(join_id, h)

    def contains_many(self, join_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
        """``[id in self for id in join_ids]`` as an array, the prefilter vectorised."""
        young = self._young
        found = np.fromiter((j in young for j in join_ids), dtype=np.bool_, count=len(join_ids))
        if not self._runs:
            return found
        hashes = np.fromiter(map(self._hash, join_ids), dtype=np.uint64, count=len(join_ids))
        bits = np.frombuffer(self._bits, dtype=np.uint8)
        maybe = ~found
        for x in _bit_positions(hashes, self._shift):
            maybe &= ((bits[(x >> np.uint64(3)).astype(np.intp)]
                       >> (x & np.uint64(7)).astype(np.uint8)) & 1).astype(np.bool_)
        candidates = np.flatnonzero(maybe)
        if len(candidates):
            hit = np.zeros(len(candidates), dtype=np.bool_)
            for run in self._runs:
                hs = run.hashes
                at = np.minimum(hs.searchsorted(hashes[candidates]), len(hs) - 1)
                hit |= hs[at] == hashes[candidates]
            for i in candidates[hit]:
                found[i] = self._locate(join_ids[i], int(hashes[i])) is not None
        return found

    def get(self, join_id: str) -> tuple[float, Keys | None] | None:
        """The prediction time and outcome keys of a closed id, or ``None``. The keys are
        for reading: add one with ``add_key``."""
        entry = self._young.get(join_id)
        if entry is not None:
            return entry.t, entry.keys
        found = self._find(join_id)
        if found is None:
            return None
        _, t, packed, _ = found
        return t, _unpack_keys(packed)

    def add(self, join_id: str, t: float, keys: Keys | None, forget_at: float,
            epoch: int, known_open: bool = False) -> None:
        """Close ``join_id`` (prediction time ``t``, the set ``keys`` is taken over) until
        the watermark passes ``forget_at``; ``epoch`` is the checkpoint epoch that logs the
        close. A closed id closed again is replaced (the old close is still counted by
        ``forget`` at its own time). ``known_open``: the caller knows ``join_id`` is not
        closed (the join closes a pending prediction, and a pending id is never closed),
        which spares looking for a frozen close to replace."""
        if not known_open and join_id not in self._young and self._runs:
            self._kill(join_id)
        seq = next(self._seq)
        self._young[join_id] = _Young(t, keys or None, forget_at, epoch, seq)
        heapq.heappush(self._heap, (forget_at, seq, epoch, join_id))
        self._adds += 1
        if keys and self._adds % 97 == 1:
            size = sys.getsizeof(keys) + sum(sys.getsizeof(k) for k in keys)
            self._keys_bytes = 0.9 * self._keys_bytes + 0.1 * size
        if self._limit is not None and len(self._young) >= max(self._limit, self._stuck):
            self.freeze()
            # what stays young is behind the last forget: wait for the next before retrying
            self._stuck = len(self._young) + YOUNG_MIN if len(self._young) >= self._limit else 0

    def add_key(self, join_id: str, key: Any) -> None:
        """Add an outcome's dedupe key to a closed id (an outcome after its close).
        Raises ``KeyError`` if ``join_id`` is not closed."""
        entry = self._young.get(join_id)
        if entry is not None:
            if entry.keys is None:
                entry.keys = {key}
            else:
                entry.keys.add(key)
            return
        found = self._find(join_id)
        if found is None:
            raise KeyError(join_id)
        number, _, packed, _ = found
        keys = _unpack_keys(packed) or set()
        keys.add(key)
        self._disk().execute("UPDATE closed SET keys = ? WHERE gen = ? AND join_id = ?",
                             (_pack_keys(keys), number, join_id))

    def discard(self, join_id: str) -> None:
        """Forget ``join_id`` now, if closed (a restore meets a prediction whose close the
        original run had forgotten). Its close is still counted by ``forget``."""
        if self._young.pop(join_id, None) is None and self._runs:
            self._kill(join_id)

    def forget(self, watermark: float) -> Counter[int]:
        """Drop every close with ``forget_at < watermark``; return how many closes passed
        their forget time, per epoch (replaced and discarded ones too, each once)."""
        counts: Counter[int] = Counter()
        self._forgotten = max(self._forgotten, watermark)
        heap, young = self._heap, self._young
        while heap and heap[0][0] < watermark:
            _, seq, epoch, join_id = heapq.heappop(heap)
            counts[epoch] += 1
            entry = young.get(join_id)
            if entry is not None and entry.seq == seq:
                del young[join_id]
        waiting = self._waiting
        while waiting and waiting[0][0] < watermark:
            gen = self._gens[heapq.heappop(waiting)[1]]
            if gen.max_forget < watermark:
                counts.update(gen.epochs)
                self._drop(gen)
            else:
                self._load(gen)
                self._inside[gen.number] = gen
        for gen in list(self._inside.values()):
            self._count_forgotten(gen, watermark, counts)
        if counts:
            self._limit = self._young_limit()
            self._stuck = 0
        self._bitmap_step()
        return counts

    def empty_copy(self) -> ClosedIds:
        """A new, empty store with this one's budget, directory, name and hash."""
        return ClosedIds(self._budget, self._spill_dir, self._name, self._hash)

    def entries(self) -> Iterator[tuple[str, float, Keys | None, float, int]]:
        """Every closed id as ``(join id, t, keys, forget at, epoch)``, young first (for a
        compaction of the state segments)."""
        for join_id, e in list(self._young.items()):
            yield join_id, e.t, e.keys, e.forget_at, e.epoch
        if self._db is not None and self._frozen_live:
            rows = self._db.execute(
                "SELECT join_id, t, keys, forget_at, epoch FROM closed "
                "WHERE alive = 1 AND forget_at >= ?", (self._forgotten,)).fetchall()
            for join_id, t, packed, forget_at, epoch in rows:
                yield join_id, t, _unpack_keys(packed), forget_at, epoch

    def memory_bytes(self) -> int:
        """What this holds in memory, estimated: the young ids at their measured size, the
        arrays at theirs, the SQLite page cache at its bound once the file is open."""
        young = (len(self._young) * (YOUNG_ENTRY_BYTES + self._keys_bytes)
                 + (len(self._heap) - len(self._young)) * 100)
        return int(young) + self._frozen_bytes()

    def close(self) -> None:
        """Delete the scratch file. The set is empty and reusable afterwards."""
        if self._db is not None:
            close_scratch(self._db, self._spill_path)
            self._db = None
        self._young.clear()
        self._heap.clear()
        self._gens.clear()
        self._waiting.clear()
        self._inside.clear()
        self._runs.clear()
        self._bits, self._shift, self._bits_set, self._bits_stale = bytearray(8), 64, 0, 0
        self._next = None
        self._frozen_live = 0
        self._limit = self._young_limit()

    # -- freezing ------------------------------------------------------------------------

    def freeze(self) -> None:
        """Move the young ids to disk now, as one generation (``add`` does it when the
        young part reaches its limit). An id whose forget time is already behind a
        watermark given to ``forget`` stays young: the next ``forget`` drops it."""
        threshold = self._forgotten
        movers = [(j, e) for j, e in self._young.items() if e.forget_at >= threshold]
        if not movers:
            return
        movers.sort(key=lambda m: m[1].forget_at)
        number, n = next(self._numbers), len(movers)
        rows = [(number, j, e.t, e.forget_at, e.epoch, _pack_keys(e.keys), slot)
                for slot, (j, e) in enumerate(movers)]
        rows.sort(key=lambda r: r[1])  # in key order: SQLite appends to its B-tree
        db = self._disk()
        with db:
            db.executemany("INSERT INTO closed VALUES (?, ?, ?, ?, ?, ?, ?, 1)", rows)
        moved = {j: e.seq for j, e in movers}
        for j in moved:
            del self._young[j]
        self._heap = [h for h in self._heap if moved.get(h[3]) != h[1]]
        heapq.heapify(self._heap)
        gen = _Generation(number, n, movers[0][1].forget_at, movers[-1][1].forget_at,
                          Counter(e.epoch for _, e in movers))
        self._gens[number] = gen
        heapq.heappush(self._waiting, (gen.min_forget, number))
        self._frozen_live += n
        self.frozen_total += n
        hashes = np.fromiter((self._hash(j) for j, _ in movers), dtype=np.uint64, count=n)
        hashes.sort()
        self._runs.append(_Run(hashes, np.full(n, number, dtype=np.uint32), {number}))
        self._merge_runs()
        self._bitmap_add(hashes)
        self._bitmap_step()
        self._limit = self._young_limit()

    def _merge_runs(self) -> None:
        """Merge the newest runs while the older is not more than twice the newer (so
        about log2(ids / YOUNG_MAX) runs), up to RUN_MAX hashes a run."""
        runs = self._runs
        while (len(runs) >= 2 and len(runs[-2]) <= 2 * len(runs[-1])
               and len(runs[-2]) + len(runs[-1]) <= RUN_MAX):
            newer = runs.pop()
            older = runs.pop()
            runs.append(_merge(_purged(older, self._gens), _purged(newer, self._gens)))

    # -- lookups -------------------------------------------------------------------------

    def _locate(self, join_id: str, h: int) -> tuple[int, float, bytes | None, int] | None:
        """The live row of a frozen id: (generation, t, packed keys, slot), or None."""
        db = self._db
        if db is None:
            return None
        key = np.uint64(h)  # a plain int below 2**63 would make numpy search in float64
        for run in reversed(self._runs):
            hs = run.hashes
            i = int(hs.searchsorted(key))
            tried: set[int] = set()
            while i < len(hs) and hs[i] == h:
                number = int(run.gens[i])
                i += 1
                if number in tried or number not in self._gens:
                    continue
                tried.add(number)
                row = db.execute("SELECT t, forget_at, keys, slot FROM closed "
                                 "WHERE gen = ? AND join_id = ? AND alive = 1",
                                 (number, join_id)).fetchone()
                if row is not None and row[1] >= self._forgotten:
                    return number, row[0], row[2], row[3]
        return None

    def _kill(self, join_id: str) -> None:
        """Mark a frozen id's row dead (it stays for ``forget`` to count)."""
        found = self._find(join_id)
        if found is None:
            return
        number, _, _, slot = found
        self._disk().execute("UPDATE closed SET alive = 0 WHERE gen = ? AND join_id = ?",
                             (number, join_id))
        gen = self._gens[number]
        gen.live -= 1
        self._frozen_live -= 1
        if gen.alive is not None:
            gen.alive[slot] = False

    # -- forgetting ----------------------------------------------------------------------

    def _load(self, gen: _Generation) -> None:
        rows = np.array(self._disk().execute(
            "SELECT slot, forget_at, epoch, alive FROM closed WHERE gen = ?",
            (gen.number,)).fetchall(), dtype=np.float64).reshape(-1, 4)
        slots = rows[:, 0].astype(np.intp)
        gen.forget = np.empty(gen.size, dtype=np.float64)
        gen.forget[slots] = rows[:, 1]
        gen.epoch = np.empty(gen.size, dtype=np.int64)
        gen.epoch[slots] = rows[:, 2].astype(np.int64)
        gen.alive = np.empty(gen.size, dtype=np.bool_)
        gen.alive[slots] = rows[:, 3] != 0

    def _count_forgotten(self, gen: _Generation, watermark: float,
                         counts: Counter[int]) -> None:
        if gen.forget is None or gen.epoch is None or gen.alive is None:
            raise RuntimeError(f"generation {gen.number} counted before it was loaded")
        upto = int(gen.forget.searchsorted(watermark, side="left"))
        if upto <= gen.counted:
            return
        epochs, n = np.unique(gen.epoch[gen.counted:upto], return_counts=True)
        counts.update(dict(zip(epochs.tolist(), n.tolist(), strict=True)))
        gone = int(gen.alive[gen.counted:upto].sum())
        gen.live -= gone
        self._frozen_live -= gone
        gen.counted = upto
        if upto == gen.size:
            del self._inside[gen.number]
            self._drop(gen)

    def _drop(self, gen: _Generation) -> None:
        """Delete a generation wholly forgotten: its rows now, its hashes when their run
        is half stale (and the bitmap's bits when half of them are)."""
        self._disk().execute("DELETE FROM closed WHERE gen = ?", (gen.number,))
        del self._gens[gen.number]
        self._frozen_live -= gen.live
        gen.live = 0
        self._bits_stale += gen.size
        if self._next is not None:
            self._next.stale += gen.size
        for i, run in enumerate(self._runs):
            if gen.number in run.members:
                run.stale += gen.size
                if 2 * run.stale >= len(run):
                    purged = _purged(run, self._gens)
                    if len(purged):
                        self._runs[i] = purged
                    else:
                        del self._runs[i]
                break
        if self._next is None and 2 * self._bits_stale >= self._bits_set:
            self._bitmap_start()

    # -- the bitmap ----------------------------------------------------------------------

    def _bitmap_add(self, hashes: npt.NDArray[np.uint64]) -> None:
        self._bits_set += len(hashes)
        targets = [(self._bits, self._shift)]
        if self._next is not None:
            self._next.set += len(hashes)
            targets.append((self._next.bits, self._next.shift))
        for bytes_, shift in targets:
            bits = np.frombuffer(bytes_, dtype=np.uint8)
            for x in _bit_positions(hashes, shift):
                np.bitwise_or.at(bits, (x >> np.uint64(3)).astype(np.intp),
                                 np.left_shift(1, (x & np.uint64(7)).astype(np.uint8))
                                 .astype(np.uint8))
        if self._next is None and self._bits_set * BITS_PER_ID > 8 * len(self._bits) * 2:
            self._bitmap_start()

    def _bitmap_start(self) -> None:
        """Begin a new bitmap sized for the hashes held now, 16 to 32 bits each; the old
        one answers until ``_bitmap_step`` has built all of it."""
        live = sum(len(r) - r.stale for r in self._runs)
        nbits = max(1 << 13, 1 << int(live * BITS_PER_ID - 1).bit_length())
        self._next = _Bitmap(nbits, live, sum(r.stale for r in self._runs))
        self._bitmap_step()

    def _bitmap_step(self) -> None:
        """Build the next few slices of the new bitmap (a bounded pause: BUILD_SLICES
        slices of BUILD_BITS, a few milliseconds at 18 M ids), then put it in use. A
        run's hashes are sorted, so are the words they fall in: a slice is a range."""
        build = self._next
        if build is None:
            return
        bits = np.frombuffer(build.bits, dtype=np.uint8)
        chunk = min(build.nbits, BUILD_BITS)
        flags = np.zeros(chunk, dtype=np.bool_)
        for start in range(build.cursor, min(build.nbits, build.cursor + BUILD_SLICES * chunk),
                           chunk):
            first = np.uint64((start >> 6) << build.shift)
            last = np.uint64((((start + chunk) >> 6) << build.shift) - 1)
            flags[:] = False
            for run in self._runs:
                lo = int(run.hashes.searchsorted(first))
                hi = int(run.hashes.searchsorted(last, side="right"))
                for x in _bit_positions(run.hashes[lo:hi], build.shift):
                    flags[(x - np.uint64(start)).astype(np.intp)] = True
            bits[start // 8:(start + chunk) // 8] = np.packbits(flags, bitorder="little")
            build.cursor = start + chunk
        if build.cursor >= build.nbits:
            self._bits, self._shift = build.bits, build.shift
            self._bits_set, self._bits_stale = build.set, build.stale
            self._next = None

    def _bitmap_build(self) -> None:
        """A new bitmap now, whole (tests; the store itself builds it in steps)."""
        self._next = None
        self._bitmap_start()
        while self._next is not None:
            self._bitmap_step()

    # -- inside --------------------------------------------------------------------------

    def _frozen_bytes(self) -> int:
        runs = sum(r.hashes.nbytes + r.gens.nbytes for r in self._runs)
        gens = sum(g.nbytes() for g in self._inside.values())
        gens += (len(self._gens) - len(self._inside)) * GENERATION_BYTES
        bits = len(self._bits) + (len(self._next.bits) if self._next is not None else 0)
        return runs + gens + bits + (CACHE_KIB * 1024 if self._db else 0)

    def _young_limit(self) -> int | None:
        if self._budget is None:
            return None
        spare = self._budget - self._frozen_bytes()
        return max(YOUNG_MIN, min(YOUNG_MAX, int(spare // (YOUNG_ENTRY_BYTES + self._keys_bytes))))

    def _disk(self) -> sqlite3.Connection:
        if self._db is None:
            # ours alone: an exclusive lock keeps the page cache between transactions and
            # saves two lock calls each (a freeze inserts twice as fast)
            db = open_scratch(self._spill_path, exclusive=True, cache_kib=CACHE_KIB)
            db.execute("CREATE TABLE closed (gen INTEGER NOT NULL, join_id TEXT NOT NULL, "
                       "t REAL NOT NULL, forget_at REAL NOT NULL, epoch INTEGER NOT NULL, "
                       "keys BLOB, slot INTEGER NOT NULL, alive INTEGER NOT NULL, "
                       "PRIMARY KEY (gen, join_id)) WITHOUT ROWID")
            self._db = db
        return self._db


def _bit_positions(hashes: npt.NDArray[np.uint64],
                   shift: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """The two bits of each hash: a blocked Bloom filter, both in the 64-bit word its top
    bits name, at two positions its low bits give (a miss passes with p ~ 1/50 at 16 bits
    an id, ~1/20 at 8, against 1/16 and 1/8 with one bit)."""
    word = (hashes >> np.uint64(shift)) << np.uint64(6)
    return word | (hashes & np.uint64(63)), word | ((hashes >> np.uint64(6)) & np.uint64(63))


def _merge(older: _Run, newer: _Run) -> _Run:
    """Two sorted runs as one: the newer's hashes go after the older's equal ones (a
    search and two scatters, twice as fast as a stable sort of both)."""
    n = len(older) + len(newer)
    at = older.hashes.searchsorted(newer.hashes, side="right") + np.arange(len(newer))
    rest = np.ones(n, dtype=np.bool_)
    rest[at] = False
    hashes = np.empty(n, dtype=np.uint64)
    gens = np.empty(n, dtype=np.uint32)
    hashes[at], gens[at] = newer.hashes, newer.gens
    hashes[rest], gens[rest] = older.hashes, older.gens
    return _Run(hashes, gens, older.members | newer.members)


def _purged(run: _Run, gens: dict[int, _Generation]) -> _Run:
    """``run`` without the hashes of generations gone."""
    if not run.stale:
        return run
    members = {m for m in run.members if m in gens}
    keep = np.isin(run.gens, np.fromiter(members, dtype=np.uint32, count=len(members)))
    return _Run(run.hashes[keep], run.gens[keep], members)


def _pack_keys(keys: Keys | None) -> bytes | None:
    return msgpack.packb(list(keys), use_bin_type=True) if keys else None


def _unpack_keys(packed: bytes | None) -> Keys | None:
    """Keys as they were: msgpack gives tuples back as lists."""
    if packed is None:
        return None
    return {tuple(k) if isinstance(k, list) else k
            for k in msgpack.unpackb(packed, raw=False, strict_map_key=False)}
