"""Upload the dashboards to a running Grafana through its HTTP API, idempotently.

Running it twice leaves Grafana as running it once: the folder is looked up by uid
and created only when missing, dashboards are saved by uid with ``overwrite`` (a new
version of the same dashboard, never a copy), and the Prometheus datasource, when a
URL for it is given, is created or updated under the fixed uid the panels reference.
Credentials never appear in logs or messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from streams.settings import GrafanaSettings

logger = logging.getLogger(__name__)

#: The datasource uid every panel references (see ``grafana/provisioning``).
DATASOURCE_UID = "streamscore-prometheus"


@dataclass
class PushResult:
    """What a push changed."""

    folder_created: bool = False
    datasource: str | None = None
    """``created``, ``updated`` or None (not asked for)."""
    dashboards: list[str] = field(default_factory=list)
    """Uids of the dashboards saved."""


def load_dashboards(directory: Path) -> list[dict[str, Any]]:
    """Every ``*.json`` dashboard of a directory, sorted by file name.

    Raises
    ------
    ValueError
        A file is not a dashboard with a ``uid`` and a ``title``, or there is none.
    """
    out = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not data.get("uid") or not data.get("title"):
            raise ValueError(f"{path}: not a dashboard with a uid and a title")
        out.append(data)
    if not out:
        raise ValueError(f"no dashboard JSON files in {directory}")
    return out


def connect(settings: GrafanaSettings, url: str | None = None) -> Any:
    """A ``GrafanaApi`` for ``url`` (default: the settings') with the configured credentials.

    grafana-client is untyped: callers get it as ``Any``.
    """
    credential: str | tuple[str, str] | None
    if settings.token is not None:
        credential = settings.token.get_secret_value()
    else:
        password = settings.secret()
        credential = None if password is None else (settings.user, password)
    return GrafanaApi.from_url(
        url or settings.url, credential=credential, timeout=settings.timeout_s
    )


def _missing(exc: GrafanaClientError) -> bool:
    return getattr(exc, "status_code", None) == 404


def ensure_folder(api: Any, uid: str, title: str) -> bool:
    """Create the folder unless it exists; True when it was created."""
    try:
        api.folder.get_folder(uid)
        return False
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
    api.folder.create_folder(title, uid=uid)
    logger.info("created Grafana folder %s", uid)
    return True


def upsert_datasource(api: Any, prometheus_url: str) -> str:
    """Create or update the Prometheus datasource with the panels' uid."""
    body = {
        "uid": DATASOURCE_UID,
        "name": "Prometheus (streamscore)",
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "jsonData": {"timeInterval": "5s"},
    }
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.datasource.create_datasource(body)
        return "created"
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, body)
    return "updated"


def push(
    api: Any,
    dashboards: Sequence[dict[str, Any]],
    folder_uid: str,
    folder_title: str,
    prometheus_url: str | None = None,
) -> PushResult:
    """Upload ``dashboards`` into the folder (created once), overwriting by uid."""
    result = PushResult()
    if prometheus_url is not None:
        result.datasource = upsert_datasource(api, prometheus_url)
    result.folder_created = ensure_folder(api, folder_uid, folder_title)
    for dashboard in dashboards:
        body = {k: v for k, v in dashboard.items() if k not in ("id", "version")}
        api.dashboard.update_dashboard(
            {
                "dashboard": body,
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "streamscore grafana push",
            }
        )
        result.dashboards.append(str(body["uid"]))
        logger.info("saved dashboard %s", body["uid"])
    return result
