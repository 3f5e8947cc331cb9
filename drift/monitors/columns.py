"""The per-column state of :class:`drift.monitors.numeric.NumericDrift`, and its alarms.

A :class:`Column` is in one of three modes: :data:`LEARN` (collecting its
reference values), :data:`Z_SCORE` (block z-scores into a location and a
spread :class:`~drift.detectors.Watch`) or :data:`RATE` (a rare 0/1 column,
one ADWIN update per event). :meth:`Column.state` and
:meth:`Column.from_state` are its checkpoint form (plain, msgpack-able data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Detector, Firing, Spec, Watch, make_detector

LEARN, Z_SCORE, RATE = 0, 1, 2
"""A column's modes: learning its reference, watched as z-scores, watched as a rate."""


@dataclass(frozen=True, slots=True)
class NumericAlarm:
    """A column whose location, dispersion or rate changed."""

    name: str
    kind: str
    stream: str
    firing: Firing
    params: Mapping[str, Any]
    reference: Mapping[str, float]
    current: Mapping[str, float]


class Column:
    """One numeric column: its mode, reference values, detectors and calibration."""

    __slots__ = ("name", "kind", "specs", "mode", "warm", "warm_n", "next", "final", "loc",
                 "disp", "rate", "m", "acc", "acc_l", "acc_d", "fed", "since", "last",
                 "ref", "baseline", "calib")

    def __init__(self, name: str, kind: str, specs: list[Spec], first: int) -> None:
        self.name = name
        self.kind = kind
        self.specs = specs
        self.mode = LEARN
        self.warm: list[np.ndarray] | None = []
        self.warm_n = 0
        self.next = first  # events after which the reference is (re)computed
        self.final = False  # the reference is frozen for good
        self.loc: Watch | None = None
        self.disp: Watch | None = None
        self.rate: Detector | None = None
        self.m = 1
        self.acc = 0
        self.acc_l = 0.0
        self.acc_d = 0.0
        self.fed = 0.0
        self.since = math.inf
        self.last: tuple[str, int] = ("", 0)  # stream and direction of the last reported alarm
        self.ref: dict[str, float] = {}
        self.baseline: np.ndarray | None = None
        self.calib: dict[str, float] = {}

    def state(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`from_state` rebuilds this column."""
        return {
            "name": self.name, "kind": self.kind,
            "specs": [[n, dict(p), s] for n, p, s in self.specs],
            "mode": self.mode,
            "warm": None if self.warm is None
            else np.concatenate(self.warm or [np.empty(0)]).tolist(),
            "warm_n": self.warm_n, "next": self.next, "final": self.final,
            "loc": self.loc.state() if self.loc else None,
            "disp": self.disp.state() if self.disp else None,
            "rate": self.rate.state() if self.rate else None,
            "m": self.m, "acc": [self.acc, self.acc_l, self.acc_d], "fed": self.fed,
            "since": self.since, "last": list(self.last),
            "ref": dict(self.ref), "calib": dict(self.calib),
            "baseline": None if self.baseline is None else self.baseline.tolist(),
        }

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Column:
        """The column a :meth:`state` describes."""
        specs: list[Spec] = [(n, p, float(sc)) for n, p, sc in s["specs"]]
        col = cls(s["name"], s["kind"], specs, int(s["next"]))
        col.mode = int(s["mode"])
        col.warm = None if s["warm"] is None else [np.asarray(s["warm"], dtype=float)]
        col.warm_n, col.final = int(s["warm_n"]), bool(s["final"])
        col.loc = Watch.from_state(s["loc"]) if s["loc"] else None
        col.disp = Watch.from_state(s["disp"]) if s["disp"] else None
        if s["rate"]:
            col.rate = make_detector("ADWIN", s["rate"]["params"])
            col.rate.restore(s["rate"])
        col.m = int(s["m"])
        col.acc, col.acc_l, col.acc_d = int(s["acc"][0]), float(s["acc"][1]), float(s["acc"][2])
        col.fed, col.since = float(s["fed"]), float(s["since"])
        col.last = (str(s["last"][0]), int(s["last"][1]))
        col.ref, col.calib = dict(s["ref"]), dict(s["calib"])
        col.baseline = None if s["baseline"] is None else np.asarray(s["baseline"], dtype=float)
        return col
