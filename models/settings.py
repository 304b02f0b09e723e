"""Settings of the model side: registry, scoring runtime, promotion rule, training.

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
    """Where model artifacts live, how their manifests are signed, what workers accept."""

    uri: str = "var/registry"
    """Registry location: a local directory (default) or `file:///abs/path`. Object-store
    URIs (`s3://`, `gs://`) are not implemented: mount the bucket as a directory."""
    model_name: str = "deep"
    """Model family the registry pointers and `model-updates` messages speak for."""
    signature_scheme: Literal["hmac-sha256", "ed25519"] = "hmac-sha256"
    """How manifests are signed: a shared HMAC key, or an Ed25519 key pair."""
    signing_key: SecretStr | None = None
    """HMAC-SHA256 key text, at least 32 bytes (prefer `signing_key_file`)."""
    signing_key_file: Path | None = None
    """File holding the HMAC key, or the Ed25519 private key (PEM) of the trainer."""
    verify_key_file: Path | None = None
    """Ed25519 public key (PEM): all a worker needs to verify."""
    dev_key: bool = False
    """With no key configured, create and use `<registry>/dev-signing.key` (local demos
    only: whoever can write the registry can read that key)."""
    max_file_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    """Largest artifact file a worker will read; larger ones are rejected (`size_limit`)."""


class PromotionSettings(Section):
    """The rule that promotes or rejects a model: a challenger in shadow, or a trained
    candidate against the champion. Both are scored on the same matured labels."""

    min_labels: int = Field(default=2000, ge=1)
    """Matured labels (scored by both models) needed before judging."""
    min_positives: int = Field(default=20, ge=1)
    """Frauds among them needed before judging."""
    max_ap_drop: float = Field(default=0.0, ge=0.0, le=1.0)
    """The newcomer may lose at most this much average precision (absolute)."""
    max_auc_drop: float = Field(default=0.005, ge=0.0, le=1.0)
    """The newcomer may lose at most this much AUC ROC (absolute)."""
    max_labels: int = Field(default=200_000, ge=1)
    """A shadow run still short of positives after this many labels is rejected
    (`insufficient_evidence`)."""


class TrainerSettings(Section):
    """The batch trainer: what it reads, when it runs, how it trains."""

    schedule: Literal["event_time", "wall_clock", "requests"] = "event_time"
    """When to train besides retrain requests: every `every_days` of labeled-example
    event time, every `every_s` wall-clock seconds, or only on requests."""
    every_days: float = Field(default=1.0, gt=0)
    """Event-time period of the `event_time` schedule (days)."""
    every_s: float = Field(default=86_400.0, gt=0)
    """Wall-clock period of the `wall_clock` schedule (seconds)."""
    window_days: float = Field(default=28.0, gt=0)
    """Labeled examples of this many event days before the newest are used."""
    eval_days: float = Field(default=7.0, gt=0)
    """The most recent days of the window are held out to compare with the champion."""
    min_examples: int = Field(default=1000, ge=10)
    """Fewer training examples than this: skip the run."""
    hidden: tuple[int, ...] = (64, 32)
    """Hidden layer sizes of the feed-forward network."""
    epochs: int = Field(default=30, ge=1)
    """Most training epochs (early stopping on the validation loss)."""
    batch_size: int = Field(default=256, ge=1)
    """Training mini-batch size."""
    lr: float = Field(default=1e-3, gt=0)
    """Adam learning rate."""
    patience: int = Field(default=3, ge=1)
    """Epochs without validation improvement before stopping."""
    seed: int = 0
    """Seed of initialization and shuffling."""
    threads: int = Field(default=1, ge=1)
    """torch threads while training."""
    positive_weight: float = Field(default=1.0, gt=0)
    """Loss weight of fraud examples; 1 keeps the scores calibrated probabilities,
    which the decision thresholds and the blend assume."""
    finetune_epochs: int = Field(default=1, ge=0)
    """Scheduled runs fine-tune the champion's weights for this many epochs on the
    whole window (no hold-out; workers judge the result on unseen matured labels).
    0, a retrain request, or a champion without published weights: train from scratch."""
    log_inputs: bool = True
    """Amount and count features enter the network as log1p (inside the ONNX graph)."""
    publish_rule: Literal["not_worse", "always"] = "not_worse"
    """Publish a candidate only if it is not worse than the champion on the held-out
    labels (by the `promotion` thresholds), or always (workers still judge it)."""


class ScoringSettings(Section):
    """The ONNX runtime that scores micro-batches."""

    # `STREAMSCORE_SCORING__*` is shared with the worker's scoring section
    # (streams.settings.ScoringSettings): each side ignores the other's variables.
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore", frozen=True)

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
    promotion: PromotionSettings = PromotionSettings()
    """Promotion and publication rule."""
    trainer: TrainerSettings = TrainerSettings()
    """Batch trainer."""
