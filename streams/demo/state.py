"""What the demo has seen: the messages it sent and the system's outputs, as numbers.

Pure bookkeeping, no I/O: the feed reports what it published (and when, on the
monotonic clock), the reader hands over every output message as decoded JSON with
its arrival time, and :meth:`DemoState.view` turns it all into the figures the
dashboard shows. Latency is end to end and honest for replays: from the moment a
transaction was handed to the broker to the moment its prediction came back.

Examples
--------
>>> import pandas as pd
>>> from streams.demo.stream import DemoStream
>>> frame = pd.DataFrame({
...     "transaction_id": ["1", "2"], "customer_id": ["c", "d"], "terminal_id": ["t", "t"],
...     "amount": [5.0, 900.0], "is_fraud": [False, True],
...     "event_time": pd.to_datetime(["2018-04-01 10:00", "2018-04-01 11:00"], utc=True),
...     "label_time": pd.to_datetime(["2018-04-02 10:00", "2018-04-02 11:00"], utc=True)})
>>> state = DemoState(DemoStream(frame, "toy", None, None))
>>> state.on_sent([0, 1], at=100.0)
>>> state.on_prediction({"transaction_id": "1", "score": 0.1, "decision": "approve",
...                      "model_versions": {"deep": "v1"}}, at=100.25)
>>> state.on_dead_letter({"reason": "invalid_json"}, at=100.3)
>>> view = state.view(now=101.0)
>>> view.predictions, view.outstanding, view.dead_letters, round(view.latency_p50_ms)
(1, 1, 1, 250)
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.metrics import average_precision, roc_auc
from streams.demo.stream import DemoStream

#: Seconds of recent history behind "now" figures (rate, latency percentiles).
RECENT_S = 10.0
#: Event days of matured labels behind the "recent" AUC and AP.
RECENT_DAYS = 7.0


@dataclass(frozen=True)
class DriftRecord:
    """One drift event as the dashboard shows it."""

    event_s: float
    kind: str
    detector: str
    feature: str | None
    actions: tuple[str, ...]


@dataclass(frozen=True)
class UpdateRecord:
    """One model update (online snapshots are only counted)."""

    at: float
    event_s: float
    action: str
    model_name: str
    version: str | None
    reason: str | None


@dataclass(frozen=True)
class View:
    """The figures of one dashboard refresh."""

    elapsed_s: float
    phase: str
    sent: int
    labels_sent: int
    bad_sent: int
    total: int
    predictions: int
    duplicates: int
    outstanding: int
    dead_letters: int
    dead_reasons: list[tuple[str, int]]
    rate: float
    rate_history: list[float]
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    stream_day: float
    days: float
    matured: int
    matured_frauds: int
    auc: float
    ap: float
    auc_recent: float
    ap_recent: float
    decisions: dict[str, int]
    caught: int
    frauds_scored: int
    deep: str | None
    challenger: str | None
    online: str | None
    online_snapshots: int
    deep_share: list[tuple[str, int]]
    updates: list[UpdateRecord]
    drifts: list[DriftRecord]
    drift_counts: dict[str, int]
    lag: float | None
    processes: dict[str, str]


@dataclass
class DemoState:
    """Running totals of a demo; see the module docstring."""

    stream: DemoStream
    phase: str = "starting"
    processes: dict[str, str] = field(default_factory=dict)
    started: float | None = None
    labels_sent: int = 0
    bad_sent: int = 0
    feed_event_s: float = math.nan
    label_frontier_s: float = -math.inf
    dead_reasons: Counter[str] = field(default_factory=Counter)
    dead_at: list[float] = field(default_factory=list)
    drifts: list[DriftRecord] = field(default_factory=list)
    updates: list[UpdateRecord] = field(default_factory=list)
    online_snapshots: int = 0
    online_version: str | None = None
    lag: float | None = None
    duplicates: int = 0
    # One entry per prediction, in arrival order.
    pred_row: list[int] = field(default_factory=list)
    pred_at: list[float] = field(default_factory=list)
    pred_latency: list[float] = field(default_factory=list)
    pred_decision: list[str] = field(default_factory=list)
    pred_deep: list[str] = field(default_factory=list)
    last_versions: dict[str, str] = field(default_factory=dict)
    #: (what, monotonic time): start-up steps, for the summary.
    milestones: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.stream.frame)
        self.sent_at = np.full(n, np.nan)
        self.score = np.full(n, np.nan)
        self.flagged = np.zeros(n, dtype=bool)
        self.sent = 0
        self.decisions: Counter[str] = Counter()
        self.deep_versions: Counter[str] = Counter()
        if "label_time" in self.stream.frame:
            ns = self.stream.frame["label_time"].to_numpy(dtype="datetime64[ns]")
            self.label_s = ns.astype(np.int64) / 1e9
        else:
            self.label_s = np.full(n, np.inf)

    def step(self, phase: str, at: float) -> None:
        """Enter a new phase of the run at ``at`` (monotonic seconds)."""
        self.phase = phase
        self.milestones.append((phase, at))

    # -- what the feed did ------------------------------------------------------------
    def on_sent(self, rows: list[int], at: float) -> None:
        """Transactions of these frame rows were handed to the broker at ``at``."""
        self.sent_at[rows] = at
        self.sent += len(rows)
        if rows:
            self.feed_event_s = max(
                float(self.stream.event_s[rows[-1]]),
                self.feed_event_s if not math.isnan(self.feed_event_s) else -math.inf,
            )

    def on_labels_sent(self, rows: list[int]) -> None:
        """Labels of these rows were published (labels go out in label-time order)."""
        self.labels_sent += len(rows)
        if rows:
            self.label_frontier_s = max(self.label_frontier_s, float(self.label_s[rows[-1]]))

    # -- what the system published -------------------------------------------------------
    def on_prediction(self, event: dict[str, Any], at: float) -> None:
        """A message of the `predictions` topic arrived at ``at``."""
        row = self.stream.row_of.get(str(event["transaction_id"]))
        if row is None:
            return
        if not math.isnan(self.score[row]):
            self.duplicates += 1
            return
        self.score[row] = float(event["score"])
        versions = event.get("model_versions") or {}
        self.last_versions = versions
        deep = versions.get("deep", "none")
        self.pred_row.append(row)
        self.pred_at.append(at)
        self.pred_latency.append(at - float(self.sent_at[row]))
        self.pred_decision.append(str(event["decision"]))
        self.pred_deep.append(deep)
        self.decisions[str(event["decision"])] += 1
        self.flagged[row] = event["decision"] != "approve"
        self.deep_versions[deep] += 1

    def on_dead_letter(self, event: dict[str, Any], at: float) -> None:
        """A message of the `dead-letters` topic arrived."""
        self.dead_reasons[str(event["reason"])] += 1
        self.dead_at.append(at)

    def on_drift(self, event: dict[str, Any]) -> None:
        """A message of the `drift-events` topic arrived."""
        self.drifts.append(
            DriftRecord(
                event_s=_unix(event["event_time"]),
                kind=str(event["kind"]),
                detector=str(event["detector"]),
                feature=event.get("feature"),
                actions=tuple(event.get("actions") or ()),
            )
        )

    def on_model_update(self, event: dict[str, Any], at: float) -> None:
        """A message of the `model-updates` topic arrived."""
        if event.get("model_name") == "online" and event.get("action") == "publish":
            self.online_snapshots += 1
            self.online_version = event.get("version")
            return
        self.updates.append(
            UpdateRecord(
                at=at,
                event_s=self.feed_event_s,
                action=str(event["action"]),
                model_name=str(event["model_name"]),
                version=event.get("version"),
                reason=event.get("reason"),
            )
        )

    def on_metrics(self, event: dict[str, Any]) -> None:
        """A worker's metric snapshot: keep its consumer lag."""
        if event.get("process") != "worker":
            return
        for family in event.get("families") or ():
            if family.get("name") == "streamscore_consumer_lag_messages":
                self.lag = sum(float(s["value"]) for s in family.get("samples") or ())

    # -- figures ---------------------------------------------------------------------------
    @property
    def predicted(self) -> int:
        """Transactions with a prediction."""
        return len(self.pred_row)

    def accounted(self) -> bool:
        """True when every message sent has an outcome (a prediction or a dead letter)."""
        return self.predicted + sum(self.dead_reasons.values()) >= self.sent + self.bad_sent

    def matured(self) -> np.ndarray:
        """Rows scored whose label the system has been sent."""
        out: np.ndarray = ~np.isnan(self.score) & (self.label_s <= self.label_frontier_s)
        return out

    def view(self, now: float) -> View:
        """The dashboard's figures at ``now`` (monotonic seconds)."""
        at = self.pred_at
        recent = bisect.bisect_left(at, now - RECENT_S)
        window = min(RECENT_S, now - self.started) if self.started is not None else RECENT_S
        rate = (len(at) - recent) / window if window > 0 else 0.0
        lat = np.asarray(self.pred_latency[recent:]) * 1000.0
        p50, p99, top = (
            (float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), float(lat.max()))
            if lat.size
            else (math.nan, math.nan, math.nan)
        )
        matured = self.matured()
        y, s = self.stream.is_fraud[matured], self.score[matured]
        recent_rows = matured & (
            self.stream.event_s >= self.label_frontier_s - RECENT_DAYS * 86_400
        )
        y_recent, s_recent = self.stream.is_fraud[recent_rows], self.score[recent_rows]
        frauds_scored = ~np.isnan(self.score) & self.stream.is_fraud
        first = self.stream.first_day.timestamp()
        stream_day = (
            (self.feed_event_s - first) / 86_400 if not math.isnan(self.feed_event_s) else 0.0
        )
        return View(
            elapsed_s=now - self.started if self.started is not None else 0.0,
            phase=self.phase,
            sent=self.sent,
            labels_sent=self.labels_sent,
            bad_sent=self.bad_sent,
            total=len(self.stream.frame),
            predictions=self.predicted,
            duplicates=self.duplicates,
            outstanding=max(self.sent - self.predicted, 0),
            dead_letters=sum(self.dead_reasons.values()),
            dead_reasons=self.dead_reasons.most_common(),
            rate=rate,
            rate_history=self.rate_history(now),
            latency_p50_ms=p50,
            latency_p99_ms=p99,
            latency_max_ms=top,
            stream_day=stream_day,
            days=self.stream.days,
            matured=int(matured.sum()),
            matured_frauds=int(y.sum()),
            auc=_safe(roc_auc, y, s),
            ap=_safe(average_precision, y, s),
            auc_recent=_safe(roc_auc, y_recent, s_recent),
            ap_recent=_safe(average_precision, y_recent, s_recent),
            decisions=dict(self.decisions),
            caught=int((self.flagged & self.stream.is_fraud).sum()),
            frauds_scored=int(frauds_scored.sum()),
            deep=self.last_versions.get("deep"),
            challenger=self.last_versions.get("challenger"),
            online=self.last_versions.get("online") or self.online_version,
            online_snapshots=self.online_snapshots,
            deep_share=self.deep_versions.most_common(),
            updates=list(self.updates),
            drifts=list(self.drifts),
            drift_counts=dict(Counter(d.kind for d in self.drifts)),
            lag=self.lag,
            processes=dict(self.processes),
        )

    def rate_history(self, now: float, seconds: int = 60) -> list[float]:
        """Predictions per second over the last ``seconds`` whole seconds, oldest first."""
        at = self.pred_at
        edges = [now - seconds + i for i in range(seconds + 1)]
        counts = [bisect.bisect_left(at, e) for e in edges]
        return [float(b - a) for a, b in zip(counts, counts[1:], strict=False)]


def _safe(metric: Any, y: np.ndarray, s: np.ndarray) -> float:
    if y.size == 0:
        return math.nan
    return float(metric(y, s))


def _unix(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
