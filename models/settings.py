"""Settings of the model side: registry, scoring runtime, training.

Env prefix ``STREAMSCORE_``, sections nested with ``__``
(e.g. ``STREAMSCORE_SCORING__PROVIDER=cuda``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Section(BaseModel):
    """Base of settings sections: field docstrings become descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid", frozen=True)


class RegistrySettings(Section):
    """Where model artifacts live and how their manifests are signed."""

    uri: str = "var/registry"
    """Registry location: a local directory (default) or `file:///abs/path`."""
    signing_key: SecretStr | None = None
    """HMAC-SHA256 key that signs manifests (prefer `signing_key_file`)."""
    signing_key_file: Path | None = None
    """File holding the signing key."""


class ScoringSettings(Section):
    """The ONNX runtime that scores micro-batches."""

    provider: Literal["auto", "cpu", "cuda"] = "auto"
    """Execution provider: `auto` takes CUDA when onnxruntime-gpu sees a GPU, else CPU."""
    intra_op_threads: int = Field(default=1, ge=0)
    """onnxruntime intra-op threads (0: onnxruntime decides)."""


class ModelsSettings(BaseSettings):
    """Settings of the model side (env prefix `STREAMSCORE_`)."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMSCORE_",
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )

    registry: RegistrySettings = RegistrySettings()
    """Model registry."""
    scoring: ScoringSettings = ScoringSettings()
    """Scoring runtime."""
