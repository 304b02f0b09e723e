"""The figures a demo ends with, for the terminal and for ``summary.md``."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.evaluation import daily_metrics
from models.metrics import average_precision, roc_auc
from streams.demo.state import DemoState
from streams.demo.stream import SCENARIOS


@dataclass(frozen=True)
class Summary:
    """Totals and percentiles of a whole demo run."""

    sent: int
    predictions: int
    duplicates: int
    missing: int
    dead_letters: int
    bad_sent: int
    dead_reasons: list[tuple[str, int]]
    streaming_s: float
    rate_mean: float
    rate_peak: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    auc_matured: float
    ap_matured: float
    matured: int
    auc_all: float
    ap_all: float
    decisions: dict[str, int]
    frauds: int
    caught: int
    caught_by_scenario: list[tuple[str, int, int]]
    drift_counts: dict[str, int]
    first_drift_day: float | None
    deep_versions: list[tuple[str, int]]
    updates: list[tuple[float, str, str, str]]
    online_snapshots: int
    phases: list[tuple[str, float]]


def phase_durations(milestones: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """How long each phase lasted, from the moments the run entered them.

    Examples
    --------
    >>> phase_durations([("a", 10.0), ("b", 12.5), ("c", 13.0)])
    [('a', 2.5), ('b', 0.5)]
    """
    return [(a, tb - ta) for (a, ta), (_, tb) in zip(milestones, milestones[1:], strict=False)]


def summarize(state: DemoState) -> Summary:
    """Figures of ``state`` once the run is over."""
    stream = state.stream
    at = np.asarray(state.pred_at)
    lat = np.asarray(state.pred_latency) * 1000.0
    span = float(at[-1] - state.started) if at.size and state.started is not None else 0.0
    per_second = np.bincount((at - at.min()).astype(np.int64)) if at.size else np.zeros(1)
    scored = ~np.isnan(state.score)
    y_all, s_all = stream.is_fraud[scored], state.score[scored]
    matured = state.matured()
    y_mat, s_mat = stream.is_fraud[matured], state.score[matured]
    frauds = scored & stream.is_fraud
    by_scenario: list[tuple[str, int, int]] = []
    if stream.scenario is not None:
        for code, name in SCENARIOS.items():
            rows = frauds & (stream.scenario == code)
            if rows.any():
                by_scenario.append((name, int((rows & state.flagged).sum()), int(rows.sum())))
    first = stream.first_day.timestamp()
    return Summary(
        sent=state.sent,
        predictions=state.predicted,
        duplicates=state.duplicates,
        missing=int((~np.isnan(state.sent_at) & ~scored).sum()),
        dead_letters=sum(state.dead_reasons.values()),
        bad_sent=state.bad_sent,
        dead_reasons=state.dead_reasons.most_common(),
        streaming_s=span,
        rate_mean=state.predicted / span if span > 0 else math.nan,
        rate_peak=float(per_second.max()) if at.size else math.nan,
        latency_p50_ms=_pct(lat, 50),
        latency_p99_ms=_pct(lat, 99),
        latency_max_ms=float(lat.max()) if lat.size else math.nan,
        auc_matured=_metric(roc_auc, y_mat, s_mat),
        ap_matured=_metric(average_precision, y_mat, s_mat),
        matured=int(matured.sum()),
        auc_all=_metric(roc_auc, y_all, s_all),
        ap_all=_metric(average_precision, y_all, s_all),
        decisions=dict(state.decisions),
        frauds=int(frauds.sum()),
        caught=int((frauds & state.flagged).sum()),
        caught_by_scenario=by_scenario,
        drift_counts=dict(Counter(d.kind for d in state.drifts)),
        first_drift_day=(
            (min(d.event_s for d in state.drifts) - first) / 86_400 if state.drifts else None
        ),
        deep_versions=state.deep_versions.most_common(),
        updates=[
            ((u.event_s - first) / 86_400, u.action, u.version or "", u.reason or "")
            for u in state.updates
        ],
        online_snapshots=state.online_snapshots,
        phases=phase_durations(state.milestones),
    )


def daily(state: DemoState) -> pd.DataFrame:
    """AUC, AP and card precision@100 per event day over every label (the demo knows them).

    The handbook's rolling protocol (:func:`models.evaluation.daily_metrics`): cards
    with a fraud known in the week before the label delay are left out.
    """
    frame = state.stream.frame
    scored = ~np.isnan(state.score)
    if not state.stream.labeled or not scored.any():
        return pd.DataFrame(columns=["transactions", "frauds", "auc", "ap", "cp_at_k"])
    scores = pd.DataFrame(
        {"transaction_id": frame["transaction_id"][scored], "score": state.score[scored]}
    )
    labeled = frame[["transaction_id", "event_time", "customer_id", "is_fraud"]]
    return daily_metrics(scores, labeled)


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


def _metric(fn: object, y: np.ndarray, s: np.ndarray) -> float:
    if y.size == 0:
        return math.nan
    return float(fn(y, s))  # type: ignore[operator]


def _f(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:,.0f} ms"


def lines(summary: Summary, ended: str, wall_s: float, days: float) -> list[tuple[str, str]]:
    """The summary as (label, value) rows, shared by the terminal and the Markdown file."""
    s = summary
    decisions = ", ".join(
        f"{name} {s.decisions.get(name, 0):,}" for name in ("approve", "review", "decline")
    )
    reasons = ", ".join(f"{r} {n}" for r, n in s.dead_reasons) or "none"
    scenarios = "; ".join(f"{name} {c}/{n}" for name, c, n in s.caught_by_scenario)
    drift = ", ".join(f"{k} {n}" for k, n in sorted(s.drift_counts.items())) or "none"
    if s.first_drift_day is not None:
        drift += f" (first on day {s.first_drift_day:.1f})"
    promoted = [u for u in s.updates if u[1] in ("promote", "rollback", "reject")]
    published = [u for u in s.updates if u[1] == "publish"]
    rows = [
        ("ended", f"{ended} after {wall_s / 60:.1f} min, {days:.1f} event days"),
        ("phases", ", ".join(f"{name} {seconds:.0f} s" for name, seconds in s.phases)),
        ("transactions", f"{s.sent:,} sent, {s.predictions:,} scored, {s.missing:,} missing"),
        ("dead letters", f"{s.dead_letters:,} of {s.bad_sent:,} malformed sent: {reasons}"),
        (
            "throughput",
            (f"{s.rate_mean:,.0f} tx/s mean over {s.streaming_s:.0f} s, peak {s.rate_peak:,.0f}/s")
            if s.streaming_s > 0
            else "–",
        ),
        (
            "latency (sent → scored)",
            f"p50 {_ms(s.latency_p50_ms)}, p99 {_ms(s.latency_p99_ms)}, "
            f"max {_ms(s.latency_max_ms)}",
        ),
        (
            "AUC / AP, labels sent",
            f"{_f(s.auc_matured)} / {_f(s.ap_matured)} over {s.matured:,} labels",
        ),
        ("AUC / AP, every label", f"{_f(s.auc_all)} / {_f(s.ap_all)}"),
        ("decisions", decisions),
        (
            "frauds flagged",
            f"{s.caught:,} of {s.frauds:,}" + (f" ({scenarios})" if scenarios else ""),
        ),
        ("drift events", drift),
        (
            "deep models",
            ", ".join(f"{v} {n:,}" for v, n in s.deep_versions) + " predictions",
        ),
        (
            "model updates",
            f"{len(published)} published, "
            + (", ".join(f"{a} {v} (day {d:.1f})" for d, a, v, _ in promoted) or "none promoted")
            + f"; {s.online_snapshots:,} online snapshots",
        ),
    ]
    return rows


def summary_line(summary: Summary, report: str) -> str:
    """The run's last line, one ``key=value`` per figure, for people and scripts.

    ``events`` counts every message published to the transactions topic (malformed
    ones included), ``auc``/``ap`` are over the labels the system was sent, and
    ``models`` counts the deep model versions that served predictions.
    """
    s = summary
    deep = [v for v, _ in s.deep_versions if v != "none"]
    return (
        f"demo: events={s.sent + s.bad_sent} predictions={s.predictions} "
        f"dead_letters={s.dead_letters} auc={_f(s.auc_matured)} ap={_f(s.ap_matured)} "
        f"models={len(deep)} drift_events={sum(s.drift_counts.values())} report={report}"
    )


def markdown(title: str, context: list[str], rows: list[tuple[str, str]], images: list[str]) -> str:
    """``summary.md``: what ran, the figures, the charts."""
    out = [f"# {title}", ""]
    out += [f"- {line}" for line in context]
    out += ["", "| | |", "|---|---|"]
    out += [f"| {label} | {value.replace('|', '/')} |" for label, value in rows]
    out.append("")
    for image in images:
        out += [f"![{image.removesuffix('.png')}]({image})", ""]
    return "\n".join(out)
