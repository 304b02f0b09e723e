"""Drift detectors and a monitor that runs them over scored and labeled batches.

Three streams are watched:

- the **error** stream of matured labels (``|label - score|``): River's ADWIN, one
  update per label (labels arrive far slower than events);
- the **score** distribution, label-free, and
- each monitored **feature**, both against the training reference.

Scores and features use two detectors each, one cheap per event and one per batch:

- :class:`ReferenceCusum`, a two-sided CUSUM on values standardized against the
  reference (clipped at ``clip`` standard deviations so one outlier cannot fire it),
  computed for a whole batch with cumulative sums (no Python loop per event).
  After it fires it re-centres on the mean of the run that fired it, so a
  persistent shift is reported once, and a further shift again.
- :class:`WindowKS`, a two-sample Kolmogorov-Smirnov test of the last ``window``
  values against a reference sample, run every ``every`` values, at level
  ``alpha`` split over all the tests of one round (Bonferroni).

Calendar features (weekend, night) follow the clock, not the model: in event-time
order they shift every night and weekend, so leave them out of ``monitored``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from river import drift

from models.protocols import F64, DriftDetector, FloatArray

__all__ = [
    "DriftConfig",
    "DriftFiring",
    "DriftMonitor",
    "ReferenceCusum",
    "WindowKS",
    "absolute_errors",
    "make_error_detector",
    "make_kswin",
    "make_page_hinkley",
]


# River's detectors are only partly annotated; call them through untyped references.
_RIVER: dict[str, Callable[..., Any]] = {
    "ADWIN": drift.ADWIN,
    "PageHinkley": drift.PageHinkley,
    "KSWIN": drift.KSWIN,
}


def make_error_detector(delta: float = 0.002) -> DriftDetector:
    """ADWIN over the error of matured labels (smaller ``delta``: fewer false alarms)."""
    detector: DriftDetector = _RIVER["ADWIN"](delta=delta)
    return detector


def make_page_hinkley(
    threshold: float = 50.0, delta: float = 0.005, min_instances: int = 30
) -> DriftDetector:
    """Page-Hinkley on a stream's mean (both directions), e.g. per-batch mean scores."""
    detector: DriftDetector = _RIVER["PageHinkley"](
        min_instances=min_instances, delta=delta, threshold=threshold, mode="both"
    )
    return detector


def make_kswin(
    alpha: float = 0.0001, window_size: int = 300, stat_size: int = 100, seed: int = 0
) -> DriftDetector:
    """River's KSWIN (sliding-window KS test without a reference), e.g. on subsampled scores."""
    detector: DriftDetector = _RIVER["KSWIN"](
        alpha=alpha, window_size=window_size, stat_size=stat_size, seed=seed
    )
    return detector


def absolute_errors(labels: FloatArray, scores: FloatArray) -> F64:
    """Return ``|label - score|`` for matured labels, the error stream ADWIN watches."""
    return np.abs(np.asarray(labels, dtype=np.float64) - np.asarray(scores, dtype=np.float64))


@dataclass(frozen=True)
class DriftFiring:
    """One detector firing (the streaming side turns it into a ``DriftEvent``)."""

    detector: str
    """``adwin``, ``cusum`` or ``ks``."""
    kind: Literal["error", "score", "feature"]
    """Which stream fired."""
    feature: str | None
    """The feature, for ``kind == "feature"``."""
    statistic: float
    """ADWIN: mean error after the change; CUSUM: run mean shift in reference std
    units (signed); KS: the D statistic."""
    threshold: float
    """The value the statistic was compared with (ADWIN: the mean error before)."""
    position: int
    """Index (from 0) in its stream: rows scored for score and feature, labels for error."""


