"""One training run of the deep model: fit, export, check, evaluate against the champion.

Pure: labeled examples in, an ONNX model and its manifest fields out; the caller
(``streamscore train`` or the trainer process) reads the data and publishes. A run:

1. splits the window by event time: the last ``eval_days`` are held out, the rest
   trains (:func:`models.nets.train_ffnn` keeps its own tail for early stopping);
2. trains the feed-forward network (progress through ``on_epoch``);
3. exports to ONNX and checks onnxruntime against torch on the held-out rows;
4. scores the held-out rows with the candidate and with the champion (the same
   rows), computes AUC, AP and card precision@100, and applies the promotion rule;
5. picks a golden set (rows spread over the candidate's score range) and records
   onnxruntime's outputs for them, which workers re-score before trusting it.

``publish`` says whether the rule lets the candidate out: with ``not_worse`` it is
published unless the held-out labels show it worse than the champion (while they
are too few to judge, it is published and the shadow run decides).

A *warm start* (``init``, the champion's network) replaces steps 1-2 and 4: the
champion's weights are fine-tuned on the whole window, newest labels included, and
the workers judge the result (see :func:`train_candidate`). The model study found a
daily one-epoch fine-tune the best schedule (docs/modeling.md).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.export import OPSET, check_parity, export_onnx
from models.nets import (
    EpochCallback,
    FraudNet,
    TrainResult,
    ffnn_weights,
    finetune_ffnn,
    heavy_tailed,
    train_ffnn,
)
from models.promotion import PromotionRule, Verdict, judge
from models.protocols import Scorer
from models.scoreboard import average_precision, card_precision_at_k, roc_auc
from models.serving import OnnxScorer
from models.settings import PromotionSettings, TrainerSettings

logger = logging.getLogger(__name__)

__all__ = [
    "WEIGHTS_FILE",
    "LabeledData",
    "TrainerConfig",
    "TrainingRun",
    "new_version",
    "train_candidate",
]

PhaseCallback = Callable[[str], None]

WEIGHTS_FILE = "weights.npz"
"""The torch weights published beside the ONNX file (:func:`models.nets.ffnn_weights`):
what a warm-started run fine-tunes. Workers never read it."""


@dataclass(frozen=True)
class TrainerConfig:
    """How a run trains and judges (see :class:`~models.settings.TrainerSettings`)."""

    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    patience: int = 3
    seed: int = 0
    threads: int = 1
    positive_weight: float = 1.0
    log_inputs: bool = True
    eval_days: float = 7.0
    min_examples: int = 1000
    golden_rows: int = 32
    publish_rule: Literal["not_worse", "always"] = "not_worse"
    finetune_epochs: int = 1
    rule: PromotionRule = field(default_factory=PromotionRule)

    @classmethod
    def from_settings(cls, trainer: TrainerSettings, promotion: PromotionSettings) -> TrainerConfig:
        """The configuration of ``STREAMSCORE_TRAINER__*`` and ``STREAMSCORE_PROMOTION__*``."""
        return cls(
            hidden=tuple(trainer.hidden),
            epochs=trainer.epochs,
            batch_size=trainer.batch_size,
            lr=trainer.lr,
            patience=trainer.patience,
            seed=trainer.seed,
            threads=trainer.threads,
            positive_weight=trainer.positive_weight,
            log_inputs=trainer.log_inputs,
            eval_days=trainer.eval_days,
            min_examples=trainer.min_examples,
            publish_rule=trainer.publish_rule,
            finetune_epochs=trainer.finetune_epochs,
            rule=PromotionRule.from_settings(promotion),
        )


@dataclass(frozen=True)
class LabeledData:
    """Labeled examples in event-time order: features, labels, times, cards."""

    X: npt.NDArray[np.float32]
    """Raw features ``[n, n_features]``."""
    y: npt.NDArray[np.bool_]
    """Labels."""
    event_time: npt.NDArray[np.float64]
    """Event time of each example, seconds since the epoch (UTC)."""
    customer_id: npt.NDArray[np.object_]
    """Card of each example (for card precision)."""
    feature_names: tuple[str, ...]
    feature_set: str

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, feature_names: Sequence[str], feature_set: str
    ) -> LabeledData:
        """Build from columns ``feature_names``, ``is_fraud``, ``event_time``, ``customer_id``.

        Rows are sorted by event time (stable).
        """
        times = pd.to_datetime(frame["event_time"], utc=True)
        order = np.argsort(times.to_numpy(dtype="datetime64[ns]"), kind="stable")
        seconds = times.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
        customers = (
            frame["customer_id"].astype(str).to_numpy(dtype=object)
            if "customer_id" in frame
            else np.full(len(frame), "", dtype=object)
        )
        return cls(
            X=frame[list(feature_names)].to_numpy(dtype=np.float32)[order],
            y=frame["is_fraud"].to_numpy(dtype=bool)[order],
            event_time=np.asarray(seconds, dtype=np.float64)[order],
            customer_id=customers[order],
            feature_names=tuple(feature_names),
            feature_set=feature_set,
        )

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: npt.NDArray[np.bool_]) -> LabeledData:
        """The examples where ``mask`` is true."""
        return LabeledData(
            self.X[mask],
            self.y[mask],
            self.event_time[mask],
            self.customer_id[mask],
            self.feature_names,
            self.feature_set,
        )


@dataclass
class TrainingRun:
    """What one run produced and decided."""

    version: str
    parent_version: str | None
    model: bytes
    """The ONNX model."""
    weights: bytes
    """Its torch weights (:data:`WEIGHTS_FILE`), for the next warm start."""
    manifest_fields: dict[str, Any]
    """Fields for :meth:`models.registry.Registry.publish`."""
    metrics: dict[str, float]
    """Candidate (``auc``, ``ap``, ``cp100``) and champion (``champion_*``) on held-out rows."""
    verdict: Verdict | None
    """The rule's verdict against the champion (``None`` without a champion)."""
    publish: bool
    """Whether the publish rule lets the candidate out."""
    publish_reason: str
    history: list[tuple[float, float]]
    """Training and validation loss per epoch."""
    best_epoch: int
    n_train: int
    n_eval: int
    mode: Literal["scratch", "finetune"] = "scratch"
    """Trained from scratch with a held-out comparison, or fine-tuned from the champion."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: ``train``, ``export``, ``evaluate``."""


