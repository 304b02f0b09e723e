"""Ranking metrics for fraud scores: AUC ROC, average precision, card precision@k.

Pure numpy/pandas. The definitions follow scikit-learn's ``roc_auc_score`` and
``average_precision_score`` (ties in scores handled the same way) and the card
precision@k of the Fraud Detection Handbook (Le Borgne et al., chapter 4).

Where a metric is undefined (no positive or no negative example) the functions return
NaN rather than raising, so that a day with no fraud does not break a live dashboard.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "CardPrecision",
    "average_precision",
    "card_precision_at_k",
    "roc_auc",
]

ArrayLike = npt.ArrayLike


def _binary_inputs(
    y: ArrayLike, score: ArrayLike
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Check and convert labels (0/1 or bool) and finite scores of the same length."""
    y_arr = np.asarray(y)
    s_arr = np.asarray(score, dtype=np.float64)
    if y_arr.ndim != 1 or s_arr.ndim != 1:
        raise ValueError("labels and scores must be one-dimensional")
    if y_arr.shape != s_arr.shape:
        raise ValueError(f"{y_arr.shape[0]} labels but {s_arr.shape[0]} scores")
    if not np.isfinite(s_arr).all():
        raise ValueError("scores must be finite (no NaN or infinity)")
    if y_arr.dtype != np.bool_:
        if y_arr.size and not np.isin(y_arr, (0, 1)).all():
            raise ValueError("labels must be 0/1 or boolean")
        y_arr = y_arr.astype(np.bool_)
    return y_arr, s_arr


def roc_auc(y: ArrayLike, score: ArrayLike) -> float:
    """Return the area under the ROC curve of ``score`` for binary labels ``y``.

    Tied scores count one half (the Mann-Whitney statistic with average ranks), which is
    what scikit-learn's ``roc_auc_score`` computes.

    Parameters
    ----------
    y
        Labels, 0/1 or boolean; 1 is the positive (fraud) class.
    score
        Finite scores, higher meaning more likely positive.

    Returns
    -------
    float
        The AUC in [0, 1], or NaN when ``y`` holds only one class (undefined).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    0.5
    >>> roc_auc([1, 1], [0.2, 0.3])
    nan
    """
    y_arr, s_arr = _binary_inputs(y, score)
    n_pos = int(y_arr.sum())
    n_neg = y_arr.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s_arr, kind="mergesort")
    sorted_scores = s_arr[order]
    # Average ranks (1-based) of tied runs: every member of a run gets its midpoint.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], sorted_scores.size]
    run_rank = (starts + ends + 1) / 2.0
    ranks = np.repeat(run_rank, ends - starts)
    pos_rank_sum = float(ranks[y_arr[order]].sum())
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def average_precision(y: ArrayLike, score: ArrayLike) -> float:
    """Return the average precision of ``score`` for binary labels ``y``.

    AP = sum over distinct score thresholds, from the highest down, of the recall gained
    at that threshold times the precision there -- scikit-learn's
    ``average_precision_score`` (no interpolation; tied scores enter together).

    Parameters
    ----------
    y
        Labels, 0/1 or boolean; 1 is the positive (fraud) class.
    score
        Finite scores, higher meaning more likely positive.

    Returns
    -------
    float
        The AP in [0, 1]; NaN when ``y`` holds no positive (undefined); 1.0 when every
        label is positive.

    Examples
    --------
    >>> average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.8333333333333333
    >>> average_precision([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    0.5
    >>> average_precision([0, 0], [0.2, 0.3])
    nan
    """
    y_arr, s_arr = _binary_inputs(y, score)
    n_pos = int(y_arr.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s_arr, kind="mergesort")
    sorted_scores = s_arr[order]
    hits = np.cumsum(y_arr[order], dtype=np.int64)
    # The last index of each run of equal scores is where that threshold's counts stand.
    last = np.r_[np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), sorted_scores.size - 1]
    tp = hits[last].astype(np.float64)
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0.0, tp]) / n_pos
    return float(np.sum(recall_gain * precision))


