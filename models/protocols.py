"""The seams of the model side: what a scorer, an online learner and a detector offer.

Concrete classes (onnxruntime sessions, River pipelines, River or numpy detectors)
sit behind these protocols so the streaming code never depends on a library's
return conventions. Feature vectors travel as ``float32`` matrices
``[batch, n_features]`` whose columns follow ``feature_names``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
"""A float matrix or vector of any precision (inputs are converted where needed)."""
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@runtime_checkable
class Scorer(Protocol):
    """Scores a batch of feature rows with a fixed model (the deep model's seam)."""

    @property
    def version(self) -> str:
        """Version of the model, recorded on every prediction."""
        ...

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The feature contract: column order of the matrices ``score_batch`` takes."""
        ...

    def score_batch(self, X: FloatArray) -> F32:
        """Return the probability of the positive class for each row, shape ``[batch]``."""
        ...


@runtime_checkable
class OnlineLearner(Protocol):
    """A model that learns one labeled example at a time and scores batches fast."""

    @property
    def kind(self) -> str:
        """Which learner this is (recorded in snapshots, e.g. ``"logistic"``)."""
        ...

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Column order of the matrices ``predict_proba_many`` takes."""
        ...

    @property
    def n_learned(self) -> int:
        """Number of labels learned since the learner was created."""
        ...

    def learn_one(self, x: Mapping[str, float], y: bool) -> None:
        """Update the model with one labeled example."""
        ...

    def predict_proba_one(self, x: Mapping[str, float]) -> float:
        """Return the probability that ``x`` is positive."""
        ...

    def predict_proba_many(self, X: FloatArray) -> F64:
        """Return the positive-class probability of each row of ``X``, shape ``[batch]``."""
        ...

    def snapshot(self) -> bytes:
        """Serialize the learner's state (unsigned; sign it before it leaves the process)."""
        ...

    def restore(self, payload: bytes) -> None:
        """Replace the learner's state with a payload from ``snapshot``.

        The payload is unpickled: pass only bytes whose signature was checked
        (``models.online.load_snapshot`` does that).
        """
        ...


@runtime_checkable
class DriftDetector(Protocol):
    """A sequential change detector in River's vocabulary: ``update`` then ``drift_detected``."""

    def update(self, x: float) -> object:
        """Feed one observation."""
        ...

    @property
    def drift_detected(self) -> bool:
        """Whether the last ``update`` signalled a change."""
        ...


@runtime_checkable
class Blend(Protocol):
    """Combines the deep and the online model's probabilities row by row."""

    @property
    def version(self) -> str:
        """Describes the rule and its parameters; recorded on every prediction."""
        ...

    def blend(self, deep: FloatArray, online: FloatArray) -> F64:
        """Return the blended score of each row."""
        ...
