"""docker-compose.yml: valid Compose, pinned images, settings-true env and ports, scraped services.

No Docker engine runs here, so the file is checked as data: against the Compose
Specification's JSON Schema (the copy vendored by check-jsonschema, from
github.com/compose-spec/compose-spec, Apache-2.0), and against our settings classes
and Prometheus config.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from models.settings import ModelsSettings
from producers.settings import ProducersSettings
from streams.settings import StreamsSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
#: Services that run our image and serve /metrics.
SCRAPED = {"worker", "learner", "trainer", "producer"}
PINNED_TAG = re.compile(r"^[\w.\-/]+:v?\d+\.\d+\.\d+(-[\w.]+)?(@sha256:[0-9a-f]{64})?$")


def _compose_schema() -> dict[str, Any]:
    # Read as data from the installed distribution (nothing of check-jsonschema runs).
    path = metadata.distribution("check-jsonschema").locate_file(
        "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
    )
    schema: dict[str, Any] = json.loads(Path(str(path)).read_text())
    return schema


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _env_names(cls: type[BaseModel], prefix: str) -> set[str]:
    names = set()
    for name, info in cls.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def _settings_env() -> set[str]:
    classes: list[type[BaseSettings]] = [StreamsSettings, ModelsSettings, ProducersSettings]
    out: set[str] = set()
    for cls in classes:
        out |= _env_names(cls, str(cls.model_config.get("env_prefix", "")))
    return out


def _dotenv(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _ours(service: dict[str, Any]) -> bool:
    return "build" in service


def test_compose_file_validates_against_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    errors = sorted(validator.iter_errors(_compose()), key=str)
    assert not errors, "\n".join(e.message for e in errors)


def test_the_specification_rejects_a_broken_file() -> None:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    broken = _compose()
    broken["services"]["worker"]["restart"] = ["always"]
    broken["services"]["kafka"]["portz"] = ["9092"]
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in _services().items():
        image = service["image"]
        assert PINNED_TAG.match(image), (name, image)
        assert not image.endswith(":latest")
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.M)
    assert bases and all(re.match(r"^python:3\.11\.\d+-slim", b) for b in bases), bases


def test_our_services_share_one_image_versioned_like_the_package() -> None:
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version
    ours = {s["image"] for s in _services().values() if _ours(s)}
    assert ours == {f"streamscore:{version.group(1)}"}


def test_every_streamscore_variable_is_a_real_setting() -> None:
    known = _settings_env()
    used: set[str] = set()
    for service in _services().values():
        used |= {k for k in service.get("environment", {}) if k.startswith("STREAMSCORE_")}
    used |= {k for k in _dotenv(ROOT / ".env.example") if k.startswith("STREAMSCORE_")}
    assert used, "no settings in compose?"
    assert used <= known, sorted(used - known)


def test_services_reach_kafka_on_a_listener_it_advertises() -> None:
    services = _services()
    kafka = services["kafka"]["environment"]
    advertised = {a.split("://")[1] for a in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for name, service in services.items():
        if _ours(service):
            bootstrap = service["environment"]["STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS"]
            assert set(bootstrap.split(",")) <= advertised, name
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-data:/var/lib/kafka/data" in services["kafka"]["volumes"]
    assert kafka["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_metrics_ports_match_the_settings_and_the_scrape_config() -> None:
    default = StreamsSettings().metrics.port
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    jobs = {
        job["job_name"]: sd
        for job in prometheus["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
    }
    for name, service in _services().items():
        if not _ours(service) or name not in SCRAPED:
            continue
        env = service["environment"]
        port = int(env.get("STREAMSCORE_METRICS__PORT", default))
        assert env["STREAMSCORE_METRICS__HOST"] == "0.0.0.0", name  # reachable by Prometheus
        assert str(port) in service["expose"], name
        assert jobs[name]["port"] == port, name
        assert "ports" not in service, f"{name}: no host ports (it scales)"
        assert "container_name" not in service


def test_prometheus_scrapes_exactly_the_services_that_serve_metrics() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    services = _services()
    discovered = {
        name
        for job in prometheus["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert discovered == SCRAPED
    assert discovered <= set(services)
    for job in prometheus["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            assert sd["type"] == "A"  # one record per replica of a scaled service
    mounted = services["prometheus"]["volumes"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounted


def test_grafana_is_provisioned_with_a_secret_password_and_no_anonymous_access() -> None:
    grafana = _services()["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env  # comes from the env file only
    assert grafana["env_file"] == [{"path": ".env", "required": True}]
    assert "GF_SECURITY_ADMIN_PASSWORD" in _dotenv(ROOT / ".env.example")
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    datasource = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"]).groups()  # type: ignore[union-attr]
    assert host in _services() and port == "9090"
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    assert StreamsSettings().grafana.url == "http://127.0.0.1:3000"  # `grafana push` default


@pytest.mark.parametrize("service", sorted(SCRAPED))
def test_scraped_services_name_themselves_in_snapshots(service: str) -> None:
    env = _services()[service]["environment"]
    assert env["STREAMSCORE_METRICS__PROCESS_NAME"] == service
