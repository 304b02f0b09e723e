"""A worker's model lifecycle: what to do with each ``ModelUpdate``, and the shadow judge.

:class:`ModelLifecycle` is the one object a worker needs: it turns updates into
slot changes (verifying every model it loads), keeps the shadow ledger of the
challenger, and applies the promotion rule. It does no I/O beyond reading the
registry; the worker logs, counts and announces the :class:`LifecycleEvent` each
call returns.

=============  =============================================================================
update         effect
=============  =============================================================================
publish        verify; no champion yet: install as champion; else stage as challenger (shadow)
promote v      v is the challenger: promote it; v is the previous: swap back to it; otherwise
               verify v and install it (no shadow: an operator or the judge decided)
rollback v     v (the champion to return to) is the previous: swap, within one batch;
               otherwise verify v and install it
retrain        ignored (for the trainer)
=============  =============================================================================

A model that fails verification never reaches a slot: the event carries the reason
code and the champion keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from models.promotion import PromotionRule, ShadowLedger, Verdict
from models.registry import Registry
from models.rejections import Rejected, RejectReason
from models.slots import ModelSlots, SlotError
from models.verify import FeatureContract, Verified, VerifyOptions, verify, verify_version

logger = logging.getLogger(__name__)

__all__ = ["LifecycleEvent", "ModelLifecycle", "Outcome", "UpdateMessage"]

Outcome = Literal["installed", "staged", "promoted", "rolled_back", "rejected", "ignored"]


class UpdateMessage(Protocol):
    """What the lifecycle reads from a ``ModelUpdate`` event."""

    @property
    def model_name(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def version(self) -> str | None: ...

    @property
    def manifest(self) -> dict[str, Any] | None: ...

    @property
    def signature(self) -> str | None: ...


@dataclass(frozen=True)
class LifecycleEvent:
    """What an update or a judgment did; log it, count it, announce it."""

    outcome: Outcome
    version: str | None
    detail: str = ""
    reason: RejectReason | None = None
    """Reason code of a rejection."""
    champion_version: str | None = None
    """The champion after the change."""
    verdict: Verdict | None = None
    """The promotion rule's verdict, for judged promotions and rejections."""
    timings: dict[str, float] = field(default_factory=dict)
    """Verification seconds per stage, when a model was verified."""


