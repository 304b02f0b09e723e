"""The promotion rule: does a newcomer replace the champion? Judged on matured labels.

The same rule judges a challenger in shadow (scored on live traffic next to the
champion, its labels arriving days later) and a candidate the trainer just fit
(scored next to the champion on the trainer's held-out examples). Both models are
always scored on the *same* transactions.

The rule (thresholds from :class:`~models.settings.PromotionSettings`):

- **wait** while fewer than ``min_labels`` labels, or fewer than ``min_positives``
  frauds, or no genuine transaction have matured;
- once ``max_labels`` have matured and the rule still waits: **reject**
  (``insufficient_evidence``);
- **reject** (``worse_than_champion``) if the newcomer's average precision is below
  the champion's by more than ``max_ap_drop``, or its AUC ROC by more than
  ``max_auc_drop``;
- **promote** otherwise.

Average precision leads because frauds are rare (AUC barely moves when the top of
the ranking changes); AUC guards against a model that wins at the top but ranks the
rest badly.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from models.rejections import RejectReason
from models.scoreboard import average_precision, roc_auc
from models.settings import PromotionSettings

__all__ = ["Decision", "PromotionRule", "ShadowLedger", "Verdict", "judge"]

Decision = Literal["promote", "reject", "wait"]


@dataclass(frozen=True)
class PromotionRule:
    """Thresholds of the rule (see the module docstring)."""

    min_labels: int = 2000
    min_positives: int = 20
    max_ap_drop: float = 0.0
    max_auc_drop: float = 0.005
    max_labels: int = 200_000

    @classmethod
    def from_settings(cls, settings: PromotionSettings) -> PromotionRule:
        """The rule configured by ``STREAMSCORE_PROMOTION__*``."""
        return cls(**settings.model_dump())


@dataclass(frozen=True)
class Verdict:
    """What the rule decided, why, and on what evidence."""

    decision: Decision
    detail: str
    labels: int
    positives: int
    reason: RejectReason | None = None
    """The reason code of a rejection."""
    champion: dict[str, float] = field(default_factory=dict)
    """Champion's ``auc`` and ``ap`` on the judged labels (empty while waiting)."""
    newcomer: dict[str, float] = field(default_factory=dict)
    """Newcomer's ``auc`` and ``ap``."""


def judge(
    rule: PromotionRule,
    y: npt.ArrayLike,
    champion: npt.ArrayLike,
    newcomer: npt.ArrayLike,
) -> Verdict:
    """Apply ``rule`` to the matured labels ``y`` and both models' scores of them.

    Examples
    --------
    >>> rule = PromotionRule(min_labels=100, min_positives=10)
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(1000) < 0.1
    >>> noise = rng.random(1000)
    >>> good, poor = 0.8 * y + 0.5 * noise, 0.2 * y + 0.5 * noise
    >>> judge(rule, y, poor, good).decision
    'promote'
    >>> v = judge(rule, y, good, poor)
    >>> v.decision, v.reason.value
    ('reject', 'worse_than_champion')
    >>> judge(rule, y[:50], good[:50], poor[:50]).decision
    'wait'
    """
    yb = np.asarray(y).astype(bool).reshape(-1)
    n, pos = len(yb), int(yb.sum())
    if n < rule.min_labels or pos < rule.min_positives or pos == n:
        if n >= rule.max_labels:
            return Verdict(
                "reject",
                f"{n} labels ({pos} frauds) matured without reaching {rule.min_labels} labels "
                f"and {rule.min_positives} frauds",
                n,
                pos,
                RejectReason.INSUFFICIENT_EVIDENCE,
            )
        return Verdict(
            "wait",
            f"{n}/{rule.min_labels} labels, {pos}/{rule.min_positives} frauds",
            n,
            pos,
        )
    old = {"auc": roc_auc(yb, champion), "ap": average_precision(yb, champion)}
    new = {"auc": roc_auc(yb, newcomer), "ap": average_precision(yb, newcomer)}
    summary = (
        f"AP {new['ap']:.4f} vs {old['ap']:.4f}, AUC {new['auc']:.4f} vs {old['auc']:.4f} "
        f"on {n} labels ({pos} frauds)"
    )
    if new["ap"] < old["ap"] - rule.max_ap_drop:
        detail = f"{summary}: AP drop exceeds {rule.max_ap_drop}"
        return Verdict("reject", detail, n, pos, RejectReason.WORSE_THAN_CHAMPION, old, new)
    if new["auc"] < old["auc"] - rule.max_auc_drop:
        detail = f"{summary}: AUC drop exceeds {rule.max_auc_drop}"
        return Verdict("reject", detail, n, pos, RejectReason.WORSE_THAN_CHAMPION, old, new)
    return Verdict("promote", summary, n, pos, None, old, new)


