"""Secrets given to a running program never reach its output, even at DEBUG level.

A `streamscore` process is started with a SASL password in its environment and a
Grafana password in a file; it connects (and fails to authenticate: the session's
broker offers no SASL), logging everything at DEBUG. Neither secret may appear in
what it prints, tracebacks included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka import KafkaConnection

pytestmark = pytest.mark.integration

SASL_SECRET = "Zq9-sasl-not-for-logs-77"
FILE_SECRET = "Zq9-file-not-for-logs-78"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    exe = str(Path(sys.executable).with_name("streamscore"))
    return subprocess.run(
        [exe, "--log-level", "DEBUG", *args], env=env, capture_output=True, timeout=240
    )


def test_secrets_never_appear_in_output_or_logs(
    kafka_conn: KafkaConnection, tmp_path: Path
) -> None:
    password_file = tmp_path / "grafana-password"
    password_file.write_text(FILE_SECRET + "\n")
    env = dict(os.environ)
    env.update(
        {
            "STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS": kafka_conn.bootstrap_servers,
            "STREAMSCORE_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "STREAMSCORE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
            "STREAMSCORE_KAFKA__SASL_USERNAME": "scorer",
            "STREAMSCORE_KAFKA__SASL_PASSWORD": SASL_SECRET,
            "STREAMSCORE_GRAFANA__PASSWORD_FILE": str(password_file),
        }
    )
    shown = _run(["settings", "show"], env)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert b"scorer" in shown.stdout  # the settings were read...
    connect = _run(["topics", "create"], env)
    assert connect.returncode != 0  # ...and used: authentication cannot succeed here
    assert b'"logger": "kafka.' in connect.stderr  # the client logged its attempts
    for run in (shown, connect):
        for secret in (SASL_SECRET, FILE_SECRET):
            assert secret.encode() not in run.stdout + run.stderr
