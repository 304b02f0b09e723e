"""Verify a published model before it may score: the pipeline a worker runs on a ``ModelUpdate``.

Stages, in order; the first failure raises :class:`~models.rejections.Rejected`
with its reason code, and nothing after it runs:

1. **signature** of the manifest as received, before it is parsed
   (``missing_signature``, ``bad_signature``); then the manifest is parsed
   (``bad_manifest``).
2. **sizes and hashes**: every declared size within ``max_file_bytes`` (``size_limit``),
   then each file is read once, at most ``max_file_bytes + 1`` bytes, from the
   artifact directory the registry derives from the model's hash (never from a path
   in the message), and its size and SHA-256 compared (``unreadable``,
   ``size_limit``, ``hash_mismatch``). Later stages use these bytes only.
3. **parse** the ONNX protobuf (``onnx_invalid``), **external data** resolved only
   from files of step 2 (``external_data``), ONNX **checker** with shape inference
   (``onnx_invalid``), **operators** in the standard domains only (``custom_op``).
4. **contract**: feature set, feature names and order, input/output names, types and
   shapes, metadata version (``contract_mismatch``); onnxruntime builds the session
   (``onnx_invalid`` if it cannot).
5. **golden set**: the manifest's rows scored, every output finite, in [0, 1] and
   within ``atol`` of the value recorded at export (``golden_failed``).
6. **warm-up** batches scored, outputs finite and in [0, 1] (``warmup_failed``).

This module needs onnx, onnxruntime and numpy only (never torch).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from models.manifest import Manifest, verify_payload
from models.onnx_checks import (
    check_graph_contract,
    check_operators,
    inline_external_data,
    parse,
    run_checker,
)
from models.registry import Registry, RegistryError
from models.rejections import Rejected, RejectReason
from models.serving import (
    INPUT_NAME,
    OUTPUT_NAME,
    ModelContractError,
    OnnxScorer,
    Provider,
    ProviderUnavailableError,
)
from models.signing import SignatureError

logger = logging.getLogger(__name__)

__all__ = [
    "FeatureContract",
    "UpdateLike",
    "Verified",
    "VerifyOptions",
    "read_verified_file",
    "verify",
    "verify_version",
]


@dataclass(frozen=True)
class FeatureContract:
    """What the worker feeds a model: the feature set and its columns."""

    feature_set: str
    """Name and version of the feature set (must equal the manifest's)."""
    feature_names: tuple[str, ...]
    """Columns of the feature matrix, in order."""
    model_name: str = "deep"
    """The model family the worker serves."""
    input_name: str = INPUT_NAME
    """Name of the model input."""
    output_name: str = OUTPUT_NAME
    """Name of the model output."""


@dataclass(frozen=True, kw_only=True)
class VerifyOptions:
    """Limits of verification and how the accepted model's session is built."""

    max_file_bytes: int = 256 * 1024 * 1024
    """Largest file read (each file of the artifact)."""
    provider: Provider = "auto"
    """Execution provider of the scorer."""
    intra_op_threads: int = 1
    """onnxruntime threads per call."""
    warmup_batch_sizes: Sequence[int] = (1, 64, 1024)
    """Batch sizes scored once after the golden set (first real calls stay fast)."""


class UpdateLike(Protocol):
    """What verification reads from a ``ModelUpdate`` event (no dependency on streams)."""

    @property
    def manifest(self) -> dict[str, Any] | None: ...

    @property
    def signature(self) -> str | None: ...


@dataclass(frozen=True)
class Verified:
    """A model that passed every check, loaded and warmed up: ready to shadow or serve."""

    manifest: Manifest
    signature: str
    scorer: OnnxScorer
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage (``signature``, ``hashes``, ``onnx``, ``contract``...)."""

    @property
    def version(self) -> str:
        """The model version."""
        return self.manifest.version


def verify(
    update: UpdateLike,
    registry: Registry,
    contract: FeatureContract,
    options: VerifyOptions = VerifyOptions(),
) -> Verified:
    """Run every check on the model an update points to; return it loaded, or raise.

    Raises
    ------
    Rejected
        A check failed; ``reason`` is the code (see :mod:`models.rejections`).
    models.serving.ProviderUnavailableError
        The worker's configured provider is unusable (a worker problem, not the model's).
    """
    return verify_signed(update.manifest, update.signature, registry, contract, options)


def verify_version(
    version: str,
    registry: Registry,
    contract: FeatureContract,
    options: VerifyOptions = VerifyOptions(),
) -> Verified:
    """Verify a version straight from the registry (e.g. the champion at start-up)."""
    try:
        raw = registry.read_raw(version)
    except RegistryError as exc:
        raise Rejected(RejectReason.UNREADABLE, str(exc), version) from None
    payload, signature = raw.get("manifest"), raw.get("signature")
    verified = verify_signed(
        payload if isinstance(payload, Mapping) else None,
        signature if isinstance(signature, str) else None,
        registry,
        contract,
        options,
    )
    if verified.version != version:
        raise Rejected(RejectReason.BAD_MANIFEST, f"file of {version} holds {verified.version}")
    return verified


def verify_signed(
    payload: Mapping[str, Any] | None,
    signature: str | None,
    registry: Registry,
    contract: FeatureContract,
    options: VerifyOptions = VerifyOptions(),
) -> Verified:
    """Verification of a manifest object and its signature; see :func:`verify`."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    claimed = payload.get("version") if isinstance(payload, Mapping) else None
    version = claimed if isinstance(claimed, str) else None

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    try:
        manifest = _check_signature(payload, signature, registry)
        lap("signature")
        blobs = _read_files(manifest, registry, options.max_file_bytes)
        lap("hashes")
        model = _check_onnx(manifest, blobs, contract)
        lap("onnx")
        scorer = _load(model, manifest, options)
        lap("session")
        _check_golden(scorer, manifest)
        lap("golden")
        _warm_up(scorer, options.warmup_batch_sizes)
        lap("warmup")
    except Rejected as exc:
        if exc.version is None:
            exc.version = version
        logger.warning(
            "model rejected",
            extra={"model_version": version, "reason": exc.reason.value, "detail": exc.detail},
        )
        raise
    assert signature is not None
    logger.info(
        "model verified",
        extra={"model_version": manifest.version, "seconds": round(sum(timings.values()), 4)},
    )
    return Verified(manifest, signature, scorer, timings)


