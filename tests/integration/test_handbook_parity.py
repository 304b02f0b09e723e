"""`streamscore parity` on the first ten days of the handbook file, through the broker.

The whole file is a benchmark (docs/benchmarks.md); CI replays a slice of it through a
worker and the learner and requires every feature of every transaction to equal the
handbook's reference, and every transaction to end as exactly one outcome.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka import KafkaConnection
from tests.unit.test_features_handbook import handbook_dir

pytestmark = pytest.mark.integration


def test_parity_command_matches_the_reference_on_ten_days(
    kafka_conn: KafkaConnection, tmp_path: Path
) -> None:
    data = handbook_dir()
    exe = Path(sys.executable).with_name("streamscore")
    env = {**os.environ, "STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS": kafka_conn.bootstrap_servers}
    done = subprocess.run(
        [
            str(exe),
            "parity",
            "--file",
            str(data / "transactions.parquet"),
            "--reference",
            str(data / "reference_features.parquet"),
            "--from",
            "2018-04-01",
            "--to",
            "2018-04-11",
            "--log-dir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    accounting = re.search(r"featurized=([\d,]+) dead_letters=0 missing=0\s+duplicates=0", out)
    assert accounting is not None, out[-3000:]
    assert int(accounting.group(1).replace(",", "")) > 90_000
    assert "parity: 1.000000" in out
    assert re.search(r"peak RSS: worker-0 [\d,]+ MiB, learner [\d,]+ MiB", out), out[-1500:]
