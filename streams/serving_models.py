"""The models a worker serves, and how `model-updates` change them.

Deep models go through :class:`models.lifecycle.ModelLifecycle`: every model is
verified before it is loaded (signature, hashes, ONNX checks, feature contract, golden
set, warm-up), a newly published model scores in shadow as challenger until enough
labels have matured for the promotion rule (labels of transactions it scored live,
and of transactions newer than its training window that the champion scored before
it arrived), and the previous champion stays loaded
for an instant rollback. Online snapshots (plain numbers, signed) replace the online
model directly. After each change the scoring stage gets one new
:class:`~streams.scoring.ModelSet`: a batch is always scored by one set of versions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from models.features import FEATURE_NAMES
from models.lifecycle import LifecycleEvent, ModelLifecycle
from models.linear import LinearSnapshot
from models.promotion import PromotionRule
from models.registry import Registry, registry_root
from models.settings import ModelsSettings
from models.signing import load_keys
from models.slots import ModelSlots
from models.verify import FeatureContract, VerifyOptions
from streams import metrics
from streams.events import LabeledExample, ModelUpdate, ModelUpdateAction
from streams.scoring import Scored, ScoreStage
from streams.terminal import FEATURE_SET

logger = logging.getLogger(__name__)


class ServedModels:
    """Applies model updates and shadow judgments to a :class:`ScoreStage`."""

    def __init__(self, scorer: ScoreStage, settings: ModelsSettings) -> None:
        self.scorer = scorer
        root = registry_root(settings.registry.uri)
        _, self.verifier = load_keys(settings.registry, root)
        registry = Registry(root, self.verifier, None, settings.registry.model_name)
        self.lifecycle = ModelLifecycle(
            ModelSlots(),
            registry,
            FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES), settings.registry.model_name),
            VerifyOptions(
                max_file_bytes=settings.registry.max_file_bytes,
                provider=settings.scoring.provider,
                intra_op_threads=settings.scoring.intra_op_threads,
            ),
            PromotionRule.from_settings(settings.promotion),
        )
        self.model_name = settings.registry.model_name
        #: Updates this worker wants announced (judged promotions and rejections).
        self.announcements: asyncio.Queue[ModelUpdate] = asyncio.Queue()

    async def start(self) -> None:
        """Load the registry's champion (verification runs off the event loop)."""
        self._apply(await asyncio.to_thread(self.lifecycle.start))

    async def on_update(self, update: ModelUpdate) -> None:
        """Apply one `model-updates` message."""
        if update.model_name == "online":
            self._online(update)
        elif update.model_name == self.model_name:
            if update.action == ModelUpdateAction.REJECT:
                state = self.lifecycle.slots.snapshot()
                if update.version is not None and update.version == state.challenger_version:
                    self.lifecycle.slots.reject(update.version)
                    self.lifecycle.ledger = None
                    self._sync()
                return
            self._apply(await asyncio.to_thread(self.lifecycle.handle, update))

    def _online(self, update: ModelUpdate) -> None:
        if update.action != ModelUpdateAction.PUBLISH:
            return
        if update.manifest is None or update.signature is None:
            self._reject("online", "missing_signature", update.version)
            return
        try:
            snap = LinearSnapshot.from_dict(update.manifest)
        except (KeyError, TypeError, ValueError) as exc:
            self._reject("online", "bad_manifest", update.version, str(exc))
            return
        if not snap.verify(self.verifier, update.signature):
            self._reject("online", "bad_signature", update.version)
            return
        if snap.feature_names != tuple(FEATURE_NAMES):
            self._reject("online", "contract_mismatch", update.version)
            return
        self.scorer.models = replace(self.scorer.models, online=snap)
        metrics.MODEL_SWAPS.labels("online").inc()
        metrics.set_models_in_service(self.scorer.models.versions())

    def record_shadow(self, scored: Scored) -> None:
        """Remember champion and challenger scores of a batch scored with both."""
        challenger = scored.versions.get("challenger")
        if challenger is None or scored.deep is None or scored.challenger is None:
            return
        ids = [r.enriched.transaction.transaction_id for r in scored.rows]
        self.lifecycle.record(ids, scored.deep, scored.challenger, challenger)

    def on_examples(self, examples: Sequence[LabeledExample]) -> None:
        """Feed matured labels, with the features they were scored on, to the shadow
        judge (see :meth:`models.lifecycle.ModelLifecycle.matured`); apply its verdict."""
        if self.lifecycle.ledger is None or not examples:
            return
        try:
            self.lifecycle.matured(
                [ex.transaction_id for ex in examples],
                np.asarray([ex.values for ex in examples], dtype=np.float32),
                [ex.is_fraud for ex in examples],
                [ex.event_time.timestamp() for ex in examples],
            )
        except (ValueError, RuntimeError) as exc:  # onnxruntime errors are RuntimeErrors
            logger.warning("shadow judge could not score matured labels: %s", exc)
        self._judge()

    def _judge(self) -> None:
        event = self.lifecycle.judge()
        if event is None:
            return
        self._apply(event)
        action = ModelUpdateAction.PROMOTE if event.outcome == "promoted" else None
        reason = event.detail
        if event.outcome == "rejected":
            action = ModelUpdateAction.REJECT
            code = event.reason.value if event.reason is not None else "unknown"
            reason = f"{code}: {event.detail}"
        if action is not None:
            self.announcements.put_nowait(
                ModelUpdate(
                    model_name=self.model_name,
                    action=action,
                    version=event.version,
                    reason=reason[:512] or None,
                    issued_time=datetime.now(UTC),
                )
            )

    def _apply(self, event: LifecycleEvent) -> None:
        extra = {
            "outcome": event.outcome,
            "model_version": event.version,
            "champion": event.champion_version,
            "detail": event.detail,
        }
        if event.outcome == "rejected":
            reason = event.reason.value if event.reason is not None else "unknown"
            self._reject("deep", reason, event.version, event.detail)
        elif event.outcome in ("installed", "staged", "promoted", "rolled_back"):
            logger.info("deep model %s", event.outcome, extra=extra)
            if event.outcome == "rolled_back":
                metrics.MODEL_ROLLBACKS.labels("deep").inc()
            elif event.outcome == "promoted":
                metrics.MODEL_PROMOTIONS.inc()
            metrics.MODEL_SWAPS.labels("deep").inc()
        self._sync()

    def _sync(self) -> None:
        state = self.lifecycle.slots.snapshot()
        self.scorer.models = replace(
            self.scorer.models, deep=state.champion, challenger=state.challenger
        )
        metrics.set_models_in_service(self.scorer.models.versions())

    def _reject(self, role: str, reason: str, version: str | None, detail: str = "") -> None:
        metrics.MODEL_REJECTIONS.labels(role, reason).inc()
        logger.warning(
            "model rejected",
            extra={"role": role, "reason": reason, "model_version": version, "detail": detail},
        )
