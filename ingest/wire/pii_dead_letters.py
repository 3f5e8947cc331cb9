"""PII policies on dead letters: a dead letter never carries the original bytes.

:class:`DeadLetterRedaction` gives :class:`ingest.wire.pii.PiiPolicy` its
``redact_dead_letter``, with the rule below; the field policies themselves,
and their redaction of records, are in :mod:`ingest.wire.pii`.

With a policy (``PiiPolicy.redact_dead_letter``):

- A value that parses as a JSON object becomes that object with the policy
  applied (the whole message, envelope included, so it can be replayed). The
  serialized copies of a record that envelopes carry, a top-level ``message``
  and ``event.original`` strings, are redacted the same way when they hold a
  JSON object, and replaced by ``[withheld sha256:<hex>]`` otherwise.
- Anything else (not JSON, not an object, not re-encodable) becomes the
  marker ``{"loglabel_withheld": true, "sha256": "<hex>", "bytes": <n>}``,
  with the SHA-256 and length of the original bytes. An empty value stays
  empty.
- The value is a ``RedactedValue``: the sink adds the headers
  ``loglabel.pii`` (``redacted`` or ``withheld``) and
  ``loglabel.original.sha256``, and drops the message key (forwarders key by
  the join id, which may be the very field that is hashed).
- A value standing where a policy path expects an object but that is not one
  (``features = [{"email": ...}]`` under ``features.email``: the policy cannot
  reach inside it) becomes ``[withheld sha256:<hex>]`` too.
- The detail is kept only for the reasons whose details name fields, types
  and positions, or quote values after the policy ran
  (``SAFE_DETAIL_REASONS``); any other reason's detail (``bad_time`` quotes
  a time read while the envelope is opened, before the policy runs;
  ``internal_error`` quotes an exception) is replaced by a fixed text. Every
  detail is also scrubbed of the raw text of every value found at a policy
  path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from ingest.records import DeadLetter

if TYPE_CHECKING:
    from ingest.wire.pii import Node

SAFE_DETAIL_REASONS = frozenset((
    "empty", "logstash_plain_codec", "not_json", "not_object", "missing_time", "missing_id",
    "bad_id", "missing_prediction", "bad_type", "non_finite", "out_of_range",
    "missing_required",
))
"""Dead-letter reasons whose details never quote a raw value of a policy field."""

WITHHELD_DETAIL = "detail withheld by the PII policy: it may quote a raw value"
WITHHELD_KEY = "loglabel_withheld"
"""The key that marks a dead-letter value replaced by the SHA-256 of the original."""

_REDACTED = "[redacted]"


class RedactedValue(bytes):
    """A dead letter's value after the PII rule, knowing what was done to it.

    ``kind`` is ``"redacted"`` (the policy was applied to a JSON object, or
    the value was empty) or ``"withheld"`` (replaced by a marker);
    ``sha256`` is the hex SHA-256 of the original bytes.
    """

    kind: str
    sha256: str

    def __new__(cls, value: bytes, kind: str, sha256: str) -> RedactedValue:
        obj = super().__new__(cls, value)
        obj.kind = kind
        obj.sha256 = sha256
        return obj


class DeadLetterRedaction:
    """The dead-letter half of :class:`ingest.wire.pii.PiiPolicy` (a mixin).

    It borrows the policy's path trie and its record redaction, ``apply``.
    """

    _root: dict[str, Node]  # PiiPolicy's
    apply: Callable[..., dict[str, Any]]  # PiiPolicy's

    def redact_dead_letter(self, letter: DeadLetter) -> DeadLetter:
        """``letter`` made safe by the dead-letter rule above (unchanged if already so)."""
        if isinstance(letter.raw, RedactedValue):
            return letter
        try:
            value, raw_texts = self._dead_letter_value(letter.raw)
        except Exception:  # noqa: BLE001 - e.g. nesting too deep to walk: withhold it all
            return replace(letter, detail=WITHHELD_DETAIL, raw=_withheld(letter.raw))
        detail = letter.detail if letter.reason in SAFE_DETAIL_REASONS else WITHHELD_DETAIL
        for text in sorted(raw_texts, key=len, reverse=True):
            detail = detail.replace(text, _REDACTED)
        return replace(letter, detail=detail, raw=value)

    def _dead_letter_value(self, raw: bytes) -> tuple[RedactedValue, set[str]]:
        digest = hashlib.sha256(raw).hexdigest()
        if not raw:
            return RedactedValue(b"", "redacted", digest), set()
        doc = _parse(raw)
        if type(doc) is dict:
            texts: set[str] = set()
            try:
                value = orjson.dumps(self._redact_message(doc, texts))
            except (orjson.JSONEncodeError, TypeError):
                pass  # e.g. an int beyond 64 bits: withheld below
            else:
                return RedactedValue(value, "redacted", digest), texts
        return _withheld(raw, digest), set()

    def _redact_message(self, doc: dict[str, Any], texts: set[str]) -> dict[str, Any]:
        """A whole message redacted, with the record copies its envelope embeds."""
        self._raw_texts(doc, self._root, texts)
        out = _off_path(self.apply(doc), self._root)
        if type(out.get("message")) is str:
            out = {**out, "message": self._embedded(out["message"], texts)}
        event = out.get("event")
        if type(event) is dict and type(event.get("original")) is str:
            out = {**out, "event": {**event, "original": self._embedded(event["original"],
                                                                        texts)}}
        return out

    def _embedded(self, text: str, texts: set[str]) -> str:
        inner = _parse(text.encode("utf-8", "surrogatepass")) if text.lstrip()[:1] == "{" else None
        if type(inner) is dict:
            self._raw_texts(inner, self._root, texts)
            try:
                return orjson.dumps(_off_path(self.apply(inner), self._root)).decode()
            except (orjson.JSONEncodeError, TypeError):
                pass
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return f"[withheld sha256:{digest}]"

    def _raw_texts(self, node: dict[str, Any], trie: dict[str, Node], texts: set[str]) -> None:
        """Collect the text of every raw value at a policy path (to scrub details)."""
        for key, entry in trie.items():
            if key not in node:
                continue
            value = node[key]
            if entry.rule is not None:
                _leaf_texts(value, texts)
            elif type(value) is dict:
                self._raw_texts(value, entry.children, texts)



def _off_path(node: dict[str, Any], trie: dict[str, Node]) -> dict[str, Any]:
    """``node`` with every value that stands where a policy path expects an object, but
    is not one (``features = [{"email": ...}]`` under ``features.email``), withheld: the
    policy cannot reach inside it, and a dead letter must not carry it as it is."""
    out: dict[str, Any] | None = None
    for key, entry in trie.items():
        if entry.rule is not None or key not in node:
            continue
        value = node[key]
        if type(value) is dict:
            new: Any = _off_path(value, entry.children)
        elif value is None:
            continue
        else:
            text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS) if type(value) in (
                list, str, int, float, bool) else repr(value).encode()
            new = f"[withheld sha256:{hashlib.sha256(text).hexdigest()}]"
        if new is value:
            continue
        if out is None:
            out = dict(node)
        out[key] = new
    return node if out is None else out


def _withheld(raw: bytes, digest: str | None = None) -> RedactedValue:
    digest = digest or hashlib.sha256(raw).hexdigest()
    marker = {WITHHELD_KEY: True, "sha256": digest, "bytes": len(raw)}
    return RedactedValue(orjson.dumps(marker), "withheld", digest)



def _leaf_texts(value: Any, texts: set[str]) -> None:
    kind = type(value)
    if kind is str:
        if value:
            texts.add(value)
    elif kind is int or kind is float:
        texts.add(str(value))
    elif kind is dict:
        for item in value.values():
            _leaf_texts(item, texts)
    elif kind is list:
        for item in value:
            _leaf_texts(item, texts)


def _parse(raw: bytes) -> Any:
    """JSON as the envelope reads it (NaN/Infinity tolerated), or ``None``."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except (ValueError, RecursionError):
        return None
