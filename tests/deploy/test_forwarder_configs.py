"""The forwarder configs under deploy/ stay in step with the emitter and the decoder.

Each config is parsed (small parsers for the Fluentd directive syntax, Fluent
Bit's classic INI-like format and Logstash's block syntax, enough for these
files), its settings that decide what lands in Kafka are checked, and the
message that forwarder writes with those settings (per shared formats) is fed
to loglabel's decoder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ingest.emitter import DEFAULT_TAG_PREFIX, OUTCOME_LABEL, PREDICTION_LABEL
from ingest.records import Outcome, Prediction
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DEFAULTS = FieldMap()
JOIN_KEY = DEFAULTS.join_id[0]  # the field forwarders key Kafka messages by
TIME_KEY = DEFAULTS.event_time
TOPICS = {f"{DEFAULT_TAG_PREFIX}.{PREDICTION_LABEL}": "predictions",
          f"{DEFAULT_TAG_PREFIX}.{OUTCOME_LABEL}": "outcomes"}
KIND = {"predictions": "prediction", "outcomes": "outcome"}

SECONDS, NANOS = 1718000000, 123456789  # an EventTime as the emitter sends it
PREDICTION = {"request_id": "r1", "model": "ctr", "model_version": "3",
              "features": {"price": 12.5, "country": "DE"}, "score": 0.73,
              "time": SECONDS + NANOS / 1e9}
OUTCOME = {"request_id": "r1", "type": "purchase", "value": 5.0, "outcome_id": "o1",
           "time": SECONDS + NANOS / 1e9}
RECORDS = {"prediction": PREDICTION, "outcome": OUTCOME}


def compact_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def iso(fraction_digits: int) -> str:
    stamp = datetime.fromtimestamp(SECONDS, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{str(NANOS).zfill(9)[:fraction_digits]}Z"


def assert_decodes(kind: str, raw: bytes, event_time: float) -> None:
    record = Decoder(kind, FieldMap(), fmt="auto").decode(raw)  # type: ignore[arg-type]
    if kind == "prediction":
        assert isinstance(record, Prediction), record
        assert (record.join_id, record.model, record.prediction) == ("r1", "ctr", {"score": 0.73})
        assert record.features == {"price": 12.5, "country": "DE"}
    else:
        assert isinstance(record, Outcome), record
        assert (record.join_id, record.outcome_type, record.value) == ("r1", "purchase", 5.0)
    assert record.event_time == pytest.approx(event_time, abs=1e-6)


# --- Fluentd directive syntax ----------------------------------------------------------------


@dataclass
class Directive:
    name: str
    arg: str = ""
    params: dict[str, str] = field(default_factory=dict)
    children: list[Directive] = field(default_factory=list)

    def sections(self, name: str) -> list[Directive]:
        return [child for child in self.children if child.name == name]

    def section(self, name: str) -> Directive:
        [only] = self.sections(name)
        return only


def parse_fluentd(text: str) -> Directive:
    stack = [Directive("ROOT")]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if opened := re.fullmatch(r"<([\w.]+)\s*([^>]*)>", line):
            child = Directive(opened[1], opened[2].strip())
            stack[-1].children.append(child)
            stack.append(child)
        elif closed := re.fullmatch(r"</([\w.]+)>", line):
            assert stack.pop().name == closed[1], f"line {number}: unbalanced </{closed[1]}>"
        else:
            key, _, value = line.partition(" ")
            assert "#" not in value, f"line {number}: keep comments on their own line"
            stack[-1].params[key] = value.strip().strip('"')
    assert len(stack) == 1, f"unclosed <{stack[-1].name}>"
    return stack[0]


FLUENTD = parse_fluentd((DEPLOY / "fluentd" / "fluent.conf").read_text())
FLUENTD_MATCHES = FLUENTD.sections("match")


def test_fluentd_listens_for_fluent_logger_with_forward() -> None:
    source = FLUENTD.section("source")
    assert (source.params["@type"], source.params["port"]) == ("forward", "24224")


def test_fluentd_routes_each_emitter_tag_to_its_topic() -> None:
    assert {m.arg: m.params["default_topic"] for m in FLUENTD_MATCHES} == TOPICS
    assert all(m.params["@type"] == "kafka2" for m in FLUENTD_MATCHES)


@pytest.mark.parametrize("match", FLUENTD_MATCHES, ids=lambda m: m.arg)
def test_fluentd_kafka2_writes_keyed_json_with_a_float_time(match: Directive) -> None:
    params = match.params
    assert params["message_key_key"] == JOIN_KEY
    assert params.get("exclude_message_key", "false") == "false", "the id must stay in the value"
    assert params["partitioner_hash_function"] == "murmur2"
    assert params["required_acks"] == "-1"
    assert "record_key" not in params
    assert match.section("format").params["@type"] == "json"
    inject = match.section("inject").params
    assert inject["time_key"] == TIME_KEY
    assert inject.get("time_type", "float") == "float"


def fluentd_message(match: Directive, record: dict[str, Any]) -> tuple[bytes, bytes, float]:
    """(key, value, injected time) as out_kafka2 writes them with this match's settings."""
    inject = match.section("inject").params
    value = dict(record)
    if "tag_key" in inject:
        value[inject["tag_key"]] = match.arg
    # time_type float: the event time truncated to microseconds.
    injected = (SECONDS * 1_000_000 + NANOS // 1000) / 1e6
    value[inject["time_key"]] = injected
    return str(value[match.params["message_key_key"]]).encode(), compact_json(value), injected


@pytest.mark.parametrize("match", FLUENTD_MATCHES, ids=lambda m: m.arg)
def test_fluentd_output_decodes(match: Directive) -> None:
    kind = KIND[match.params["default_topic"]]
    key, value, injected = fluentd_message(match, RECORDS[kind])
    assert key == b"r1"
    assert_decodes(kind, value, injected)


# --- Fluent Bit classic format ---------------------------------------------------------------


def parse_fluent_bit(text: str) -> list[tuple[str, dict[str, str]]]:
    sections: list[tuple[str, dict[str, str]]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if header := re.fullmatch(r"\[(\w+)\]", line):
            sections.append((header[1].upper(), {}))
            continue
        assert sections, f"line {number}: setting outside a section"
        assert raw[:1].isspace(), f"line {number}: settings are indented"
        key, _, value = line.partition(" ")
        assert "#" not in value, f"line {number}: classic mode has no inline comments"
        sections[-1][1][key.lower()] = value.strip()
    return sections


FLUENT_BIT = parse_fluent_bit((DEPLOY / "fluent-bit" / "fluent-bit.conf").read_text())
FLUENT_BIT_OUTPUTS = [settings for name, settings in FLUENT_BIT if name == "OUTPUT"]


def test_fluent_bit_listens_with_forward_and_routes_each_tag_to_its_topic() -> None:
    [source] = [settings for name, settings in FLUENT_BIT if name == "INPUT"]
    assert (source["name"], source["port"]) == ("forward", "24224")
    assert {out["match"]: out["topics"] for out in FLUENT_BIT_OUTPUTS} == TOPICS
    assert all(out["name"] == "kafka" for out in FLUENT_BIT_OUTPUTS)


@pytest.mark.parametrize("out", FLUENT_BIT_OUTPUTS, ids=lambda o: o["match"])
def test_fluent_bit_kafka_writes_keyed_json_with_a_timestamp(out: dict[str, str]) -> None:
    assert out.get("format", "json") == "json"
    assert out.get("timestamp_key", "@timestamp") == "@timestamp"
    assert out.get("timestamp_format", "double") in {"double", "iso8601", "iso8601_ns"}
    assert out["message_key_field"] == JOIN_KEY
    assert out["rdkafka.request.required.acks"] in {"-1", "all"}
    assert out["rdkafka.partitioner"] == "murmur2_random", "Java clients' murmur2 for keyed records"


def fluent_bit_message(out: dict[str, str], record: dict[str, Any]) -> tuple[bytes, bytes, float]:
    """(key, value, timestamp) as out_kafka writes them: the timestamp key comes first."""
    fmt = out.get("timestamp_format", "double")
    when = SECONDS + NANOS / 1e9
    stamps: dict[str, float | str] = {"double": when, "iso8601": iso(6), "iso8601_ns": iso(9)}
    stamp = stamps[fmt]
    value = {out.get("timestamp_key", "@timestamp"): stamp, **record}
    return str(record[out["message_key_field"]]).encode(), compact_json(value), when


@pytest.mark.parametrize("out", FLUENT_BIT_OUTPUTS, ids=lambda o: o["match"])
def test_fluent_bit_output_decodes(out: dict[str, str]) -> None:
    kind = KIND[out["topics"]]
    key, value, when = fluent_bit_message(out, RECORDS[kind])
    assert key == b"r1"
    assert_decodes(kind, value, when)


@pytest.mark.parametrize("out", FLUENT_BIT_OUTPUTS, ids=lambda o: o["match"])
def test_fluent_bit_timestamp_is_the_event_time_of_a_record_without_one(
        out: dict[str, str]) -> None:
    kind = KIND[out["topics"]]
    record = {k: v for k, v in RECORDS[kind].items() if k != TIME_KEY}
    _, value, when = fluent_bit_message(out, record)
    assert_decodes(kind, value, when)


# --- Logstash block syntax ---------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<skip>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<op>=>|==|!=|=~|!~|<=|>=|[{}\[\],<>])
  | (?P<word>[^\s{}\[\],"'=<>!\#]+)
""", re.VERBOSE)


@dataclass
class Plugin:
    name: str
    settings: dict[str, Any]


@dataclass
class Branch:
    condition: str | None
    items: list[Any]


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match, f"cannot tokenize at {text[pos:pos + 20]!r}"
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "string":
            tokens.append((kind, match[0][1:-1].replace('\\"', '"')))
        elif kind != "skip":
            tokens.append((kind, match[0]))
    return tokens


class LogstashParser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        kind, value = self.tokens[self.pos]
        assert expected is None or (value == expected and kind != "string"), (expected, value)
        self.pos += 1
        return value

    def config(self) -> dict[str, list[Any]]:
        sections: dict[str, list[Any]] = {}
        while self.peek() is not None:
            name = self.take()
            self.take("{")
            sections.setdefault(name, []).extend(self.items())
        return sections

    def items(self) -> list[Any]:
        found: list[Any] = []
        while self.peek() != "}":
            if self.peek() == "if":
                found.append(self.conditional())
            else:
                name = self.take()
                self.take("{")
                found.append(Plugin(name, self.settings()))
        self.take("}")
        return found

    def conditional(self) -> list[Branch]:
        self.take("if")
        branches = [Branch(self.condition(), self.items())]
        while self.peek() == "else":
            self.take("else")
            if self.peek() == "if":
                self.take("if")
                branches.append(Branch(self.condition(), self.items()))
            else:
                self.take("{")
                branches.append(Branch(None, self.items()))
        return branches

    def condition(self) -> str:
        parts = []
        while self.peek() != "{":
            kind, value = self.tokens[self.pos]
            parts.append(json.dumps(value) if kind == "string" else value)
            self.pos += 1
        self.take("{")
        return " ".join(parts).replace("[ ", "[").replace(" ]", "]").replace("] [", "][")

    def settings(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        while self.peek() != "}":
            key = self.take()
            self.take("=>")
            found[key] = self.value()
        self.take("}")
        return found

    def value(self) -> Any:
        if self.peek() == "[":
            self.take("[")
            values = []
            while self.peek() != "]":
                values.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return values
        if self.peek() == "{":
            self.take("{")
            return self.settings()
        word = self.take()
        if self.peek() == "{":  # a plugin as a value: codec => fluent { ... }
            self.take("{")
            return Plugin(word, self.settings())
        return word


Guarded = Iterator[tuple["Plugin", tuple[str, ...]]]


def walk(items: list[Any], guards: tuple[str, ...] = ()) -> Guarded:
    """Every plugin with the conditions that guard it."""
    for item in items:
        if isinstance(item, Plugin):
            yield item, guards
        else:
            for branch in item:
                yield from walk(branch.items, guards + ((branch.condition or "else"),))


LOGSTASH = LogstashParser((DEPLOY / "logstash" / "pipeline.conf").read_text()).config()
LOGSTASH_KAFKA = [(p, g) for p, g in walk(LOGSTASH["output"]) if p.name == "kafka"]
KAFKA_PLUGINS = [plugin for plugin, _ in LOGSTASH_KAFKA]


def test_logstash_inputs_take_fluent_logger_and_http_json() -> None:
    inputs = {plugin.name: plugin.settings for plugin, _ in walk(LOGSTASH["input"])}
    codec = inputs["tcp"]["codec"]
    assert inputs["tcp"]["port"] == "24224"
    assert (codec.name, codec.settings["nanosecond_precision"]) == ("fluent", "true")
    assert inputs["http"]["port"] == "8080"


def test_logstash_tags_http_posts_by_path() -> None:
    tagged = {guards[-1]: plugin.settings["add_tag"] for plugin, guards in walk(LOGSTASH["filter"])}
    assert tagged == {f'[url][path] == "/ml/{label}"': [f"{DEFAULT_TAG_PREFIX}.{label}"]
                      for label in (PREDICTION_LABEL, OUTCOME_LABEL)}


def test_logstash_routes_each_tag_to_its_topic() -> None:
    routes = {guards[-1]: plugin.settings["topic_id"] for plugin, guards in LOGSTASH_KAFKA}
    assert routes == {f'"{tag}" in [tags]': topic for tag, topic in TOPICS.items()}


@pytest.mark.parametrize("plugin", KAFKA_PLUGINS, ids=lambda p: p.settings["topic_id"])
def test_logstash_kafka_writes_keyed_json(plugin: Plugin) -> None:
    settings = plugin.settings
    assert settings["codec"] == "json", "the default plain codec is not JSON"
    assert settings["message_key"] == f"%{{{JOIN_KEY}}}"
    assert settings["acks"] == "all"


def sprintf(pattern: str, event: dict[str, Any]) -> str:
    """Logstash's %{field} reference; a missing field stays literal, as Logstash leaves it."""
    return re.sub(r"%\{(\w+)\}", lambda m: str(event.get(m[1], m[0])), pattern)


def logstash_message(plugin: Plugin, event: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of the kafka output with ``codec => json``: the whole event."""
    full = {**event, "@timestamp": iso(3), "@version": "1"}
    return sprintf(plugin.settings["message_key"], full).encode(), compact_json(full)


def http_event(kind: str, body: dict[str, Any], *, parsed: bool) -> dict[str, Any]:
    """An ECS-mode http input event for a POST of ``body`` to /ml/<kind>."""
    raw = json.dumps(body)
    event: dict[str, Any] = dict(body) if parsed else {"message": raw}
    event.update({
        "event": {"original": raw},
        "host": {"ip": "10.0.0.7"},
        "http": {"method": "POST", "version": "HTTP/1.1",
                 "request": {"mime_type": "application/json" if parsed else "text/plain"}},
        "url": {"domain": "logstash", "port": 8080, "path": f"/ml/{kind}"},
        "user_agent": {"original": "curl/8.5.0"},
        "tags": [f"{DEFAULT_TAG_PREFIX}.{kind}"],
    })
    return event


@pytest.mark.parametrize("plugin", KAFKA_PLUGINS, ids=lambda p: p.settings["topic_id"])
def test_logstash_fluent_input_output_decodes(plugin: Plugin) -> None:
    kind = KIND[plugin.settings["topic_id"]]
    # codec fluent puts the forward-protocol tag into "tags".
    event = {**RECORDS[kind], "tags": [f"{DEFAULT_TAG_PREFIX}.{kind}"]}
    key, value = logstash_message(plugin, event)
    assert key == b"r1"
    assert_decodes(kind, value, SECONDS + NANOS / 1e9)


@pytest.mark.parametrize("plugin", KAFKA_PLUGINS, ids=lambda p: p.settings["topic_id"])
def test_logstash_http_json_body_output_decodes(plugin: Plugin) -> None:
    kind = KIND[plugin.settings["topic_id"]]
    key, value = logstash_message(plugin, http_event(kind, RECORDS[kind], parsed=True))
    assert key == b"r1"
    assert_decodes(kind, value, SECONDS + NANOS / 1e9)


@pytest.mark.parametrize("plugin", KAFKA_PLUGINS, ids=lambda p: p.settings["topic_id"])
def test_logstash_timestamp_is_the_event_time_of_a_body_without_one(plugin: Plugin) -> None:
    kind = KIND[plugin.settings["topic_id"]]
    body = {k: v for k, v in RECORDS[kind].items() if k != TIME_KEY}
    _, value = logstash_message(plugin, http_event(kind, body, parsed=True))
    assert_decodes(kind, value, SECONDS + (NANOS // 1_000_000) / 1000)  # @timestamp: ms


@pytest.mark.parametrize("plugin", KAFKA_PLUGINS, ids=lambda p: p.settings["topic_id"])
def test_logstash_unparsed_body_is_recovered_from_event_original(plugin: Plugin) -> None:
    kind = KIND[plugin.settings["topic_id"]]
    key, value = logstash_message(plugin, http_event(kind, RECORDS[kind], parsed=False))
    assert key == b"%{request_id}", "no top-level field to key by: Logstash keeps the pattern"
    assert_decodes(kind, value, SECONDS + NANOS / 1e9)
