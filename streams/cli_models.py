"""``streamscore models list|show|promote|rollback|retrain|keygen``: the registry for people.

Each command builds settings, opens the registry with the configured keys and calls
one function; promote, rollback and retrain also tell workers through the
``model-updates`` topic (unless ``--no-notify``, or no broker is configured).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from models.registry import Registry
    from models.settings import ModelsSettings
    from models.verify import FeatureContract
    from streams.events import ModelUpdate

console = Console()
models_app = typer.Typer(
    help="The model registry: list, inspect, promote, roll back, keys.", no_args_is_help=True
)


def models_settings() -> ModelsSettings:
    from models.settings import ModelsSettings

    return ModelsSettings()


def open_registry(settings: ModelsSettings) -> Registry:
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


def worker_contract(settings: ModelsSettings) -> FeatureContract:
    """The feature contract of the stream workers (feature set and column order)."""
    from models.features import FEATURE_NAMES
    from models.verify import FeatureContract
    from streams.terminal import FEATURE_SET

    return FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES), settings.registry.model_name)


def notify_workers(updates: list[ModelUpdate], notify: bool) -> None:
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


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


@models_app.command("list")
def models_list() -> None:
    """List published models, oldest first, marking champion and previous."""
    from streams.trainer_report import manifests_table

    registry = open_registry(models_settings())
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

    settings = models_settings()
    registry = open_registry(settings)
    chosen = version or registry.pointers().champion
    if chosen is None:
        raise fail("no champion yet: name a version")
    version = chosen
    try:
        signed = registry.get(version)
    except RegistryError as exc:
        raise fail(str(exc)) from None
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
            verified = verify_version(version, registry, worker_contract(settings), options)
        except Rejected as exc:
            raise fail(f"rejected: {exc}") from None
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

    settings = models_settings()
    registry = open_registry(settings)
    try:
        pointers = registry.promote(version)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    console.print(f"champion: {pointers.champion} (previous: {pointers.previous})")
    update = update_for(
        registry,
        ModelUpdateAction.PROMOTE,
        version,
        uri=settings.registry.uri,
        reason="operator",
    )
    notify_workers([update], notify)


@models_app.command("rollback")
def models_rollback(
    notify: bool = typer.Option(True, help="Send a `rollback` update to the workers."),
) -> None:
    """Withdraw the champion: the champion before it serves again."""
    from models.registry import RegistryError
    from streams.events import ModelUpdateAction
    from streams.model_updates import update_for

    settings = models_settings()
    registry = open_registry(settings)
    try:
        before = registry.pointers().champion
        pointers = registry.rollback()
    except RegistryError as exc:
        raise fail(str(exc)) from None
    assert pointers.champion is not None
    console.print(f"champion: {pointers.champion} (withdrawn: {before})")
    update = update_for(
        registry,
        ModelUpdateAction.ROLLBACK,
        pointers.champion,
        uri=settings.registry.uri,
        reason=f"operator withdrew {before}",
    )
    notify_workers([update], notify)


@models_app.command("retrain")
def models_retrain(
    reason: str = typer.Option("operator", help="Why (recorded on the request)."),
) -> None:
    """Ask the trainer process to train now (a `retrain_request` on model-updates)."""
    from streams.events import ModelUpdate, ModelUpdateAction

    settings = models_settings()
    update = ModelUpdate(
        model_name=settings.registry.model_name,
        action=ModelUpdateAction.RETRAIN_REQUEST,
        reason=reason[:512],
        issued_time=datetime.now(UTC),
    )
    notify_workers([update], True)


@models_app.command("keygen")
def models_keygen(
    path: Path = typer.Argument(..., help="Key file to write (never overwritten)."),
    scheme: str = typer.Option("hmac-sha256", help="hmac-sha256 or ed25519."),
) -> None:
    """Write a new signing key (mode 0600); Ed25519 also writes PATH.pub."""
    from models.signing import generate_key_files

    if scheme not in ("hmac-sha256", "ed25519"):
        raise fail(f"unknown scheme {scheme!r}")
    try:
        written = generate_key_files(path, "ed25519" if scheme == "ed25519" else "hmac-sha256")
    except FileExistsError as exc:
        raise fail(str(exc)) from None
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
