"""PII policies: per-field redaction of forwarded records, before anything else sees them.

The decoder applies a ``PiiPolicy`` to each record right after its envelope
is opened and before the field mapping, so canonical records, shards,
checkpoints, internal topics, drift events and logs only ever hold the
redacted values. Paths are dotted, as in the field map: the literal key
(``"features.email"`` at the top level) and the nested path (``features`` ->
``email``) are both redacted when present. A policy on an object applies to
the whole object.

Policies (``FieldPolicy.policy``):

- ``drop``: the field is removed. A dropped feature is then *missing* (absent
  from the record, not null); a declared schema that requires it dead-letters
  the message (``missing_required``).
- ``hash``: the keyed HMAC-SHA256 of the value's text, as 64 hex digits. Text
  is the string itself, an int's decimal digits (so ``42`` and ``"42"`` hash
  alike, as the join id treats them alike), ``true``/``false``, a float's
  ``repr``, and an object or array as compact JSON with sorted keys. The same
  key on predictions and outcomes keeps a hashed join id joinable.
- ``bucket``: a number becomes the lower bound of its ``width``-wide bucket:
  37 with width 10 is 30 (the bucket [30, 40)). The type is kept (an int stays
  an int when the width is an int; a float stays a float; a numeric string
  stays a string), so the column stays numeric and numeric drift detectors
  still apply. Float bounds are computed on the decimal text (37.3 with width
  0.1 is 37.3, not 37.2). NaN and infinity pass unchanged: the mapping's rule
  for them decides (NaN is null, infinity is ``non_finite``).
- ``generalize``: a string keeps its first ``keep`` characters ("94107" with
  keep 3 is "941"); an int is generalized as its decimal text (a string).

``null`` stays ``null`` under every policy but ``drop``. A value a policy
cannot apply to (``bucket`` on a non-numeric string, a boolean or an object;
``generalize`` on a float, a boolean or an object) is dropped and counted as
``pii.unfit.<path>``: a raw value never passes.

Dead letters (``PiiPolicy.redact_dead_letter``): with a policy, a dead letter
never carries the original bytes; the rule is in :mod:`ingest.wire.pii_dead_letters`.

Example (a doctest, with a fixed key):

>>> policy = PiiPolicy({"features.email": FieldPolicy("drop"),
...                     "features.age": FieldPolicy("bucket", width=10),
...                     "features.zip": FieldPolicy("generalize", keep=3)})
>>> policy.apply({"request_id": "r1", "features": {"email": "a@b.org", "age": 37,
...                                                "zip": "94107"}})
{'request_id': 'r1', 'features': {'age': 30, 'zip': '941'}}
>>> import hmac
>>> key = b"0123456789abcdef"
>>> hashed = PiiPolicy({"user_id": FieldPolicy("hash")}, key=key)
>>> hashed.apply({"user_id": "u1"}) == {"user_id": hmac.new(key, b"u1", "sha256").hexdigest()}
True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Literal

from ingest.wire.pii_dead_letters import (
    SAFE_DETAIL_REASONS,
    WITHHELD_DETAIL,
    WITHHELD_KEY,
    DeadLetterRedaction,
    RedactedValue,
)
from ingest.wire.timeparse import is_number_text

__all__ = [
    "MIN_KEY_BYTES",
    "POLICIES",
    "SAFE_DETAIL_REASONS",
    "WITHHELD_DETAIL",
    "WITHHELD_KEY",
    "FieldPolicy",
    "PiiPolicy",
    "Policy",
    "RedactedValue",
    "needs_key",
]

Policy = Literal["drop", "hash", "bucket", "generalize"]
POLICIES: tuple[str, ...] = ("drop", "hash", "bucket", "generalize")
"""Every policy name, as written in the config."""

MIN_KEY_BYTES = 16
"""The shortest hash key accepted: a short key makes the hashes guessable."""

_SHA256_BLOCK = 64
_EXACT = 2.0**52  # below this, k * width is exact for an int width
_UNFIT: Any = object()
_DROP: Any = object()


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """What happens to one field: ``policy`` with its parameter.

    ``width`` (> 0) is required by ``bucket`` and ``keep`` (>= 1) by
    ``generalize``; neither is allowed elsewhere. Raises ``ValueError``.
    """

    policy: Policy
    width: int | float | None = None
    keep: int | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; expected one of {POLICIES}")
        if (self.width is not None) != (self.policy == "bucket"):
            raise ValueError("bucket needs a width, and only bucket takes one")
        if (self.keep is not None) != (self.policy == "generalize"):
            raise ValueError("generalize needs keep, and only generalize takes it")
        width = self.width
        if width is not None and (type(width) not in (int, float) or not 0 < width < math.inf):
            raise ValueError(f"bucket width must be a finite number > 0, not {width!r}")
        if self.keep is not None and (type(self.keep) is not int or self.keep < 1):
            raise ValueError(f"generalize keep must be an int >= 1, not {self.keep!r}")


class Node:
    """One key of the path trie: its policy (if a path ends here) and its children."""

    __slots__ = ("path", "rule", "children")

    def __init__(self) -> None:
        self.path = ""
        self.rule: FieldPolicy | None = None
        self.children: dict[str, Node] = {}


class PiiPolicy(DeadLetterRedaction):
    """The per-field policies of one pipeline, ready to apply.

    ``key`` is the HMAC key for ``hash`` policies; it is required (at least
    ``MIN_KEY_BYTES`` bytes) when one exists. It is never shown by ``repr``.
    Raises ``ValueError`` for an empty path or a missing or short key.
    """

    def __init__(self, fields: Mapping[str, FieldPolicy], key: bytes | None = None) -> None:
        for path in fields:
            if not path or "" in path.split("."):
                raise ValueError(f"PII path {path!r} has an empty part")
        if needs_key(fields) and (key is None or len(key) < MIN_KEY_BYTES):
            raise ValueError(f"a hash policy needs a key of at least {MIN_KEY_BYTES} bytes")
        self.fields: Mapping[str, FieldPolicy] = dict(fields)
        self._pads = _hmac_pads(key) if key else None
        self._root: dict[str, Node] = {}
        for path, rule in self.fields.items():
            _insert(self._root, [path], path, rule)
            if "." in path:
                _insert(self._root, path.split("."), path, rule)
        self._decimals = {p: _decimals(r.width) for p, r in self.fields.items()
                          if r.width is not None and type(r.width) is float}

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        rules = {p: r.policy for p, r in self.fields.items()}
        return f"PiiPolicy({rules})"

    def covers(self, path: str) -> bool:
        """Whether a policy applies to ``path`` (the path itself or an object holding it)."""
        return any(path == p or path.startswith(p + ".") for p in self.fields)

    # -- records -----------------------------------------------------------------------

    def apply(self, record: dict[str, Any], counters: Counter[str] | None = None
              ) -> dict[str, Any]:
        """``record`` with every policy applied; ``record`` itself is left unchanged.

        Only the dicts on a changed path are copied; a record no policy
        touches is returned as is. Values a policy cannot apply to are dropped
        and counted in ``counters`` as ``pii.unfit.<path>``.
        """
        return self._walk(record, self._root, counters)

    def _walk(self, node: dict[str, Any], trie: dict[str, Node],
              counters: Counter[str] | None) -> dict[str, Any]:
        out: dict[str, Any] | None = None
        for key, entry in trie.items():
            if key not in node:
                continue
            value = node[key]
            if entry.rule is not None:
                new = self._rule(entry.path, entry.rule, value)
                if new is _UNFIT:
                    if counters is not None:
                        counters[f"pii.unfit.{entry.path}"] += 1
                    new = _DROP
            elif type(value) is dict:
                new = self._walk(value, entry.children, counters)
            else:
                continue
            if new is value:
                continue
            if out is None:
                out = dict(node)
            if new is _DROP:
                del out[key]
            else:
                out[key] = new
        return node if out is None else out

    def _rule(self, path: str, rule: FieldPolicy, value: Any) -> Any:
        policy = rule.policy
        if policy == "drop":
            return _DROP
        if value is None:
            return None
        if policy == "hash":
            return self.hash_value(value)
        if policy == "bucket":
            return _bucket(value, rule.width, self._decimals.get(path, 0))  # type: ignore[arg-type]
        return _generalize(value, rule.keep)  # type: ignore[arg-type]

    def hash_value(self, value: Any) -> str:
        """The keyed HMAC-SHA256 (hex) of ``value``'s text (see the module rules)."""
        if self._pads is None:
            raise ValueError("this policy has no hash key")
        inner, outer = self._pads[0].copy(), self._pads[1].copy()
        inner.update(_text(value).encode("utf-8", "surrogatepass"))
        outer.update(inner.digest())
        return outer.hexdigest()


