"""Feature parity: replay a file through broker and worker, compare with the reference.

The run replays ``[start - warm-up, end)`` (the warm-up, 37 days by default, fills
every window the features of ``start`` look at), reads back every feature vector and
dead letter, checks that each transaction ended as exactly one of them, and compares
the features of ``[start, end)`` with the reference file.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from models.features import FEATURE_NAMES, compare_features, reference_features
from producers.frames import load_transactions
from producers.replay import ReplayConfig, ReplaySummary, replay
from streams.bench.measure import peak_rss_mib
from streams.harness import Harness, read_topics
from streams.kafka import KafkaConnection
from streams.progress import progress_bars
from streams.runtime import kafka_connection
from streams.settings import StreamsSettings, TopicsSettings

WARMUP = timedelta(days=37)


@dataclass
class Accounting:
    """How each replayed transaction ended."""

    expected: set[str]
    featurized: Counter[str] = field(default_factory=Counter)
    predicted: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    dead_reasons: Counter[str] = field(default_factory=Counter)
    want_predictions: bool = True

    @property
    def outcomes(self) -> Counter[str]:
        """The outcome counted per id: predictions (or feature vectors when not scoring)."""
        return self.predicted if self.want_predictions else self.featurized

    @property
    def missing(self) -> set[str]:
        """Ids with neither an outcome nor a dead letter."""
        outcomes, dead = self.outcomes, self.dead
        return {i for i in self.expected if i not in outcomes and i not in dead}

    @property
    def duplicates(self) -> int:
        """Outcomes beyond one per id."""
        return sum(n - 1 for n in self.outcomes.values() if n > 1)

    def done(self) -> bool:
        """True when every expected id has an outcome."""
        if len(self.outcomes) + len(self.dead) < len(self.expected):
            return False
        return not self.missing


#: A step run inside a pipeline run (sync or async), given its harness.
Hook = Callable[[Harness], Awaitable[None] | None]


async def _call(hook: Hook, harness: Harness) -> None:
    result = hook(harness)
    if inspect.isawaitable(result):
        await result


class PipelineError(RuntimeError):
    """A process of the pipeline run died before every event had an outcome."""


@dataclass
class PipelineRun:
    """The outcome of a pipeline replay: summary, accounting, what was read back."""

    replay: ReplaySummary
    accounting: Accounting
    features: pd.DataFrame
    predictions: list[dict[str, Any]]
    topics: TopicsSettings


async def replay_through_pipeline(
    settings: StreamsSettings,
    conn: KafkaConnection,
    frame: pd.DataFrame,
    idle_timeout_s: float = 120.0,
    log_dir: Path | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    between: Hook | None = None,
    label_delay: str | None = "7d",
    learner: bool = True,
    before_replay: Hook | None = None,
    after: Hook | None = None,
) -> PipelineRun:
    """Replay ``frame`` through a fresh worker (and learner) and read back its outputs.

    ``after`` runs once every output is read back, while the processes still run.
    """
    with Harness(settings, conn, log_dir=log_dir) as harness:
        harness.create_topics()
        if before_replay is not None:
            await _call(before_replay, harness)
        harness.start_worker()
        if learner:
            harness.start_process("learner", "learner")
        topics = harness.topics
        summary = await replay(
            conn,
            frame,
            ReplayConfig(
                transactions_topic=topics.transactions.name,
                labels_topic=topics.labels.name,
                label_delay=label_delay,
            ),
            progress=None if on_progress is None else lambda i, n: on_progress("replay", i, n),
        )
        if between is not None:
            await _call(between, harness)
        accounting = Accounting(expected=set(frame["transaction_id"]))
        rows: dict[str, list[float]] = {}
        predictions: list[dict[str, Any]] = []

        def on_message(topic: str, record: Any) -> None:
            event = json.loads(record.value)
            if topic == topics.predictions.name:
                accounting.predicted[event["transaction_id"]] += 1
                predictions.append(event)
                if on_progress is not None and (len(predictions) & 0xFFF) == 0:
                    on_progress("score", len(accounting.predicted), len(accounting.expected))
            elif topic == topics.features.name:
                tx_id = event["transaction_id"]
                accounting.featurized[tx_id] += 1
                rows[tx_id] = event["values"]
            elif event.get("source_topic") == topics.transactions.name:
                tx_id = event.get("transaction_id") or f"offset:{event['source_offset']}"
                accounting.dead[tx_id] += 1
                accounting.dead_reasons[event["reason"]] += 1

        await read_topics(
            conn,
            [topics.predictions.name, topics.features.name, topics.dead_letters.name],
            on_message,
            lambda: accounting.done() or bool(harness.crashed()),
            idle_timeout_s=idle_timeout_s,
        )
        crashed = harness.crashed()
        if crashed and not accounting.done():
            raise PipelineError(f"pipeline process failed: {'; '.join(crashed)}")
        if after is not None:
            await _call(after, harness)
    features = pd.DataFrame.from_dict(rows, orient="index", columns=list(FEATURE_NAMES))
    features.index.name = "transaction_id"
    return PipelineRun(summary, accounting, features, predictions, topics)


def load_reference(path: Path) -> pd.DataFrame:
    """The reference features, indexed by transaction id (as strings)."""
    ref = pd.read_parquet(path)
    ref["TRANSACTION_ID"] = ref["TRANSACTION_ID"].astype(str)
    return ref.set_index("TRANSACTION_ID")


def parity_frame(
    path: Path, start: datetime | None, end: datetime | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(frame to replay including warm-up, frame to compare)."""
    frame = load_transactions(path)
    compare = frame
    if start is not None:
        compare = compare[compare["event_time"] >= pd.Timestamp(start)]
        frame = frame[frame["event_time"] >= pd.Timestamp(start) - WARMUP]
    if end is not None:
        compare = compare[compare["event_time"] < pd.Timestamp(end)]
        frame = frame[frame["event_time"] < pd.Timestamp(end)]
    return frame.reset_index(drop=True), compare.reset_index(drop=True)


