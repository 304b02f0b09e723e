"""A real Prometheus server for tests: Debian's package, unpacked, run on loopback.

``apt-get download prometheus`` fetches the package from Debian's registry and
``dpkg -x`` unpacks it into ``.cache/prometheus/`` (git-ignored) without installing
any service; later runs reuse it. ``STREAMSCORE_TEST_PROMETHEUS`` may name a
``prometheus`` binary to use instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "prometheus"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _apt_download(directory: Path) -> Path:
    cmd = ["apt-get", "download", "-o", "APT::Sandbox::User=root", "prometheus"]
    done = subprocess.run(cmd, cwd=directory, capture_output=True, text=True)
    if done.returncode != 0:  # package lists missing or stale: refresh them once
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)
        subprocess.run(cmd, cwd=directory, capture_output=True, text=True, check=True)
    return next(directory.glob("prometheus_*.deb"))


def prometheus_binary() -> Path:
    """The ``prometheus`` binary, fetched and unpacked on first use."""
    configured = os.environ.get("STREAMSCORE_TEST_PROMETHEUS")
    if configured:
        return Path(configured)
    binary = CACHE / "usr" / "bin" / "prometheus"
    if binary.is_file():
        return binary
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as tmp:
        deb = _apt_download(Path(tmp))
        staging = Path(tmp) / "root"
        subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True)
        shutil.rmtree(CACHE, ignore_errors=True)
        staging.rename(CACHE)  # atomic: a half-unpacked cache is never seen
    return binary


class Prometheus:
    """A Prometheus process scraping ``targets`` (job -> ``host:port`` list) every second."""

    def __init__(self, targets: dict[str, Sequence[str]], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(addrs)}]}
                for job, addrs in targets.items()
            ],
        }
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(prometheus_binary()),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    def api(self, path: str, **params: str) -> Any:
        """GET an HTTP API endpoint; the ``data`` of a successful answer.

        Raises
        ------
        RuntimeError
            Prometheus answered with an error (e.g. a query that does not parse).
        """
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result."""
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> Any:
        """A range query's result (a list of series with their values)."""
        return self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step
        )["result"]

    def close(self) -> None:
        """Stop the process."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
