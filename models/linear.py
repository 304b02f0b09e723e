"""The online logistic model as plain numbers: what scorers load, never a pickle.

The learner (River, :class:`models.online.LogisticLearner`) learns from delayed labels
in its own process; scorers only need its scaler statistics and weights. A
:class:`LinearSnapshot` carries exactly those, serializes to canonical JSON (bounded
size, no code) and is signed with the registry's key (:mod:`models.signing`).

Examples
--------
>>> import numpy as np
>>> from models.online import LogisticLearner
>>> rng = np.random.default_rng(0)
>>> names = ["a", "b"]
>>> learner = LogisticLearner(names, learning_rate=0.05)
>>> X = rng.normal(size=(500, 2))
>>> for row, y in zip(X, X[:, 0] > 0.5):
...     learner.learn_one(dict(zip(names, row)), bool(y))
>>> snap = LinearSnapshot.from_learner(learner, version="online-1")
>>> back = LinearSnapshot.from_json(snap.to_json())
>>> bool(np.allclose(back.predict_proba_many(X[:5]), learner.predict_proba_many(X[:5])))
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.online import LogisticLearner
from models.protocols import F64, FloatArray
from models.signing import SignatureError, Signer, Verifier

_CLIP = 30.0


@dataclass(frozen=True)
class LinearSnapshot:
    """Scaler statistics and weights of a logistic model, in feature order."""

    version: str
    feature_names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    n_learned: int = 0
    offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if not (len(self.means) == len(self.stds) == len(self.weights) == n):
            raise ValueError("means, stds and weights must have one value per feature")
        values = (*self.means, *self.weights, self.intercept)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("a linear snapshot holds finite numbers only")

    @classmethod
    def from_learner(
        cls, learner: LogisticLearner, version: str, offsets: dict[str, int] | None = None
    ) -> LinearSnapshot:
        """Freeze a learner's current parameters."""
        means, std, weights, intercept = learner._parameters()
        return cls(
            version=version,
            feature_names=learner.feature_names,
            means=tuple(float(v) for v in means),
            stds=tuple(0.0 if math.isinf(v) else float(v) for v in std),
            weights=tuple(float(v) for v in weights),
            intercept=float(intercept),
            n_learned=learner.n_learned,
            offsets=dict(offsets or {}),
        )

    @classmethod
    def untrained(cls, feature_names: Sequence[str], version: str = "online-0") -> LinearSnapshot:
        """A model that knows nothing yet (scores 0.5)."""
        n = len(feature_names)
        return cls(version, tuple(feature_names), (0.0,) * n, (0.0,) * n, (0.0,) * n, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "kind": "logistic",
            "version": self.version,
            "feature_names": list(self.feature_names),
            "means": list(self.means),
            "stds": list(self.stds),
            "weights": list(self.weights),
            "intercept": self.intercept,
            "n_learned": self.n_learned,
            "offsets": dict(sorted(self.offsets.items())),
        }

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): what gets signed."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearSnapshot:
        """Parse the plain form (raises ValueError on anything unexpected)."""
        if data.get("kind") != "logistic":
            raise ValueError(f"not a logistic snapshot: {data.get('kind')!r}")
        return cls(
            version=str(data["version"]),
            feature_names=tuple(str(n) for n in data["feature_names"]),
            means=tuple(float(v) for v in data["means"]),
            stds=tuple(float(v) for v in data["stds"]),
            weights=tuple(float(v) for v in data["weights"]),
            intercept=float(data["intercept"]),
            n_learned=int(data.get("n_learned", 0)),
            offsets={str(k): int(v) for k, v in dict(data.get("offsets", {})).items()},
        )

    @classmethod
    def from_json(cls, raw: bytes) -> LinearSnapshot:
        """Parse canonical JSON."""
        return cls.from_dict(json.loads(raw))

    def sign(self, signer: Signer) -> str:
        """Signature of the canonical JSON (the registry's scheme and key)."""
        return signer.sign(self.to_json())

    def verify(self, verifier: Verifier, signature: str) -> bool:
        """True when ``signature`` signs this snapshot under the verifier's key."""
        try:
            verifier.verify(self.to_json(), signature)
        except SignatureError:
            return False
        return True

    # -- scoring -----------------------------------------------------------------------
    def _arrays(self) -> tuple[F64, F64, F64]:
        cache = self.__dict__.get("_cache")
        if cache is None:
            stds = np.array([s if s > 0 else math.inf for s in self.stds], dtype=np.float64)
            cache = (np.array(self.means), stds, np.array(self.weights))
            object.__setattr__(self, "_cache", cache)
        return cache

    def contributions_many(self, X: FloatArray) -> F64:
        """Each feature's additive share of the logit, ``w_i * z_i``."""
        means, stds, weights = self._arrays()
        Z: F64 = (np.asarray(X, dtype=np.float64) - means) / stds
        return Z * weights

    def predict_proba_many(self, X: FloatArray) -> F64:
        """Probability of fraud of each row."""
        logit = self.contributions_many(X).sum(axis=1) + self.intercept
        p: F64 = 1.0 / (1.0 + np.exp(-np.clip(logit, -_CLIP, _CLIP)))
        return p
