"""The repartition stage: raw forwarder topics to internal, co-partitioned topics.

``partitioner`` computes a record's internal partition (murmur2 of its join id,
as Java clients and Kafka Streams do); ``frontier`` tracks the raw partitions'
event-time frontiers and judges lateness; ``routes`` holds what the stage is
given; ``stage`` is the consume, re-key, produce, commit loop.
"""

from ingest.repartition.routes import IncompleteRun, Route, TimeRules
from ingest.repartition.stage import Repartitioner

__all__ = ["IncompleteRun", "Repartitioner", "Route", "TimeRules"]
