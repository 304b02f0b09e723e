"""`streamscore bench --quick` runs end to end on the embedded broker and ends with its line.

A shortened quick run (a small backlog, one second per offered rate, a small replay,
no scaling and no scoring engines) through the same command and code path. Figures
are checked for being measured (positive, finite), never against a timing.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.bench.report import SUMMARY_PATTERN

pytestmark = pytest.mark.integration

#: About 1.5 minutes on 2 quiet cores; far longer when they are shared.
LIMIT_S = 540

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(LIMIT_S + 30)
def test_quick_bench_prints_tables_and_a_summary_line_of_measured_figures(
    tmp_path: Path,
) -> None:
    exe = Path(sys.executable).with_name("streamscore")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        str(exe),
        "--log-level",
        "WARNING",
        "bench",
        "--quick",
        "--no-record",
        "--synthetic",
        "--work-dir",
        str(tmp_path / "work"),
        "--sections",
        "throughput,profile,latency,replay",
        "--transactions",
        "2000",
        "--replay-rows",
        "2000",
        "--latency-seconds",
        "1",
    ]
    # From an empty directory: the default --out (docs/benchmarks.md) would land here.
    done = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=LIMIT_S, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    match = SUMMARY_PATTERN.match(lines[-1])
    assert match is not None, lines[-1]
    figures = [float(g) for g in match.groups()]
    assert all(math.isfinite(f) and f > 0 for f in figures), lines[-1]
    for title in (
        "#### Throughput",
        "#### Stage profile",
        "#### Event-to-prediction",
        "#### Replay",
    ):
        assert any(line.startswith(title) for line in lines), title
    assert not (tmp_path / "docs").exists()
