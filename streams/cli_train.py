"""Commands that train: ``streamscore train`` (from a file) and ``streamscore trainer`` (process).

They are the only commands that import torch; the registry, keys and notification
helpers are shared with ``streamscore models`` (:mod:`streams.cli_models`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from streams.cli_models import (
    console,
    fail,
    models_settings,
    notify_workers,
    open_registry,
    worker_contract,
)

if TYPE_CHECKING:
    from models.registry import Registry
    from models.serving import OnnxScorer
    from models.settings import ModelsSettings
    from models.verify import FeatureContract


def _quiet_exporter() -> None:
    """The ONNX exporter logs every optimization pass at INFO; keep its warnings only."""
    for name in ("onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.ERROR if name == "torch.onnx" else logging.WARNING)


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def train(
    file: Path = typer.Argument(..., help="Transactions file (.parquet or .csv) with labels."),
    start: str = typer.Option(None, "--from", help="First event time used (ISO date, UTC)."),
    end: str = typer.Option(None, "--to", help="Events before this time (ISO date, UTC)."),
    features: Path = typer.Option(
        None, help="Precomputed features (e.g. the handbook's reference_features.parquet)."
    ),
    label_delay: str = typer.Option("7d", help="Label delay of the terminal features."),
    version: str = typer.Option(None, help="Version name. Default: ffnn-<last day>-<random>."),
    promote: bool = typer.Option(
        None, help="Make it champion. Default: only when there is no champion."
    ),
    notify: bool = typer.Option(True, help="Send publish/promote updates to the workers."),
) -> None:
    """Train the deep model on a window of a transactions file and publish it.

    Features come from the feature core (the stream's own code), over a 37-day
    warm-up before the window, or from a precomputed file. The last
    STREAMSCORE_TRAINER__EVAL_DAYS days are held out and compared with the champion.
    """
    from models.trainer import WEIGHTS_FILE, LabeledData, TrainerConfig, train_candidate
    from models.training_data import WARMUP, featurize, join_features, labeled_frame
    from producers.frames import load_transactions
    from producers.simulation.emit import parse_duration
    from streams.trainer_report import epoch_progress, run_summary

    _quiet_exporter()
    settings = models_settings()
    registry = open_registry(settings)
    contract = worker_contract(settings)
    first, last = _date(start), _date(end)
    frame = load_transactions(file, None if first is None else first - WARMUP, last)
    if frame.empty:
        raise fail("no transactions in that window")
    if features is not None:
        import pandas as pd

        table = join_features(frame, pd.read_parquet(features), contract.feature_names)
    else:
        table = featurize(frame, parse_duration(label_delay))
    if first is not None:
        frame = frame[frame["event_time"] >= first].reset_index(drop=True)
    data = LabeledData.from_frame(
        labeled_frame(frame, table, contract.feature_names),
        contract.feature_names,
        contract.feature_set,
    )
    config = TrainerConfig.from_settings(settings.trainer, settings.promotion)
    console.print(f"train: {len(data):,} labeled transactions, {int(data.y.sum()):,} frauds")
    champion, note = _champion(registry, contract)
    with epoch_progress(console, config.epochs) as (on_epoch, on_phase):
        run = train_candidate(
            data,
            config,
            model_name=contract.model_name,
            version=version,
            champion=champion,
            on_epoch=on_epoch,
            on_phase=on_phase,
        )
    published, promoted = None, False
    if run.publish:
        published = registry.publish(
            run.model, run.manifest_fields, extra_files={WEIGHTS_FILE: run.weights}
        )
        if promote or (promote is None and registry.pointers().champion is None):
            registry.promote(run.version)
            promoted = True
    console.print(run_summary(run, published=published, promoted=promoted, champion_note=note))
    if published is not None:
        _announce(registry, settings, run.version, promoted, notify)
    raise typer.Exit(0 if published is not None else 3)


def _champion(
    registry: Registry, contract: FeatureContract
) -> tuple[OnnxScorer | None, str | None]:
    from models.rejections import Rejected
    from models.verify import VerifyOptions, verify_version

    version = registry.pointers().champion
    if version is None:
        return None, "no champion yet"
    try:
        verified = verify_version(
            version, registry, contract, VerifyOptions(provider="cpu", warmup_batch_sizes=())
        )
    except Rejected as exc:
        return None, f"champion {version} failed verification: {exc}"
    return verified.scorer, None


def _announce(
    registry: Registry, settings: ModelsSettings, version: str, promoted: bool, notify: bool
) -> None:
    from streams.events import ModelUpdateAction
    from streams.model_updates import update_for

    uri = settings.registry.uri
    updates = [update_for(registry, ModelUpdateAction.PUBLISH, version, uri=uri, reason="train")]
    if promoted:
        updates.append(update_for(registry, ModelUpdateAction.PROMOTE, version, uri=uri))
    notify_workers(updates, notify)


def trainer(
    max_runs: int = typer.Option(None, help="Stop after this many runs (default: never)."),
) -> None:
    """Run the batch trainer: train on labeled examples on schedule or request, publish.

    Schedule, window and training knobs: STREAMSCORE_TRAINER__*; the publish rule:
    STREAMSCORE_PROMOTION__*. Each run prints its epochs and a summary.
    """
    from models.trainer import TrainerConfig
    from streams.runtime import kafka_connection
    from streams.settings import StreamsSettings
    from streams.trainer_report import epoch_progress, run_summary
    from streams.trainer_service import RunOutcome, TrainerService

    _quiet_exporter()
    settings = models_settings()
    streams = StreamsSettings()
    registry = open_registry(settings)
    if registry.signer is None:
        raise fail("the trainer needs a signing key (it publishes models)", 2)
    config = TrainerConfig.from_settings(settings.trainer, settings.promotion)

    def on_run(outcome: RunOutcome) -> None:
        if outcome.run is None:
            console.print(f"[yellow]run ({outcome.trigger}) skipped: {outcome.skipped}[/yellow]")
            return
        console.print(
            run_summary(
                outcome.run,
                published=outcome.published,
                promoted=outcome.promoted,
                champion_note=outcome.champion_note,
                trigger=outcome.trigger,
            )
        )

    async def main(service: TrainerService) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop, max_runs=max_runs)

    from streams import metrics
    from streams.exporter import serve_metrics

    metrics.init_trainer_series()
    serve_metrics(streams.metrics)  # metrics: the trainer's /metrics endpoint
    with kafka_connection(streams) as conn, epoch_progress(console, config.epochs) as callbacks:
        service = TrainerService(
            conn=conn,
            examples_topic=streams.topics.labeled_examples.name,
            updates_topic=streams.topics.model_updates.name,
            registry=registry,
            registry_uri=settings.registry.uri,
            contract=worker_contract(settings),
            settings=settings.trainer,
            config=config,
            on_epoch=callbacks[0],
            on_phase=callbacks[1],
            on_run=on_run,
        )
        console.print(
            f"trainer: {settings.trainer.schedule} schedule, window {settings.trainer.window_days} "
            f"days, reading {streams.topics.labeled_examples.name}"
        )
        asyncio.run(main(service))
