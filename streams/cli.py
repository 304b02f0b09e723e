"""The `streamscore` command: each subcommand parses, builds settings, calls one function."""

from __future__ import annotations

import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from streams import logs
from streams.cli_bench import bench
from streams.cli_models import models_app
from streams.cli_train import train, trainer
from streams.settings import StreamsSettings

console = Console(stderr=False)
app = typer.Typer(
    name="streamscore",
    help="Real-time fraud-style scoring with online learning on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    # Local variables may hold secrets (client keyword arguments): never print them.
    pretty_exceptions_show_locals=False,
)
topics_app = typer.Typer(help="Manage the topics the system uses.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schemas of the events on the wire.", no_args_is_help=True)
settings_app = typer.Typer(help="Inspect settings (environment variables).", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(settings_app, name="settings")
grafana_app = typer.Typer(help="Grafana dashboards: generate and upload.", no_args_is_help=True)
app.add_typer(grafana_app, name="grafana")


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
    # Both end the wait below with KeyboardInterrupt, and the broker stops in `finally`
    # (stopping it inside the handler would reap the child under the wait's own lock).
    # SIGINT is set explicitly: a shell that starts the command in the background
    # without job control leaves it ignored, and an ignored signal is inherited.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.default_int_handler)
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


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _speed(text: str | None, as_fast_as_possible: bool) -> float | None:
    if as_fast_as_possible or text is None:
        return None
    return float(text.lower().removesuffix("x"))


@app.command()
def replay(
    file: Path = typer.Argument(..., help="Transactions file (.parquet or .csv)."),
    speed: str = typer.Option("1000x", help="Event seconds per wall second, e.g. 1000x."),
    max_speed: bool = typer.Option(False, "--max", help="As fast as the broker takes it."),
    label_delay: str = typer.Option(
        None, help="Label delay spec (7d, 1d..14d, 5d+exp:1d). Default: settings."
    ),
    start: str = typer.Option(None, "--from", help="First event time (ISO date, UTC)."),
    end: str = typer.Option(None, "--to", help="Events before this time (ISO date, UTC)."),
    seed: int = typer.Option(0, help="Seed of random label delays."),
) -> None:
    """Publish a transactions file in event-time order, with delayed labels."""
    import asyncio

    from producers.replay import ReplayConfig
    from producers.replay import replay as run_replay
    from producers.settings import ProducersSettings
    from streams.exporter import serve_metrics
    from streams.progress import progress_bars
    from streams.runtime import kafka_connection

    settings = StreamsSettings()
    producers = ProducersSettings()
    _warn_if_embedded(settings, "the replayed data ends with this command")
    config = ReplayConfig(
        transactions_topic=settings.topics.transactions.name,
        labels_topic=settings.topics.labels.name,
        label_delay=label_delay or producers.replay.label_delay,
        seed=seed,
        speed=_speed(speed, max_speed),
        start=_date(start),
        end=_date(end),
        linger_ms=producers.replay.linger_ms,
    )
    serve_metrics(settings.metrics)  # metrics: the producer's /metrics endpoint
    with kafka_connection(settings) as conn, progress_bars() as update:
        summary = asyncio.run(
            run_replay(conn, file, config, progress=lambda i, n: update("replay", i, n))
        )
    console.print(
        f"replay: transactions={summary.transactions} labels={summary.labels} "
        f"wall_s={summary.wall_s:.1f} msgs_per_s={summary.messages_per_s:,.0f}"
    )


@app.command()
def simulate(
    days: int = typer.Option(183, help="Length of the stream in days."),
    seed: int = typer.Option(0, help="Seed of every random draw."),
    drift: list[str] = typer.Option(
        None, help="Scripted change, repeatable: KIND@day=N[,key=value...]."
    ),
    label_delay: str = typer.Option("7d", help="Label delay spec (7d, 1d..14d, 5d+exp:1d)."),
    customers: int = typer.Option(5000, help="Number of customers."),
    terminals: int = typer.Option(10000, help="Number of terminals."),
    speed: str = typer.Option("1000x", help="Event seconds per wall second, e.g. 1000x."),
    max_speed: bool = typer.Option(False, "--max", help="As fast as the broker takes it."),
    out: Path = typer.Option(None, help="Write a Parquet file instead of publishing."),
) -> None:
    """Generate a synthetic card-transaction stream (seeded) and publish it with labels."""
    import asyncio

    from producers.frames import normalize
    from producers.replay import ReplayConfig
    from producers.replay import replay as run_replay
    from producers.simulation import SimulationConfig, parse_drifts, simulate_frame
    from streams.exporter import serve_metrics
    from streams.progress import progress_bars
    from streams.runtime import kafka_connection

    config = SimulationConfig(
        n_customers=customers,
        n_terminals=terminals,
        days=days,
        seed=seed,
        drifts=parse_drifts(drift or []),
    )
    frame = simulate_frame(config)
    if out is not None:
        frame.to_parquet(out)
        console.print(f"simulate: wrote {len(frame)} transactions to {out}")
        return
    settings = StreamsSettings()
    _warn_if_embedded(settings, "the generated data ends with this command")
    replay_config = ReplayConfig(
        transactions_topic=settings.topics.transactions.name,
        labels_topic=settings.topics.labels.name,
        label_delay=label_delay,
        seed=seed,
        speed=_speed(speed, max_speed),
    )
    serve_metrics(settings.metrics)  # metrics: the producer's /metrics endpoint
    with kafka_connection(settings) as conn, progress_bars() as update:
        summary = asyncio.run(
            run_replay(
                conn,
                normalize(frame),
                replay_config,
                progress=lambda i, n: update("simulate", i, n),
            )
        )
    console.print(
        f"simulate: transactions={summary.transactions} labels={summary.labels} "
        f"wall_s={summary.wall_s:.1f} msgs_per_s={summary.messages_per_s:,.0f}"
    )


@app.command()
def parity(
    file: Path = typer.Option(None, help="Transactions file. Default: the handbook's."),
    reference: Path = typer.Option(None, help="Reference features. Default: the handbook's."),
    start: str = typer.Option(None, "--from", help="First event time compared (ISO date, UTC)."),
    end: str = typer.Option(None, "--to", help="Compare events before this time (ISO date)."),
    log_dir: Path = typer.Option(Path("var/parity"), help="Where worker logs go."),
) -> None:
    """Replay through broker and worker, compare features with the reference.

    Ends with the line `parity: <fraction of transactions whose features all match>`.
    """
    from producers.settings import ProducersSettings
    from streams.parity import run_parity

    settings = StreamsSettings()
    handbook = ProducersSettings().replay.handbook_dir
    report = run_parity(
        settings,
        file or handbook / "transactions.parquet",
        reference or handbook / "reference_features.parquet",
        _date(start),
        _date(end),
        log_dir=log_dir,
        console=console,
    )
    raise typer.Exit(0 if report.accounted else 1)


@app.command()
def backtest(
    file: Path = typer.Argument(..., help="Transactions file (.parquet or .csv) with labels."),
    out: Path = typer.Option(..., help="Parquet file for every prediction read back."),
    start: str = typer.Option(None, "--from", help="First event time replayed (ISO date, UTC)."),
    end: str = typer.Option(None, "--to", help="Events before this time (ISO date, UTC)."),
    train_days: int = typer.Option(28, help="Days at the start used for the first model."),
    label_delay: str = typer.Option("7d", help="Label delay spec of the replay."),
    trainer: bool = typer.Option(False, help="Also run the batch trainer during the replay."),
    log_dir: Path = typer.Option(Path("var/backtest"), help="Where process logs go."),
) -> None:
    """Run the whole system on history and write every prediction to a Parquet file.

    Broker (embedded unless configured), topics, a first model trained on the earliest
    weeks, worker, online learner (and trainer), replay with delayed labels.
    """
    from streams.backtest import BacktestConfig, run_backtest
    from streams.progress import progress_bars
    from streams.runtime import kafka_connection

    settings = StreamsSettings()
    config = BacktestConfig(
        file=file,
        out=out,
        start=_date(start),
        end=_date(end),
        train_days=train_days,
        label_delay=label_delay,
        trainer=trainer,
        log_dir=log_dir,
    )
    with kafka_connection(settings) as conn, progress_bars() as update:
        result = run_backtest(settings, conn, config, on_progress=update)
    acc = result.accounting
    console.print(
        f"backtest: predictions={len(result.predictions)} transactions={len(acc.expected)} "
        f"missing={len(acc.missing)} duplicates={acc.duplicates} "
        f"dead_letters={sum(acc.dead.values())} first_model={result.first_model} out={out}"
    )
    console.print(result.lifecycle_line())


@app.command()
def evaluate(
    predictions: Path = typer.Option(
        None, help="A backtest's predictions file. Default: read the predictions topic."
    ),
    file: Path = typer.Option(
        None, help="With --predictions: the transactions file it replayed (for the labels)."
    ),
    score: str = typer.Option(
        "score",
        help="Which recorded score: score (the blend, used for decisions), deep_score, "
        "online_score or challenger_score.",
    ),
) -> None:
    """Evaluate predictions like the handbook: AUC, AP and card precision@100.

    Over the handbook's four test weeks, known-compromised cards left out, printed
    beside the published table. Ends with `evaluate: auc=<x> ap=<x> cp100=<x>`.
    """
    columns = ("score", "deep_score", "online_score", "challenger_score")
    if score not in columns:
        console.print(f"[red]--score must be one of {', '.join(columns)}[/red]")
        raise typer.Exit(2)
    from models.evaluation import handbook_report
    from streams.evaluate import first_scores, read_from_broker, read_from_files
    from streams.runtime import kafka_connection

    if predictions is not None:
        if file is None:
            console.print("[red]--predictions needs --file (the labels come from it)[/red]")
            raise typer.Exit(2)
        scored, labeled = read_from_files(predictions, file)
    else:
        settings = StreamsSettings()
        if not settings.kafka.bootstrap_servers:
            console.print(
                "[red]set STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS (the embedded broker a "
                "command starts is empty), or pass --predictions and --file[/red]"
            )
            raise typer.Exit(2)
        with kafka_connection(settings) as conn:
            scored, labeled = read_from_broker(
                conn, settings.topics.predictions.name, settings.topics.labels.name
            )
    if score != "score":
        if score not in scored or scored[score].isna().all():
            console.print(f"[red]the predictions record no {score}[/red]")
            raise typer.Exit(1)
        # Rows without that score (e.g. before the first model) stay out of the ranking.
        scored = scored[scored[score].notna()].assign(score=lambda f: f[score])
    try:
        report = handbook_report(first_scores(scored), labeled)
    except ValueError as exc:
        console.print(f"[red]cannot evaluate: {exc}[/red]")
        raise typer.Exit(1) from None
    print(report.render())


@app.command()
def demo(
    file: Path = typer.Option(None, help="Replay this transactions file instead of simulating."),
    days: int = typer.Option(30, help="Event days played (of the simulation or the file)."),
    customers: int = typer.Option(1500, help="Customers of the simulated world."),
    terminals: int = typer.Option(3000, help="Terminals of the simulated world."),
    seed: int = typer.Option(0, help="Seed of the simulated world."),
    drift: list[str] = typer.Option(
        None, help="Scripted drift, repeatable (KIND@day=N,...). Default: a new pattern mid-way."
    ),
    rate: float = typer.Option(700.0, help="Transactions published per second."),
    label_delay: str = typer.Option("2d", help="Labels are published this much later."),
    train_days: int = typer.Option(None, help="Days the first model learns from (default: 1/3)."),
    bad_every: int = typer.Option(1000, help="One malformed message per N transactions (0: none)."),
    out: Path = typer.Option(Path("reports"), help="Where demo-<timestamp>/ reports go."),
    headless: bool = typer.Option(
        None, help="Status lines instead of the live dashboard. Default: when not a terminal."
    ),
) -> None:
    """Run the whole system with a live dashboard; write a report when it ends or on Ctrl-C.

    Embedded broker (unless configured), topics, a first model, worker, online learner
    and trainer; a simulated stream with a drift half-way (or FILE replayed). The report
    (summary.md, charts, logs) goes to OUT/demo-<timestamp>/.
    """
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        console.print(
            "[red]the demo's report needs the `demo` extra: pip install -e '.[demo]' "
            "(`make demo` installs it)[/red]"
        )
        raise typer.Exit(2)
    from streams.demo import DemoConfig, run_demo
    from streams.demo.report import print_summary, write_report
    from streams.demo.summary import summary_line

    config = DemoConfig(
        days=days,
        file=file,
        customers=customers,
        terminals=terminals,
        seed=seed,
        drifts=tuple(drift) if drift else None,
        train_days=train_days,
        rate=rate,
        label_delay=label_delay,
        bad_every=bad_every,
        out_dir=out,
        headless=(not console.is_terminal) if headless is None else headless,
    )
    try:
        run = run_demo(config, StreamsSettings(), console)
    except KeyboardInterrupt:  # before anything started: nothing to stop or report
        console.print("demo: interrupted before the stream was built")
        raise typer.Exit(130) from None
    with console.status("writing the report..."):
        summary, rows = write_report(run)
    print_summary(console, run, rows)
    print(summary_line(summary, str(run.report_dir)), flush=True)
    raise typer.Exit(1 if run.failed else 0)


@app.command()
def chaos(
    quick: bool = typer.Option(False, "--quick", help="The quick set (CI): small runs."),
    seeds: int = typer.Option(None, help="Seeds per scenario. Default: 1 quick, 20 long."),
    first_seed: int = typer.Option(0, help="First seed (seeds are consecutive)."),
    only: str = typer.Option(
        None, help="Comma-separated scenario names (kill,term,...; poison-100k, soak, soak-full)."
    ),
    out: Path = typer.Option(Path("reports/chaos"), help="Where reports, truth and logs go."),
    s3_endpoint: str = typer.Option(
        None, help="S3-compatible server for broker-restart runs. Default: a local moto_server."
    ),
) -> None:
    """Run the fault harness: workloads under faults, verified by id and sequence.

    Each run gets a fresh embedded broker (unless one is configured), its own topics,
    workers and learner; broker-restart runs get an embedded broker on S3 storage
    (a local moto_server unless --s3-endpoint is given). Ends with the line
    `chaos: missing=<n> duplicates=<n> state_violations=<n> relearned=<n>`.
    """
    import asyncio

    from streams.chaos.runner import RunResult, run_scenario
    from streams.chaos.s3broker import NoS3Store, s3_broker, s3_store
    from streams.chaos.suite import (
        BROKER_FAULTS,
        LONG,
        NAMED_ONLY,
        QUICK,
        ZERO_COUNTS,
        summary,
        table,
        to_json,
        totals,
    )
    from streams.kafka import KafkaConnection
    from streams.progress import progress_bars
    from streams.runtime import kafka_connection

    settings = StreamsSettings()
    scenarios = QUICK if quick else LONG
    if only:
        names = {n.strip() for n in only.split(",") if n.strip()}
        pool = scenarios if quick else (*scenarios, *NAMED_ONLY)
        unknown = names - {s.name for s in pool}
        if unknown:
            console.print(f"[red]unknown scenarios: {', '.join(sorted(unknown))}[/red]")
            raise typer.Exit(2)
        scenarios = tuple(s for s in pool if s.name in names)
    n_seeds = seeds if seeds is not None else (1 if quick else 20)
    out.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    not_run: list[str] = []
    with progress_bars() as update:
        for scenario in scenarios:
            for seed in range(first_seed, first_seed + n_seeds):
                run_dir = out / f"{scenario.name}-{seed}"
                if scenario.fault in BROKER_FAULTS:
                    try:
                        with (
                            s3_store(s3_endpoint) as endpoint,
                            s3_broker(endpoint, run_dir / "broker.log") as broker,
                        ):
                            conn = KafkaConnection.from_settings(
                                settings.kafka, broker.bootstrap, embedded=True
                            )
                            result = asyncio.run(
                                run_scenario(
                                    settings,
                                    conn,
                                    scenario,
                                    seed,
                                    run_dir,
                                    progress=update,
                                    broker=broker,
                                )
                            )
                    except NoS3Store as exc:
                        not_run.append(f"{scenario.name}: not run ({exc})")
                        break
                else:
                    with kafka_connection(settings) as conn:
                        result = asyncio.run(
                            run_scenario(settings, conn, scenario, seed, run_dir, progress=update)
                        )
                results.append(result)
                c = result.counts
                console.print(
                    f"{scenario.name} seed={seed}: inputs={c.inputs} poison={c.poison} "
                    f"{c.line()} order_violations={c.order_violations} "
                    f"misrouted={c.misrouted} learned={c.learned}/{c.labeled} "
                    f"recovery_s={[round(s, 1) for s in result.recovery_s]} "
                    f"wall={result.wall_s:.0f}s"
                )
                (out / "results.json").write_text(to_json(results), encoding="utf-8")
    report = table(results) + "\n\n" + summary(results) + "\n"
    for r in results:
        if r.trends is not None:
            report += f"\nTrends, {r.scenario.name} seed {r.seed}:\n\n{r.trends.table()}\n"
    (out / "report.md").write_text(report, encoding="utf-8")
    console.print(report)
    for line in not_run:
        console.print(f"[yellow]{line}[/yellow]")
    total = totals(r.counts for r in results)
    print(f"chaos: {total.line()}")
    raise typer.Exit(0 if all(getattr(total, n) == 0 for n in ZERO_COUNTS) else 1)


def _warn_if_embedded(settings: StreamsSettings, what: str) -> None:
    if not settings.kafka.bootstrap_servers:
        console.print(
            "[yellow]no STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS set: using a temporary embedded "
            f"broker ({what})[/yellow]"
        )


@app.command()
def learner() -> None:
    """Run the online learner: learn from `labeled-examples`, publish signed snapshots.

    One per deployment. Restarts from its checkpoint without learning a label twice.
    """
    import asyncio

    from models.features import FEATURE_NAMES
    from models.settings import ModelsSettings
    from models.signing import load_keys
    from streams.learner import LearnerConfig
    from streams.learner_service import LearnerServiceConfig, run_learner
    from streams.runtime import kafka_connection
    from streams.topics import create_topics, topic_specs

    settings = StreamsSettings()
    topics, lrn = settings.topics, settings.learner
    registry = ModelsSettings().registry
    signer, verifier = load_keys(registry, Path(registry.uri.removeprefix("file://")))
    if signer is None:
        console.print("[red]the learner signs snapshots: it needs the signing key[/red]")
        raise typer.Exit(2)
    from streams import metrics
    from streams.exporter import serve_metrics

    metrics.init_learner_series()
    serve_metrics(settings.metrics)  # metrics: the learner's /metrics endpoint
    with kafka_connection(settings) as conn:
        create_topics(conn, topic_specs(topics))
        training = asyncio.run(
            run_learner(
                conn,
                LearnerServiceConfig(
                    labeled_examples_topic=topics.labeled_examples.name,
                    model_updates_topic=topics.model_updates.name,
                    drift_events_topic=topics.drift_events.name,
                    checkpoint=lrn.checkpoint,
                    snapshot_every=lrn.snapshot_every,
                    snapshot_interval_s=lrn.snapshot_interval_s,
                    request_retrain_on_drift=lrn.request_retrain_on_drift,
                ),
                signer,
                verifier,
                LearnerConfig(
                    feature_names=tuple(FEATURE_NAMES),
                    learning_rate=lrn.learning_rate,
                    l2=lrn.l2,
                    positive_weight=lrn.positive_weight,
                    genuine_sample=lrn.genuine_sample,
                ),
            )
        )
    console.print(
        f"learner: learned={training.counts['learned']} repeated={training.counts['repeated']}"
    )


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


@grafana_app.command("push")
def grafana_push(
    url: str = typer.Option(None, help="Grafana base URL. Default: STREAMSCORE_GRAFANA__URL."),
    directory: Path = typer.Option(None, "--dir", help="Dashboard JSON directory."),
    prometheus_url: str = typer.Option(
        None, help="Also create or update the Prometheus datasource with this URL."
    ),
) -> None:
    """Upload the dashboards to a running Grafana (idempotent: overwrite by uid).

    Credentials: STREAMSCORE_GRAFANA__TOKEN, or STREAMSCORE_GRAFANA__USER with
    STREAMSCORE_GRAFANA__PASSWORD (or __PASSWORD_FILE).
    """
    from grafana_client.client import GrafanaException

    from streams.grafana_push import connect, load_dashboards, push

    grafana = StreamsSettings().grafana
    dashboards = load_dashboards(directory or grafana.dashboards_dir)
    api = connect(grafana, url)
    try:
        result = push(api, dashboards, grafana.folder_uid, grafana.folder_title, prometheus_url)
    except GrafanaException as exc:
        console.print(f"[red]grafana push failed: HTTP {exc.status_code}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"grafana: folder={grafana.folder_uid} "
        f"({'created' if result.folder_created else 'exists'}) "
        f"dashboards={','.join(result.dashboards)}"
        + (f" datasource={result.datasource}" if result.datasource else "")
    )


@grafana_app.command("generate")
def grafana_generate(
    out: Path = typer.Option(Path("grafana/dashboards"), help="Directory to write into."),
    check: bool = typer.Option(False, help="Only check that the files are current."),
) -> None:
    """Regenerate the dashboard JSON from streams/dashboards.py (needs the dev extra)."""
    from streams.dashboards import stale, write

    if check:
        names = stale(out)
        if names:
            console.print(f"stale dashboards: {', '.join(names)}")
            raise typer.Exit(1)
        console.print("dashboards are current")
        return
    for path in write(out):
        console.print(f"wrote {path}")


app.command()(train)
app.command()(bench)
app.command()(trainer)
app.add_typer(models_app, name="models")


def main() -> None:
    """Entry point of the `streamscore` console script."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
