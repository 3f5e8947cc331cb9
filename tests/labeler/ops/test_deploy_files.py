"""The deployment files (Docker, Compose, Kubernetes, systemd) parse and agree with the code:
config TOML validates, ports, probe paths, config paths and environment names match."""

from __future__ import annotations

import configparser
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from labeler.config import ENV_PREFIX, Config, apply_environment, validate
from labeler.ops.metrics import DEFAULT_PORT, HEALTH_PATHS, MetricsConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what containers must listen on for probes


validate_full = validate


def metrics_of(data: Mapping[str, Any]) -> MetricsConfig:
    return validate(data).metrics


def assert_env_names_known(names: list[str]) -> None:
    """Each ``LOGLABEL_<SECTION>__<KEY>`` names a real config key."""
    sections: dict[str, Any] = {n: f.annotation for n, f in Config.model_fields.items()}
    sections.setdefault("metrics", MetricsConfig)
    for name in names:
        assert name.startswith(ENV_PREFIX) and "__" in name, name
        section, key = name[len(ENV_PREFIX):].lower().split("__")
        assert section in sections, f"{name}: no section {section!r}"
        assert key in sections[section].model_fields, f"{name}: no key {section}.{key}"


def fluentd_settings() -> dict[str, set[str]]:
    text = (DEPLOY / "fluentd" / "fluent.conf").read_text()
    found: dict[str, set[str]] = {}
    for key in ("brokers", "default_topic", "path"):
        found[key] = set(re.findall(rf"^\s*{key}\s+(\S+)", text, flags=re.M))
    return found


