"""The models every benchmark run serves: a trained ONNX champion and an online snapshot.

The deep model is trained once by the same ``streamscore train`` command a deployment
uses (a short window, few epochs: its weights do not change what scoring costs) and
kept in the work directory with its signing key, so later runs reuse it. Each run's
worker loads it from that registry; the online model is a signed linear snapshot sent
to the run's ``model-updates`` topic before the worker starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.blend import WeightedBlend
from models.features import FEATURE_NAMES
from models.linear import LinearSnapshot
from models.registry import Registry
from models.settings import RegistrySettings
from models.signing import generate_key_files, load_keys
from models.verify import FeatureContract, VerifyOptions, verify_version
from streams.events import ModelUpdate, ModelUpdateAction
from streams.kafka import KafkaConnection
from streams.model_updates import send_updates
from streams.scoring import ModelSet
from streams.settings import ScoringSettings
from streams.terminal import FEATURE_SET

CHAMPION = "bench-ffnn"
ONLINE = "bench-online"


class ModelSetupError(RuntimeError):
    """The benchmark's model could not be trained or loaded."""


@dataclass(frozen=True)
class BenchModels:
    """Where the benchmark's models live."""

    key_file: Path
    registry_dir: Path
    champion: str = CHAMPION

    def env(self) -> dict[str, str]:
        """Environment that points a worker at this registry and key."""
        return {
            "STREAMSCORE_REGISTRY__URI": str(self.registry_dir),
            "STREAMSCORE_REGISTRY__SIGNING_KEY_FILE": str(self.key_file),
        }

    def registry_settings(self) -> RegistrySettings:
        """Registry settings for this process."""
        return RegistrySettings(uri=str(self.registry_dir), signing_key_file=self.key_file)

    def online_snapshot(self) -> LinearSnapshot:
        """The online model served beside the deep one (scoring cost ignores its weights)."""
        n = len(FEATURE_NAMES)
        weights = tuple(0.1 * ((i % 5) - 2) for i in range(n))
        return LinearSnapshot(
            ONLINE, tuple(FEATURE_NAMES), (1.0,) * n, (2.0,) * n, weights, -3.0, n_learned=1
        )

    def online_update(self) -> ModelUpdate:
        """The signed `model-updates` message that puts :meth:`online_snapshot` in service."""
        settings = self.registry_settings()
        signer, _ = load_keys(settings, self.registry_dir)
        if signer is None:
            raise ModelSetupError("the benchmark's key cannot sign")
        snap = self.online_snapshot()
        return ModelUpdate(
            model_name="online",
            action=ModelUpdateAction.PUBLISH,
            version=snap.version,
            manifest=snap.to_dict(),
            signature=snap.sign(signer),
            issued_time=datetime.now(UTC),
        )

    async def publish_online(self, conn: KafkaConnection, topic: str) -> None:
        """Send the online snapshot to a run's `model-updates` topic."""
        await send_updates(conn, topic, [self.online_update()])

    def model_set(self, scoring: ScoringSettings) -> ModelSet:
        """The models in service, loaded in this process (for in-process measurements)."""
        settings = self.registry_settings()
        _, verifier = load_keys(settings, self.registry_dir)
        registry = Registry(self.registry_dir, verifier, None, settings.model_name)
        contract = FeatureContract(FEATURE_SET, tuple(FEATURE_NAMES), settings.model_name)
        verified = verify_version(self.champion, registry, contract, VerifyOptions(provider="cpu"))
        return ModelSet(
            deep=verified.scorer,
            online=self.online_snapshot(),
            blend=WeightedBlend(w_deep=scoring.blend_w_deep, floor=scoring.blend_floor),
        )


def prepare_models(work_dir: Path, data_file: Path, first_day: datetime) -> BenchModels:
    """Train (once) and publish the benchmark's champion under ``work_dir/models``.

    A registry left by an earlier run is reused when it holds the champion.

    Raises
    ------
    ModelSetupError
        Training failed (its output is in ``work_dir/models/train.log``).
    """
    root = work_dir / "models"
    models = BenchModels(key_file=root / "signing.key", registry_dir=root / "registry")
    root.mkdir(parents=True, exist_ok=True)
    manifest = models.registry_dir / "manifests" / f"{CHAMPION}.json"
    if models.key_file.exists() and manifest.exists():
        try:
            models.model_set(ScoringSettings())
            return models
        except Exception:  # stale or foreign registry: train a fresh one
            pass
    for stale in (models.key_file, models.registry_dir):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    generate_key_files(models.key_file, "hmac-sha256")
    env = {
        **os.environ,
        **models.env(),
        # A short window and few epochs: the weights do not change what scoring costs.
        "STREAMSCORE_TRAINER__EPOCHS": "1",
        "STREAMSCORE_TRAINER__EVAL_DAYS": "1",
        "STREAMSCORE_TRAINER__THREADS": "1",
    }
    cmd = [
        str(Path(sys.executable).with_name("streamscore")),
        "--log-level",
        "WARNING",
        "train",
        str(data_file),
        "--from",
        first_day.isoformat(),
        "--to",
        (first_day + timedelta(days=4)).isoformat(),
        "--promote",
        "--no-notify",
        "--version",
        CHAMPION,
    ]
    log = root / "train.log"
    with log.open("wb") as out:
        code = subprocess.run(cmd, env=env, stdout=out, stderr=out, check=False).returncode
    if code != 0:
        raise ModelSetupError(f"training the benchmark model failed (exit {code}); see {log}")
    return models
