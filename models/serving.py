"""Score feature batches with an ONNX model through onnxruntime.

This is the serving path: it needs onnxruntime and numpy only, and never imports
torch (an import-linter contract holds that). Either onnxruntime build works: the
``cpu`` extra installs ``onnxruntime``, the ``gpu`` extra ``onnxruntime-gpu``; both
provide the same ``onnxruntime`` package, and the GPU build lists
``CUDAExecutionProvider`` among its providers.

The model contract (written by :func:`models.export.export_onnx`, checked here at
load): one float input named ``features`` shaped ``[batch, n_features]`` (or
``[batch, seq_len, n_features]`` for sequence models) with a dynamic batch axis; one
float output named ``probability`` shaped ``[batch, 1]`` or ``[batch]``; metadata
props holding the feature names (JSON list, in column order) and the model version.

Tuning knobs
------------
``intra_op_threads``
    Threads one ``score_batch`` call may use on CPU. 1 suits workers that run one
    scoring process per core; 2 pays off from a few hundred rows a call (see
    ``bench/scoring_engines.py``). 0 lets onnxruntime use every core.
``allow_spinning``
    With more than one thread, onnxruntime's workers spin while waiting for work;
    that lowers latency but burns CPU between calls, so it is off by default.
batch size
    Per-call overhead is a few microseconds on CPU and tens on CUDA: score whole
    micro-batches, never one event at a time. CUDA beats CPU only from a few hundred
    rows a call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from models.protocols import F32, FloatArray

logger = logging.getLogger(__name__)

__all__ = [
    "INPUT_NAME",
    "META_FEATURES",
    "META_VERSION",
    "OUTPUT_NAME",
    "ModelContractError",
    "OnnxScorer",
    "ProviderUnavailableError",
    "resolve_provider",
]

INPUT_NAME = "features"
OUTPUT_NAME = "probability"
META_FEATURES = "streamscore.feature_names"
META_VERSION = "streamscore.version"

Provider = Literal["auto", "cpu", "cuda"]
_ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class ModelContractError(ValueError):
    """The model's inputs, outputs or metadata do not match the feature contract."""


class ProviderUnavailableError(RuntimeError):
    """The requested execution provider is not available in this onnxruntime build."""


def resolve_provider(requested: Provider, available: Sequence[str]) -> Literal["cpu", "cuda"]:
    """Choose the execution provider: ``auto`` takes CUDA when the build offers it.

    Parameters
    ----------
    requested
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    available
        ``onnxruntime.get_available_providers()``.

    Raises
    ------
    ProviderUnavailableError
        ``"cuda"`` was requested and the build has no CUDA provider.

    Examples
    --------
    >>> resolve_provider("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    'cuda'
    >>> resolve_provider("auto", ["CPUExecutionProvider"])
    'cpu'
    """
    if requested == "cpu":
        return "cpu"
    has_cuda = _ORT_PROVIDERS["cuda"] in available
    if requested == "cuda" and not has_cuda:
        raise ProviderUnavailableError(
            "provider 'cuda' requested but this onnxruntime build offers only "
            f"{list(available)}; install the `gpu` extra (onnxruntime-gpu) in an "
            "environment without the CPU onnxruntime, or use provider 'auto' or 'cpu'"
        )
    if requested not in ("auto", "cuda"):
        raise ValueError(f"unknown provider {requested!r}: expected auto, cpu or cuda")
    return "cuda" if has_cuda else "cpu"


def _is_fixed(dim: Any, size: int) -> bool:
    return isinstance(dim, int) and dim == size


def _is_dynamic(dim: Any) -> bool:
    return dim is None or isinstance(dim, str)