def _check_signature(
    payload: Mapping[str, Any] | None, signature: str | None, registry: Registry
) -> Manifest:
    if not signature:
        raise Rejected(RejectReason.MISSING_SIGNATURE, "the update carries no signature")
    if not isinstance(payload, Mapping):
        raise Rejected(RejectReason.BAD_MANIFEST, "the update carries no manifest")
    try:
        verify_payload(payload, signature, registry.verifier)
    except SignatureError as exc:
        key = payload.get("key_id")
        if key != registry.verifier.key_id:
            detail = f"{exc} (signed with key {key!r}; this worker has {registry.verifier.key_id})"
        else:
            detail = f"{exc} (the manifest or signature was altered)"
        raise Rejected(RejectReason.BAD_SIGNATURE, detail) from None
    try:
        return Manifest.model_validate(payload)
    except ValidationError as exc:
        raise Rejected(RejectReason.BAD_MANIFEST, str(exc)) from None


def _read_files(manifest: Manifest, registry: Registry, limit: int) -> dict[str, bytes]:
    for name, entry in manifest.files.items():
        if entry.size > limit:
            raise Rejected(
                RejectReason.SIZE_LIMIT, f"{name} declares {entry.size} bytes > limit {limit}"
            )
    return {name: read_verified_file(manifest, registry, name, limit) for name in manifest.files}


def read_verified_file(
    manifest: Manifest, registry: Registry, name: str, limit: int = 1 << 28
) -> bytes:
    """The bytes of one file of a (signature-checked) manifest, size and sha256 checked.

    Raises
    ------
    Rejected
        The manifest lists no such file, or the stored bytes differ from its entry.
    """
    entry = manifest.files.get(name)
    if entry is None:
        raise Rejected(RejectReason.BAD_MANIFEST, f"the manifest lists no file {name!r}")
    data = _read_bounded(registry.artifact_dir(manifest.sha256) / name, limit)
    if len(data) != entry.size:
        raise Rejected(
            RejectReason.HASH_MISMATCH, f"{name}: {len(data)} bytes, manifest says {entry.size}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise Rejected(
            RejectReason.HASH_MISMATCH, f"{name}: sha256 {digest}, manifest says {entry.sha256}"
        )
    return data