class ModelLifecycle:
    """Drives a worker's :class:`~models.slots.ModelSlots` from updates and matured labels.

    Call :meth:`handle` for each update, :meth:`record` after scoring a batch that
    had a challenger, :meth:`matured` (or :meth:`label`) for matured labels, and
    :meth:`judge` now and then (e.g. after each batch of labels).
    """

    def __init__(
        self,
        slots: ModelSlots,
        registry: Registry,
        contract: FeatureContract,
        options: VerifyOptions | None = None,
        rule: PromotionRule | None = None,
    ) -> None:
        self.slots = slots
        self.registry = registry
        self.contract = contract
        self.options = options or VerifyOptions()
        self.rule = rule or PromotionRule()
        self.ledger: ShadowLedger | None = None
        #: End of the challenger's training window (epoch seconds): a matured label of a
        #: later transaction is one neither model learned, so both may be judged on it.
        self.unseen_after: float | None = None

    def start(self) -> LifecycleEvent:
        """Load the registry's champion (at worker start-up)."""
        champion = self.registry.pointers().champion
        if champion is None:
            return LifecycleEvent("ignored", None, "the registry has no champion yet")
        return self._install(champion, None, None, "installed")

    def _event(self, outcome: Outcome, version: str | None, **kw: Any) -> LifecycleEvent:
        return LifecycleEvent(
            outcome, version, champion_version=self.slots.snapshot().champion_version, **kw
        )

    def _verified(self, version: str, update: UpdateMessage | None) -> Verified:
        if update is not None and update.manifest is not None:
            verified = verify(update, self.registry, self.contract, self.options)
            if verified.version != version:
                raise Rejected(
                    RejectReason.BAD_MANIFEST,
                    f"update names {version}, manifest {verified.version}",
                )
            return verified
        return verify_version(version, self.registry, self.contract, self.options)

    def _install(
        self, version: str, update: UpdateMessage | None, detail: str | None, outcome: Outcome
    ) -> LifecycleEvent:
        try:
            verified = self._verified(version, update)
        except Rejected as exc:
            return self._event("rejected", version, detail=exc.detail, reason=exc.reason)
        self.slots.install(verified.scorer)
        if self.slots.snapshot().challenger is None:
            self.ledger = None
        return self._event(outcome, version, detail=detail or "", timings=verified.timings)

    def handle(self, update: UpdateMessage) -> LifecycleEvent:
        """Apply one update (see the module table)."""
        version = update.version
        if update.model_name != self.contract.model_name or version is None:
            return self._event("ignored", version, detail="not for this model family")
        state = self.slots.snapshot()
        if update.action == "publish":
            if version in (state.champion_version, state.challenger_version):
                return self._event("ignored", version, detail="already loaded")
            try:
                verified = self._verified(version, update)
            except Rejected as exc:
                return self._event("rejected", version, detail=exc.detail, reason=exc.reason)
            if state.champion is None:
                self.slots.install(verified.scorer)
                return self._event(
                    "installed", version, detail="first model", timings=verified.timings
                )
            self.slots.stage(verified.scorer)
            self.ledger = ShadowLedger(state.champion_version or "", version)
            window = verified.manifest.training_window
            self.unseen_after = None if window is None else window.end.timestamp()
            return self._event("staged", version, timings=verified.timings)
        if update.action == "promote":
            if version == state.champion_version:
                return self._event("ignored", version, detail="already champion")
            if version == state.challenger_version:
                self.slots.promote(version)
                self.ledger = None
                return self._event("promoted", version, detail="challenger promoted by update")
            if version == state.previous_version and state.previous is not None:
                self.slots.install(state.previous)
                return self._event("promoted", version, detail="previous model reinstated")
            return self._install(version, update, "loaded from the registry", "promoted")
        if update.action == "rollback":
            if version == state.champion_version:
                return self._event("ignored", version, detail="already champion")
            try:
                self.slots.rollback(version)
                return self._event("rolled_back", version, detail="previous model, kept loaded")
            except SlotError:
                return self._install(version, update, "loaded from the registry", "rolled_back")
        return self._event("ignored", version, detail=f"action {update.action} is not for workers")

    def record(
        self,
        transaction_ids: Sequence[str],
        champion: npt.ArrayLike,
        challenger: npt.ArrayLike,
        challenger_version: str,
    ) -> None:
        """Remember both scores of a batch scored with a challenger (from one snapshot)."""
        if self.ledger is not None and self.ledger.challenger_version == challenger_version:
            self.ledger.record(transaction_ids, champion, challenger)

    def label(self, transaction_id: str, is_fraud: bool) -> None:
        """Join one matured label to the shadow ledger."""
        if self.ledger is not None:
            self.ledger.label(transaction_id, is_fraud)

    def matured(
        self,
        transaction_ids: Sequence[str],
        features: npt.NDArray[np.float32],
        is_fraud: Sequence[bool],
        event_times: Sequence[float],
    ) -> int:
        """Join matured labels with their feature vectors; return how many were judged.

        A label of a shadow-scored transaction joins the scores recorded live. A label
        of a transaction scored before the challenger arrived, but after its training
        window ended, is scored now by both models from the feature vector the
        champion was given (rows ``features``, in the contract's order): neither model
        learned it, so it is fair evidence, and a daily candidate can be judged within
        hours of event time instead of a label delay after it arrived.
        """
        ledger = self.ledger
        if ledger is None:
            return 0
        judged = 0
        backfill: list[int] = []
        for i, (tx, fraud) in enumerate(zip(transaction_ids, is_fraud, strict=True)):
            if ledger.label(tx, fraud):
                judged += 1
            elif self.unseen_after is not None and event_times[i] > self.unseen_after:
                backfill.append(i)
        state = self.slots.snapshot()
        if (
            not backfill
            or state.champion is None
            or state.challenger is None
            or state.challenger_version != ledger.challenger_version
        ):
            return judged
        rows = np.asarray(features, dtype=np.float32)[backfill]
        champion = np.asarray(state.champion.score_batch(rows), dtype=np.float64).ravel()
        challenger = np.asarray(state.challenger.score_batch(rows), dtype=np.float64).ravel()
        for j, i in enumerate(backfill):
            ledger.add_matured(bool(is_fraud[i]), float(champion[j]), float(challenger[j]))
        return judged + len(backfill)

    def judge(self) -> LifecycleEvent | None:
        """Apply the promotion rule; promote or reject the challenger once it decides."""
        ledger = self.ledger
        if ledger is None or self.slots.snapshot().challenger_version != ledger.challenger_version:
            return None
        verdict = ledger.verdict(self.rule)
        version = ledger.challenger_version
        if verdict.decision == "wait":
            return None
        self.ledger = None
        if verdict.decision == "promote":
            self.slots.promote(version)
            return self._event("promoted", version, detail=verdict.detail, verdict=verdict)
        self.slots.reject(version)
        return self._event(
            "rejected", version, detail=verdict.detail, reason=verdict.reason, verdict=verdict
        )
