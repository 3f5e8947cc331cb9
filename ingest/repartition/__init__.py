"""The repartition stage: raw forwarder topics to internal, co-partitioned topics.

``partitioner`` computes a record's internal partition (murmur2 of its join id,
as Java clients and Kafka Streams do); ``frontier`` tracks the raw partitions'
event-time frontiers; ``stage`` is the consume, re-key, produce, commit loop.
"""

from ingest.repartition.stage import Repartitioner, Route

__all__ = ["Repartitioner", "Route"]
