"""Hand-built ONNX models for tests (no torch): a logistic model with known weights."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from models.serving import META_FEATURES, META_VERSION


def logistic_onnx(
    names: Sequence[str],
    weights: Sequence[float],
    bias: float = 0.0,
    *,
    version: str | None = "test-1",
    input_name: str = "features",
    output_name: str = "probability",
    input_shape: Sequence[int | str] | None = None,
    output_shape: Sequence[int | str] = ("batch", 1),
    input_type: int = TensorProto.FLOAT,
    meta_names: Sequence[str] | None = None,
) -> bytes:
    """``sigmoid(X @ weights + bias)`` as an ONNX model with our metadata."""
    w = np.asarray(weights, dtype=np.float32).reshape(-1, 1)
    cast: list[helper.NodeProto] = []
    x = input_name
    if input_type != TensorProto.FLOAT:
        cast = [helper.make_node("Cast", [input_name], ["x32"], to=TensorProto.FLOAT)]
        x = "x32"
    graph = helper.make_graph(
        [
            *cast,
            helper.make_node("MatMul", [x, "w"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], [output_name]),
        ],
        "logistic",
        [
            helper.make_tensor_value_info(
                input_name, input_type, list(input_shape or ("batch", len(w)))
            )
        ],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, list(output_shape))],
        initializer=[
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.array([bias], dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = {META_FEATURES: json.dumps(list(names if meta_names is None else meta_names))}
    if version is not None:
        props[META_VERSION] = version
    helper.set_model_props(model, props)
    return bytes(model.SerializeToString())
