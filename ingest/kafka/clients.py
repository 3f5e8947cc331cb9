"""The one place loglabel builds Kafka clients.

Every client comes from here, so every client gets the same treatment:
kafka-python's transport patch (``ingest.kafka.patch``) is installed first, and
values are always read as raw bytes, to be decoded in our own code (never in
kafka-python's ``value_deserializer``, where one bad message would make every
later ``poll()`` raise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from ingest.kafka import patch

# How long a blocking call into the group coordinator (an offset commit, a close)
# may hold the thread that polls. kafka-python's default, ``request_timeout_ms``
# (30 s), would stop that thread's loop for as long as an outage lasts: no status
# line, no outage logged, no probe of the broker. Offsets a commit gave up on are
# committed again by the next one.
COORDINATOR_TIMEOUT_MS = 5000

# kafka-python backs off reconnecting to a broker up to 30 s apart; the Java client's
# default is 1 s. With 1 s, a client is back within a second of a broker's restart,
# not up to half a minute later. A connection option of the same name overrides it.
DEFAULTS = {"reconnect_backoff_max_ms": 1000}


def new_consumer(options: Mapping[str, Any], *topics: str, **settings: Any) -> KafkaConsumer:
    """A consumer with the connection ``options`` (``KafkaConfig.client_options()``)."""
    patch.install()
    return KafkaConsumer(*topics, **{**DEFAULTS, **options, **settings})


def new_producer(options: Mapping[str, Any], **settings: Any) -> KafkaProducer:
    """A producer with the connection ``options``; the caller closes it."""
    patch.install()
    return KafkaProducer(**{**DEFAULTS, **options, **settings})


def new_admin(options: Mapping[str, Any], **settings: Any) -> KafkaAdminClient:
    """An admin client with the connection ``options``; the caller closes it."""
    patch.install()
    return KafkaAdminClient(**{**DEFAULTS, **options, **settings})
