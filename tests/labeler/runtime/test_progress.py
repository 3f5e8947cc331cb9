"""When a bounded run of a worker with nothing assigned may end, and when it fails."""

from __future__ import annotations

from typing import Any

import pytest

from labeler.runtime import progress
from labeler.runtime.progress import IncompleteRun, InputProgress


class NothingAssigned:
    """The consumer of a standby member: in the group, owning nothing."""

    def assignment(self) -> set[Any]:
        return set()


def standby(unread: list[int | None]) -> InputProgress:
    watch = InputProgress(NothingAssigned(), ("p", "o"), 5.0, lambda tp: None)  # type: ignore[arg-type]
    answers = iter(unread)
    watch.group_unread = lambda: next(answers)  # type: ignore[method-assign]
    watch.last_input = watch.broker.reachable_since = 0.0
    watch.unassigned_since = 0.0
    watch.joined, watch.joined_at = True, 0.0
    return watch


def test_a_standby_waits_while_the_group_gets_on_with_the_input() -> None:
    grace = progress.UNASSIGNED_GRACE_S
    watch = standby([900, 600, 300, 0])
    # long past the grace, but the group's unread input keeps going down
    assert not watch.finished(1.0, grace + 10)
    assert not watch.finished(1.0, 2 * grace)
    assert not watch.finished(1.0, 3 * grace - 1)
    assert watch.finished(1.0, 3 * grace)


def test_a_standby_fails_when_the_group_stops_moving() -> None:
    grace = progress.UNASSIGNED_GRACE_S
    watch = standby([900, 600, 600, 600])
    assert not watch.finished(1.0, 10.0)
    assert not watch.finished(1.0, 20.0)  # moved here
    assert not watch.finished(1.0, 20.0 + grace - 1)
    with pytest.raises(IncompleteRun, match="still has 600 unread"):
        watch.finished(1.0, 20.0 + grace)


def test_an_unknown_answer_is_never_progress() -> None:
    grace = progress.UNASSIGNED_GRACE_S
    watch = standby([None, None])
    assert not watch.finished(1.0, 10.0)
    with pytest.raises(IncompleteRun, match="could not be asked"):
        watch.finished(1.0, grace + 1)


def test_a_worker_still_joining_its_group_is_not_a_standby() -> None:
    grace = progress.UNASSIGNED_GRACE_S
    watch = standby([0, 0])
    watch.joined = False
    watch.started = 0.0
    # the group has nothing unread, but this worker's first rebalance is still going on
    assert not watch.finished(1.0, 10.0)
    with pytest.raises(IncompleteRun, match="did not complete a join"):
        watch.finished(1.0, grace)
    watch.joined = True
    assert watch.finished(1.0, grace + 1)


def test_a_standby_ends_only_after_holding_nothing_for_a_while() -> None:
    """A first assignment made before the leader knew the partitions is empty, and the
    group's offsets may all be committed (a worker stopped with windows open): a restarted
    sole member must not end as a standby before the rebalance that gives it the work."""
    settle = progress.STANDBY_SETTLE_S
    watch = standby([0, 0, 0])
    watch.joined_at = 100.0  # joined (with nothing) at 100
    assert not watch.finished(1.0, 100.0 + settle - 1)
    assert watch.finished(1.0, 100.0 + settle)


def test_the_grace_to_join_counts_from_the_brokers_return() -> None:
    grace = progress.UNASSIGNED_GRACE_S
    watch = standby([0, 0])
    watch.joined = False
    watch.started = 0.0
    watch.broker.reachable_since = 80.0  # an outage from the start to 80 s
    assert not watch.finished(1.0, grace + 10)  # past the grace from the start: not late
    with pytest.raises(IncompleteRun, match="did not complete a join"):
        watch.finished(1.0, 80.0 + grace)
