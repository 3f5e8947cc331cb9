"""The oracle: the labels a plain in-memory join of the same input gives.

No watermarks, no state: for each distinct prediction id, take the distinct
outcomes with the same id whose event time lies in ``[t - early_tolerance, t + window]``
and aggregate them. Tests and the demo compare the streaming labeler's shards
against this.

``oracle_from_raw`` adds the README's one rule about disorder: a record behind
its own raw partition's frontier by more than the allowed lateness is late and
joins nothing. ``read_raw`` reads what the raw topics hold, so a test compares
against the input as Kafka stored it, whatever partitions the producer chose.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest.records import Outcome, Prediction
from ingest.wire.decode import Decoder
from labeler.join.labels import LabelSpec

if TYPE_CHECKING:
    import pandas as pd

    from labeler.config import Config


def oracle_labels(
    predictions: Iterable[Prediction],
    outcomes: Iterable[Outcome],
    window: float,
    early_tolerance: float,
    labels: Sequence[LabelSpec],
) -> pd.DataFrame:
    """One row per distinct prediction id: ``prediction_id``, each ``label_<name>``,
    ``outcome_count``. The first copy of a duplicated prediction wins."""
    by_id: dict[str, dict[Any, Outcome]] = defaultdict(dict)
    for o in outcomes:
        by_id[o.join_id].setdefault(o.dedupe_key, o)
    rows = []
    seen: set[str] = set()
    for p in predictions:
        if p.join_id in seen:
            continue
        seen.add(p.join_id)
        t = p.event_time
        inside = [
            o for o in by_id.get(p.join_id, {}).values()
            if t - early_tolerance <= o.event_time <= t + window
        ]
        row: dict[str, Any] = {"prediction_id": p.join_id}
        for spec in labels:
            row[spec.column] = spec.compute(t, inside)
        row["outcome_count"] = len(inside)
        rows.append(row)
    import pandas as pd  # here: the CLI loads this module (produce) to list its commands

    return pd.DataFrame(rows)


def late_by_partition(times: Iterable[float], lateness: float, votes: int) -> list[bool]:
    """The README's lateness rule, written out on its own for the oracle: a record is
    late when its event time is below the ``votes``-th highest event time of the
    records before it in its partition, minus ``lateness``.

    >>> late_by_partition([100.0, 101.0, 102.0, 90.0, 96.0], lateness=5.0, votes=2)
    [False, False, False, True, False]
    """
    highest: list[float] = []  # min-heap of the ``votes`` highest times so far
    verdicts = []
    for t in times:
        frontier = highest[0] if len(highest) == votes else -math.inf
        late = t < frontier - lateness
        verdicts.append(late)
        if not late:
            if len(highest) < votes:
                heapq.heappush(highest, t)
            elif t > highest[0]:
                heapq.heapreplace(highest, t)
    return verdicts


@dataclass
class RawInput:
    """What the raw topics hold, per partition in offset order, decoded."""

    predictions: dict[int, list[Prediction]] = field(default_factory=dict)
    outcomes: dict[int, list[Outcome]] = field(default_factory=dict)
    dead_letters: int = 0


def read_raw(config: Config, timeout_s: float = 120.0) -> RawInput:
    """Every message of the raw topics, decoded as loglabel decodes them (bad ones are
    counted), per partition in offset order. Reads up to the end offsets seen at the start."""
    from kafka import TopicPartition

    from ingest.kafka.clients import new_consumer
    from labeler.runtime.compose import schema_enforcer

    topics = config.topics
    counters: Counter[str] = Counter()
    limits: dict[str, Any] = {"max_future_s": config.ingest.max_future_s or None,
                              "min_time": config.ingest.min_epoch()}
    decoders = {
        topics.predictions: Decoder("prediction", config.fields, config.ingest.prediction_format,
                                    counters, schema=schema_enforcer(config), **limits),
        topics.outcomes: Decoder("outcome", config.fields, config.ingest.outcome_format,
                                 counters, **limits),
    }
    consumer = new_consumer(config.kafka.client_options(), group_id=None,
                            enable_auto_commit=False, max_poll_records=5000)
    raw = RawInput()
    try:
        tps = [TopicPartition(t, p) for t in decoders
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while left and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=500).items():
                for m in messages:
                    if m.offset >= ends[tp]:
                        continue
                    record = decoders[tp.topic].decode(m.value)
                    if isinstance(record, Prediction):
                        raw.predictions.setdefault(tp.partition, []).append(record)
                    elif isinstance(record, Outcome):
                        raw.outcomes.setdefault(tp.partition, []).append(record)
                    else:
                        raw.dead_letters += 1
                if consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        if left:
            raise TimeoutError(f"could not read the raw topics to their end: {sorted(left)}")
    finally:
        consumer.close()
    return raw


def oracle_from_raw(raw: RawInput, window: float, early_tolerance: float, lateness: float,
                    votes: int, labels: Sequence[LabelSpec]) -> tuple[pd.DataFrame, Counter[str]]:
    """The labels the README promises for this input: late records (per partition, see
    ``late_by_partition``) are left out, the rest is the plain join. Also returns the
    counts of late predictions and late outcomes."""
    counts: Counter[str] = Counter()
    predictions: list[Prediction] = []
    outcomes: list[Outcome] = []
    for records in raw.predictions.values():
        verdicts = late_by_partition((p.event_time for p in records), lateness, votes)
        predictions += [p for p, late in zip(records, verdicts, strict=True) if not late]
        counts["late_predictions"] += sum(verdicts)
    for clicks in raw.outcomes.values():
        verdicts = late_by_partition((o.event_time for o in clicks), lateness, votes)
        outcomes += [o for o, late in zip(clicks, verdicts, strict=True) if not late]
        counts["late_outcomes"] += sum(verdicts)
    return oracle_labels(predictions, outcomes, window, early_tolerance, labels), counts
