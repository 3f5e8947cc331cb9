"""The watermark over sources, and the frontier against the oracle's own statement of
the lateness rule."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ingest.repartition.frontier import Frontier
from labeler.join.watermark import Watermark
from labeler.tools.oracle import late_by_partition


def test_every_source_must_be_heard_from_and_the_minimum_wins() -> None:
    w = Watermark(lateness=2.0, sources=[("p", 0), ("p", 1), ("o", 0)])
    w.update(("p", 0), 500.0)
    w.update(("o", 0), 300.0)
    assert w.value() == -math.inf, "('p', 1) has not reported: it holds"
    w.update(("p", 1), 400.0)
    assert w.value() == 298.0
    w.update(("o", 0), 1000.0)
    assert w.value() == 398.0


def test_an_empty_idle_source_holds_nobody_and_a_busy_one_does() -> None:
    w = Watermark(lateness=0.0, sources=[("p", 0), ("o", 0)])
    w.update(("p", 0), 100.0)
    w.update(("o", 0), -math.inf)
    assert w.value() == -math.inf, "empty but not confirmed caught up: hold"
    w.update(("o", 0), -math.inf, idle=True)
    assert w.value() == 100.0


def test_the_watermark_never_goes_back_and_a_drain_is_not_checkpointed() -> None:
    w = Watermark(lateness=0.0, sources=[("p", 0)])
    w.update(("p", 0), 100.0, idle=True)
    assert w.value() == 100.0
    w.update(("p", 0), 50.0)  # a replayed, older report
    assert w.value() == 100.0
    w.close_all()
    assert w.value() == math.inf and w.durable_value == 100.0
    again = Watermark(lateness=0.0, sources=[("p", 0)])
    again.restore(w.snapshot())
    assert again.value() == 100.0 and again.marks == {("p", 0): 100.0}


@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), max_size=60),
       st.floats(min_value=0, max_value=50), st.integers(min_value=1, max_value=4))
def test_the_frontier_judges_lateness_as_the_oracle_states_it(times: list[float],
                                                               lateness: float,
                                                               votes: int) -> None:
    frontier = Frontier(lateness, votes)
    assert [frontier.observe(t) for t in times] == late_by_partition(times, lateness, votes)
    restored = Frontier(lateness, votes, top=frontier.top)
    assert restored.mark == frontier.mark
