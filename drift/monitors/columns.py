"""The per-column state of :class:`drift.monitors.numeric.NumericDrift`, and its alarms.

A :class:`Column` is in one of three modes: :data:`LEARN` (collecting its
reference values), :data:`Z_SCORE` (block z-scores into a location and a
spread :class:`~drift.detectors.Watch`, or rows of the monitor's
:class:`~drift.monitors.zbank.ZBank` standing for them) or :data:`RATE` (a
rare 0/1 column, one ADWIN update per event). :meth:`Column.state` and
:meth:`Column.from_state` are its checkpoint form (plain, msgpack-able data).
The counters the monitor updates for every column at once (events since the
last alarm, events fed, super-block accumulators) live in the monitor's
arrays; they join the checkpoint as ``counters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.detectors import Detector, Firing, Spec, Watch, make_detector
from drift.monitors.zbank import Row

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
    """One numeric column: its mode, reference values, detectors and calibration.

    ``loc`` and ``disp`` are a :class:`~drift.detectors.Watch` each, or the
    :class:`~drift.monitors.zbank.Row` of the bank that runs them.
    """

    __slots__ = ("name", "kind", "specs", "mode", "warm", "warm_n", "next", "final", "loc",
                 "disp", "rate", "last", "ref", "baseline", "calib")

    def __init__(self, name: str, kind: str, specs: list[Spec], first: int) -> None:
        self.name = name
        self.kind = kind
        self.specs = specs
        self.mode = LEARN
        self.warm: list[np.ndarray] | None = []
        self.warm_n = 0
        self.next = first  # events after which the reference is (re)computed
        self.final = False  # the reference is frozen for good
        self.loc: Watch | Row | None = None
        self.disp: Watch | Row | None = None
        self.rate: Detector | None = None
        self.last: tuple[str, int] = ("", 0)  # stream and direction of the last reported alarm
        self.ref: dict[str, float] = {}
        self.baseline: np.ndarray | None = None
        self.calib: dict[str, float] = {}

    def state(self, counters: Mapping[str, Any]) -> dict[str, Any]:
        """Plain data (msgpack-able) from which :meth:`from_state` rebuilds this column.

        ``counters`` (``m``, ``acc``, ``fed``, ``since``: see :func:`counters`)
        are the monitor's; they are part of the checkpoint.
        """
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
            **counters, "last": list(self.last),
            "ref": dict(self.ref), "calib": dict(self.calib),
            "baseline": None if self.baseline is None else self.baseline.tolist(),
        }

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Column:
        """The column a :meth:`state` describes (with watches; its counters are left to
        the caller)."""
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
        col.last = (str(s["last"][0]), int(s["last"][1]))
        col.ref, col.calib = dict(s["ref"]), dict(s["calib"])
        col.baseline = None if s["baseline"] is None else np.asarray(s["baseline"], dtype=float)
        return col


def counters(m: int, acc: int, acc_l: float, acc_d: float, fed: float, since: float
             ) -> dict[str, Any]:
    """A column's counters in its checkpoint form: blocks pooled per super-block ``m``,
    the super-block so far (``acc`` blocks, location and spread z-score sums), events
    fed to its detectors since they started, events since its last reported alarm."""
    return {"m": m, "acc": [acc, acc_l, acc_d], "fed": fed, "since": since}
