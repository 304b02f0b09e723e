"""Dashboards: current with their generator, valid for the pinned Grafana, our metrics only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import CollectorRegistry

from streams import dashboards, grafana_push, metrics
from streams.exporter import FAUST_PREFIX
from tests.grafana_queries import DASHBOARDS, panel_queries

ROOT = Path(__file__).resolve().parents[2]
#: Newest dashboard schemaVersion each Grafana release reads without migrating down
#: (Grafana's `apps/dashboard/pkg/migration/schemaversion`: LATEST_VERSION = 42 from
#: 12.2, when the v42 tooltip/hideFrom migration landed).
GRAFANA_SCHEMA = {(12, 2): 42, (12, 3): 42}
#: Panel plugins built into Grafana (no plugin install needed).
CORE_PANELS = {"row", "timeseries", "stat", "heatmap", "state-timeline"}


def _files() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _exported_names() -> set[str]:
    """Every sample name our processes export (ours, Faust's sensor, process collector)."""
    from faust.sensors.prometheus import FaustMetrics

    faust_registry = CollectorRegistry()
    FaustMetrics.create(faust_registry, FAUST_PREFIX)
    return set(metrics.REGISTRY._names_to_collectors) | set(faust_registry._names_to_collectors)


def test_committed_dashboards_are_current_with_the_generator() -> None:
    assert dashboards.stale(DASHBOARDS) == [], "run `streamscore grafana generate`"
    assert set(_files()) == set(dashboards.DASHBOARDS)


def test_every_panel_reads_only_metrics_we_export() -> None:
    queries = panel_queries()
    assert len(queries) >= 30
    exported = _exported_names()
    unknown = {(q.id, m) for q in queries for m in q.metrics if m not in exported}
    assert not unknown
    assert all(q.metrics for q in queries), "a query without a metric"


def test_every_panel_uses_the_provisioned_datasource_uid() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert [d["uid"] for d in provisioned] == [dashboards.DATASOURCE_UID]
    assert grafana_push.DATASOURCE_UID == dashboards.DATASOURCE_UID
    for name, board in _files().items():
        assert "${DS_" not in json.dumps(board), name
        assert "__inputs" not in board
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {
                    "type": "prometheus",
                    "uid": "streamscore-prometheus",
                }
        for note in board["annotations"]["list"]:
            assert note["datasource"]["uid"] == dashboards.DATASOURCE_UID


def test_dashboards_are_valid_for_the_grafana_pinned_in_compose() -> None:
    image = _compose()["services"]["grafana"]["image"]
    major, minor = (
        int(x) for x in re.fullmatch(r"grafana/grafana:(\d+)\.(\d+)\.\d+", image).groups()
    )  # type: ignore[union-attr]
    latest = GRAFANA_SCHEMA[(major, minor)]
    register_default_plugins()
    for name, board in _files().items():
        assert board["schemaVersion"] <= latest, name
        # The SDK's model of the schema reads every field and writes the same JSON back.
        again = json.loads(JSONEncoder(sort_keys=True).encode(Dashboard.from_json(board)))
        assert again == board, name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            assert panel["type"] in CORE_PANELS, (name, panel["type"])
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, (name, panel["title"])
            if panel["type"] != "row":
                refs = [t["refId"] for t in panel["targets"]]
                assert refs and len(refs) == len(set(refs)), (name, panel["title"])


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_dashboard_uids_are_fixed_and_prefixed(name: str) -> None:
    board = _files()[name]
    assert board["uid"] == "streamscore-" + name.removesuffix(".json")
    assert board["editable"] is False  # provisioned: changes belong in the generator


def test_provisioned_dashboards_path_is_where_compose_mounts_them() -> None:
    provider = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/streamscore.yml").read_text()
    )["providers"][0]
    volumes = _compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in volumes
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
