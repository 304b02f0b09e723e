"""Labeled training frames from a transactions file (the first training, before any stream).

The stream's features come from the feature core; so do these: :func:`featurize` is
the one place the trainer calls it. A file of precomputed features (such as the
handbook's ``reference_features.parquet``, which holds the values the stream must
reproduce) can stand in for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import timedelta

import pandas as pd

__all__ = ["WARMUP", "featurize", "join_features", "labeled_frame"]

WARMUP = timedelta(days=37)
"""Event time read before a window so every feature window is full at its start
(30-day windows, shifted by the 7-day label delay)."""


def featurize(transactions: pd.DataFrame, label_delay: timedelta) -> pd.DataFrame:
    """Features of every transaction as the stream computes them, indexed by transaction id.

    ``transactions`` has the common layout (:mod:`producers.frames`) with ``is_fraud``;
    labels become known ``label_delay`` after each transaction, and the terminal
    windows use the same delay.
    """
    core = importlib.import_module("models.features")
    featurize_frame = getattr(core, "featurize_frame", None)
    if featurize_frame is None:
        raise RuntimeError(
            "this build has no feature core (models.features.featurize_frame): "
            "give a precomputed features file instead"
        )
    features: pd.DataFrame = featurize_frame(transactions, label_delay, delay=label_delay)
    return features


def join_features(
    transactions: pd.DataFrame, features: pd.DataFrame, feature_names: Sequence[str]
) -> pd.DataFrame:
    """Features of ``transactions`` from a precomputed table, indexed by transaction id.

    ``features`` has a ``transaction_id`` (or ``TRANSACTION_ID``) column or index and
    feature columns; ``TX_AMOUNT``, when absent, is the transaction's amount.

    Raises
    ------
    ValueError
        A feature column is missing, or a transaction has no features.
    """
    table = features.rename(columns={"TRANSACTION_ID": "transaction_id"})
    if "transaction_id" in table.columns:
        table = table.set_index("transaction_id")
    table.index = table.index.astype(str)
    if "TX_AMOUNT" in feature_names and "TX_AMOUNT" not in table.columns:
        amounts = transactions.set_index(transactions["transaction_id"].astype(str))["amount"]
        table = table.assign(TX_AMOUNT=amounts.reindex(table.index))
    missing = [name for name in feature_names if name not in table.columns]
    if missing:
        raise ValueError(f"features file lacks columns {missing}")
    ids = transactions["transaction_id"].astype(str)
    absent = ~ids.isin(table.index)
    if absent.any():
        raise ValueError(
            f"{int(absent.sum())} transactions have no features (e.g. {ids[absent].iloc[0]})"
        )
    out = table.loc[ids, list(feature_names)].astype("float64")
    out.index.name = "transaction_id"
    return out


def labeled_frame(
    transactions: pd.DataFrame, features: pd.DataFrame, feature_names: Sequence[str]
) -> pd.DataFrame:
    """Features with ``is_fraud``, ``event_time`` and ``customer_id``, one row per transaction.

    ``features`` is indexed by transaction id (as :func:`featurize` and
    :func:`join_features` return it).

    Examples
    --------
    >>> tx = pd.DataFrame({"transaction_id": ["1", "2"], "customer_id": ["c", "d"],
    ...     "event_time": pd.to_datetime(["2018-04-01", "2018-04-02"], utc=True),
    ...     "amount": [5.0, 7.0], "is_fraud": [False, True]})
    >>> feats = pd.DataFrame({"A": [0.5, 1.5]}, index=pd.Index(["1", "2"], name="transaction_id"))
    >>> labeled_frame(tx, feats, ["A"])[["A", "is_fraud", "customer_id"]].to_dict("list")
    {'A': [0.5, 1.5], 'is_fraud': [False, True], 'customer_id': ['c', 'd']}
    """
    if "is_fraud" not in transactions:
        raise ValueError("transactions have no is_fraud column: nothing to learn from")
    ids = transactions["transaction_id"].astype(str)
    table = features.copy()
    table.index = table.index.astype(str)
    out = table.loc[ids, list(feature_names)].reset_index(drop=True)
    out["is_fraud"] = transactions["is_fraud"].astype(bool).reset_index(drop=True)
    out["event_time"] = transactions["event_time"].reset_index(drop=True)
    out["customer_id"] = transactions["customer_id"].astype(str).reset_index(drop=True)
    return out
