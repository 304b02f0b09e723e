"""Online learning from delayed labels: the core of `streamscore learner`.

One learner process reads every partition of `labeled-examples`, updates the River
model (:class:`models.online.LogisticLearner`) once per label, watches the error
stream for drift, and periodically publishes a signed
:class:`~models.linear.LinearSnapshot` (plain numbers, no pickle) as a
``ModelUpdate`` that every worker loads for scoring.

**Never learning a label twice.** The learner's state is checkpointed to a signed
file together with the `labeled-examples` offsets it includes and the ids it has
learned (within the label TTL). After a crash it restarts from the checkpoint and
reads from exactly those offsets: what it learned after the checkpoint died with the
process and is learned once more, into the restored model. Repeated examples (a label
joined twice after a worker restart) are dropped by id.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.drift import make_error_detector
from models.linear import LinearSnapshot
from models.online import LogisticLearner
from models.signing import SignatureError, Signer, Verifier
from streams.events import DriftEvent, DriftKind, LabeledExample

DAY_S = 86_400.0
_MAGIC = b"SSLRN\x01"


@dataclass(frozen=True)
class LearnerConfig:
    """Plain configuration of the online learner."""

    feature_names: tuple[str, ...]
    learning_rate: float = 0.01
    l2: float = 0.0
    positive_weight: float = 1.0
    dedup_ttl_s: float = 40 * DAY_S
    genuine_sample: float = 1.0
    seed: int = 0


@dataclass
class LearnResult:
    """What one batch of examples did."""

    learned: int = 0
    repeated: int = 0
    skipped: int = 0
    drift: list[DriftEvent] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)


class OnlineTraining:
    """The learner, what it has learned, and where in `labeled-examples` it stands."""

    def __init__(self, config: LearnerConfig) -> None:
        self.config = config
        self.learner = LogisticLearner(
            config.feature_names,
            learning_rate=config.learning_rate,
            l2=config.l2,
            positive_weight=config.positive_weight,
        )
        self.offsets: dict[int, int] = {}
        self.seen: dict[str, float] = {}
        self.watermark = 0.0
        self.error_detector = make_error_detector()
        self.counts: Counter[str] = Counter()
        self._rng = np.random.default_rng(config.seed)

    def learn(self, batch: list[tuple[int, int, LabeledExample]]) -> LearnResult:
        """Learn a batch of ``(partition, offset, example)`` in order."""
        result = LearnResult()
        names = self.config.feature_names
        now = datetime.now(UTC)
        for partition, offset, example in batch:
            self.offsets[partition] = offset + 1
            time_s = example.event_time.timestamp()
            self.watermark = max(self.watermark, time_s)
            if example.transaction_id in self.seen:
                result.repeated += 1
                continue
            self.seen[example.transaction_id] = time_s
            if len(example.values) != len(names) or not all(map(math.isfinite, example.values)):
                result.skipped += 1
                continue
            x = dict(zip(names, example.values, strict=True))
            p = self.learner.predict_proba_one(x)
            error = abs(float(example.is_fraud) - p)
            result.errors.append(error)
            self.error_detector.update(error)
            if self.error_detector.drift_detected:
                result.drift.append(
                    DriftEvent(
                        detector="ADWIN",
                        kind=DriftKind.ERROR,
                        statistic=float(getattr(self.error_detector, "estimation", 0.0)),
                        event_time=example.label_time,
                        detected_time=now,
                    )
                )
            if not example.is_fraud and self.config.genuine_sample < 1.0:
                if self._rng.random() >= self.config.genuine_sample:
                    result.skipped += 1
                    continue
            self.learner.learn_one(x, example.is_fraud)
            result.learned += 1
        self.counts.update(learned=result.learned, repeated=result.repeated)
        self._forget(self.watermark - self.config.dedup_ttl_s)
        return result

    def _forget(self, before_s: float) -> None:
        if len(self.seen) < 10_000:
            return
        old = [k for k, t in self.seen.items() if t < before_s]
        for k in old:
            del self.seen[k]

    def snapshot(self) -> LinearSnapshot:
        """The current model as plain numbers, with the offsets it includes."""
        n = self.learner.n_learned
        return LinearSnapshot.from_learner(
            self.learner,
            version=f"online-{n}",
            offsets={str(p): o for p, o in sorted(self.offsets.items())},
        )

    # -- checkpoints ------------------------------------------------------------------
    def checkpoint(self, signer: Signer) -> bytes:
        """Signed bytes of the whole state (model, offsets, learned ids)."""
        payload = pickle.dumps(
            {
                "learner": self.learner,
                "offsets": self.offsets,
                "seen": self.seen,
                "watermark": self.watermark,
                "detector": self.error_detector,
                "counts": dict(self.counts),
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        signature = signer.sign(_MAGIC + payload).encode("ascii")
        return _MAGIC + struct.pack(">H", len(signature)) + signature + payload

    def restore(self, blob: bytes, verifier: Verifier) -> None:
        """Load a checkpoint; the signature is checked before anything is unpickled."""
        head = len(_MAGIC) + 2
        if not blob.startswith(_MAGIC) or len(blob) < head:
            raise ValueError("not a learner checkpoint")
        (n,) = struct.unpack(">H", blob[len(_MAGIC) : head])
        signature, payload = blob[head : head + n], blob[head + n :]
        try:
            verifier.verify(_MAGIC + payload, signature.decode("ascii", "replace"))
        except SignatureError:
            raise ValueError("learner checkpoint signature does not match") from None
        state: dict[str, Any] = pickle.loads(payload)  # noqa: S301 - signature checked above
        self.learner = state["learner"]
        self.offsets = dict(state["offsets"])
        self.seen = dict(state["seen"])
        self.watermark = float(state["watermark"])
        self.error_detector = state["detector"]
        self.counts = Counter(state["counts"])


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so no reader ever sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
