"""The stream a demo plays: a simulated world with scripted drift, or a replayed file.

Whatever its source, it is one frame in the common layout (:mod:`producers.frames`)
with each label's publication time, the order in which transactions and labels are
published, and the truth the dashboard scores the system against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from producers.frames import load_transactions, normalize
from producers.replay import schedule, with_label_times
from producers.simulation import SimulationConfig, parse_drifts, simulate_frame
from streams.demo.config import DemoConfig

#: The handbook's fraud scenarios and the simulator's scripted pattern, by number.
SCENARIOS = {1: "large amount", 2: "compromised terminal", 3: "leaked card", 4: "new pattern"}


@dataclass
class DemoStream:
    """The transactions and labels of a demo, in publication order."""

    frame: pd.DataFrame
    """Common layout, event-time order, with ``label_time`` when labels are known."""
    source: str
    """What it is, in words (for the dashboard and the report)."""
    kinds: np.ndarray
    """Publication order: 0 a label, 1 a transaction (see :func:`producers.replay.schedule`)."""
    rows: np.ndarray
    """The frame row of each published message."""
    drifts: tuple[str, ...] = ()
    """Scripted drifts (simulated streams)."""
    scenario: np.ndarray | None = None
    """Fraud scenario per row (simulated streams; 0 genuine)."""
    row_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.row_of = {tx: i for i, tx in enumerate(self.frame["transaction_id"].tolist())}
        times = self.frame["event_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        #: Event time of each row, Unix seconds.
        self.event_s = times / 1e9
        self.labeled = "is_fraud" in self.frame
        self.is_fraud = (
            self.frame["is_fraud"].to_numpy(dtype=bool)
            if self.labeled
            else np.zeros(len(self.frame), dtype=bool)
        )

    @property
    def first_day(self) -> datetime:
        """Midnight (UTC) of the first event."""
        first = self.frame["event_time"].min().floor("D")
        return datetime.fromisoformat(first.isoformat())

    @property
    def days(self) -> float:
        """Event days the stream covers, from its first midnight to its last event."""
        last = float(self.event_s.max()) if len(self.event_s) else 0.0
        return max(last - self.first_day.timestamp(), 0.0) / 86_400

    def drift_days(self) -> list[tuple[float, str]]:
        """Event time (Unix seconds) and text of each scripted drift's start."""
        out = []
        for spec, drift in zip(self.drifts, parse_drifts(list(self.drifts)), strict=True):
            start = self.first_day + timedelta(days=drift.day)
            out.append((start.timestamp(), spec))
        return out

    def write_training_file(self, path: Path, days: int) -> int:
        """Write the labeled transactions of the first ``days`` days; return how many."""
        end = pd.Timestamp(self.first_day + timedelta(days=days))
        head = self.frame[self.frame["event_time"] < end]
        head.drop(columns=["label_time"], errors="ignore").to_parquet(path, index=False)
        return len(head)


def simulated_stream(config: DemoConfig) -> DemoStream:
    """The simulated world of ``config``, labels ``config.label_delay`` late."""
    sim = SimulationConfig(
        n_customers=config.customers,
        n_terminals=config.terminals,
        days=config.days,
        seed=config.seed,
        drifts=parse_drifts(list(config.drift_specs)),
    )
    raw = simulate_frame(sim)
    frame = normalize(raw)
    scenario_of = dict(
        zip(raw["TRANSACTION_ID"].astype(str), raw["TX_FRAUD_SCENARIO"].astype(int), strict=True)
    )
    scenario = np.array([scenario_of[t] for t in frame["transaction_id"]], dtype=np.int8)
    source = (
        f"simulated: {config.customers:,} customers, {config.terminals:,} terminals, "
        f"{config.days} days, seed {config.seed}"
    )
    return _finish(frame, config, source, config.drift_specs, scenario)


def file_stream(config: DemoConfig) -> DemoStream:
    """The first ``config.days`` days of ``config.file``."""
    assert config.file is not None
    frame = load_transactions(config.file)
    if frame.empty:
        raise ValueError(f"no transactions in {config.file}")
    first = frame["event_time"].min().floor("D")
    frame = frame[frame["event_time"] < first + pd.Timedelta(days=config.days)]
    source = f"{config.file.name}: first {config.days} days"
    return _finish(frame.reset_index(drop=True), config, source, (), None)


def _finish(
    frame: pd.DataFrame,
    config: DemoConfig,
    source: str,
    drifts: tuple[str, ...],
    scenario: np.ndarray | None,
) -> DemoStream:
    frame = with_label_times(frame, config.label_delay, config.seed)
    kinds, rows = schedule(frame)
    return DemoStream(frame, source, kinds, rows, drifts, scenario)


def build_stream(config: DemoConfig) -> DemoStream:
    """The stream of ``config``: its file, or the simulated world."""
    return file_stream(config) if config.file is not None else simulated_stream(config)
