"""Blend the deep model's and the online model's probabilities, and decide.

Every rule has ``blend(deep, online)`` (arrays of probabilities, one per row) and a
``version`` string that names the rule and its parameters; the prediction records
it next to both model versions, so any score can be recomputed.

- :class:`WeightedBlend`: ``w * deep + (1 - w) * online``; ``on_drift`` moves
  weight to the online model in bounded steps, ``on_recovery`` moves it back.
- :class:`RankAverage`: averages each score's quantile in its model's reference
  score distribution (robust when the two models are calibrated differently).
- :class:`OnlineStacker`: logistic regression over the two models' logits,
  learned from matured labels.

:func:`decide` turns blended scores into ``approve`` / ``review`` / ``decline``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from models.protocols import F64, FloatArray

__all__ = ["Decision", "OnlineStacker", "RankAverage", "WeightedBlend", "decide"]

Decision = str
"""``"approve"``, ``"review"`` or ``"decline"``."""

_EPS = 1e-6


def _pair(deep: FloatArray, online: FloatArray) -> tuple[F64, F64]:
    d = np.asarray(deep, dtype=np.float64).reshape(-1)
    o = np.asarray(online, dtype=np.float64).reshape(-1)
    if d.shape != o.shape:
        raise ValueError(f"deep scores {d.shape} and online scores {o.shape} differ in length")
    return d, o


def _logit(p: F64) -> F64:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q / (1.0 - q))


@dataclass(frozen=True)
class WeightedBlend:
    """Weighted mean ``w_deep * deep + (1 - w_deep) * online``.

    Parameters
    ----------
    w_deep
        Current weight of the deep model, in ``[floor, ceiling]``.
    floor
        Lowest weight drift may push the deep model to.
    ceiling
        Weight the deep model returns to on recovery (default: the initial ``w_deep``).
    step
        Weight moved per ``on_drift`` / ``on_recovery``.

    Examples
    --------
    >>> rule = WeightedBlend(0.8)
    >>> rule.blend(np.array([1.0, 0.0]), np.array([0.0, 0.5])).round(3).tolist()
    [0.8, 0.1]
    >>> rule.on_drift().on_drift().version
    'weighted(w_deep=0.600)'
    >>> WeightedBlend(0.3, floor=0.25).on_drift().w_deep
    0.25
    >>> rule.on_drift().on_recovery().on_recovery().w_deep
    0.8
    """

    w_deep: float = 0.8
    floor: float = 0.2
    ceiling: float | None = None
    step: float = 0.1

    def __post_init__(self) -> None:
        if self.ceiling is None:
            object.__setattr__(self, "ceiling", self.w_deep)
        if not 0.0 <= self.floor <= self.w_deep <= self.top <= 1.0:
            raise ValueError(
                f"need 0 <= floor <= w_deep <= ceiling <= 1, got "
                f"{self.floor}, {self.w_deep}, {self.ceiling}"
            )
        if self.step <= 0:
            raise ValueError("step must be positive")

    @property
    def top(self) -> float:
        """The ceiling (set by ``__post_init__`` when not given)."""
        return self.w_deep if self.ceiling is None else self.ceiling

    @property
    def version(self) -> str:
        """The rule and its current weight."""
        return f"weighted(w_deep={self.w_deep:.3f})"

    def blend(self, deep: FloatArray, online: FloatArray) -> F64:
        """Return the weighted mean of each row's two probabilities."""
        d, o = _pair(deep, online)
        return self.w_deep * d + (1.0 - self.w_deep) * o

    def on_drift(self) -> WeightedBlend:
        """Return the rule with ``step`` weight moved to the online model (not below ``floor``)."""
        return replace(self, w_deep=round(max(self.floor, self.w_deep - self.step), 12))

    def on_recovery(self) -> WeightedBlend:
        """Return the rule with ``step`` weight moved back to the deep model (to ``ceiling``)."""
        return replace(self, w_deep=round(min(self.top, self.w_deep + self.step), 12))


