"""Feature schemas: declared or inferred per model, then enforced on every prediction.

A ``Schema`` maps feature names (and, optionally, prediction names) to one of
``int``, ``float``, ``str``, ``bool``, and lists required features. A model's
schema is either given, or inferred from its first ``infer_from`` decoded
predictions and then fixed. ``SchemaEnforcer.check`` applies it:

- **null** is allowed for every field and stays ``None``, except that a
  required feature that is missing or null rejects the message (``missing_required``).
- **int where float is expected** is widened to float.
- **float where int is expected** is accepted only when integral and within
  +-2**53 (``3.0`` -> ``3``, as JSON encoders that write every number as a
  float do); ``3.5`` is a type change (``bad_type``).
- **numeric strings** (exactly a JSON number, ``"12.5"``, ``"0"``) are parsed
  for numeric fields only, and counted as skew. ``"NaN"``/``"nan"`` there is
  NaN, which is null (see ``ingest.wire.mapping``); ``"inf"``/``"Infinity"`` is
  ``non_finite``. Any other string in a numeric field is ``bad_type``.
- **str and bool fields take only str and bool**: ``3`` where a string is
  expected, or ``"true"``/``1`` where a bool is expected, is ``bad_type``.
- **bool is not a number**: ``true`` in an int or float field is ``bad_type``.

Features outside the schema, and schema features absent from a prediction,
never reject it: they are counted in the decoder's counter as
``schema_skew.new_feature.<model>.<feature>`` and
``schema_skew.missing_feature.<model>.<feature>`` (and coerced numeric
strings as ``schema_skew.numeric_string.<model>.<feature>``); the drift package
reports them. ``parse_skew_key`` splits such a key (model names must not
contain ``.`` for it to be unambiguous; feature names may). State stays
bounded: after ``MAX_NEW_FEATURES`` distinct new names per model, further new
names count as feature ``*``, and beyond ``MAX_MODELS`` models new models are
not inferred (they pass unchecked).

Inference takes the majority and never gives up on a field. Over a model's
first ``infer_from`` predictions each field's non-null values vote by kind
(number, str, bool; a number is ``float`` if any vote was a float, else
``int``). A value of a kind that is clearly outvoted so far (the leading kind
has at least ``MIN_VOTES`` votes and at least twice this kind's) is
dead-lettered there and then (``bad_type``, with the vote in the detail and no
value), so a few wrongly typed values cannot decide or void a field's type.
At the end every field that had a value takes its majority kind (a tie: the
kind seen first). A field seen only as null during inference keeps being
inferred, alone, from its next ``LATE_VOTES`` non-null values, and is then
checked like the others. Inferred schemas have no required features. While a
model is being inferred its predictions are checked against the vote only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.errors import RejectedMessage
from ingest.records import Prediction
from ingest.wire.mapping import scalar
from ingest.wire.timeparse import is_number_text

TYPES: Mapping[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
"""Schema type names and the Python type of a conforming value."""

SKEW_PREFIX = "schema_skew."
MAX_NEW_FEATURES = 256
"""Distinct new feature names counted per model; later ones count as ``OTHER_FEATURES``."""
OTHER_FEATURES = "*"
MAX_MODELS = 1024
"""Models whose schema is tracked; predictions of later models pass unchecked."""
_MAX_EXACT_INT = 2**53
_NAN_TEXT = frozenset(("NaN", "nan", "-nan", "-NaN"))
_INF_TEXT = frozenset(("inf", "-inf", "+inf", "Infinity", "-Infinity", "+Infinity"))


@dataclass(frozen=True, slots=True)
class Schema:
    """Declared types of a model's features and prediction values.

    Raises ``ValueError`` for an unknown type name or a required feature that
    has no type.
    """

    features: Mapping[str, str]
    prediction: Mapping[str, str] = field(default_factory=dict)
    required: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name, type_name in (*self.features.items(), *self.prediction.items()):
            if type_name not in TYPES:
                raise ValueError(f"field {name!r}: unknown type {type_name!r}; use {list(TYPES)}")
        unknown = set(self.required) - set(self.features)
        if unknown:
            raise ValueError(f"required features {sorted(unknown)} have no type in the schema")


def skew_key(what: str, model: str, feature: str) -> str:
    """The counter key for one kind of schema skew of one feature of one model."""
    return f"{SKEW_PREFIX}{what}.{model}.{feature}"


def parse_skew_key(key: str) -> tuple[str, str, str] | None:
    """``(what, model, feature)`` from a ``skew_key``; ``None`` for another counter."""
    if not key.startswith(SKEW_PREFIX):
        return None
    parts = key[len(SKEW_PREFIX):].split(".", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


class _Enforced:
    """A schema compiled for the hot path: Python types and key sets."""

    __slots__ = ("schema", "feature_types", "feature_names", "prediction_types", "required",
                 "new_names", "late_features", "late_prediction", "model")

    def __init__(self, schema: Schema, late_features: Iterable[str] = (),
                 late_prediction: Iterable[str] = (), model: str = "") -> None:
        self.schema = schema
        self.model = model
        self.feature_types = {name: TYPES[t] for name, t in schema.features.items()}
        self.feature_names = frozenset(self.feature_types) | frozenset(late_features)
        self.prediction_types = {name: TYPES[t] for name, t in schema.prediction.items()}
        self.required = tuple(sorted(schema.required))
        self.new_names: set[str] = set()
        # fields seen only as null while inferring: typed by their next LATE_VOTES values
        self.late_features = {name: _Votes() for name in late_features}
        self.late_prediction = {name: _Votes() for name in late_prediction}

    def learn_late(self, prediction: Prediction) -> None:
        """Vote (and check) the values of fields still untyped; type them when done."""
        for late, values, types, part in (
                (self.late_features, prediction.features, self.feature_types, "features"),
                (self.late_prediction, prediction.prediction, self.prediction_types,
                 "prediction")):
            if not late:
                continue
            for name, votes in list(late.items()):
                value = values.get(name)
                if value is None:
                    continue
                votes.check(name, value, self.model)
                if votes.total >= LATE_VOTES:
                    del late[name]
                    type_name = votes.type_name() or "str"
                    types[name] = TYPES[type_name]
                    fields = {**getattr(self.schema, part), name: type_name}
                    if part == "features":
                        self.schema = replace(self.schema, features=fields)
                    else:
                        self.schema = replace(self.schema, prediction=fields)

    def new_name(self, name: str) -> str:
        """``name``, or ``OTHER_FEATURES`` once ``MAX_NEW_FEATURES`` names were counted."""
        if name in self.new_names:
            return name
        if len(self.new_names) < MAX_NEW_FEATURES:
            self.new_names.add(name)
            return name
        return OTHER_FEATURES


MIN_VOTES = 3
"""Votes the leading kind needs before an outvoted value is dead-lettered."""
LATE_VOTES = 100
"""Non-null values that type a field seen only as null during its model's inference."""


