"""Features that disappear from, or appear in, a model's served predictions.

Ingest's schema check (:class:`ingest.wire.schema.SchemaEnforcer`) counts
missing and new features per model, but a count says neither when nor where
the change came. :class:`SchemaWatch` looks at the records themselves, where
they are read (the labeler, in either stage layout), and dates each change by
the record that showed it: its event time and ``topic[partition]@offset``.

The schema is the enforcer's: declared for the model, or inferred from its
first predictions (the watch feeds its own enforcer while it infers). The
watch follows each model's current feature set: a record whose set differs
reports the schema features it lacks that the previous records had
(``missing_feature``) and the features outside the schema it brings that they
did not (``new_feature``); the record's set becomes the current one. A lasting
change is one event per feature, not one per record; a feature that comes and
goes is reported each time it goes, which :class:`drift.reports.SchemaLog`
then keeps to one event per ``schema_cooldown_s``.

Cost: the caller compares the record's feature count with :meth:`SchemaWatch.width`
on every record and calls :meth:`SchemaWatch.check` when it differs, and on
one record in :data:`SAMPLE` (by offset) to catch a rename that keeps the count;
such a rename is dated by the first sampled record that shows it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable

from ingest.errors import RejectedMessage
from ingest.records import Prediction, SourceRef
from ingest.wire.schema import MAX_MODELS, MAX_NEW_FEATURES, OTHER_FEATURES, SchemaEnforcer

SAMPLE = 16
"""One record in this many (by offset) has its feature names compared in full (a power of two)."""

Report = Callable[[str, float, str, str, str, SourceRef | None], object]
"""Where findings go: (model, event time, kind, feature, detail, source)."""


class _Shape:
    __slots__ = ("schema", "current", "new")

    def __init__(self, schema: frozenset[str]) -> None:
        self.schema = schema
        self.current = schema
        self.new: set[str] = set()


class SchemaWatch:
    """Per model, the feature set last served; findings go to ``report``.

    ``enforcer`` gives the schema (declared or inferred); give the watch its
    own instance, which it feeds while a model's schema is being inferred.
    One thread only.
    """

    def __init__(self, enforcer: SchemaEnforcer, report: Report) -> None:
        self._enforcer = enforcer
        self._report = report
        self._shapes: dict[str, _Shape] = {}
        self.width: dict[str, int] = {}
        """Feature count of each model's current set (the caller's fast check)."""
        self._scratch: Counter[str] = Counter()

    def check(self, prediction: Prediction, source: SourceRef | None) -> None:
        """Compare ``prediction``'s feature names with its model's current set."""
        model = prediction.model
        shape = self._shapes.get(model)
        if shape is None:
            schema = self._enforcer.schema(model)
            if schema is None:
                if self._enforcer.infer_from and len(self._shapes) < MAX_MODELS:
                    # inference only; a record ingest let through that this watch's own
                    # inference (of the records it is shown) rejects is not a finding
                    with contextlib.suppress(RejectedMessage):
                        self._enforcer.check(prediction, self._scratch)
                return
            shape = self._shapes[model] = _Shape(frozenset(schema.features))
            self.width[model] = len(shape.current)
        keys = prediction.features.keys()
        if keys == shape.current:
            return
        t = prediction.event_time
        for name in sorted((shape.current - keys) & shape.schema):
            self._report(model, t, "missing_feature", name,
                         f"schema feature {name!r} is absent from this prediction", source)
        for name in sorted(keys - shape.current - shape.schema):
            if name not in shape.new:
                if len(shape.new) >= MAX_NEW_FEATURES:
                    name = OTHER_FEATURES
                shape.new.add(name)
            self._report(model, t, "new_feature", name,
                         f"feature {name!r} is not in the model's schema", source)
        shape.current = frozenset(keys)
        self.width[model] = len(shape.current)
