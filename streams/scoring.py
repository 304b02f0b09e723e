"""The scoring stage: one feature matrix, one ONNX call, one online call per batch.

Pure: takes featurized rows and the models in service (:class:`ModelSet`, swapped as
one reference so a batch is scored by exactly one set of versions) and returns the
predictions to publish.

- **Deep score**: the ONNX champion (:class:`models.serving.OnnxScorer`), and the
  challenger in shadow when one is loaded (recorded, never used for decisions).
- **Online score**: the online logistic model from its latest snapshot
  (:class:`models.linear.LinearSnapshot`).
- **Blend**: the configured rule (default: weighted mean of probabilities,
  ``w_deep`` to the deep model); with only one model in service, its score.
- **Decision**: ``decline`` at or above the decline threshold, ``review`` at or above
  the review threshold, else ``approve``.
- **Reason codes**: the features with the largest positive contribution
  ``w_i * z_i`` to the online model's logit (exact for a linear model, 0.3 µs per
  row), strongest first; when no online model is in service, the features the deep
  model is most sensitive to by occlusion (each candidate set to its training mean,
  rescored in one batched call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.blend import WeightedBlend, decide
from models.linear import LinearSnapshot
from models.protocols import Blend, Scorer
from models.reasons import occlusion_effects, top_reasons
from streams.codec import Reason, encode, encode_key
from streams.deadletter import dead_letter, to_output
from streams.events import Decision, Prediction, Stage
from streams.records import Output, Record
from streams.terminal import Featurized

logger = logging.getLogger(__name__)

DECISIONS = (Decision.APPROVE, Decision.REVIEW, Decision.DECLINE)


@dataclass(frozen=True)
class ModelSet:
    """The models in service, swapped as one reference."""

    deep: Scorer | None = None
    online: LinearSnapshot | None = None
    blend: Blend = field(default_factory=WeightedBlend)
    challenger: Scorer | None = None
    deep_mean: np.ndarray | None = None

    def versions(self) -> dict[str, str]:
        """Version of each model in service, by role."""
        out = {"blend": self.blend.version}
        if self.deep is not None:
            out["deep"] = self.deep.version
        if self.online is not None:
            out["online"] = self.online.version
        if self.challenger is not None:
            out["challenger"] = self.challenger.version
        return out


@dataclass(frozen=True)
class ScoringConfig:
    """Plain configuration of the scoring stage."""

    predictions_topic: str = "predictions"
    dead_letter_topic: str = "dead-letters"
    source_topic: str = "txn-by-terminal"
    review_threshold: float = 0.5
    decline_threshold: float = 0.9
    reason_codes: int = 3


@dataclass
class Scored:
    """One batch's scores, kept for the label join and for metrics."""

    rows: list[Featurized]
    matrix: np.ndarray
    score: np.ndarray
    deep: np.ndarray | None
    online: np.ndarray | None
    challenger: np.ndarray | None
    decisions: list[str]
    versions: dict[str, str]
    outputs: list[Output]
    dead: list[Output] = field(default_factory=list)
    """Dead letters of rows that could not be scored (not in ``rows``)."""
    dead_reasons: list[str] = field(default_factory=list)
    """Their reason codes."""