def _kind(value: Any) -> str:
    kind = type(value)
    if kind is int or kind is float:
        return "number"
    return "bool" if kind is bool else "str"


class _Votes:
    """The kinds one field's non-null values had so far, in the order first seen."""

    __slots__ = ("kinds", "floats")

    def __init__(self) -> None:
        self.kinds: dict[str, int] = {}
        self.floats = False

    def check(self, name: str, value: Any, model: str) -> None:
        """Raise ``bad_type`` if ``value``'s kind is clearly outvoted, else count its vote."""
        self.check_only(name, value, model)
        self.count(value)

    def check_only(self, name: str, value: Any, model: str) -> None:
        """Raise ``bad_type`` if ``value``'s kind is clearly outvoted."""
        kind = _kind(value)
        mine = self.kinds.get(kind, 0)
        if self.kinds:
            leader, votes = max(self.kinds.items(), key=lambda kv: kv[1])
            if leader != kind and votes >= MIN_VOTES and votes >= 2 * mine:
                raise RejectedMessage(
                    "bad_type", f"feature {name!r} is a {_TYPE_NAMES[type(value)]} while "
                    f"{votes} of the first {sum(self.kinds.values())} values of model "
                    f"{model!r} were {leader} (schema inference)")

    def count(self, value: Any) -> None:
        kind = _kind(value)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.floats = self.floats or type(value) is float

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    def type_name(self) -> str | None:
        if not self.kinds:
            return None
        leader = max(self.kinds.items(), key=lambda kv: kv[1])[0]  # first seen on a tie
        if leader == "number":
            return "float" if self.floats else "int"
        return leader


_TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool"}


class _Inference:
    """The votes so far for one model's fields."""

    __slots__ = ("remaining", "features", "prediction", "model")

    def __init__(self, n: int, model: str) -> None:
        self.remaining = n
        self.model = model
        self.features: dict[str, _Votes] = {}
        self.prediction: dict[str, _Votes] = {}

    def observe(self, prediction: Prediction) -> None:
        """Check ``prediction`` against the vote (raising ``bad_type`` for an outvoted
        value, before any vote of it counts), then count its votes."""
        self.remaining -= 1  # a rejected prediction is one of the first n too
        for seen, values in ((self.features, prediction.features),
                             (self.prediction, prediction.prediction)):
            for name, value in values.items():
                if value is not None and name in seen:
                    seen[name].check_only(name, value, self.model)
        for seen, values in ((self.features, prediction.features),
                             (self.prediction, prediction.prediction)):
            for name, value in values.items():
                votes = seen.get(name)
                if votes is None:
                    votes = seen[name] = _Votes()
                if value is not None:
                    votes.count(value)

    def schema(self) -> tuple[Schema, set[str], set[str]]:
        """The inferred schema, and the feature and prediction fields still untyped."""
        features = {n: t for n, v in self.features.items() if (t := v.type_name())}
        prediction = {n: t for n, v in self.prediction.items() if (t := v.type_name())}
        return (Schema(features=features, prediction=prediction),
                set(self.features) - set(features), set(self.prediction) - set(prediction))


def _trial(votes: _Votes, name: str, value: Any, model: str) -> None:
    """``votes.check`` without counting the vote (a message is rejected whole or not)."""
    kinds, floats = dict(votes.kinds), votes.floats
    votes.check(name, value, model)
    votes.kinds, votes.floats = kinds, floats