def needs_key(fields: Mapping[str, FieldPolicy]) -> bool:
    """Whether any of ``fields`` is hashed (and so a key is required)."""
    return any(rule.policy == "hash" for rule in fields.values())


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's keyed inner and outer states (RFC 2104), to copy per value.

    The same result as ``hmac.new(key, text, "sha256")``, at half the cost:
    ``hmac``'s own ``copy()`` is Python code, ``hashlib``'s is C.
    """
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in key)),
            hashlib.sha256(bytes(b ^ 0x5C for b in key)))


def _insert(root: dict[str, Node], parts: list[str], path: str, rule: FieldPolicy) -> None:
    trie = root
    for i, part in enumerate(parts):
        node = trie.get(part)
        if node is None:
            node = trie[part] = Node()
        if i == len(parts) - 1:
            node.path, node.rule = path, rule
        trie = node.children



def _decimals(width: float) -> int:
    exponent = Decimal(repr(width)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _text(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _bucket(value: Any, width: int | float, decimals: int) -> Any:
    kind = type(value)
    if kind is int:
        if type(width) is int:
            return value // width * width
        return _floor(Decimal(value), width, decimals)
    if kind is float:
        if value - value != 0.0:
            return value  # NaN or infinity: the mapping's rule decides
        if type(width) is int and -_EXACT < value < _EXACT:
            # integer bounds are exact floats: compare in binary, fix a rounded quotient
            k = math.floor(value / width)
            if k * width > value:
                k -= 1
            elif (k + 1) * width <= value:
                k += 1
            return float(k * width)
        return _floor(Decimal(repr(value)), width, decimals)
    if kind is str and is_number_text(value):
        number = int(value) if value.lstrip("-").isdigit() else float(value)
        return str(_bucket(number, width, decimals))
    return _UNFIT


def _floor(value: Decimal, width: int | float, decimals: int) -> float:
    step = Decimal(repr(width)) if type(width) is float else Decimal(width)
    lower = (value / step).to_integral_value(rounding=ROUND_FLOOR) * step
    return round(float(lower), decimals) if decimals else float(lower)


def _generalize(value: Any, keep: int) -> Any:
    kind = type(value)
    if kind is str:
        return value[:keep]
    if kind is int:
        return str(value)[:keep]
    return _UNFIT