class ReferenceCusum:
    """Two-sided CUSUM of values against a reference mean and standard deviation.

    Each value is standardized, clipped to ``[-clip, clip]`` and re-standardized with
    the clipped reference's own mean and std, so the in-control mean is 0 and the
    std 1. ``k`` is the allowance (half the shift, in std, worth detecting fast) and
    ``h`` the decision threshold: the larger, the fewer false alarms and the slower.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(10.0, 2.0, size=5000)
    >>> cusum = ReferenceCusum.from_reference(reference)
    >>> stream = np.concatenate([rng.normal(10, 2, 3000), rng.normal(12, 2, 500)])
    >>> [(i, round(shift, 2)) for i, shift in cusum.update_many(stream)]
    [(3039, 0.9)]
    """

    def __init__(
        self,
        mean: float,
        std: float,
        *,
        k: float = 0.5,
        h: float = 20.0,
        clip: float = 4.0,
        z_mean: float = 0.0,
        z_std: float = 1.0,
    ) -> None:
        self.mean, self.std = mean, std if std > 0 else 1e-9
        self.k, self.h, self.clip = k, h, clip
        self.z_mean, self.z_std = z_mean, z_std if z_std > 0 else 1.0
        self.center = 0.0
        self._s = [0.0, 0.0]  # upper, lower statistics
        self._run = [0, 0]  # length of the current run of each side
        self._drift = False

    @classmethod
    def from_reference(
        cls, reference: FloatArray, *, k: float = 0.5, h: float = 20.0, clip: float = 4.0
    ) -> ReferenceCusum:
        """Fit the standardization on a reference sample (the training data)."""
        ref = np.asarray(reference, dtype=np.float64)
        mean, std = float(ref.mean()), float(ref.std())
        z = np.clip((ref - mean) / (std if std > 0 else 1e-9), -clip, clip)
        return cls(mean, std, k=k, h=h, clip=clip, z_mean=float(z.mean()), z_std=float(z.std()))

    def standardize(self, values: FloatArray) -> F64:
        """Map raw values to the in-control N(0, 1)-like scale."""
        z = np.clip((np.asarray(values, dtype=np.float64) - self.mean) / self.std, -6e9, 6e9)
        return (np.clip(z, -self.clip, self.clip) - self.z_mean) / self.z_std

    def _side(self, x: F64, side: int) -> tuple[F64, F64]:
        """CUSUM statistic and run length of one side over ``x`` (already signed)."""
        c = np.cumsum(x - self.k)
        floor = np.minimum(np.minimum.accumulate(c), -self._s[side])
        s = c - floor
        idx = np.arange(len(x))
        # A run restarts after each new low of c (where the statistic touches 0).
        last_low = np.maximum.accumulate(np.where(c <= floor, idx, -1))
        run = np.where(last_low >= 0, idx - last_low, idx + 1 + self._run[side])
        return s, run.astype(np.float64)

    def update_many(self, values: FloatArray) -> list[tuple[int, float]]:
        """Feed a batch; return ``(index in the batch, signed mean shift)`` per firing."""
        z = self.standardize(values)
        firings: list[tuple[int, float]] = []
        start = 0
        while start < len(z):
            x = z[start:] - self.center
            s_up, run_up = self._side(x, 0)
            s_dn, run_dn = self._side(-x, 1)
            over = (s_up > self.h) | (s_dn > self.h)
            if not over.any():
                self._s = [float(s_up[-1]), float(s_dn[-1])]
                self._run = [int(run_up[-1]), int(run_dn[-1])]
                break
            i = int(np.argmax(over))
            if s_up[i] > self.h:
                shift = s_up[i] / run_up[i] + self.k
            else:
                shift = -(s_dn[i] / run_dn[i] + self.k)
            self.center += float(shift)
            firings.append((start + i, float(self.center)))
            self._s, self._run = [0.0, 0.0], [0, 0]
            start += i + 1
        self._drift = bool(firings)
        return firings

    def update(self, x: float) -> None:
        """Feed one value (River vocabulary); see ``drift_detected``."""
        self.update_many(np.array([x]))

    @property
    def drift_detected(self) -> bool:
        """Whether the last update fired."""
        return self._drift


