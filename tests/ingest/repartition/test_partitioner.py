"""The vectorised murmur2 against kafka-python's (Kafka's default partitioner), and the
batch frontier against one observation per record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner import murmur2

from ingest.repartition.frontier import Frontier
from ingest.repartition.partitioner import (
    internal_partition,
    internal_partitions,
    murmur2_many,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=70), max_size=40))
def test_murmur2_of_a_batch_equals_kafkas_murmur2_bit_for_bit(keys: list[bytes]) -> None:
    assert [int(h) for h in murmur2_many(keys)] == [murmur2(k) for k in keys]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=40), st.integers(1, 64))
def test_partitions_of_a_batch_equal_the_partition_of_each_id(ids: list[str],
                                                              partitions: int) -> None:
    assert internal_partitions(ids, partitions).tolist() == \
        [internal_partition(i, partitions) for i in ids]


def test_known_kafka_partitions() -> None:
    """The partitions a Java producer picks among 1000 for these keys (the vectors of
    kafka-python's Java-compatibility test), so both agree with Kafka, not only with
    each other."""
    assert internal_partitions(["", "a", "ab", "abc"], 1000).tolist() == [681, 524, 434, 107]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), max_size=60), st.integers(1, 4),
       st.floats(0, 50), st.floats(1, 1e5))
def test_a_batch_of_times_is_judged_as_one_record_at_a_time(
        times: list[float], votes: int, lateness: float, ahead_s: float) -> None:
    one, batch = Frontier(lateness, votes, ahead_s), Frontier(lateness, votes, ahead_s)
    expected = []
    for i, t in enumerate(times):
        if one.observe(t):
            expected.append((i, one.mark))
    assert batch.observe_all(times) == expected
    assert (batch.top, batch.late, batch.ahead) == (one.top, one.late, one.ahead)
