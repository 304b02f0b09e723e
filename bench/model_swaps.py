"""Verification time per model, and many swaps under scoring load: errors, mixed batches, RSS.

Two FraudNet models (15 features, hidden 64-32) are exported and published to a
temporary registry. Then:

1. each is verified ``--verifications`` times (the full worker pipeline); the
   median and max per stage are printed;
2. a scoring thread scores 1024-row batches from a snapshot of the slots as fast as
   it can, while the main thread sends ``--swaps`` promote updates alternating
   between the two models (each one verified from the registry and installed).
   Every batch must come back scored by exactly one version; the process RSS is
   printed before and after.

    python bench/model_swaps.py [--swaps 100] [--provider cpu]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.export import OPSET, export_onnx
from models.lifecycle import ModelLifecycle
from models.nets import FraudNet
from models.registry import Registry
from models.serving import OnnxScorer
from models.signing import hmac_keys
from models.slots import ModelSlots
from models.verify import FeatureContract, VerifyOptions, verify

NAMES = tuple(f"f{i}" for i in range(15))
CONTRACT = FeatureContract("bench-v1", NAMES)


@dataclass(frozen=True)
class Update:
    model_name: str
    action: str
    version: str | None
    manifest: dict[str, object] | None
    signature: str | None


def rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def publish(registry: Registry, version: str, seed: int) -> None:
    torch.manual_seed(seed)
    model = export_onnx(FraudNet(len(NAMES)).eval(), None, NAMES, version=version)
    X = np.random.default_rng(seed).normal(size=(32, len(NAMES))).astype(np.float32)
    expected = OnnxScorer(model, feature_names=NAMES, provider="cpu").score_batch(X)
    registry.publish(
        model,
        {
            "model_name": "deep",
            "version": version,
            "feature_set": "bench-v1",
            "feature_names": NAMES,
            "input_shape": ("batch", len(NAMES)),
            "output_shape": ("batch", 1),
            "opset": OPSET,
            "golden": {"inputs": X.tolist(), "expected": expected.tolist()},
        },
    )


def update(registry: Registry, version: str, action: str) -> Update:
    signed = registry.get(version)
    return Update("deep", action, version, signed.manifest.payload(), signed.signature)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--swaps", type=int, default=100)
    parser.add_argument("--verifications", type=int, default=30)
    parser.add_argument("--provider", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    signer, verifier = hmac_keys(b"bench-key-of-at-least-32-bytes!!")
    registry = Registry(Path(tempfile.mkdtemp()), verifier, signer)
    publish(registry, "a", 0)
    publish(registry, "b", 1)
    options = VerifyOptions(provider=args.provider, warmup_batch_sizes=(1, 64, 1024))

    per_stage: dict[str, list[float]] = {}
    totals = []
    for i in range(args.verifications):
        v = verify(update(registry, "ab"[i % 2], "publish"), registry, CONTRACT, options)
        totals.append(sum(v.timings.values()))
        for stage, s in v.timings.items():
            per_stage.setdefault(stage, []).append(s)
    print(f"verification ({args.provider}, {args.verifications} runs), ms: median / max")
    for stage, values in per_stage.items():
        print(f"  {stage:<10} {statistics.median(values) * 1e3:7.2f} / {max(values) * 1e3:7.2f}")
    print(f"  {'total':<10} {statistics.median(totals) * 1e3:7.2f} / {max(totals) * 1e3:7.2f}")

    slots = ModelSlots()
    life = ModelLifecycle(slots, registry, CONTRACT, options)
    life.handle(update(registry, "a", "publish"))
    X = np.random.default_rng(2).normal(size=(1024, len(NAMES))).astype(np.float32)
    reference = {
        name: OnnxScorer(registry.model_path(registry.get(name).manifest), feature_names=NAMES)
        .score_batch(X)
        .copy()
        for name in "ab"
    }
    stop = threading.Event()
    batches: dict[str, int] = {"a": 0, "b": 0}
    problems: list[str] = []

    def score() -> None:
        while not stop.is_set():
            state = slots.snapshot()  # once per batch
            assert state.champion is not None
            out = state.champion.score_batch(X)
            version = state.champion_version or "?"
            if not np.allclose(out, reference[version], atol=1e-5):
                problems.append(f"batch labelled {version} was not scored by it")
            batches[version] += 1

    worker = threading.Thread(target=score, daemon=True)
    worker.start()
    time.sleep(0.5)

    def swaps(label: str, swap: Callable[[int], str]) -> None:
        gc.collect()
        before = rss_mib()
        started = time.perf_counter()
        outcomes: dict[str, int] = {}
        for i in range(args.swaps):
            outcome = swap(i)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        swap_s = time.perf_counter() - started
        time.sleep(0.3)
        gc.collect()
        after = rss_mib()
        print(
            f"{label}: {args.swaps} swaps in {swap_s:.2f} s ({swap_s / args.swaps * 1e3:.1f} ms "
            f"each), outcomes {outcomes}; RSS before {before:.1f} MiB, after {after:.1f} MiB"
        )

    # Promote updates alternating a <-> b: the first loads b, then each swap reuses the
    # model kept as `previous` (a reference change, no loading).
    swaps(
        "promote updates", lambda i: life.handle(update(registry, "ba"[i % 2], "promote")).outcome
    )

    # Every swap verifies and loads a fresh session (the cost of a new model each time).
    def reload(i: int) -> str:
        current = slots.snapshot().champion_version
        target = "b" if current == "a" else "a"
        fresh = verify(update(registry, target, "publish"), registry, CONTRACT, options)
        slots.install(fresh.scorer)
        return "installed"

    swaps("verify+load each", reload)
    stop.set()
    worker.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"scored {sum(batches.values())} batches of 1024 rows meanwhile ({batches}); "
        f"batches not scored by the version they name: {len(problems)}; peak RSS {peak:.1f} MiB"
    )


if __name__ == "__main__":
    main()
