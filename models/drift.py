"""Drift detectors and a monitor that runs them over scored and labeled batches.

Three streams are watched:

- the **error** stream of matured labels (``|label - score|``): River's ADWIN, one
  update per label (labels arrive far slower than events);
- the **score** distribution, label-free, and
- each monitored **feature**, both against the training reference.

Scores and features use three detectors each, two cheap per event and one per batch:

- :class:`ReferenceCusum`, a two-sided CUSUM on means of blocks of 32 values,
  standardized against the reference (values winsorized at ``clip`` standard
  deviations so one outlier cannot fire it), for all streams of a batch at once
  with cumulative sums (no Python loop per event). After it fires, the stream
  learns its new mean for ``relearn`` blocks and watches from there, so a lasting
  shift is reported once and a further shift again.
- :class:`TailCusum`, a Bernoulli CUSUM per tail of each stream on the share of
  values beyond the reference's 2 % / 98 % quantiles: a small share of rows moving
  far into a tail in bursts (card testing) barely moves a mean but fires this within
  a burst.
- :class:`WindowKS`, a two-sample Kolmogorov-Smirnov test of the last ``window``
  values against a reference sample, run every ``every`` values, at level
  ``alpha`` split over all the tests of one round (Bonferroni). When it fires, the
  window that fired becomes that stream's reference, so a lasting change is
  reported once.

Calendar features (weekend, night) follow the clock, not the model: in event-time
order they shift every night and weekend, so leave them out of ``monitored``.

Calibration (``tests/unit/test_drift.py``, defaults): no false alarm over
3 x 100,000 stationary rows of 8 skewed, discrete and sparse streams plus 75,000
labels; a one-standard-deviation shift of a feature fires within 200 rows, an
error rate going from 5 % to 30 % within 300 labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from river import drift

from models.protocols import F64, DriftDetector, FloatArray

__all__ = [
    "DriftConfig",
    "DriftFiring",
    "DriftMonitor",
    "ReferenceCusum",
    "TailCusum",
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
    """Two-sided CUSUM of block means against a reference, for one or many streams.

    Each value is standardized with the reference mean and std, clipped to
    ``[-clip, clip]`` (one outlier cannot fire it) and re-standardized with the
    clipped reference's own mean and std. Consecutive values are averaged in blocks
    of ``block`` (carried across batches, so batch boundaries do not matter): block
    means of skewed or discrete features are close to normal, which keeps the false
    alarm rate near the textbook CUSUM's. ``k`` is the allowance and ``h`` the
    threshold, both in standard deviations of a block mean.

    After a firing, a stream spends ``relearn`` blocks estimating its new mean and
    then watches for changes from there: a persistent shift is reported once, a
    further shift again.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cusum = ReferenceCusum.from_reference(rng.normal(10.0, 2.0, size=5000))
    >>> stream = np.concatenate([rng.normal(10, 2, 3000), rng.normal(12, 2, 500)])
    >>> [(i, round(shift, 2)) for _, i, shift in cusum.update_many(stream)]
    [(3071, 0.52)]
    """

    def __init__(
        self,
        mean: FloatArray,
        std: FloatArray,
        *,
        z_mean: FloatArray | None = None,
        z_std: FloatArray | None = None,
        k: float = 0.5,
        h: float = 12.0,
        clip: float = 4.0,
        block: int = 32,
        relearn: int = 32,
    ) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        s = len(self.mean)
        std_ = np.atleast_1d(np.asarray(std, dtype=np.float64))
        self.std = np.where(std_ > 0, std_, 1e-9)
        zm = np.zeros(s) if z_mean is None else np.atleast_1d(np.asarray(z_mean, dtype=float))
        zs = np.ones(s) if z_std is None else np.atleast_1d(np.asarray(z_std, dtype=float))
        self.z_mean, self.z_std = zm, np.where(zs > 0, zs, 1.0)
        self._low = self.mean - clip * self.std
        self._high = self.mean + clip * self.std
        self._starts = np.arange(0, 1 << 16, block)  # block offsets, grown on demand
        self.k, self.h, self.clip, self.block, self.relearn = k, h, clip, block, relearn
        self.center = np.zeros(s)  # in-control mean of each stream, in block-mean std units
        self._s = np.zeros(2 * s)  # statistics: upper of each stream, then lower
        self._run = np.zeros(2 * s)  # blocks in each statistic's current run
        self._pending = np.empty((0, s))  # clipped values of an incomplete block
        self._relearn = np.zeros(s, dtype=np.int64)  # blocks left to learn a new centre
        self._relearn_sum = np.zeros(s)
        self._drift = False

    @classmethod
    def from_reference(
        cls, reference: FloatArray | Sequence[FloatArray], **params: float
    ) -> ReferenceCusum:
        """Fit the standardization on reference samples.

        ``reference`` is ``[n]`` (one stream), ``[n, streams]``, or a list with one
        1-D sample per stream (their lengths may differ).
        """
        if isinstance(reference, np.ndarray):
            ref = reference.reshape(len(reference), -1)
            columns = [np.asarray(ref[:, j], dtype=np.float64) for j in range(ref.shape[1])]
        else:
            columns = [np.asarray(c, dtype=np.float64).reshape(-1) for c in reference]
        clip = float(params.get("clip", 4.0))
        stats = []
        for col in columns:
            mean, std = float(col.mean()), float(col.std())
            z = np.clip((col - mean) / (std if std > 0 else 1e-9), -clip, clip)
            stats.append((mean, std, float(z.mean()), float(z.std())))
        mean_, std_, z_mean, z_std = (np.array(v) for v in zip(*stats, strict=True))
        return cls(mean_, std_, z_mean=z_mean, z_std=z_std, **params)  # type: ignore[arg-type]

    @property
    def n_streams(self) -> int:
        """Number of streams watched."""
        return len(self.center)

    def _clipped(self, values: FloatArray) -> F64:
        """Raw values ``[n, streams]`` winsorized at ``clip`` reference std (raw units)."""
        v = np.asarray(values, dtype=np.float64).reshape(-1, self.n_streams)
        # np.minimum/np.maximum with per-column bounds: np.clip is slower here.
        return np.minimum(np.maximum(v, self._low), self._high)

    def standardize(self, values: FloatArray) -> F64:
        """Map raw values ``[n, streams]`` to the in-control scale (mean 0, std 1)."""
        z = (self._clipped(values) - self.mean) / self.std
        result: F64 = (z - self.z_mean) / self.z_std
        return result

    def _blocks(self, values: FloatArray) -> tuple[F64, int]:
        """Complete block means ``[streams, blocks]`` (std 1) and the values carried in."""
        carried = len(self._pending)
        v = self._clipped(values)
        if carried:
            v = np.concatenate([self._pending, v])
        n_blocks = len(v) // self.block
        self._pending = v[n_blocks * self.block :]
        if n_blocks == 0:
            return np.empty((self.n_streams, 0)), carried
        if n_blocks > len(self._starts):
            self._starts = np.arange(0, n_blocks * self.block, self.block)
        sums = np.add.reduceat(v[: n_blocks * self.block], self._starts[:n_blocks], axis=0)
        # Standardizing is affine, so it commutes with the block mean: do it on the
        # (few) block means rather than on every value.
        z = (sums / self.block - self.mean) / self.std
        return ((z - self.z_mean) * (math.sqrt(self.block) / self.z_std)).T, carried

    def _cusum(self, x: F64, s0: F64, run0: F64) -> tuple[F64, F64]:
        """Statistics and run lengths over ``x`` ``[statistics, blocks]``, vectorized.

        ``S_t = max(0, S_{t-1} + x_t - k)`` for all t at once: with ``C`` the
        cumulative sum of ``x - k``, ``S_t = C_t - min(-S_0, min_{u<=t} C_u)``.
        """
        # Accumulate along axis 0 of the transpose: numpy runs the inner loop across
        # statistics, which is much faster than accumulating along a short last axis.
        c = np.cumsum(x.T - self.k, axis=0)
        floor = np.minimum(np.minimum.accumulate(c, axis=0), -s0)
        idx = np.arange(len(c))[:, None]
        # A run restarts after each new low of c (where the statistic touches 0).
        last_low = np.maximum.accumulate(np.where(c <= floor, idx, -1), axis=0)
        run = np.where(last_low >= 0, idx - last_low, idx + 1 + run0)
        return (c - floor).T, run.T.astype(np.float64)

    def update_many(self, values: FloatArray) -> list[tuple[int, int, float]]:
        """Feed a batch ``[n]`` or ``[n, streams]``; return the firings.

        Each firing is ``(stream, index in the batch of the value that completed the
        block, estimated new mean)``, the mean in reference standard deviations
        (approximate: values are clipped, and the run may start before the change).
        """
        blocks, carried = self._blocks(values)
        firings: list[tuple[int, int, float]] = []
        if blocks.shape[1]:
            x = blocks - self.center[:, None]
            stats, runs = self._cusum(np.concatenate([x, -x]), self._s, self._run)
            n = self.n_streams
            over: npt.NDArray[np.bool_] = np.any(stats > self.h, axis=1)
            slow = over[:n] | over[n:] | (self._relearn > 0)
            quiet = np.concatenate([~slow, ~slow])
            self._s[quiet], self._run[quiet] = stats[quiet, -1], runs[quiet, -1]
            for j in np.flatnonzero(slow).tolist():
                firings += [(j, b, m) for b, m in self._replay(blocks[j], j)]
            firings.sort(key=lambda f: (f[1], f[0]))
            firings = [(j, (b + 1) * self.block - 1 - carried, m) for j, b, m in firings]
        self._drift = bool(firings)
        return firings

    def _replay(self, column: F64, j: int) -> list[tuple[int, float]]:
        """Run stream ``j`` over its blocks by phase: watch, fire, learn the new centre."""
        n = self.n_streams
        s, run = self._s[[j, n + j]], self._run[[j, n + j]]
        out: list[tuple[int, float]] = []
        start = 0
        while start < len(column):
            if self._relearn[j] > 0:
                take = int(min(self._relearn[j], len(column) - start))
                self._relearn_sum[j] += column[start : start + take].sum()
                self._relearn[j] -= take
                start += take
                if self._relearn[j] == 0:
                    self.center[j] = self._relearn_sum[j] / self.relearn
                continue
            x = column[start:] - self.center[j]
            stats, runs = self._cusum(np.stack([x, -x]), s, run)
            over = (stats > self.h).any(axis=0)
            if not over.any():
                s, run = stats[:, -1], runs[:, -1]
                break
            i = int(np.argmax(over))
            side = 0 if stats[0, i] > self.h else 1
            # The run's mean is S / length + k away from the centre.
            offset = stats[side, i] / runs[side, i] + self.k
            estimate = self.center[j] + (offset if side == 0 else -offset)
            out.append((start + i, float(estimate / math.sqrt(self.block))))
            s, run = np.zeros(2), np.zeros(2)
            self._relearn[j], self._relearn_sum[j] = self.relearn, 0.0
            start += i + 1
        self._s[[j, n + j]], self._run[[j, n + j]] = s, run
        return out

    def update(self, x: float) -> None:
        """Feed one value of a single-stream detector (River vocabulary)."""
        self.update_many(np.array([x]))

    @property
    def drift_detected(self) -> bool:
        """Whether the last update fired."""
        return self._drift


class TailCusum:
    """Bernoulli CUSUMs of tail exceedances against a reference, two per stream.

    A value *exceeds* when it is above the reference's ``1 - tail`` quantile (upper
    tail) or below its ``tail`` quantile (lower tail). In control, each tail's
    exceedances come at the reference rate ``p0`` (measured on the reference, so ties
    of discrete features are counted right); the CUSUM accumulates the log-likelihood
    ratio of ``p1 = max(factor * p0, p0 + 0.02)`` against ``p0`` row by row and fires
    above ``h``. It sees what a CUSUM of means misses: a small share of rows moving far
    into a tail in short bursts (card testing: a few cards, many tiny amounts at night,
    their 1-day counts far above any customer's), which barely moves a mean.

    After a firing, the tail is muted for ``relearn`` rows, whose exceedance rate then
    becomes its in-control rate (if higher than the reference's): a lasting change is
    reported once.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tail = TailCusum([rng.poisson(3, 5000).astype(float)])
    >>> calm = rng.poisson(3, 4000).astype(float)
    >>> tail.update_many(calm)
    []
    >>> burst = np.concatenate([rng.poisson(3, 300), np.full(16, 15.0)]).astype(float)
    >>> [(stream, side, index) for stream, side, index, _ in tail.update_many(burst)]
    [(0, 'high', 311)]
    """

    def __init__(
        self,
        reference: Sequence[FloatArray],
        *,
        tail: float = 0.02,
        factor: float = 5.0,
        h: float = 20.0,
        relearn: int = 2000,
    ) -> None:
        columns = [np.asarray(c, dtype=np.float64).reshape(-1) for c in reference]
        self.h, self.relearn, self.factor = h, relearn, factor
        self._hi = np.array([np.quantile(c, 1.0 - tail) for c in columns])
        self._lo = np.array([np.quantile(c, tail) for c in columns])
        p_hi = [
            (np.sum(c > q) + 1.0) / (len(c) + 2.0) for c, q in zip(columns, self._hi, strict=True)
        ]
        p_lo = [
            (np.sum(c < q) + 1.0) / (len(c) + 2.0) for c, q in zip(columns, self._lo, strict=True)
        ]
        self._p0 = np.array(p_hi + p_lo)  # upper tails of every stream, then lower tails
        self._w1, self._w0 = self._weights(self._p0)
        self._s = np.zeros(len(self._p0))
        self._mute = np.zeros(len(self._p0), dtype=np.int64)
        self._muted_rows = np.zeros(len(self._p0), dtype=np.int64)
        self._muted_hits = np.zeros(len(self._p0))
        self._drift = False

    def _weights(self, p0: F64) -> tuple[F64, F64]:
        p1 = np.minimum(0.5, np.maximum(self.factor * p0, p0 + 0.02))
        return np.log(p1 / p0), np.log((1.0 - p1) / (1.0 - p0))

    @property
    def n_streams(self) -> int:
        """Number of streams watched (each with two tails)."""
        return len(self._hi)

    def update_many(self, values: FloatArray) -> list[tuple[int, str, int, float]]:
        """Feed a batch ``[n]`` or ``[n, streams]``; return the firings.

        Each firing is ``(stream, "high" or "low", index in the batch, exceedance share
        of the rows since the statistic last touched zero)``.
        """
        v = np.asarray(values, dtype=np.float64).reshape(-1, self.n_streams)
        n = len(v)
        if n == 0:
            return []
        hits = np.concatenate([v > self._hi, v < self._lo], axis=1)  # [n, 2 * streams]
        x = np.where(hits, self._w1, self._w0)
        firings: list[tuple[int, str, int, float]] = []
        muted = self._mute > 0
        for j in np.flatnonzero(muted).tolist():
            take = int(min(self._mute[j], n))
            self._muted_hits[j] += hits[:take, j].sum()
            self._muted_rows[j] += take
            self._mute[j] -= take
            if self._mute[j] == 0:
                self._relearned(j)
            x[:take, j] = -np.inf  # no evidence while muted
        c = np.cumsum(np.where(np.isinf(x), 0.0, x), axis=0)
        floor = np.minimum(np.minimum.accumulate(c, axis=0), -self._s)
        stats = np.where(np.isinf(x), 0.0, c - floor)
        over = stats > self.h
        for j in np.flatnonzero(over.any(axis=0)).tolist():
            i = int(np.argmax(over[:, j]))
            zero = np.flatnonzero(stats[: i + 1, j] <= 0.0)
            since = int(zero[-1]) + 1 if len(zero) else 0
            share = float(hits[since : i + 1, j].mean())
            stream, side = (j, "high") if j < self.n_streams else (j - self.n_streams, "low")
            firings.append((stream, side, i, share))
            stats[:, j] = 0.0
            self._mute[j] = self.relearn
            rest = hits[i + 1 :, j]
            take = int(min(self.relearn, len(rest)))
            self._muted_hits[j], self._muted_rows[j] = rest[:take].sum(), take
            self._mute[j] -= take
            if self._mute[j] == 0:
                self._relearned(j)
        self._s = np.maximum(stats[-1], 0.0)
        firings.sort(key=lambda f: (f[2], f[0]))
        self._drift = bool(firings)
        return firings

    def _relearned(self, j: int) -> None:
        """A muted tail's new in-control rate: what it saw while muted, if higher."""
        seen = (self._muted_hits[j] + 1.0) / (self._muted_rows[j] + 2.0)
        self._p0[j] = max(self._p0[j], seen)
        self._w1, self._w0 = self._weights(self._p0)
        self._s[j], self._muted_hits[j], self._muted_rows[j] = 0.0, 0.0, 0

    @property
    def drift_detected(self) -> bool:
        """Whether the last update fired."""
        return self._drift


class WindowKS:
    """Kolmogorov-Smirnov test of the last ``window`` values against a reference.

    The distance is evaluated at ``grid`` reference quantiles (with the reference's
    exact CDF there), so a test costs one ``searchsorted`` of the window into the
    grid instead of sorting window and reference: D is underestimated by at most
    the reference mass between two grid points (about ``1 / grid``), which makes
    the test slightly conservative.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ks = WindowKS(rng.normal(size=2000), window=500)
    >>> _ = ks.add(rng.normal(size=500))
    >>> d, critical = ks.test(alpha=0.001)
    >>> bool(d < critical)
    True
    >>> _ = ks.add(rng.normal(0.5, 1.0, size=500))
    >>> d, critical = ks.test(alpha=0.001)
    >>> bool(d > critical)
    True
    """

    def __init__(self, reference: FloatArray, *, window: int = 2048, grid: int = 256) -> None:
        ref = np.sort(np.asarray(reference, dtype=np.float64).reshape(-1))
        if len(ref) == 0:
            raise ValueError("empty reference")
        self.points = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, grid + 1)))
        self.reference_cdf = np.searchsorted(ref, self.points, side="right") / len(ref)
        self.reference_size = len(ref)
        self.window = window
        self._buffer = np.empty(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self._buffer)

    def add(self, values: FloatArray) -> int:
        """Append values to the window (oldest dropped); return the window's size."""
        merged = np.concatenate([self._buffer, np.asarray(values, dtype=np.float64).reshape(-1)])
        self._buffer = merged[-self.window :]
        return len(self._buffer)

    def clear(self) -> None:
        """Empty the window (after a firing, so the same data cannot fire twice)."""
        self._buffer = np.empty(0, dtype=np.float64)

    def test(self, alpha: float) -> tuple[float, float]:
        """Return the KS distance D of the window and its critical value at ``alpha``."""
        return self.test_sample(self._buffer, alpha)

    def test_sample(self, sample: F64, alpha: float) -> tuple[float, float]:
        """Return D and the critical value for ``sample`` against the reference."""
        n, m = len(sample), self.reference_size
        if n == 0:
            return 0.0, math.inf
        # x <= points[i]  <=>  searchsorted(points, x, "left") <= i
        bins = np.searchsorted(self.points, sample, side="left")
        counts = np.bincount(bins, minlength=len(self.points) + 1)[: len(self.points)]
        cdf = np.cumsum(counts) / n
        d = float(np.max(np.abs(cdf - self.reference_cdf)))
        critical = math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
        return d, critical


