"""Why a model was rejected: a fixed set of reason codes, and the exception that carries one.

A worker rejects a published model during verification (before it ever scores) or
at the end of its shadow run (it scored, but did not beat the champion). Each
rejection is logged, counted in a metric labelled with the code, and announced as an
event; the champion keeps serving. The codes never change meaning; new failure modes
get new codes.

=====================  ====================================================================
code                   meaning
=====================  ====================================================================
missing_signature      the update or manifest carries no signature
bad_signature          the signature does not match the manifest (other key, or tampered)
bad_manifest           the manifest does not parse, or names files/paths it may not
unreadable             the model file is missing or cannot be read
size_limit             a file is larger than the configured limit
hash_mismatch          a file's size or SHA-256 differs from the manifest
onnx_invalid           not a valid ONNX model (truncated, random bytes, checker failure,
                       onnxruntime cannot load it)
external_data          tensor data stored outside the model file: outside the artifact's
                       directory, or in a file the manifest does not hash
custom_op              an operator outside the standard ONNX domains
contract_mismatch      input/output name, type or shape, feature set, feature names or
                       version differ from the worker's feature contract or the manifest
golden_failed          on the golden inputs: a non-finite output, one outside [0, 1], or a
                       value differing from the one recorded at export
warmup_failed          scoring the warm-up batches failed
worse_than_champion    in shadow, on matured labels: worse than the champion by the rule
insufficient_evidence  in shadow: the label budget ran out before the rule could judge
=====================  ====================================================================
"""

from __future__ import annotations

import enum

__all__ = ["RejectReason", "Rejected"]


class RejectReason(enum.StrEnum):
    """Reason codes of rejected models (see the module table)."""

    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    BAD_MANIFEST = "bad_manifest"
    UNREADABLE = "unreadable"
    SIZE_LIMIT = "size_limit"
    HASH_MISMATCH = "hash_mismatch"
    ONNX_INVALID = "onnx_invalid"
    EXTERNAL_DATA = "external_data"
    CUSTOM_OP = "custom_op"
    CONTRACT_MISMATCH = "contract_mismatch"
    GOLDEN_FAILED = "golden_failed"
    WARMUP_FAILED = "warmup_failed"
    WORSE_THAN_CHAMPION = "worse_than_champion"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


class Rejected(Exception):
    """A model failed a check; ``reason`` is the code, ``detail`` says what was seen.

    Examples
    --------
    >>> err = Rejected(RejectReason.HASH_MISMATCH, "model.onnx: sha256 abc != def", "v3")
    >>> str(err)
    'hash_mismatch (v3): model.onnx: sha256 abc != def'
    >>> err.reason.value
    'hash_mismatch'
    """

    def __init__(self, reason: RejectReason, detail: str, version: str | None = None) -> None:
        label = f"{reason.value} ({version})" if version else reason.value
        super().__init__(f"{label}: {detail}")
        self.reason = reason
        self.detail = detail[:2048]
        self.version = version
