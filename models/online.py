"""Online learners (River behind the ``OnlineLearner`` protocol) and signed snapshots.

Two families:

- :class:`LogisticLearner`: ``StandardScaler | LogisticRegression``. Its
  ``predict_proba_many`` does not go through River's dataframe path: it rebuilds
  River's arithmetic in numpy from the scaler's running statistics and the
  weights (same operations, same order, float64), so it returns the probabilities
  ``predict_proba_one`` would (identical logits, probabilities bit for bit in
  our tests) at millions of rows a second. ``contributions_many`` gives each
  feature's exact share of the logit.
- :class:`TreeLearner`: a Hoeffding adaptive tree or an adaptive random forest;
  slower to learn and batch scoring loops over rows (no vectorized path).

River models are pickled, so a snapshot that crosses a process boundary is
wrapped by :func:`sign_snapshot` (HMAC-SHA256 over a JSON header and the payload)
and only :func:`load_snapshot` turns it back into a learner, checking the
signature before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as _package_version
from typing import Any, Literal

import numpy as np
from river import compose, forest, linear_model, optim, preprocessing, tree

from models.protocols import F64, FloatArray, OnlineLearner

__all__ = [
    "LEARNER_KINDS",
    "LogisticLearner",
    "SnapshotError",
    "SnapshotMeta",
    "TreeLearner",
    "load_snapshot",
    "make_learner",
    "sign_snapshot",
    "snapshot_learner",
    "verify_snapshot",
]

_EXP_CLIP = 30.0  # River's sigmoid returns exactly 0 or 1 beyond +-30
_SMALL_BATCH = 8  # below this, predicting row by row through River is faster


def _ordered(x: Mapping[str, float], names: Sequence[str]) -> dict[str, float]:
    """``x`` restricted to ``names`` in that order (River sums in key order)."""
    try:
        return {name: float(x[name]) for name in names}
    except KeyError as exc:
        raise KeyError(f"feature {exc.args[0]!r} missing from the example") from None


def _as_matrix(X: FloatArray, n: int) -> F64:
    M = np.asarray(X, dtype=np.float64)
    if M.ndim != 2 or M.shape[1] != n:
        raise ValueError(f"feature matrix shape {M.shape}: expected [batch, {n}]")
    return M


class LogisticLearner:
    """River ``StandardScaler | LogisticRegression`` with a fast batch predictor.

    Parameters
    ----------
    feature_names
        Feature names; matrices given to ``*_many`` follow this column order.
    learning_rate
        SGD step of the weights.
    l2
        L2 penalty on the weights.
    positive_weight
        Sample weight of positive labels (fraud is rare; >1 counters imbalance).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> names = ["a", "b"]
    >>> learner = LogisticLearner(names, learning_rate=0.05)
    >>> X = rng.normal(size=(2000, 2))
    >>> for row, label in zip(X, X[:, 0] > 0.5):
    ...     learner.learn_one(dict(zip(names, row)), bool(label))
    >>> learner.n_learned
    2000
    >>> fast = learner.predict_proba_many(X[:3])
    >>> slow = [learner.predict_proba_one(dict(zip(names, row))) for row in X[:3]]
    >>> bool(np.allclose(fast, slow, rtol=0, atol=1e-15)), fast.round(3).tolist()
    (True, [0.259, 0.719, 0.025])
    """

    kind = "logistic"

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        learning_rate: float = 0.01,
        l2: float = 0.0,
        positive_weight: float = 1.0,
    ) -> None:
        self._names = tuple(feature_names)
        self._positive_weight = positive_weight
        self._model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=l2),
        )
        self._n_learned = 0
        self._params: tuple[F64, F64, F64, float] | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        return self._names

    @property
    def n_learned(self) -> int:
        """Number of labels learned."""
        return self._n_learned

    def learn_one(self, x: Mapping[str, float], y: bool) -> None:
        """Update the scaler statistics, then take one SGD step on ``(x, y)``."""
        w = self._positive_weight if y else 1.0
        self._model.learn_one(_ordered(x, self._names), bool(y), w=w)
        self._n_learned += 1
        self._params = None

    def predict_proba_one(self, x: Mapping[str, float]) -> float:
        """Return River's probability that ``x`` is positive."""
        return float(self._model.predict_proba_one(_ordered(x, self._names)).get(True, 0.0))

    def _parameters(self) -> tuple[F64, F64, F64, float]:
        """(means, divisors, weights, intercept); the divisor of a zero variance is inf.

        River maps a feature of zero variance to 0; dividing by infinity does the same
        (as a signed zero, which adds nothing) without a masked assignment.
        """
        if self._params is None:
            scaler = self._model.steps["StandardScaler"]
            lr = self._model.steps["LogisticRegression"]
            means = np.array([scaler.means.get(n, 0.0) for n in self._names], dtype=np.float64)
            # Python's ``v ** 0.5`` (libm pow), as River computes it: np.sqrt rounds
            # differently in the last bit for some values.
            std = np.array([scaler.vars.get(n, 0.0) ** 0.5 or math.inf for n in self._names])
            weights = np.array([lr._weights.get(n, 0.0) for n in self._names], dtype=np.float64)
            self._params = (means, std, weights, float(lr.intercept))
        return self._params

    def standardize_many(self, X: FloatArray) -> F64:
        """Return the scaler's output for each row: ``(x - mean) / std``, 0 where std is 0."""
        means, std, _, _ = self._parameters()
        Z: F64 = (_as_matrix(X, len(self._names)) - means) / std
        return Z

    def contributions_many(self, X: FloatArray) -> F64:
        """Return each feature's additive share of the logit, ``w_i * z_i``, ``[batch, n]``.

        The logit is ``intercept + contributions.sum(axis=1)``.
        """
        _, _, weights, _ = self._parameters()
        return self.standardize_many(X) * weights

    def logits_many(self, X: FloatArray) -> F64:
        """Return the logit of each row, bit for bit the one River computes per row.

        Same operations in the same order: the scaler's ``(x - mean) / var ** 0.5``,
        then the weighted terms summed feature by feature in ``feature_names`` order
        (a BLAS dot would round differently), then the intercept.
        """
        terms = self.contributions_many(X)
        _, _, _, intercept = self._parameters()
        logit = np.zeros(len(terms), dtype=np.float64)
        for j in range(terms.shape[1]):
            logit += terms[:, j]
        logit += intercept
        return logit

    def predict_proba_many(self, X: FloatArray) -> F64:
        """Return the probability of each row as ``predict_proba_one`` computes it.

        Logits are identical (see :meth:`logits_many`); the sigmoid uses numpy's
        ``exp``, which equals libm's here (bit-identical probabilities in our
        tests) and is within an ulp of it where numpy has its own SIMD ``exp``.
        """
        if len(X) < _SMALL_BATCH:  # a handful of numpy calls cost more than River per row
            M = _as_matrix(X, len(self._names))
            return np.array(
                [self.predict_proba_one(dict(zip(self._names, r, strict=True))) for r in M.tolist()]
            )
        logit = self.logits_many(X)
        # Clipping first avoids overflow warnings; the result is overwritten out there.
        p: F64 = 1.0 / (1.0 + np.exp(-np.clip(logit, -31.0, 31.0)))
        if np.abs(logit).max(initial=0.0) > _EXP_CLIP:
            p[logit < -_EXP_CLIP] = 0.0
            p[logit > _EXP_CLIP] = 1.0
        return p

    def snapshot(self) -> bytes:
        """Pickle the learner's state (unsigned: wrap with :func:`sign_snapshot`)."""
        return pickle.dumps(
            {"kind": self.kind, "names": self._names, "n": self._n_learned, "model": self._model},
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def restore(self, payload: bytes) -> None:
        """Replace the state with ``payload``; trusted bytes only (see :func:`load_snapshot`)."""
        self._model, self._n_learned = _unpickle_state(payload, self.kind, self._names)
        self._params = None


TreeKind = Literal["hoeffding_adaptive_tree", "adaptive_random_forest"]


class TreeLearner:
    """A River tree model (no scaling needed) behind the ``OnlineLearner`` protocol.

    ``"hoeffding_adaptive_tree"`` learns tens of thousands of examples a second and
    replaces subtrees on drift; ``"adaptive_random_forest"`` is more accurate and
    several times slower. Batch scoring calls ``predict_proba_one`` per row.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> learner = TreeLearner(["a", "b"], seed=1)
    >>> X = rng.normal(size=(3000, 2))
    >>> for row, label in zip(X, X[:, 0] > 0.5):
    ...     learner.learn_one({"a": row[0], "b": row[1]}, bool(label))
    >>> learner.predict_proba_many(np.array([[2.0, 0.0], [-2.0, 0.0]])).round(2).tolist()
    [1.0, 0.0]
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        kind: TreeKind = "hoeffding_adaptive_tree",
        seed: int = 0,
        n_models: int = 5,
    ) -> None:
        self._names = tuple(feature_names)
        self.kind: str = kind
        self._model: Any
        if kind == "hoeffding_adaptive_tree":
            self._model = tree.HoeffdingAdaptiveTreeClassifier(seed=seed)
        elif kind == "adaptive_random_forest":
            self._model = forest.ARFClassifier(n_models=n_models, seed=seed)
        else:
            raise ValueError(f"unknown tree kind {kind!r}")
        self._n_learned = 0

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        return self._names

    @property
    def n_learned(self) -> int:
        """Number of labels learned."""
        return self._n_learned

    def learn_one(self, x: Mapping[str, float], y: bool) -> None:
        """Update the tree(s) with one labeled example."""
        self._model.learn_one(_ordered(x, self._names), bool(y))
        self._n_learned += 1

    def predict_proba_one(self, x: Mapping[str, float]) -> float:
        """Return the probability that ``x`` is positive (0 before any positive label)."""
        return float(self._model.predict_proba_one(_ordered(x, self._names)).get(True, 0.0))

    def predict_proba_many(self, X: FloatArray) -> F64:
        """Return the probability of each row (a Python loop over rows)."""
        M = _as_matrix(X, len(self._names))
        predict = self._model.predict_proba_one
        names = self._names
        return np.array(
            [predict(dict(zip(names, row, strict=True))).get(True, 0.0) for row in M.tolist()],
            dtype=np.float64,
        )

    def snapshot(self) -> bytes:
        """Pickle the learner's state (unsigned: wrap with :func:`sign_snapshot`)."""
        return pickle.dumps(
            {"kind": self.kind, "names": self._names, "n": self._n_learned, "model": self._model},
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def restore(self, payload: bytes) -> None:
        """Replace the state with ``payload``; trusted bytes only (see :func:`load_snapshot`)."""
        self._model, self._n_learned = _unpickle_state(payload, self.kind, self._names)


def _unpickle_state(payload: bytes, kind: str, names: tuple[str, ...]) -> tuple[Any, int]:
    state = pickle.loads(payload)  # noqa: S301 - callers pass verified bytes only
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise SnapshotError(f"snapshot is not a {kind!r} learner")
    if tuple(state.get("names", ())) != names:
        raise SnapshotError(f"snapshot features {state.get('names')} differ from {list(names)}")
    return state["model"], int(state["n"])


LEARNER_KINDS = ("logistic", "hoeffding_adaptive_tree", "adaptive_random_forest")


def make_learner(kind: str, feature_names: Sequence[str], **params: Any) -> OnlineLearner:
    """Build a learner: ``logistic``, ``hoeffding_adaptive_tree`` or ``adaptive_random_forest``.

    Examples
    --------
    >>> make_learner("logistic", ["a"], learning_rate=0.1).kind
    'logistic'
    """
    if kind == "logistic":
        return LogisticLearner(feature_names, **params)
    if kind == "hoeffding_adaptive_tree":
        return TreeLearner(feature_names, kind="hoeffding_adaptive_tree", **params)
    if kind == "adaptive_random_forest":
        return TreeLearner(feature_names, kind="adaptive_random_forest", **params)
    raise ValueError(f"unknown learner kind {kind!r}; known: {list(LEARNER_KINDS)}")


# --------------------------------------------------------------------------- snapshots

_MAGIC = b"SSNAP\x01"
_TAG = 32  # HMAC-SHA256 digest size
_MIN_KEY = 16


class SnapshotError(ValueError):
    """A snapshot is malformed, signed with another key, or tampered with."""


@dataclass(frozen=True)
class SnapshotMeta:
    """What a signed snapshot says about itself (readable without unpickling)."""

    kind: str
    """Learner kind, as :func:`make_learner` takes it."""
    n_learned: int
    """Number of labels the learner had learned."""
    feature_names: tuple[str, ...]
    """The learner's feature contract."""
    offsets: dict[str, int] = field(default_factory=dict)
    """Caller-supplied positions (e.g. label topic partition -> next offset) included."""
    river_version: str = field(default_factory=lambda: _package_version("river"))
    """River release that pickled the payload."""


def _check_key(key: bytes) -> None:
    if len(key) < _MIN_KEY:
        raise ValueError(f"signing key must be at least {_MIN_KEY} bytes (32 random bytes advised)")


def sign_snapshot(payload: bytes, key: bytes, meta: SnapshotMeta) -> bytes:
    """Wrap ``payload`` with its metadata and an HMAC-SHA256 signature.

    Layout: magic ``SSNAP\\x01``, 4-byte big-endian header length, UTF-8 JSON header
    (the metadata), payload, 32-byte tag over everything before it.
    """
    _check_key(key)
    if not all(isinstance(v, int) for v in meta.offsets.values()):
        raise TypeError("snapshot offsets must be integers")
    header = json.dumps(
        {
            "kind": meta.kind,
            "n_learned": meta.n_learned,
            "feature_names": list(meta.feature_names),
            "offsets": meta.offsets,
            "river_version": meta.river_version,
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
        },
        sort_keys=True,
    ).encode()
    body = _MAGIC + len(header).to_bytes(4, "big") + header + payload
    return body + hmac.new(key, body, hashlib.sha256).digest()


def verify_snapshot(blob: bytes, key: bytes) -> tuple[SnapshotMeta, bytes]:
    """Check the signature of ``blob`` and return its metadata and (still pickled) payload.

    Raises
    ------
    SnapshotError
        Not a snapshot, truncated, or the signature does not match ``key``.
    """
    _check_key(key)
    if len(blob) < len(_MAGIC) + 4 + _TAG or not blob.startswith(_MAGIC):
        raise SnapshotError("not a streamscore snapshot")
    body, tag = blob[:-_TAG], blob[-_TAG:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), tag):
        raise SnapshotError("snapshot signature does not match: refusing to load it")
    start = len(_MAGIC) + 4
    size = int.from_bytes(body[len(_MAGIC) : start], "big")
    try:
        header = json.loads(body[start : start + size])
        payload = body[start + size :]
        meta = SnapshotMeta(
            kind=str(header["kind"]),
            n_learned=int(header["n_learned"]),
            feature_names=tuple(header["feature_names"]),
            offsets={str(k): int(v) for k, v in header["offsets"].items()},
            river_version=str(header["river_version"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"unreadable snapshot header: {exc}") from exc
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise SnapshotError("snapshot payload does not match its header")
    return meta, payload


def snapshot_learner(
    learner: OnlineLearner, key: bytes, offsets: Mapping[str, int] | None = None
) -> bytes:
    """Snapshot ``learner`` and sign it, recording its kind, label count and ``offsets``.

    Examples
    --------
    >>> key = b"k" * 32
    >>> learner = LogisticLearner(["a"])
    >>> learner.learn_one({"a": 1.0}, True)
    >>> blob = snapshot_learner(learner, key, offsets={"labels/0": 41})
    >>> meta, restored = load_snapshot(blob, key)
    >>> meta.kind, meta.n_learned, meta.offsets, restored.n_learned
    ('logistic', 1, {'labels/0': 41}, 1)
    """
    meta = SnapshotMeta(
        kind=learner.kind,
        n_learned=learner.n_learned,
        feature_names=tuple(learner.feature_names),
        offsets=dict(offsets or {}),
    )
    return sign_snapshot(learner.snapshot(), key, meta)


def load_snapshot(blob: bytes, key: bytes) -> tuple[SnapshotMeta, OnlineLearner]:
    """Verify ``blob``'s signature, then rebuild the learner it holds.

    Nothing is unpickled unless the HMAC matches ``key``.

    Raises
    ------
    SnapshotError
        Bad signature or format, unknown kind, or the payload contradicts the header.
    """
    meta, payload = verify_snapshot(blob, key)
    if meta.kind not in LEARNER_KINDS:
        raise SnapshotError(f"snapshot of unknown learner kind {meta.kind!r}")
    learner = make_learner(meta.kind, meta.feature_names)
    learner.restore(payload)
    if learner.n_learned != meta.n_learned:
        raise SnapshotError("snapshot payload contradicts its header (label count)")
    return meta, learner
