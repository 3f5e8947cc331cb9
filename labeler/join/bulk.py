"""Restoring the pending predictions in bulk: from state segments to the store,
decoding only what stays in memory.

A restore replays every change the checkpoint's segments hold. Most pending
predictions of a large state end up spilled to disk, so decoding each into
Python objects (and encoding it again for the spill file) is wasted work.
``BulkLoad`` keeps each arrival as the bytes its segment holds (about a
quarter of the size of the objects) within a quarter of the store's memory
budget, and writes the older ones straight to the spill file. ``finish`` decodes
only the newest, as many as the live store keeps in memory, and writes the
rest to disk undecoded. The store ends as the live join would have left it:
the newest arrivals in memory, the oldest on disk.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgpack

from ingest.wire.codec import unpack_outcome, unpack_prediction
from labeler.join.pending import SPILL_FRACTION, Pending, PendingStore, resident_size

ENTRY_OVERHEAD = 200  # bytes of a held entry beyond its prediction's bytes (dict slot, list)
# Held bytes are kept to this share of the budget: bytes are about a quarter of the
# objects' size, so that still holds more than the objects the budget keeps, and the
# decoded objects plus the held bytes stay near the budget while ``finish`` runs.
HELD_SHARE = 0.25
SIZE_SAMPLE_EVERY = 997


class BulkLoad:
    """Arrivals, outcomes and closes replayed into ``store`` (see the module docstring).

    An entry is ``[close_at, epoch, prediction bytes, packed outcomes or None]``,
    the prediction bytes being ``msgpack.packb(codec.pack(prediction))``.
    """

    def __init__(self, store: PendingStore) -> None:
        self.store = store
        self.held: dict[str, list[Any]] = {}  # arrival order, oldest first
        self.held_bytes = 0

    def add(self, join_id: str, close_at: float, epoch: int, blob: bytes) -> None:
        self.held[join_id] = [close_at, epoch, blob, None]
        self.held_bytes += len(blob) + ENTRY_OVERHEAD
        budget = self.store.memory_budget
        if budget is not None and self.held_bytes > budget * HELD_SHARE:
            self._write_oldest(len(self.held) // 2)

    def attach(self, join_id: str, packed_outcome: Any) -> None:
        """An outcome joined ``join_id`` (ignored if it is not pending: it closed in a
        segment no longer kept)."""
        entry = self.held.get(join_id)
        if entry is None:
            row = self.store.take_row(join_id)
            if row is None:
                return
            close_at, epoch, body = row
            packed, outcomes = msgpack.unpackb(body, raw=False, strict_map_key=False)
            entry = [close_at, epoch, msgpack.packb(packed, use_bin_type=True), outcomes]
            self.held[join_id] = entry  # it moves to the newest, as a promotion does
            self.held_bytes += len(entry[2]) + ENTRY_OVERHEAD
        if entry[3] is None:
            entry[3] = []
        entry[3].append(packed_outcome)

    def discard(self, join_id: str) -> int | None:
        """``join_id``'s row was emitted: drop it; returns the epoch of its arrival,
        or ``None`` if it was not pending."""
        entry = self.held.pop(join_id, None)
        if entry is not None:
            self.held_bytes -= len(entry[2]) + ENTRY_OVERHEAD
            return int(entry[1])
        return self.store.delete_row(join_id)

    def finish(self) -> None:
        """Hand everything to the store: the newest decoded into memory, within its
        budget less the spill margin; the rest written to disk as they are."""
        store = self.store
        budget = store.memory_budget
        kept: list[tuple[str, float, Pending]] = []
        size = 0.0
        for i, (join_id, entry) in enumerate(reversed(self.held.items())):
            pending = _decode(entry)
            if budget is not None:
                if i % SIZE_SAMPLE_EVERY == 0:
                    sample = resident_size(pending)
                    size = sample if not size else 0.9 * size + 0.1 * sample
                if (i + 1) * size > budget * (1 - SPILL_FRACTION):
                    break
            kept.append((join_id, entry[0], pending))
        self._write_oldest(len(self.held) - len(kept))
        for join_id, close_at, pending in reversed(kept):
            store.keep(join_id, close_at, pending)
        if size:
            store.entry_size = size
        self.held = {}
        self.held_bytes = 0

    def _write_oldest(self, count: int) -> None:
        if count <= 0:
            return
        rows = []
        for join_id in list(itertools.islice(self.held, count)):
            close_at, epoch, blob, outcomes = self.held.pop(join_id)
            self.held_bytes -= len(blob) + ENTRY_OVERHEAD
            # the spill file's body is msgpack [prediction, outcomes]: a 2-array
            # header, then the prediction's bytes as they are, then the outcomes
            body = b"\x92" + blob + msgpack.packb(outcomes or [], use_bin_type=True)
            rows.append((join_id, close_at, epoch, body))
        self.store.insert_rows(rows)


def _decode(entry: list[Any]) -> Pending:
    packed = msgpack.unpackb(entry[2], raw=False, strict_map_key=False)
    pending = Pending(unpack_prediction(packed), entry[1])
    for packed_outcome in entry[3] or ():
        pending.attach(unpack_outcome(packed_outcome))
    return pending
