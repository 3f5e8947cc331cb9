"""Decoding a whole poll batch of one stream into column lists, with the row decoder
as the judge of every row it cannot vouch for.

``BatchDecoder.decode(values)`` gives what ``Decoder.decode`` gives for each value,
in order, but as columns ready to re-key: the join ids, the event times and the
records in ``ingest.wire.codec.pack`` form, plus the dead letters with their
positions. It is a fast path with a referee:

* Each value is parsed with orjson (the floor: a JSON parse; pyarrow's JSON reader
  is slower for these envelopes once its columns are turned back into records, and
  it cannot keep missing apart from null, nor ``1`` apart from ``1.0``; see
  ``loglabel bench --decoders``), opened by the envelope rules
  (``ingest.wire.envelope.open_document``), and its fields read by the mapping's
  paths.
* A row is taken on the fast path only when every rule has nothing to say about
  it: the join id a non-empty string (without ``\\x1f``) or an int, a float event
  time of seconds (or any time ``parse_time`` accepts), inside ``min_time`` and
  ``max_future_s``, model and version plain text, values scalars, and, with a
  schema, a model whose schema is fixed and a feature set that matches it exactly
  with each value of its declared type (or null where not required). orjson never
  yields NaN or infinity, so floats need no check; ints need the 64-bit check.
  Whether a row's features pass depends only on their names and types, so that
  verdict is computed once per signature and kept.
* Every other row (bad input of any kind, a schema still being inferred, a type
  to widen, schema skew, a PII policy) goes through ``Decoder.decode`` on its
  original bytes, in its place in the batch: the reasons, details, counters, PII
  redaction and schema inference are the row decoder's own, in the same order.

Counters are the row decoder's: ``<kind>.decoded`` once per fast row. One clock
reading serves a batch for ``max_future_s``; a row that fails it is judged again by
the row decoder with a fresh reading, so the verdicts are those of the row path.
One ``BatchDecoder`` per ``Decoder``, owned by the thread that reads the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.records import DeadLetter
from ingest.wire.batch_time import iso_utc
from ingest.wire.codec import pack
from ingest.wire.decode import Decoder
from ingest.wire.envelope import detect, open_document
from ingest.wire.mapping import JOIN_ID_SEPARATOR
from ingest.wire.paths import MISSING, lookup
from ingest.wire.schema import TYPES, Schema
from ingest.wire.timeparse import parse_time

_I64 = 2**63
_SECONDS_BELOW = 1e11  # parse_time reads a number from here up as milliseconds
_SCALARS = frozenset((float, str, bool, type(None)))
_NONE = type(None)
_PREDICTION, _OUTCOME = 1, 2
_MAX_SIGNATURES = 4096
_SEPARATOR = object()  # between a signature's features and its prediction


class _Slow(Exception):  # noqa: N818 - a control signal, not an error
    """This row needs the row decoder."""


@dataclass(slots=True)
class DecodedBatch:
    """One poll batch of one stream, decoded. ``positions[i]`` is the index in the batch
    of the record ``packed[i]`` (ascending); ``letters`` holds ``(index, DeadLetter)``."""

    positions: list[int] = field(default_factory=list)
    join_ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    packed: list[list[Any]] = field(default_factory=list)
    letters: list[tuple[int, DeadLetter]] = field(default_factory=list)


class BatchDecoder:
    """``Decoder.decode`` over a batch, by columns; see the module docstring."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        fields = decoder.fields
        self._prediction = decoder.kind == "prediction"
        self._fmt = decoder.fmt
        self._time_key = fields.event_time or "time"
        self._record_key = fields.join_id[0]
        self._id_paths = fields.join_id
        self._time_path = fields.event_time
        self._predictions = tuple((path, path.rsplit(".", 1)[-1]) for path in fields.prediction)
        self._features = fields.features
        self._feature_leaves = (() if isinstance(fields.features, str) else
                                tuple((p, p.rsplit(".", 1)[-1]) for p in fields.features))
        self._fields = fields
        self._all_slow = decoder.pii is not None  # PII rules run in the row decoder only
        self._verdicts: dict[int, tuple[Schema | None, dict[tuple[Any, ...], int]]] = {}
        self._models: dict[str, Schema | None] = {}
        self.fast_rows = 0  # rows the fast path took (the rest went to the row decoder)

    def decode(self, values: Sequence[bytes | None]) -> DecodedBatch:
        """The records and dead letters of ``values``, in order (never raises for input)."""
        out = DecodedBatch()
        decoder = self.decoder
        row_decode = decoder.decode
        fast = self._prediction_row if self._prediction else self._outcome_row
        loads = orjson.loads
        self._models = {}
        now = decoder._clock() if decoder.max_future_s is not None else 0.0
        positions, join_ids, times, packed = out.positions, out.join_ids, out.times, out.packed
        taken = 0
        for i, raw in enumerate(values):
            row = None
            if raw and not self._all_slow:
                try:
                    doc = loads(raw)
                    if type(doc) is dict:
                        row = fast(doc, now)
                except Exception:  # noqa: BLE001 - bad input or a rule's exception: the row
                    row = None      # decoder judges it (and reports a bug as internal_error)
            if row is not None:
                taken += 1
            else:
                record = row_decode(raw)
                if type(record) is DeadLetter:
                    out.letters.append((i, record))
                    continue
                row = pack(record)  # type: ignore[arg-type]
            positions.append(i)
            join_ids.append(row[1])
            times.append(row[2])
            packed.append(row)
        self.fast_rows += taken
        if taken:
            decoder.counters[decoder._decoded] += taken
        return out

    # -- the fast path: a packed record, or _Slow / RejectedMessage for the row decoder --

    def _opened(self, doc: dict[str, Any], now: float) -> tuple[dict[str, Any], str, float]:
        fmt = self._fmt
        if fmt == "auto":
            fmt = detect(doc)
        record, envelope_value, used_key = open_document(doc, fmt, self._time_key,
                                                         self._record_key)
        envelope_time = None if envelope_value is None else _time(envelope_value)
        path = self._time_path
        t: float | None = None
        if path is not None:
            if path == used_key and envelope_time is not None:
                t = envelope_time
            else:
                value = record.get(path, MISSING) if "." not in path else lookup(record, path)
                if value is not MISSING and value is not None:
                    t = _time(value)
        if t is None:
            if envelope_time is None:
                raise _Slow
            t = envelope_time
        decoder = self.decoder
        if decoder.min_time is not None and t < decoder.min_time:
            raise _Slow
        if decoder.max_future_s is not None and t - now > decoder.max_future_s:
            raise _Slow
        return record, self._join_id(record), t

    def _join_id(self, record: dict[str, Any]) -> str:
        parts = []
        for path in self._id_paths:
            value = record.get(path, MISSING) if "." not in path else lookup(record, path)
            kind = type(value)
            if kind is str:
                if not value or JOIN_ID_SEPARATOR in value:
                    raise _Slow
                parts.append(value)
            elif kind is int:
                parts.append(str(value))
            else:
                raise _Slow
        return parts[0] if len(parts) == 1 else JOIN_ID_SEPARATOR.join(parts)

    def _prediction_row(self, doc: dict[str, Any], now: float) -> list[Any]:
        record, join_id, t = self._opened(doc, now)
        fields = self._fields
        prediction = {}
        get = record.get
        for path, leaf in self._predictions:
            value = get(path, MISSING) if "." not in path else lookup(record, path)
            if value is not MISSING:
                if type(value) not in _SCALARS and not (type(value) is int
                                                        and -_I64 <= value < _I64):
                    raise _Slow
                prediction[leaf] = value
        if not prediction:
            raise _Slow
        model = _text_or(_get(record, fields.model), fields.default_model)
        version = (None if fields.model_version is None
                   else _get(record, fields.model_version))
        if version is MISSING:
            version = None
        elif version is not None and type(version) is not str:
            raise _Slow
        spec = self._features
        if type(spec) is str:
            features = get(spec, MISSING) if "." not in spec else lookup(record, spec)
            if features is MISSING or features is None:
                features = {}
            elif type(features) is not dict:
                raise _Slow
        else:
            features = {}
            for path, leaf in self._feature_leaves:
                value = _get(record, path)
                if value is not MISSING:
                    features[leaf] = value
        self._check_values(model, features, prediction)
        return [_PREDICTION, join_id, t, model, version, features, prediction]

    def _check_values(self, model: str, features: dict[str, Any],
                      prediction: dict[str, Any]) -> None:
        """Raise ``_Slow`` unless the mapping's value rules and the schema leave these
        features and prediction values exactly as they are, with nothing to count."""
        schema = self.decoder.schema
        enforced: Schema | None = None
        if schema is not None:
            models = self._models
            if model in models:
                enforced = models[model]
            else:
                enforced = models[model] = schema.schema(model)
            if enforced is None and schema.infer_from:
                raise _Slow  # inferring (the row decoder learns from it), or beyond MAX_MODELS
        # one flat tuple: names, their types, a separator, the same of the prediction
        key = (*features, *map(type, features.values()), _SEPARATOR, *prediction,
               *map(type, prediction.values()))
        slot = self._verdicts.get(id(enforced))
        if slot is None or slot[0] is not enforced:
            slot = self._verdicts[id(enforced)] = (enforced, {})
        verdicts = slot[1]
        verdict = verdicts.get(key)
        if verdict is None:
            if len(verdicts) >= _MAX_SIGNATURES:
                verdicts.clear()
            verdict = verdicts[key] = _verdict(
                enforced, tuple(features), tuple(map(type, features.values())), prediction,
                tuple(map(type, prediction.values())))
        if verdict == 0:
            raise _Slow
        if verdict == 2 and not all(-_I64 <= v < _I64 for v in features.values()
                                    if type(v) is int):
            raise _Slow

    def _outcome_row(self, doc: dict[str, Any], now: float) -> list[Any]:
        record, join_id, t = self._opened(doc, now)
        fields = self._fields
        value: Any = None
        if fields.outcome_value is not None:
            raw_value = _get(record, fields.outcome_value)
            kind = type(raw_value)
            if kind is float:
                value = raw_value
            elif kind is int and -_I64 <= raw_value < _I64:
                value = float(raw_value)
            elif raw_value is not MISSING and raw_value is not None:
                raise _Slow
        outcome_id = None if fields.outcome_id is None else _get(record, fields.outcome_id)
        kind = type(outcome_id)
        if outcome_id is MISSING:
            outcome_id = None
        elif kind is int:
            outcome_id = str(outcome_id)
        elif kind is not str and outcome_id is not None:
            raise _Slow
        outcome_type = _text_or(_get(record, fields.outcome_type), fields.default_outcome_type)
        return [_OUTCOME, join_id, t, outcome_type, value, outcome_id]