class ShadowLedger:
    """Champion and challenger scores of shadow-scored transactions, joined with labels.

    Call :meth:`record` after scoring a batch with both models, :meth:`label` as
    labels arrive, and :meth:`verdict` to apply the rule. Unlabeled entries are
    bounded by ``capacity`` (the oldest are forgotten); matured ones by the rule's
    ``max_labels``, past which the rule always decides.

    Examples
    --------
    >>> ledger = ShadowLedger("v1", "v2")
    >>> ledger.record(["a", "b"], [0.1, 0.9], [0.2, 0.8])
    >>> ledger.label("a", False), ledger.label("zz", True)
    (True, False)
    >>> ledger.matured, ledger.pending
    (1, 1)
    """

    def __init__(self, champion_version: str, challenger_version: str, capacity: int = 1_000_000):
        self.champion_version = champion_version
        self.challenger_version = challenger_version
        self.capacity = capacity
        self._pending: dict[str, tuple[float, float]] = {}
        self._y = array("b")
        self._champion = array("d")
        self._challenger = array("d")

    def record(
        self, transaction_ids: Sequence[str], champion: npt.ArrayLike, challenger: npt.ArrayLike
    ) -> None:
        """Remember both scores of each transaction of a shadow-scored batch."""
        pairs = zip(
            np.asarray(champion, dtype=np.float64).tolist(),
            np.asarray(challenger, dtype=np.float64).tolist(),
            strict=True,
        )
        for tx, pair in zip(transaction_ids, pairs, strict=True):
            if math.isfinite(pair[0]) and math.isfinite(pair[1]):
                self._pending[tx] = pair
        overflow = len(self._pending) - self.capacity
        if overflow > 0:
            for tx in list(self._pending)[:overflow]:
                del self._pending[tx]

    def label(self, transaction_id: str, is_fraud: bool) -> bool:
        """Join a matured label; return False if the transaction was not shadow-scored."""
        pair = self._pending.pop(transaction_id, None)
        if pair is None:
            return False
        self._y.append(1 if is_fraud else 0)
        self._champion.append(pair[0])
        self._challenger.append(pair[1])
        return True

    def add_matured(self, is_fraud: bool, champion: float, challenger: float) -> None:
        """Add a label whose two scores arrive with it (e.g. on a labeled example)."""
        if math.isfinite(champion) and math.isfinite(challenger):
            self._y.append(1 if is_fraud else 0)
            self._champion.append(champion)
            self._challenger.append(challenger)

    @property
    def matured(self) -> int:
        """Labels joined so far."""
        return len(self._y)

    @property
    def pending(self) -> int:
        """Shadow-scored transactions still waiting for their label."""
        return len(self._pending)

    def verdict(self, rule: PromotionRule) -> Verdict:
        """Apply ``rule`` to the labels joined so far."""
        return judge(
            rule,
            np.frombuffer(self._y, dtype=np.int8),
            np.frombuffer(self._champion),
            np.frombuffer(self._challenger),
        )
