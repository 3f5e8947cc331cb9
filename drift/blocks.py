"""From a model's buffered predictions to its monitors' inputs.

:func:`discover` finds the features and scores a block serves for the first
time (a first non-null int or float is numeric, a str or bool categorical,
anything else is ignored) and :func:`register` gives each its monitor;
:func:`matrix` builds the block's float matrix for the numeric monitor (a
value that is not a number becomes NaN and a ``type_mismatch`` schema event);
:func:`categorical` counts the categorical features and classes of the
buffered predictions into their monitors. These are
:class:`drift.monitor.DriftMonitor`'s steps; they change only the
:class:`~drift.model_state.ModelState` and the event list they are given.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from drift.events import DriftEvent
from drift.model_state import (
    FEATURE,
    KIND,
    PRED,
    ModelState,
    detector_specs,
    getter,
    normalize,
)
from drift.monitors.categorical import CategoricalDrift
from drift.reports import Evidence, SchemaLog, categorical_event
from drift.settings import DriftSettings

FEATURES, PREDICTIONS = attrgetter("features"), attrgetter("prediction")
"""A buffered prediction's feature and prediction mappings."""


def discover(
    settings: DriftSettings,
    schema: SchemaLog,
    skew_window: int,
    st: ModelState,
    feats: list[Mapping[str, Any]],
    preds: list[Mapping[str, Any]],
    record: Callable[[int], Evidence],
    events: list[DriftEvent],
) -> None:
    """Register the features and scores first served (non-null) in this block.

    A new feature is also shown to the skew checker, whose findings (dated by
    ``record`` of the row that showed it) are appended to ``events``.
    """
    st.blocks += 1
    # Feature names are collected from every event of the first blocks, then
    # from the block's last event and every event with another feature count
    # (a feature that is added changes the count; one renamed is seen in the
    # last event of the block it reaches).
    known = st.feature_names()
    if st.blocks <= 8:
        seen = all(map(known.issuperset, feats))
    else:
        last = feats[-1]
        width = len(last)
        seen = known.issuperset(last) and all(
            known.issuperset(f) for f in feats if len(f) != width)
    new: list[tuple[int, str]] = []
    if not seen:  # some name is new: the names in their set's order, as always
        if st.blocks <= 8:
            names = set().union(*feats)
        else:
            names = set(last)
            for f in feats:
                if len(f) != width:
                    names.update(f)
        new = [(FEATURE, n) for n in names if (FEATURE, n) not in st.known]
    for field in settings.prediction.fields:
        if (PRED, field) not in st.known:
            new.append((PRED, field))
    for src, name in new:
        rows = feats if src == FEATURE else preds
        first = next((i for i, r in enumerate(rows) if r.get(name) is not None), None)
        if first is None:
            continue  # not served yet (or only nulls): look again next block
        value = rows[first][name]
        st.known.add((src, name))
        if src == FEATURE:
            if not settings.override(name).enabled:
                continue
            if st.skew is not None:
                findings = st.skew.on_new_feature(name, value)
                events += schema.findings(findings, skew_window, record(first))
        register(settings, st, src, name, value)


def register(settings: DriftSettings, st: ModelState, src: int, name: str, value: Any) -> None:
    """Give the stream ``name`` of ``src`` (FEATURE or PRED) a monitor for ``value``'s type."""
    s = settings
    override = s.override(name) if src == FEATURE else None
    if isinstance(value, bool | str):
        c = s.categorical
        reference = None
        if c.reference == "baseline" and st.skew is not None and src == FEATURE:
            reference = st.skew.reference_shares(name)
        threshold = c.threshold
        if override is not None and override.threshold is not None:
            threshold = override.threshold
        specs = detector_specs(c.detector, c.backstop, override.params if override else None)
        st.cats[(src, name)] = CategoricalDrift(
            specs=specs,
            window=c.window,
            threshold=threshold,
            z_clip=c.z_clip,
            max_categories=c.max_categories,
            min_expected=c.min_expected,
            block=c.block_size,
            top_k=c.top_k_report,
            warmup=s.warmup,
            min_samples=s.min_samples,
            cooldown=s.cooldown,
            reference=reference,
            provisional=s.provisional,
            split_false_alarms_per_million=c.split_false_alarms_per_million,
        )
    elif isinstance(value, int | float):
        (st.fnames if src == FEATURE else st.pnames).append(name)
        st.getf, st.getp = getter(st.fnames), getter(st.pnames)
        baseline = None
        if src == FEATURE and s.numeric.reference == "baseline" and st.skew is not None:
            baseline = st.skew.reference_quantiles(name)
        st.num.add(name, KIND[src], override.params if override else None,
                   baseline=baseline)
        # The matrix is built features first, then scores; the detectors
        # keep their columns in the order the streams appeared.
        order = [(n, "data") for n in st.fnames] + [(n, "prediction") for n in st.pnames]
        index = {key: i for i, key in enumerate(order)}
        perm = np.array([index[key] for key in st.num.columns])
        st.perm = None if np.array_equal(perm, np.arange(perm.size)) else perm


