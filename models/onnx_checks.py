"""Structural checks of an untrusted ONNX model, before onnxruntime ever sees it.

Each check raises :class:`~models.rejections.Rejected` with its reason code:
:func:`parse` (``onnx_invalid``), :func:`inline_external_data` (``external_data``),
:func:`run_checker` (``onnx_invalid``), :func:`check_operators` (``custom_op``) and
:func:`check_graph_contract` (``contract_mismatch``). No check opens a file: the
model and the data files it may reference are passed in as bytes that were hashed
against the manifest, so what is checked is what was hashed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

import onnx

from models.rejections import Rejected, RejectReason
from models.serving import META_FEATURES, META_VERSION

__all__ = [
    "STANDARD_DOMAINS",
    "check_graph_contract",
    "check_operators",
    "inline_external_data",
    "parse",
    "run_checker",
]

#: Operator domains a model may use: the ONNX standard and ONNX-ML.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


def parse(data: bytes) -> onnx.ModelProto:
    """Parse ONNX bytes without loading external data."""
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError, which it does not export typed
        raise Rejected(RejectReason.ONNX_INVALID, f"not an ONNX protobuf: {exc}") from None
    if not proto.HasField("graph") or not proto.opset_import:
        raise Rejected(RejectReason.ONNX_INVALID, "no graph or no opset import: not an ONNX model")
    return proto


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph in its nodes' attributes, depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor that can hold data: initializers and tensor-valued attributes."""

    def from_nodes(nodes: Sequence[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
        for node in nodes:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("sparse_tensor"):
                    yield attr.sparse_tensor.values
                    yield attr.sparse_tensor.indices

    for graph in _graphs(proto.graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        yield from from_nodes(graph.node)
    for function in proto.functions:
        yield from from_nodes(function.node)


def inline_external_data(proto: onnx.ModelProto, files: Mapping[str, bytes]) -> int:
    """Move external tensor data into the model, from ``files`` only; return how many.

    A tensor's ``location`` must name one of ``files`` exactly (a file of the
    artifact directory that the manifest hashes): absolute paths, ``..``, separators
    and unlisted files are rejected, so nothing outside the directory is ever read.
    """
    moved = 0
    for tensor in _tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        if location not in files:
            raise Rejected(
                RejectReason.EXTERNAL_DATA,
                f"tensor {tensor.name!r} stores its data in {location!r}, which is not a "
                "file of the artifact hashed by the manifest",
            )
        blob = files[location]
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else len(blob) - offset
        except ValueError:
            raise Rejected(
                RejectReason.EXTERNAL_DATA, f"bad offset/length of {tensor.name!r}"
            ) from None
        if offset < 0 or length < 0 or offset + length > len(blob):
            raise Rejected(
                RejectReason.EXTERNAL_DATA,
                f"tensor {tensor.name!r} reads bytes {offset}..{offset + length} of {location!r}"
                f" ({len(blob)} bytes)",
            )
        tensor.raw_data = blob[offset : offset + length]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
        moved += 1
    return moved


def run_checker(proto: onnx.ModelProto) -> None:
    """Run ONNX's checker with shape inference (``full_check``)."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # the checker raises ValidationError and InferenceError
        raise Rejected(RejectReason.ONNX_INVALID, f"ONNX checker: {exc}"[:2048]) from None


def check_operators(proto: onnx.ModelProto) -> None:
    """Reject operators outside the standard domains.

    Model-local functions may be called if their bodies use standard operators only.
    """
    for opset in proto.opset_import:
        if opset.domain not in STANDARD_DOMAINS and opset.domain not in {
            f.domain for f in proto.functions
        }:
            raise Rejected(RejectReason.CUSTOM_OP, f"imports operator domain {opset.domain!r}")
    local = {(f.domain, f.name) for f in proto.functions}
    nodes = [n for g in _graphs(proto.graph) for n in g.node]
    nodes += [n for f in proto.functions for n in f.node]
    for node in nodes:
        if node.domain in STANDARD_DOMAINS or (node.domain, node.op_type) in local:
            continue
        raise Rejected(
            RejectReason.CUSTOM_OP,
            f"node {node.name or node.op_type!r} uses {node.domain}::{node.op_type}",
        )


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return []
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
    ]


def check_graph_contract(
    proto: onnx.ModelProto,
    *,
    input_name: str,
    output_name: str,
    feature_names: Sequence[str],
    version: str,
) -> None:
    """Check the graph's input, output and metadata against the expected contract.

    One float input ``input_name`` of shape ``[batch, n_features]`` (dynamic batch),
    one float output ``output_name`` of shape ``[batch, 1]`` or ``[batch]``, and the
    metadata naming the features in order and the version.
    """

    def fail(detail: str) -> Rejected:
        return Rejected(RejectReason.CONTRACT_MISMATCH, detail)

    graph = proto.graph
    initialized = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialized]
    n = len(feature_names)
    if [i.name for i in inputs] != [input_name]:
        raise fail(f"inputs {[i.name for i in inputs]}: expected one named {input_name!r}")
    if inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise fail("input is not a float32 tensor")
    shape = _dims(inputs[0])
    if len(shape) != 2 or isinstance(shape[0], int) or shape[1] != n:
        raise fail(f"input shape {shape}: expected [batch, {n}] with a dynamic batch axis")
    outputs = list(graph.output)
    if [o.name for o in outputs] != [output_name]:
        raise fail(f"outputs {[o.name for o in outputs]}: expected one named {output_name!r}")
    if outputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise fail("output is not a float32 tensor")
    out_shape = _dims(outputs[0])
    if not (len(out_shape) == 1 or (len(out_shape) == 2 and out_shape[1] == 1)):
        raise fail(f"output shape {out_shape}: expected [batch, 1] or [batch]")
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        names = json.loads(meta[META_FEATURES])
    except (KeyError, ValueError):
        raise fail(f"metadata {META_FEATURES!r} missing or not JSON") from None
    if names != list(feature_names):
        raise fail(f"model features {names} differ from {list(feature_names)} (names or order)")
    if meta.get(META_VERSION) != version:
        raise fail(f"model metadata version {meta.get(META_VERSION)!r}, manifest {version!r}")
