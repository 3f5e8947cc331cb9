"""Topics: create the ones loglabel needs, and read partition counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ingest.errors import IngestError
from ingest.kafka.clients import new_admin


class TopicError(IngestError):
    """A topic could not be created or described; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create when it is missing."""

    name: str
    partitions: int
    replication: int = 1


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic after ``create_missing``: ``created`` by this call, else it already existed
    with ``partitions`` partitions (which may differ from the spec's)."""

    spec: TopicSpec
    created: bool
    partitions: int


def create_missing(admin: KafkaAdminClient, specs: Iterable[TopicSpec]) -> list[TopicState]:
    """Create each spec's topic unless it exists; never alters an existing topic.

    Returns once every created topic has a leader for each partition.
    Raises ``TopicError`` naming the topic and the broker's reason (for example a
    replication factor above the number of brokers, or a missing CREATE ACL).
    """
    wanted = list({s.name: s for s in specs}.values())
    existing = _partitions(admin, [s.name for s in wanted])
    out: list[TopicState] = []
    for spec in wanted:
        if spec.name in existing:
            out.append(TopicState(spec, False, existing[spec.name]))
            continue
        try:
            # wait until every partition has a leader: a `run` right after must see them
            admin.create_topics({spec.name: {"num_partitions": spec.partitions,
                                             "replication_factor": spec.replication}},
                                wait_for_metadata=True)
        except TopicAlreadyExistsError:  # another process created it meanwhile
            out.append(TopicState(spec, False, _partitions(admin, [spec.name])[spec.name]))
            continue
        except KafkaError as exc:
            raise TopicError(f"cannot create topic {spec.name!r} ({spec.partitions} "
                             f"partitions, replication {spec.replication}): "
                             f"{type(exc).__name__}: {exc}") from None
        out.append(TopicState(spec, True, spec.partitions))
    return out


def _partitions(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    return {d["name"]: len(d["partitions"]) for d in admin.describe_topics(topics)
            if not d.get("error_code")}


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
