"""Which internal partition a join id goes to: murmur2, as Java clients and Kafka
Streams compute it, so a producer keyed by the join id agrees with us.

>>> internal_partition("r1", 4) == internal_partition("r1", 4)
True
>>> 0 <= internal_partition("request-42", 3) < 3
True
"""

from __future__ import annotations

from kafka.partitioner import murmur2


def internal_partition(join_id: str, partitions: int) -> int:
    """The partition of ``join_id`` among ``partitions`` (Kafka's default partitioner)."""
    return (murmur2(join_id.encode()) & 0x7FFFFFFF) % partitions
