"""Dotted field paths: the one place loglabel looks a path up in a decoded document.

A path is first tried as a literal key (forwarders write flat keys such as
``"event.original"`` too), then walked through nested objects.

>>> doc = {"features": {"price": 12.5}, "a.b": 1}
>>> lookup(doc, "features.price")
12.5
>>> lookup(doc, "a.b")
1
>>> is_missing(lookup(doc, "features.colour"))
True
>>> has_path(doc, "features")
True
"""

from __future__ import annotations

from typing import Any

MISSING: Any = object()  # what ``lookup`` returns for an absent path (null is ``None``)


def lookup(doc: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path``, or ``MISSING`` when the path is absent."""
    value = doc.get(path, MISSING)
    if value is not MISSING or "." not in path:
        return value
    node: Any = doc
    for part in path.split("."):
        if type(node) is not dict or part not in node:
            return MISSING
        node = node[part]
    return node


def is_missing(value: object) -> bool:
    """True for ``lookup``'s answer when the path is absent (as opposed to null)."""
    return value is MISSING


def has_path(doc: dict[str, Any], path: str) -> bool:
    """Whether ``path`` is present in ``doc`` (its value may be null)."""
    return lookup(doc, path) is not MISSING