# -- Docker --------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_dockerfile_installs_the_package_and_runs_the_cli_as_non_root() -> None:
    instructions = dockerfile()
    ops = [op for op, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    run = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "pip install /src" in run
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (entry,) = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert yaml.safe_load(entry) == list(pyproject["project"]["scripts"])
    (expose,) = [arg for op, arg in instructions if op == "EXPOSE"]
    assert int(expose) == DEFAULT_PORT
    (cmd,) = [arg for op, arg in instructions if op == "CMD"]
    assert yaml.safe_load(cmd) == ["run", "--config", "/etc/loglabel/loglabel.toml"]
    user = [arg for op, arg in instructions if op == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert ops.index("USER") > ops.index("RUN")


def test_docker_build_context_keeps_what_pip_needs() -> None:
    ignored = {ln.strip() for ln in (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text()
               .splitlines() if ln.strip() and not ln.startswith("#")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [pattern.rstrip("*")
                for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    needed = ["pyproject.toml", pyproject["project"]["readme"], *packages]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert path not in ignored, f"{path} is needed by pip install but ignored"


# -- Compose -------------------------------------------------------------------------------

COMPOSE = DEPLOY / "compose"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def compose_toml() -> dict[str, Any]:
    return tomllib.loads((COMPOSE / "loglabel.toml").read_text())


def test_compose_kafka_is_kraft_with_the_tested_version(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    version = re.search(r"<kafka.version>(.+)</kafka.version>",
                        (DEPLOY / "kafka" / "pom.xml").read_text())
    assert version is not None
    assert kafka["image"] == f"apache/kafka:{version.group(1)}"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compose_config_validates_and_agrees_with_fluentd(compose: dict[str, Any],
                                                          compose_toml: dict[str, Any]) -> None:
    loglabel = compose["services"]["loglabel"]
    data = dict(compose_toml)
    env = {k: str(v) for k, v in loglabel.get("environment", {}).items()}
    assert_env_names_known(list(env))
    apply_environment(data, env)
    config = validate_full(data)

    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    broker = advertised.split("://", 1)[1]
    fluentd = fluentd_settings()
    assert fluentd["brokers"] == {broker} == {config.kafka.bootstrap_servers}
    assert fluentd["default_topic"] == {config.topics.predictions, config.topics.outcomes}
    assert config.ingest.prediction_format == config.ingest.outcome_format == "fluentd"

    topics_command = " ".join(compose["services"]["topics"]["command"])
    words = set(re.split(r"[\s;]+", topics_command))
    assert {config.topics.predictions, config.topics.outcomes} <= words, \
        "both raw topics are created by one command, with one partition count"
    assert len(re.findall(r"--partitions \d+", topics_command)) == 1


def test_compose_mounts_and_ports_match_the_code(compose: dict[str, Any],
                                                 compose_toml: dict[str, Any]) -> None:
    services = compose["services"]
    loglabel = services["loglabel"]
    build = loglabel["build"]
    assert (COMPOSE / build["context"] / build["dockerfile"]).resolve() == \
        DEPLOY / "docker" / "Dockerfile"
    config_path = loglabel["command"][loglabel["command"].index("--config") + 1]
    mounts = dict(v.split(":")[1::-1] for v in loglabel["volumes"])  # target -> source
    assert (COMPOSE / mounts[config_path]).resolve() == COMPOSE / "loglabel.toml"
    output = validate_full(compose_toml).output.path
    assert any(output.startswith(target + "/") for target in mounts), "output on a volume"

    metrics = metrics_of(compose_toml)
    assert metrics.enabled and metrics.host == ALL_INTERFACES and metrics.port == DEFAULT_PORT
    assert loglabel["expose"] == [str(metrics.port)]
    probe = " ".join(loglabel["healthcheck"]["test"])
    assert f":{metrics.port}{HEALTH_PATHS['readiness']}" in probe

    fluentd = services["fluentd"]
    assert "fluent-plugin-kafka" in fluentd["build"]["dockerfile_inline"]
    conf_source, conf_target = fluentd["volumes"][0].split(":")[:2]
    assert (COMPOSE / conf_source).resolve() == DEPLOY / "fluentd" / "fluent.conf"
    assert conf_target == "/fluentd/etc/fluent.conf"
    buffer_mount = fluentd["volumes"][1].split(":")[1]
    assert all(p.startswith(buffer_mount + "/") for p in fluentd_settings()["path"])
    for name in ("doctor", "simulate"):
        assert services[name]["image"] == loglabel["image"]


# -- Kubernetes ----------------------------------------------------------------------------

K8S = DEPLOY / "k8s"


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            docs[doc["kind"]] = doc
    assert {p.name for p in K8S.glob("*.yaml")} == {*kustomization["resources"],
                                                   "kustomization.yaml"}
    return docs


@pytest.fixture(scope="module")
def k8s_toml(k8s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return tomllib.loads(k8s["ConfigMap"]["data"]["loglabel.toml"])


def container(k8s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (c,) = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def test_configmap_config_validates_without_secrets(k8s_toml: dict[str, Any]) -> None:
    config = validate_full(k8s_toml)
    assert config.kafka.security_protocol == "SASL_SSL"
    assert config.kafka.sasl_mechanism and config.kafka.sasl_username
    assert config.kafka.sasl_password is None, "the password comes from the Secret"
    metrics = metrics_of(k8s_toml)
    assert metrics.enabled and metrics.host == ALL_INTERFACES and metrics.port == DEFAULT_PORT


def test_deployment_probes_hit_the_metrics_port(k8s: dict[str, dict[str, Any]],
                                                k8s_toml: dict[str, Any]) -> None:
    c = container(k8s)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    port = metrics_of(k8s_toml).port
    for probe, path in (("livenessProbe", HEALTH_PATHS["liveness"]),
                        ("readinessProbe", HEALTH_PATHS["readiness"])):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        assert ports[get["port"]] == port
    annotations = k8s["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    service_port = k8s["Service"]["spec"]["ports"][0]
    assert service_port["targetPort"] in ports and service_port["port"] == port


def test_deployment_takes_the_password_from_a_secret(k8s: dict[str, dict[str, Any]]) -> None:
    env = {e["name"]: e for e in container(k8s)["env"]}
    assert_env_names_known(list(env))
    password = env["LOGLABEL_KAFKA__SASL_PASSWORD"]
    assert "value" not in password
    assert set(password["valueFrom"]["secretKeyRef"]) == {"name", "key"}


def test_deployment_mounts_what_the_config_names(k8s: dict[str, dict[str, Any]],
                                                 k8s_toml: dict[str, Any]) -> None:
    spec = k8s["Deployment"]["spec"]["template"]["spec"]
    c = container(k8s)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    config_path = c["args"][c["args"].index("--config") + 1]
    assert c["args"][0] == "run"
    config_volume = volumes[mounts[config_path]]
    assert config_volume["configMap"]["name"] == k8s["ConfigMap"]["metadata"]["name"]
    config = validate_full(k8s_toml)
    for path, volume_kind in ((config.output.path, "persistentVolumeClaim"),
                              (config.kafka.ssl_cafile, "secret")):
        assert path is not None
        (mount,) = [m for m in mounts if path.startswith(m + "/")]
        assert volume_kind in volumes[mounts[mount]], path
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert claim == k8s["PersistentVolumeClaim"]["metadata"]["name"]
    assert "ReadWriteMany" in k8s["PersistentVolumeClaim"]["spec"]["accessModes"]
    user = [arg for op, arg in dockerfile() if op == "USER"][-1]
    assert spec["securityContext"]["runAsUser"] == int(user)


def test_pod_disruption_budget_selects_the_workers(k8s: dict[str, dict[str, Any]]) -> None:
    pod_labels = k8s["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selector = k8s["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert k8s["PodDisruptionBudget"]["apiVersion"] == "policy/v1"
    assert selector.items() <= pod_labels.items()
    assert k8s["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# -- systemd -------------------------------------------------------------------------------


def test_systemd_unit_runs_doctor_then_the_worker() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "loglabel.service")
    service = unit["Service"]
    start = shlex.split(service["ExecStart"])
    pre = shlex.split(service["ExecStartPre"])
    assert Path(start[0]).name == "loglabel" and start[1] == "run"
    assert pre[1] == "doctor"
    assert start[start.index("--config") + 1] == pre[pre.index("--config") + 1]
    assert service["KillSignal"] == "SIGTERM"
    assert service["User"] not in ("", "root")
    names = [item.split("=", 1)[0] for item in shlex.split(service["Environment"])]
    assert_env_names_known(names)
    assert unit["Install"]["WantedBy"] == "multi-user.target"
