"""The hashes of the frozen closed ids, in memory: sorted runs and a Bloom bitmap.

Each frozen id is one 64-bit hash and one 32-bit reference to its row (which
generation of the run, which slot of the generation) in a **run**: sorted
uint64 arrays merged as they grow (at most ``RUN_MAX`` each, so about
log2(ids / generation) runs). In front of them a **bitmap**, a blocked Bloom
filter of 8 to 32 bits an id (two bits in one 64-bit word), answers the common
question, an id that is not closed, in two probes. About 16 bytes an id in all.

The index only says where a hash's rows are; ``labeler.join.closed_rows`` holds
the rows and ``labeler.join.closed`` checks the exact id, so a collision costs a
read, never an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator

import numpy as np
import numpy.typing as npt

SLOT_BITS = 16  # a reference is (generation of the run << SLOT_BITS) | slot
GENERATION_MAX = 1 << SLOT_BITS  # slots of one generation
MEMBERS_MAX = 1 << (32 - SLOT_BITS)  # generations of one run
RUN_MAX = 1 << 20  # hashes in one run: bounds the pause of a merge (~100 ms)
BUILD_BITS = 1 << 20  # a slice of a bitmap being built
BUILD_SLICES = 4  # slices built per freeze or forget
BITS_PER_ID = 16  # of the bitmap when built; rebuilt below 8 (a miss passes with p < 1/20)
RUN_BYTES = 200  # the bookkeeping of one run
M64 = (1 << 64) - 1
_SLOT_MASK = np.uint32(GENERATION_MAX - 1)

Hash = Callable[[str], int]


def default_hash(join_id: str) -> int:
    """A join id's 64-bit hash: Python's own (SipHash, cached in the string, salted per
    process, which is fine for a store that never outlives its process)."""
    return hash(join_id) & M64


def hash_many(hash_fn: Hash, join_ids: list[str]) -> npt.NDArray[np.uint64]:
    """``[hash_fn(j) for j in join_ids]`` as uint64; Python's hash read as unsigned
    directly (the same value as ``default_hash``, without a call per id)."""
    if hash_fn is default_hash:
        return np.fromiter(map(hash, join_ids), dtype=np.int64,
                           count=len(join_ids)).view(np.uint64)
    return np.fromiter(map(hash_fn, join_ids), dtype=np.uint64, count=len(join_ids))


class Run:
    """Sorted hashes of some generations, each with a reference to its row."""

    __slots__ = ("hashes", "refs", "members", "member_set", "stale")

    def __init__(self, hashes: npt.NDArray[np.uint64], refs: npt.NDArray[np.uint32],
                 members: list[int]) -> None:
        self.hashes, self.refs, self.stale = hashes, refs, 0
        self.members, self.member_set = members, set(members)  # a reference's index: number

    def __len__(self) -> int:
        return len(self.hashes)


class _Bitmap:
    """A bitmap being built, slice by slice, while the one in use answers."""

    __slots__ = ("bits", "nbits", "shift", "cursor", "set", "stale")

    def __init__(self, nbits: int, live: int, stale: int) -> None:
        self.bits = bytearray(nbits // 8)
        self.nbits, self.shift, self.cursor = nbits, 64 - (nbits.bit_length() - 1 - 6), 0
        self.set, self.stale = live + stale, stale  # as bits_set and bits_stale will be


class HashIndex:
    """Hash -> (generation number, slot) of the frozen ids, and the bitmap before it.

    ``bits`` and ``shift`` are read by the caller's inlined probe (a miss is the hot
    path): a hash's word is ``hash >> shift``, its bits the two low 6-bit fields."""

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self.bits = bytearray(8)
        self.shift = 64
        self.bits_set = 0  # hashes put in the bitmap since it was built, stale ones too
        self.bits_stale = 0
        self.next: _Bitmap | None = None  # the bitmap being built

    def clear(self) -> None:
        self.runs = []
        self.bits, self.shift, self.bits_set, self.bits_stale = bytearray(8), 64, 0, 0
        self.next = None

    def nbytes(self) -> int:
        runs = sum(r.hashes.nbytes + r.refs.nbytes + 16 * len(r.members) + RUN_BYTES
                   for r in self.runs)
        return runs + len(self.bits) + (len(self.next.bits) if self.next is not None else 0)

    def add(self, number: int, hashes: npt.NDArray[np.uint64], alive: Container[int]) -> None:
        """Index generation ``number`` whose slot ``i`` holds the id of ``hashes[i]``."""
        order = np.argsort(hashes, kind="stable")
        sorted_hashes = hashes[order]
        self.runs.append(Run(sorted_hashes, order.astype(np.uint32), [number]))
        self._merge(alive)
        self._bitmap_add(sorted_hashes)
        self.step()

    def may_hold(self, h: int) -> bool:
        w = (h >> self.shift) << 6
        a, b = w | (h & 63), w | ((h >> 6) & 63)
        bits = self.bits
        return bool((bits[a >> 3] >> (a & 7)) & (bits[b >> 3] >> (b & 7)) & 1)

    def candidates(self, h: int) -> Iterator[tuple[int, int]]:
        """(generation number, slot) of every indexed row with hash ``h``, newest run
        first; rows of generations dropped may be among them."""
        key = np.uint64(h)  # a plain int below 2**63 would make numpy search in float64
        for run in reversed(self.runs):
            hs = run.hashes
            i = int(hs.searchsorted(key))
            while i < len(hs) and hs[i] == h:
                ref = int(run.refs[i])
                yield run.members[ref >> SLOT_BITS], ref & (GENERATION_MAX - 1)
                i += 1

    def may_hold_many(self, hashes: npt.NDArray[np.uint64],
                      among: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
        """Indexes, among those ``among`` marks, of the hashes some run holds."""
        bits = np.frombuffer(self.bits, dtype=np.uint8)
        maybe = among.copy()
        for x in bit_positions(hashes, self.shift):
            maybe &= ((bits[(x >> np.uint64(3)).astype(np.intp)]
                       >> (x & np.uint64(7)).astype(np.uint8)) & 1).astype(np.bool_)
        candidates = np.flatnonzero(maybe)
        if not len(candidates) or not self.runs:
            return candidates[:0]
        hit = np.zeros(len(candidates), dtype=np.bool_)
        for run in self.runs:
            hs = run.hashes
            at = np.minimum(hs.searchsorted(hashes[candidates]), len(hs) - 1)
            hit |= hs[at] == hashes[candidates]
        return candidates[hit]

    def dropped(self, number: int, size: int, alive: Container[int]) -> None:
        """Generation ``number`` (``size`` ids) is gone: its hashes go when their run is
        half stale, the bitmap's bits when half of them are."""
        self.bits_stale += size
        if self.next is not None:
            self.next.stale += size
        for i, run in enumerate(self.runs):
            if number in run.member_set:
                run.stale += size
                if 2 * run.stale >= len(run):
                    purged = _purged(run, alive)
                    if len(purged):
                        self.runs[i] = purged
                    else:
                        del self.runs[i]
                break
        if self.next is None and 2 * self.bits_stale >= self.bits_set:
            self.start()

    def _merge(self, alive: Container[int]) -> None:
        """Merge the newest runs while the older is not more than twice the newer, up to
        RUN_MAX hashes and MEMBERS_MAX generations a run."""
        runs = self.runs
        while (len(runs) >= 2 and len(runs[-2]) <= 2 * len(runs[-1])
               and len(runs[-2]) + len(runs[-1]) <= RUN_MAX
               and len(runs[-2].members) + len(runs[-1].members) <= MEMBERS_MAX):
            newer = runs.pop()
            older = runs.pop()
            runs.append(_merged(_purged(older, alive), _purged(newer, alive)))

    # -- the bitmap ----------------------------------------------------------------------

    def _bitmap_add(self, hashes: npt.NDArray[np.uint64]) -> None:
        self.bits_set += len(hashes)
        targets = [(self.bits, self.shift)]
        if self.next is not None:
            self.next.set += len(hashes)
            targets.append((self.next.bits, self.next.shift))
        for bytes_, shift in targets:
            bits = np.frombuffer(bytes_, dtype=np.uint8)
            for x in bit_positions(hashes, shift):
                np.bitwise_or.at(bits, (x >> np.uint64(3)).astype(np.intp),
                                 np.left_shift(1, (x & np.uint64(7)).astype(np.uint8))
                                 .astype(np.uint8))
        if self.next is None and self.bits_set * BITS_PER_ID > 8 * len(self.bits) * 2:
            self.start()

    def start(self) -> None:
        """Begin a new bitmap sized for the hashes held now, 16 to 32 bits each; the old
        one answers until ``step`` has built all of it."""
        live = sum(len(r) - r.stale for r in self.runs)
        nbits = max(1 << 13, 1 << int(live * BITS_PER_ID - 1).bit_length())
        self.next = _Bitmap(nbits, live, sum(r.stale for r in self.runs))
        self.step()

    def step(self) -> None:
        """Build the next few slices of the new bitmap (a bounded pause: BUILD_SLICES
        slices of BUILD_BITS, a few milliseconds at 18 M ids), then put it in use. A
        run's hashes are sorted, so are the words they fall in: a slice is a range."""
        build = self.next
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
            for run in self.runs:
                lo = int(run.hashes.searchsorted(first))
                hi = int(run.hashes.searchsorted(last, side="right"))
                for x in bit_positions(run.hashes[lo:hi], build.shift):
                    flags[(x - np.uint64(start)).astype(np.intp)] = True
            bits[start // 8:(start + chunk) // 8] = np.packbits(flags, bitorder="little")
            build.cursor = start + chunk
        if build.cursor >= build.nbits:
            self.bits, self.shift = build.bits, build.shift
            self.bits_set, self.bits_stale = build.set, build.stale
            self.next = None

    def build(self) -> None:
        """A new bitmap now, whole (tests; the index itself builds it in steps)."""
        self.next = None
        self.start()
        while self.next is not None:
            self.step()


def bit_positions(hashes: npt.NDArray[np.uint64],
                  shift: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """The two bits of each hash: a blocked Bloom filter, both in the 64-bit word its top
    bits name, at two positions its low bits give (a miss passes with p ~ 1/50 at 16 bits
    an id, ~1/20 at 8, against 1/16 and 1/8 with one bit)."""
    word = (hashes >> np.uint64(shift)) << np.uint64(6)
    return word | (hashes & np.uint64(63)), word | ((hashes >> np.uint64(6)) & np.uint64(63))


def _merged(older: Run, newer: Run) -> Run:
    """Two sorted runs as one: the newer's hashes go after the older's equal ones (a
    search and two scatters, twice as fast as a stable sort of both); the newer's
    references move past the older's generations."""
    n = len(older) + len(newer)
    at = older.hashes.searchsorted(newer.hashes, side="right") + np.arange(len(newer))
    rest = np.ones(n, dtype=np.bool_)
    rest[at] = False
    hashes = np.empty(n, dtype=np.uint64)
    refs = np.empty(n, dtype=np.uint32)
    hashes[at] = newer.hashes
    refs[at] = newer.refs + np.uint32(len(older.members) << SLOT_BITS)
    hashes[rest], refs[rest] = older.hashes, older.refs
    return Run(hashes, refs, older.members + newer.members)


def _purged(run: Run, alive: Container[int]) -> Run:
    """``run`` without the hashes of generations gone."""
    if not run.stale:
        return run
    keep_member = np.fromiter((m in alive for m in run.members), dtype=np.bool_,
                              count=len(run.members))
    renumber = (np.cumsum(keep_member, dtype=np.uint32) - np.uint32(1)) << np.uint32(SLOT_BITS)
    member = run.refs >> np.uint32(SLOT_BITS)
    keep = keep_member[member]
    refs = renumber[member[keep]] | (run.refs[keep] & _SLOT_MASK)
    members = [m for m, k in zip(run.members, keep_member.tolist(), strict=True) if k]
    return Run(run.hashes[keep], refs.astype(np.uint32), members)
