"""The `streamscore` command: each subcommand parses, builds settings, calls one function."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from streams import logs
from streams.settings import StreamsSettings

console = Console(stderr=False)
app = typer.Typer(
    name="streamscore",
    help="Real-time fraud-style scoring with online learning on Kafka.",
    no_args_is_help=True,
    add_completion=False,
)
topics_app = typer.Typer(help="Manage the topics the system uses.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schemas of the events on the wire.", no_args_is_help=True)
settings_app = typer.Typer(help="Inspect settings (environment variables).", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(settings_app, name="settings")


@app.callback()
def _main(
    log_level: str = typer.Option("INFO", help="Log level (DEBUG, INFO, WARNING...)."),
    json_logs: bool = typer.Option(True, help="JSON log lines on stderr."),
) -> None:
    logs.configure(log_level.upper(), json_logs)


@app.command()
def broker() -> None:
    """Run the embedded Kafka-protocol broker in the foreground until interrupted.

    Prints `bootstrap: HOST:PORT` once the broker answers a metadata request.
    """
    from streams.broker import EmbeddedBroker
    from streams.runtime import broker_config

    settings = StreamsSettings()
    embedded = EmbeddedBroker(broker_config(settings.broker))
    signal.signal(signal.SIGTERM, lambda *_: embedded.stop())
    try:
        embedded.start()
        print(f"bootstrap: {embedded.bootstrap}", flush=True)
        code = embedded.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        embedded.stop()
    raise typer.Exit(code if code > 0 else 0)


@app.command()
def worker(
    faust_log_level: str = typer.Option("WARNING", help="Log level of Faust's own loggers."),
) -> None:
    """Run a stream worker (ingest, features, scoring) until interrupted.

    Uses STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS, or starts an embedded broker and prints
    its address. Run several to scale out: partitions are shared among them.
    """
    from streams.worker import run_worker

    run_worker(StreamsSettings(), log_level=faust_log_level.upper())


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic the system uses (idempotent)."""
    from streams.runtime import kafka_connection
    from streams.topics import create_topics, topic_specs

    settings = StreamsSettings()
    if not settings.kafka.bootstrap_servers:
        console.print(
            "[yellow]no STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS set: creating topics on a "
            "temporary embedded broker (its data ends with this command)[/yellow]"
        )
    with kafka_connection(settings) as conn:
        results = create_topics(conn, topic_specs(settings.topics))
    table = Table("topic", "partitions", "config", "status")
    for r in results:
        cfg = ",".join(f"{k}={v}" for k, v in r.spec.config.items()) or "-"
        table.add_row(r.spec.name, str(r.partitions), cfg, r.status)
    console.print(table)


@schemas_app.command("export")
def schemas_export(
    out: Path = typer.Option(Path("docs/schemas"), help="Directory to write into."),
    check: bool = typer.Option(False, help="Only check that the files are current."),
) -> None:
    """Write the JSON Schema of every event type."""
    from streams.schemas import export_schemas, stale_schemas

    if check:
        stale = stale_schemas(out)
        if stale:
            console.print(f"stale schemas: {', '.join(stale)}")
            raise typer.Exit(1)
        console.print("schemas are current")
        return
    for path in export_schemas(out):
        console.print(f"wrote {path}")


@settings_app.command("docs")
def settings_docs(
    readme: Path = typer.Option(Path("README.md"), help="README to update."),
    check: bool = typer.Option(False, help="Only check that the table is current."),
) -> None:
    """Regenerate the README's environment-variable table from the settings docstrings."""
    from streams.settings_docs import update_readme

    changed = update_readme(readme, check=check)
    if check and changed:
        console.print("README settings table is stale: run `streamscore settings docs`")
        raise typer.Exit(1)
    console.print("README settings table " + ("updated" if changed else "is current"))


@settings_app.command("show")
def settings_show() -> None:
    """Print the effective settings (secrets masked)."""
    from models.settings import ModelsSettings
    from producers.settings import ProducersSettings

    for cls in (StreamsSettings, ModelsSettings, ProducersSettings):
        console.print_json(cls().model_dump_json())


def main() -> None:
    """Entry point of the `streamscore` console script."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
