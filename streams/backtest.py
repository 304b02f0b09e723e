"""`streamscore backtest`: the whole system on history, predictions to a Parquet file.

One run on one broker (the embedded one unless configured), with its own topics:

1. a first deep model trained on the earliest labeled weeks of the file (features by
   the same code as the stream) and put in service through `model-updates`;
2. a worker, the online learner (and the trainer, when asked for);
3. the file replayed in event-time order with its labels ``label_delay`` late;
4. every message on `predictions` read back and written, one row per message.

This is how a change is tried on history before it is deployed, and how outside
checks measure the system.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from producers.frames import load_transactions
from streams.evaluate import predictions_frame
from streams.harness import Harness
from streams.kafka import KafkaConnection
from streams.parity import Accounting, replay_through_pipeline
from streams.settings import StreamsSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestConfig:
    """What to replay and how to start."""

    file: Path
    out: Path
    start: datetime | None = None
    end: datetime | None = None
    train_days: int = 28
    label_delay: str = "7d"
    trainer: bool = False
    log_dir: Path | None = None


@dataclass
class BacktestResult:
    """What a backtest produced."""

    predictions: pd.DataFrame
    accounting: Accounting
    first_model: str | None


def run_backtest(
    settings: StreamsSettings,
    conn: KafkaConnection,
    config: BacktestConfig,
    train_first: Callable[[pd.DataFrame, Harness], str | None],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> BacktestResult:
    """Run the system over ``config.file`` and write its predictions to ``config.out``."""
    frame = load_transactions(config.file, config.start, config.end)
    if frame.empty:
        raise ValueError("no transactions in the chosen range")
    first_day = frame["event_time"].min()
    history = frame[frame["event_time"] < first_day + timedelta(days=config.train_days)]
    first_model: list[str | None] = [None]

    def before_replay(harness: Harness) -> None:
        first_model[0] = train_first(history, harness)
        if config.trainer:
            harness.start_process("trainer", "trainer")

    run = asyncio.run(
        replay_through_pipeline(
            settings,
            conn,
            frame,
            log_dir=config.log_dir,
            on_progress=on_progress,
            label_delay=config.label_delay,
            before_replay=before_replay,
        )
    )
    predictions = predictions_frame(run.predictions)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(config.out, index=False)
    return BacktestResult(predictions, run.accounting, first_model[0])
