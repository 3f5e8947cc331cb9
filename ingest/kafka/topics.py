"""Topics: create the ones loglabel needs, and read partition counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from ingest.kafka.clients import new_admin


def ensure_topics(client_options: Mapping[str, Any], topics: Iterable[str], partitions: int,
                  replication: int = 1) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = new_admin(client_options)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            try:
                admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=replication)
                     for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
        return missing
    finally:
        admin.close()


def partition_counts(client_options: Mapping[str, Any], topics: Iterable[str]) -> dict[str, int]:
    """Partition count of each existing topic (absent topics are left out)."""
    admin = new_admin(client_options)
    try:
        described = admin.describe_topics(list(topics))
    finally:
        admin.close()
    return {
        d["name"]: len(d["partitions"]) for d in described if not d.get("error_code")
    }