@dataclass(frozen=True)
class CardPrecision:
    """Card precision@k per day and its mean.

    Attributes
    ----------
    k
        Number of cards (customers) checked per day.
    days
        The days, in increasing order.
    per_day
        Precision@k of each day, aligned with ``days``.
    detected
        Number of compromised cards found in each day's top k, aligned with ``days``.
    """

    k: int
    days: tuple[Any, ...]
    per_day: tuple[float, ...]
    detected: tuple[int, ...]

    @property
    def mean(self) -> float:
        """The mean over days (NaN when there is no day)."""
        return float(np.mean(self.per_day)) if self.per_day else float("nan")


def card_precision_at_k(
    day: ArrayLike,
    customer_id: ArrayLike,
    score: ArrayLike,
    is_fraud: ArrayLike,
    *,
    k: int = 100,
    carry_days: int | None = None,
) -> CardPrecision:
    """Return the card precision@k of each day, the handbook's way.

    Each day, every customer gets the highest score of their transactions that day and
    is compromised if any of those transactions is a fraud. The ``k`` customers with the
    highest scores are checked (ties broken by ascending customer id, so the result is
    deterministic); precision is the number of compromised ones among them divided by
    ``k`` (also when fewer than ``k`` customers transacted). A compromised customer found
    in a day's top ``k`` is left out of the following days, as a blocked card would be.

    Parameters
    ----------
    day
        Integer day of each transaction (e.g. days since an origin, in event time).
    customer_id
        Card or customer of each transaction.
    score
        Score of each transaction.
    is_fraud
        Label of each transaction (0/1 or boolean).
    k
        Cards checked per day.
    carry_days
        How many following days a detected card stays left out; ``None`` (the
        handbook's block protocol) keeps it out of every later day passed in.

    Returns
    -------
    CardPrecision
        Per-day precision and detections, and their mean.

    Examples
    --------
    >>> cp = card_precision_at_k(
    ...     day=[0, 0, 0, 1, 1],
    ...     customer_id=["a", "b", "c", "a", "c"],
    ...     score=[0.9, 0.8, 0.1, 0.9, 0.2],
    ...     is_fraud=[1, 0, 0, 1, 1],
    ...     k=2,
    ... )
    >>> cp.per_day, cp.detected, cp.mean
    ((0.5, 0.5), (1, 1), 0.5)
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if carry_days is not None and carry_days < 0:
        raise ValueError("carry_days must be non-negative")
    y_arr, s_arr = _binary_inputs(is_fraud, score)
    frame = pd.DataFrame(
        {
            "day": np.asarray(day),
            "customer": np.asarray(customer_id),
            "score": s_arr,
            "fraud": y_arr,
        }
    )
    if len(frame) != y_arr.size:
        raise ValueError("day, customer_id, score and is_fraud must have the same length")
    cards = frame.groupby(["day", "customer"], sort=True).agg(
        score=("score", "max"), fraud=("fraud", "max")
    )
    days: list[Hashable] = []
    per_day: list[float] = []
    found: list[int] = []
    detected_on: dict[Hashable, Any] = {}  # customer -> last day it was detected
    for d, group in cards.groupby(level="day", sort=True):
        customers = group.index.get_level_values("customer")
        blocked = [c for c, seen in detected_on.items() if _still_blocked(seen, d, carry_days)]
        if blocked:
            keep = ~customers.isin(blocked)
            group = group[keep]
            customers = customers[keep]
        ranked = pd.DataFrame(
            {
                "customer": customers,
                "score": group["score"].to_numpy(),
                "fraud": group["fraud"].to_numpy(),
            }
        ).sort_values(["score", "customer"], ascending=[False, True], kind="mergesort")
        top = ranked.head(k)
        hits = top.loc[top["fraud"], "customer"].tolist()
        days.append(d)
        per_day.append(len(hits) / k)
        found.append(len(hits))
        for c in hits:
            detected_on[c] = d
    return CardPrecision(k=k, days=tuple(days), per_day=tuple(per_day), detected=tuple(found))


def _still_blocked(detected_day: Any, day: Any, carry_days: int | None) -> bool:
    """Whether a card detected on ``detected_day`` is still left out on ``day``."""
    if carry_days is None:
        return True
    return bool(day - detected_day <= carry_days)
