"""A registry signed like the trainer's, holding hand-built models of the worker's contract."""

from __future__ import annotations

import urllib.request
from datetime import datetime, timedelta

import numpy as np

from models.features import FEATURE_NAMES
from models.manifest import Manifest
from models.registry import Registry
from models.serving import OnnxScorer
from models.settings import RegistrySettings
from models.signing import load_keys
from streams.harness import Harness
from streams.terminal import FEATURE_SET
from tests.unit.onnx_builders import logistic_onnx


def harness_registry(harness: Harness) -> Registry:
    """The registry the harness's processes use, with its signing key."""
    signer, verifier = load_keys(
        RegistrySettings(signing_key_file=harness.key_file), harness.registry_dir
    )
    return Registry(harness.registry_dir, verifier, signer)


def logistic_model(version: str, weights: dict[str, float]) -> bytes:
    """``sigmoid(x . w - 3)`` over the worker's features (weights by feature name)."""
    w = [weights.get(name, 0.0) for name in FEATURE_NAMES]
    return logistic_onnx(FEATURE_NAMES, w, -3.0, version=version)


def publish_logistic(
    registry: Registry,
    version: str,
    weights: dict[str, float],
    end: datetime,
    *,
    model: bytes | None = None,
) -> Manifest:
    """Publish a logistic model "trained" on the 28 days before ``end``.

    ``model`` replaces the stored bytes (the golden set stays the logistic model's):
    how a broken artifact is published with a valid signature.
    """
    good = logistic_model(version, weights)
    golden = np.random.default_rng(1).gamma(2.0, 20.0, size=(8, len(FEATURE_NAMES)))
    scorer = OnnxScorer(good, feature_names=FEATURE_NAMES, provider="cpu")
    fields = {
        "model_name": "deep",
        "version": version,
        "feature_set": FEATURE_SET,
        "feature_names": FEATURE_NAMES,
        "input_shape": ("batch", len(FEATURE_NAMES)),
        "output_shape": ("batch", 1),
        "opset": 17,
        "training_window": {
            "start": end - timedelta(days=28),
            "end": end,
            "examples": 1000,
            "positives": 10,
        },
        "golden": {"inputs": golden.tolist(), "expected": scorer.score_batch(golden).tolist()},
    }
    return registry.publish(good if model is None else model, fields)


def scrape(port: int) -> str:
    """A process's Prometheus exposition."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())
