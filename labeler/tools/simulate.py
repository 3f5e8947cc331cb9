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

``stream`` generates the messages as they are sent, in bounded memory: it
holds only the messages whose arrival is still ahead of the next prediction
(clicks pending within the window), never the whole run. The same spec
(with its ``start`` resolved) always gives the same messages in the same
order, so a second pass, or ``oracle_labels`` over it, gives the exact
expected labels.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from ingest.errors import RejectedMessage
from ingest.records import Outcome, Prediction
from ingest.wire.timeparse import parse_time

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


def parse_start(text: str | None) -> float:
    """``--start`` as epoch seconds: ISO-8601 or epoch seconds; ``None`` gives 0 (the
    default start). Raises ``ValueError`` saying what is accepted.

    >>> parse_start("2024-06-10T06:13:20Z")
    1718000000.0
    """
    if text is None:
        return 0.0
    try:
        return parse_time(text)
    except RejectedMessage as exc:
        raise ValueError(f"{exc.detail}: give an ISO-8601 time (2024-06-10T06:13:20Z) or "
                         "epoch seconds") from None


def resolved(spec: TrafficSpec, clock: float | None = None) -> TrafficSpec:
    """``spec`` with its start fixed: by default the run's last prediction is at most a
    minute before ``clock`` (real logs are not from the future; the decoder dead-letters
    events more than ingest.max_future_s ahead)."""
    if spec.start:
        return spec
    now = time.time() if clock is None else clock
    return replace(spec, start=float(int(now - max(spec.count * spec.spacing - 60.0, 0.0))))


def stream(spec: TrafficSpec) -> Iterator[Message]:
    """Every message of the run, in arrival order, generated as it is consumed.

    Deterministic for a resolved spec (``resolved``). Memory is bounded by the
    messages whose arrival lies beyond the next prediction's time minus the
    early tolerance (the clicks still to come within about 1.5 windows),
    whatever ``count`` is.
    """
    spec = resolved(spec)
    rng = random.Random(spec.seed)
    start = spec.start
    drift_index = None if spec.drift_at is None else int(spec.drift_at * spec.count)
    ahead: list[tuple[float, int, Message]] = []  # (arrival, order, message): a min-heap
    order = itertools.count()
    # a later prediction's messages arrive no earlier than its time minus the early
    # tolerance (a click logged before it, no negative jitter): what is below that is final
    earliest = spec.early_tolerance + 1e-3

    def hold(message: Message) -> None:
        heapq.heappush(ahead, (message.arrival, next(order), message))

    for i in range(spec.count):
        t = round(start + i * spec.spacing, 6)
        while ahead and ahead[0][0] < t - earliest:
            yield heapq.heappop(ahead)[2]
        drifted = drift_index is not None and i >= drift_index
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
        hold(Message("prediction", t + jitter, rid, record, prediction))
        if rng.random() < spec.duplicate_fraction:
            hold(Message("prediction", t + rng.uniform(0, spec.max_disorder), rid,
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
            hold(Message("outcome", u + rng.uniform(0, spec.max_disorder), rid, click, outcome))
    while ahead:
        yield heapq.heappop(ahead)[2]


def plan(spec: TrafficSpec) -> list[Message]:
    """Every message of the run, in arrival order, as a list (small runs and tests)."""
    return list(stream(spec))


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


def paced(messages: Iterable[Message], rate: float) -> Iterator[Message]:
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
