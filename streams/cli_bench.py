"""``streamscore bench``: the benchmark harness behind one command.

The harness (:mod:`streams.bench`) is imported only when the command runs: it pulls in
pandas, the producers and, for the scoring engines, torch, none of which the serving
commands need.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console

from streams.settings import StreamsSettings

console = Console(stderr=True)


def bench(
    quick: bool = typer.Option(
        False, "--quick", help="A short run (about two minutes on 2 cores)."
    ),
    out: Path = typer.Option(
        Path("docs/benchmarks.md"), help="Markdown file the run's section is appended to."
    ),
    record: bool = typer.Option(
        True, "--record/--no-record", help="Append the run to --out (off: print only)."
    ),
    work_dir: Path = typer.Option(
        Path("var/bench"), help="Trained model, logs and profiles (reused across runs)."
    ),
    data: Path = typer.Option(
        None, help="Transactions file. Default: the handbook's, else a synthetic stream."
    ),
    synthetic: bool = typer.Option(
        False, "--synthetic", help="Use the seeded synthetic stream even where the handbook is."
    ),
    sections: str = typer.Option(
        None,
        help="Comma-separated subset of: throughput, scaling, profile, latency, replay, engines.",
    ),
    transactions: int = typer.Option(None, help="Transactions in the throughput backlog."),
    replay_rows: int = typer.Option(
        None, help="Replay only the first N rows (0: the whole file). Default: by mode."
    ),
    latency_seconds: float = typer.Option(
        None, help="Seconds each latency rate is offered. Default: by mode."
    ),
    cprofile: bool = typer.Option(False, help="Also run the stages under cProfile."),
    note: str = typer.Option(
        "", help="Recorded with the conditions (e.g. 'machine shared with other work')."
    ),
) -> None:
    """Measure throughput, latency, replay time, scaling and scoring engines.

    Prints each table, appends them with the run's conditions to `--out`, and ends
    with `bench: pipeline_eps=<n> forward_eps=<n> raw_eps=<n> p99_ms_at_5k=<x>
    replay_s=<x>` (p99 excluding broker hops).
    """
    from producers.settings import ProducersSettings
    from streams.bench.run import SECTIONS, BenchConfig, run_bench

    source: Path | None = data
    if synthetic:
        source = None
    elif source is None:
        handbook = ProducersSettings().replay.handbook_dir / "transactions.parquet"
        source = handbook if handbook.exists() else None
    elif not source.exists():
        console.print(f"[red]no such file: {source}[/red]")
        raise typer.Exit(2)
    config = BenchConfig.for_mode(quick, out if record else None, work_dir, source)
    if sections:
        chosen = tuple(s.strip() for s in sections.split(",") if s.strip())
        unknown = [s for s in chosen if s not in SECTIONS]
        if unknown:
            console.print(f"[red]unknown sections: {', '.join(unknown)}[/red]")
            raise typer.Exit(2)
        config = replace(config, sections=chosen)
    if transactions is not None:
        config = replace(config, transactions=transactions)
    if replay_rows is not None:
        config = replace(config, replay_rows=replay_rows or None)
    if latency_seconds is not None:
        config = replace(config, latency_s=latency_seconds)
    config = replace(config, cprofile=cprofile, note=note)
    outcome = run_bench(config, StreamsSettings(), say=lambda text: print(text, flush=True))
    print(outcome.summary(), flush=True)
