"""The rows of the frozen closed ids: one extent of a plain scratch file a generation.

A freeze writes the young ids as one **generation**, in one ``pwritev`` of arrays
numpy built, laid out by slot (the slots number the ids in forget-time order):

* ``records``: ``n`` fixed-width records: forget time and prediction time
  (float64), epoch (int64), and the cumulative ends of the id and of the keys;
* ``flags``: ``n`` bytes, ``UNCOUNTED`` on a row that only carries a close some
  dead row counts already (an outcome's key added after the freeze);
* the ids (UTF-8) end to end, then the msgpack'd keys of the ids that have any.

A lookup reads one or two records and the id at the row's offset (``os.pread``);
``forget`` reads the records of a generation the watermark is inside. Dead marks
and counting state stay in memory (``Generation``), a few bits an id at most.

The file is scratch space like the SQLite spill files (``labeler.join.pending``):
deleted on close, swept when its process is gone, never synced. Extents are
page-aligned; a dropped generation's pages are punched out at once (where the
file system can) and its extent reused by the next generation that fits, so the
file never holds more than the live generations and some free extents.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import os
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from labeler.join.pending import close_scratch_file, open_scratch_file

RECORD = np.dtype([("forget", "<f8"), ("t", "<f8"), ("epoch", "<i8"), ("id_end", "<u4"),
                   ("keys_end", "<u4")])
UNCOUNTED = 1
PAGE = 4096
GENERATION_BYTES = 600  # the bookkeeping of one generation in memory
_ONE = struct.Struct("<ddqII")  # one RECORD
_TWO = struct.Struct("<ddqIIddqII")  # two in a row
_U32 = (1 << 32) - 1


class Generation:
    """One frozen batch of closes: where its rows are, and what is known of them in
    memory (dead marks, how many are counted, its forget times once loaded)."""

    __slots__ = ("number", "size", "live", "min_forget", "max_forget", "epochs", "counted",
                 "offset", "length", "ids_at", "keys_at", "dead", "records", "flags")

    def __init__(self, number: int, size: int, min_forget: float, max_forget: float,
                 epochs: Counter[int]) -> None:
        self.number, self.size, self.live = number, size, size
        self.min_forget, self.max_forget = min_forget, max_forget
        self.epochs = epochs  # of the counted rows: a generation dropped whole counts these
        self.counted = 0  # slots below this are forgotten (and counted)
        self.offset = self.length = self.ids_at = self.keys_at = 0
        self.dead: bytearray | None = None  # a bit a slot, once one dies
        # loaded once the watermark is inside the generation, by slot:
        self.records: npt.NDArray[np.void] | None = None
        self.flags: npt.NDArray[np.uint8] | None = None

    def is_dead(self, slot: int) -> bool:
        dead = self.dead
        return dead is not None and bool((dead[slot >> 3] >> (slot & 7)) & 1)

    def kill(self, slot: int) -> None:
        if self.dead is None:
            self.dead = bytearray((self.size + 7) // 8)
        self.dead[slot >> 3] |= 1 << (slot & 7)

    def dead_between(self, lo: int, hi: int) -> int:
        if self.dead is None:
            return 0
        bits = np.unpackbits(np.frombuffer(self.dead, dtype=np.uint8), bitorder="little")
        return int(bits[lo:hi].sum())

    def nbytes(self) -> int:
        size = GENERATION_BYTES + (len(self.dead) if self.dead is not None else 0)
        if self.records is not None and self.flags is not None:
            size += self.records.nbytes + self.flags.nbytes
        return size


class Row:
    """One frozen close as read back."""

    __slots__ = ("slot", "join_id", "t", "forget_at", "epoch", "keys")

    def __init__(self, slot: int, join_id: bytes, t: float, forget_at: float, epoch: int,
                 keys: bytes | None) -> None:
        self.slot, self.join_id, self.t, self.forget_at = slot, join_id, t, forget_at
        self.epoch, self.keys = epoch, keys


class RowFile:
    """The generations of one store, extents of one scratch file (opened at the first
    write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._end = 0  # of the file
        self._free: list[tuple[int, int]] = []  # (offset, length) of free extents, sorted

    def write(self, number: int, forget: npt.NDArray[np.float64], t: npt.NDArray[np.float64],
              epoch: npt.NDArray[np.int64], flags: npt.NDArray[np.uint8], join_ids: list[str],
              keys: dict[int, bytes]) -> Generation:
        """Write one generation (slot ``i``: ``join_ids[i]``, ``forget[i]``, ...; ``forget``
        sorted; ``keys``: packed keys by slot, of the slots that have some)."""
        n = len(join_ids)
        text = "".join(join_ids)
        id_blob = text.encode()
        if len(id_blob) == len(text):  # ASCII, as ids almost always are
            id_len = np.fromiter(map(len, join_ids), dtype=np.int64, count=n)
        else:
            encoded = [j.encode() for j in join_ids]
            id_len = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
            id_blob = b"".join(encoded)
        key_len = np.zeros(n, dtype=np.int64)
        key_blob = b""
        if keys:
            slots = sorted(keys)
            key_len[slots] = [len(keys[s]) for s in slots]
            key_blob = b"".join(keys[s] for s in slots)
        if len(id_blob) > _U32 or len(key_blob) > _U32:
            raise ValueError("a generation's ids or keys exceed 4 GiB")
        records = np.empty(n, dtype=RECORD)
        records["forget"], records["t"], records["epoch"] = forget, t, epoch
        records["id_end"] = np.cumsum(id_len)
        records["keys_end"] = np.cumsum(key_len)
        pad = b"\0" * (-n % 8)
        length = records.nbytes + n + len(pad) + len(id_blob) + len(key_blob)
        offset = self._allocate(length)
        buffers = [records.tobytes(), flags.astype(np.uint8).tobytes(), pad, id_blob, key_blob]
        written = os.pwritev(self._disk(), buffers, offset)
        if written != length:  # a regular file writes it all; should it not, write the rest
            whole = b"".join(buffers)
            while written < length:
                written += os.pwrite(self._disk(), whole[written:], offset + written)
        gen = Generation(number, n, float(forget[0]), float(forget[-1]), _counted(epoch, flags))
        gen.offset, gen.length = offset, length
        gen.ids_at = offset + records.nbytes + n + len(pad)
        gen.keys_at = gen.ids_at + len(id_blob)
        return gen

    def find(self, gen: Generation, slots: list[int], join_id: bytes) -> Row | None:
        """The row of ``join_id`` among ``slots`` of ``gen``, if one of them holds it."""
        fd = self._disk()
        if len(slots) > 2:  # colliding hashes: read the records and ids once
            for row in self.rows(gen, set(slots)):
                if row.join_id == join_id:
                    return row
            return None
        for slot in slots:
            if slot:
                buf = os.pread(fd, 2 * RECORD.itemsize, gen.offset + (slot - 1) * RECORD.itemsize)
                _, _, _, id_start, keys_start, forget, t, epoch, id_end, keys_end = (
                    _TWO.unpack(buf))
            else:
                forget, t, epoch, id_end, keys_end = _ONE.unpack(
                    os.pread(fd, RECORD.itemsize, gen.offset))
                id_start = keys_start = 0
            if id_end - id_start != len(join_id) or os.pread(
                    fd, id_end - id_start, gen.ids_at + id_start) != join_id:
                continue
            keys = (os.pread(fd, keys_end - keys_start, gen.keys_at + keys_start)
                    if keys_end > keys_start else None)
            return Row(slot, join_id, t, forget, epoch, keys)
        return None

    def rows(self, gen: Generation, only: set[int] | None = None) -> Iterator[Row]:
        """The rows of ``gen`` in slot order (or those of the slots ``only``), from one
        read of the extent."""
        whole = os.pread(self._disk(), gen.length, gen.offset)
        n = gen.size
        records = np.frombuffer(whole, dtype=RECORD, count=n)
        ids_at, keys_at = gen.ids_at - gen.offset, gen.keys_at - gen.offset
        id_end = records["id_end"].tolist()
        keys_end = records["keys_end"].tolist()
        forget, t, epoch = (records[f].tolist() for f in ("forget", "t", "epoch"))
        id_start = keys_start = 0
        for slot in range(n):
            if only is None or slot in only:
                ke = keys_end[slot]
                yield Row(slot, whole[ids_at + id_start:ids_at + id_end[slot]], t[slot],
                          forget[slot], epoch[slot],
                          whole[keys_at + keys_start:keys_at + ke] if ke > keys_start else None)
            id_start, keys_start = id_end[slot], keys_end[slot]

    def load(self, gen: Generation) -> None:
        """Read the records and flags of ``gen`` into memory (the watermark is inside it)."""
        n = gen.size
        buf = os.pread(self._disk(), n * RECORD.itemsize + n, gen.offset)
        gen.records = np.frombuffer(buf, dtype=RECORD, count=n)
        gen.flags = np.frombuffer(buf, dtype=np.uint8, count=n, offset=n * RECORD.itemsize)

    def free(self, gen: Generation) -> None:
        """Give ``gen``'s extent back: punched out now, reused by a later generation."""
        offset, length = gen.offset, _pages(gen.length)
        gen.records = gen.flags = None
        free = self._free
        i = bisect.bisect(free, (offset, length))
        if i < len(free) and offset + length == free[i][0]:  # joins the next free extent
            length += free.pop(i)[1]
        if i and free[i - 1][0] + free[i - 1][1] == offset:  # and the one before
            offset, length = free[i - 1][0], free[i - 1][1] + length
            free.pop(i - 1)
            i -= 1
        if offset + length >= self._end:
            self._end = offset
            if self._fd is not None:
                os.ftruncate(self._fd, offset)
            return
        free.insert(i, (offset, length))
        if self._fd is not None:
            _punch(self._fd, gen.offset, _pages(gen.length))

    def disk_bytes(self) -> int:
        """Bytes the file takes on disk (its allocated blocks)."""
        return os.fstat(self._fd).st_blocks * 512 if self._fd is not None else 0

    def close(self) -> None:
        """Delete the file; the next write opens a new one."""
        if self._fd is not None:
            close_scratch_file(self._fd, self.path)
            self._fd = None
        self._end = 0
        self._free.clear()

    def _allocate(self, length: int) -> int:
        need = _pages(length)
        for i, (offset, size) in enumerate(self._free):
            if size >= need:
                if size == need:
                    del self._free[i]
                else:
                    self._free[i] = (offset + need, size - need)
                return offset
        offset = self._end
        self._end += need
        return offset

    def _disk(self) -> int:
        if self._fd is None:
            self._fd = open_scratch_file(self.path)
        return self._fd


def _counted(epoch: npt.NDArray[np.int64], flags: npt.NDArray[np.uint8]) -> Counter[int]:
    epochs, n = np.unique(epoch[flags == 0], return_counts=True)
    return Counter(dict(zip(epochs.tolist(), n.tolist(), strict=True)))


def _pages(length: int) -> int:
    return -(-length // PAGE) * PAGE


_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2
_fallocate = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    _fallocate = _libc.fallocate
    _fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    _fallocate.restype = ctypes.c_int
except (OSError, AttributeError):  # not Linux: extents are still reused
    _fallocate = None


def _punch(fd: int, offset: int, length: int) -> None:
    """Free the disk blocks of a byte range, keeping the file's size (Linux)."""
    global _fallocate
    if _fallocate is not None and _fallocate(
            fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE, offset, length) != 0:
        _fallocate = None  # the file system cannot: extents are still reused