def matrix(
    schema: SchemaLog,
    st: ModelState,
    feats: list[Mapping[str, Any]],
    preds: list[Mapping[str, Any]],
    record: Callable[[int], Evidence],
    events: list[DriftEvent],
) -> np.ndarray:
    """The block as a float matrix: the numeric features, then the scores (NaN if missing)."""
    # ingest validated the records, so a string here is a producer's
    # mistake: the block takes the slow path, the value becomes NaN and a
    # schema event (numeric strings that numpy reads as numbers get through).
    fn, pn = st.fnames, st.pnames
    n, width = len(feats), len(fn) + len(pn)
    try:
        # itemgetter is the fastest row builder; a missing key sends the
        # block down the .get() path, which yields None (then NaN).
        rows = list(map(tuple.__add__, map(st.getf, feats), map(st.getp, preds)))
    except KeyError:
        rows = [(*map(f.get, fn), *map(r.get, pn)) for f, r in zip(feats, preds, strict=True)]
    else:
        try:
            # Numbers only (the usual block): a flat read, no shape discovery.
            return np.fromiter(chain.from_iterable(rows), float, count=n * width).reshape(n, width)
        except (TypeError, ValueError, OverflowError):
            pass  # np.array below decides, as it always has
    try:
        return np.array(rows, dtype=float).reshape(n, width)
    except (TypeError, ValueError):
        pass
    # Slow path: some value is not a number. It is a schema problem, not a crash.
    a = np.full((n, width), math.nan)
    bad: dict[int, int] = {}
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if isinstance(v, int | float):
                a[i, j] = v
            elif v is not None:
                bad.setdefault(j, i)
    names = [*fn, *pn]
    for j, i in sorted(bad.items()):
        detail = f"numeric {names[j]!r} received a non-numeric value"
        events += schema.report(record(i), "type_mismatch", names[j], detail)
    return a


def categorical(st: ModelState, at: Callable[[], Evidence], events: list[DriftEvent]) -> None:
    """Count the buffered predictions into the categorical monitors; alarms go to ``events``.

    ``at`` gives the evidence an alarm is reported at (made only if one is).
    """
    buf = st.cat_buf
    st.cat_buf = []
    counted: dict[str, Counter[Hashable]] = {}
    feats = list(map(FEATURES, buf))
    preds: list[Mapping[str, Any]] = []
    columns: dict[tuple[int, str], tuple[Any, ...]] = {}
    for (src, name), cat in st.cats.items():
        if src == PRED and not preds:
            preds = list(map(PREDICTIONS, buf))
        if (src, name) not in columns:
            columns.update(_columns(st, src, feats if src == FEATURE else preds))
        counts = normalize(Counter(columns[(src, name)]))
        if src == FEATURE:
            counted[name] = counts
        alarm = cat.update(counts)
        if alarm is not None:
            events.append(categorical_event(alarm, cat.reported_specs, cat.window, KIND[src],
                                            name, at()))
    if st.skew is not None:
        st.skew.add_categories(len(buf), counted)


def _columns(
    st: ModelState, src: int, rows: list[Mapping[str, Any]]
) -> dict[tuple[int, str], tuple[Any, ...]]:
    """The values of every categorical stream of ``src`` in ``rows``, a tuple per stream.

    One itemgetter pass reads all of them (a missing key, None as ``.get``
    gives it, sends the rows down the per-stream path).
    """
    names = [name for s, name in st.cats if s == src]
    try:
        values = list(zip(*map(getter(names), rows), strict=True))
    except KeyError:
        values = [tuple([r.get(name) for r in rows]) for name in names]
    if not values:  # no rows: every stream counts nothing
        values = [()] * len(names)
    return {(src, name): column for name, column in zip(names, values, strict=True)}
