"""Commands of the model lifecycle: ``train``, ``trainer`` and ``models list|show|promote|...``.

Each command builds settings, opens the registry with the configured keys and calls
one function; promote, rollback and retrain also tell workers through the
``model-updates`` topic (unless ``--no-notify``, or no broker is configured).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from models.registry import Registry
    from models.serving import OnnxScorer
    from models.settings import ModelsSettings
    from models.verify import FeatureContract
    from streams.events import ModelUpdate

console = Console()
models_app = typer.Typer(
    help="The model registry: list, inspect, promote, roll back, keys.", no_args_is_help=True
)


def _settings() -> ModelsSettings:
    from models.settings import ModelsSettings

    return ModelsSettings()


def _registry(settings: ModelsSettings) -> Registry:
    """The configured registry with its keys; exits with a message if keys are missing."""
    from models.registry import Registry, registry_root
    from models.signing import SigningKeyError, load_keys

    root = registry_root(settings.registry.uri)
    try:
        signer, verifier = load_keys(settings.registry, root)
    except (SigningKeyError, OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return Registry(root, verifier, signer, settings.registry.model_name)


def _contract(settings: ModelsSettings) -> FeatureContract:
    """The feature contract of the stream workers (feature set and column order)."""
    from models.features import FEATURE_NAMES
    from models.verify import FeatureContract
    from streams.terminal import FEATURE_SET

    return FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES), settings.registry.model_name)


def _notify(updates: list[ModelUpdate], notify: bool) -> None:
    """Send updates to `model-updates`, when asked and a broker is configured."""
    from streams.settings import StreamsSettings

    if not notify:
        return
    streams = StreamsSettings()
    if not streams.kafka.bootstrap_servers:
        console.print(
            "[yellow]no STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS set: the registry changed, "
            "but no worker was told (they read the registry when they start)[/yellow]"
        )
        return
    from streams.kafka import KafkaConnection
    from streams.model_updates import send_updates

    conn = KafkaConnection.from_settings(streams.kafka, streams.kafka.bootstrap_servers)
    asyncio.run(send_updates(conn, streams.topics.model_updates.name, updates))
    console.print(f"sent {len(updates)} update(s) to {streams.topics.model_updates.name}")


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


@models_app.command("list")
def models_list() -> None:
    """List published models, oldest first, marking champion and previous."""
    from streams.trainer_report import manifests_table

    registry = _registry(_settings())
    pointers = registry.pointers()
    console.print(manifests_table(registry.list(), pointers.champion, pointers.previous))


@models_app.command("show")
def models_show(
    version: str = typer.Argument(None, help="Version to show. Default: the champion."),
    verify: bool = typer.Option(False, help="Also run the workers' full verification."),
) -> None:
    """Print a model's signed manifest (signature checked); optionally verify the artifact."""
    from models.registry import RegistryError
    from models.rejections import Rejected
    from models.verify import VerifyOptions, verify_version

    settings = _settings()
    registry = _registry(settings)
    chosen = version or registry.pointers().champion
    if chosen is None:
        raise _fail("no champion yet: name a version")
    version = chosen
    try:
        signed = registry.get(version)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    console.print_json(signed.manifest.model_dump_json(exclude={"golden"}))
    console.print(
        f"signature ({signed.manifest.signature_scheme}): valid, key {signed.manifest.key_id}"
    )
    if verify:
        options = VerifyOptions(
            max_file_bytes=settings.registry.max_file_bytes,
            provider="cpu",
            warmup_batch_sizes=(1, 64),
        )
        try:
            verified = verify_version(version, registry, _contract(settings), options)
        except Rejected as exc:
            raise _fail(f"rejected: {exc}") from None
        stages = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in verified.timings.items())
        console.print(f"[green]verified[/green]: {stages}")


@models_app.command("promote")
def models_promote(
    version: str = typer.Argument(..., help="Version to make champion."),
    notify: bool = typer.Option(True, help="Send a `promote` update to the workers."),
) -> None:
    """Make a version champion now (workers verify it and swap without shadow)."""
    from models.registry import RegistryError
    from streams.events import ModelUpdateAction
    from streams.model_updates import update_for

    settings = _settings()
    registry = _registry(settings)
    try:
        pointers = registry.promote(version)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    console.print(f"champion: {pointers.champion} (previous: {pointers.previous})")
    update = update_for(
        registry,
        ModelUpdateAction.PROMOTE,
        version,
        uri=settings.registry.uri,
        reason="operator",
    )
    _notify([update], notify)