class OnnxScorer:
    """An onnxruntime session that scores ``float32`` feature batches.

    The session is created, checked against the feature contract and warmed up in
    the constructor; a scorer that was constructed is ready to serve. It is
    immutable: a new model means a new scorer (swap the reference). ``score_batch``
    may be called from several threads at once.

    Parameters
    ----------
    model
        Path to an ``.onnx`` file, or the model's bytes.
    feature_names
        The feature contract: names in column order. The model's metadata must list
        the same names in the same order.
    provider
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    intra_op_threads
        CPU threads per call (0: onnxruntime decides).
    allow_spinning
        Let idle onnxruntime threads spin (lower latency, more CPU).
    warmup_batch_sizes
        Batch sizes run once at load, so first real calls do not pay for allocation.

    Raises
    ------
    ModelContractError
        The model does not match the contract (input name, width, rank, dtype,
        batch axis, output, or feature names in the metadata).
    ProviderUnavailableError
        ``"cuda"`` was requested but is not available or failed to initialize.

    Examples
    --------
    >>> from onnx import TensorProto, helper
    >>> graph = helper.make_graph(
    ...     [helper.make_node("ReduceMean", ["features"], ["m"], axes=[1], keepdims=1),
    ...      helper.make_node("Sigmoid", ["m"], ["probability"])],
    ...     "mean", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 2])],
    ...     [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])])
    >>> proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    >>> helper.set_model_props(
    ...     proto, {META_FEATURES: '["a", "b"]', META_VERSION: "demo-1"})
    >>> scorer = OnnxScorer(proto.SerializeToString(), feature_names=["a", "b"], provider="cpu")
    >>> scorer.version, scorer.provider
    ('demo-1', 'cpu')
    >>> scorer.score_batch(np.array([[0.0, 0.0], [1.0, 3.0]], dtype=np.float32)).round(3)
    array([0.5  , 0.881], dtype=float32)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        *,
        feature_names: Sequence[str],
        provider: Provider = "auto",
        intra_op_threads: int = 1,
        allow_spinning: bool = False,
        warmup_batch_sizes: Sequence[int] = (1, 64, 1024),
    ) -> None:
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        self._sha256 = hashlib.sha256(data).hexdigest()
        self._feature_names = tuple(feature_names)
        chosen = resolve_provider(provider, ort.get_available_providers())
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        spin = "1" if allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        providers = [_ORT_PROVIDERS[chosen]]
        if chosen == "cuda":
            providers.append(_ORT_PROVIDERS["cpu"])  # for ops CUDA does not implement
        try:
            self._session = ort.InferenceSession(data, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped exception family
            raise ModelContractError(f"onnxruntime cannot load the model: {exc}") from exc
        if chosen == "cuda" and self._session.get_providers()[0] != _ORT_PROVIDERS["cuda"]:
            raise ProviderUnavailableError(
                "CUDAExecutionProvider is listed but failed to initialize (CUDA or cuDNN "
                "libraries missing?); the session fell back to "
                f"{self._session.get_providers()}"
            )
        self._provider: Literal["cpu", "cuda"] = chosen
        self._seq_len, self._version = self._check_contract()
        for size in warmup_batch_sizes:
            self.score_batch(np.zeros(self._shape(size), dtype=np.float32))
        logger.info(
            "scorer ready: version %s, provider %s, %d threads",
            self._version,
            self._provider,
            intra_op_threads,
        )

    def _check_contract(self) -> tuple[int | None, str]:
        """Validate inputs, outputs and metadata; return (seq_len or None, version)."""
        n = len(self._feature_names)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME]:
            raise ModelContractError(
                f"model inputs {[i.name for i in inputs]}: expected one named {INPUT_NAME!r}"
            )
        spec = inputs[0]
        if spec.type != "tensor(float)":
            raise ModelContractError(f"input type {spec.type}: expected tensor(float)")
        shape = list(spec.shape)
        if len(shape) not in (2, 3) or not _is_dynamic(shape[0]):
            raise ModelContractError(
                f"input shape {shape}: expected [batch, {n}] or [batch, seq_len, {n}] "
                "with a dynamic batch axis"
            )
        if not _is_fixed(shape[-1], n):
            raise ModelContractError(f"input width {shape[-1]}: the contract has {n} features")
        seq_len: int | None = None
        if len(shape) == 3:
            if not isinstance(shape[1], int):
                raise ModelContractError(f"sequence length {shape[1]!r} must be fixed")
            seq_len = shape[1]
        if [o.name for o in outputs] != [OUTPUT_NAME]:
            raise ModelContractError(
                f"model outputs {[o.name for o in outputs]}: expected one named {OUTPUT_NAME!r}"
            )
        out = outputs[0]
        out_shape = list(out.shape)
        if out.type != "tensor(float)" or not (
            len(out_shape) == 1 or (len(out_shape) == 2 and _is_fixed(out_shape[1], 1))
        ):
            raise ModelContractError(
                f"output {out.type} {out_shape}: expected float [batch, 1] or [batch]"
            )
        meta = self._session.get_modelmeta().custom_metadata_map
        if META_FEATURES not in meta:
            raise ModelContractError(f"model metadata lacks {META_FEATURES!r}")
        try:
            names = tuple(json.loads(meta[META_FEATURES]))
        except (ValueError, TypeError) as exc:
            raise ModelContractError(f"unreadable {META_FEATURES!r}: {exc}") from exc
        if names != self._feature_names:
            raise ModelContractError(
                f"model features {list(names)} differ from the contract "
                f"{list(self._feature_names)} (names or order)"
            )
        return seq_len, meta.get(META_VERSION, f"sha256:{self._sha256[:12]}")

    def _shape(self, batch: int) -> tuple[int, ...]:
        n = len(self._feature_names)
        return (batch, n) if self._seq_len is None else (batch, self._seq_len, n)

    @property
    def version(self) -> str:
        """Model version from the metadata (``sha256:<prefix>`` of the bytes if absent)."""
        return self._version

    @property
    def sha256(self) -> str:
        """SHA-256 of the model bytes."""
        return self._sha256

    @property
    def provider(self) -> Literal["cpu", "cuda"]:
        """The execution provider actually serving."""
        return self._provider

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        return self._feature_names

    @property
    def seq_len(self) -> int | None:
        """History length of a sequence model; ``None`` for a per-row model."""
        return self._seq_len

    def score_batch(self, X: FloatArray) -> F32:
        """Return the positive-class probability of each row, shape ``[batch]``.

        ``X`` is ``[batch, n_features]`` (``[batch, seq_len, n_features]`` for a
        sequence model); other float dtypes are converted to ``float32`` (a copy).

        Raises
        ------
        ValueError
            ``X`` has the wrong shape.
        """
        expected = self._shape(X.shape[0] if X.ndim else 0)
        if X.shape != expected:
            raise ValueError(f"feature batch shape {X.shape}: expected {expected}")
        if X.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        batch = np.ascontiguousarray(X, dtype=np.float32)
        out = self._session.run(None, {INPUT_NAME: batch})[0]
        result: F32 = np.asarray(out, dtype=np.float32).reshape(-1)
        return result
