"""`streamscore models ...` and `streamscore train` against a temporary registry."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.features import FEATURE_NAMES
from models.registry import Registry, registry_root
from models.settings import ModelsSettings
from models.signing import load_keys
from streams.cli import app
from streams.terminal import FEATURE_SET
from tests.unit.onnx_builders import logistic_onnx

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI binds logging to the runner's stderr, which closes after each call."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configured = getattr(root, "_streamscore_configured", None)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    if configured is None:
        root.__dict__.pop("_streamscore_configured", None)
    else:
        root._streamscore_configured = configured  # type: ignore[attr-defined]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry directory and a key file, configured through the environment."""
    key = tmp_path / "model.key"
    result = runner.invoke(app, ["models", "keygen", str(key)])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("STREAMSCORE_REGISTRY__URI", str(tmp_path / "registry"))
    monkeypatch.setenv("STREAMSCORE_REGISTRY__SIGNING_KEY_FILE", str(key))
    monkeypatch.delenv("STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    return tmp_path


def _registry() -> Registry:
    settings = ModelsSettings()
    root = registry_root(settings.registry.uri)
    signer, verifier = load_keys(settings.registry, root)
    return Registry(root, verifier, signer)


def _publish(registry: Registry, version: str, bias: float = 0.0) -> None:
    n = len(FEATURE_NAMES)
    model = logistic_onnx(FEATURE_NAMES, [0.0] * n, bias, version=version)
    x = np.zeros((2, n))
    p = 1 / (1 + np.exp(-bias))
    registry.publish(
        model,
        {
            "model_name": "deep",
            "version": version,
            "feature_set": FEATURE_SET,
            "feature_names": FEATURE_NAMES,
            "input_shape": ("batch", n),
            "output_shape": ("batch", 1),
            "opset": 17,
            "metrics": {"auc": 0.8, "ap": 0.5},
            "golden": {"inputs": x.tolist(), "expected": [p, p]},
        },
    )


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--log-level", "WARNING", "--no-json-logs", *args])
    return result.exit_code, result.output


def test_list_marks_champion_and_previous(env: Path) -> None:
    registry = _registry()
    for v in ("m1", "m2", "m3"):
        _publish(registry, v)
    registry.promote("m1")
    registry.promote("m2")
    code, out = invoke("models", "list")
    assert code == 0
    roles: dict[str, str] = {}
    for words in (line.split() for line in out.splitlines()):
        if words and words[0] in ("champ", "prev"):
            roles[words[1]] = words[0]
        elif words and words[0] in ("m1", "m2", "m3"):
            roles[words[0]] = ""
    assert roles == {"m1": "prev", "m2": "champ", "m3": ""}


def test_show_prints_the_manifest_and_verifies_the_artifact(env: Path) -> None:
    _publish(_registry(), "m1", bias=-2.0)
    code, out = invoke("models", "show", "m1", "--verify")
    assert code == 0, out
    assert '"version": "m1"' in out and "signature (hmac-sha256): valid" in out
    assert "verified" in out and "golden" in out


def test_show_reports_a_tampered_artifact(env: Path) -> None:
    registry = _registry()
    _publish(registry, "m1")
    manifest = registry.get("m1").manifest
    path = registry.model_path(manifest)
    path.write_bytes(path.read_bytes() + b"x")
    code, out = invoke("models", "show", "m1", "--verify")
    assert code == 1 and "hash_mismatch" in out


def test_promote_and_rollback_move_the_pointers(env: Path) -> None:
    registry = _registry()
    for v in ("m1", "m2"):
        _publish(registry, v)
    code, out = invoke("models", "promote", "m1", "--no-notify")
    assert code == 0 and "champion: m1" in out
    code, out = invoke("models", "promote", "m2", "--no-notify")
    assert code == 0 and "previous: m1" in out
    code, out = invoke("models", "rollback", "--no-notify")
    assert code == 0 and "champion: m1 (withdrawn: m2)" in out
    assert registry.pointers().champion == "m1"
    code, out = invoke("models", "rollback", "--no-notify")
    assert code == 1 and "no earlier champion" in out


def test_promote_without_a_broker_says_workers_were_not_told(env: Path) -> None:
    _publish(_registry(), "m1")
    code, out = invoke("models", "promote", "m1")
    assert code == 0 and "no worker" in out and "registry changed" in out


def test_promote_of_an_unknown_version_fails(env: Path) -> None:
    code, out = invoke("models", "promote", "nope", "--no-notify")
    assert code == 1 and "unknown version" in out


def test_commands_without_a_key_explain_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMSCORE_REGISTRY__URI", str(tmp_path))
    monkeypatch.delenv("STREAMSCORE_REGISTRY__SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("STREAMSCORE_REGISTRY__SIGNING_KEY", raising=False)
    code, out = invoke("models", "list")
    assert code == 2 and "models keygen" in out


def test_train_from_a_file_with_precomputed_features_publishes_the_champion(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    n = 2500
    times = pd.Timestamp("2018-04-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.random(n)) * 10, unit="D"
    )
    amount = rng.gamma(2.0, 40.0, n)
    fraud = rng.random(n) < 1 / (1 + np.exp(-(0.04 * amount - 7)))
    pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n),
            "TX_DATETIME": times.tz_localize(None),
            "CUSTOMER_ID": rng.integers(0, 200, n),
            "TERMINAL_ID": rng.integers(0, 500, n),
            "TX_AMOUNT": amount,
            "TX_FRAUD": fraud.astype(int),
        }
    ).to_parquet(env / "tx.parquet")
    features = {name: rng.random(n) for name in FEATURE_NAMES if name != "TX_AMOUNT"}
    pd.DataFrame({"TRANSACTION_ID": np.arange(n), **features}).to_parquet(env / "f.parquet")
    for name, value in {
        "EPOCHS": "2",
        "HIDDEN": "[8]",
        "EVAL_DAYS": "3",
        "MIN_EXAMPLES": "100",
    }.items():
        monkeypatch.setenv(f"STREAMSCORE_TRAINER__{name}", value)
    code, out = invoke(
        "train",
        str(env / "tx.parquet"),
        "--features",
        str(env / "f.parquet"),
        "--from",
        "2018-04-02",
        "--version",
        "file-1",
    )
    assert code == 0, out
    assert "published file-1" in out and "promoted: first model" in out
    registry = _registry()
    assert registry.pointers().champion == "file-1"
    window = registry.get("file-1").manifest.training_window
    assert window is not None and window.start >= pd.Timestamp("2018-04-02", tz="UTC")
    code, out = invoke("models", "show", "--verify")
    assert code == 0 and "verified" in out
