"""The default detectors of every z-scored numeric column, updated together.

:class:`~drift.monitors.numeric.NumericDrift` feeds every armed column two
z-scores per block, location and spread. With a :class:`~drift.detectors.Watch`
per stream that is two Python calls, each with its own bookkeeping, per column
and block: most of the monitor's time. For the default detectors (a CUSUM,
on location with an ADWIN backstop) a :class:`ZBank` runs the watches of
every column at once:

- the CUSUMs are numpy arrays with one row per stream (rows ``0..W-1``
  location, ``W..2W-1`` spread: the layout of the monitor's z-scores),
  updated with the operations of :class:`drift.cusum.Cusum` in the same
  order, so sums, run lengths and firings are bit-identical;
- ADWIN stays River's (one Rust update per column and block); what a firing
  report needs besides (count, sums, recent inputs and prefix sums of the
  watch's inputs) is kept here as a ``Watch`` keeps it.

A row's checkpoint form is exactly a ``Watch``'s (:meth:`ZBank.state`,
:meth:`ZBank.load`), so checkpoints written with watches load into a bank and
the other way round. Only rows marked live are meaningful: the others (columns
learning, watched as a rate or by other detectors) are updated along with the
rest, to keep the arrays whole, and reset when a watch is loaded into them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from drift.cusum import Cusum
from drift.cuts import RECENT, Prefix
from drift.detectors import Detector, Firing, Spec, make_detector

BANKED = (("CUSUM",), ("CUSUM", "ADWIN"))
"""Detector lists (by name, in order) that a bank runs; other watches stay watches."""


def takes(specs: Sequence[Spec]) -> bool:
    """Whether a bank can run a watch of these detector specs."""
    return tuple(name for name, _, _ in specs) in BANKED


class Row:
    """A bank row seen as a watch: its specs, pressure and checkpoint (not its updates).

    It names its column and stream, not a row number: spread rows move down
    when the bank grows.
    """

    __slots__ = ("bank", "column", "spread")

    def __init__(self, bank: ZBank, column: int, spread: bool) -> None:
        self.bank = bank
        self.column = column
        self.spread = spread

    @property
    def row(self) -> int:
        return self.column + self.bank.width if self.spread else self.column

    @property
    def specs(self) -> list[Spec]:
        return self.bank.specs[self.row]

    def pressure(self) -> float:
        """As :meth:`drift.detectors.Watch.pressure`: the CUSUM's larger sum over ``h``."""
        return self.bank.pressure(self.row)

    def state(self) -> dict[str, Any]:
        """The :meth:`drift.detectors.Watch.state` of this row."""
        return self.bank.state(self.row)


def _insert(v: np.ndarray, width: int, fill: float | int | bool) -> np.ndarray:
    """``v`` (location rows, then spread rows, along its last axis) with one more row in each
    half."""
    x = np.full((*v.shape[:-1], 1), fill, dtype=v.dtype)
    return np.concatenate([v[..., :width], x, v[..., width:], x], axis=-1)


