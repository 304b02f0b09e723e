"""Label-free drift detection in the worker: scores and features against a reference.

The reference is the previous period of event time (one day by default, a seeded
sample of at most ``reference_rows`` rows): each day's traffic is compared with the
day before, so an abrupt change fires within the day it happens, while slow trends
(windows filling up after a start, seasons) move the reference along with them.
:class:`models.drift.DriftMonitor` watches the blended score and every feature except
the calendar flags (they swing every night and weekend by design), with two cheap
CUSUMs per event (of block means, and of tail exceedances) and a KS test per window.
The error stream of matured labels is watched by the online learner (ADWIN).

Each firing becomes a :class:`~streams.events.DriftEvent` and the configured actions:
``alert`` (the event and a metric), ``shift_blend`` (weight moves toward the online
model, bounded), ``request_retrain`` (a ``retrain_request`` for the trainer, at most one
per ``retrain_cooldown_s``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from models.drift import DriftConfig, DriftFiring, DriftMonitor
from streams.events import DriftEvent, DriftKind

CALENDAR_FEATURES = ("TX_DURING_WEEKEND", "TX_DURING_NIGHT")


@dataclass(frozen=True)
class DriftSettingsView:
    """Plain configuration of the worker's drift stage."""

    reference_rows: int = 5000
    period_s: float = 86_400.0
    cusum_h: float = 30.0
    actions: tuple[str, ...] = ("alert", "request_retrain")
    retrain_cooldown_s: float = 600.0


@dataclass
class DriftOutcome:
    """What one batch fired, and what to do about it."""

    events: list[DriftEvent] = field(default_factory=list)
    firings: list[DriftFiring] = field(default_factory=list)
    shift_blend: bool = False
    request_retrain: bool = False


class DriftStage:
    """Reference collection, then monitoring, of one worker's scored stream."""

    def __init__(self, feature_names: tuple[str, ...], config: DriftSettingsView) -> None:
        self.feature_names = feature_names
        self.config = config
        self.monitored = [n for n in feature_names if n not in CALENDAR_FEATURES]
        self._rows: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._period: int | None = None
        self.monitor: DriftMonitor | None = None
        self._last_retrain = float("-inf")
        self._rng = np.random.default_rng(0)

    def observe(
        self,
        features: np.ndarray,
        scores: np.ndarray,
        event_time: datetime,
        versions: dict[str, str],
    ) -> DriftOutcome:
        """Feed one scored batch; return the firings and actions."""
        outcome = DriftOutcome()
        period = int(event_time.timestamp() // self.config.period_s)
        if self._period is None:
            self._period = period
        elif period > self._period:
            self._roll(period)
        features = np.asarray(features, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        self._rows.append(features)
        self._scores.append(scores)
        if self.monitor is None:
            return outcome
        firings = self.monitor.update(scores=scores, features=features)
        if not firings:
            return outcome
        outcome.firings = list(firings)
        actions = set(self.config.actions)
        outcome.shift_blend = "shift_blend" in actions
        wall = time.monotonic()
        cooled = wall - self._last_retrain >= self.config.retrain_cooldown_s
        if "request_retrain" in actions and cooled:
            outcome.request_retrain = True
            self._last_retrain = wall
        taken = ["alert"]
        if outcome.shift_blend:
            taken.append("shift_blend")
        if outcome.request_retrain:
            taken.append("request_retrain")
        now = datetime.now(UTC)
        outcome.events = [self._event(f, event_time, now, versions, taken) for f in firings]
        return outcome

    def _roll(self, period: int) -> None:
        """A new period starts: the one that ended becomes the reference."""
        rows, scores = np.concatenate(self._rows), np.concatenate(self._scores)
        if len(scores) > self.config.reference_rows:
            keep = self._rng.choice(len(scores), self.config.reference_rows, replace=False)
            rows, scores = rows[keep], scores[keep]
        self.monitor = (
            DriftMonitor(
                self.feature_names,
                rows,
                scores,
                monitored=self.monitored,
                config=DriftConfig(
                    reference_size=self.config.reference_rows, cusum_h=self.config.cusum_h
                ),
            )
            if len(scores) >= 100
            else None
        )
        self._rows, self._scores, self._period = [], [], period

    def _event(
        self,
        firing: DriftFiring,
        event_time: datetime,
        now: datetime,
        versions: dict[str, str],
        actions: list[str],
    ) -> DriftEvent:
        return DriftEvent(
            detector=firing.detector.upper(),
            kind=DriftKind(firing.kind),
            feature=firing.feature,
            statistic=float(firing.statistic) if np.isfinite(firing.statistic) else 0.0,
            event_time=event_time,
            detected_time=now,
            actions=actions,
            model_versions=dict(versions),
        )
