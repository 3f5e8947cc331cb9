"""The vectorised numeric monitor detects exactly like the per-column one it replaced.

:mod:`tests.drift.monitors.numeric_reference` is the per-column implementation
(one :class:`~drift.detectors.Watch` per stream). Random short streams (mean
shifts, spread changes, missing values, columns added mid-stream, rare 0/1
columns, baselines, autocorrelated columns that pool blocks, other detector
specs) go through both, with checkpoints taken and restored mid-stream (the
reference's checkpoints too, which is the format written before). Every
block's alarms, the suppressed count and the checkpoints must be the same,
down to the last bit of every float.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import msgpack
import numpy as np
import pytest

from drift.monitors.numeric import BANK_FROM, NumericDrift
from drift.settings import NumericSettings
from tests.drift.monitors import numeric_reference as reference

SEEDS = range(60)

_S = NumericSettings()
DEFAULT = [(_S.detector.name, dict(_S.detector.params), _S.detector.z_scale)]
if _S.backstop is not None:
    DEFAULT.append((_S.backstop.name, dict(_S.backstop.params), _S.backstop.z_scale))
ADWIN = dict(DEFAULT[1][1])
SPECS: list[list[tuple[str, dict[str, Any], float]]] = [
    DEFAULT,
    DEFAULT,
    DEFAULT,
    [("CUSUM", {"delta": 1.0, "threshold": 8.0}, 1.0)],  # no backstop
    # A high CUSUM threshold, so that the backstop fires first.
    [("CUSUM", {"delta": 1.0, "threshold": 40.0}, 1.0), ("ADWIN", {**ADWIN, "delta": 0.01}, 4.0)],
    [("CUSUM", {"delta": 0.5, "threshold": 5.0, "min_instances": 30}, 0.7), ("ADWIN", ADWIN, 2.0)],
    # No allowance (with a baseline there is no reference uncertainty to add).
    [("CUSUM", {"delta": 0.0, "threshold": 30.0}, 1.0), ("ADWIN", ADWIN, 4.0)],
    [("PageHinkley", {"delta": 1.0, "threshold": 8.0, "min_instances": 10, "alpha": 1.0}, 1.0),
     ("ADWIN", ADWIN, 4.0)],
    [("ADWIN", ADWIN, 4.0)],
    [("CUSUM", {"delta": 1.0, "threshold": 8.0}, 1.0), ("CUSUM", {"threshold": 20.0}, 1.0)],
]
"""The default three times as often as any other; the first seven are banked (run by a ZBank)."""


def canonical(x: Any) -> str:
    """A text that differs whenever any value differs (NaN equal to NaN, -0.0 not 0.0)."""
    return json.dumps(x, sort_keys=True, default=lambda b: b.hex())


def alarm_key(alarm: Any) -> str:
    return canonical([alarm.name, alarm.kind, alarm.stream, repr(alarm.firing),
                      dict(alarm.params), dict(alarm.reference), dict(alarm.current)])


def column(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[float] | None]:
    """One random column of ``n`` events, with changes, and maybe training quantiles."""
    kind = rng.choice(["gauss", "gauss", "lognormal", "poisson", "rare", "flag", "ar", "const"])
    if kind == "gauss":
        x = rng.standard_normal(n) * rng.uniform(0.1, 10.0) + rng.uniform(-50.0, 50.0)
    elif kind == "lognormal":
        x = rng.lognormal(0.0, 1.0, n)
    elif kind == "poisson":
        x = rng.poisson(rng.uniform(0.5, 5.0), n).astype(float)
    elif kind == "rare":
        x = (rng.random(n) < rng.uniform(0.001, 0.01)).astype(float)
    elif kind == "flag":
        x = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(float)
    elif kind == "ar":
        phi = rng.uniform(0.6, 0.97)
        e = rng.standard_normal(n) * math.sqrt(1.0 - phi * phi)
        x = np.empty(n)
        x[0] = e[0]
        for i in range(1, n):
            x[i] = phi * x[i - 1] + e[i]
    else:
        x = np.full(n, float(rng.integers(0, 3)))
    sd = float(x.std()) or 1.0
    train = x[: n // 4].copy()
    for _ in range(int(rng.integers(0, 4))):  # changes
        at = int(rng.integers(0, n))
        change = rng.choice(["shift", "small", "spread", "rate", "ramp"])
        if change == "shift":
            x[at:] += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 4.0) * sd
        elif change == "small":
            x[at:] += rng.uniform(0.1, 0.4) * sd
        elif change == "spread":
            x[at:] = x[at:].mean() + (x[at:] - x[at:].mean()) * rng.uniform(1.5, 3.0)
        elif change == "rate":
            x[at:] = (rng.random(n - at) < rng.uniform(0.02, 0.2)).astype(float)
        else:
            x[at:] += np.linspace(0.0, rng.uniform(1.0, 6.0) * sd, n - at)
    if rng.random() < 0.3:  # missing values
        x[rng.random(n) < rng.uniform(0.01, 0.5)] = math.nan
    if rng.random() < 0.05:
        x[int(rng.integers(0, n)) :] = math.nan  # stops being served
    baseline = None
    if rng.random() < 0.3:
        off = rng.choice([0.0, 0.0, rng.uniform(-1.0, 1.0) * sd])
        baseline = (np.quantile(train, np.linspace(0.0, 1.0, 101)) + off).tolist()
    return x, baseline


def scenario(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2000, 9000))
    specs = SPECS[int(rng.integers(0, len(SPECS)))]
    kw = dict(specs=specs, z_clip=float(rng.choice([3.0, 3.0, 2.0])),
              winsorize=float(rng.choice([0.025, 0.0, 0.1])),
              dispersion=bool(rng.random() < 0.85), warmup=int(rng.integers(100, 1500)),
              min_samples=int(rng.choice([0, 64, 300])),
              cooldown=int(rng.choice([0, 500, 3000])),
              summary_blocks=int(rng.integers(1, 20)),
              provisional=int(rng.integers(32, 400)), block_size=16)
    width = int(rng.integers(1, 7)) if rng.random() < 0.8 else int(rng.integers(7, 11))
    cols = [column(rng, n) for _ in range(width)]
    starts = [0 if j == 0 or rng.random() < 0.6 else int(rng.integers(0, n)) for j in range(width)]
    key = "delta" if specs[0][0] == "ADWIN" else "threshold"
    params = [None if rng.random() < 0.8 else {key: float(rng.uniform(0.001, 0.01) if key == "delta"
                                                          else rng.uniform(5.0, 12.0))}
              for _ in range(width)]
    sizes = []
    while sum(sizes) < n:
        sizes.append(16 if rng.random() < 0.95 else int(rng.integers(1, 40)))
    cuts = sorted(int(c) for c in rng.integers(0, len(sizes), size=int(rng.integers(0, 4))))
    # Columns from which the new monitor banks its detectors: always, from a
    # column added mid-stream on, or the default.
    bank_from = int(rng.choice([0, 0, 2, 3, BANK_FROM]))
    return dict(kw=kw, bank_from=bank_from, cols=cols, starts=starts, params=params, sizes=sizes,
                cuts=cuts, old_format=bool(rng.random() < 0.5))


def restart(cls: type, kw: dict[str, Any], state: dict[str, Any]) -> Any:
    fresh = cls(**kw)
    fresh.restore(msgpack.unpackb(msgpack.packb(state)))
    return fresh


def run_both(seed: int, tally: Counter[str]) -> None:
    sc = scenario(seed)
    kw, kw_new = sc["kw"], {**sc["kw"], "bank_from": sc["bank_from"]}
    old, new = reference.NumericDrift(**kw), NumericDrift(**kw_new)
    cols, starts = sc["cols"], sc["starts"]
    added: list[int] = []
    at = 0
    for b, size in enumerate(sc["sizes"]):
        for j in sorted(set(range(len(cols))) - set(added), key=lambda j: starts[j]):
            if starts[j] <= at:
                name = f"c{j}"
                p, base = sc["params"][j], cols[j][1]
                assert old.add(name, "data", p, baseline=base) == new.add(name, "data", p,
                                                                          baseline=base)
                added.append(j)
        block = np.column_stack([cols[j][0][at : at + size] for j in added])
        if block.shape[0] == 0 or not added:
            at += size
            continue
        want = [alarm_key(a) for a in old.process(block)]
        got = [alarm_key(a) for a in new.process(block)]
        assert got == want, (seed, b)
        assert new.suppressed == old.suppressed, (seed, b)
        tally.update(json.loads(k)[2] + ":" + json.loads(k)[3].split("'")[1] for k in want)
        if b in sc["cuts"]:
            s_old, s_new = old.state(), new.state()
            assert canonical(s_new) == canonical(s_old), (seed, b)
            # Continue from either checkpoint: the old format is the reference's.
            new = restart(NumericDrift, kw_new, s_old if sc["old_format"] else s_new)
            old = restart(reference.NumericDrift, kw, s_old)
            tally["restart"] += 1
        at += size
    assert canonical(new.state()) == canonical(old.state()), seed
    tally["suppressed"] += new.suppressed
    tally["pooled"] += sum(int(c["m"]) > 1 for c in new.state()["columns"])
    tally["rate columns"] += sum(c.mode == 2 for c in new._cols)
    tally["banked"] += int(new._banked.sum())
    tally["watched"] += int((new._zlive & ~new._banked).sum())


def test_the_vectorised_monitor_detects_exactly_like_the_per_column_one() -> None:
    tally: Counter[str] = Counter()
    for seed in SEEDS:
        run_both(seed, tally)
    # The streams exercised every path that matters.
    for path in ("mean:CUSUM", "dispersion:CUSUM", "mean:ADWIN", "rate:ADWIN",
                 "mean:PageHinkley", "restart", "suppressed", "pooled", "rate columns", "banked",
                 "watched"):
        assert tally[path] > 0, (path, tally)


@pytest.mark.parametrize("seed", [1000, 1001])
def test_a_checkpoint_of_the_new_monitor_loads_into_the_old_one(seed: int) -> None:
    """The checkpoint format did not change: the per-column monitor reads the new one's."""
    sc = scenario(seed)
    kw = sc["kw"]
    new = NumericDrift(**kw, bank_from=0)
    for j, (_, base) in enumerate(sc["cols"]):
        new.add(f"c{j}", "data", baseline=base)
    x = np.column_stack([c[0] for c in sc["cols"]])
    for b in range(0, x.shape[0] // 2 - 15, 16):
        new.process(x[b : b + 16])
    old = restart(reference.NumericDrift, kw, new.state())
    new = restart(NumericDrift, {**kw, "bank_from": 0}, new.state())
    for b in range(x.shape[0] // 2, x.shape[0] - 15, 16):
        assert [alarm_key(a) for a in new.process(x[b : b + 16])] == [
            alarm_key(a) for a in old.process(x[b : b + 16])]
    assert canonical(new.state()) == canonical(old.state())
