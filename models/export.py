"""Export torch networks to ONNX and check that onnxruntime agrees with torch.

Exporter choice: torch's ``torch.export``-based ("dynamo") exporter, the default
since torch 2.9. The TorchScript exporter still works in torch 2.13 but warns that
it will be removed, so a model pipeline built on it would break on an upgrade. The
dynamo exporter needs ``onnxscript`` (in the ``train`` extra) and writes weights to
a side ``.onnx.data`` file unless ``external_data=False``; we keep the weights
inside the model (ours are far below the 2 GB protobuf limit) so an artifact is
one file with one hash. Its lowest native opset is 18, which is what we pin:
asking for less makes it convert after the fact, which can fail.

The exported graph's contract is the one :mod:`models.serving` checks: input
``features`` ``[batch, n_features]`` (or ``[batch, seq_len, n_features]``) with a
dynamic batch axis, output ``probability`` ``[batch, 1]``, metadata props with the
feature names and the version.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import torch

from models.nets import RawFeatureNet, SequenceNet
from models.serving import INPUT_NAME, META_FEATURES, META_VERSION, OUTPUT_NAME, OnnxScorer

logger = logging.getLogger(__name__)

__all__ = ["OPSET", "PARITY_ATOL", "ParityError", "check_parity", "export_onnx"]

OPSET = 18
"""ONNX opset of exported models (the dynamo exporter's lowest native opset)."""
PARITY_ATOL = 1e-5
"""Largest absolute difference in probability allowed between torch and onnxruntime."""


class ParityError(AssertionError):
    """onnxruntime's probabilities differ from torch's by more than the tolerance."""


def export_onnx(
    module: RawFeatureNet,
    path: str | os.PathLike[str] | None,
    feature_names: Sequence[str],
    *,
    version: str,
    seq_len: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """Export ``module`` to a self-contained ONNX model and return its bytes.

    Parameters
    ----------
    module
        A :class:`~models.nets.FraudNet` or :class:`~models.nets.SequenceNet`
        (anything mapping raw features to ``[batch, 1]`` probabilities).
    path
        Where to write the model, or ``None`` to only return the bytes.
    feature_names
        Names of the input columns in order; stored in the metadata.
    version
        The model version, stored in the metadata and reported by the scorer.
    seq_len
        History length for a sequence model (fixed in the graph); ``None`` for a
        per-row model.
    metadata
        Extra metadata props (e.g. training window, metrics).

    Raises
    ------
    onnx.checker.ValidationError
        The exported graph is not valid ONNX.

    Examples
    --------
    >>> from models.nets import FraudNet
    >>> _ = torch.manual_seed(0)
    >>> data = export_onnx(FraudNet(3, hidden=(4,)), None, ["a", "b", "c"], version="v1")
    >>> proto = onnx.load_from_string(data)
    >>> [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]
    (['features'], ['probability'])
    >>> {p.key: p.value for p in proto.metadata_props}["streamscore.feature_names"]
    '["a", "b", "c"]'
    """
    n = len(feature_names)
    if getattr(module, "n_features", n) != n:
        raise ValueError(f"module takes {module.n_features} features, {n} names given")
    if isinstance(module, SequenceNet) and seq_len is None:
        raise ValueError("a sequence model needs seq_len")
    module = module.eval()
    # A batch of 2: torch.export specializes sizes 0 and 1, which would fix the axis.
    example = torch.zeros((2, n) if seq_len is None else (2, seq_len, n))
    with warnings.catch_warnings():
        # torch's own deprecations inside the exporter are not actionable here.
        warnings.simplefilter("ignore", category=FutureWarning)
        # nn.GRU re-assigns its flat weight list while being traced; harmless.
        warnings.filterwarnings("ignore", message="The tensor attributes .* during export")
        program = torch.onnx.export(
            module,
            (example,),
            None,
            dynamo=True,
            external_data=False,
            verbose=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    if program is None:  # pragma: no cover - only the TorchScript exporter returns None
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    props = {
        META_FEATURES: json.dumps(list(feature_names)),
        META_VERSION: version,
        "streamscore.input": "sequence" if seq_len is not None else "rows",
        **(metadata or {}),
    }
    kept = {p.key: p.value for p in proto.metadata_props if p.key not in props}
    onnx.helper.set_model_props(proto, {**kept, **props})
    proto.doc_string = f"streamscore {type(module).__name__} {version}"
    onnx.checker.check_model(proto, full_check=True)
    data: bytes = proto.SerializeToString()
    if path is not None:
        Path(path).write_bytes(data)
        logger.info("exported %s (%d bytes) to %s", version, len(data), path)
    return data


def check_parity(
    module: RawFeatureNet,
    model: str | os.PathLike[str] | bytes,
    X: npt.NDArray[np.floating],
    *,
    feature_names: Sequence[str],
    atol: float = PARITY_ATOL,
) -> float:
    """Score ``X`` with torch and with onnxruntime (CPU) and return the max abs difference.

    The ONNX model is loaded through :class:`~models.serving.OnnxScorer`, so the
    check also proves it meets the serving contract.

    Raises
    ------
    ParityError
        The difference exceeds ``atol`` (default :data:`PARITY_ATOL`, 1e-5 in
        probability: float32 kernels of the two runtimes differ by ~1e-7).
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(X32)).numpy().reshape(-1)
    scorer = OnnxScorer(model, feature_names=feature_names, provider="cpu", warmup_batch_sizes=())
    got = scorer.score_batch(X32)
    diff = float(np.max(np.abs(got - expected))) if len(X32) else 0.0
    if not diff <= atol:  # also catches NaN
        raise ParityError(f"torch and onnxruntime differ by {diff:.3g} > {atol:.3g}")
    return diff