def new_version(window_end: datetime, prefix: str = "ffnn") -> str:
    """A fresh version name: prefix, the window's last day, a random suffix.

    Examples
    --------
    >>> new_version(datetime(2018, 5, 6, tzinfo=UTC))[:14]
    'ffnn-20180506-'
    """
    return f"{prefix}-{window_end:%Y%m%d}-{uuid.uuid4().hex[:8]}"


def _metrics(
    data: LabeledData, score: npt.NDArray[np.float64], prefix: str = ""
) -> dict[str, float]:
    days = np.floor(data.event_time / 86_400.0)
    return {
        f"{prefix}auc": roc_auc(data.y, score),
        f"{prefix}ap": average_precision(data.y, score),
        f"{prefix}cp100": card_precision_at_k(data.y, score, data.customer_id, days, k=100),
    }


def _golden_rows(score: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.int64]:
    """Indices of ``n`` rows spread evenly over the ranking of ``score``."""
    order = np.argsort(score, kind="stable")
    picks = np.linspace(0, len(order) - 1, num=min(n, len(order))).round().astype(np.int64)
    return np.unique(order[picks])


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def train_candidate(
    data: LabeledData,
    config: TrainerConfig,
    *,
    model_name: str,
    version: str | None = None,
    champion: Scorer | None = None,
    champion_trained_until: datetime | None = None,
    init: FraudNet | None = None,
    on_epoch: EpochCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> TrainingRun:
    """Train, export, check and judge a candidate on ``data`` (see the module docstring).

    ``champion_trained_until`` is the end of the champion's training window: held-out
    labels before it are left out of the comparison, because the champion learned
    them (judged on its own training data, any champion looks better than it is).

    With ``init`` (the champion's network) the run is a warm start instead: a copy of
    ``init`` is fine-tuned for ``config.finetune_epochs`` on the *whole* window, the
    newest labels included (freshness is the point of a daily fine-tune), so nothing
    is held out and the trainer passes no verdict: the candidate is published and the
    workers judge it against the champion on matured labels that neither model has
    learned (see :class:`models.lifecycle.ModelLifecycle`). The last ``eval_days`` of
    the window still serve the ONNX parity check and the golden set.

    Raises
    ------
    ValueError
        Too few examples, or no example in the training or the held-out part.
    models.export.ParityError
        onnxruntime and torch disagree on the exported model.
    """
    if len(data) < config.min_examples:
        raise ValueError(f"{len(data)} labeled examples < min_examples {config.min_examples}")
    phase = on_phase or (lambda _: None)
    start, end = float(data.event_time[0]), float(data.event_time[-1])
    eval_start = end - config.eval_days * 86_400.0
    held_out = data.event_time >= eval_start
    if init is not None:
        if init.n_features != len(data.feature_names):
            raise ValueError(
                f"the network to fine-tune takes {init.n_features} features, "
                f"the examples have {len(data.feature_names)}"
            )
        train, test = data, data.take(held_out)
    else:
        train, test = data.take(~held_out), data.take(held_out)
    if len(train) == 0 or len(test) == 0:
        raise ValueError("the window is shorter than eval_days: nothing left to train or test")
    version = version or new_version(_utc(end))
    timings: dict[str, float] = {}

    phase("train")
    clock = time.perf_counter()
    result = _train(train, config, init, on_epoch)
    timings["train"] = time.perf_counter() - clock
    assert isinstance(result.model, FraudNet)

    phase("export")
    clock = time.perf_counter()
    model = export_onnx(result.model, None, data.feature_names, version=version)
    parity = check_parity(result.model, model, test.X[:4096], feature_names=data.feature_names)
    timings["export"] = time.perf_counter() - clock

    phase("evaluate")
    clock = time.perf_counter()
    scorer = OnnxScorer(model, feature_names=data.feature_names, provider="cpu")
    candidate_scores = scorer.score_batch(test.X).astype(np.float64)
    # A fine-tuned candidate learned the held-out rows: no metrics, no verdict.
    metrics = {} if init is not None else _metrics(test, candidate_scores)
    metrics["parity_max_abs_diff"] = parity
    verdict: Verdict | None = None
    unseen = np.ones(len(test), dtype=bool)
    if champion_trained_until is not None:
        unseen = test.event_time >= champion_trained_until.timestamp()
    if champion is not None and unseen.any() and init is None:
        fair = test.take(unseen)
        champion_scores = champion.score_batch(fair.X).astype(np.float64)
        metrics.update(_metrics(fair, champion_scores, prefix="champion_"))
        verdict = judge(config.rule, fair.y, champion_scores, candidate_scores[unseen])
    timings["evaluate"] = time.perf_counter() - clock

    if init is not None:
        publish, why = True, "fine-tuned on the whole window; workers judge it on unseen labels"
    elif config.publish_rule == "always":
        publish, why = True, "publish rule: always"
    elif verdict is None and champion is not None:
        publish, why = True, "the champion learned every held-out label; shadow decides"
    elif verdict is None:
        publish, why = True, "no champion to compare with"
    elif verdict.decision == "reject":
        publish, why = False, f"worse than the champion: {verdict.detail}"
    elif verdict.decision == "wait":
        publish, why = True, f"too few held-out labels to judge ({verdict.detail}); shadow decides"
    else:
        publish, why = True, f"not worse than the champion: {verdict.detail}"

    golden = _golden_rows(candidate_scores, config.golden_rows)
    fields: dict[str, Any] = {
        "model_name": model_name,
        "version": version,
        "feature_set": data.feature_set,
        "feature_names": data.feature_names,
        "input_shape": ("batch", len(data.feature_names)),
        "output_shape": ("batch", 1),
        "opset": OPSET,
        "training_window": {
            "start": _utc(start),
            "end": _utc(end),
            "examples": len(data),
            "positives": int(data.y.sum()),
            "eval_start": None if init is not None else _utc(float(test.event_time[0])),
        },
        "metrics": {k: round(v, 6) for k, v in metrics.items() if np.isfinite(v)},
        "parent_version": None if champion is None else champion.version,
        "golden": {
            "inputs": test.X[golden].astype(np.float64).tolist(),
            "expected": candidate_scores[golden].tolist(),
        },
    }
    logger.info(
        "trained %s: %s",
        version,
        ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
    )
    return TrainingRun(
        version=version,
        parent_version=fields["parent_version"],
        model=model,
        weights=ffnn_weights(result.model),
        manifest_fields=fields,
        metrics=metrics,
        verdict=verdict,
        publish=publish,
        publish_reason=why,
        history=result.history,
        best_epoch=result.best_epoch,
        n_train=len(train),
        n_eval=0 if init is not None else len(test),
        mode="scratch" if init is None else "finetune",
        timings=timings,
    )


def _train(
    train: LabeledData, config: TrainerConfig, init: FraudNet | None, on_epoch: EpochCallback | None
) -> TrainResult:
    if init is not None:
        return finetune_ffnn(
            init,
            train.X,
            train.y,
            epochs=config.finetune_epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            class_weight=config.positive_weight,
            seed=config.seed,
            num_threads=config.threads,
            on_epoch=on_epoch,
        )
    return train_ffnn(
        train.X,
        train.y,
        hidden=config.hidden,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        patience=config.patience,
        seed=config.seed,
        num_threads=config.threads,
        on_epoch=on_epoch,
        class_weight=config.positive_weight,
        log_columns=heavy_tailed(train.feature_names) if config.log_inputs else (),
    )
