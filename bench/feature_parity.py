"""Featurize the whole handbook file offline and compare with the reference features.

Runs :func:`models.features.featurize_frame` (the streaming state classes, driven in
event-time order with fraud labels 7 days late) over transactions.parquet, compares with
reference_features.parquet and prints per-feature match rates, wall and CPU time,
events/s and peak RSS. With ``--stream-rows N`` it also times the state classes the
way a worker calls them (add + features per event) over the first N rows.

    python bench/feature_parity.py [--data-dir DIR] [--tie-order reference|file|id]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from models.features import (
    DEFAULT_DELAY_S,
    CustomerWindows,
    TerminalWindows,
    featurize_frame,
)
from models.features.batch import observe_customers, observe_terminals
from models.features.handbook import from_handbook, handbook_arrival_order, reference_features
from models.features.parity import compare_features

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """The handbook directory: $STREAMSCORE_HANDBOOK_DIR, else ../shared/data/handbook."""
    env = os.environ.get("STREAMSCORE_HANDBOOK_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "handbook"


def peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream_timing(raw: pd.DataFrame, rows: int, repeats: int) -> None:
    """Time add + features per event on fresh state, as a worker would call them."""
    head = raw.iloc[:rows]
    seconds = (head["TX_DATETIME"].astype("int64") // 1000 / 1e6).tolist()
    ids = head["TRANSACTION_ID"].tolist()
    customers = head["CUSTOMER_ID"].tolist()
    terminals = head["TERMINAL_ID"].tolist()
    amounts = head["TX_AMOUNT"].tolist()
    n = len(ids)

    def customer_pass() -> None:
        state = {c: CustomerWindows() for c in set(customers)}
        for i in range(n):
            windows = state[customers[i]]
            windows.add(ids[i], seconds[i], amounts[i], i)
            windows.features(seconds[i], i)

    def terminal_pass() -> None:
        state = {t: TerminalWindows() for t in set(terminals)}
        for i in range(n):
            windows = state[terminals[i]]
            windows.add_transaction(ids[i], seconds[i])
            windows.features(seconds[i], DEFAULT_DELAY_S)

    batch = 256
    customer_events = list(zip(customers, ids, seconds, amounts, range(n), strict=True))
    terminal_events = list(zip(terminals, ids, seconds, strict=True))

    def customer_batches() -> None:
        state: dict[Hashable, CustomerWindows] = {}
        for i in range(0, n, batch):
            observe_customers(state, customer_events[i : i + batch])

    def terminal_batches() -> None:
        state: dict[Hashable, TerminalWindows] = {}
        for i in range(0, n, batch):
            observe_terminals(state, terminal_events[i : i + batch], DEFAULT_DELAY_S)

    def lookup_pass() -> None:
        state = {c: 0 for c in set(customers)}
        for i in range(n):
            state[customers[i]]
            (ids[i], seconds[i], amounts[i], i)

    for label, run in (
        ("customer add+features", customer_pass),
        ("terminal add+features", terminal_pass),
        (f"customer, batches of {batch}", customer_batches),
        (f"terminal, batches of {batch}", terminal_batches),
        ("loop overhead only", lookup_pass),
    ):
        cpu = min(_cpu_seconds(run) for _ in range(repeats))
        print(f"{label:<24} {cpu / n * 1e6:6.2f} µs/event (CPU, best of {repeats}, {n} events)")


def _cpu_seconds(run: Callable[[], None]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument(
        "--tie-order",
        choices=["reference", "file", "id"],
        default="reference",
        help="arrival order between equal timestamps: as the reference sorted them, "
        "the file's row order, or transaction id",
    )
    parser.add_argument("--rows", type=int, default=0, help="only the first N rows (0: all)")
    parser.add_argument("--stream-rows", type=int, default=0, help="also time the stream path")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    console = Console()

    start = time.perf_counter()
    raw = pd.read_parquet(args.data_dir / "transactions.parquet")
    reference = pd.read_parquet(args.data_dir / "reference_features.parquet")
    if args.tie_order == "reference":
        seq = handbook_arrival_order(raw)
    elif args.tie_order == "file":
        seq = None
    else:
        seq = raw["TRANSACTION_ID"].to_numpy()
    frame = from_handbook(raw, seq=seq)
    if args.rows:
        frame = frame.iloc[: args.rows]
    loaded = time.perf_counter() - start
    console.print(
        f"loaded {len(frame):,} transactions in {loaded:.1f} s (tie order: {args.tie_order}); "
        f"peak RSS so far {peak_rss_mib():,.0f} MiB"
    )

    n_frauds = int(frame["is_fraud"].sum())
    n_events = len(frame) + n_frauds  # each transaction, and the fraud labels
    with Progress(
        *Progress.get_default_columns()[:-1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("featurizing", total=n_events)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        ours = featurize_frame(frame, progress=lambda done: bar.update(task, completed=done))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    ref = reference_features(reference, raw)
    del reference
    report = compare_features(ours, ref, atol=1e-6, transactions=frame)
    console.print(report.render(), highlight=False, markup=False)
    console.print(
        f"featurize_frame: {len(frame):,} transactions + {n_frauds:,} fraud labels in "
        f"{wall:.1f} s wall ({cpu:.1f} s CPU): {len(frame) / wall:,.0f} transactions/s, "
        f"{n_events / wall:,.0f} events/s; peak RSS {peak_rss_mib():,.0f} MiB"
    )
    if args.stream_rows:
        stream_timing(raw, args.stream_rows, args.repeats)
    return 0 if report.fraction == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
