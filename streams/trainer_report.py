"""What people see of a training run: live epoch progress and a one-screen summary."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from models.manifest import Manifest
from models.nets import EpochCallback
from models.trainer import TrainingRun

__all__ = ["epoch_progress", "manifests_table", "run_summary"]


@contextmanager
def epoch_progress(
    console: Console, max_epochs: int
) -> Iterator[tuple[EpochCallback, Callable[[str], None]]]:
    """Yield ``(on_epoch, on_phase)`` callbacks that drive a progress display."""
    progress = Progress(
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    state: dict[str, TaskID] = {}

    def on_phase(name: str) -> None:
        if name == "train":
            state["task"] = progress.add_task("epochs", total=max_epochs, losses="")
        else:
            console.log(f"{name}...")

    def on_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
        task = state.get("task")
        if task is None:
            task = state["task"] = progress.add_task("epochs", total=max_epochs, losses="")
        progress.update(
            task, completed=epoch + 1, losses=f"loss {train_loss:.4f}  val {val_loss:.4f}"
        )

    with progress:
        yield on_epoch, on_phase


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def run_summary(
    run: TrainingRun,
    *,
    published: Manifest | None,
    promoted: bool = False,
    champion_note: str | None = None,
    trigger: str | None = None,
) -> Panel:
    """One screen about a run: data, learning curve, metrics vs champion, decision."""
    window = run.manifest_fields["training_window"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("version", run.version + (f"  (trigger: {trigger})" if trigger else ""))
    head.add_row("parent", run.parent_version or champion_note or "-")
    finetune = run.mode == "finetune"
    head.add_row(
        "window",
        f"{_day(window['start'])} .. {_day(window['end'])}, "
        + (
            f"fine-tuned from {run.parent_version}, nothing held out"
            if finetune
            else f"held out from {_day(window['eval_start'])}"
        ),
    )
    head.add_row(
        "examples",
        f"{run.n_train:,} train, {run.n_eval:,} held out, "
        f"{window['positives']:,} frauds ({window['positives'] / max(window['examples'], 1):.2%})",
    )
    last = run.history[-1] if run.history else (math.nan, math.nan)
    best = run.history[run.best_epoch] if run.history else (math.nan, math.nan)
    head.add_row(
        "epochs",
        f"{len(run.history)} run, newest rows' loss {last[1]:.4f} (in-sample)"
        if finetune
        else f"{len(run.history)} run, best {run.best_epoch + 1}: val loss {best[1]:.4f} "
        f"(last: loss {last[0]:.4f}, val {last[1]:.4f})",
    )
    head.add_row(
        "time",
        ", ".join(f"{k} {v:.1f}s" for k, v in run.timings.items())
        + f"; parity |onnx - torch| {run.metrics.get('parity_max_abs_diff', math.nan):.1e}",
    )
    metrics = Table("held-out metric", "candidate", "champion", title=None, expand=False)
    for key, label in (("auc", "AUC ROC"), ("ap", "average precision"), ("cp100", "card prec@100")):
        metrics.add_row(label, _fmt(run.metrics.get(key)), _fmt(run.metrics.get(f"champion_{key}")))
    if published is None:
        decision = f"[red]not published[/red]: {run.publish_reason}"
    else:
        decision = f"[green]published {published.version}[/green] (sha256 {published.sha256[:12]})"
        decision += ", [green]promoted: first model[/green]" if promoted else ", enters shadow"
        decision += f"\n{run.publish_reason}"
    return Panel(Group(head, metrics, decision), title="training run", expand=False)


def _day(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return str(value)


def manifests_table(manifests: list[Manifest], champion: str | None, previous: str | None) -> Table:
    """The registry's models, first published first, with the serving pointers marked."""
    table = Table("role", "version", "window", "examples", "AUC", "AP", box=box.SIMPLE_HEAD)
    table.columns[1].no_wrap = True
    for m in manifests:
        mark = "champ" if m.version == champion else "prev" if m.version == previous else ""
        window = m.training_window
        span = f"{window.start:%m-%d}..{window.end:%m-%d}" if window else "-"
        table.add_row(
            mark,
            m.version,
            span,
            f"{window.examples:,}" if window else "-",
            _fmt(m.metrics.get("auc")),
            _fmt(m.metrics.get("ap")),
        )
    return table
