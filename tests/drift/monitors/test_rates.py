"""The share test (GLR on cell counts) against a plain likelihood-ratio computation."""

import math
import random

import msgpack
import numpy as np
import pytest

from drift.errors import DriftConfigError
from drift.monitors.rates import ShareTest, chi2_sf, threshold


def plain_llr(before: list[int], after: list[int]) -> float:
    """Two multinomials (before, after the split) against one, written out."""
    na, nb = sum(before), sum(after)
    n = na + nb
    out = 0.0
    for a, b in zip(before, after, strict=True):
        if a:
            out += a * math.log(a / na)
        if b:
            out += b * math.log(b / nb)
        if a + b:
            out -= (a + b) * math.log((a + b) / n)
    return out


def draw(rng: random.Random, shares: list[float]) -> int:
    u, acc = rng.random(), 0.0
    for cell, share in enumerate(shares):
        acc += share
        if u < acc:
            return cell
    return len(shares) - 1


def test_chi_square_tail_and_its_inverse_match_scipy() -> None:
    chi2 = pytest.importorskip("scipy.stats").chi2
    for df in (1, 2, 3, 4, 7):
        for x in (0.5, 3.0, 20.0, 60.0):
            assert chi2_sf(x, df) == pytest.approx(chi2.sf(x, df), rel=1e-9)
        for level in (0.05, 1e-6, 1e-12):
            assert 2 * threshold(df, level) == pytest.approx(chi2.isf(level, df), rel=1e-6)


@pytest.mark.parametrize("cells", [2, 4])
def test_every_candidate_statistic_is_the_plain_likelihood_ratio(cells: int) -> None:
    rng = random.Random(cells)
    shares = [0.7, 0.3] if cells == 2 else [0.6, 0.1, 0.2, 0.1]
    test = ShareTest(cells, {"clock": 8, "per_level": 4})
    seen: list[int] = []
    for _ in range(5000):
        cell = draw(rng, shares)
        seen.append(cell)
        test.update(cell, test=False)
    stat, pos = test.statistics()
    assert 10 < pos.size < 60  # thinned to the geometric grid, not one split per block
    start = test._pos[0] * 8
    for s, p in zip(stat.tolist(), pos.tolist(), strict=True):
        before = [seen[start:p * 8].count(c) for c in range(cells)]
        after = [seen[p * 8:].count(c) for c in range(cells)]
        assert s == pytest.approx(plain_llr(before, after), abs=1e-7)


@pytest.mark.parametrize(("cells", "shares"), [(2, [0.8, 0.2]), (2, [0.97, 0.03]),
                                               (4, [0.77, 0.03, 0.05, 0.15])])
def test_false_alarms_on_stationary_streams_stay_under_the_target(
    cells: int, shares: list[float]
) -> None:
    # A high target so that alarms happen at all in a short run: the
    # Bonferroni bound makes the observed rate lower than the target.
    per_million, n = 2000.0, 100_000
    fired = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        test = ShareTest(cells, {"false_alarms_per_million": per_million})
        for cell in rng.choice(cells, size=n, p=shares).tolist():
            fired += test.update(cell)
    assert fired <= per_million * 3 * n / 1e6


def test_a_rate_step_is_found_soon_with_the_statistic_above_its_threshold() -> None:
    rng = random.Random(3)
    test = ShareTest(2)
    delays, firings = [], []
    for run in range(10):
        change = 4000 + 97 * run
        test = ShareTest(2)
        for i in range(change + 3000):
            if test.update(int(rng.random() < (0.2 if i < change else 0.3))):
                firings.append(test.last)
                delays.append(i - change)
                break
    assert len(delays) == 10 and all(0 <= d < 1500 for d in delays)
    for split in firings:
        assert split is not None and split.statistic >= split.threshold
        assert split.statistic == pytest.approx(plain_llr(list(split.before), list(split.after)))
        assert split.threshold == pytest.approx(
            threshold(1, 1e-6 * 32 / split.candidates))
        after = split.after[1] / sum(split.after)
        assert after > split.before[1] / sum(split.before)