class WindowKS:
    """Two-sample KS test of the last ``window`` values against a reference sample.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ks = WindowKS(rng.normal(size=2000), window=500)
    >>> _ = ks.add(rng.normal(size=500))
    >>> d, threshold = ks.test(alpha=0.001)
    >>> bool(d < threshold)
    True
    >>> _ = ks.add(rng.normal(0.5, 1.0, size=500))
    >>> d, threshold = ks.test(alpha=0.001)
    >>> bool(d > threshold)
    True
    """

    def __init__(self, reference: FloatArray, *, window: int = 2048) -> None:
        self.reference = np.sort(np.asarray(reference, dtype=np.float64))
        self.window = window
        self._buffer = np.empty(0, dtype=np.float64)

    def add(self, values: FloatArray) -> int:
        """Append values to the window (oldest dropped); return the window's size."""
        merged = np.concatenate([self._buffer, np.asarray(values, dtype=np.float64)])
        self._buffer = merged[-self.window :]
        return len(self._buffer)

    def clear(self) -> None:
        """Empty the window (after a firing, so the same data cannot fire twice)."""
        self._buffer = np.empty(0, dtype=np.float64)

    def test(self, alpha: float) -> tuple[float, float]:
        """Return the KS distance D and its critical value at level ``alpha``."""
        sample = np.sort(self._buffer)
        n, m = len(sample), len(self.reference)
        if n == 0 or m == 0:
            return 0.0, math.inf
        points = np.concatenate([sample, self.reference])
        cdf_sample = np.searchsorted(sample, points, side="right") / n
        cdf_ref = np.searchsorted(self.reference, points, side="right") / m
        d = float(np.max(np.abs(cdf_sample - cdf_ref)))
        critical = math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
        return d, critical


@dataclass(frozen=True)
class DriftConfig:
    """Parameters of :class:`DriftMonitor`."""

    error_delta: float = 0.002
    """ADWIN confidence on the error stream."""
    cusum_k: float = 0.5
    """CUSUM allowance, in reference standard deviations."""
    cusum_h: float = 20.0
    """CUSUM threshold."""
    clip: float = 4.0
    """Standardized values are clipped to this many standard deviations."""
    ks_window: int = 2048
    """Values in each KS window."""
    ks_every: int = 2048
    """Rows between KS rounds (the expensive, per-batch detector)."""
    ks_alpha: float = 0.0001
    """Level of one KS round, split over its tests."""
    reference_size: int = 5000
    """Largest reference sample kept per stream (a seeded subsample)."""
    seed: int = 0
    """Seed of the reference subsample."""


