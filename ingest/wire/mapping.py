"""Field mapping: from a forwarded record (a dict) to a canonical Prediction or Outcome.

Which field holds what is configuration (``FieldMap``). Paths are dotted
(``"ctx.user.id"``); a key that itself contains dots is matched first.

Rules, each enforced here and turned into a ``RejectedMessage`` reason:

- **Missing, null and zero stay distinct.** A feature whose key is absent is
  absent from ``Prediction.features``; a JSON ``null`` is kept as ``None``;
  ``0``, ``0.0``, ``false`` and ``""`` are values.
- **No coercion.** Strings stay strings (``"0"`` is not zero) and ints stay
  ints; only a schema that declares a field numeric converts it (``ingest.wire.schema``).
- **NaN is null, infinity is rejected.** JSON has neither, but Python's
  ``json.dumps`` writes ``NaN``/``Infinity`` and the envelope parses them. A NaN
  feature, prediction or outcome value becomes ``None`` (the usual meaning of
  NaN in logged features: no value). ``+-inf`` there rejects the message
  (``non_finite``): no finite statistic survives it.
- **Values are scalars** (str, int, float, bool, null). An object or array
  where a feature, prediction or outcome value is expected is ``bad_type``; an
  int outside the signed 64-bit range is ``out_of_range`` (Parquet's int64).
- **The join id** is one or more paths (``("request_id", "position")`` for a
  ranked list, ``("request_id", "item_id")`` for one item of a request). Each
  part must be a non-empty string or an int (``missing_id`` if absent, null
  or ``""``; ``bad_id`` if of another type or if it holds the separator).
  Parts are joined with ``JOIN_ID_SEPARATOR``.
- **The event time** is the record's ``event_time`` field when present and
  not null, else the envelope's time (``missing_time`` if neither).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.errors import RejectedMessage
from ingest.records import Outcome, Prediction
from ingest.wire.paths import MISSING as _MISSING
from ingest.wire.paths import is_missing, lookup  # noqa: F401 - is_missing is re-exported
from ingest.wire.timeparse import parse_time

if TYPE_CHECKING:
    from ingest.wire.envelope import Envelope

JOIN_ID_SEPARATOR = "\x1f"
"""Joins the parts of a composite id (ASCII unit separator: never in ordinary ids)."""

_I64 = 2**63
NESTED_FEATURES = "features"
"""The default path of the nested features object (``fields.features``)."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Where each canonical field is found in a forwarded record.

    Paths are dotted (``"ctx.user.id"``). ``features`` is either one path to a
    nested object whose keys are the feature names, or a tuple of dotted paths
    (each path's last part names the feature) in which ``"<path>.*"`` takes every
    key of the object at ``<path>`` as a feature, so a nested object and
    top-level fields mix: ``("features.*", "item_id")``. A named path wins over
    a key of the same name that a ``.*`` path brings. ``event_time = None`` takes
    the envelope's time only. Raises ``ValueError`` naming the key for a map
    that cannot produce a valid record (no join id or prediction path, two
    feature paths with one name, a feature path that is an object holding
    another configured path, or the nested object's path listed as one feature).
    """

    join_id: tuple[str, ...] = ("request_id",)
    event_time: str | None = "time"
    model: str = "model"
    model_version: str | None = "model_version"
    default_model: str = "default"
    features: str | tuple[str, ...] = NESTED_FEATURES
    prediction: tuple[str, ...] = ("score",)
    outcome_type: str = "type"
    default_outcome_type: str = "outcome"
    outcome_value: str | None = "value"
    outcome_id: str | None = "outcome_id"

    def __post_init__(self) -> None:
        if not self.join_id or not all(self.join_id):
            raise ValueError("fields.join_id needs at least one non-empty path")
        if not self.prediction:
            raise ValueError("fields.prediction needs at least one path")
        named = {"fields.join_id": self.join_id, "fields.prediction": self.prediction,
                 "fields.features": (self.features,) if isinstance(self.features, str)
                 else self.features}
        for key, paths in named.items():
            for path in paths:
                _check_path(key, path, wildcard=key == "fields.features"
                            and not isinstance(self.features, str))
        if isinstance(self.features, str):
            if self.features.endswith(".*"):
                raise ValueError(f"fields.features = {self.features!r}: '.*' is for a list "
                                 f"of paths; give the object's path alone or as a list")
            return
        plain = [p for p in self.features if not p.endswith(".*")]
        names = [_leaf(path) for path in plain]
        if len(set(names)) != len(names):
            raise ValueError(f"fields.features: paths {plain} repeat a feature name")
        every = [p for key, paths in named.items() for p in paths if not p.endswith(".*")]
        for path in plain:
            inner = [o for o in every if o.startswith(path + ".")]
            if inner or path == NESTED_FEATURES:
                raise ValueError(
                    f"fields.features: {path!r} names an object (it holds "
                    f"{inner[0] if inner else 'the features'}), which is never a feature "
                    f"value; write {path + '.*'!r} to take its keys as features")


def join_id_of(record: dict[str, Any], paths: tuple[str, ...]) -> str:
    """The join id: each path's value as text, joined with ``JOIN_ID_SEPARATOR``."""
    parts = []
    for path in paths:
        value = lookup(record, path)
        kind = type(value)
        if kind is str:
            if not value:
                raise RejectedMessage("missing_id", f"join id field {path!r} is empty")
            if JOIN_ID_SEPARATOR in value:
                raise RejectedMessage("bad_id", f"join id field {path!r} holds \\x1f")
            parts.append(value)
        elif kind is int:
            parts.append(str(value))
        elif value is _MISSING or value is None:
            raise RejectedMessage("missing_id", f"join id field {path!r} is missing or null")
        else:
            raise RejectedMessage("bad_id", f"join id field {path!r} is a {kind.__name__}")
    return parts[0] if len(parts) == 1 else JOIN_ID_SEPARATOR.join(parts)


def event_time_of(envelope: Envelope, path: str | None) -> float:
    """The record's time at ``path`` if present and not null, else the envelope's."""
    return _event_time(envelope.record, envelope.time, envelope.time_key, path)


def _event_time(record: dict[str, Any], envelope_time: float | None, time_key: str | None,
                path: str | None) -> float:
    if path is not None:
        if path == time_key and envelope_time is not None:
            return envelope_time  # unwrap already parsed this very field
        value = lookup(record, path)
        if value is not _MISSING and value is not None:
            return parse_time(value)
    if envelope_time is not None:
        return envelope_time
    raise RejectedMessage("missing_time", "no event time in the record or its envelope")


def scalar(name: str, value: Any) -> Any:
    """Validate one feature/prediction value by the module rules; NaN becomes ``None``."""
    kind = type(value)
    if kind is float:
        if value - value == 0.0:
            return value
        if value != value:
            return None
        raise RejectedMessage("non_finite", f"field {name!r} is {value}")
    if kind is int:
        if -_I64 <= value < _I64:
            return value
        raise RejectedMessage("out_of_range", f"field {name!r} is outside the 64-bit int range")
    if value is None or kind is str or kind is bool:
        return value
    raise RejectedMessage("bad_type", f"field {name!r} is a {_type_name(value)}, not a scalar")


def checked(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every value validated by ``scalar``; the same dict if none changed.

    This runs over every feature of every message, so the common cases are
    tested inline (floats first: most features are) and a copy is made only
    when a NaN has to become ``None``.
    """
    for value in values.values():
        kind = type(value)
        if kind is float:
            if value - value == 0.0:
                continue
        elif kind is str or kind is bool or value is None:
            continue
        elif kind is int and -_I64 <= value < _I64:
            continue
        return {name: scalar(name, value) for name, value in values.items()}
    return values


def features_of(record: dict[str, Any], spec: str | tuple[str, ...]) -> dict[str, Any]:
    """The validated features named by ``spec`` (see ``FieldMap.features``)."""
    if isinstance(spec, str):
        nested = lookup(record, spec)
        if nested is _MISSING or nested is None:
            return {}
        if type(nested) is not dict:
            raise RejectedMessage("bad_type", f"features field {spec!r} is not an object")
        return checked(nested)
    out: dict[str, Any] = {}
    named: dict[str, Any] = {}
    for path in spec:
        if path.endswith(".*"):
            nested = lookup(record, path[:-2])
            if nested is _MISSING or nested is None:
                continue
            if type(nested) is not dict:
                raise RejectedMessage("bad_type", f"features field {path[:-2]!r} is not an object")
            out.update(nested)
            continue
        value = lookup(record, path)
        if value is not _MISSING:
            if type(value) is dict:
                raise RejectedMessage("bad_type", f"features field {path!r} is an object: "
                                      f"list {path + '.*'!r} in fields.features to take its "
                                      f"keys as features")
            named[_leaf(path)] = value
    out.update(named)  # a named path wins over a nested key of the same name
    return checked(out)


def to_prediction(envelope: Envelope, fields: FieldMap) -> Prediction:
    """Map a decoded record to a ``Prediction``; raise ``RejectedMessage`` if it can't be one."""
    return prediction_of(envelope.record, envelope.time, envelope.time_key, fields)


def to_outcome(envelope: Envelope, fields: FieldMap) -> Outcome:
    """Map a decoded record to an ``Outcome``; raise ``RejectedMessage`` if it can't be one."""
    return outcome_of(envelope.record, envelope.time, envelope.time_key, fields)


def prediction_of(record: dict[str, Any], envelope_time: float | None, time_key: str | None,
                  fields: FieldMap) -> Prediction:
    """``to_prediction`` on an envelope's parts (the decoder's hot path)."""
    join_id = join_id_of(record, fields.join_id)
    event_time = _event_time(record, envelope_time, time_key, fields.event_time)
    prediction = {}
    for path in fields.prediction:
        value = lookup(record, path)
        if value is not _MISSING:
            prediction[_leaf(path)] = value
    if not prediction:
        raise RejectedMessage("missing_prediction", f"none of {list(fields.prediction)} present")
    version = None if fields.model_version is None else lookup(record, fields.model_version)
    return Prediction(
        join_id,
        event_time,
        _label(record, fields.model, fields.default_model, "model"),
        _optional_text(version, "model_version"),
        features_of(record, fields.features),
        checked(prediction),
    )


def outcome_of(record: dict[str, Any], envelope_time: float | None, time_key: str | None,
               fields: FieldMap) -> Outcome:
    """``to_outcome`` on an envelope's parts (the decoder's hot path)."""
    join_id = join_id_of(record, fields.join_id)
    event_time = _event_time(record, envelope_time, time_key, fields.event_time)
    value: float | None = None
    if fields.outcome_value is not None:
        raw_value = lookup(record, fields.outcome_value)
        if raw_value is not _MISSING and raw_value is not None:
            kind = type(raw_value)
            if kind is not int and kind is not float:
                raise RejectedMessage(
                    "bad_type", f"outcome value is a {_type_name(raw_value)}, not a number")
            checked_value = scalar(fields.outcome_value, raw_value)
            value = None if checked_value is None else float(checked_value)
    outcome_id = None if fields.outcome_id is None else lookup(record, fields.outcome_id)
    if outcome_id is not _MISSING and outcome_id is not None and type(outcome_id) not in (str, int):
        raise RejectedMessage("bad_id", f"outcome id is a {_type_name(outcome_id)}")
    return Outcome(
        join_id,
        event_time,
        _label(record, fields.outcome_type, fields.default_outcome_type, "type"),
        value,
        _optional_text(outcome_id, "outcome_id"),
    )


def _label(record: dict[str, Any], path: str, default: str, what: str) -> str:
    value = lookup(record, path)
    if value is _MISSING or value is None:
        return default
    if type(value) is str:
        return value if value else default
    if type(value) is int:
        return str(value)
    raise RejectedMessage("bad_type", f"{what} field {path!r} is a {_type_name(value)}")


def _optional_text(value: Any, what: str) -> str | None:
    if value is _MISSING or value is None:
        return None
    kind = type(value)
    if kind is str or kind is int or (kind is float and value - value == 0.0):
        return str(value)
    raise RejectedMessage("bad_type", f"{what} is a {_type_name(value)}")


def _check_path(key: str, path: str, wildcard: bool) -> None:
    if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
        raise ValueError(f"{key}: {path!r} is not a dotted path (an empty part)")
    if "*" in path and not (wildcard and path.endswith(".*") and "*" not in path[:-2]):
        raise ValueError(f"{key}: {path!r}: '*' is allowed only as a last '.*' in "
                         f"fields.features")


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _type_name(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)
