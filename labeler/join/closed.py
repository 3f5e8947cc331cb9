"""Ids closed within the dedupe horizon: exact, a few bytes each in memory, the rest on disk.

A join id is labeled once, so every id closed within the dedupe horizon must
be remembered (with its prediction time and the dedupe keys of the outcomes
it counted): at 5,000 predictions a second and a one-hour horizon that is 18
million ids, 5-10 GB as Python dicts. ``ClosedIds`` holds them exactly in about
16 bytes each of memory and about 70 on disk, plus a bounded set of the newest
as plain objects (``python -m labeler.tools.bench_closed`` measures them):

* **young**: the newest closes, a log of columns (id, time, forget time, epoch)
  with a dict of the live ones, up to ``YOUNG_MAX`` (fewer when the budget is
  tight);
* **generations**: a freeze moves the young ids into one generation, one extent
  of a plain scratch file written at once (``labeler.join.closed_rows``);
* **the index**: the 64-bit hashes of the frozen ids in sorted runs, each with a
  reference to its row, and a Bloom bitmap in front (``labeler.join.closed_index``).

A miss, the common case (every new prediction asks), costs a dict lookup and
two bitmap probes; only a bitmap hit searches the runs, and only a hash found
there reads the file. A hash collision therefore costs one read, never a
prediction: the answer always comes from the exact row.

A frozen row is never rewritten: a close replaced or discarded is marked dead
in memory (a bit), and an outcome's key added to a frozen id makes it young
again (the new keys, the same times) while its dead row keeps counting it.

Forgetting follows the forget time, which closes reach nearly in order (it is
the close time plus the horizon): the young log is counted from a cursor (the
few closes out of order from a heap); a generation wholly past the watermark
is dropped at once; one the watermark is inside loads its forget times and is
counted step by step. ``forget`` returns, per epoch, how many closes passed
their forget time, a replaced or discarded one included, exactly as a heap of
every close would: the checkpoint keeps a state segment while a close it logs
is counted as not forgotten.
"""

from __future__ import annotations

import heapq
import itertools
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from labeler.join.closed_index import (
    GENERATION_MAX,
    Hash,
    HashIndex,
    default_hash,
    hash_many,
)
from labeler.join.closed_rows import UNCOUNTED, Generation, Row, RowFile
from labeler.join.pending import default_spill_dir

__all__ = ["ClosedIds", "default_hash"]

