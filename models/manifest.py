"""The manifest of a model artifact: what it is, what it was trained on, how to check it.

A manifest names every file of the artifact with its SHA-256 and size, the feature
contract (feature set, names in column order, input/output names and shapes), the
training window, the evaluation metrics, the parent version and a *golden set*:
a few feature rows and the probabilities the model gave them at export, which a
worker re-scores before trusting the model. It is signed as a whole
(:mod:`models.signing`); a signed manifest travels as ``{"manifest": ..., "signature": ...}``
in files and as the ``manifest`` and ``signature`` fields of a ``ModelUpdate`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from models.atomic import canonical_json
from models.signing import Scheme, SignatureError, Signer, Verifier

__all__ = [
    "MANIFEST_VERSION",
    "FileEntry",
    "GoldenSet",
    "Manifest",
    "SignedManifest",
    "TrainingWindow",
    "sign_manifest",
    "utc_now",
    "verify_payload",
]

MANIFEST_VERSION: Literal[1] = 1

#: A model version: short, and safe as a file name.
Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
#: A file name inside an artifact directory: no separators, no ``..``.
FileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Dim = int | Annotated[str, StringConstraints(max_length=32)]


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )


class FileEntry(_Frozen):
    """One file of an artifact."""

    sha256: Sha256
    """SHA-256 of the file's bytes, lowercase hex."""
    size: int = Field(ge=0)
    """Size in bytes."""


class TrainingWindow(_Frozen):
    """The labeled examples a model was trained and evaluated on."""

    start: AwareDatetime
    """Event time of the first example."""
    end: AwareDatetime
    """Event time after the last example."""
    examples: int = Field(ge=0)
    """Number of examples (training and evaluation)."""
    positives: int = Field(ge=0)
    """Number of frauds among them."""
    eval_start: AwareDatetime | None = None
    """Where the held-out evaluation part begins."""


class GoldenSet(_Frozen):
    """Feature rows and the probabilities the model gave them when it was exported."""

    inputs: list[list[float]] = Field(min_length=1, max_length=1024)
    """Rows of raw features, in the manifest's feature order."""
    expected: list[float] = Field(min_length=1, max_length=1024)
    """The probability of each row at export."""
    atol: float = Field(default=1e-4, gt=0.0, le=0.1)
    """Largest absolute difference accepted when re-scoring (covers CPU/GPU kernels)."""

    @model_validator(mode="after")
    def _consistent(self) -> GoldenSet:
        if len(self.inputs) != len(self.expected):
            raise ValueError(f"{len(self.inputs)} golden rows but {len(self.expected)} outputs")
        if len({len(row) for row in self.inputs}) != 1:
            raise ValueError("golden rows differ in width")
        return self


class Manifest(_Frozen):
    """Everything a worker needs to decide whether to trust and how to use a model.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> m = Manifest(
    ...     model_name="deep", version="v1", feature_set="demo-1",
    ...     feature_names=("a", "b"), input_shape=("batch", 2), output_shape=("batch", 1),
    ...     opset=18, files={"model.onnx": FileEntry(sha256="0" * 64, size=10)},
    ...     created_time=datetime(2018, 5, 1, tzinfo=UTC),
    ...     golden=GoldenSet(inputs=[[0.0, 1.0]], expected=[0.5]),
    ...     signature_scheme="hmac-sha256", key_id="k")
    >>> m.sha256 == "0" * 64, m.model_size
    (True, 10)
    """

    manifest_version: Literal[1] = MANIFEST_VERSION
    """Version of the manifest format."""
    model_name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """Model family (the `model-updates` key)."""
    version: Version
    """The model version; also in the ONNX metadata, and named on every prediction."""
    model_file: FileName = "model.onnx"
    """The ONNX file among `files`."""
    files: dict[FileName, FileEntry] = Field(min_length=1, max_length=16)
    """Every file of the artifact directory, with hash and size."""
    feature_set: Annotated[str, StringConstraints(max_length=64)]
    """Name and version of the feature set."""
    feature_names: tuple[str, ...] = Field(min_length=1, max_length=256)
    """Feature names in input column order."""
    input_name: str = "features"
    """Name of the model's one input."""
    output_name: str = "probability"
    """Name of the model's one output."""
    input_shape: tuple[Dim, ...] = Field(min_length=2, max_length=3)
    """Input shape, a string for a dynamic axis (e.g. `["batch", 15]`)."""
    output_shape: tuple[Dim, ...] = Field(min_length=1, max_length=2)
    """Output shape (e.g. `["batch", 1]`)."""
    opset: int = Field(ge=1, le=64)
    """ONNX opset of the default domain."""
    training_window: TrainingWindow | None = None
    """Examples the model learned from and was evaluated on."""
    metrics: dict[str, float] = {}
    """Evaluation results on the held-out examples (e.g. `auc`, `ap`, `champion_ap`)."""
    parent_version: Version | None = None
    """The champion when this model was trained."""
    created_time: AwareDatetime
    """Wall-clock time of publication."""
    golden: GoldenSet
    """Rows re-scored by workers before the model may serve."""
    signature_scheme: Scheme
    """How the manifest is signed."""
    key_id: Annotated[str, StringConstraints(max_length=64)]
    """Which key signed it."""

    @model_validator(mode="after")
    def _model_file_listed(self) -> Manifest:
        if self.model_file not in self.files:
            raise ValueError(f"model_file {self.model_file!r} is not among files")
        width = self.input_shape[-1]
        if width != len(self.feature_names):
            raise ValueError(f"input width {width!r} but {len(self.feature_names)} features")
        if len(self.golden.inputs[0]) != len(self.feature_names):
            raise ValueError("golden rows do not have one value per feature")
        return self

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file: the artifact's content address."""
        return self.files[self.model_file].sha256

    @property
    def model_size(self) -> int:
        """Size of the model file in bytes."""
        return self.files[self.model_file].size

    @property
    def total_size(self) -> int:
        """Size of all files in bytes."""
        return sum(f.size for f in self.files.values())

    def payload(self) -> dict[str, Any]:
        """The JSON value that is signed."""
        return self.model_dump(mode="json")


class SignedManifest(_Frozen):
    """A manifest and its signature, as stored in a registry file."""

    manifest: Manifest
    """The manifest."""
    signature: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,256}$")]
    """Hex signature of the manifest's canonical JSON."""

    def to_json(self) -> bytes:
        """The file form: canonical JSON of ``{"manifest": ..., "signature": ...}``."""
        return canonical_json({"manifest": self.manifest.payload(), "signature": self.signature})


def sign_manifest(manifest: Manifest, signer: Signer) -> SignedManifest:
    """Sign ``manifest``; its scheme and key id must be the signer's."""
    if (manifest.signature_scheme, manifest.key_id) != (signer.scheme, signer.key_id):
        raise ValueError("the manifest names another scheme or key than the signer")
    return SignedManifest(
        manifest=manifest, signature=signer.sign(canonical_json(manifest.payload()))
    )


def verify_payload(payload: Mapping[str, Any], signature: str, verifier: Verifier) -> None:
    """Check ``signature`` over a manifest as received (a JSON object), before parsing it.

    Raises
    ------
    models.signing.SignatureError
        The signature does not match (or the payload is not JSON-serializable).
    """
    try:
        data = canonical_json(dict(payload))
    except (TypeError, ValueError) as exc:
        raise SignatureError(f"manifest is not plain JSON: {exc}") from None
    verifier.verify(data, signature)


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)