class SchemaEnforcer:
    """Checks predictions against their model's schema, inferring it when not given.

    ``schemas`` gives a schema per model name; ``default`` is used for models
    not listed; other models are inferred from their first ``infer_from``
    predictions (``infer_from=0`` leaves them unchecked). One enforcer serves
    one decoder (it is not thread-safe).
    """

    def __init__(self, schemas: Mapping[str, Schema] | None = None, *,
                 default: Schema | None = None, infer_from: int = 1000) -> None:
        if infer_from < 0:
            raise ValueError("infer_from must be >= 0")
        self.infer_from = infer_from
        self._default = None if default is None else _Enforced(default)
        self._enforced: dict[str, _Enforced] = {
            model: _Enforced(schema) for model, schema in (schemas or {}).items()}
        self._inferring: dict[str, _Inference] = {}

    def schema(self, model: str) -> Schema | None:
        """The schema enforced for ``model``, or ``None`` while inferring (or unchecked)."""
        enforced = self._enforced.get(model, self._default)
        return None if enforced is None else enforced.schema

    def models(self) -> Iterable[str]:
        """Models with a given or inferred (fixed) schema."""
        return tuple(self._enforced)

    def check(self, prediction: Prediction, counters: Counter[str]) -> Prediction:
        """Return ``prediction`` conformed to its schema; raise ``RejectedMessage`` if it can't.

        Skew (new, missing, numeric-string features) is added to ``counters``.
        The result is ``prediction`` itself unless a value had to be converted.
        """
        enforced = self._enforced.get(prediction.model) or self._default
        if enforced is None:
            self._learn(prediction)
            return prediction
        if enforced.late_features or enforced.late_prediction:
            enforced.learn_late(prediction)
        model = prediction.model
        features = prediction.features
        keys = features.keys()
        if keys != enforced.feature_names:
            for name in keys - enforced.feature_names:
                counters[skew_key("new_feature", model, enforced.new_name(name))] += 1
            for name in enforced.feature_names - keys:
                counters[skew_key("missing_feature", model, name)] += 1
        for name in enforced.required:
            if features.get(name) is None:
                state = "null" if name in features else "missing"
                raise RejectedMessage("missing_required", f"required feature {name!r} is {state}")
        new_features = _conform(features, enforced.feature_types, model, counters)
        new_prediction = _conform(prediction.prediction, enforced.prediction_types, model,
                                  counters)
        if new_features is features and new_prediction is prediction.prediction:
            return prediction
        return replace(prediction, features=new_features, prediction=new_prediction)

    def _learn(self, prediction: Prediction) -> None:
        if self.infer_from == 0:
            return
        inference = self._inferring.get(prediction.model)
        if inference is None:
            if len(self._inferring) + len(self._enforced) >= MAX_MODELS:
                return  # bounded state: a stream of made-up model names must not grow it
            inference = self._inferring[prediction.model] = _Inference(self.infer_from,
                                                                       prediction.model)
        try:
            inference.observe(prediction)
        finally:
            if inference.remaining <= 0:
                self._fix(inference)

    def _fix(self, inference: _Inference) -> None:
        """End a model's inference: its majority schema is enforced from now on."""
        del self._inferring[inference.model]
        schema, late_features, late_prediction = inference.schema()
        self._enforced[inference.model] = _Enforced(schema, late_features, late_prediction,
                                                    inference.model)


def _conform(values: Mapping[str, Any], types: Mapping[str, type], model: str,
             counters: Counter[str]) -> Mapping[str, Any]:
    out = values
    expected_type = types.get
    for name, value in values.items():
        expected = expected_type(name)
        if type(value) is expected or expected is None or value is None:
            continue
        converted = _convert(name, value, expected)
        if type(value) is str:
            counters[skew_key("numeric_string", model, name)] += 1
        if out is values:
            out = dict(values)
        out[name] = converted  # type: ignore[index]
    return out


def _convert(name: str, value: Any, expected: type) -> Any:
    kind = type(value)
    if expected is float and kind is int:
        return float(value)
    if expected is int and kind is float:
        if value.is_integer() and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return int(value)
        raise RejectedMessage("bad_type", f"feature {name!r} is {value!r}, schema says int")
    if kind is str and (expected is int or expected is float):
        return _number_from_text(name, value, expected)
    raise RejectedMessage(
        "bad_type", f"feature {name!r} is a {kind.__name__}, schema says {expected.__name__}")


def _number_from_text(name: str, text: str, expected: type) -> Any:
    if text in _NAN_TEXT:
        return None
    if text in _INF_TEXT:
        raise RejectedMessage("non_finite", f"feature {name!r} is {text!r}")
    if len(text) > 400 or not is_number_text(text):
        raise RejectedMessage(
            "bad_type", f"feature {name!r} is the string {text[:40]!r}, schema says "
            f"{expected.__name__}")
    if expected is float:
        return scalar(name, float(text))
    if "." not in text and "e" not in text and "E" not in text:
        return scalar(name, int(text))
    return _convert(name, scalar(name, float(text)), int)