def _read_bounded(path: os.PathLike[str], limit: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise Rejected(RejectReason.UNREADABLE, f"{path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Rejected(RejectReason.UNREADABLE, f"{path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise Rejected(RejectReason.UNREADABLE, f"{path}: {exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Rejected(RejectReason.SIZE_LIMIT, f"{path} holds more than {limit} bytes")
    return data


def _check_onnx(manifest: Manifest, blobs: Mapping[str, bytes], contract: FeatureContract) -> bytes:
    if manifest.model_name != contract.model_name:
        raise Rejected(
            RejectReason.CONTRACT_MISMATCH,
            f"model family {manifest.model_name!r}, this worker serves {contract.model_name!r}",
        )
    if manifest.feature_set != contract.feature_set:
        raise Rejected(
            RejectReason.CONTRACT_MISMATCH,
            f"feature set {manifest.feature_set!r}, the worker computes {contract.feature_set!r}",
        )
    if manifest.feature_names != contract.feature_names:
        raise Rejected(
            RejectReason.CONTRACT_MISMATCH,
            f"manifest features {list(manifest.feature_names)} differ from the worker's "
            f"{list(contract.feature_names)} (names or order)",
        )
    if (manifest.input_name, manifest.output_name) != (contract.input_name, contract.output_name):
        raise Rejected(
            RejectReason.CONTRACT_MISMATCH,
            f"manifest signature {manifest.input_name}->{manifest.output_name}, expected "
            f"{contract.input_name}->{contract.output_name}",
        )
    data = blobs[manifest.model_file]
    proto = parse(data)
    others = {k: v for k, v in blobs.items() if k != manifest.model_file}
    if inline_external_data(proto, others):
        data = proto.SerializeToString()
    run_checker(proto)
    check_operators(proto)
    check_graph_contract(
        proto,
        input_name=contract.input_name,
        output_name=contract.output_name,
        feature_names=contract.feature_names,
        version=manifest.version,
    )
    return data


def _load(model: bytes, manifest: Manifest, options: VerifyOptions) -> OnnxScorer:
    try:
        return OnnxScorer(
            model,
            feature_names=manifest.feature_names,
            provider=options.provider,
            intra_op_threads=options.intra_op_threads,
            warmup_batch_sizes=(),
        )
    except ModelContractError as exc:
        # A cause means onnxruntime itself refused the model; otherwise the contract.
        reason = RejectReason.ONNX_INVALID if exc.__cause__ else RejectReason.CONTRACT_MISMATCH
        raise Rejected(reason, str(exc)) from None
    except ProviderUnavailableError:
        raise  # the worker's configuration, not the model
    except Exception as exc:  # e.g. UnicodeDecodeError on names that are not UTF-8
        detail = f"onnxruntime cannot read the model: {type(exc).__name__}: {exc}"
        raise Rejected(RejectReason.ONNX_INVALID, detail) from None


def _check_outputs(out: np.ndarray[Any, Any], where: str, reason: RejectReason) -> None:
    if not np.all(np.isfinite(out)):
        raise Rejected(reason, f"{where}: {int(np.sum(~np.isfinite(out)))} non-finite outputs")
    if np.any(out < 0.0) or np.any(out > 1.0):
        raise Rejected(
            reason, f"{where}: outputs outside [0, 1] (min {out.min():.6g}, max {out.max():.6g})"
        )


def _check_golden(scorer: OnnxScorer, manifest: Manifest) -> None:
    golden = manifest.golden
    X = np.asarray(golden.inputs, dtype=np.float32)
    try:
        out = scorer.score_batch(X)
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        detail = f"scoring the golden set failed: {exc}"
        raise Rejected(RejectReason.GOLDEN_FAILED, detail) from None
    if out.shape != (len(X),):
        raise Rejected(RejectReason.GOLDEN_FAILED, f"golden output shape {out.shape}")
    _check_outputs(out, "golden set", RejectReason.GOLDEN_FAILED)
    diff = np.abs(out.astype(np.float64) - np.asarray(golden.expected, dtype=np.float64))
    worst = int(np.argmax(diff))
    if diff[worst] > golden.atol:
        raise Rejected(
            RejectReason.GOLDEN_FAILED,
            f"golden row {worst}: {out[worst]:.6g}, expected {golden.expected[worst]:.6g} "
            f"(|diff| {diff[worst]:.3g} > atol {golden.atol:.3g})",
        )


def _warm_up(scorer: OnnxScorer, sizes: Sequence[int]) -> None:
    n = len(scorer.feature_names)
    for size in sizes:
        try:
            out = scorer.score_batch(np.zeros((size, n), dtype=np.float32))
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise Rejected(RejectReason.WARMUP_FAILED, f"batch of {size}: {exc}") from None
        _check_outputs(out, f"warm-up batch of {size}", RejectReason.WARMUP_FAILED)
