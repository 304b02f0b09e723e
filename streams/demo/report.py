"""The end of a demo: a one-screen summary on the terminal and a report directory.

``reports/demo-<timestamp>/`` holds ``summary.md``, one PNG chart per panel
(throughput, latency, quality, decisions, models) and ``overview.png`` with all of
them over event time, ``dashboard.png`` (the dashboard when the run ended) and the
processes' logs under ``logs/``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streams.demo.charts import write_charts
from streams.demo.dashboard import render
from streams.demo.run import DemoRun
from streams.demo.screenshot import save_png
from streams.demo.summary import Summary, daily, lines, markdown, summarize


def write_report(run: DemoRun) -> tuple[Summary, list[tuple[str, str]]]:
    """Write the report directory of ``run``; return its summary and the summary rows."""
    out = run.report_dir
    out.mkdir(parents=True, exist_ok=True)
    state = run.state
    summary = summarize(state)
    rows = lines(summary, run.ended, run.wall_s, state.view(time.monotonic()).stream_day)
    view = run.last_view or state.view(time.monotonic())
    save_png(render(view, run.stream.source, run.stream.drifts), out / "dashboard.png")
    train_days = run.config.first_model_days if run.first_model else None
    charts = write_charts(out, state, daily(state), train_days)
    context = [
        f"stream: {run.stream.source}",
        "scripted drift: " + ("; ".join(run.stream.drifts) or "none"),
        f"labels published {run.config.label_delay} after their transaction; "
        f"target rate {run.config.rate:,.0f} transactions/s",
        f"first model: {run.first_model or 'none'}"
        + (f", trained on the first {train_days} days" if train_days else ""),
    ]
    images = ["dashboard.png", "overview.png"] + [p.name for p in charts[:-1]]
    title = f"streamscore demo, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    (out / "summary.md").write_text(markdown(title, context, rows, images), encoding="utf-8")
    return summary, rows


def print_summary(console: Console, run: DemoRun, rows: list[tuple[str, str]]) -> None:
    """The summary on one screen, and where the report is."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    table.add_row("report", Text(str(run.report_dir), style="bold"))
    style = "red" if run.failed else "green"
    console.print(Panel(table, title="[bold]demo summary[/bold]", border_style=style))
