"""The report's charts over event time (matplotlib, Agg backend: no screen needed).

Every panel shares the same marks: the first model's training days shaded and each
scripted drift's start as a dashed line. The drift panel shows every drift event the
system published, one row per kind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
logging.getLogger("matplotlib").setLevel(logging.WARNING)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from streams.demo.state import DemoState  # noqa: E402

DRIFT_COLORS = {"error": "tab:red", "score": "tab:purple", "feature": "tab:cyan"}
DECISION_COLORS = {"review": "tab:orange", "decline": "tab:red"}
#: Model updates marked on the models panel (retrain requests are too many to show).
SWAPS = ("promote", "reject", "rollback")


@dataclass
class Timeline:
    """Per-bin series of a run, binned by wall clock, placed at their median event time."""

    at_event: np.ndarray
    rate: np.ndarray
    p50_ms: np.ndarray
    p99_ms: np.ndarray


def timeline(state: DemoState, bin_s: float | None = None) -> Timeline:
    """Throughput and latency per wall-clock bin (about 150 bins over the run)."""
    at = np.asarray(state.pred_at)
    if at.size == 0:
        empty = np.zeros(0)
        return Timeline(empty, empty, empty, empty)
    event = state.stream.event_s[np.asarray(state.pred_row)]
    lat = np.asarray(state.pred_latency) * 1000.0
    span = max(at[-1] - at[0], 1.0)
    width = bin_s or max(span / 150, 1.0)
    bins = ((at - at[0]) // width).astype(np.int64)
    frame = pd.DataFrame({"bin": bins, "event": event, "lat": lat})
    grouped = frame.groupby("bin")
    return Timeline(
        at_event=grouped["event"].median().to_numpy(),
        rate=(grouped.size() / width).to_numpy(),
        p50_ms=grouped["lat"].quantile(0.5).to_numpy(),
        p99_ms=grouped["lat"].quantile(0.99).to_numpy(),
    )


def _x(seconds: np.ndarray | list[float] | float) -> np.ndarray:
    """Unix seconds as chart x values: days since 1970 (matplotlib's date unit)."""
    return np.asarray(seconds, dtype=np.float64) / 86_400


def _day_label(x: float, _pos: object = None) -> str:
    return datetime.fromtimestamp(x * 86_400, UTC).strftime("%b %d")


@dataclass
class Marks:
    """What every panel marks: the first model's training days, scripted drifts."""

    train: tuple[float, float] | None
    scripted: list[tuple[float, str]]

    def draw(self, ax: Axes) -> None:
        """Shade and line ``ax``."""
        if self.train is not None:
            ax.axvspan(*self.train, color="0.9", zorder=0)
        for when, _ in self.scripted:
            ax.axvline(when, color="black", ls="--", lw=1.2, zorder=2)


def marks(state: DemoState, train_days: int | None) -> Marks:
    """The marks of a run."""
    stream = state.stream
    first = float(_x(stream.first_day.timestamp()))
    train = (first, first + train_days) if train_days else None
    return Marks(
        train=train,
        scripted=[(float(_x(s)), text) for s, text in stream.drift_days()],
    )


def throughput(ax: Axes, line: Timeline) -> None:
    """Transactions scored per wall second."""
    ax.plot(_x(line.at_event), line.rate, color="tab:blue", lw=1.2)
    ax.set_ylabel("scored / s")
    ax.set_ylim(bottom=0)
    ax.set_title("throughput", loc="left", fontsize=10)


def latency(ax: Axes, line: Timeline) -> None:
    """End-to-end latency percentiles."""
    when = _x(line.at_event)
    ax.plot(when, line.p50_ms, color="tab:green", lw=1.2, label="p50")
    ax.plot(when, line.p99_ms, color="tab:orange", lw=1.2, label="p99")
    ax.set_yscale("log")
    ax.set_ylabel("ms, sent → scored")
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
    ax.set_title("latency", loc="left", fontsize=10)


def quality(ax: Axes, days: pd.DataFrame) -> None:
    """AUC, AP and card precision@100 per event day."""
    if len(days):
        when = _x(
            [datetime(d.year, d.month, d.day, 12, tzinfo=UTC).timestamp() for d in days.index]
        )
        ax.plot(when, days["auc"], marker=".", color="tab:blue", label="AUC")
        ax.plot(when, days["ap"], marker=".", color="tab:orange", label="AP")
        ax.plot(when, days["cp_at_k"], marker=".", color="tab:gray", lw=0.8, label="CP@100")
        ax.legend(loc="upper right", fontsize=8, frameon=False, ncols=3)
    ax.set_ylim(0, 1.2)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("per event day")
    ax.set_title("model quality (every label, handbook protocol)", loc="left", fontsize=10)


def decisions(ax: Axes, state: DemoState) -> None:
    """Reviews and declines per event day, with the frauds of the day."""
    rows = np.asarray(state.pred_row, dtype=np.int64)
    if rows.size == 0:
        return
    day = (state.stream.event_s[rows] // 86_400).astype(np.int64)
    frame = pd.DataFrame({"day": day, "decision": state.pred_decision})
    counts = frame.groupby(["day", "decision"]).size().unstack(fill_value=0)
    when = _x(counts.index.to_numpy() * 86_400 + 43_200)
    bottom = np.zeros(len(counts))
    for name, color in DECISION_COLORS.items():
        if name in counts:
            ax.bar(when, counts[name], bottom=bottom, width=0.8, color=color, label=name)
            bottom = bottom + counts[name].to_numpy()
    fraud = pd.Series(state.stream.is_fraud[rows]).groupby(day).sum()
    ax.plot(_x(fraud.index.to_numpy() * 86_400 + 43_200), fraud, "k.-", lw=0.8, label="frauds")
    ax.set_ylabel("per event day")
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)
    ax.set_title("decisions", loc="left", fontsize=10)


def models(ax: Axes, state: DemoState) -> None:
    """Share of predictions by deep model version, and the model updates."""
    rows = np.asarray(state.pred_row, dtype=np.int64)
    if rows.size == 0:
        return
    event = state.stream.event_s[rows]
    bin_of = (event // 21_600).astype(np.int64)
    frame = pd.DataFrame({"bin": bin_of, "version": state.pred_deep})
    share = frame.groupby(["bin", "version"]).size().unstack(fill_value=0)
    share = share.div(share.sum(axis=1), axis=0)
    order = sorted(share.columns, key=lambda v: state.pred_deep.index(v))
    when = _x(share.index.to_numpy() * 21_600 + 10_800)
    ax.stackplot(when, *[share[v] for v in order], labels=order, alpha=0.8)
    for update in state.updates:
        if update.action in SWAPS and not np.isnan(update.event_s):
            ax.annotate(
                update.action,
                (float(_x(update.event_s)), 1.0),
                xytext=(0, 2),
                textcoords="offset points",
                rotation=90,
                fontsize=6,
                va="bottom",
                ha="center",
            )
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of predictions")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    ax.set_title("deep model in service", loc="left", fontsize=10, pad=28)


def drift(ax: Axes, state: DemoState) -> None:
    """Every drift event published, one row per kind, at its event time."""
    kinds = list(DRIFT_COLORS)
    for row, kind in enumerate(kinds):
        when = [float(_x(d.event_s)) for d in state.drifts if d.kind == kind]
        if when:
            ax.eventplot(
                when, lineoffsets=row, linelengths=0.7, linewidths=0.8, colors=DRIFT_COLORS[kind]
            )
    ax.set_yticks(range(len(kinds)), [f"{k} ({_count(state, k)})" for k in kinds], fontsize=8)
    ax.set_ylim(-0.6, len(kinds) - 0.4)
    ax.set_title("drift events (detectors' firings)", loc="left", fontsize=10)


def _count(state: DemoState, kind: str) -> int:
    return sum(1 for d in state.drifts if d.kind == kind)


Panel = Callable[[Axes], None]


def panels(state: DemoState, days: pd.DataFrame) -> dict[str, Panel]:
    """Every chart of the report, by file stem."""
    line = timeline(state)
    return {
        "throughput": lambda ax: throughput(ax, line),
        "latency": lambda ax: latency(ax, line),
        "quality": lambda ax: quality(ax, days),
        "decisions": lambda ax: decisions(ax, state),
        "models": lambda ax: models(ax, state),
        "drift": lambda ax: drift(ax, state),
    }


def _finish(ax: Axes, mark: Marks) -> None:
    mark.draw(ax)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(FuncFormatter(_day_label))


def write_charts(
    out: Path, state: DemoState, days: pd.DataFrame, train_days: int | None
) -> list[Path]:
    """Write one PNG per panel and ``overview.png`` with all of them; return the paths."""
    mark = marks(state, train_days)
    drawn = panels(state, days)
    paths = []
    for name, draw in drawn.items():
        fig, ax = plt.subplots(figsize=(9, 3), dpi=100, layout="constrained")
        draw(ax)
        _finish(ax, mark)
        path = out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    heights = [1.3 if name == "drift" else 2.4 for name in drawn]
    fig, axes = plt.subplots(
        len(drawn),
        1,
        figsize=(9, sum(heights)),
        dpi=90,
        sharex=True,
        layout="constrained",
        height_ratios=heights,
    )
    for ax, draw in zip(axes, drawn.values(), strict=True):
        draw(ax)
        _finish(ax, mark)
    fig.suptitle(
        "event time · grey: the first model's training days · dashed: scripted drift",
        fontsize=8,
    )
    path = out / "overview.png"
    fig.savefig(path)
    plt.close(fig)
    paths.append(path)
    return paths