@dataclass
class ParityOutcome:
    """What `streamscore parity` found."""

    fraction: float
    accounted: bool
    run: PipelineRun


def run_parity(
    settings: StreamsSettings,
    file: Path,
    reference: Path,
    start: datetime | None,
    end: datetime | None,
    log_dir: Path | None = None,
    console: Console | None = None,
) -> ParityOutcome:
    """Replay ``[start - warm-up, end)`` through a fresh worker and compare features."""
    console = console or Console()
    frame, compare = parity_frame(file, start, end)
    console.print(
        f"parity: replaying {len(frame):,} transactions ({len(compare):,} compared) from {file}"
    )
    peaks: dict[str, float | None] = {}

    def measure(harness: Harness) -> None:
        for i, proc in enumerate(harness.workers):
            peaks[f"worker-{i}"] = peak_rss_mib(proc.pid)
        for proc in harness.others:  # [streamscore, --log-level, LEVEL, command, ...]
            args = proc.args if isinstance(proc.args, list) else [proc.args]
            peaks[str(args[3]) if len(args) > 3 else str(proc.pid)] = peak_rss_mib(proc.pid)

    started = time.monotonic()
    with kafka_connection(settings) as conn, progress_bars() as update:
        run = asyncio.run(
            replay_through_pipeline(
                settings, conn, frame, log_dir=log_dir, on_progress=update, after=measure
            )
        )
    wall = time.monotonic() - started
    acc = run.accounting
    console.print(
        f"accounting: transactions={len(acc.expected):,} featurized={len(acc.featurized):,} "
        f"dead_letters={sum(acc.dead.values()):,} missing={len(acc.missing):,} "
        f"duplicates={acc.duplicates:,}"
    )
    replay_s = max(run.replay.wall_s, 1e-9)
    console.print(
        f"throughput: replay {run.replay.transactions + run.replay.labels:,} messages in "
        f"{replay_s:,.0f} s ({run.replay.messages_per_s:,.0f}/s); every transaction "
        f"featurized and scored in {wall:,.0f} s ({len(acc.featurized) / wall:,.0f}/s end to end)"
    )
    console.print(
        "peak RSS: "
        + ", ".join(
            f"{name} {'-' if mib is None else f'{mib:,.0f} MiB'}" for name, mib in peaks.items()
        )
    )
    ids = set(compare["transaction_id"])
    ours = run.features[run.features.index.isin(ids)]
    ref = reference_features(pd.read_parquet(reference), pd.read_parquet(file))
    ref = ref[ref.index.astype(str).isin(ids)]
    ref.index = ref.index.astype(str)
    report = compare_features(ours, ref, transactions=frame)
    console.print(report.render())
    accounted = not acc.missing and acc.duplicates == 0
    return ParityOutcome(report.fraction, accounted, run)
