"""Scenarios whose premise a client race can void (kafka-python dropping a member out
of its group, a zombie learning of its loss before it commits). An attempt checks
what the product must do either way; one whose premise did not hold runs again with
its own group and topics, a bounded number of times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

ATTEMPTS = 3


def own_streams(unique: Callable[[str], str], attempt: int) -> dict[str, dict[str, Any]]:
    """``kafka_config`` sections that give an attempt its own group and topics."""
    tag = f"a{attempt}"
    return {"kafka": {"group_id": unique(f"group-{tag}")},
            "topics": {name: unique(f"{prefix}-{tag}") for name, prefix in (
                ("predictions", "predictions"), ("outcomes", "outcomes"),
                ("dead_letter", "dead-letter"), ("drift", "drift"))}}


def until_premise_holds(attempt: Callable[[int], str | None], premise: str) -> None:
    """Run ``attempt(0)``, ``attempt(1)``... until one returns ``None`` (its premise
    held and it checked everything), at most ``ATTEMPTS`` times; each other return
    says why the premise failed. Fails the test if it never held."""
    missed = []
    for n in range(ATTEMPTS):
        why = attempt(n)
        if why is None:
            return
        missed.append(f"attempt {n}: {why}")
    pytest.fail(f"{premise} in none of {ATTEMPTS} attempts: {missed}")
