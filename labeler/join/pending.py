"""Pending predictions of one partition: the newest in memory, the rest spilled to SQLite.

A prediction waits for its outcomes until its window closes: with a 24 h
window that is every prediction of the last day. ``PendingStore`` keeps
them by join id within ``memory_budget`` bytes (an estimate of the Python
objects, sampled as predictions arrive); beyond it, the oldest arrivals
move to a SQLite file on local disk. Outcomes mostly come soon after their
prediction, so the newest stay in memory; a spilled prediction that gets an
outcome moves back in.

Why SQLite: it ships with Python (no native build to keep), its page cache
is bounded (``cache_size``), so the process's memory stays near the budget
however many rows the file holds, and a B-tree index on the close time gives
the due predictions in order. The file is scratch space, opened fresh and
deleted on close: durability comes from the checkpoint's state segments
(see ``labeler.output.checkpoint``), from which a restart rebuilds this store. A
process killed before it could delete its files leaves them behind; the
next store opened in the same directory deletes those of processes that
are gone (``sweep_spill_dir``).
"""

from __future__ import annotations

import heapq
import itertools
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

from ingest.records import Outcome, Prediction
from ingest.wire.codec import pack, packb, unpack_outcome, unpack_prediction

SPILL_FRACTION = 0.1  # of the budget's predictions moved to disk at once, in one transaction
SIZE_SAMPLE_EVERY = 997  # predictions between two size samples
CACHE_KIB = 16 * 1024  # SQLite's page cache per store
SHARED_REFS = 4  # a string with more references than its dict's and ours is shared


class Pending:
    """A prediction waiting for its window to close, with the outcomes it collected."""

    __slots__ = ("prediction", "outcomes", "keys", "epoch")

    def __init__(self, prediction: Prediction, epoch: int = 0) -> None:
        self.prediction = prediction
        self.outcomes: list[Outcome] = []
        self.keys: set[Any] | None = None  # most predictions never see an outcome
        self.epoch = epoch  # the checkpoint epoch whose state segment holds its arrival

    def attach(self, outcome: Outcome) -> bool:
        """Add ``outcome`` unless it was seen already; return whether it was new."""
        key = outcome.dedupe_key
        if self.keys is None:
            self.keys = {key}
        elif key in self.keys:
            return False
        else:
            self.keys.add(key)
        self.outcomes.append(outcome)
        return True


def resident_size(pending: Pending) -> int:
    """Bytes the Python objects of one pending prediction take, roughly.

    A key of the feature dicts counts unless other objects hold it too (the
    JSON decoder shares the key strings it has seen between records).
    """
    p = pending.prediction
    size = sys.getsizeof(pending) + sys.getsizeof(p) + sys.getsizeof(p.join_id)
    for values in (p.features, p.prediction):
        size += sys.getsizeof(values)
        for key, value in values.items():
            size += sys.getsizeof(value)
            if sys.getrefcount(key) <= SHARED_REFS:
                size += sys.getsizeof(key)
    size += sys.getsizeof(pending.outcomes) + 120 * len(pending.outcomes)
    return size + 400  # its dict slot, close-heap entry and allocator overhead (measured)