class DriftMonitor:
    """Run every detector over batches and return what fired.

    Parameters
    ----------
    feature_names
        Columns of the feature matrices given to :meth:`update`.
    reference_features
        Training feature matrix ``[n, len(feature_names)]``.
    reference_scores
        The deep model's scores on held-out training data.
    monitored
        Features that get detectors (default: all).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> names = ["amount", "count"]
    >>> ref = np.column_stack([rng.exponential(50, 5000), rng.poisson(3, 5000)])
    >>> monitor = DriftMonitor(names, ref, rng.beta(1, 20, 5000))
    >>> batch = np.column_stack([rng.exponential(50, 1000), rng.poisson(3, 1000)])
    >>> monitor.update(scores=rng.beta(1, 20, 1000), features=batch, errors=[0.1, 0.0])
    []
    >>> shifted = np.column_stack([rng.exponential(50, 1000), rng.poisson(6, 1000)])
    >>> for f in monitor.update(scores=rng.beta(1, 20, 1000), features=shifted):
    ...     print(f.detector, f.kind, f.feature, f.position)
    cusum feature count 1015
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        reference_features: FloatArray,
        reference_scores: FloatArray,
        *,
        monitored: Sequence[str] | None = None,
        config: DriftConfig | None = None,
    ) -> None:
        self.config = cfg = config or DriftConfig()
        self.feature_names = tuple(feature_names)
        ref = np.asarray(reference_features, dtype=np.float64)
        if ref.ndim != 2 or ref.shape[1] != len(self.feature_names):
            raise ValueError(f"reference shape {ref.shape}: expected [n, {len(feature_names)}]")
        names = list(self.feature_names if monitored is None else monitored)
        unknown = set(names) - set(self.feature_names)
        if unknown:
            raise ValueError(f"monitored features not in feature_names: {sorted(unknown)}")
        rng = np.random.default_rng(cfg.seed)

        def sample(values: F64) -> F64:
            if len(values) <= cfg.reference_size:
                return values
            return values[rng.choice(len(values), cfg.reference_size, replace=False)]

        # Stream key: None for the score, else the feature name.
        self._columns = {name: self.feature_names.index(name) for name in names}
        streams: dict[str | None, F64] = {None: np.asarray(reference_scores, dtype=np.float64)}
        streams.update({name: ref[:, j] for name, j in self._columns.items()})
        self._cusum = {
            key: ReferenceCusum.from_reference(values, k=cfg.cusum_k, h=cfg.cusum_h, clip=cfg.clip)
            for key, values in streams.items()
        }
        self._ks = {
            key: WindowKS(sample(values), window=cfg.ks_window) for key, values in streams.items()
        }
        self._adwin: Any = _RIVER["ADWIN"](delta=cfg.error_delta)
        self.rows_seen = 0
        self.labels_seen = 0
        self._next_ks = cfg.ks_every

    def update(
        self,
        *,
        scores: FloatArray | None = None,
        features: FloatArray | None = None,
        errors: FloatArray | Sequence[float] | None = None,
    ) -> list[DriftFiring]:
        """Feed one batch and return the firings, in stream order.

        ``scores`` and ``features`` describe the same rows (pass both, or scores
        only); ``errors`` are ``|label - score|`` of labels that matured since the
        last call (see :func:`absolute_errors`).
        """
        out: list[DriftFiring] = []
        if errors is not None:
            out += self._update_errors(np.asarray(errors, dtype=np.float64))
        if scores is None:
            if features is not None:
                raise ValueError("features without scores: pass the scores of the same rows")
            return out
        values: dict[str | None, F64] = {None: np.asarray(scores, dtype=np.float64).ravel()}
        n = len(values[None])
        if features is not None:
            M = np.asarray(features, dtype=np.float64)
            if M.shape != (n, len(self.feature_names)):
                raise ValueError(
                    f"features shape {M.shape}: expected ({n}, {len(self.feature_names)})"
                )
            values.update({name: M[:, j] for name, j in self._columns.items()})
        for key, column in values.items():
            kind: Literal["score", "feature"] = "score" if key is None else "feature"
            cusum = self._cusum[key]
            for i, shift in cusum.update_many(column):
                out.append(DriftFiring("cusum", kind, key, shift, cusum.h, self.rows_seen + i))
            self._ks[key].add(column)
        self.rows_seen += n
        if self.rows_seen >= self._next_ks:
            self._next_ks = self.rows_seen + self.config.ks_every
            out += self._ks_round(list(values))
        return out

    def _update_errors(self, errors: F64) -> list[DriftFiring]:
        out = []
        detector = self._adwin
        for e in errors.tolist():
            before = float(detector.estimation)
            detector.update(e)
            if detector.drift_detected:
                after = float(detector.estimation)
                out.append(DriftFiring("adwin", "error", None, after, before, self.labels_seen))
            self.labels_seen += 1
        return out

    def _ks_round(self, keys: list[str | None]) -> list[DriftFiring]:
        alpha = self.config.ks_alpha / len(keys)
        out = []
        for key in keys:
            window = self._ks[key]
            d, critical = window.test(alpha)
            if d > critical:
                kind: Literal["score", "feature"] = "score" if key is None else "feature"
                out.append(DriftFiring("ks", kind, key, d, critical, self.rows_seen - 1))
                window.clear()
        return out
