"""Read predictions and labels back from Kafka (or files) and evaluate them.

`streamscore evaluate` applies the handbook's protocol
(:func:`models.evaluation.handbook_report`) to what the system published: the blended
``score`` of each prediction, and each label's truth. A transaction predicted more than
once (a redelivery after a restart) counts with its first prediction.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd

from streams.harness import read_topics
from streams.kafka import KafkaConnection

PREDICTION_COLUMNS = [
    "transaction_id",
    "customer_id",
    "terminal_id",
    "score",
    "deep_score",
    "online_score",
    "challenger_score",
    "decision",
    "model_versions",
    "reason_codes",
    "event_time",
    "scored_time",
]


def predictions_frame(messages: list[dict[str, Any]]) -> pd.DataFrame:
    """Prediction messages as a frame, one row per message, in the order read."""
    frame = pd.DataFrame(messages, columns=PREDICTION_COLUMNS)
    if len(frame):
        frame["model_versions"] = frame["model_versions"].map(
            lambda v: json.dumps(v, sort_keys=True)
        )
        frame["reason_codes"] = frame["reason_codes"].map(lambda v: list(v or []))
    for column in ("event_time", "scored_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def labels_frame(messages: list[dict[str, Any]]) -> pd.DataFrame:
    """Label messages as the ``labeled`` frame of the handbook protocol."""
    frame = pd.DataFrame(
        {
            "transaction_id": [m["transaction_id"] for m in messages],
            "event_time": [m["transaction_time"] for m in messages],
            "customer_id": [m["customer_id"] for m in messages],
            "is_fraud": [bool(m["is_fraud"]) for m in messages],
        }
    )
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    return frame.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)


def first_scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per transaction: its first prediction."""
    return predictions.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)


async def read_outputs(
    conn: KafkaConnection,
    predictions_topic: str,
    labels_topic: str,
    idle_timeout_s: float = 5.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every prediction and label currently on the two topics."""
    predictions: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []

    def on_message(topic: str, record: Any) -> None:
        (predictions if topic == predictions_topic else labels).append(json.loads(record.value))

    await read_topics(
        conn, [predictions_topic, labels_topic], on_message, lambda: False, idle_timeout_s
    )
    return predictions_frame(predictions), labels_frame(labels)


def read_from_broker(
    conn: KafkaConnection, predictions_topic: str, labels_topic: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blocking form of :func:`read_outputs`."""
    return asyncio.run(read_outputs(conn, predictions_topic, labels_topic))


def read_from_files(predictions: Path, transactions: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A backtest's predictions file and the transactions file it replayed."""
    from producers.frames import load_transactions

    scored = pd.read_parquet(predictions)
    frame = load_transactions(transactions)
    labeled = frame[["transaction_id", "event_time", "customer_id", "is_fraud"]]
    return scored, labeled
