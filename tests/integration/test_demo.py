"""`streamscore demo` end to end: a real broker, real child processes, a real report.

Each test runs the command as a user would (a subprocess, the embedded broker unless
STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS is set) on a small simulated world. Every process
the demo starts inherits a token in its environment, so the tests can tell whether
any of them outlived it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

STREAMSCORE = str(Path(sys.executable).with_name("streamscore"))
SUMMARY = re.compile(
    r"^demo: events=(?P<events>\d+) predictions=(?P<predictions>\d+) "
    r"dead_letters=(?P<dead_letters>\d+) auc=(?P<auc>\S+) ap=(?P<ap>\S+) "
    r"models=(?P<models>\d+) drift_events=(?P<drift_events>\d+) report=(?P<report>\S+)$",
    re.MULTILINE,
)
#: A status line once a hundred transactions have been scored.
FLOWING = re.compile(r"^demo streaming .* scored=[1-9][0-9]{2}")
#: A small world: about 1,500 transactions a day.
SMALL = ["--customers", "600", "--terminals", "1200", "--rate", "500", "--bad-every", "200"]


def demo_env(token: str) -> dict[str, str]:
    """This environment, marked with ``token`` (inherited by every child process)."""
    return {**os.environ, "DEMO_TEST_TOKEN": token, "COLUMNS": "120"}


def processes_with(token: str) -> list[str]:
    """Command lines of the live processes whose environment holds ``token``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if token.encode() in environ and cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def no_leftovers(token: str, within_s: float = 10.0) -> list[str]:
    """Processes still marked with ``token`` after up to ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    left = processes_with(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_with(token)
    return left


def test_demo_plays_the_stream_writes_the_report_and_leaves_no_process(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    done = subprocess.run(
        [STREAMSCORE, "demo", "--days", "3", *SMALL, "--out", str(tmp_path), "--headless"],
        env=demo_env(token),
        capture_output=True,
        text=True,
        timeout=270,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    match = SUMMARY.search(done.stdout)
    assert match, done.stdout[-3000:]
    figures = match.groupdict()
    assert int(figures["predictions"]) > 0
    assert int(figures["dead_letters"]) > 0
    # Every message has exactly one outcome: a prediction or a dead letter.
    assert int(figures["predictions"]) + int(figures["dead_letters"]) == int(figures["events"])
    assert int(figures["models"]) >= 1  # the first model served
    assert 0.0 <= float(figures["auc"]) <= 1.0
    report = Path(figures["report"])
    assert report.parent == tmp_path
    for name in ("summary.md", "dashboard.png", "overview.png", "throughput.png", "latency.png"):
        assert (report / name).stat().st_size > 0, name
    assert "stream ended" in (report / "summary.md").read_text(encoding="utf-8")
    assert (report / "logs" / "worker-0.log").exists()
    assert no_leftovers(token) == []


def test_ctrl_c_mid_stream_stops_every_process_and_still_reports(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    # Its own session, so the signal goes where a terminal's Ctrl-C goes: to the
    # foreground process group, not to this test.
    proc = subprocess.Popen(
        [STREAMSCORE, "demo", "--days", "20", "--train-days", "0", *SMALL]
        + ["--out", str(tmp_path), "--headless"],
        env=demo_env(token),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        for line in proc.stdout:
            seen.append(line)
            if FLOWING.search(line) or time.monotonic() > deadline:
                break
        assert any(line.startswith("demo streaming") for line in seen), "".join(seen)
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    output = "".join(seen) + rest
    assert proc.returncode in (0, 130), output[-3000:]
    match = SUMMARY.search(output)
    assert match, output[-3000:]
    report = Path(match["report"])
    assert "interrupted" in (report / "summary.md").read_text(encoding="utf-8")
    assert (report / "overview.png").stat().st_size > 0
    assert no_leftovers(token) == []
