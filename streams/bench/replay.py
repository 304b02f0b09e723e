"""The handbook replayed through every stage: wall time, events per second, peak RSS.

:func:`streams.parity.replay_through_pipeline` as ``streamscore parity`` and
``backtest`` run it: a fresh worker and the online learner, the file replayed with
labels seven days late, every prediction, feature vector and dead letter read back.
The benchmark's champion is copied into the run's registry first, so the worker
scores with the deep model and the online model the learner publishes.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, field

import pandas as pd

from streams.bench.measure import peak_rss_mib
from streams.bench.report import Table, rate
from streams.bench.throughput import BenchContext
from streams.harness import Harness
from streams.parity import replay_through_pipeline


@dataclass
class ReplayResult:
    """What one replay measured."""

    transactions: int
    wall_s: float
    publish_s: float
    predicted: int
    missing: int
    duplicates: int
    dead: int
    peak_rss: dict[str, float] = field(default_factory=dict)
    #: Transactions per second after the first 4,096 predictions (start-up left out).
    steady_tx_per_s: float | None = None

    @property
    def tx_per_s(self) -> float:
        """Transactions per second of wall time."""
        return self.transactions / self.wall_s if self.wall_s > 0 else 0.0

    def estimate_s(self, rows: int) -> float:
        """Wall seconds for ``rows`` transactions: measured when this was all of them,
        else this run's start-up plus the rest at its steady rate."""
        if rows <= self.transactions or not self.steady_tx_per_s:
            return self.wall_s * rows / max(self.transactions, 1)
        startup = self.wall_s - self.transactions / self.steady_tx_per_s
        return max(0.0, startup) + rows / self.steady_tx_per_s


def _process_name(args: object) -> str:
    """The `streamscore` subcommand a process runs (its last argument)."""
    if isinstance(args, (list, tuple)) and args:
        last = args[-1]
        return last.decode() if isinstance(last, bytes) else str(last)
    return str(args)


async def replay_run(ctx: BenchContext, frame: pd.DataFrame) -> ReplayResult:
    """Replay ``frame`` through a fresh worker and learner; measure wall time and RSS."""
    peaks: dict[str, float] = {}
    sampling: list[asyncio.Task[None]] = []

    async def sample(harness: Harness) -> None:
        while True:
            procs = {f"worker-{i}": p for i, p in enumerate(harness.workers)}
            procs.update({_process_name(p.args): p for p in harness.others})
            for name, proc in procs.items():
                value = peak_rss_mib(proc.pid)
                if value is not None:
                    peaks[name] = max(peaks.get(name, 0.0), value)
            await asyncio.sleep(0.5)

    def before(harness: Harness) -> None:
        # The benchmark's signed champion and key, in place of the run's own.
        shutil.copyfile(ctx.models.key_file, harness.tmp / "signing.key")
        shutil.copytree(ctx.models.registry_dir, harness.registry_dir, dirs_exist_ok=True)
        sampling.append(asyncio.get_running_loop().create_task(sample(harness)))

    marks: list[tuple[float, int]] = []

    def progress(what: str, done: int, _total: int) -> None:
        if what == "score":
            marks.append((time.perf_counter(), done))

    started = time.perf_counter()
    try:
        run = await replay_through_pipeline(
            ctx.settings,
            ctx.conn,
            frame,
            idle_timeout_s=ctx.idle_timeout_s,
            log_dir=ctx.log_dir,
            before_replay=before,
            on_progress=progress,
        )
    finally:
        for task in sampling:
            task.cancel()
    wall = time.perf_counter() - started
    acc = run.accounting
    steady = None
    if marks and started + wall > marks[0][0]:
        steady = (len(acc.predicted) - marks[0][1]) / (started + wall - marks[0][0])
    return ReplayResult(
        transactions=len(frame),
        wall_s=wall,
        publish_s=run.replay.wall_s,
        predicted=len(acc.predicted),
        missing=len(acc.missing),
        duplicates=acc.duplicates,
        dead=sum(acc.dead.values()),
        peak_rss=peaks,
        steady_tx_per_s=steady,
    )


def replay_table(result: ReplayResult, full_rows: int, label: str) -> Table:
    """The replay as a table, with the full handbook's time extrapolated from a slice."""
    table = Table(
        f"Replay through every stage ({label})",
        [
            "transactions",
            "wall s",
            "tx/s",
            "replay producer s",
            "predicted",
            "missing",
            "duplicates",
            "dead letters",
            "peak RSS MiB",
        ],
    )
    rss = ", ".join(f"{k} {v:.0f}" for k, v in sorted(result.peak_rss.items())) or "-"
    table.add(
        f"{result.transactions:,}",
        f"{result.wall_s:.1f}",
        rate(result.tx_per_s),
        f"{result.publish_s:.1f}",
        f"{result.predicted:,}",
        f"{result.missing:,}",
        f"{result.duplicates:,}",
        f"{result.dead:,}",
        rss,
    )
    if result.transactions < full_rows:
        estimate = f"{result.estimate_s(full_rows):,.0f} s"
        if result.steady_tx_per_s:
            how = (
                f"at the slice's steady {rate(result.steady_tx_per_s)} tx/s (after the first "
                "4,096 predictions) plus its start-up"
            )
        else:
            how = "at the slice's overall rate, start-up included (an upper estimate)"
        table.note(
            f"capped: a slice of {result.transactions:,} of {full_rows:,} rows; the whole file "
            f"would take about {estimate} {how}"
        )
    table.note(
        "wall: from the start of the worker and learner to the last prediction read back; "
        "the replay producer encodes each event with pydantic while the worker runs"
    )
    return table
