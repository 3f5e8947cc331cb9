"""Field mapping: from a forwarded record (a dict) to a canonical Prediction or Outcome.

Which field holds what is configuration (``FieldMap``). The mapping keeps
*missing* (key absent), *null* (``None``) and *zero* distinct, and never turns a
string into a number unless the schema says so (see ``ingest.schema``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ingest.envelope import Envelope
from ingest.errors import RejectedMessage
from ingest.records import Outcome, Prediction
from ingest.timeparse import parse_time

JOIN_ID_SEPARATOR = "\x1f"
"""Joins the parts of a composite id (ASCII unit separator: never in ordinary ids)."""

_MISSING = object()


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Where each canonical field is found in a forwarded record.

    Paths are dotted (``"ctx.user.id"``). ``features`` is either one path to a
    nested object whose keys are the feature names, or a tuple of dotted paths
    (each path's last part names the feature). ``event_time = None`` takes the
    envelope's time only.
    """

    join_id: tuple[str, ...] = ("request_id",)
    event_time: str | None = "time"
    model: str = "model"
    model_version: str | None = "model_version"
    default_model: str = "default"
    features: str | tuple[str, ...] = "features"
    prediction: tuple[str, ...] = ("score",)
    outcome_type: str = "type"
    default_outcome_type: str = "outcome"
    outcome_value: str | None = "value"
    outcome_id: str | None = "outcome_id"


def lookup(record: dict[str, Any], path: str) -> Any:
    """Return the value at dotted ``path``, or the module's missing sentinel."""
    if path in record:
        return record[path]
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def is_missing(value: object) -> bool:
    return value is _MISSING


def join_id_of(record: dict[str, Any], paths: tuple[str, ...]) -> str:
    parts = []
    for path in paths:
        value = lookup(record, path)
        if value is _MISSING or value is None or value == "":
            raise RejectedMessage("missing_id", f"join id field {path!r} is missing or empty")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RejectedMessage("bad_id", f"join id field {path!r} is a {type(value).__name__}")
        parts.append(str(value))
    return JOIN_ID_SEPARATOR.join(parts)


def event_time_of(envelope: Envelope, path: str | None) -> float:
    if path is not None:
        value = lookup(envelope.record, path)
        if value is not _MISSING and value is not None:
            return parse_time(value)
    if envelope.time is not None:
        return envelope.time
    raise RejectedMessage("missing_time", "no event time in the record or its envelope")


def _scalar(name: str, value: Any) -> Any:
    """Validate one feature/prediction value; nested objects and lists are rejected."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None  # NaN is "no value", never a number that poisons statistics
        if math.isinf(value):
            raise RejectedMessage("non_finite", f"field {name!r} is infinite")
        return value
    raise RejectedMessage("bad_type", f"field {name!r} is a {type(value).__name__}")


def features_of(record: dict[str, Any], spec: str | tuple[str, ...]) -> dict[str, Any]:
    if isinstance(spec, str):
        nested = lookup(record, spec)
        if nested is _MISSING or nested is None:
            return {}
        if not isinstance(nested, dict):
            raise RejectedMessage("bad_type", f"features field {spec!r} is not an object")
        return {str(k): _scalar(str(k), v) for k, v in nested.items()}
    out = {}
    for path in spec:
        value = lookup(record, path)
        if value is not _MISSING:
            name = path.rsplit(".", 1)[-1]
            out[name] = _scalar(name, value)
    return out


def to_prediction(envelope: Envelope, fields: FieldMap) -> Prediction:
    """Map a decoded record to a ``Prediction``; raise ``RejectedMessage`` if it can't be one."""
    record = envelope.record
    join_id = join_id_of(record, fields.join_id)
    event_time = event_time_of(envelope, fields.event_time)
    model = lookup(record, fields.model)
    if model is _MISSING or model is None:
        model = fields.default_model
    version = None if fields.model_version is None else lookup(record, fields.model_version)
    prediction = {}
    for path in fields.prediction:
        value = lookup(record, path)
        if value is not _MISSING:
            name = path.rsplit(".", 1)[-1]
            prediction[name] = _scalar(name, value)
    if not prediction:
        raise RejectedMessage("missing_prediction", f"none of {list(fields.prediction)} present")
    return Prediction(
        join_id=join_id,
        event_time=event_time,
        model=str(model),
        model_version=None if version is _MISSING or version is None else str(version),
        features=features_of(record, fields.features),
        prediction=prediction,
    )


def to_outcome(envelope: Envelope, fields: FieldMap) -> Outcome:
    """Map a decoded record to an ``Outcome``; raise ``RejectedMessage`` if it can't be one."""
    record = envelope.record
    join_id = join_id_of(record, fields.join_id)
    event_time = event_time_of(envelope, fields.event_time)
    kind = lookup(record, fields.outcome_type)
    if kind is _MISSING or kind is None:
        kind = fields.default_outcome_type
    value: float | None = None
    if fields.outcome_value is not None:
        raw_value = lookup(record, fields.outcome_value)
        if raw_value is not _MISSING and raw_value is not None:
            if isinstance(raw_value, bool) or not isinstance(raw_value, int | float):
                raise RejectedMessage("bad_type", f"outcome value is a {type(raw_value).__name__}")
            if not math.isfinite(raw_value):
                raise RejectedMessage("non_finite", "outcome value is not finite")
            value = float(raw_value)
    outcome_id = None if fields.outcome_id is None else lookup(record, fields.outcome_id)
    return Outcome(
        join_id=join_id,
        event_time=event_time,
        outcome_type=str(kind),
        value=value,
        outcome_id=None if outcome_id is _MISSING or outcome_id is None else str(outcome_id),
    )