class ZBank:
    """CUSUMs for the location and spread of ``width`` columns, ADWIN on location.

    ``grow`` adds a column; ``load`` puts a watch (by its state) into a row and
    returns the :class:`Row` that stands for it; ``step`` feeds one z-score to
    every row selected and says which fired; ``cusum_firing`` and
    ``backstop_firing`` report a firing and restart the row's watch, as a
    ``Watch`` does when it fires.
    """

    def __init__(self) -> None:
        self.width = 0
        # Per row (2 * width): the CUSUM's state and parameters.
        # Pairs are stacked, the rise side [0] over the fall side [1], so one
        # numpy call updates both: sums (Cusum's up and down), run counters
        # (up_n, down_n), allowance and threshold (each the same for both).
        self._sums = np.zeros((2, 0))
        self._runs = np.zeros((2, 0), dtype=np.int64)
        self._delta = np.zeros((2, 0))
        self._h = np.ones((2, 0))
        self._n = np.zeros(0, dtype=np.int64)  # updates since the watch's restart
        self._min = np.zeros(0, dtype=np.int64)
        self._scale = np.ones(0)
        self.live = np.zeros(0, dtype=bool)
        self.specs: list[list[Spec]] = []
        self._cusum: list[dict[str, Any]] = []  # the CUSUM's parameters, as given
        self._fired: list[int] = []  # the CUSUM's firings (kept in its checkpoint)
        # Per column (location rows): the backstop and the watch's history of inputs.
        self._backstop: list[Detector | None] = []
        self._steps: list[Callable[[float], bool] | None] = []
        self._tracked = np.zeros(0, dtype=bool)
        self._bscale = np.ones(0)
        self._sum = np.zeros(0)
        self._sumsq = np.zeros(0)
        self._recent: list[deque[float]] = []
        self._prefix: list[Prefix] = []
        self._pstep = np.zeros(0, dtype=np.int64)  # the prefixes' steps
        # Constants as arrays, and what the live rows need (see _refresh).
        self._zero = np.zeros((2, 0))
        self._one = np.zeros((2, 0), dtype=np.int64)
        self._x = np.zeros((2, 0))  # the inputs, and their negatives
        self._zero_n = np.zeros(0, dtype=np.int64)
        self._scaled = self._gated = False
        self.active = False  # any row live
        self._dirty = True
        self._order: list[int] = []  # columns with a backstop
        self._calls: list[Callable[[float], bool]] = []  # their backstops' updates
        self._appends: list[Callable[[float], None]] = []  # their recent inputs' appends

    def grow(self) -> None:
        """Add a column (a location row and a spread row), not live."""
        w = self.width
        for attr, fill in (("_sums", 0.0), ("_runs", 0), ("_delta", 0.0), ("_h", 1.0), ("_n", 0),
                           ("_min", 0), ("_scale", 1.0), ("live", False), ("_zero", 0.0),
                           ("_one", 1), ("_x", 0.0)):
            setattr(self, attr, _insert(getattr(self, attr), w, fill))
        self.specs.insert(w, [])
        self.specs.append([])
        self._cusum.insert(w, {})
        self._cusum.append({})
        self._fired.insert(w, 0)
        self._fired.append(0)
        for attr, fill in (("_tracked", False), ("_bscale", 1.0), ("_sum", 0.0), ("_sumsq", 0.0),
                           ("_pstep", 8), ("_zero_n", 0)):
            v = getattr(self, attr)
            setattr(self, attr, np.concatenate([v, np.array([fill], dtype=v.dtype)]))
        self._backstop.append(None)
        self._steps.append(None)
        self._recent.append(deque(maxlen=RECENT))
        self._prefix.append(Prefix())
        self.width = w + 1
        self._dirty = True

    # -- rows and their checkpoints -------------------------------------------

    def load(self, row: int, state: Mapping[str, Any]) -> Row:
        """Run the watch whose :meth:`~drift.detectors.Watch.state` is ``state`` in ``row``.

        A location row takes a ``CUSUM`` or ``CUSUM`` + ``ADWIN`` watch, a
        spread row a ``CUSUM`` one (see :func:`takes`).
        """
        specs: list[Spec] = [(name, dict(params), float(scale))
                             for name, params, scale in state["specs"]]
        dets = state["detectors"]
        name, params, scale = specs[0]
        cusum = Cusum(**params)  # the parameters as the detector takes them
        up, down, _, up_n, down_n = dets[0]["cusum"]
        self._sums[:, row], self._runs[:, row] = (up, down), (up_n, down_n)
        # A watch's count and its CUSUM's are the same: both count the updates
        # since the watch's restart.
        self._n[row] = int(state["n"])
        self._delta[:, row], self._h[:, row] = cusum.delta, cusum.threshold
        self._min[row], self._scale[row] = cusum.min_instances, scale
        self.specs[row], self._cusum[row] = specs, dict(params)
        self._fired[row] = int(dets[0]["fired"])
        self.live[row] = True
        if row < self.width:
            j = row
            self._sum[j], self._sumsq[j] = float(state["sum"]), float(state["sumsq"])
            self._recent[j] = deque(state["recent"], maxlen=RECENT)
            prefix = self._prefix[j] = Prefix()
            prefix.step, prefix.sums = int(state["prefix"][0]), list(state["prefix"][1])
            self._pstep[j] = prefix.step
            self._backstop[j] = self._steps[j] = None
            self._tracked[j] = len(specs) > 1
            if len(specs) > 1:
                det = make_detector(specs[1][0], specs[1][1])
                det.restore(dets[1])
                self._backstop[j], self._steps[j] = det, det._fast
                self._bscale[j] = specs[1][2]
        self._refresh()
        return Row(self, row % self.width, row >= self.width)

    def drop(self, row: int) -> None:
        """Stop running ``row`` (its column relearns, or is watched otherwise)."""
        self.live[row] = False
        if row < self.width:
            self._tracked[row] = False
            self._backstop[row] = self._steps[row] = None
        self._refresh()

    def _refresh(self) -> None:
        """Note what the live rows need of :meth:`step` (after rows were loaded or dropped)."""
        live = self.live
        self.active = bool(live.any())
        self._scaled = bool((self._scale[live] != 1.0).any())
        self._gated = bool((self._min[live] > 1).any())
        self._dirty = True

    def state(self, row: int) -> dict[str, Any]:
        """The :meth:`~drift.detectors.Watch.state` of the watch ``row`` runs."""
        n = int(self._n[row])
        cusum = {"name": "CUSUM", "params": dict(self._cusum[row]), "n": 0, "sum": 0.0,
                 "sumsq": 0.0, "recent": [], "fired": self._fired[row], "prefix": [8, []],
                 "cusum": [float(self._sums[0, row]), float(self._sums[1, row]), n,
                           int(self._runs[0, row]), int(self._runs[1, row])]}
        out: dict[str, Any] = {
            "specs": [[name, dict(params), scale] for name, params, scale in self.specs[row]],
            "n": n, "sum": 0.0, "sumsq": 0.0, "recent": [], "prefix": [8, []],
            "detectors": [cusum],
        }
        det = self._backstop[row] if row < self.width else None
        if det is not None:
            prefix = self._prefix[row]
            out.update(sum=float(self._sum[row]), sumsq=float(self._sumsq[row]),
                       recent=list(self._recent[row]), prefix=[prefix.step, list(prefix.sums)])
            out["detectors"].append(det.state())
        return out

    def pressure(self, row: int) -> float:
        """How close the row's CUSUM is to firing (its larger sum over ``h``)."""
        up, down = self._sums[:, row].tolist()
        return float(max(up, down) / float(self._h[0, row]))

    # -- updates ---------------------------------------------------------------

    def step(self, z: np.ndarray, feed: np.ndarray | None = None) -> tuple[list[int], list[int]]:
        """Feed ``z[r]`` to every live row ``r`` (only where ``feed[r]``, if given).

        Returns the rows whose CUSUM fired and the columns whose backstop did
        (a column may be in both: its CUSUM comes first, as in a ``Watch``).
        Every firing must be collected (:meth:`cusum_firing`,
        :meth:`backstop_firing`) before the next step.
        """
        # Cusum.update, row-wise, in its order of operations: up + x - k and
        # down - x - k (as down + (-x), which IEEE rounds alike). Constants are
        # arrays: numpy costs more per call with a Python scalar operand.
        zero = self._zero
        x = self._x
        if self._scaled:
            np.multiply(z, self._scale, out=x[0])
        else:
            x[0] = z
        np.negative(x[0], out=x[1])
        sums = self._sums + x
        sums -= self._delta
        positive = sums > zero
        runs = self._runs + self._one
        runs *= positive
        # 0 where the sum is not positive, NaN included (fmax drops it). A sum
        # is never -0.0 (that needs -0.0 + -0.0, and the sums start at 0.0),
        # so fmax's choice between 0.0 and -0.0 does not arise.
        np.fmax(sums, zero, out=sums)
        n = self._n + self._one[0]
        over = sums >= self._h
        hit = over[0] | over[1]
        if self._gated:
            hit &= n >= self._min
        hit &= self.live if feed is None else feed
        if feed is not None:  # live rows not fed this block keep their state
            hold = self.live & ~feed
            np.copyto(sums, self._sums, where=hold)
            np.copyto(runs, self._runs, where=hold)
            np.copyto(n, self._n, where=hold)
        self._sums, self._runs, self._n = sums, runs, n
        fired = hit.nonzero()[0].tolist()
        return fired, self._backstops(z[: self.width], n[: self.width], feed)

    def _backstops(self, z: np.ndarray, n: np.ndarray, feed: np.ndarray | None) -> list[int]:
        """Watch.update's bookkeeping and backstop update, for every column with a backstop."""
        if self._dirty:
            self._order = self._tracked.nonzero()[0].tolist()
            self._calls = [self._steps[j] for j in self._order]  # type: ignore[misc]
            self._appends = [self._recent[j].append for j in self._order]
            self._dirty = False
        if not self._order:
            return []
        xs = (z * self._bscale).tolist()
        zs = z.tolist()
        if feed is None:
            cols, calls, appends = self._order, self._calls, self._appends
            mask = self._tracked
            # Rows without a backstop sum garbage: they are reset when loaded.
            self._sum += z
            self._sumsq += z * z
        else:
            mask = feed[: self.width] & self._tracked
            cols = mask.nonzero()[0].tolist()
            calls = [self._steps[j] for j in cols]  # type: ignore[misc]
            appends = [self._recent[j].append for j in cols]
            np.add(self._sum, z, out=self._sum, where=mask)
            np.add(self._sumsq, z * z, out=self._sumsq, where=mask)
        if len(cols) < len(zs):
            xs = [xs[j] for j in cols]
            zs = [zs[j] for j in cols]
        for append, v in zip(appends, zs, strict=True):
            append(v)
        due = n % self._pstep == self._zero_n
        due &= mask
        for j in due.nonzero()[0].tolist():
            prefix = self._prefix[j]
            prefix.add(int(n[j]), float(self._sum[j]))
            self._pstep[j] = prefix.step
        fired = [f(x) for f, x in zip(calls, xs, strict=True)]
        return [j for j, hit in zip(cols, fired, strict=True) if hit] if True in fired else []

    def cusum_firing(self, row: int) -> Firing:
        """The firing of ``row``'s CUSUM on the last step; restarts the row's watch."""
        up, down = self._sums[:, row].tolist()
        up_n, down_n = self._runs[:, row].tolist()
        rise = up >= down
        firing = Firing("CUSUM", "cumulative_deviation", max(up, down), float(self._h[0, row]),
                        int(self._n[row]), up_n if rise else down_n, 1 if rise else -1)
        self._fired[row] += 1
        self._restart(row)
        return firing

    def backstop_firing(self, j: int) -> Firing:
        """The firing of column ``j``'s backstop on the last step; restarts its watch."""
        det = self._backstop[j]
        assert det is not None  # noqa: S101 - only columns with a backstop fire one
        firing = det._fire(list(self._recent[j]), int(self._n[j]), float(self._sum[j]),
                           float(self._sumsq[j]), self._prefix[j], float(self._bscale[j]))
        self._restart(j)
        return firing

    def _restart(self, row: int) -> None:
        """Restart every detector of ``row``'s watch (Watch.reset)."""
        self._sums[:, row] = 0.0
        self._runs[:, row] = 0
        self._n[row] = 0
        if row >= self.width:
            return
        self._sum[row] = self._sumsq[row] = 0.0
        self._recent[row].clear()
        self._prefix[row].clear()
        self._pstep[row] = self._prefix[row].step
        det = self._backstop[row]
        if det is not None:
            det.reset()
            self._steps[row] = det._fast
            self._dirty = True
