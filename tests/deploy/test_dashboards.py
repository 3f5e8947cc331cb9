"""The Grafana dashboard and the Prometheus alert rules against the metrics loglabel serves.

Every metric an expression names must be one that ``labeler.ops.metrics`` puts
in its registry (collected here from a worker snapshot, as a scrape would),
every label an expression groups by or a legend shows must be one of those
metrics' labels (or ``instance``/``job``, which Prometheus adds), and the
Compose file must mount the files where the configs say they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from labeler.ops.health import BrokerSnapshot
from labeler.ops.metrics import COUNTERS, DEFAULT_PORT, WorkerCollector
from tests.labeler.ops._status import part, status

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "loglabel.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE = DEPLOY / "compose"
ADDED_BY_PROMETHEUS = {"instance", "job"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                "group_right", "offset", "bool", "inf", "nan"}


class _Broker:
    def snapshot(self) -> BrokerSnapshot:
        return BrokerSnapshot(end_offsets={("predictions", 0): 10}, answered_at=1.0)


@pytest.fixture(scope="module")
def served() -> dict[str, set[str]]:
    """Every sample name loglabel serves, with its label names."""
    counters = {name: 1 for name in COUNTERS} | {
        "prediction.decoded": 1, "prediction.dead_letter.not_json": 1, "drift.data": 1,
        "schema_skew.new_feature.ctr.f": 1, "something.else": 1}
    snapshot = status({0: part({"predictions": 5}, pending=3, watermark=1e9, lag=2.0)},
                      counters=counters, last_input_at=0.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(lambda: snapshot, _Broker()))  # type: ignore[arg-type]
    ProcessCollector(registry=registry)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def dashboard_queries() -> Iterator[tuple[str, str, str]]:
    """(panel title, expression, legend format) of every dashboard target."""
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"], target.get("legendFormat", "")


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"]
            for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are not functions,
    keywords, label lists, durations or strings."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    found = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d.*", word):
            continue
        found.add(word)
    return found


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in
            re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr)
            for label in group.split(",") if label.strip()}


def test_the_name_extraction_finds_metrics_not_functions_or_labels() -> None:
    expr = ('sum by (kind, reason) (rate(loglabel_dead_letters_total{kind="x"}[5m])) '
            "/ clamp_min(sum(rate(loglabel_messages_total[5m])), 1e-9) > 0.01")
    assert metric_names(expr) == {"loglabel_dead_letters_total", "loglabel_messages_total"}
    assert grouping_labels(expr) == {"kind", "reason"}


def test_every_metric_the_dashboard_and_the_alerts_name_is_served(
        served: dict[str, set[str]]) -> None:
    expressions = [(f"panel {t!r}", e, legend) for t, e, legend in dashboard_queries()]
    expressions += [(f"alert {r['alert']}", r["expr"], " ".join(r.get("annotations", {}).values()))
                    for r in alert_rules()]
    assert len(expressions) > 20
    for where, expr, legend in expressions:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - set(served)
        assert not unknown, f"{where} names metrics loglabel does not serve: {unknown}"
        labels = set().union(*(served[n] for n in names)) | ADDED_BY_PROMETHEUS
        assert grouping_labels(expr) <= labels, f"{where}: grouping by unknown labels"
        shown = set(re.findall(r"\{\{\s*\$?(?:labels\.)?(\w+)\s*\}\}", legend)) - {"value"}
        assert shown <= labels, f"{where} shows labels it does not have: {shown - labels}"


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    titles = {title for title, _, _ in dashboard_queries()}
    for wanted in ("Throughput", "Consumer lag", "Watermark lag", "Pending and spilled state",
                   "Dead letters by reason", "Drift events by kind", "Shard writes"):
        assert wanted in titles
    uids = {p["datasource"]["uid"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    source = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources"
                             / "prometheus.yml").read_text())["datasources"][0]
    assert uids == {source["uid"]} and source["url"] == "http://prometheus:9090"


def test_the_alerts_cover_stalls_lag_dead_letters_and_drift() -> None:
    names = {r["alert"] for r in alert_rules()}
    assert {"LoglabelWorkerStalled", "LoglabelLagGrowing", "LoglabelDeadLetterRate",
            "LoglabelDriftEvent"} <= names
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]


def test_compose_runs_prometheus_and_grafana_with_these_files() -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    mounts = {target: (COMPOSE / source).resolve() for source, target, *_ in
              (v.split(":") for v in services["prometheus"]["volumes"]) if source.startswith(".")}
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS
    assert [mounts[f] for f in prometheus["rule_files"]] == [ALERTS]
    scrape = prometheus["scrape_configs"][0]["dns_sd_configs"][0]
    assert scrape["names"] == ["loglabel"] and "loglabel" in services
    assert scrape["port"] == DEFAULT_PORT
    grafana = {target: (COMPOSE / source).resolve() for source, target, *_ in
               (v.split(":") for v in services["grafana"]["volumes"])}
    assert grafana["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards"
                               / "loglabel.yml").read_text())["providers"][0]
    assert grafana[provider["options"]["path"]] == DASHBOARD.parent
