"""Reason codes: the features that pushed each row's score up the most.

Two methods, both batch-vectorized:

- **Linear contributions** (online logistic model): the logit is
  ``intercept + sum_i w_i * z_i`` with ``z`` the standardized features, so
  ``w_i * z_i`` is each feature's exact additive effect on the logit relative to
  the running mean. Costs one multiply per feature (well under a microsecond a
  row); use :func:`top_reasons` on ``LogisticLearner.contributions_many(X)``.
- **Occlusion** (the ONNX deep model, where gradients are not available): replace
  one feature at a time by its training mean and rescore; the drop in probability
  is that feature's effect. All replacements of a batch go in *one* extra
  ``score_batch`` call of ``batch * m`` rows, where ``m`` is the number of
  candidate features per row: all of them, or the ``m`` farthest from the mean in
  training standard deviations (a cheap preselection that keeps the cost at ``m``
  times a scoring call instead of ``n_features`` times). Effects are one feature
  at a time, so interactions are not attributed.

Only positive effects become reasons; a row with fewer than ``k`` gets ``-1``
indices (and zero effects) in the remaining slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.protocols import F64, FloatArray, Scorer

__all__ = ["ReasonCodes", "occlusion_effects", "occlusion_reasons", "top_reasons"]


@dataclass(frozen=True)
class ReasonCodes:
    """The top ``k`` positive effects of each row, strongest first."""

    indices: npt.NDArray[np.intp]
    """Feature column of each reason, ``[batch, k]``; -1 where there is none."""
    effects: F64
    """Each reason's effect (logit or probability units, by method), ``[batch, k]``."""

    def names(self, feature_names: Sequence[str]) -> list[list[str]]:
        """Return each row's reasons as feature names."""
        names = list(feature_names)
        return [[names[j] for j in row if j >= 0] for row in self.indices.tolist()]


def top_reasons(effects: FloatArray, k: int = 3) -> ReasonCodes:
    """Pick the ``k`` largest positive effects of each row (ties: lower column first).

    Examples
    --------
    >>> reasons = top_reasons(np.array([[0.1, -2.0, 0.7], [-1.0, -0.5, 0.0]]), k=2)
    >>> reasons.indices.tolist(), reasons.names(["a", "b", "c"])
    ([[2, 0], [-1, -1]], [['c', 'a'], []])
    """
    E = np.asarray(effects, dtype=np.float64)
    if E.ndim != 2:
        raise ValueError(f"effects must be [batch, n_features], got shape {E.shape}")
    k = min(k, E.shape[1])
    order = np.argsort(-E, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(E, order, axis=1)
    positive = top > 0
    return ReasonCodes(
        indices=np.where(positive, order, -1).astype(np.intp),
        effects=np.where(positive, top, 0.0),
    )


def occlusion_effects(
    scorer: Scorer,
    X: FloatArray,
    baseline: FloatArray,
    *,
    scale: FloatArray | None = None,
    candidates: int | None = None,
    scores: FloatArray | None = None,
) -> F64:
    """Return ``score(x) - score(x with feature j set to baseline[j])``, ``[batch, n]``.

    Parameters
    ----------
    scorer
        The model (one ``score_batch`` call of ``batch * m`` rows is made).
    X
        The rows, ``[batch, n_features]``.
    baseline
        The value each feature is occluded with (the training mean).
    scale
        Per-feature spread (training std) used to preselect candidates.
    candidates
        Occlude only the ``m`` features farthest from the baseline in ``scale``
        units; others get effect 0. ``None``: all features.
    scores
        ``scorer.score_batch(X)`` if already computed (saves a call).
    """
    M = np.asarray(X, dtype=np.float32)
    n, f = M.shape
    base = np.asarray(baseline, dtype=np.float32).reshape(f)
    p = scorer.score_batch(M) if scores is None else np.asarray(scores, dtype=np.float32)
    m = f if candidates is None else max(0, min(candidates, f))
    if n == 0 or m == 0:
        return np.zeros((n, f), dtype=np.float64)
    if m == f:
        cols = np.broadcast_to(np.arange(f), (n, f))
    else:
        spread = np.ones(f) if scale is None else np.asarray(scale, dtype=np.float64)
        distance = np.abs(M - base) / np.where(spread > 0, spread, 1.0)
        cols = np.argsort(-distance, axis=1, kind="stable")[:, :m]
    occluded = np.repeat(M, m, axis=0)  # row i's m copies are rows i*m .. i*m+m-1
    flat = cols.reshape(-1)
    occluded[np.arange(n * m), flat] = base[flat]
    q = scorer.score_batch(occluded).reshape(n, m).astype(np.float64)
    effects = np.zeros((n, f), dtype=np.float64)
    np.put_along_axis(effects, cols, p.astype(np.float64)[:, None] - q, axis=1)
    return effects


def occlusion_reasons(
    scorer: Scorer,
    X: FloatArray,
    baseline: FloatArray,
    *,
    k: int = 3,
    scale: FloatArray | None = None,
    candidates: int | None = None,
    scores: FloatArray | None = None,
) -> ReasonCodes:
    """Reason codes of a black-box scorer by occlusion (see :func:`occlusion_effects`).

    Examples
    --------
    >>> class Linear:  # a stand-in scorer: sigmoid(x0 - 2 * x1 + 0.5 * x2)
    ...     version, feature_names = "demo", ("a", "b", "c")
    ...     def score_batch(self, X):
    ...         z = X @ np.array([1.0, -2.0, 0.5], dtype=np.float32)
    ...         return (1 / (1 + np.exp(-z))).astype(np.float32)
    >>> X = np.array([[2.0, 1.0, 2.0], [0.0, -1.0, 0.0]], dtype=np.float32)
    >>> occlusion_reasons(Linear(), X, np.zeros(3), k=2).names(["a", "b", "c"])
    [['a', 'c'], ['b']]
    """
    effects = occlusion_effects(
        scorer, X, baseline, scale=scale, candidates=candidates, scores=scores
    )
    return top_reasons(effects, k)