@dataclass(frozen=True)
class DriftConfig:
    """Parameters of :class:`DriftMonitor`."""

    error_delta: float = 0.002
    """ADWIN confidence on the error stream."""
    cusum_k: float = 0.5
    """CUSUM allowance, in reference standard deviations."""
    cusum_h: float = 12.0
    """CUSUM threshold, in block-mean standard deviations."""
    cusum_block: int = 32
    """Values averaged per CUSUM step."""
    cusum_relearn: int = 32
    """Blocks used to learn a stream's new mean after it fired (no firing meanwhile)."""
    clip: float = 4.0
    """Standardized values are clipped to this many standard deviations."""
    tail: float = 0.02
    """Each tail of a stream is beyond this reference quantile (and ``1 - tail``)."""
    tail_factor: float = 5.0
    """The tail CUSUM watches for exceedances this many times the reference rate."""
    tail_h: float = 20.0
    """Tail CUSUM threshold (log-likelihood ratio)."""
    tail_relearn: int = 2000
    """Rows a tail is muted after it fired; their rate becomes its in-control rate."""
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
    cusum feature count 1055
    tail-high feature count 1042
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

        # Streams: the score first, then the monitored features.
        self._columns = [self.feature_names.index(name) for name in names]
        self._streams: list[str | None] = [None, *names]
        references = [np.asarray(reference_scores, dtype=np.float64).reshape(-1)]
        references += [ref[:, j] for j in self._columns]
        self._cusum = ReferenceCusum.from_reference(
            references,
            k=cfg.cusum_k,
            h=cfg.cusum_h,
            clip=cfg.clip,
            block=cfg.cusum_block,
            relearn=cfg.cusum_relearn,
        )
        self._tail = TailCusum(
            references,
            tail=cfg.tail,
            factor=cfg.tail_factor,
            h=cfg.tail_h,
            relearn=cfg.tail_relearn,
        )
        self._ks = [WindowKS(sample(r)) for r in references]
        self._window = np.empty((0, len(references)))
        self._adwin: Any = _RIVER["ADWIN"](delta=cfg.error_delta)
        self._error_sum = 0.0  # errors since the last error firing
        self._error_count = 0
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
        """Feed one batch and return the firings.

        ``scores`` and ``features`` describe the same rows and come together;
        ``errors`` are ``|label - score|`` of the labels that matured since the last
        call (see :func:`absolute_errors`). Firings come error stream first, then the
        CUSUM's in stream order, then the KS round's.

        Raises
        ------
        ValueError
            Only one of scores and features, or shapes that do not match.
        """
        out: list[DriftFiring] = []
        if errors is not None:
            out += self._update_errors(np.asarray(errors, dtype=np.float64).reshape(-1))
        if scores is None and features is None:
            return out
        if scores is None or features is None:
            raise ValueError("scores and features describe the same rows: pass both")
        score = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
        M = np.asarray(features, dtype=np.float64)
        if M.shape != (len(score), len(self.feature_names)):
            expected = (len(score), len(self.feature_names))
            raise ValueError(f"features shape {M.shape}: expected {expected}")
        values = np.hstack([score, M[:, self._columns]])
        for j, i, mean in self._cusum.update_many(values):
            kind: Literal["score", "feature"] = "score" if j == 0 else "feature"
            firing = DriftFiring(
                "cusum", kind, self._streams[j], mean, self.config.cusum_h, self.rows_seen + i
            )
            out.append(firing)
        for j, side, i, share in self._tail.update_many(values):
            tail_kind: Literal["score", "feature"] = "score" if j == 0 else "feature"
            out.append(
                DriftFiring(
                    f"tail-{side}",
                    tail_kind,
                    self._streams[j],
                    share,
                    self.config.tail_h,
                    self.rows_seen + i,
                )
            )
        self._window = np.concatenate([self._window, values])[-self.config.ks_window :]
        self.rows_seen += len(values)
        if self.rows_seen >= self._next_ks:
            self._next_ks = self.rows_seen + self.config.ks_every
            out += self._ks_round()
        return out

    def _update_errors(self, errors: F64) -> list[DriftFiring]:
        out = []
        detector = self._adwin
        for e in errors.tolist():
            detector.update(e)
            self._error_sum += e
            self._error_count += 1
            if detector.drift_detected:
                before = self._error_sum / self._error_count
                after = float(detector.estimation)
                out.append(DriftFiring("adwin", "error", None, after, before, self.labels_seen))
                self._error_sum, self._error_count = 0.0, 0
            self.labels_seen += 1
        return out

    def _ks_round(self) -> list[DriftFiring]:
        alpha = self.config.ks_alpha / len(self._ks)
        out = []
        fired = []
        for j, (key, ks) in enumerate(zip(self._streams, self._ks, strict=True)):
            d, critical = ks.test_sample(self._window[:, j], alpha)
            if d > critical:
                kind: Literal["score", "feature"] = "score" if key is None else "feature"
                out.append(DriftFiring("ks", kind, key, d, critical, self.rows_seen - 1))
                fired.append(j)
        for j in fired:  # the new regime becomes the reference: report a shift once
            self._ks[j] = WindowKS(self._window[:, j])
        if fired:  # and the same data must not fire twice: start a fresh window
            self._window = self._window[:0]
        return out
