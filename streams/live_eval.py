"""Live evaluation: AUC, average precision and card precision@k over recent matured labels.

A worker joins each label with the scores its transaction was given (the label join);
:class:`LiveEvaluation` keeps the newest ``window`` of those joined examples and, after
the first 100 and then every ``every`` new ones, computes the handbook's three metrics
for each score it recorded: the blended score (``blend``), the deep model's (``deep``)
and the online model's (``online``). Card precision@k is the daily one of the handbook
(a card's score is its highest that day; the day's top ``k`` cards are checked),
averaged over the days in the window. Metrics that the window cannot define (one class
only) are NaN.

Examples
--------
>>> from datetime import UTC, datetime
>>> ev = LiveEvaluation(window=100, every=4, k=1)
>>> t = datetime(2018, 6, 1, tzinfo=UTC)
>>> rows = [("a", True, 0.9), ("b", False, 0.2), ("c", False, 0.4), ("a", False, 0.1)]
>>> out = None
>>> for card, fraud, score in rows:
...     out = ev.add(card, t, fraud, {"blend": score, "deep": score, "online": None}) or out
>>> out["blend"]
(1.0, 1.0, 1.0)
>>> sorted(out)
['blend', 'deep']
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from models.scoreboard import average_precision, card_precision_at_k, roc_auc

__all__ = ["LiveEvaluation"]

ROLES = ("blend", "deep", "online")


class LiveEvaluation:
    """The newest ``window`` matured labels and their scores; metrics every ``every``."""

    def __init__(self, window: int = 20_000, every: int = 1_000, k: int = 100) -> None:
        self.window, self.every, self.k = window, every, k
        self._rows: deque[tuple[str, float, bool, dict[str, float]]] = deque(maxlen=window)
        self._since = 0
        self._first = min(every, 100)  # first figures early, then every ``every``

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self, card: str, event_time: datetime, is_fraud: bool, scores: Mapping[str, float | None]
    ) -> dict[str, tuple[float, float, float]] | None:
        """Add one matured label; every ``every`` labels return (AUC, AP, CP@k) by role."""
        kept = {r: float(v) for r, v in scores.items() if v is not None and math.isfinite(v)}
        self._rows.append((card, event_time.timestamp() // 86_400, is_fraud, kept))
        self._since += 1
        if self._since < self._first:
            return None
        self._since, self._first = 0, self.every
        return self.metrics()

    def metrics(self) -> dict[str, tuple[float, float, float]]:
        """(AUC, AP, CP@k) of each role scored on every label of the window."""
        out: dict[str, tuple[float, float, float]] = {}
        for role in ROLES:
            rows = [r for r in self._rows if role in r[3]]
            if not rows:
                continue
            y = np.fromiter((r[2] for r in rows), dtype=bool, count=len(rows))
            s = np.fromiter((r[3][role] for r in rows), dtype=np.float64, count=len(rows))
            cards = np.asarray([r[0] for r in rows], dtype=object)
            days = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
            out[role] = (
                roc_auc(y, s),
                average_precision(y, s),
                card_precision_at_k(y, s, cards, days, k=self.k),
            )
        return out
