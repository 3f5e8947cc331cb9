"""Realistic, seeded prediction and outcome traffic, in a forwarder's envelope.

A model ``ctr-v3`` scores requests with 20 numeric features (``f00``..``f19``)
and 4 categorical ones (``country``, ``device``, ``browser``, ``category``).
A fraction of predictions gets a click after an exponential delay. The
traffic contains what production has:

* clicks landing after the attribution window (negative in every join);
* clicks that arrive before their prediction, and clicks logged a little
  before it (within the early tolerance);
* duplicated predictions and clicks (forwarders deliver at least once);
* out-of-order arrival, bounded by ``max_disorder`` seconds of event time.

With ``drift_at`` (a fraction of the run), ``f00`` shifts by
``drift_shift`` standard deviations and the click rate is multiplied by
``drift_click_factor`` from that point on.

The plan is computed up front from the seed, so the same arguments always
give the same messages in the same order, and ``oracle_labels`` over the
plan gives the exact expected labels.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.records import Outcome, Prediction

MODEL = "ctr-v3"
NUMERIC = tuple(f"f{i:02d}" for i in range(20))
CATEGORICAL = {
    "country": (("DE", 0.3), ("US", 0.3), ("FR", 0.15), ("GB", 0.15), ("JP", 0.1)),
    "device": (("mobile", 0.6), ("desktop", 0.35), ("tablet", 0.05)),
    "browser": (("chrome", 0.55), ("safari", 0.3), ("firefox", 0.1), ("edge", 0.05)),
    "category": (("news", 0.25), ("sports", 0.25), ("shop", 0.3), ("travel", 0.2)),
}
ENVELOPES = ("fluentd", "fluent-bit", "logstash", "json")


@dataclass(frozen=True)
class TrafficSpec:
    """What to simulate. Times are seconds of event time."""

    count: int = 10_000
    seed: int = 7
    start: float = 0.0  # epoch seconds of the first prediction; 0: the run ends a minute from now
    spacing: float = 0.01  # event-time seconds between predictions
    click_rate: float = 0.1
    window: float = 60.0
    early_tolerance: float = 5.0
    max_disorder: float = 2.0
    late_fraction: float = 0.05  # of clicks: placed after the window
    early_fraction: float = 0.05  # of clicks: logged before the prediction
    duplicate_fraction: float = 0.02  # of predictions and of clicks
    drift_at: float | None = None
    drift_shift: float = 1.0
    drift_click_factor: float = 2.0


@dataclass
class Message:
    topic_kind: str  # "prediction" | "outcome"
    arrival: float
    key: str
    record: dict[str, Any]
    event: Prediction | Outcome = field(repr=False)


def _pick(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, share in choices:
        x -= share
        if x < 0:
            return value
    return choices[-1][0]


def plan(spec: TrafficSpec) -> list[Message]:
    """Every message of the run, in arrival order (deterministic for the spec)."""
    rng = random.Random(spec.seed)
    # default: end at most a minute from now (real logs are not from the future; the
    # decoder dead-letters events more than ingest.max_future_s ahead)
    start = spec.start or float(int(time.time() - max(spec.count * spec.spacing - 60.0, 0.0)))
    drift_index = None if spec.drift_at is None else int(spec.drift_at * spec.count)
    messages: list[Message] = []
    for i in range(spec.count):
        drifted = drift_index is not None and i >= drift_index
        t = round(start + i * spec.spacing, 6)
        rid = f"s{spec.seed}-{i:08d}"
        features: dict[str, Any] = {n: round(rng.gauss(0.0, 1.0), 5) for n in NUMERIC}
        if drifted:
            features["f00"] = round(features["f00"] + spec.drift_shift, 5)
        for name, choices in CATEGORICAL.items():
            features[name] = _pick(rng, choices)
        logit = -1.0 + 0.8 * features["f01"] - 0.5 * features["f02"]
        score = round(1.0 / (1.0 + math.exp(-logit)), 6)
        prediction = Prediction(rid, t, MODEL, "3.1.0", features, {"score": score})
        record = {"request_id": rid, "model": MODEL, "model_version": "3.1.0",
                  "features": features, "score": score}
        jitter = rng.uniform(0, spec.max_disorder)
        messages.append(Message("prediction", t + jitter, rid, record, prediction))
        if rng.random() < spec.duplicate_fraction:
            messages.append(Message("prediction", t + rng.uniform(0, spec.max_disorder), rid,
                                    record, prediction))
        rate = spec.click_rate * (spec.drift_click_factor if drifted else 1.0)
        if rng.random() >= min(1.0, rate * (0.5 + score)):
            continue
        roll = rng.random()
        if roll < spec.late_fraction:
            delay = spec.window + rng.uniform(0.5, spec.window / 2)
        elif roll < spec.late_fraction + spec.early_fraction:
            delay = -rng.uniform(0, spec.early_tolerance * 0.9)
        else:
            delay = min(rng.expovariate(4.0 / spec.window), spec.window * 0.98)
        u = round(t + delay, 6)
        outcome = Outcome(rid, u, "click", 1.0, f"c-{rid}")
        click = {"request_id": rid, "type": "click", "value": 1.0, "outcome_id": f"c-{rid}"}
        copies = 2 if rng.random() < spec.duplicate_fraction else 1
        for _ in range(copies):
            messages.append(Message("outcome", u + rng.uniform(0, spec.max_disorder), rid,
                                    click, outcome))
    messages.sort(key=lambda m: m.arrival)
    return messages


def render(message: Message, envelope: str) -> bytes:
    """The bytes a forwarder would put into Kafka for ``message`` (see formats.md)."""
    t = message.event.event_time
    if envelope == "fluentd":
        tag = "ml.prediction" if message.topic_kind == "prediction" else "ml.outcome"
        return orjson.dumps({**message.record, "tag": tag, "time": t})
    if envelope == "fluent-bit":
        return orjson.dumps({"@timestamp": t, **message.record})
    if envelope == "logstash":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        millis = int(round((t - math.floor(t)) * 1000)) % 1000
        return orjson.dumps({**message.record, "time": t,
                             "@timestamp": f"{stamp}.{millis:03d}Z", "@version": "1"})
    if envelope == "json":
        return orjson.dumps({**message.record, "time": t})
    raise ValueError(f"unknown envelope {envelope!r}; choose from {ENVELOPES}")


def paced(messages: list[Message], rate: float) -> Iterator[Message]:
    """Yield ``messages`` at ``rate`` per second (0: as fast as possible)."""
    if rate <= 0:
        yield from messages
        return
    began = time.monotonic()
    for i, message in enumerate(messages):
        ahead = began + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield message