YOUNG_MAX = 8192  # newest ids kept as objects: a freeze moves them to disk in one write
YOUNG_MIN = 1024  # however tight the budget: smaller generations only cost more of them
YOUNG_ENTRY_BYTES = 260  # a young id: its string, dict slot, log slots and floats (measured)
LOG_ENTRY_BYTES = 100  # a log slot of a close no longer young, until the log is compacted
COMPACT_AFTER = 4096  # log slots counted before the log may be compacted
Keys = set[Any]


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
        self._rows = RowFile(Path(spill_dir or default_spill_dir())
                             / f"{name}.{os.getpid()}.{id(self):x}.rows")
        self._hash = hash_fn
        self._numbers = itertools.count(1)
        self._index = HashIndex()
        self._gens: dict[int, Generation] = {}
        self._waiting: list[tuple[float, int]] = []  # (min forget, number), none forgotten
        self._inside: dict[int, Generation] = {}  # generations the watermark is inside
        self._forgotten = -float("inf")  # the highest watermark forgotten up to
        self._frozen_live = 0
        self._keys_bytes = 0.0  # bytes of a young id's keys, a running estimate
        self._adds = 0
        self._clear_young()
        self._stuck = 0  # young ids a freeze could not move (see add)
        self._set_limit()
        self.frozen_total = 0  # ids ever moved to disk

    def _clear_young(self) -> None:
        # the log of young closes, by position: live ones in _young, every one counted
        # once by forget (in order from _cursor; those out of forget order from _late,
        # the cursor skipping the positions of _late_set)
        self._young: dict[str, int] = {}
        self._ids: list[str] = []
        self._ts: list[float] = []
        self._fs: list[float] = []
        self._es: list[int] = []
        self._keys: dict[int, Keys] = {}  # by position, of the closes that have some
        self._shadows: set[int] = set()  # positions a dead frozen row counts already
        self._cursor = 0
        self._order_end = -float("inf")  # the highest forget time of the in-order closes
        self._late: list[tuple[float, int]] = []  # (forget at, position) out of order
        self._late_set: set[int] = set()

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
        self._set_limit()

    def __contains__(self, join_id: str) -> bool:
        if join_id in self._young:
            return True
        index = self._index
        if not index.runs:
            return False
        h = self._hash(join_id)
        w = (h >> index.shift) << 6
        a, b = w | (h & 63), w | ((h >> 6) & 63)
        bits = index.bits
        if not (bits[a >> 3] >> (a & 7)) & (bits[b >> 3] >> (b & 7)) & 1:
            return False
        return self._locate(join_id, h) is not None

    def _find(self, join_id: str) -> tuple[Generation, Row] | None:
        """The live row of a frozen id, through the bitmap."""
        index = self._index
        if not index.runs:
            return None
        h = self._hash(join_id)
        if not index.may_hold(h):
            return None
        return self._locate(join_id, h)

    def contains_many(self, join_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
        """``[id in self for id in join_ids]`` as an array, the prefilter vectorised."""
        young = self._young
        found = np.fromiter((j in young for j in join_ids), dtype=np.bool_, count=len(join_ids))
        if not self._index.runs:
            return found
        hashes = hash_many(self._hash, list(join_ids))
        for i in self._index.may_hold_many(hashes, ~found).tolist():
            found[i] = self._locate(join_ids[i], int(hashes[i])) is not None
        return found

    def get(self, join_id: str) -> tuple[float, Keys | None] | None:
        """The prediction time and outcome keys of a closed id, or ``None``. The keys are
        for reading: add one with ``add_key``."""
        pos = self._young.get(join_id)
        if pos is not None:
            return self._ts[pos], self._keys.get(pos)
        found = self._find(join_id)
        if found is None:
            return None
        row = found[1]
        return row.t, _unpack_keys(row.keys)

    def add(self, join_id: str, t: float, keys: Keys | None, forget_at: float,
            epoch: int, known_open: bool = False) -> None:
        """Close ``join_id`` (prediction time ``t``, the set ``keys`` is taken over) until
        the watermark passes ``forget_at``; ``epoch`` is the checkpoint epoch that logs the
        close. A closed id closed again is replaced (the old close is still counted by
        ``forget`` at its own time). ``known_open``: the caller knows ``join_id`` is not
        closed (the join closes a pending prediction, and a pending id is never closed),
        which spares looking for a frozen close to replace."""
        young = self._young
        if not known_open and self._index.runs and join_id not in young:
            self._kill(join_id)
        ids = self._ids
        pos = len(ids)
        ids.append(join_id)
        self._ts.append(t)
        self._fs.append(forget_at)
        self._es.append(epoch)
        young[join_id] = pos
        if keys:
            self._keys[pos] = keys
            self._adds += 1
            if self._adds % 97 == 1:
                size = sys.getsizeof(keys) + sum(sys.getsizeof(k) for k in keys)
                self._keys_bytes = 0.9 * self._keys_bytes + 0.1 * size
        if forget_at >= self._order_end:
            self._order_end = forget_at
        else:
            heapq.heappush(self._late, (forget_at, pos))
            self._late_set.add(pos)
        if len(young) >= self._trigger:
            self._full()

    def _append(self, join_id: str, t: float, keys: Keys | None, forget_at: float,
                epoch: int) -> int:
        """``add``'s log append, without its checks: the position."""
        pos = len(self._ids)
        self._ids.append(join_id)
        self._ts.append(t)
        self._fs.append(forget_at)
        self._es.append(epoch)
        self._young[join_id] = pos
        if keys:
            self._keys[pos] = keys
        if forget_at >= self._order_end:
            self._order_end = forget_at
        else:
            heapq.heappush(self._late, (forget_at, pos))
            self._late_set.add(pos)
        return pos

    def _full(self) -> None:
        if self._limit is None:
            return
        self.freeze()
        # what stays young is behind the last forget: wait for the next before retrying
        self._stuck = len(self._young) + YOUNG_MIN if len(self._young) >= self._limit else 0
        self._set_limit()

    def add_key(self, join_id: str, key: Any) -> None:
        """Add an outcome's dedupe key to a closed id (an outcome after its close).
        Raises ``KeyError`` if ``join_id`` is not closed."""
        pos = self._young.get(join_id)
        if pos is not None:
            keys = self._keys.get(pos)
            if keys is None:
                self._keys[pos] = {key}
            else:
                keys.add(key)
            return
        found = self._find(join_id)
        if found is None:
            raise KeyError(join_id)
        gen, row = found
        keys = _unpack_keys(row.keys) or set()
        keys.add(key)
        self._kill_row(gen, row.slot)  # it still counts the close: the young one is a shadow
        self._shadows.add(self._append(join_id, row.t, keys, row.forget_at, row.epoch))
        if len(self._young) >= self._trigger:
            self._full()

    def discard(self, join_id: str) -> None:
        """Forget ``join_id`` now, if closed (a restore meets a prediction whose close the
        original run had forgotten). Its close is still counted by ``forget``."""
        if self._young.pop(join_id, None) is None and self._index.runs:
            self._kill(join_id)

    def forget(self, watermark: float) -> Counter[int]:
        """Drop every close with ``forget_at < watermark``; return how many closes passed
        their forget time, per epoch (replaced and discarded ones too, each once)."""
        counts: Counter[int] = Counter()
        self._forgotten = max(self._forgotten, watermark)
        fs, late_set = self._fs, self._late_set
        c, n = self._cursor, len(fs)
        while c < n:
            if late_set and c in late_set:  # counted from the heap
                late_set.discard(c)
                c += 1
                continue
            if fs[c] >= watermark:
                break
            self._pass(c, counts)
            c += 1
        self._cursor = c
        late = self._late
        while late and late[0][0] < watermark:
            self._pass(heapq.heappop(late)[1], counts)
        if c >= COMPACT_AFTER and 2 * c >= n:
            self._compact_log(np.zeros(0, dtype=np.intp))
        waiting = self._waiting
        while waiting and waiting[0][0] < watermark:
            gen = self._gens[heapq.heappop(waiting)[1]]
            if gen.max_forget < watermark:
                counts.update(gen.epochs)
                self._drop(gen)
            else:
                self._rows.load(gen)
                self._inside[gen.number] = gen
        for gen in list(self._inside.values()):
            self._count_forgotten(gen, watermark, counts)
        if counts:
            self._stuck = 0
            self._set_limit()
        self._index.step()
        return counts

    def _pass(self, pos: int, counts: Counter[int]) -> None:
        """The young close at ``pos`` passed its forget time."""
        shadows = self._shadows
        if shadows and pos in shadows:
            shadows.discard(pos)
        else:
            counts[self._es[pos]] += 1
        join_id = self._ids[pos]
        if self._young.get(join_id) == pos:
            del self._young[join_id]
        if self._keys:
            self._keys.pop(pos, None)

    def empty_copy(self) -> ClosedIds:
        """A new, empty store with this one's budget, directory, name and hash."""
        return ClosedIds(self._budget, self._spill_dir, self._name, self._hash)

    def entries(self) -> Iterator[tuple[str, float, Keys | None, float, int]]:
        """Every closed id as ``(join id, t, keys, forget at, epoch)``, young first (for a
        compaction of the state segments)."""
        ts, fs, es, keys = self._ts, self._fs, self._es, self._keys
        for join_id, pos in list(self._young.items()):
            yield join_id, ts[pos], keys.get(pos), fs[pos], es[pos]
        for gen in list(self._gens.values()):
            if not gen.live:
                continue
            for row in self._rows.rows(gen):
                if (row.slot >= gen.counted and row.forget_at >= self._forgotten
                        and not gen.is_dead(row.slot)):
                    yield (row.join_id.decode(), row.t, _unpack_keys(row.keys), row.forget_at,
                           row.epoch)

    def memory_bytes(self) -> int:
        """What this holds in memory, estimated: the young ids at their measured size, the
        arrays at theirs."""
        young = (len(self._young) * (YOUNG_ENTRY_BYTES + self._keys_bytes)
                 + (len(self._ids) - len(self._young)) * LOG_ENTRY_BYTES)
        return int(young) + self._frozen_bytes()

    def close(self) -> None:
        """Delete the scratch file. The set is empty and reusable afterwards."""
        self._rows.close()
        self._clear_young()
        self._gens.clear()
        self._waiting.clear()
        self._inside.clear()
        self._index.clear()
        self._frozen_live = 0
        self._set_limit()

    # -- freezing ------------------------------------------------------------------------

    def freeze(self) -> None:
        """Move the young ids to disk now, as one generation (``add`` does it when the
        young part reaches its limit; more than ``GENERATION_MAX`` make several). An id
        whose forget time is already behind a watermark given to ``forget`` stays
        young: the next ``forget`` drops it."""
        young = self._young
        if not young:
            return
        ids = list(young)
        pos = np.fromiter(young.values(), dtype=np.intp, count=len(ids))
        forget = np.array(self._fs, dtype=np.float64)[pos]
        moving = forget >= self._forgotten
        if not moving.all():
            ids = [j for j, m in zip(ids, moving.tolist(), strict=True) if m]
            pos, forget = pos[moving], forget[moving]
            if not ids:
                return
        order = np.argsort(forget, kind="stable")
        pos, forget = pos[order], forget[order]
        ids = np.array(ids, dtype=object)[order].tolist()
        t = np.array(self._ts, dtype=np.float64)[pos]
        epoch = np.array(self._es, dtype=np.int64)[pos]
        flags = np.zeros(len(ids), dtype=np.uint8)
        packed: dict[int, bytes] = {}
        if self._shadows or self._keys:
            slot_of = dict(zip(pos.tolist(), range(len(ids)), strict=True))
            for p in self._shadows:
                s = slot_of.get(p)
                if s is not None:
                    flags[s] = UNCOUNTED
            for p, k in self._keys.items():
                s = slot_of.get(p)
                if s is not None and k:
                    packed[s] = msgpack.packb(list(k), use_bin_type=True)
        # A shadow (an id whose outcome came after its freeze) keeps its first forget
        # time, up to a horizon before the others': in a generation of its own, so it
        # does not make ``forget`` load a whole generation a horizon early.
        shadow = flags == UNCOUNTED
        groups = [np.flatnonzero(~shadow), np.flatnonzero(shadow)] if shadow.any() else [None]
        for rows in groups:
            if rows is None:
                self._write(forget, t, epoch, flags, ids, packed)
            elif rows.size:
                at = {int(s): i for i, s in enumerate(rows.tolist())}
                self._write(forget[rows], t[rows], epoch[rows], flags[rows],
                            [ids[i] for i in rows.tolist()],
                            {at[s]: b for s, b in packed.items() if s in at})
        if len(ids) == len(young):
            young.clear()
        else:
            for j in ids:
                del young[j]
        self._compact_log(pos)
        self._set_limit()

    def _write(self, forget: npt.NDArray[np.float64], t: npt.NDArray[np.float64],
               epoch: npt.NDArray[np.int64], flags: npt.NDArray[np.uint8], ids: list[str],
               packed: dict[int, bytes]) -> None:
        """Rows sorted by forget time as generations of at most ``GENERATION_MAX``."""
        for lo in range(0, len(ids), GENERATION_MAX):
            hi = min(lo + GENERATION_MAX, len(ids))
            chunk = {s - lo: b for s, b in packed.items() if lo <= s < hi} if packed else {}
            self._add_generation(forget[lo:hi], t[lo:hi], epoch[lo:hi], flags[lo:hi],
                                 ids[lo:hi], chunk)

    def _add_generation(self, forget: npt.NDArray[np.float64], t: npt.NDArray[np.float64],
                        epoch: npt.NDArray[np.int64], flags: npt.NDArray[np.uint8],
                        ids: list[str], packed: dict[int, bytes]) -> None:
        number = next(self._numbers)
        gen = self._rows.write(number, forget, t, epoch, flags, ids, packed)
        self._gens[number] = gen
        heapq.heappush(self._waiting, (gen.min_forget, number))
        self._frozen_live += gen.size
        self.frozen_total += gen.size
        self._index.add(number, hash_many(self._hash, ids), self._gens)

    def _compact_log(self, moved: npt.NDArray[np.intp]) -> None:
        """Rewrite the young log without the closes counted or ``moved`` to disk."""
        late = self._late_set  # out of order, at or after the cursor
        keep = np.zeros(len(self._ids), dtype=np.bool_)
        keep[self._cursor:] = True
        if late:
            keep[list(late)] = False  # counted from the heap, or soon
        in_order = keep.copy()
        if self._late:
            keep[[p for _, p in self._late]] = True
        keep[moved] = False
        kept = np.flatnonzero(keep).tolist()
        new_of = {p: i for i, p in enumerate(kept)}
        ids, ts, fs, es = self._ids, self._ts, self._fs, self._es
        self._ids = [ids[p] for p in kept]
        self._ts = [ts[p] for p in kept]
        self._fs = [fs[p] for p in kept]
        self._es = [es[p] for p in kept]
        self._young = {j: new_of[p] for j, p in self._young.items()}  # every live one is kept
        self._keys = {new_of[p]: k for p, k in self._keys.items() if p in new_of}
        self._shadows = {new_of[p] for p in self._shadows if p in new_of}
        self._late = [(f, new_of[p]) for f, p in self._late if p in new_of]
        heapq.heapify(self._late)
        self._late_set = {p for _, p in self._late}
        self._order_end = max((fs[p] for p in kept if in_order[p]), default=-float("inf"))
        self._cursor = 0

    # -- lookups -------------------------------------------------------------------------

    def _locate(self, join_id: str, h: int) -> tuple[Generation, Row] | None:
        """The live row of a frozen id, or None."""
        gens = self._gens
        slots: dict[int, list[int]] = {}
        for number, slot in self._index.candidates(h):
            gen = gens.get(number)
            if gen is None or slot < gen.counted or gen.is_dead(slot):
                continue
            slots.setdefault(number, []).append(slot)
        if not slots:
            return None
        want = join_id.encode()
        for number, candidates in slots.items():
            gen = gens[number]
            row = self._rows.find(gen, candidates, want)
            if row is not None and row.forget_at >= self._forgotten:
                return gen, row
        return None

    def _kill(self, join_id: str) -> None:
        """Mark a frozen id's row dead (it stays for ``forget`` to count)."""
        found = self._find(join_id)
        if found is not None:
            self._kill_row(found[0], found[1].slot)

    def _kill_row(self, gen: Generation, slot: int) -> None:
        gen.kill(slot)
        gen.live -= 1
        self._frozen_live -= 1

    # -- forgetting ----------------------------------------------------------------------

    def _count_forgotten(self, gen: Generation, watermark: float,
                         counts: Counter[int]) -> None:
        records, flags = gen.records, gen.flags
        if records is None or flags is None:
            raise RuntimeError(f"generation {gen.number} counted before it was loaded")
        upto = int(records["forget"].searchsorted(watermark, side="left"))
        if upto <= gen.counted:
            return
        lo = gen.counted
        epoch = records["epoch"][lo:upto][flags[lo:upto] == 0]
        epochs, n = np.unique(epoch, return_counts=True)
        counts.update(dict(zip(epochs.tolist(), n.tolist(), strict=True)))
        gone = (upto - lo) - gen.dead_between(lo, upto)
        gen.live -= gone
        self._frozen_live -= gone
        gen.counted = upto
        if upto == gen.size:
            del self._inside[gen.number]
            self._drop(gen)

    def _drop(self, gen: Generation) -> None:
        """Delete a generation wholly forgotten: its extent now, its hashes when their run
        is half stale (and the bitmap's bits when half of them are)."""
        self._rows.free(gen)
        del self._gens[gen.number]
        self._frozen_live -= gen.live
        gen.live = 0
        self._index.dropped(gen.number, gen.size, self._gens)

    # -- inside --------------------------------------------------------------------------

    def _frozen_bytes(self) -> int:
        return self._index.nbytes() + sum(g.nbytes() for g in self._gens.values())

    def _set_limit(self) -> None:
        self._limit = self._young_limit()
        # the young ids that make add freeze
        self._trigger: float = (float("inf") if self._limit is None
                                else max(self._limit, self._stuck))

    def _young_limit(self) -> int | None:
        if self._budget is None:
            return None
        spare = self._budget - self._frozen_bytes()
        return max(YOUNG_MIN, min(YOUNG_MAX, int(spare // (YOUNG_ENTRY_BYTES + self._keys_bytes))))


def _unpack_keys(packed: bytes | None) -> Keys | None:
    """Keys as they were: msgpack gives tuples back as lists."""
    if packed is None:
        return None
    return {tuple(k) if isinstance(k, list) else k
            for k in msgpack.unpackb(packed, raw=False, strict_map_key=False)}
