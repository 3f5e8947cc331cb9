"""The state log: every change to a partition's join state, in order, as msgpack.

A checkpoint keeps these logs as state segments instead of snapshotting the
pending state (``labeler.output.checkpoint``); ``PartitionJoin.restore``
replays them. The changes:

* ``[ADD, join_id, event_time, prediction]``: a prediction arrived (its
  ``ingest.wire.codec.pack`` form as msgpack bytes, so a restore need not decode it);
* ``[ATTACH, join_id, outcome]``: an outcome joined a pending prediction;
* ``[CLOSE, join_id, prediction_time, outcome_keys]``: its row was emitted (the
  time and keys serve the dedupe horizon);
* ``[LATE, join_id, outcome_key]``: a late outcome's key, after the close.

>>> data = change([ADD, ["r1"]]) + change([LATE, "r1", "k"])
>>> list(read_log(data))
[[0, ['r1']], [3, 'r1', 'k']]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack

from ingest.wire.codec import packb

ADD, ATTACH, CLOSE, LATE = 0, 1, 2, 3


def change(entry: list[Any]) -> bytes:
    """One change, encoded for the log."""
    return packb(entry)


def read_log(data: bytes | memoryview) -> Iterator[list[Any]]:
    """The changes of a log (``b"".join(join.log)``, as a state segment holds it), in order."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=0)
    unpacker.feed(data)
    yield from unpacker
    if unpacker.tell() != len(data):
        raise ValueError(f"the log ends in the middle of a change (byte {unpacker.tell()} "
                         f"of {len(data)})")
