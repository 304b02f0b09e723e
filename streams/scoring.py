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

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from models.blend import WeightedBlend, decide
from models.linear import LinearSnapshot
from models.protocols import Blend, Scorer
from models.reasons import occlusion_effects, top_reasons
from streams.codec import encode, encode_key
from streams.events import Decision, Prediction
from streams.records import Output
from streams.terminal import Featurized

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


class ScoreStage:
    """Scores batches with the models in :attr:`models`."""

    def __init__(self, feature_names: tuple[str, ...], config: ScoringConfig | None = None):
        self.feature_names = feature_names
        self.config = config or ScoringConfig()
        self.models = ModelSet()

    def score(self, rows: list[Featurized], now: datetime | None = None) -> Scored:
        """Score one batch; every row gets exactly one prediction."""
        models = self.models  # one reference for the whole batch
        X = np.asarray([r.values for r in rows], dtype=np.float32)
        deep = models.deep.score_batch(X).astype(np.float64) if models.deep else None
        online = models.online.predict_proba_many(X) if models.online else None
        challenger = (
            models.challenger.score_batch(X).astype(np.float64) if models.challenger else None
        )
        if deep is not None and online is not None:
            score = models.blend.blend(deep, online)
        elif deep is not None:
            score = deep
        elif online is not None:
            score = online
        else:
            score = np.full(len(rows), 0.5)
        score = np.clip(np.nan_to_num(score, nan=0.5), 0.0, 1.0)
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
                challenger_score=None if challenger is None else float(challenger[i]),
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
        return Scored(rows, X, score, deep, online, challenger, list(decisions), versions, outputs)

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
