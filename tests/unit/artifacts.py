"""Registries, signed artifacts and broken models for lifecycle tests (no torch)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from models.manifest import Manifest
from models.registry import Registry
from models.serving import META_FEATURES, META_VERSION, OnnxScorer
from models.signing import hmac_keys
from models.verify import FeatureContract
from tests.unit.onnx_builders import logistic_onnx

NAMES = ("amount", "night", "count_7d", "risk_7d")
WEIGHTS = (0.02, 1.5, -0.3, 2.0)
FEATURE_SET = "test-v1"
CONTRACT = FeatureContract(FEATURE_SET, NAMES)
KEY = b"0123456789abcdef0123456789abcdef"
GOLDEN_X = np.random.default_rng(7).normal(size=(8, len(NAMES))).astype(np.float32) * [
    50,
    1,
    3,
    0.2,
]


def make_registry(root: Path, key: bytes = KEY) -> Registry:
    """A registry in ``root`` signed with ``key``."""
    signer, verifier = hmac_keys(key)
    return Registry(root, verifier, signer)


def good_model(version: str, weights: Sequence[float] = WEIGHTS, bias: float = -1.0) -> bytes:
    """A valid logistic model of the test contract."""
    return logistic_onnx(NAMES, weights, bias, version=version)


def golden_of(model: bytes, names: Sequence[str] = NAMES) -> dict[str, Any]:
    """Golden set fields: the test rows and what ``model`` gives them."""
    scorer = OnnxScorer(model, feature_names=names, provider="cpu", warmup_batch_sizes=())
    return {"inputs": GOLDEN_X.tolist(), "expected": scorer.score_batch(GOLDEN_X).tolist()}


def fields(version: str, golden: Mapping[str, Any], **override: Any) -> dict[str, Any]:
    """Manifest fields of a model of the test contract."""
    base: dict[str, Any] = {
        "model_name": "deep",
        "version": version,
        "feature_set": FEATURE_SET,
        "feature_names": NAMES,
        "input_shape": ("batch", len(NAMES)),
        "output_shape": ("batch", 1),
        "opset": 17,
        "golden": dict(golden),
    }
    return {**base, **override}


def publish_good(registry: Registry, version: str, **weights: Any) -> Manifest:
    """Publish a valid model of the test contract."""
    model = good_model(version, **weights)
    return registry.publish(model, fields(version, golden_of(model)))


@dataclass(frozen=True)
class Update:
    """Stands for a ``ModelUpdate`` event (models/ cannot import streams/)."""

    model_name: str
    action: str
    version: str | None
    manifest: dict[str, Any] | None
    signature: str | None


def update_of(registry: Registry, version: str, action: str = "publish") -> Update:
    """The update a publisher would send for ``version``."""
    signed = registry.get(version)
    return Update("deep", action, version, signed.manifest.payload(), signed.signature)


# ------------------------------------------------------------------ broken models


def _model(nodes: list[Any], inits: list[Any], version: str, **kw: Any) -> bytes:
    n = len(NAMES)
    graph = helper.make_graph(
        nodes,
        "broken",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 17), *kw.get("extra_opsets", [])]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    helper.set_model_props(model, {META_FEATURES: json.dumps(list(NAMES)), META_VERSION: version})
    return bytes(model.SerializeToString())


def _weights() -> Any:
    return numpy_helper.from_array(np.asarray(WEIGHTS, np.float32).reshape(-1, 1), "w")


def scaled_model(version: str, scale: float) -> bytes:
    """``scale * sigmoid(X @ w)``: outputs above 1 when ``scale > 1``."""
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Mul", ["p", "scale"], ["probability"]),
    ]
    scale_t = numpy_helper.from_array(np.array([scale], np.float32), "scale")
    return _model(nodes, [_weights(), scale_t], version)


def custom_op_model(version: str) -> bytes:
    """A model calling an operator of a private domain."""
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probability"], domain="com.example.evil"),
    ]
    return _model(
        nodes, [_weights()], version, extra_opsets=[helper.make_opsetid("com.example.evil", 1)]
    )


def external_data_model(version: str, location: str) -> tuple[bytes, bytes]:
    """A logistic model whose weights live in the file ``location``; returns (model, data)."""
    w = _weights()
    data = w.raw_data
    set_external_data(w, location=location, offset=0, length=len(data))
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probability"]),
    ]
    return _model(nodes, [w], version), bytes(data)


def padded_model(version: str, pad_floats: int) -> bytes:
    """A valid logistic model carrying an unused initializer of ``pad_floats`` floats."""
    pad = numpy_helper.from_array(np.zeros(pad_floats, np.float32), "pad")
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probability"]),
    ]
    return _model(nodes, [_weights(), pad], version)
