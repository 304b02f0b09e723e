"""A restartable embedded broker for broker-restart faults: Tansu on S3 storage.

The embedded broker's default ``memory://`` engine forgets every topic, record and
committed offset when it stops, so restarting it is not a fault one can recover from.
Its ``s3://`` engine keeps them in any S3-compatible store. :func:`s3_store` gives one:
the endpoint of a server already running, or a local ``moto_server`` started here when
one is installed (the ``dev`` extra has ``moto[server]``: a test tool, not a runtime
dependency). Without either, broker-restart runs are reported as not run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from streams.broker import BrokerConfig, EmbeddedBroker, free_port
from streams.process import spawn, stop


class NoS3Store(RuntimeError):
    """No S3-compatible server is configured or can be started here."""


def _wait_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise NoS3Store(f"no S3 server answered on {host}:{port}")


@contextlib.contextmanager
def s3_store(endpoint: str | None = None) -> Iterator[str]:
    """Yield an S3 endpoint URL: ``endpoint``, or a ``moto_server`` started for the block."""
    if endpoint:
        yield endpoint.rstrip("/")
        return
    beside = Path(sys.executable).with_name("moto_server")  # the dev extra installs it here
    exe = str(beside) if beside.is_file() else shutil.which("moto_server")
    if exe is None:
        raise NoS3Store("no --s3-endpoint given and no moto_server on the PATH")
    port = free_port()
    proc = spawn(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port("127.0.0.1", port, 30.0)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` with a plain PUT (a local S3 mock does not check signatures)."""
    request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@contextlib.contextmanager
def s3_broker(endpoint: str, log_file: Path | None = None) -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a fresh bucket of ``endpoint``, on a fixed port so it can restart.

    The ``AWS_*`` variables Tansu reads are set in this process's environment for the
    block (the broker inherits them at every start).
    """
    bucket = f"tansu-{uuid.uuid4().hex[:10]}"
    create_bucket(endpoint, bucket)
    env = {
        "AWS_ACCESS_KEY_ID": "streamscore",
        "AWS_SECRET_ACCESS_KEY": "streamscore",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    broker = EmbeddedBroker(
        BrokerConfig(port=free_port(), storage_engine=f"s3://{bucket}/", log_file=log_file)
    )
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
