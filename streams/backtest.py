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
import json
import logging
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from producers.frames import load_transactions
from streams.evaluate import predictions_frame
from streams.events import ModelUpdate, ModelUpdateAction
from streams.harness import Harness
from streams.kafka import KafkaConnection
from streams.model_updates import read_updates
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
    updates: list[ModelUpdate] = field(default_factory=list)
    """Every message of the run's `model-updates` topic, in order."""

    def lifecycle_line(self) -> str:
        """Deep models published, promoted and rejected (by reason), and how many scored.

        Examples
        --------
        >>> from datetime import UTC, datetime
        >>> def up(action, version, reason=None):
        ...     return ModelUpdate(model_name="deep", action=action, version=version,
        ...                        reason=reason, issued_time=datetime.now(UTC))
        >>> frame = pd.DataFrame({"model_versions": [{"deep": "a"}, '{"deep": "b"}']})
        >>> result = BacktestResult(frame, Accounting(set()), "a", [
        ...     up("publish", "b"), up("promote", "b", "judged on 2000 labels"),
        ...     up("publish", "c"), up("reject", "c", "worse_than_champion: ap")])
        >>> result.lifecycle_line()
        'models: published=2 promoted=1 rejected=1 (worse_than_champion=1) undecided=0 scoring=2'
        """
        deep = [u for u in self.updates if u.model_name == "deep" and u.version is not None]
        published = {u.version for u in deep if u.action == ModelUpdateAction.PUBLISH}
        promoted = {u.version for u in deep if u.action == ModelUpdateAction.PROMOTE}
        rejected = {u.version: u for u in deep if u.action == ModelUpdateAction.REJECT}
        reasons = Counter(
            (u.reason or "unknown").split(":")[0].split(" ")[0] for u in rejected.values()
        )
        undecided = published - promoted - set(rejected)
        versions = (
            json.loads(v) if isinstance(v, str) else v
            for v in self.predictions.get("model_versions", [])
        )
        scoring = {v.get("deep") for v in versions if isinstance(v, dict)} - {None}
        why = ", ".join(f"{k}={n}" for k, n in sorted(reasons.items()))
        return (
            f"models: published={len(published)} promoted={len(published & promoted)} "
            f"rejected={len(rejected)} ({why}) undecided={len(undecided)} scoring={len(scoring)}"
        )


def first_model_args(
    harness: Harness,
    file: Path,
    first_day: datetime,
    train_days: int,
    label_delay: str = "7d",
) -> list[str]:
    """The `streamscore` arguments of :func:`train_first_model` (``train ...``)."""
    end = first_day + timedelta(days=train_days)
    return [
        "train",
        str(file),
        "--from",
        first_day.isoformat(),
        "--to",
        end.isoformat(),
        "--label-delay",
        label_delay,
        "--promote",
        "--no-notify",
        "--version",
        first_model_version(harness),
    ]


def train_first_model(
    harness: Harness,
    file: Path,
    first_day: datetime,
    train_days: int,
    label_delay: str = "7d",
    log_dir: Path | None = None,
) -> int:
    """Run `streamscore train` on the earliest labeled days of ``file``, into the run's registry.

    It trains on ``[first_day, first_day + train_days)``, publishes the model as
    ``first-<run id>`` and makes it champion; a worker loads the champion from the
    registry when it starts. Returns the command's exit code (its output goes to
    ``log_dir/train.log`` when given).
    """
    exe = str(Path(sys.executable).with_name("streamscore"))
    args = first_model_args(harness, file, first_day, train_days, label_delay)
    cmd = [exe, "--log-level", "WARNING", *args]
    log = None if log_dir is None else (log_dir / "train.log").open("ab")
    try:
        return subprocess.run(
            cmd, env=harness.env(), stdout=log, stderr=log, check=False
        ).returncode
    finally:
        if log is not None:
            log.close()


def first_model_version(harness: Harness) -> str:
    """The version name :func:`train_first_model` gives the run's first model."""
    return f"first-{harness.run_id}"


def run_backtest(
    settings: StreamsSettings,
    conn: KafkaConnection,
    config: BacktestConfig,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> BacktestResult:
    """Run the system over ``config.file`` and write its predictions to ``config.out``."""
    frame = load_transactions(config.file, config.start, config.end)
    if frame.empty:
        raise ValueError("no transactions in the chosen range")
    first_day = frame["event_time"].min().to_pydatetime()
    first_model: list[str | None] = [None]
    if config.log_dir is not None:
        config.log_dir.mkdir(parents=True, exist_ok=True)

    def before_replay(harness: Harness) -> None:
        if config.train_days > 0:
            code = train_first_model(
                harness,
                config.file,
                first_day,
                config.train_days,
                config.label_delay,
                config.log_dir,
            )
            if code != 0:
                raise RuntimeError(f"first training failed (exit {code}); see train.log")
            first_model[0] = first_model_version(harness)
        if config.trainer:
            harness.start_process("trainer", "trainer")

    updates: list[ModelUpdate] = []

    async def after(harness: Harness) -> None:
        updates.extend(await read_updates(conn, harness.topics.model_updates.name))

    run = asyncio.run(
        replay_through_pipeline(
            settings,
            conn,
            frame,
            log_dir=config.log_dir,
            on_progress=on_progress,
            label_delay=config.label_delay,
            before_replay=before_replay,
            after=after,
        )
    )
    predictions = predictions_frame(run.predictions)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(config.out, index=False)
    return BacktestResult(predictions, run.accounting, first_model[0], updates)