class ScoreStage:
    """Scores batches with the models in :attr:`models`."""

    def __init__(self, feature_names: tuple[str, ...], config: ScoringConfig | None = None):
        self.feature_names = feature_names
        self.config = config or ScoringConfig()
        self.models = ModelSet()

    def score(self, rows: list[Featurized], now: datetime | None = None) -> Scored:
        """Score one batch; every row gets exactly one prediction or one dead letter.

        A model that raises on the batch is retried row by row, so only the rows it
        fails on are dead-lettered (``scoring_error``); a row whose blended score is not
        a probability (NaN, infinite) is dead-lettered as ``non_finite_score``. The
        challenger only shadows: its failures leave ``challenger_score`` empty.
        """
        models = self.models  # one reference for the whole batch
        X = np.asarray([r.values for r in rows], dtype=np.float32)
        failed: dict[int, tuple[Reason, str]] = {}
        deep = _per_row(models.deep.score_batch, X, failed, "deep") if models.deep else None
        online = (
            _per_row(models.online.predict_proba_many, X, failed, "online")
            if models.online
            else None
        )
        challenger = _shadow(models.challenger, X) if models.challenger else None
        if deep is not None and online is not None:
            score = np.asarray(models.blend.blend(deep, online), dtype=np.float64)
        elif deep is not None:
            score = deep
        elif online is not None:
            score = online
        else:
            score = np.full(len(rows), 0.5)
        for i in np.flatnonzero(~np.isfinite(score) | (score < 0.0) | (score > 1.0)).tolist():
            if i not in failed:
                parts = [f"score {score[i]}"]
                parts += [] if deep is None else [f"deep {deep[i]}"]
                parts += [] if online is None else [f"online {online[i]}"]
                failed[i] = (Reason.NON_FINITE_SCORE, ", ".join(parts))
        dead, dead_reasons = self._dead_letters(rows, failed)
        if failed:
            keep = np.asarray([i for i in range(len(rows)) if i not in failed], dtype=np.int64)
            rows = [rows[i] for i in keep.tolist()]
            X, score = X[keep], score[keep]
            deep = None if deep is None else deep[keep]
            online = None if online is None else online[keep]
            challenger = None if challenger is None else challenger[keep]
        decisions = decide(
            score, review=self.config.review_threshold, decline=self.config.decline_threshold
        )
        reasons = self._reasons(models, X, deep)
        versions = models.versions()
        scored_time = now or datetime.now(UTC)
        outputs = []
        for i, row in enumerate(rows):
            tx = row.enriched.transaction
            prediction = Prediction(
                transaction_id=tx.transaction_id,
                customer_id=tx.customer_id,
                terminal_id=tx.terminal_id,
                score=float(score[i]),
                deep_score=None if deep is None else float(deep[i]),
                online_score=None if online is None else float(online[i]),
                challenger_score=(
                    None
                    if challenger is None or not np.isfinite(challenger[i])
                    else float(challenger[i])
                ),
                decision=decisions[i],
                model_versions=versions,
                reason_codes=reasons[i],
                event_time=tx.event_time,
                scored_time=scored_time,
            )
            outputs.append(
                Output(
                    self.config.predictions_topic,
                    encode_key(tx.transaction_id),
                    encode(prediction),
                    int(tx.event_time.timestamp() * 1000),
                )
            )
        return Scored(
            rows,
            X,
            score,
            deep,
            online,
            challenger,
            list(decisions),
            versions,
            outputs,
            dead,
            dead_reasons,
        )

    def _dead_letters(
        self, rows: list[Featurized], failed: dict[int, tuple[Reason, str]]
    ) -> tuple[list[Output], list[str]]:
        outputs, reasons = [], []
        for i, (reason, error) in sorted(failed.items()):
            row = rows[i]
            tx = row.enriched.transaction
            # The message this stage consumed: the enriched transaction, as it came.
            record = Record(
                self.config.source_topic,
                row.partition,
                row.offset,
                encode_key(tx.terminal_id),
                encode(row.enriched),
            )
            letter = dead_letter(
                record, Stage.SCORE, reason, error, transaction_id=str(tx.transaction_id)
            )
            outputs.append(to_output(letter, self.config.dead_letter_topic, record.key))
            reasons.append(reason.value)
        return outputs, reasons

    def _reasons(self, models: ModelSet, X: np.ndarray, deep: np.ndarray | None) -> list[list[str]]:
        k = self.config.reason_codes
        if k <= 0:
            return [[] for _ in range(len(X))]
        if models.online is not None:
            effects = models.online.contributions_many(X)
        elif models.deep is not None and models.deep_mean is not None:
            effects = occlusion_effects(models.deep, X, models.deep_mean, scores=deep)
        else:
            return [[] for _ in range(len(X))]
        return top_reasons(effects, k=k).names(self.feature_names)


def _per_row(
    model: Callable[[np.ndarray], Any],
    X: np.ndarray,
    failed: dict[int, tuple[Reason, str]],
    name: str,
) -> np.ndarray:
    """``model(X)`` as float64; if it raises, row by row, failing rows NaN and in ``failed``."""
    try:
        return np.asarray(model(X), dtype=np.float64).reshape(len(X))
    except Exception:  # noqa: BLE001 - any model error: isolate the rows that cause it
        logger.warning("%s model failed on a batch of %d; scoring row by row", name, len(X))
    out = np.full(len(X), np.nan)
    for i in range(len(X)):
        try:
            out[i] = float(np.asarray(model(X[i : i + 1]), dtype=np.float64).reshape(1)[0])
        except Exception as exc:  # noqa: BLE001
            failed.setdefault(i, (Reason.SCORING_ERROR, f"{name} model: {exc}"[:2048]))
    return out


def _shadow(challenger: Scorer, X: np.ndarray) -> np.ndarray | None:
    """The challenger's scores (shadow only): NaN where not finite, None if it raises."""
    try:
        return np.asarray(challenger.score_batch(X), dtype=np.float64).reshape(len(X))
    except Exception as exc:  # noqa: BLE001
        logger.warning("challenger %s failed on a batch: %s", challenger.version, exc)
        return None
