"""The drift monitor: one per process, state per model.

``observe_prediction`` only buffers the prediction; every ``block_size``
predictions of a model the block is turned into one float matrix and every
numeric feature and score is checked at once (:mod:`drift.monitors.numeric`), every
``categorical.block_size`` predictions the categorical features and classes
(:mod:`drift.monitors.categorical`). The event that completes a block carries the
block's evidence, so its event time and source are those of the returned
drift events.

Features are discovered as they are served: a feature whose first non-null
value is an int or float is numeric, a str or bool is categorical, anything
else is ignored. With a baseline profile, served values are also compared with
training (:mod:`drift.baseline.skew`). The per-model state is a
:class:`drift.model_state.ModelState`; discovery, the float matrix and the
categorical counts are the steps of :mod:`drift.blocks`.

Each returned :class:`DriftEvent` is also kept in :attr:`DriftMonitor.history`
(bounded) and counted in :attr:`DriftMonitor.counts`.

:meth:`DriftMonitor.state` and :meth:`DriftMonitor.restore` save and load
everything that decides future detections (references, detectors, partial
blocks, discovered features, label streams, the schema log) as plain data, so
a restarted worker detects exactly as an uninterrupted one would. Not saved:
the skew checker's current window (it restarts; skew is reported per window),
``history`` and ``counts``.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drift.baseline.profile import load_profile
from drift.baseline.skew import SkewChecker
from drift.blocks import FEATURES, PREDICTIONS, categorical, discover, matrix, register
from drift.events import DriftEvent
from drift.model_state import (
    FEATURE,
    PRED,
    ModelState,
    detector_specs,
    plain_prediction,
    prediction_from_plain,
)
from drift.monitors.labels import LabelAlarm, LabelDrift
from drift.monitors.numeric import NumericDrift
from drift.reports import Evidence, SchemaLog, label_event, numeric_event
from drift.settings import DriftSettings
from ingest.records import Prediction, SourceRef


class DriftMonitor:
    """Data, prediction, concept and schema drift for every model of a process.

    ``profiles`` maps a model name (or ``"*"`` for every model) to a baseline
    profile; without it ``settings.baseline_path`` is read: a profile file for
    every model, or a directory of ``<model>.json`` files.
    """

    def __init__(
        self,
        settings: DriftSettings | None = None,
        *,
        profiles: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.settings = s = settings or DriftSettings()
        self._models: dict[str, ModelState] = {}
        self._profiles: dict[str, Mapping[str, Any]] = dict(profiles or {})
        self._profile_dir: Path | None = None
        if profiles is None and s.baseline_path:
            path = Path(s.baseline_path)
            if path.is_dir():
                self._profile_dir = path
            else:
                self._profiles["*"] = load_profile(path)
        self._k = s.numeric.block_size
        self._cat_k = s.categorical.block_size
        self._every = s.sampling.every
        self._schema = SchemaLog(s.schema_cooldown_s)
        self._skew_window = s.skew.window
        self.history: deque[DriftEvent] = deque(maxlen=s.history)
        self.counts: Counter[str] = Counter()
        self.block_cpu_s = 0.0  # thread CPU spent on blocks (what monitoring costs, mostly)
        self.consumed = 0  # where the last observe_predictions/observe_labels call got to

    # -- predictions -----------------------------------------------------

    def observe_prediction(
        self, p: Prediction, source: SourceRef | None = None
    ) -> list[DriftEvent]:
        """Watch one prediction; returns the drift events it completes (usually none)."""
        if not self.settings.enabled:
            return []
        st = self._models.get(p.model)
        if st is None:
            st = self._models[p.model] = self._new_model(p.model)
        if self._every > 1:
            st.tick += 1
            if st.tick % self._every:
                return []
        st.buf.append(p)
        st.srcs.append(source)
        if len(st.buf) < self._k:
            return []
        return self._flush(st, p, source)

    def observe_predictions(
        self,
        predictions: Sequence[Prediction],
        sources: Sequence[SourceRef | None],
        found: list[DriftEvent] | None = None,
        start: int = 0,
    ) -> list[DriftEvent]:
        """:meth:`observe_prediction` on each prediction from ``start`` on, in order, at
        once: a model's consecutive predictions are added to its block a slice at a time.

        Returns the events they complete; with ``found``, each is appended to it as
        it is found. If it raises, :attr:`consumed` is the index after the prediction
        it failed on (that one is taken, as :meth:`observe_prediction` would have lost
        it), so a caller can count the failure and go on from there.
        """
        out: list[DriftEvent] = [] if found is None else found
        n = len(predictions)
        self.consumed = start
        if not self.settings.enabled:
            self.consumed = n
            return out
        if self._every > 1:  # sampling counts every prediction: one at a time
            for i in range(start, n):
                self.consumed = i + 1
                out += self.observe_prediction(predictions[i], sources[i])
            return out
        k, models = self._k, self._models
        i = start
        while i < n:
            model = predictions[i].model
            st = models.get(model)
            if st is None:
                self.consumed = i + 1
                st = models[model] = self._new_model(model)
            end = i + 1
            while end < n and predictions[end].model == model:
                end += 1
            while i < end:  # the run [i, end) of one model, a block at a time
                take = min(max(k - len(st.buf), 1), end - i)
                st.buf += predictions[i:i + take]
                st.srcs += sources[i:i + take]
                i += take
                self.consumed = i
                if len(st.buf) >= k:
                    out += self._flush(st, predictions[i - 1], sources[i - 1])
        return out

    def flush(self) -> list[DriftEvent]:
        """Process every partial block now (at shutdown or the end of a backfill)."""
        events: list[DriftEvent] = []
        for st in self._models.values():
            if st.buf:
                events.extend(self._flush(st, st.buf[-1], None, force=True))
            elif st.cat_buf:
                last = st.cat_buf[-1]
                found: list[DriftEvent] = []
                categorical(st, lambda: Evidence(last.model, last.event_time), found)  # noqa: B023
                self._record(found)
                events.extend(found)
        return events

    def _flush(
        self, st: ModelState, last: Prediction, source: SourceRef | None, force: bool = False
    ) -> list[DriftEvent]:
        began = time.thread_time()
        try:
            return self._block(st, last, source, force)
        finally:
            self.block_cpu_s += time.thread_time() - began

    def _block(
        self, st: ModelState, last: Prediction, source: SourceRef | None, force: bool
    ) -> list[DriftEvent]:
        buf, srcs = st.buf, st.srcs
        st.buf, st.srcs = [], []
        feats = list(map(FEATURES, buf))
        preds = list(map(PREDICTIONS, buf))
        events: list[DriftEvent] = []
        block_at: list[Evidence] = []

        def at() -> Evidence:
            # The block's last event dates its events (made once, if one is needed).
            if not block_at:
                block_at.append(Evidence(last.model, last.event_time,
                                         str(source) if source is not None else None))
            return block_at[0]

        def record(i: int) -> Evidence:
            # The record that showed a schema change dates its event.
            src = srcs[i] if i < len(srcs) else None
            return Evidence(last.model, buf[i].event_time, str(src) if src is not None else None)

        discover(self.settings, self._schema, self._skew_window, st, feats, preds, record, events)
        if st.fnames or st.pnames:
            a = matrix(self._schema, st, feats, preds, record, events)
            if st.skew is not None and st.skew.add_block(st.fnames, a[:, : len(st.fnames)]):
                events += self._schema.findings(st.skew.evaluate(), self._skew_window, at())
            if st.perm is not None:
                a = a[:, st.perm]
            for alarm in st.num.process(a):
                events.append(numeric_event(alarm, at()))
        if st.cats:
            st.cat_buf.extend(buf)
            if len(st.cat_buf) >= self._cat_k or force:
                categorical(st, at, events)
        if events:
            self._record(events)
        return events

    # -- labels and schema -------------------------------------------------

    def observe_label(
        self,
        model: str,
        event_time: float,
        score: float | None,
        label: bool,
        source: SourceRef | None = None,
        *,
        label_name: str = "label",
    ) -> list[DriftEvent]:
        """Watch one labeled example (score may be unknown); returns concept drift events."""
        s = self.settings
        if not (s.enabled and s.labels.enabled):
            return []
        st = self._models.get(model)
        ld = st.labels.get(label_name) if st is not None else None
        if ld is None:
            ld = self._label_drift(model, label_name)
            assert ld is not None  # noqa: S101 - labels are on
        alarms = ld.update(score, label)
        if not alarms:
            return []
        at = Evidence(model, event_time, str(source) if source is not None else None)
        events = [label_event(a, label_name, at) for a in alarms]
        self._record(events)
        return events

    def observe_labels(
        self,
        model: str,
        event_times: Sequence[float],
        scores: Sequence[float | None],
        labels: Sequence[bool],
        source: SourceRef | None = None,
        *,
        label_name: str = "label",
        found: list[DriftEvent] | None = None,
        start: int = 0,
    ) -> list[DriftEvent]:
        """Watch labeled examples of one model in order, from ``start`` on:
        :meth:`observe_label` on each, at once.

        An event is dated by the example that raised it (its ``event_times``
        entry); every event carries ``source``. ``found``, ``start`` and
        :attr:`consumed` as for :meth:`observe_predictions`.
        """
        out: list[DriftEvent] = [] if found is None else found
        self.consumed = start
        ld = self._label_drift(model, label_name)
        if ld is None or start >= len(labels):
            self.consumed = len(labels)
            return out
        pairs: list[tuple[int, LabelAlarm]] = []
        failure: Exception | None = None
        try:
            ld.update_many(scores, labels, pairs, start)
        except Exception as exc:  # noqa: BLE001 - raised below, once what was found is kept
            failure = exc
        self.consumed = ld.consumed
        src = str(source) if source is not None else None
        for i, alarm in pairs:  # an event at a time: one that fails costs itself only
            try:
                event = label_event(alarm, label_name, Evidence(model, event_times[i], src))
                self._record([event])
            except Exception as exc:  # noqa: BLE001 - raised below
                failure = failure or exc
                continue
            out.append(event)
        if failure is not None:
            raise failure
        return out

    def _label_drift(self, model: str, label_name: str) -> LabelDrift | None:
        """The concept drift monitor of ``model``'s ``label_name`` (None if labels are off)."""
        s = self.settings
        if not (s.enabled and s.labels.enabled):
            return None
        st = self._models.get(model)
        if st is None:
            st = self._models[model] = self._new_model(model)
        ld = st.labels.get(label_name)
        if ld is None:
            ld = st.labels[label_name] = LabelDrift(
                s.labels, warmup=s.warmup, min_samples=s.min_samples, cooldown=s.cooldown
            )
        return ld

    def observe_schema_skew(
        self, model: str, event_time: float, kind: str, feature: str | None, detail: str,
        source: SourceRef | None = None,
    ) -> list[DriftEvent]:
        """Report a schema problem counted upstream (e.g. ``type_mismatch``).

        ``event_time`` and ``source`` should be those of the record that showed
        the problem; the event carries them. The first occurrence of a (model,
        kind, feature) gives an event; later ones are counted and reported
        with the next event, at most one per ``schema_cooldown_s`` seconds of
        event time.
        """
        if not self.settings.enabled:
            return []
        at = Evidence(model, event_time, str(source) if source is not None else None)
        events = self._schema.report(at, kind, feature, detail)
        self._record(events)
        return events

    # -- state -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able: dicts, lists, str, numbers, bytes) for :meth:`restore`.

        Call it where the caller's inputs are committed (e.g. with the join
        state at a checkpoint): the state covers every input observed so far.
        """
        models = {}
        for name, st in self._models.items():
            models[name] = {
                "buf": [plain_prediction(p) for p in st.buf],
                "srcs": [None if r is None else [r.topic, r.partition, r.offset]
                         for r in st.srcs],
                "cat_buf": [plain_prediction(p) for p in st.cat_buf],
                "tick": st.tick, "blocks": st.blocks,
                "fnames": list(st.fnames), "pnames": list(st.pnames),
                "known": sorted([src, n] for src, n in st.known),
                "num": st.num.state(),
                "cats": [[src, n, c.state()] for (src, n), c in st.cats.items()],
                "labels": {k: ld.state() for k, ld in st.labels.items()},
            }
        return {"version": 1, "models": models, "schema": self._schema.state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` taken by a monitor with the same settings and profiles."""
        for name, m in state["models"].items():
            st = self._models[name] = self._new_model(name)
            st.buf = [prediction_from_plain(p) for p in m["buf"]]
            st.srcs = [None if r is None else SourceRef(r[0], int(r[1]), int(r[2]))
                       for r in m["srcs"]]
            st.cat_buf = [prediction_from_plain(p) for p in m["cat_buf"]]
            st.tick, st.blocks = int(m["tick"]), int(m["blocks"])
            st.known = {(int(src), str(n)) for src, n in m["known"]}
            # Re-register features in their original order, then load their state.
            for src, fname, _ in m["cats"]:
                register(self.settings, st, int(src), fname, "")
            for fname in m["fnames"]:
                register(self.settings, st, FEATURE, fname, 0.0)
            for fname in m["pnames"]:
                register(self.settings, st, PRED, fname, 0.0)
            st.num.restore(m["num"])
            order = [(n, "data") for n in st.fnames] + [(n, "prediction") for n in st.pnames]
            index = {key: i for i, key in enumerate(order)}
            perm = np.array([index[key] for key in st.num.columns], dtype=int)
            st.perm = None if np.array_equal(perm, np.arange(perm.size)) else perm
            for src, fname, cs in m["cats"]:
                st.cats[(int(src), fname)].restore(cs)
            for label, ls in m["labels"].items():
                s = self.settings
                ld = st.labels[label] = LabelDrift(
                    s.labels, warmup=s.warmup, min_samples=s.min_samples, cooldown=s.cooldown)
                ld.restore(ls)
        self._schema.restore(state["schema"])

    def _new_model(self, model: str) -> ModelState:
        s = self.settings
        n = s.numeric
        num = NumericDrift(
            specs=detector_specs(n.detector, n.backstop, None),
            z_clip=n.z_clip,
            winsorize=n.winsorize,
            dispersion=n.dispersion,
            warmup=s.warmup,
            min_samples=s.min_samples,
            cooldown=s.cooldown,
            summary_blocks=max(1, s.summary_window // max(n.block_size, 1)),
            provisional=s.provisional,
            block_size=n.block_size,
        )
        profile = self._profile_for(model)
        skew = None
        if profile is not None and s.skew.enabled:
            thresholds = {k: v.skew_threshold for k, v in s.features.items() if v.skew_threshold}
            ignore = [k for k, v in s.features.items() if not v.enabled]
            skew = SkewChecker(profile, s.skew, thresholds, ignore)
        return ModelState(num, skew)

    def _profile_for(self, model: str) -> Mapping[str, Any] | None:
        if model in self._profiles:
            return self._profiles[model]
        if self._profile_dir is not None:
            path = self._profile_dir / f"{model}.json"
            if path.is_file():
                self._profiles[model] = load_profile(path)
                return self._profiles[model]
        return self._profiles.get("*")

    def _record(self, events: list[DriftEvent]) -> None:
        self.history.extend(events)
        for e in events:
            self.counts[e.kind] += 1
