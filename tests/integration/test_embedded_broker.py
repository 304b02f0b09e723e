"""The embedded broker starts, answers, stops, and never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from streams.broker import BrokerConfig, EmbeddedBroker, find_binary, metadata_answers

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_binary_is_found_in_the_wheel() -> None:
    path = find_binary()
    assert path.name == "tansu" and os.access(path, os.X_OK)


def test_broker_answers_metadata_then_stops() -> None:
    broker = EmbeddedBroker(BrokerConfig())
    bootstrap = broker.start()
    try:
        host, port = bootstrap.rsplit(":", 1)
        assert host == "127.0.0.1"
        assert metadata_answers(host, int(port))
        pid = broker.pid
        assert pid is not None
    finally:
        broker.stop()
    assert _wait_dead(pid)
    assert not metadata_answers(host, int(port), timeout=0.5)
    broker.stop()  # idempotent


def test_broker_dies_when_its_parent_is_killed_with_sigkill() -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from streams.broker import EmbeddedBroker
        b = EmbeddedBroker()
        b.start()
        print(b.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    broker_pid = int(parent.stdout.readline())
    assert _alive(broker_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    assert _wait_dead(broker_pid), "broker outlived its SIGKILLed parent"


def test_cli_broker_prints_bootstrap_and_stops_on_sigint() -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "streamscore")
    proc = subprocess.Popen(
        [exe, "--no-json-logs", "broker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("bootstrap: 127.0.0.1:"), line
        host, port = line.removeprefix("bootstrap: ").rsplit(":", 1)
        assert metadata_answers(host, int(port))
        children = _children(proc.pid)
        assert children, "no broker child process"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        proc.stdout.close()
    assert code == 0
    for child in children:
        assert _wait_dead(child)


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(x) for x in out.split()]
