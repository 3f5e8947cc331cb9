"""The block and label steps as they were before they were made cheaper, kept as the
reference the equivalence tests compare the current code with (same outputs, same state).

Copied from drift/monitor.py, drift/blocks.py, drift/model_state.py,
drift/monitors/categorical.py and drift/monitors/rates.py; :func:`patched` swaps them in
for a reference run.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import numpy as np
import pytest

import drift.blocks as blocks
import drift.monitor as monitor
from drift.detectors import Firing
from drift.events import DriftEvent
from drift.model_state import FEATURE, KIND, PRED, ModelState
from drift.monitors.categorical import MISSING, CategoricalDrift
from drift.monitors.rates import NAME as SPLIT
from drift.monitors.rates import STATISTIC, ShareTest, _xlogx
from drift.reports import Evidence, SchemaLog, categorical_event, numeric_event


def normalize(counts: Counter[Hashable]) -> Counter[Hashable]:
    if all(type(k) is str for k in counts):
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


def discover(settings, schema, skew_window, st, feats, preds, record, events) -> None:  # type: ignore[no-untyped-def]
    st.blocks += 1
    if st.blocks <= 8:
        names = set().union(*feats)
    else:
        last = feats[-1]
        width = len(last)
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
            continue
        value = rows[first][name]
        st.known.add((src, name))
        if src == FEATURE:
            if not settings.override(name).enabled:
                continue
            if st.skew is not None:
                findings = st.skew.on_new_feature(name, value)
                events += schema.findings(findings, skew_window, record(first))
        blocks.register(settings, st, src, name, value)


def matrix(
    schema: SchemaLog,
    st: ModelState,
    feats: list[Mapping[str, Any]],
    preds: list[Mapping[str, Any]],
    record: Callable[[int], Evidence],
    events: list[DriftEvent],
) -> np.ndarray:
    fn, pn = st.fnames, st.pnames
    try:
        rows = [st.getf(f) + st.getp(r) for f, r in zip(feats, preds, strict=True)]
    except KeyError:
        rows = [(*map(f.get, fn), *map(r.get, pn)) for f, r in zip(feats, preds, strict=True)]
    try:
        return np.array(rows, dtype=float).reshape(len(rows), len(fn) + len(pn))
    except (TypeError, ValueError):
        pass
    a = np.full((len(rows), len(fn) + len(pn)), math.nan)
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


def categorical(st: ModelState, at: Any, events: list[DriftEvent]) -> None:
    """The old categorical step (``at``: the evidence, or a function giving it)."""
    if callable(at):
        at = at()
    buf = st.cat_buf
    st.cat_buf = []
    counted: dict[str, Counter[Hashable]] = {}
    feats = [p.features for p in buf]
    preds: list[Mapping[str, Any]] = []
    for (src, name), cat in st.cats.items():
        if src == PRED and not preds:
            preds = [p.prediction for p in buf]
        rows = feats if src == FEATURE else preds
        counts = normalize(Counter([r.get(name) for r in rows]))
        if src == FEATURE:
            counted[name] = counts
        alarm = cat.update(counts)
        if alarm is not None:
            events.append(categorical_event(alarm, cat.reported_specs, cat.window, KIND[src],
                                            name, at))
    if st.skew is not None:
        st.skew.add_categories(len(buf), counted)


def slide(self: CategoricalDrift, block: Counter[Hashable], n: int) -> None:
    self._blocks.append((block, n))
    self._counts.update(block)
    self._n += n
    while self._n - self._blocks[0][1] >= self.window:
        old, m = self._blocks.popleft()
        self._counts.subtract(old)
        self._n -= m
        for key in old:
            if self._counts[key] <= 0:
                del self._counts[key]


def feed(self: CategoricalDrift, block: Counter[Hashable], n: int) -> Any:
    other = len(self._p) - 1
    bucket_counts = [0] * len(self._p)
    get = self._bucket.get
    for key, c in block.items():
        bucket_counts[get(key, other)] += c
    root = math.sqrt(n)
    clip = self._z_clip
    fired = None
    # (the split test came after the cheaper steps; the reference runs it as they do)
    if self._split is not None and self._split.add(bucket_counts):
        found = self._split.last
        fired = Firing(SPLIT, STATISTIC, found.statistic, found.threshold, self._fed)
    for b, watch in enumerate(self._watches):
        z = (bucket_counts[b] / n - self._p[b]) * root / self._sd[b]
        firing = watch.update(min(max(z, -clip), clip))
        if fired is None:
            fired = firing
    return fired


def statistics(self: ShareTest) -> tuple[np.ndarray, np.ndarray]:
    k = self._size
    now = np.asarray(self._now, dtype=np.int64)
    total = now - self._cum[0]
    n = int(total.sum())
    table = _xlogx(n)
    after = now - self._cum[1:k]
    stat = self._base[1:k] + table[after].sum(axis=1) - table[after.sum(axis=1)]
    stat += table[n] - table[total].sum()
    return stat, self._pos[1:k]


def block(self: monitor.DriftMonitor, st: ModelState, last: Any, source: Any,
          force: bool) -> list[DriftEvent]:
    """The old ``DriftMonitor._block``: the block's Evidence made up front."""
    buf, srcs = st.buf, st.srcs
    st.buf, st.srcs = [], []
    feats = [p.features for p in buf]
    preds = [p.prediction for p in buf]
    events: list[DriftEvent] = []
    at = Evidence(last.model, last.event_time, str(source) if source is not None else None)

    def record(i: int) -> Evidence:
        src = srcs[i] if i < len(srcs) else None
        return Evidence(last.model, buf[i].event_time, str(src) if src is not None else None)

    discover(self.settings, self._schema, self._skew_window, st, feats, preds, record, events)
    if st.fnames or st.pnames:
        a = matrix(self._schema, st, feats, preds, record, events)
        if st.skew is not None and st.skew.add_block(st.fnames, a[:, : len(st.fnames)]):
            events += self._schema.findings(st.skew.evaluate(), self._skew_window, at)
        if st.perm is not None:
            a = a[:, st.perm]
        for alarm in st.num.process(a):
            events.append(numeric_event(alarm, at))
    if st.cats:
        st.cat_buf.extend(buf)
        if len(st.cat_buf) >= self._cat_k or force:
            categorical(st, at, events)
    if events:
        self._record(events)
    return events


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """The old steps in place of the current ones (the monitor, blocks, categorical, GLR)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(monitor.DriftMonitor, "_block", block)
        mp.setattr(monitor, "categorical", categorical)  # flush's pending categorical block
        mp.setattr(CategoricalDrift, "_slide", slide)
        mp.setattr(CategoricalDrift, "_feed", feed)
        mp.setattr(ShareTest, "statistics", statistics)
        yield
