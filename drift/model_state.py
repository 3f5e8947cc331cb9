"""The drift monitor's state per model, and the plain helpers it is built with.

A :class:`ModelState` holds one model's buffered predictions, the streams
discovered so far (:data:`FEATURE` or :data:`PRED` as their source) and their
monitors. :func:`plain_prediction` and :func:`prediction_from_plain` are the
checkpoint form of a buffered prediction; :func:`detector_specs` turns the
settings' detector specs into the monitors' :data:`~drift.detectors.Spec`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from operator import itemgetter
from typing import Any

import numpy as np

from drift.baseline.skew import SkewChecker
from drift.detectors import Spec
from drift.monitors.categorical import MISSING, CategoricalDrift
from drift.monitors.labels import LabelDrift
from drift.monitors.numeric import NumericDrift
from drift.settings import DetectorSpec
from ingest.records import Prediction, SourceRef

FEATURE, PRED = 0, 1
"""A stream's source: a feature, or a field of the prediction (a score or class)."""

KIND = {FEATURE: "data", PRED: "prediction"}
"""The drift kind of a stream's events, by its source."""

STR = frozenset((str,))


class ModelState:
    """What the monitor keeps per model: buffers, discovered streams and their monitors."""

    __slots__ = (
        "buf",
        "srcs",
        "cat_buf",
        "tick",
        "fnames",
        "pnames",
        "perm",
        "num",
        "cats",
        "known",
        "skew",
        "labels",
        "getf",
        "getp",
        "blocks",
        "_feature_names",
    )

    def __init__(self, num: NumericDrift, skew: SkewChecker | None) -> None:
        self.buf: list[Prediction] = []
        self.srcs: list[SourceRef | None] = []
        self.cat_buf: list[Prediction] = []
        self.tick = 0
        self.fnames: list[str] = []
        self.pnames: list[str] = []
        self.perm: np.ndarray | None = None
        self.num = num
        self.cats: dict[tuple[int, str], CategoricalDrift] = {}
        self.known: set[tuple[int, str]] = set()
        self.skew = skew
        self.labels: dict[str, LabelDrift] = {}
        self.getf: Callable[[Mapping[str, Any]], tuple[Any, ...]] = getter([])
        self.getp: Callable[[Mapping[str, Any]], tuple[Any, ...]] = getter([])
        self.blocks = 0
        self._feature_names: tuple[int, frozenset[str]] = (-1, frozenset())

    def feature_names(self) -> frozenset[str]:
        """The names of the features in :attr:`known` (cached: ``known`` only grows)."""
        size, names = self._feature_names
        if size != len(self.known):
            names = frozenset(n for src, n in self.known if src == FEATURE)
            self._feature_names = (len(self.known), names)
        return names


def plain_prediction(p: Prediction) -> list[Any]:
    return [p.join_id, p.event_time, p.model, p.model_version, dict(p.features),
            dict(p.prediction)]


def prediction_from_plain(v: list[Any]) -> Prediction:
    return Prediction(v[0], float(v[1]), v[2], v[3], v[4], v[5])


def getter(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function returning the values of ``names`` as a tuple (KeyError if one is missing)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        get_one = itemgetter(names[0])
        return lambda m: (get_one(m),)
    return itemgetter(*names)


def detector_specs(
    primary: DetectorSpec, backstop: DetectorSpec | None, override: Mapping[str, Any] | None
) -> list[Spec]:
    """Detector specs as the monitors take them; ``override`` patches the primary's params."""
    specs: list[Spec] = [(primary.name, {**primary.params, **(override or {})}, primary.z_scale)]
    if backstop is not None:
        specs.append((backstop.name, dict(backstop.params), backstop.z_scale))
    return specs


def normalize(counts: Counter[Hashable]) -> Counter[Hashable]:
    """Category keys as the profile spells them: str, "true"/"false", MISSING."""
    if set(map(type, counts)) <= STR:  # the usual block: strings only, nothing to do
        return counts
    out: Counter[Hashable] = Counter()
    for k, v in counts.items():
        if k is None:
            out[MISSING] += v
        elif isinstance(k, bool):
            out["true" if k else "false"] += v
        else:
            out[str(k)] += v
    return out