def test_after_an_alarm_the_history_starts_again() -> None:
    rng = random.Random(4)
    test = ShareTest(2, {"clock": 16})
    for i in range(20_000):
        if test.update(int(rng.random() < (0.1 if i < 5000 else 0.5))):
            assert test.n == 0
            break
    else:
        pytest.fail("no alarm")
    for _ in range(320):
        test.update(1)
    assert test.n == 320 and test.counts() == (0, 320)


def test_memory_is_bounded_by_the_grid_and_the_window() -> None:
    rng = random.Random(5)
    test = ShareTest(2, {"clock": 16, "per_level": 8, "window": 16 * 1024})
    sizes = []
    for i in range(200_000):
        test.update(int(rng.random() < 0.3))
        if i % 10_000 == 9_999:
            sizes.append(test._size)
            assert test.n <= 16 * 1024 + 5 * 16  # thinned every 4 blocks
    # 1024 blocks in the window: 8 boundaries for each of the 8 doublings of
    # age, the start of the history, and up to 4 blocks not thinned yet.
    assert max(sizes) <= 8 * 8 + 1 + 4


def test_state_round_trips_through_msgpack_and_continues_exactly() -> None:
    rng = random.Random(6)
    cells = [draw(rng, [0.5, 0.2, 0.2, 0.1] if i < 40_000 else [0.4, 0.3, 0.2, 0.1])
             for i in range(60_000)]
    a = ShareTest(4, {"clock": 16})
    for c in cells[:31_013]:
        a.update(c)
    b = ShareTest(4, {"clock": 16})
    b.restore(msgpack.unpackb(msgpack.packb(a.state())))
    got_a, got_b = [], []
    for i, c in enumerate(cells[31_013:]):
        if a.update(c):
            got_a.append((i, a.last))
        if b.update(c):
            got_b.append((i, b.last))
    assert got_a and got_a == got_b


def test_unknown_or_bad_parameters_are_config_errors() -> None:
    with pytest.raises(DriftConfigError, match="delta"):
        ShareTest(2, {"delta": 0.002})
    with pytest.raises(DriftConfigError):
        ShareTest(2, {"false_alarms_per_million": 0})
    with pytest.raises(DriftConfigError):
        ShareTest(1)


def test_counts_a_block_at_a_time_are_the_observations_one_at_a_time() -> None:
    rng = random.Random(5)
    cells = [rng.choices(range(4), [0.4, 0.3, 0.2, 0.1] if i < 6000 else [0.3, 0.3, 0.2, 0.2])[0]
             for i in range(12_000)]
    one, blocks = ShareTest(4, {"clock": 256}), ShareTest(4, {"clock": 256})
    fired_one = [i for i, c in enumerate(cells) if one.update(c)]
    fired_blocks = []
    for start in range(0, len(cells), 64):
        counts = [cells[start:start + 64].count(c) for c in range(4)]
        if blocks.add(counts):
            fired_blocks.append(start + 63)
    assert fired_one and fired_one == fired_blocks
    assert blocks.state() == one.state()


def test_since_change_keeps_every_block_of_one_regime() -> None:
    from drift.monitors.rates import since_change

    rng = np.random.default_rng(3)
    blocks = [rng.multinomial(64, [0.25, 0.3, 0.2, 0.25]).tolist() for _ in range(12)]
    assert since_change(blocks[:8], blocks[8:]) == 8


def test_since_change_cuts_at_the_change_the_window_still_holds() -> None:
    from drift.monitors.rates import since_change

    rng = np.random.default_rng(4)
    old = [rng.multinomial(64, [0.4, 0.3, 0.2, 0.1]).tolist() for _ in range(4)]
    new = [rng.multinomial(64, [0.1, 0.3, 0.2, 0.4]).tolist() for _ in range(8)]
    # 4 blocks of the old shares, then 4 of the new, then the 4 relearned from
    assert since_change(old + new[:4], new[4:]) == 4
    assert since_change([], new) == 0
    assert since_change(old, []) == 4
