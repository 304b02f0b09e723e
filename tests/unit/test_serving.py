"""The onnxruntime scorer: contract checks at load, provider choice, batch scoring."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto

from models.protocols import Scorer
from models.serving import (
    ModelContractError,
    OnnxScorer,
    ProviderUnavailableError,
    resolve_provider,
)
from tests.unit.onnx_builders import logistic_onnx

NAMES = ["amount", "night", "count_7d"]
WEIGHTS = [0.02, 1.5, -0.3]


def _expected(X: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(X.astype(np.float64) @ np.array(WEIGHTS) - 1.0)))


@pytest.fixture(scope="module")
def scorer() -> OnnxScorer:
    return OnnxScorer(logistic_onnx(NAMES, WEIGHTS, -1.0), feature_names=NAMES, provider="cpu")


def test_scorer_returns_the_models_probabilities(scorer: OnnxScorer) -> None:
    X = np.random.default_rng(0).normal(size=(257, 3)).astype(np.float32) * [50, 1, 3]
    got = scorer.score_batch(X)
    assert got.dtype == np.float32 and got.shape == (257,)
    np.testing.assert_allclose(got, _expected(X), atol=1e-6)


def test_scorer_reports_version_provider_and_features(scorer: OnnxScorer) -> None:
    assert scorer.version == "test-1"
    assert scorer.provider == "cpu"
    assert scorer.feature_names == tuple(NAMES)
    assert scorer.seq_len is None
    assert isinstance(scorer, Scorer)


def test_scorer_without_version_metadata_uses_the_content_hash() -> None:
    data = logistic_onnx(NAMES, WEIGHTS, version=None)
    s = OnnxScorer(data, feature_names=NAMES, provider="cpu", warmup_batch_sizes=())
    assert s.version == f"sha256:{s.sha256[:12]}"


def test_scorer_loads_the_same_model_from_a_path(tmp_path, scorer: OnnxScorer) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(logistic_onnx(NAMES, WEIGHTS, -1.0))
    from_path = OnnxScorer(path, feature_names=NAMES, provider="cpu")
    assert from_path.sha256 == scorer.sha256
    X = np.ones((4, 3), dtype=np.float32)
    np.testing.assert_array_equal(from_path.score_batch(X), scorer.score_batch(X))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_name": "input"}, "expected one named 'features'"),
        ({"input_shape": ("batch", 4)}, "input width 4"),
        ({"input_shape": (8, 3)}, "dynamic batch axis"),
        ({"input_shape": ("batch",)}, "expected [batch, 3]"),
        ({"input_type": TensorProto.DOUBLE}, "expected tensor(float)"),
        ({"output_name": "score"}, "expected one named 'probability'"),
        ({"meta_names": ["night", "amount", "count_7d"]}, "names or order"),
        ({"meta_names": ["amount", "night"]}, "differ from the contract"),
    ],
)
def test_scorer_rejects_models_that_break_the_contract(kwargs: dict, message: str) -> None:
    weights = WEIGHTS + [0.0] if kwargs.get("input_shape") == ("batch", 4) else WEIGHTS
    data = logistic_onnx(NAMES, weights, **kwargs)
    with pytest.raises(ModelContractError) as info:
        OnnxScorer(data, feature_names=NAMES, provider="cpu")
    assert message in str(info.value)


def test_scorer_rejects_a_model_without_feature_names() -> None:
    import onnx

    proto = onnx.load_from_string(logistic_onnx(NAMES, WEIGHTS))
    del proto.metadata_props[:]
    with pytest.raises(ModelContractError, match="lacks"):
        OnnxScorer(proto.SerializeToString(), feature_names=NAMES, provider="cpu")


def test_scorer_rejects_bytes_that_are_not_a_model() -> None:
    with pytest.raises(ModelContractError, match="cannot load"):
        OnnxScorer(b"not a model", feature_names=NAMES, provider="cpu")


def test_score_batch_rejects_a_matrix_of_the_wrong_width(scorer: OnnxScorer) -> None:
    with pytest.raises(ValueError, match="expected"):
        scorer.score_batch(np.zeros((5, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="expected"):
        scorer.score_batch(np.zeros(3, dtype=np.float32))


def test_score_batch_converts_float64_and_handles_empty_batches(scorer: OnnxScorer) -> None:
    X = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.testing.assert_array_equal(scorer.score_batch(X), scorer.score_batch(X.astype(np.float32)))
    assert scorer.score_batch(np.zeros((0, 3), dtype=np.float32)).shape == (0,)


def test_score_batch_is_safe_from_several_threads(scorer: OnnxScorer) -> None:
    batches = [np.full((64, 3), i, dtype=np.float32) for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(scorer.score_batch, batches))
    for batch, result in zip(batches, results, strict=True):
        np.testing.assert_array_equal(result, scorer.score_batch(batch))


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 40), st.just(3)),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_scores_are_probabilities_for_any_finite_input(X: np.ndarray) -> None:
    s = OnnxScorer(logistic_onnx(NAMES, WEIGHTS), feature_names=NAMES, warmup_batch_sizes=())
    p = s.score_batch(X)
    assert p.shape == (len(X),) and bool(((p >= 0) & (p <= 1)).all())


def test_auto_provider_takes_cuda_only_when_the_build_offers_it() -> None:
    assert resolve_provider("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cuda"
    assert resolve_provider("auto", ["AzureExecutionProvider", "CPUExecutionProvider"]) == "cpu"
    assert resolve_provider("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cpu"
    assert resolve_provider("cuda", ["CUDAExecutionProvider"]) == "cuda"


def test_requesting_cuda_without_it_names_the_gpu_extra() -> None:
    with pytest.raises(ProviderUnavailableError, match="gpu"):
        resolve_provider("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="unknown provider"):
        resolve_provider("tpu", ["CPUExecutionProvider"])  # type: ignore[arg-type]


def test_cuda_scorer_serves_on_cuda_or_refuses_clearly() -> None:
    data = logistic_onnx(NAMES, WEIGHTS)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert OnnxScorer(data, feature_names=NAMES, provider="cuda").provider == "cuda"
    else:
        with pytest.raises(ProviderUnavailableError):
            OnnxScorer(data, feature_names=NAMES, provider="cuda")


def test_importing_the_serving_path_does_not_import_torch() -> None:
    code = "import sys, models.serving, models.blend, models.reasons, models.drift, models.online; "
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