@dataclass(frozen=True)
class RankAverage:
    """Average of each score's quantile in its model's reference distribution.

    A row's blended value depends only on the row (not on the rest of the batch).
    It is a rank in ``[0, 1]``, not a calibrated probability: set the decision
    thresholds on this scale (e.g. decline the top 0.5 %: ``decline=0.995``).

    Examples
    --------
    >>> rule = RankAverage(np.linspace(0, 1, 101), np.linspace(0, 0.5, 101))
    >>> rule.blend(np.array([0.5, 1.0]), np.array([0.25, 0.0])).round(3).tolist()
    [0.505, 0.505]
    """

    deep_reference: F64 = field(repr=False)
    online_reference: F64 = field(repr=False)
    w_deep: float = 0.5

    def __post_init__(self) -> None:
        for name in ("deep_reference", "online_reference"):
            ref = np.sort(np.asarray(getattr(self, name), dtype=np.float64).reshape(-1))
            if len(ref) == 0:
                raise ValueError(f"{name} is empty")
            object.__setattr__(self, name, ref)

    @property
    def version(self) -> str:
        """The rule, its weight and a digest of both references."""
        digest = hashlib.sha256(
            self.deep_reference.tobytes() + b"|" + self.online_reference.tobytes()
        ).hexdigest()[:12]
        return f"rank_average(w_deep={self.w_deep:.3f}, ref={digest})"

    def blend(self, deep: FloatArray, online: FloatArray) -> F64:
        """Return the weighted mean of the two reference quantiles of each row."""
        d, o = _pair(deep, online)
        qd = np.searchsorted(self.deep_reference, d, side="right") / len(self.deep_reference)
        qo = np.searchsorted(self.online_reference, o, side="right") / len(self.online_reference)
        result: F64 = self.w_deep * qd + (1.0 - self.w_deep) * qo
        return result


class OnlineStacker:
    """Logistic regression over ``[logit(deep), logit(online)]`` learned from labels.

    Starts as the mean of the two logits and takes one SGD step per matured label.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(4000) < 0.2
    >>> deep = np.where(y, rng.uniform(0.5, 1, 4000), rng.uniform(0, 0.6, 4000))
    >>> online = rng.uniform(0, 1, 4000)  # uninformative
    >>> stacker = OnlineStacker(learning_rate=0.05)
    >>> stacker.learn_many(deep, online, y)
    >>> a, b, c = stacker.params
    >>> bool(a > 1.0 and abs(b) < 0.2), stacker.n_learned
    (True, 4000)
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.01,
        l2: float = 1e-4,
        positive_weight: float = 1.0,
        init: tuple[float, float, float] = (0.5, 0.5, 0.0),
    ) -> None:
        self.learning_rate, self.l2, self.positive_weight = learning_rate, l2, positive_weight
        self._a, self._b, self._c = init
        self.n_learned = 0

    @property
    def params(self) -> tuple[float, float, float]:
        """(weight of the deep logit, weight of the online logit, intercept)."""
        return self._a, self._b, self._c

    @property
    def version(self) -> str:
        """The rule with its current coefficients."""
        a, b, c = self.params
        return f"stacker(a={a:.4f}, b={b:.4f}, c={c:.4f}, n={self.n_learned})"

    def blend(self, deep: FloatArray, online: FloatArray) -> F64:
        """Return the stacked probability of each row."""
        d, o = _pair(deep, online)
        z = self._a * _logit(d) + self._b * _logit(o) + self._c
        result: F64 = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
        return result

    def learn_many(self, deep: FloatArray, online: FloatArray, y: npt.ArrayLike) -> None:
        """Take one SGD step per labeled row, in order (deterministic)."""
        d, o = _pair(deep, online)
        labels = np.asarray(y, dtype=bool).reshape(-1)
        if labels.shape != d.shape:
            raise ValueError(f"{len(labels)} labels for {len(d)} rows")
        a, b, c = self._a, self._b, self._c
        lr, l2, pw = self.learning_rate, self.l2, self.positive_weight
        for xd, xo, label in zip(
            _logit(d).tolist(), _logit(o).tolist(), labels.tolist(), strict=True
        ):
            z = max(-500.0, min(500.0, a * xd + b * xo + c))
            grad = 1.0 / (1.0 + math.exp(-z)) - float(label)
            if label:
                grad *= pw
            a -= lr * (grad * xd + l2 * a)
            b -= lr * (grad * xo + l2 * b)
            c -= lr * grad
        self._a, self._b, self._c = a, b, c
        self.n_learned += len(labels)


def decide(
    scores: FloatArray, *, review: float = 0.5, decline: float = 0.9
) -> npt.NDArray[np.str_]:
    """Map scores to ``approve`` (below ``review``), ``review``, or ``decline`` (from ``decline``).

    Thresholds are inclusive lower bounds; ``review == decline`` leaves no review band.

    Raises
    ------
    ValueError
        Thresholds out of order or outside ``[0, 1]``, or a NaN score (a NaN must not
        be approved silently).

    Examples
    --------
    >>> decide(np.array([0.1, 0.5, 0.89, 0.9, 1.0])).tolist()
    ['approve', 'review', 'review', 'decline', 'decline']
    """
    if not 0.0 <= review <= decline <= 1.0:
        raise ValueError(f"need 0 <= review <= decline <= 1, got {review}, {decline}")
    s = np.asarray(scores, dtype=np.float64)
    if np.isnan(s).any():
        raise ValueError("NaN score: cannot decide")
    decisions = np.select([s >= decline, s >= review], ["decline", "review"], "approve")
    return decisions.astype("<U7")
