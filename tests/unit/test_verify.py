"""Verification of published models: every bad artifact is rejected with its reason code.

Each case publishes (or tampers with) one artifact next to a serving champion and
checks two things: ``verify`` raises ``Rejected`` with the expected code, and a
worker's lifecycle handling the update keeps the champion serving, with no
challenger.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.atomic import canonical_json
from models.lifecycle import ModelLifecycle
from models.registry import Registry
from models.rejections import Rejected, RejectReason
from models.signing import hmac_keys
from models.slots import ModelSlots
from models.verify import VerifyOptions, verify
from tests.unit.artifacts import (
    CONTRACT,
    NAMES,
    WEIGHTS,
    Update,
    custom_op_model,
    external_data_model,
    fields,
    golden_of,
    good_model,
    make_registry,
    padded_model,
    publish_good,
    scaled_model,
    update_of,
)
from tests.unit.onnx_builders import logistic_onnx

CPU = VerifyOptions(provider="cpu", warmup_batch_sizes=(1, 64))
SMALL = replace(CPU, max_file_bytes=4096)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return make_registry(tmp_path / "registry")


def _publish(registry: Registry, version: str, model: bytes, **kw: object) -> Update:
    """Publish ``model`` with a correctly signed manifest and golden set from a good model."""
    golden = kw.pop("golden", None) or golden_of(good_model(version))
    extra = kw.pop("extra_files", None)
    registry.publish(model, fields(version, golden, **kw), extra_files=extra)  # type: ignore[arg-type]
    return update_of(registry, version)


def _model_path(registry: Registry, update: Update) -> Path:
    assert update.manifest is not None
    sha = update.manifest["files"]["model.onnx"]["sha256"]
    return registry.artifact_dir(sha) / "model.onnx"


# Each case: (registry) -> (update, options); the id names the bad artifact.
Case = Callable[[Registry], tuple[Update, VerifyOptions]]


def truncated_file(registry: Registry) -> tuple[Update, VerifyOptions]:
    model = good_model("bad")
    return _publish(registry, "bad", model[: len(model) // 2]), CPU


def random_bytes(registry: Registry) -> tuple[Update, VerifyOptions]:
    return _publish(registry, "bad", np.random.default_rng(1).bytes(400)), CPU


def wrong_input_name(registry: Registry) -> tuple[Update, VerifyOptions]:
    model = logistic_onnx(NAMES, WEIGHTS, version="bad", input_name="x")
    return _publish(registry, "bad", model, input_name="x"), CPU


def wrong_input_name_declared_right(registry: Registry) -> tuple[Update, VerifyOptions]:
    return _publish(
        registry, "bad", logistic_onnx(NAMES, WEIGHTS, version="bad", input_name="x")
    ), CPU


def wrong_input_shape(registry: Registry) -> tuple[Update, VerifyOptions]:
    model = logistic_onnx(NAMES[:3], WEIGHTS[:3], version="bad", meta_names=NAMES)
    return _publish(registry, "bad", model), CPU


def wrong_feature_order(registry: Registry) -> tuple[Update, VerifyOptions]:
    names = (NAMES[1], NAMES[0], *NAMES[2:])
    return _publish(registry, "bad", good_model("bad"), feature_names=names), CPU


def wrong_feature_set(registry: Registry) -> tuple[Update, VerifyOptions]:
    return _publish(registry, "bad", good_model("bad"), feature_set="other-v9"), CPU


def version_differs_from_metadata(registry: Registry) -> tuple[Update, VerifyOptions]:
    return _publish(registry, "bad", good_model("something-else")), CPU


def outputs_nan(registry: Registry) -> tuple[Update, VerifyOptions]:
    return _publish(registry, "bad", good_model("bad", bias=float("nan"))), CPU


def outputs_above_one(registry: Registry) -> tuple[Update, VerifyOptions]:
    model = scaled_model("bad", 2.0)
    return _publish(registry, "bad", model), CPU


def golden_values_differ(registry: Registry) -> tuple[Update, VerifyOptions]:
    model = good_model("bad", weights=[w * 1.1 for w in WEIGHTS])
    return _publish(registry, "bad", model, golden=golden_of(good_model("bad"))), CPU


def hash_mismatch(registry: Registry) -> tuple[Update, VerifyOptions]:
    update = _publish(registry, "bad", good_model("bad"))
    path = _model_path(registry, update)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    return update, CPU


def file_replaced_by_shorter(registry: Registry) -> tuple[Update, VerifyOptions]:
    update = _publish(registry, "bad", good_model("bad"))
    path = _model_path(registry, update)
    path.write_bytes(path.read_bytes()[:-10])
    return update, CPU


def missing_signature(registry: Registry) -> tuple[Update, VerifyOptions]:
    update = _publish(registry, "bad", good_model("bad"))
    return replace(update, signature=None), CPU


def wrong_signature_key(registry: Registry) -> tuple[Update, VerifyOptions]:
    other = make_registry(registry.root.parent / "other", key=b"another-key-of-32-bytes-at-least!")
    publish_good(other, "bad")
    return update_of(other, "bad"), CPU


def manifest_tampered(registry: Registry) -> tuple[Update, VerifyOptions]:
    update = _publish(registry, "bad", good_model("bad"))
    assert update.manifest is not None
    return replace(update, manifest={**update.manifest, "metrics": {"ap": 0.99}}), CPU


def signature_not_hex(registry: Registry) -> tuple[Update, VerifyOptions]:
    update = _publish(registry, "bad", good_model("bad"))
    return replace(update, signature="zz" * 32), CPU


def external_data_outside(registry: Registry) -> tuple[Update, VerifyOptions]:
    model, _ = external_data_model("bad", "../../outside.bin")
    return _publish(registry, "bad", model), CPU


def external_data_absolute(registry: Registry) -> tuple[Update, VerifyOptions]:
    model, _ = external_data_model("bad", "/etc/hostname")
    return _publish(registry, "bad", model), CPU


def external_data_not_hashed(registry: Registry) -> tuple[Update, VerifyOptions]:
    model, data = external_data_model("bad", "weights.bin")
    update = _publish(registry, "bad", model)
    (_model_path(registry, update).parent / "weights.bin").write_bytes(data)
    return update, CPU


def oversized_declared(registry: Registry) -> tuple[Update, VerifyOptions]:
    model = padded_model("bad", 4000)  # ~16 KB > 4 KB limit
    return _publish(registry, "bad", model, golden=golden_of(model)), SMALL


def oversized_on_disk(registry: Registry) -> tuple[Update, VerifyOptions]:
    update = _publish(registry, "bad", good_model("bad"))
    path = _model_path(registry, update)
    path.write_bytes(path.read_bytes() + b"\0" * 8192)
    return update, SMALL


def custom_operator(registry: Registry) -> tuple[Update, VerifyOptions]:
    return _publish(registry, "bad", custom_op_model("bad")), CPU


def file_missing(registry: Registry) -> tuple[Update, VerifyOptions]:
    update = _publish(registry, "bad", good_model("bad"))
    _model_path(registry, update).unlink()
    return update, CPU


def manifest_invalid_but_signed(registry: Registry) -> tuple[Update, VerifyOptions]:
    assert registry.signer is not None
    payload = {"version": "bad", "model_name": "deep", "files": "nope"}
    signature = registry.signer.sign(canonical_json(payload))
    return Update("deep", "publish", "bad", payload, signature), CPU


CASES: list[tuple[Case, RejectReason]] = [
    (truncated_file, RejectReason.ONNX_INVALID),
    (random_bytes, RejectReason.ONNX_INVALID),
    (wrong_input_name, RejectReason.CONTRACT_MISMATCH),
    (wrong_input_name_declared_right, RejectReason.CONTRACT_MISMATCH),
    (wrong_input_shape, RejectReason.CONTRACT_MISMATCH),
    (wrong_feature_order, RejectReason.CONTRACT_MISMATCH),
    (wrong_feature_set, RejectReason.CONTRACT_MISMATCH),
    (version_differs_from_metadata, RejectReason.CONTRACT_MISMATCH),
    (outputs_nan, RejectReason.GOLDEN_FAILED),
    (outputs_above_one, RejectReason.GOLDEN_FAILED),
    (golden_values_differ, RejectReason.GOLDEN_FAILED),
    (hash_mismatch, RejectReason.HASH_MISMATCH),
    (file_replaced_by_shorter, RejectReason.HASH_MISMATCH),
    (missing_signature, RejectReason.MISSING_SIGNATURE),
    (wrong_signature_key, RejectReason.BAD_SIGNATURE),
    (manifest_tampered, RejectReason.BAD_SIGNATURE),
    (signature_not_hex, RejectReason.BAD_SIGNATURE),
    (external_data_outside, RejectReason.EXTERNAL_DATA),
    (external_data_absolute, RejectReason.EXTERNAL_DATA),
    (external_data_not_hashed, RejectReason.EXTERNAL_DATA),
    (oversized_declared, RejectReason.SIZE_LIMIT),
    (oversized_on_disk, RejectReason.SIZE_LIMIT),
    (custom_operator, RejectReason.CUSTOM_OP),
    (file_missing, RejectReason.UNREADABLE),
    (manifest_invalid_but_signed, RejectReason.BAD_MANIFEST),
]


@pytest.mark.parametrize(("case", "reason"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_bad_artifact_is_rejected_with_its_reason(
    registry: Registry, case: Case, reason: RejectReason
) -> None:
    update, options = case(registry)
    with pytest.raises(Rejected) as err:
        verify(update, registry, CONTRACT, options)
    assert err.value.reason == reason, str(err.value)
    assert err.value.version == "bad"


@pytest.mark.parametrize(("case", "reason"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_bad_artifact_never_changes_the_serving_version(
    registry: Registry, case: Case, reason: RejectReason
) -> None:
    publish_good(registry, "champion-1")
    slots = ModelSlots()
    lifecycle = ModelLifecycle(slots, registry, CONTRACT, CPU)
    assert lifecycle.handle(update_of(registry, "champion-1")).outcome == "installed"
    before = slots.snapshot()
    update, options = case(registry)
    lifecycle.options = options
    event = lifecycle.handle(update)
    assert (event.outcome, event.reason) == ("rejected", reason)
    after = slots.snapshot()
    assert after is before  # not even a new state object: nothing was swapped
    assert after.champion_version == "champion-1" and after.challenger is None


def test_every_verification_reason_has_a_case() -> None:
    shadow_only = {RejectReason.WORSE_THAN_CHAMPION, RejectReason.INSUFFICIENT_EVIDENCE}
    covered = {reason for _, reason in CASES}
    assert covered == set(RejectReason) - shadow_only - {RejectReason.WARMUP_FAILED}


def test_good_model_verifies_and_scores_like_at_export(registry: Registry) -> None:
    manifest = publish_good(registry, "v1")
    verified = verify(update_of(registry, "v1"), registry, CONTRACT, CPU)
    assert verified.version == "v1" and verified.manifest == manifest
    assert verified.scorer.version == "v1"
    got = verified.scorer.score_batch(np.asarray(manifest.golden.inputs, dtype=np.float32))
    np.testing.assert_allclose(got, manifest.golden.expected, atol=1e-6)
    assert set(verified.timings) == {"signature", "hashes", "onnx", "session", "golden", "warmup"}


def test_external_data_inside_the_artifact_and_hashed_is_accepted(registry: Registry) -> None:
    model, data = external_data_model("ext", "weights.bin")
    inline = good_model("ext", bias=0.0)
    update = _publish(
        registry, "ext", model, golden=golden_of(inline), extra_files={"weights.bin": data}
    )
    verified = verify(update, registry, CONTRACT, CPU)
    assert verified.manifest.files["weights.bin"].size == len(data)


def test_warm_up_failure_is_its_own_reason(registry: Registry) -> None:
    # Fine on the golden rows, NaN on the all-zero warm-up rows: log(0) * 0.
    from onnx import TensorProto, helper

    from models.serving import META_FEATURES, META_VERSION

    n = len(NAMES)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSumSquare", ["features"], ["s"], axes=[1], keepdims=1),
            helper.make_node("Log", ["s"], ["l"]),
            helper.make_node("Mul", ["l", "s"], ["m"]),
            helper.make_node("Sigmoid", ["m"], ["probability"]),
        ],
        "warm",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    helper.set_model_props(proto, {META_FEATURES: json.dumps(list(NAMES)), META_VERSION: "bad"})
    model = proto.SerializeToString()
    update = _publish(registry, "bad", model, golden=golden_of(model))
    with pytest.raises(Rejected) as err:
        verify(update, registry, CONTRACT, CPU)
    assert err.value.reason == RejectReason.WARMUP_FAILED


def test_names_that_are_not_utf8_are_rejected_not_raised(registry: Registry) -> None:
    # Found by the corrupted-byte test below: one flipped bit in the output's batch axis
    # name made onnxruntime raise UnicodeDecodeError while reading the model.
    model = good_model("bad")
    position = model.index(b"batch", model.index(b"probability"))
    flipped = model[:position] + bytes([model[position] ^ 0x80]) + model[position + 1 :]
    update = _publish(registry, "bad", flipped)
    with pytest.raises(Rejected) as err:
        verify(update, registry, CONTRACT, CPU)
    assert err.value.reason == RejectReason.ONNX_INVALID


def test_signature_is_checked_before_any_file_is_read(registry: Registry) -> None:
    update = _publish(registry, "bad", good_model("bad"))
    _model_path(registry, update).unlink()  # would be `unreadable` if files were read first
    other_key = make_registry(registry.root, key=b"x" * 32)
    with pytest.raises(Rejected) as err:
        verify(update, other_key, CONTRACT, CPU)
    assert err.value.reason == RejectReason.BAD_SIGNATURE
    assert "this worker has" in err.value.detail


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_corrupted_byte_is_accepted_or_rejected_never_crashes(
    tmp_path: Path, position: int, flip: int
) -> None:
    registry = make_registry(Path(tempfile.mkdtemp(dir=tmp_path)))
    model = bytearray(good_model("fuzz"))
    model[position % len(model)] ^= flip
    update = _publish(registry, "fuzz", bytes(model))
    try:
        verified = verify(update, registry, CONTRACT, CPU)
    except Rejected as exc:
        assert exc.reason in set(RejectReason)
    else:  # the flip hit something harmless (e.g. the doc string): it must still score right
        assert verified.version == "fuzz"


def test_hmac_keys_refuse_short_keys() -> None:
    from models.signing import SigningKeyError

    with pytest.raises(SigningKeyError, match="at least 32"):
        hmac_keys(b"short")


def test_verify_version_reads_the_registry_file_and_checks_it_the_same_way(
    registry: Registry,
) -> None:
    from models.verify import verify_version

    publish_good(registry, "v1")
    assert verify_version("v1", registry, CONTRACT, CPU).version == "v1"
    with pytest.raises(Rejected) as err:
        verify_version("v404", registry, CONTRACT, CPU)
    assert err.value.reason == RejectReason.UNREADABLE
    path = registry.root / "manifests" / "v1.json"
    raw = json.loads(path.read_bytes())
    raw["manifest"]["golden"]["atol"] = 0.1  # loosen the golden check: the signature says no
    path.write_text(json.dumps(raw))
    with pytest.raises(Rejected) as err:
        verify_version("v1", registry, CONTRACT, CPU)
    assert err.value.reason == RejectReason.BAD_SIGNATURE
