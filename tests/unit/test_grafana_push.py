"""`streamscore grafana push` against a fake Grafana HTTP API on loopback.

No Grafana server can be installed here, so a small HTTP server stands in for it:
it implements the few endpoints the push uses, keeps what it is given, checks the
credentials, and records every request for the assertions. grafana-client speaks
to it over a real socket (it uses niquests, which request-mocking libraries for
`requests` would not see).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.cli import app
from streams.grafana_push import DATASOURCE_UID, connect, load_dashboards, push
from streams.settings import GrafanaSettings

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Grafana-pw"


@dataclass
class FakeGrafana:
    """State and request log of the fake server."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((method, self.path, body))
            if self.headers.get("Authorization") != expected:
                return self._reply(401, {"message": "Unauthorized"})
            path = self.path.split("?")[0]
            if method == "GET" and path.startswith("/api/folders/"):
                uid = path.rsplit("/", 1)[1]
                if uid in state.folders:
                    return self._reply(200, state.folders[uid])
                return self._reply(404, {"message": "folder not found"})
            if method == "POST" and path == "/api/folders":
                if body["uid"] in state.folders:
                    return self._reply(409, {"message": "folder exists"})
                state.folders[body["uid"]] = body
                return self._reply(200, body)
            if method == "POST" and path == "/api/dashboards/db":
                dash = body["dashboard"]
                if body["folderUid"] not in state.folders:
                    return self._reply(400, {"message": "folder not found"})
                if dash["uid"] in state.dashboards and not body.get("overwrite"):
                    return self._reply(412, {"message": "version-mismatch"})
                version = state.dashboards.get(dash["uid"], {}).get("version", 0) + 1
                state.dashboards[dash["uid"]] = {**body, "version": version}
                return self._reply(200, {"uid": dash["uid"], "status": "success"})
            if path.startswith("/api/datasources/uid/"):
                uid = path.rsplit("/", 1)[1]
                if method == "GET":
                    if uid in state.datasources:
                        return self._reply(200, state.datasources[uid])
                    return self._reply(404, {"message": "Data source not found"})
                if method == "PUT" and uid in state.datasources:
                    state.datasources[uid] = body
                    return self._reply(200, {"message": "Datasource updated"})
            if method == "POST" and path == "/api/datasources":
                state.datasources[body["uid"]] = body
                return self._reply(200, {"message": "Datasource added"})
            return self._reply(404, {"message": f"no route {method} {path}"})

        def do_GET(self) -> None:  # noqa: N802 - http.server's names
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._handle("PUT")

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _settings(**over: Any) -> GrafanaSettings:
    return GrafanaSettings(password=PASSWORD, dashboards_dir=ROOT / "grafana/dashboards", **over)


def test_push_creates_the_folder_once_and_overwrites_dashboards_by_uid(
    grafana: FakeGrafana,
) -> None:
    settings = _settings()
    boards = load_dashboards(settings.dashboards_dir)
    uids = sorted(b["uid"] for b in boards)
    api = connect(settings, grafana.url)
    first = push(api, boards, "streamscore", "streamscore")
    second = push(api, boards, "streamscore", "streamscore")
    assert first.folder_created and not second.folder_created
    folder_posts = [r for r in grafana.requests if r[:2] == ("POST", "/api/folders")]
    assert folder_posts == [
        ("POST", "/api/folders", {"title": "streamscore", "uid": "streamscore"})
    ]
    assert sorted(grafana.dashboards) == uids
    assert all(d["version"] == 2 for d in grafana.dashboards.values())  # saved twice, no copy
    saves = [r[2] for r in grafana.requests if r[:2] == ("POST", "/api/dashboards/db")]
    assert len(saves) == 2 * len(uids)
    for body in saves:
        assert body["overwrite"] is True and body["folderUid"] == "streamscore"
        assert "id" not in body["dashboard"]  # Grafana matches by uid, never by a stale id
    pushed = {b["dashboard"]["uid"]: b["dashboard"] for b in saves}
    on_disk = {b["uid"]: b for b in boards}
    assert pushed == on_disk


def test_push_creates_then_updates_the_datasource_with_the_panels_uid(
    grafana: FakeGrafana,
) -> None:
    api = connect(_settings(), grafana.url)
    boards = load_dashboards(ROOT / "grafana/dashboards")
    first = push(api, boards, "streamscore", "streamscore", "http://prometheus:9090")
    second = push(api, boards, "streamscore", "streamscore", "http://prom:9090")
    assert (first.datasource, second.datasource) == ("created", "updated")
    assert list(grafana.datasources) == [DATASOURCE_UID]
    assert grafana.datasources[DATASOURCE_UID]["url"] == "http://prom:9090"
    assert grafana.datasources[DATASOURCE_UID]["type"] == "prometheus"


def test_cli_push_uses_env_credentials_and_never_prints_them(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STREAMSCORE_GRAFANA__PASSWORD", PASSWORD)
    monkeypatch.setenv("STREAMSCORE_GRAFANA__DASHBOARDS_DIR", str(ROOT / "grafana/dashboards"))
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(app, ["--no-json-logs", "grafana", "push", "--url", grafana.url])
    assert result.exit_code == 0, result.output
    assert "dashboards=streamscore-drift,streamscore-model-health,streamscore-overview" in (
        result.output
    )
    assert len(grafana.dashboards) == 3
    assert PASSWORD not in result.output and PASSWORD not in caplog.text


def test_cli_push_with_a_wrong_password_fails_without_echoing_it(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMSCORE_GRAFANA__PASSWORD", "wrong-" + PASSWORD)
    monkeypatch.setenv("STREAMSCORE_GRAFANA__DASHBOARDS_DIR", str(ROOT / "grafana/dashboards"))
    result = CliRunner().invoke(app, ["--no-json-logs", "grafana", "push", "--url", grafana.url])
    assert result.exit_code == 1
    assert "HTTP 401" in result.output
    assert PASSWORD not in result.output
    assert grafana.dashboards == {}


def test_load_dashboards_rejects_a_file_without_a_uid(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"title": "no uid"}))
    with pytest.raises(ValueError, match="uid"):
        load_dashboards(tmp_path)