@models_app.command("rollback")
def models_rollback(
    notify: bool = typer.Option(True, help="Send a `rollback` update to the workers."),
) -> None:
    """Withdraw the champion: the champion before it serves again."""
    from models.registry import RegistryError
    from streams.events import ModelUpdateAction
    from streams.model_updates import update_for

    settings = _settings()
    registry = _registry(settings)
    try:
        before = registry.pointers().champion
        pointers = registry.rollback()
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    assert pointers.champion is not None
    console.print(f"champion: {pointers.champion} (withdrawn: {before})")
    update = update_for(
        registry,
        ModelUpdateAction.ROLLBACK,
        pointers.champion,
        uri=settings.registry.uri,
        reason=f"operator withdrew {before}",
    )
    _notify([update], notify)


@models_app.command("retrain")
def models_retrain(
    reason: str = typer.Option("operator", help="Why (recorded on the request)."),
) -> None:
    """Ask the trainer process to train now (a `retrain_request` on model-updates)."""
    from streams.events import ModelUpdate, ModelUpdateAction

    settings = _settings()
    update = ModelUpdate(
        model_name=settings.registry.model_name,
        action=ModelUpdateAction.RETRAIN_REQUEST,
        reason=reason[:512],
        issued_time=datetime.now(UTC),
    )
    _notify([update], True)


@models_app.command("keygen")
def models_keygen(
    path: Path = typer.Argument(..., help="Key file to write (never overwritten)."),
    scheme: str = typer.Option("hmac-sha256", help="hmac-sha256 or ed25519."),
) -> None:
    """Write a new signing key (mode 0600); Ed25519 also writes PATH.pub."""
    from models.signing import generate_key_files

    if scheme not in ("hmac-sha256", "ed25519"):
        raise _fail(f"unknown scheme {scheme!r}")
    try:
        written = generate_key_files(path, "ed25519" if scheme == "ed25519" else "hmac-sha256")
    except FileExistsError as exc:
        raise _fail(str(exc)) from None
    for file in written:
        console.print(f"wrote {file}")
    if scheme == "ed25519":
        console.print(
            f"trainer: STREAMSCORE_REGISTRY__SIGNATURE_SCHEME=ed25519 "
            f"STREAMSCORE_REGISTRY__SIGNING_KEY_FILE={path}\n"
            f"workers: STREAMSCORE_REGISTRY__SIGNATURE_SCHEME=ed25519 "
            f"STREAMSCORE_REGISTRY__VERIFY_KEY_FILE={written[1]}"
        )
    else:
        console.print(f"set STREAMSCORE_REGISTRY__SIGNING_KEY_FILE={path} for trainer and workers")


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
    from models.trainer import LabeledData, TrainerConfig, train_candidate
    from models.training_data import WARMUP, featurize, join_features, labeled_frame
    from producers.frames import load_transactions
    from producers.simulation.emit import parse_duration
    from streams.trainer_report import epoch_progress, run_summary

    _quiet_exporter()
    settings = _settings()
    registry = _registry(settings)
    contract = _contract(settings)
    first, last = _date(start), _date(end)
    frame = load_transactions(file, None if first is None else first - WARMUP, last)
    if frame.empty:
        raise _fail("no transactions in that window")
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
        published = registry.publish(run.model, run.manifest_fields)
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
    _notify(updates, notify)


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
    settings = _settings()
    streams = StreamsSettings()
    registry = _registry(settings)
    if registry.signer is None:
        raise _fail("the trainer needs a signing key (it publishes models)", 2)
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

    with kafka_connection(streams) as conn, epoch_progress(console, config.epochs) as callbacks:
        service = TrainerService(
            conn=conn,
            examples_topic=streams.topics.labeled_examples.name,
            updates_topic=streams.topics.model_updates.name,
            registry=registry,
            registry_uri=settings.registry.uri,
            contract=_contract(settings),
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
