"""The live terminal dashboard: one rich renderable per refresh, from a :class:`View`."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from streams.demo.state import UpdateRecord, View

_BLOCKS = "▁▂▃▄▅▆▇█"
_DECISION_STYLE = {"approve": "green", "review": "yellow", "decline": "red"}
_DRIFT_STYLE = {"error": "red", "score": "magenta", "feature": "cyan"}
_ACTION_STYLE = {
    "publish": "cyan",
    "promote": "green",
    "reject": "red",
    "rollback": "red",
    "retrain_request": "yellow",
}


def sparkline(values: list[float], width: int = 30) -> str:
    """Values as a one-line bar chart of ``width`` characters (the newest at the right).

    Examples
    --------
    >>> sparkline([0, 1, 2, 3, 4, 5, 6, 7], width=8)
    '▁▂▃▄▅▆▇█'
    >>> sparkline([], width=3)
    '   '
    """
    tail = values[-width:]
    top = max(tail, default=0.0)
    if top <= 0:
        return " " * (width - len(tail)) + _BLOCKS[0] * len(tail)
    bars = "".join(_BLOCKS[min(int(v / top * (len(_BLOCKS) - 1) + 0.5), 7)] for v in tail)
    return " " * (width - len(tail)) + bars


def _num(value: float, digits: int = 3) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _kv(table: Table, key: str, value: RenderableType, note: str | Text = "") -> None:
    if isinstance(note, str):
        note = Text(note)
    note.no_wrap, note.overflow = True, "ellipsis"
    table.add_row(Text(key, style="dim"), value, note)


def _grid(*ratios: int) -> Table:
    grid = Table.grid(expand=True, padding=(0, 1))
    for ratio in ratios:
        grid.add_column(ratio=ratio)
    return grid


def _pairs() -> Table:
    # Only the notes column may shrink (rich narrows wrappable columns first); its
    # texts are cut with an ellipsis rather than wrapped.
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    return table


def header(view: View, source: str, drifts: tuple[str, ...]) -> Panel:
    """Where the stream is, what it is, how long it has run."""
    top = _grid(3, 2)
    top.add_row(
        Text(source, style="bold"),
        Text("drift: " + ("; ".join(drifts) if drifts else "none scripted"), style="magenta"),
    )
    bar = _grid(1, 4, 2)
    total = max(view.days, 1e-9)
    bar.add_row(
        Text(f"day {view.stream_day:5.1f} / {view.days:.0f}"),
        ProgressBar(total=total, completed=min(view.stream_day, total)),
        Text(f"{view.phase}  ·  {_clock(view.elapsed_s)}", justify="right"),
    )
    return Panel(Group(top, bar), title="[bold]streamscore demo[/bold]", border_style="blue")


def throughput(view: View) -> Panel:
    """Events per second and how far the pipeline is behind."""
    table = _pairs()
    _kv(
        table, "scored/s", Text(f"{view.rate:,.0f}", style="bold"), sparkline(view.rate_history, 24)
    )
    _kv(table, "sent", f"{view.sent:,}", f"of {view.total:,} transactions")
    _kv(table, "scored", f"{view.predictions:,}", f"in flight {view.outstanding:,}")
    lag = "–" if view.lag is None else f"{view.lag:,.0f} msgs"
    _kv(table, "labels", f"{view.labels_sent:,}", f"worker lag {lag}")
    return Panel(table, title="throughput", border_style="cyan")


def latency(view: View) -> Panel:
    """End-to-end latency percentiles over the last seconds."""
    table = _pairs()
    _kv(table, "p50", Text(_ms(view.latency_p50_ms), style="bold"))
    _kv(table, "p99", Text(_ms(view.latency_p99_ms), style="bold"))
    _kv(table, "max", _ms(view.latency_max_ms))
    caption = Text("sent → scored, last 10 s", style="dim", no_wrap=True, overflow="ellipsis")
    return Panel(Group(table, caption), title="latency", border_style="cyan")


def decisions(view: View) -> Panel:
    """Approve, review, decline; frauds flagged."""
    table = _pairs()
    total = max(sum(view.decisions.values()), 1)
    for name in ("approve", "review", "decline"):
        n = view.decisions.get(name, 0)
        _kv(table, name, Text(f"{n:,}", style=_DECISION_STYLE[name]), f"{100 * n / total:5.1f}%")
    share = f"{100 * view.caught / view.frauds_scored:.0f}%" if view.frauds_scored else "–"
    _kv(table, "frauds flagged", f"{view.caught:,}", f"of {view.frauds_scored:,} ({share})")
    return Panel(table, title="decisions", border_style="cyan")


def quality(view: View) -> Panel:
    """AUC and AP over the labels the system has been sent so far."""
    table = _pairs()
    _kv(table, "AUC", Text(_num(view.auc), style="bold"), f"last 7 days {_num(view.auc_recent)}")
    _kv(table, "AP", Text(_num(view.ap), style="bold"), f"last 7 days {_num(view.ap_recent)}")
    _kv(table, "labels", f"{view.matured:,}", f"{view.matured_frauds:,} frauds")
    return Panel(table, title="quality (matured labels)", border_style="green")


def collapse(updates: list[UpdateRecord]) -> list[tuple[UpdateRecord, int]]:
    """Runs of the same update (action, model, version, reason) as (first, how many).

    Examples
    --------
    >>> a = UpdateRecord(0.0, 0.0, "retrain_request", "deep", None, "error drift")
    >>> b = UpdateRecord(1.0, 9.0, "promote", "deep", "v2", None)
    >>> [(u.action, n) for u, n in collapse([a, a, a, b, a])]
    [('retrain_request', 3), ('promote', 1), ('retrain_request', 1)]
    """
    out: list[tuple[UpdateRecord, int]] = []
    for update in updates:
        key = (update.action, update.model_name, update.version, update.reason)
        if out:
            last, n = out[-1]
            if (last.action, last.model_name, last.version, last.reason) == key:
                out[-1] = (last, n + 1)
                continue
        out.append((update, 1))
    return out


def models(view: View, width: int = 6) -> Panel:
    """Models in service and the latest model updates."""
    table = _pairs()
    _kv(table, "deep", Text(view.deep or "none", style="bold"), "champion")
    if view.challenger:
        _kv(table, "", Text(view.challenger, style="yellow"), "challenger (shadow)")
    _kv(table, "online", view.online or "none", f"{view.online_snapshots:,} snapshots")
    for update, repeats in collapse(view.updates)[-width:]:
        day = "" if math.isnan(update.event_s) else _day_label(update.event_s)
        action = Text(update.action, style=_ACTION_STYLE.get(update.action, ""))
        what = f"{update.version or ''} {f'({update.reason})' if update.reason else ''}".strip()
        if repeats > 1:
            what += f" ×{repeats}"
        table.add_row(Text(day, style="dim"), action, Text(what, overflow="ellipsis", no_wrap=True))
    return Panel(table, title="models", border_style="green")


def drift(view: View, width: int = 5) -> Panel:
    """Drift events: counts by kind and the latest ones."""
    counts = Text()
    for kind in ("error", "score", "feature"):
        counts.append(f"{kind} {view.drift_counts.get(kind, 0)}  ", style=_DRIFT_STYLE[kind])
    table = _pairs()
    for event in view.drifts[-width:]:
        what = event.detector + (f" on {event.feature}" if event.feature else "")
        acts = ", ".join(event.actions)
        table.add_row(
            Text(_day_label(event.event_s), style="dim"),
            Text(event.kind, style=_DRIFT_STYLE.get(event.kind, "")),
            Text(f"{what}{' → ' + acts if acts else ''}", overflow="ellipsis", no_wrap=True),
        )
    return Panel(Group(counts, table), title="drift events", border_style="magenta")


def dead_letters(view: View) -> Panel:
    """The dead-letter topic, by reason."""
    table = _pairs()
    _kv(
        table, "total", Text(f"{view.dead_letters:,}", style="bold"), f"of {view.bad_sent} injected"
    )
    for reason, n in view.dead_reasons[:5]:
        _kv(table, reason, f"{n:,}")
    return Panel(table, title="dead letters", border_style="red")


def footer(view: View) -> Text:
    """Processes and how to stop."""
    text = Text(" ")
    for name, status in view.processes.items():
        style = "green" if status == "running" else "red"
        text.append("● ", style=style).append(f"{name} {status}   ", style="dim")
    text.append("Ctrl-C: stop and report", style="bold dim")
    return text


def render(view: View, source: str, drifts: tuple[str, ...]) -> RenderableType:
    """The whole dashboard."""
    row1 = _grid(4, 3, 4)
    row1.add_row(throughput(view), latency(view), decisions(view))
    row2 = _grid(4, 7)
    row2.add_row(quality(view), models(view))
    row3 = _grid(7, 4)
    row3.add_row(drift(view), dead_letters(view))
    return Group(header(view, source, drifts), row1, row2, row3, footer(view))


def status_line(view: View) -> str:
    """One line for headless runs."""
    return (
        f"demo {view.phase} day={view.stream_day:.1f}/{view.days:.0f} sent={view.sent} "
        f"scored={view.predictions} rate={view.rate:.0f}/s p99={_ms(view.latency_p99_ms)} "
        f"auc={_num(view.auc)} ap={_num(view.ap)} dlq={view.dead_letters} "
        f"drift={len(view.drifts)} deep={view.deep}"
    )


def _day_label(event_s: float) -> str:
    return datetime.fromtimestamp(event_s, UTC).strftime("%b %d %H:%M")
