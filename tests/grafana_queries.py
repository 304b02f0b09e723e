"""The PromQL of every panel and annotation of the committed dashboards."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "grafana" / "dashboards"

#: Our metric names, Faust's sensor's and the process collector's.
METRIC = re.compile(r"\b(?:streamscore|process)_[a-z0-9_]+\b")


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel (or annotation) of one dashboard."""

    dashboard: str
    panel: str
    ref: str
    expr: str
    annotation: bool = False

    @property
    def id(self) -> str:
        """A readable test id."""
        return f"{self.dashboard}:{self.panel}:{self.ref}"

    @property
    def metrics(self) -> set[str]:
        """Metric names the query reads."""
        return set(METRIC.findall(self.expr))


def panel_queries(directory: Path = DASHBOARDS) -> list[PanelQuery]:
    """Every query of every dashboard file, in file and panel order."""
    out = []
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        uid = dashboard["uid"].removeprefix("streamscore-")
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                out.append(PanelQuery(uid, panel["title"], target["refId"], target["expr"]))
        for note in dashboard.get("annotations", {}).get("list", []):
            if "expr" in note:
                out.append(PanelQuery(uid, note["name"], "annotation", note["expr"], True))
    return out


def substitute(expr: str, range_s: float) -> str:
    """The query with Grafana's interval variables replaced (scrapes every second)."""
    return (
        expr.replace("$__rate_interval", "10s")
        .replace("$__interval", "5s")
        .replace("$__range", f"{max(int(range_s), 1)}s")
    )