def _verdict(schema: Schema | None, names: tuple[str, ...], types: tuple[type, ...],
             prediction: dict[str, Any], kinds: tuple[type, ...]) -> int:
    """0: the row decoder must judge; 1: unchanged and nothing counted; 2: the same, once
    every int is checked to be within 64 bits. Depends on names and types only."""
    ints = int in types
    if not set(types) <= _SCALARS | {int}:
        return 0  # an object or array: bad_type
    if schema is None:
        return 2 if ints else 1
    declared = schema.features
    if len(names) != len(declared) or not all(name in declared for name in names):
        return 0  # schema skew: counted by the schema check
    for name, kind in zip(names, types, strict=True):
        if kind is not TYPES[declared[name]] and (kind is not _NONE or name in schema.required):
            return 0
    for name, kind in zip(prediction, kinds, strict=True):
        expected = schema.prediction.get(name)
        if expected is not None and kind is not TYPES[expected] and kind is not _NONE:
            return 0
    return 2 if ints else 1


def _get(record: dict[str, Any], path: str) -> Any:
    return record.get(path, MISSING) if "." not in path else lookup(record, path)


def _time(value: Any) -> float:
    """``parse_time``, with the common cases (float seconds, ISO-8601 in UTC) answered
    without it."""
    kind = type(value)
    if kind is float and 0.0 <= value < _SECONDS_BELOW:
        return value
    if kind is str:
        t = iso_utc(value)
        if t is not None:
            return t
    return parse_time(value)


def _text_or(value: Any, default: str) -> str:
    """The mapping's rule for model and outcome type: text, an int as text, or the
    default when missing, null or empty."""
    if value is MISSING or value is None:
        return default
    kind = type(value)
    if kind is str:
        return value if value else default
    if kind is int:
        return str(value)
    raise _Slow

