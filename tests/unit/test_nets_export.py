"""Torch networks train deterministically and export to ONNX that agrees with torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from models.export import OPSET, PARITY_ATOL, ParityError, check_parity, export_onnx
from models.nets import FraudNet, SequenceNet, torch_threads, train_ffnn, train_sequence
from models.serving import META_FEATURES, META_VERSION, OnnxScorer

NAMES = [f"f{i:02d}" for i in range(15)]


def _data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 15)).astype(np.float32) * np.linspace(0.5, 200, 15, dtype=np.float32)
    X[:, 3] = 1.0  # a constant column
    logit = X[:, 0] * 2 + X[:, 1] / 20 - 3
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return X, y


@pytest.fixture(scope="module")
def trained() -> FraudNet:
    X, y = _data()
    result = train_ffnn(X, y, hidden=(16, 8), epochs=4, seed=7)
    assert isinstance(result.model, FraudNet)
    return result.model


@pytest.fixture(scope="module")
def exported(trained: FraudNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "ffnn.onnx"
    export_onnx(trained, path, NAMES, version="ffnn-test-1", metadata={"trained_rows": "3000"})
    return path


def test_export_writes_one_self_contained_valid_file(exported: Path) -> None:
    assert sorted(p.name for p in exported.parent.iterdir()) == ["ffnn.onnx"]
    proto = onnx.load(exported)
    onnx.checker.check_model(proto, full_check=True)
    assert all(init.data_location == onnx.TensorProto.DEFAULT for init in proto.graph.initializer)
    assert [op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")] == [OPSET]
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props[META_FEATURES]) == NAMES
    assert props[META_VERSION] == "ffnn-test-1"
    assert props["trained_rows"] == "3000"


def test_exported_model_has_a_dynamic_batch_axis(exported: Path) -> None:
    scorer = OnnxScorer(exported, feature_names=NAMES, provider="cpu")
    for batch in (1, 2, 7, 1000):
        assert scorer.score_batch(np.zeros((batch, 15), dtype=np.float32)).shape == (batch,)


def test_onnxruntime_matches_torch_within_the_parity_tolerance(
    trained: FraudNet, exported: Path
) -> None:
    X, _ = _data(2000, seed=1)
    X[:10] *= 50  # far outside the training range
    diff = check_parity(trained, exported, X, feature_names=NAMES)
    assert 0.0 <= diff <= PARITY_ATOL


def test_parity_check_fails_when_the_model_differs_from_the_module(
    trained: FraudNet, exported: Path
) -> None:
    changed = FraudNet(15, hidden=(16, 8))
    changed.load_state_dict(trained.state_dict())
    with torch.no_grad():
        changed.body[-1].bias += 0.01
    with pytest.raises(ParityError, match="differ by"):
        check_parity(changed, exported, _data(200)[0], feature_names=NAMES)


def test_export_refuses_names_that_do_not_match_the_module_width(trained: FraudNet) -> None:
    with pytest.raises(ValueError, match="15 features, 14 names"):
        export_onnx(trained, None, NAMES[:14], version="x")


def test_standardization_is_inside_the_network(trained: FraudNet) -> None:
    X, _ = _data()
    np.testing.assert_allclose(trained.mean.numpy(), X[:2400].mean(axis=0), rtol=1e-4, atol=1e-4)
    assert trained.std[3].item() == 1.0  # constant column: no division by zero


def test_training_is_deterministic_for_a_seed() -> None:
    X, y = _data(1500)
    first = train_ffnn(X, y, hidden=(8,), epochs=3, seed=3)
    again = train_ffnn(X, y, hidden=(8,), epochs=3, seed=3)
    other = train_ffnn(X, y, hidden=(8,), epochs=3, seed=4)
    for a, b in zip(
        first.model.state_dict().values(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert first.history == again.history
    assert first.history != other.history


def test_training_returns_the_best_epoch_by_validation_loss() -> None:
    X, y = _data(2000)
    Xv, yv = _data(500, seed=5)
    result = train_ffnn(X, y, X_val=Xv, y_val=yv, hidden=(8,), epochs=6, lr=0.05, patience=2)
    val_losses = [v for _, v in result.history]
    assert result.best_val_loss == min(val_losses)
    assert result.best_epoch == val_losses.index(min(val_losses))
    assert len(result.history) <= min(6, result.best_epoch + 1 + 2)
    pos_weight = torch.tensor((~y).sum() / y.sum())
    loss = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    with torch.no_grad():
        again = loss(
            result.model.logits(torch.from_numpy(Xv)), torch.from_numpy(yv[:, None] * 1.0).float()
        )
    assert float(again) == pytest.approx(result.best_val_loss, rel=1e-5)


def test_training_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    X, y = _data(300)
    train_ffnn(X, y, hidden=(4,), epochs=1, num_threads=1)
    assert torch.get_num_threads() == before


def test_sequence_model_exports_with_nan_padding_and_matches_torch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8, 15)).astype(np.float32)
    X[:100, :5] = np.nan  # short histories, left-padded
    y = np.nan_to_num(X[:, -1, 0]) > 1
    model = train_sequence(X, y, hidden=16, epochs=2, seed=0).model
    assert isinstance(model, SequenceNet)
    path = tmp_path / "seq.onnx"
    export_onnx(model, path, NAMES, version="gru-test", seq_len=8)
    scorer = OnnxScorer(path, feature_names=NAMES, provider="cpu")
    assert scorer.seq_len == 8
    assert check_parity(model, path, X[:300], feature_names=NAMES) <= PARITY_ATOL
    assert np.isfinite(scorer.score_batch(X[:100])).all()


def test_sequence_export_needs_a_length() -> None:
    with pytest.raises(ValueError, match="seq_len"):
        export_onnx(SequenceNet(15, hidden=4), None, NAMES, version="x")


def test_log_inputs_are_part_of_the_exported_graph(tmp_path: Path) -> None:
    X, y = _data(n=1500, seed=2)
    X = np.abs(X)  # amounts and counts are non-negative
    log_columns = (0, 1, 14)
    result = train_ffnn(X, y, hidden=(8,), epochs=2, seed=1, log_columns=log_columns)
    net = result.model
    assert isinstance(net, FraudNet)
    # Standardization is fitted on the transformed inputs (the training part: the last
    # fifth is held out for validation).
    transformed = X[:1200].astype(np.float64).copy()
    transformed[:, log_columns] = np.log1p(transformed[:, log_columns])
    np.testing.assert_allclose(net.mean.numpy(), transformed.mean(axis=0), rtol=1e-4, atol=1e-4)
    # The ONNX model takes raw features and agrees with torch.
    path = tmp_path / "log.onnx"
    export_onnx(net, path, NAMES, version="log-test-1")
    check_parity(net, path, X[:256], feature_names=NAMES)
    # The transform changes what the network sees: a plain net with the same weights
    # and standardization disagrees.
    plain = FraudNet(15, hidden=(8,))
    plain.load_state_dict(net.state_dict())
    plain.eval()
    with torch.no_grad():
        a = net(torch.from_numpy(X[:64])).numpy()
        b = plain(torch.from_numpy(X[:64])).numpy()
    assert float(np.max(np.abs(a - b))) > 1e-3


def test_heavy_tailed_picks_amounts_and_counts() -> None:
    from models.features import FEATURE_NAMES
    from models.nets import heavy_tailed

    picked = [FEATURE_NAMES[i] for i in heavy_tailed(FEATURE_NAMES)]
    assert "TX_AMOUNT" in picked and "CUSTOMER_ID_NB_TX_7DAY_WINDOW" in picked
    assert not any("RISK" in name or "DURING" in name for name in picked)
    assert len(picked) == 10
