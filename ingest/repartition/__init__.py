"""The repartition stage: raw forwarder topics to internal, co-partitioned topics.

``partitioner`` computes a record's internal partition (murmur2 of its join id,
as Java clients and Kafka Streams do; per id, or per poll batch with numpy);
``frontier`` tracks the raw partitions' event-time frontiers and judges lateness;
``routes`` holds what the stage is given; ``rekey`` turns one poll batch into
re-keyed records and dead letters (columns, or rows as the reference); ``stage``
is the consume, re-key, produce, commit loop.
"""

from ingest.repartition.routes import IncompleteRun, Route, TimeRules
from ingest.repartition.stage import Repartitioner

__all__ = ["IncompleteRun", "Repartitioner", "Route", "TimeRules"]
