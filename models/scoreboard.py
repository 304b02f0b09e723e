"""Ranking metrics of the model lifecycle: AUC ROC, average precision, card precision@k.

AUC and AP follow scikit-learn (``roc_auc_score``, ``average_precision_score``, ties
handled the same way); card precision@k follows the Fraud Detection Handbook's daily
definition (without its exclusion of cards already known to be compromised). Where a
metric is undefined (no positive or no negative label) it is NaN. The trainer and the
promotion rule compute their metrics here, in one place.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["average_precision", "card_precision_at_k", "roc_auc"]


def _inputs(
    y: npt.ArrayLike, score: npt.ArrayLike
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    yb = np.asarray(y).astype(bool).reshape(-1)
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    if yb.shape != s.shape:
        raise ValueError(f"{yb.shape[0]} labels but {s.shape[0]} scores")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    return yb, s


def roc_auc(y: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve (ties count one half); NaN without both classes.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([0, 1, 1], [0.5, 0.5, 0.9])
    0.75
    """
    yb, s = _inputs(y, score)
    n_pos = int(yb.sum())
    n_neg = len(yb) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # Average ranks over runs of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[yb].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Average precision: sum over thresholds of (recall step) x precision; NaN without frauds.

    Examples
    --------
    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    yb, s = _inputs(y, score)
    n_pos = int(yb.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], yb[order]
    # One point per distinct threshold: the last index of each run of equal scores.
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), len(s) - 1]
    tp = np.cumsum(y_sorted)[last]
    predicted = last + 1
    precision = tp / predicted
    recall = tp / n_pos
    steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(steps * precision))


def card_precision_at_k(
    y: npt.ArrayLike,
    score: npt.ArrayLike,
    cards: npt.ArrayLike,
    days: npt.ArrayLike,
    k: int = 100,
) -> float:
    """Mean over days of the share of compromised cards among the day's top ``k`` cards.

    Each day, a card's score is its highest transaction score and it counts as
    compromised if any of its transactions that day is a fraud; the ``k`` highest
    scored cards are checked (precision is over ``k`` even on days with fewer cards).

    Examples
    --------
    >>> card_precision_at_k(
    ...     y=[1, 0, 0, 0], score=[0.9, 0.8, 0.1, 0.7],
    ...     cards=["a", "b", "a", "c"], days=[0, 0, 0, 1], k=2)
    0.25
    """
    yb, s = _inputs(y, score)
    frame = pd.DataFrame(
        {
            "y": yb,
            "s": s,
            "card": np.asarray(cards).reshape(-1),
            "day": np.asarray(days).reshape(-1),
        }
    )
    if frame.empty:
        return float("nan")
    per_card = frame.groupby(["day", "card"], sort=False).agg(y=("y", "max"), s=("s", "max"))
    per_card = per_card.sort_values("s", ascending=False, kind="mergesort")
    top = per_card.groupby(level="day", sort=False).head(k)
    hits = top.groupby(level="day")["y"].sum()
    return float((hits / k).mean())