class PendingStore:
    """Pending predictions by join id, within a memory budget.

    ``memory_budget`` of ``None`` keeps everything in memory (and never opens a file).
    """

    def __init__(self, memory_budget: int | None = None, spill_dir: str | Path | None = None,
                 name: str = "pending") -> None:
        self.memory_budget = memory_budget
        self._spill_path = (Path(spill_dir or default_spill_dir())
                            / f"{name}.{os.getpid()}.{id(self):x}.sqlite")
        self._memory: dict[str, tuple[float, Pending]] = {}
        self._heap: list[tuple[float, str]] = []
        self._db: sqlite3.Connection | None = None
        self._on_disk = 0
        self._adds = 0
        self._entry_size = 0.0  # bytes per in-memory entry, a running estimate
        self.spilled_total = 0  # predictions ever moved to disk
        self.promoted_total = 0  # and back to memory

    # -- the mapping ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._memory) + self._on_disk

    @property
    def in_memory(self) -> int:
        return len(self._memory)

    @property
    def on_disk(self) -> int:
        return self._on_disk

    def __contains__(self, join_id: str) -> bool:
        if join_id in self._memory:
            return True
        return self._on_disk > 0 and self._disk().execute(
            "SELECT 1 FROM pending WHERE join_id = ?", (join_id,)).fetchone() is not None

    def get(self, join_id: str) -> Pending | None:
        """The pending prediction of ``join_id``; one found on disk moves back to memory
        (the caller is about to change it)."""
        entry = self._memory.get(join_id)
        if entry is not None:
            return entry[1]
        row = self.take_row(join_id)
        if row is None:
            return None
        self.promoted_total += 1
        pending = _decode(row[2], row[1])
        self._keep(join_id, row[0], pending)
        return pending

    def add(self, pending: Pending, close_at: float) -> None:
        join_id = pending.prediction.join_id
        self._keep(join_id, close_at, pending)
        self._adds += 1
        if self.memory_budget is None:
            return
        if self._adds % SIZE_SAMPLE_EVERY == 1:
            size = resident_size(pending)
            self._entry_size = size if not self._entry_size else 0.9 * self._entry_size + 0.1 * size
        if len(self._memory) * self._entry_size > self.memory_budget:
            self._spill()

    def discard(self, join_id: str) -> Pending | None:
        """Remove ``join_id`` wherever it is; return it, or ``None`` if it was not pending."""
        entry = self._memory.pop(join_id, None)
        if entry is not None:
            return entry[1]  # its heap entry is skipped when it comes up
        pending = self.get(join_id)
        if pending is not None:
            del self._memory[join_id]
        return pending

    def pop_due(self, watermark: float) -> list[Pending]:
        """Remove and return every prediction whose close time is before ``watermark``,
        in order of (close time, join id)."""
        due: list[tuple[float, str, Pending]] = []
        heap, memory = self._heap, self._memory
        while heap and heap[0][0] < watermark:
            close_at, join_id = heapq.heappop(heap)
            entry = memory.get(join_id)
            if entry is not None and entry[0] == close_at:  # else spilled or gone: stale
                del memory[join_id]
                due.append((close_at, join_id, entry[1]))
        if self._on_disk:
            due.extend(self._pop_due_on_disk(watermark))
            due.sort(key=lambda d: (d[0], d[1]))
        return [d[2] for d in due]

    def values(self) -> Iterator[Pending]:
        """Every pending prediction (those on disk decoded one by one, not promoted)."""
        for _, pending in self._memory.values():
            yield pending
        if self._on_disk:
            for epoch, body in self._disk().execute("SELECT epoch, body FROM pending"):
                yield _decode(body, epoch)

    def set_epoch(self, epoch: int) -> None:
        """Say that every pending prediction's arrival is now logged in ``epoch``'s
        segment (after a compaction wrote them all there)."""
        for _, pending in self._memory.values():
            pending.epoch = epoch
        if self._on_disk:
            with self._disk() as db:
                db.execute("UPDATE pending SET epoch = ?", (epoch,))

    def close(self) -> None:
        """Drop the spill file. The store is empty and reusable afterwards."""
        if self._db is not None:
            close_scratch(self._db, self._spill_path)
            self._db = None
        self._memory.clear()
        self._heap.clear()
        self._on_disk = 0

    # -- bulk loading (``labeler.join.bulk``) ------------------------------------------------

    @property
    def entry_size(self) -> float:
        """Bytes per in-memory entry, the running estimate the budget is checked with."""
        return self._entry_size

    @entry_size.setter
    def entry_size(self, size: float) -> None:
        self._entry_size = size

    def keep(self, join_id: str, close_at: float, pending: Pending) -> None:
        """Hold ``pending`` in memory, as the newest arrival (no budget check)."""
        self._keep(join_id, close_at, pending)

    def insert_rows(self, rows: list[tuple[str, float, int, bytes]]) -> None:
        """Write ``(join_id, close_at, epoch, body)`` rows straight to the spill file."""
        if not rows:
            return
        db = self._disk()
        with db:
            db.executemany("INSERT INTO pending VALUES (?, ?, ?, ?)", rows)
        self._on_disk += len(rows)
        self.spilled_total += len(rows)

    def take_row(self, join_id: str) -> tuple[float, int, bytes] | None:
        """Remove ``join_id``'s row from the spill file and return it undecoded."""
        if not self._on_disk:
            return None
        db = self._disk()
        row = db.execute("SELECT close_at, epoch, body FROM pending WHERE join_id = ?",
                         (join_id,)).fetchone()
        if row is None:
            return None
        db.execute("DELETE FROM pending WHERE join_id = ?", (join_id,))
        self._on_disk -= 1
        return float(row[0]), int(row[1]), bytes(row[2])

    def delete_row(self, join_id: str) -> int | None:
        """Remove ``join_id``'s row from the spill file; the epoch it had, or ``None``."""
        row = self.take_row(join_id)
        return None if row is None else row[1]

    # -- inside ----------------------------------------------------------------------------

    def _keep(self, join_id: str, close_at: float, pending: Pending) -> None:
        self._memory[join_id] = (close_at, pending)
        heapq.heappush(self._heap, (close_at, join_id))

    def _spill(self) -> None:
        """Move the oldest arrivals to disk, until memory is a tenth below the budget."""
        capacity = int(self.memory_budget or 0) // max(int(self._entry_size), 1)
        count = len(self._memory) - int(capacity * (1 - SPILL_FRACTION))
        if count <= 0:
            return
        memory = self._memory
        oldest = list(itertools.islice(memory, count))
        rows = []
        for join_id in oldest:
            close_at, pending = memory.pop(join_id)
            rows.append((join_id, close_at, pending.epoch, _encode(pending)))
        db = self._disk()
        with db:
            db.executemany("INSERT INTO pending VALUES (?, ?, ?, ?)", rows)
        self._on_disk += len(rows)
        self.spilled_total += len(rows)
        if len(self._heap) > 4 * len(memory) + 1024:  # drop the stale entries now and then
            self._heap = [(c, j) for c, j in self._heap
                          if (e := memory.get(j)) is not None and e[0] == c]
            heapq.heapify(self._heap)

    def _pop_due_on_disk(self, watermark: float) -> list[tuple[float, str, Pending]]:
        db = self._disk()
        rows = db.execute("SELECT close_at, join_id, epoch, body FROM pending "
                          "WHERE close_at < ? ORDER BY close_at, join_id", (watermark,)).fetchall()
        if not rows:
            return []
        with db:
            db.execute("DELETE FROM pending WHERE close_at < ?", (watermark,))
        self._on_disk -= len(rows)
        return [(close_at, join_id, _decode(body, epoch))
                for close_at, join_id, epoch, body in rows]

    def _disk(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_scratch(self._spill_path)
            db.execute("CREATE TABLE pending (join_id TEXT PRIMARY KEY, close_at REAL NOT NULL, "
                       "epoch INTEGER NOT NULL, body BLOB NOT NULL)")
            db.execute("CREATE INDEX pending_by_close ON pending (close_at, join_id)")
            self._db = db
        return self._db


def _encode(pending: Pending) -> bytes:
    body = [pack(pending.prediction), [pack(o) for o in pending.outcomes]]
    return packb(body)


def _decode(body: bytes, epoch: int) -> Pending:
    packed, outcomes = msgpack.unpackb(body, raw=False, strict_map_key=False)
    pending = Pending(unpack_prediction(packed), epoch)
    for packed_outcome in outcomes:
        pending.attach(unpack_outcome(packed_outcome))
    return pending


_OPEN: set[Path] = set()  # spill files of this process's open stores


def open_scratch(path: Path, exclusive: bool = False,
                 cache_kib: int = CACHE_KIB) -> sqlite3.Connection:
    """A fresh SQLite scratch file at ``path`` (the pending predictions' spill store;
    the closed ids' rows use ``open_scratch_file``): rebuilt from the checkpoint after
    a crash, so no journal and no fsync; its page cache bounded to ``cache_kib``.
    ``exclusive`` keeps the lock (and the cache) between transactions: a file no other
    connection opens.
    Files of processes that are gone are swept first; ``close_scratch`` deletes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_spill_dir(path.parent)
    path.unlink(missing_ok=True)
    _OPEN.add(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if exclusive:
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute(f"PRAGMA cache_size = -{cache_kib}")
    db.execute("PRAGMA temp_store = FILE")
    return db


def close_scratch(db: sqlite3.Connection, path: Path) -> None:
    """Close and delete a file ``open_scratch`` opened."""
    db.close()
    path.unlink(missing_ok=True)
    _OPEN.discard(path)


def open_scratch_file(path: Path) -> int:
    """A fresh plain scratch file at ``path``, named like the SQLite ones
    (``<name>.<pid>.<hex>.<suffix>``; the closed ids' generations): a descriptor open
    for reading and writing, never synced. The scratch files of processes that are
    gone are swept first (``sweep_spill_dir``); pass the descriptor back to
    ``close_scratch_file`` to delete it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_spill_dir(path.parent)
    path.unlink(missing_ok=True)
    _OPEN.add(path)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)


def close_scratch_file(fd: int, path: Path) -> None:
    """Close and delete a file ``open_scratch_file`` opened."""
    os.close(fd)
    path.unlink(missing_ok=True)
    _OPEN.discard(path)


def default_spill_dir() -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / "loglabel-spill"


SCRATCH_SUFFIXES = (".sqlite", ".rows")  # the pending predictions', the closed ids'


def sweep_spill_dir(directory: Path) -> list[Path]:
    """Delete the scratch files (of either kind) that no running store owns: those of
    processes that are gone, and this process's own that no open store uses (left by
    an earlier process with the same pid, as in a restarted container). Returns them."""
    swept = []
    me = os.getpid()
    found = [p for suffix in SCRATCH_SUFFIXES for p in directory.glob(f"*.*.*{suffix}")]
    for path in found:
        try:
            pid = int(path.name.rsplit(".", 3)[1])
        except ValueError:
            continue
        if (pid == me and path not in _OPEN) or (pid != me and not _alive(pid)):
            path.unlink(missing_ok=True)
            swept.append(path)
    return swept


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True



