"""Which internal partition a join id goes to: murmur2, as Java clients and Kafka
Streams compute it, so a producer keyed by the join id agrees with us.

``internal_partition`` hashes one id with kafka-python's own murmur2 (the
reference); ``internal_partitions`` hashes a whole poll batch at once with numpy
and gives the same partitions bit for bit (a property test holds them equal).

>>> internal_partition("r1", 4) == internal_partition("r1", 4)
True
>>> 0 <= internal_partition("request-42", 3) < 3
True
>>> [int(p) for p in internal_partitions(["r1", "request-42", ""], 3)] == \\
...     [internal_partition(k, 3) for k in ["r1", "request-42", ""]]
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from kafka.partitioner import murmur2

_SEED = np.uint32(0x9747B28C)
_M = np.uint32(0x5BD1E995)


def internal_partition(join_id: str, partitions: int) -> int:
    """The partition of ``join_id`` among ``partitions`` (Kafka's default partitioner)."""
    return (murmur2(join_id.encode()) & 0x7FFFFFFF) % partitions


def murmur2_many(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """Kafka's murmur2 of every key, as unsigned 32-bit values (``murmur2`` per key).

    The keys are laid out as rows of a zero-padded byte matrix and read as
    little-endian 32-bit words; each block step runs over every row at once and
    leaves the rows that have no such block unchanged. uint32 arithmetic wraps
    exactly as Java's int does. Zero padding makes the tail word the XOR of the
    tail bytes that the reference folds in one by one.
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    words_per_row = max(1, (int(lengths.max()) + 3) // 4)
    matrix = np.zeros((n, 4 * words_per_row), dtype=np.uint8)
    flat = np.frombuffer(b"".join(keys), dtype=np.uint8)
    if flat.size:
        rows = np.repeat(np.arange(n), lengths)
        starts = np.cumsum(lengths) - lengths
        matrix[rows, np.arange(flat.size) - np.repeat(starts, lengths)] = flat
    words = matrix.view("<u4").astype(np.uint32)
    blocks = lengths // 4
    h = _SEED ^ lengths.astype(np.uint32)
    for j in range(words_per_row):
        active = blocks > j
        if not active.any():
            break
        k = words[:, j] * _M
        k ^= k >> np.uint32(24)
        k *= _M
        h = np.where(active, (h * _M) ^ k, h)
    tail = (lengths % 4) > 0
    if tail.any():
        column = np.minimum(blocks, words_per_row - 1)
        last = words[np.arange(n), column]
        h = np.where(tail, (h ^ last) * _M, h)
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h


def internal_partitions(join_ids: Sequence[str], partitions: int) -> npt.NDArray[np.int64]:
    """``internal_partition`` of every id of a batch, computed at once."""
    hashes = murmur2_many([join_id.encode() for join_id in join_ids])
    return (hashes & np.uint32(0x7FFFFFFF)).astype(np.int64) % partitions
