"""Rows per second of the scoring engines, by batch size.

Engines: onnxruntime (CPU, or CUDA with ``--provider cuda``) with 1 and 2 intra-op
threads, and torch eager for comparison, for the feed-forward model and the GRU
sequence model; plus the cost of occlusion reason codes per row.

    python bench/scoring_engines.py                      # CPU
    python bench/scoring_engines.py --provider cuda      # on a GPU machine (gpu extra)

Weights are random (throughput does not depend on them). Each cell is the best of
``--repeats`` rounds of at least ``--min-time`` seconds.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
from typing import Literal

import numpy as np
import onnxruntime as ort
import torch

from models.export import export_onnx
from models.nets import FraudNet, SequenceNet, torch_threads
from models.reasons import occlusion_effects
from models.serving import OnnxScorer
from streams.bench.engines import rows_per_second

NAMES = [f"f{i:02d}" for i in range(15)]


def fmt(rate: float) -> str:
    """Compact rows/s: 12.3k, 4.56M."""
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.0f}"


def ort_rates(
    data: bytes,
    inputs: dict[int, np.ndarray],
    provider: Literal["cpu", "cuda"],
    threads: int,
    args: argparse.Namespace,
) -> tuple[str, list[float]]:
    """Rows/s of onnxruntime for each batch size, and the provider actually used."""
    scorer = OnnxScorer(data, feature_names=NAMES, provider=provider, intra_op_threads=threads)
    rates = []
    for b, X in inputs.items():
        call = functools.partial(scorer.score_batch, X)
        rates.append(rows_per_second(call, b, args.min_time, args.repeats))
    return scorer.provider, rates


def torch_rates(
    module: torch.nn.Module,
    inputs: dict[int, np.ndarray],
    device: str,
    threads: int,
    args: argparse.Namespace,
) -> list[float]:
    """Rows/s of torch eager (inference mode, outputs copied back to the host)."""
    module = module.to(device)

    def run(x: torch.Tensor) -> None:
        module(x).cpu()

    rates = []
    with torch_threads(threads), torch.inference_mode():
        for b, X in inputs.items():
            call = functools.partial(run, torch.from_numpy(X).to(device))
            rates.append(rows_per_second(call, b, args.min_time, args.repeats))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--provider", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", default="1,2", help="intra-op thread counts")
    parser.add_argument("--batch-sizes", default="1,16,64,256,1024,4096")
    parser.add_argument("--seq-len", type=int, default=16)
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the torch rows")
    parser.add_argument("--no-sequence", action="store_true", help="skip the GRU model")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    rng = np.random.default_rng(0)
    torch.manual_seed(0)

    ffnn = FraudNet(15).eval()
    ffnn.set_standardization(rng.normal(size=(1000, 15)))
    gru = SequenceNet(15, hidden=64).eval()
    models: list[tuple[str, torch.nn.Module, int | None, bytes]] = [
        ("ffnn 64-32", ffnn, None, export_onnx(ffnn, None, NAMES, version="bench-ffnn"))
    ]
    if not args.no_sequence:
        seq = export_onnx(gru, None, NAMES, version="bench-gru", seq_len=args.seq_len)
        models.append((f"gru64 x{args.seq_len}", gru, args.seq_len, seq))

    device = "cuda" if args.provider == "cuda" and torch.cuda.is_available() else "cpu"
    print(
        f"# {platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, "
        f"onnxruntime {ort.__version__} ({ort.get_available_providers()}), "
        f"torch {torch.__version__} on {device}\n"
    )
    print("| model | engine | " + " | ".join(f"b={b}" for b in sizes) + " |")
    print("|" + "---|" * (len(sizes) + 2))
    for label, module, seq_len, data in models:
        inputs = {
            b: rng.normal(size=(b, 15) if seq_len is None else (b, seq_len, 15)).astype(np.float32)
            for b in sizes
        }
        for t in threads:
            used, rates = ort_rates(data, inputs, args.provider, t, args)
            print(
                f"| {label} | ort-{used} {t}t | {' | '.join(fmt(r) for r in rates)} |", flush=True
            )
        if args.no_torch:
            continue
        for t in threads:
            rates = torch_rates(module, inputs, device, t, args)
            cells = " | ".join(fmt(r) for r in rates)
            print(f"| {label} | torch-{device} {t}t | {cells} |", flush=True)

    print("\n# occlusion reason codes (ffnn, 1 thread), microseconds per row")
    scorer = OnnxScorer(models[0][3], feature_names=NAMES, provider=args.provider)
    baseline, scale = ffnn.mean.numpy(), ffnn.std.numpy()
    for b in (256, 1024):
        X = rng.normal(size=(b, 15)).astype(np.float32)
        scores = scorer.score_batch(X)
        for m in (None, 5, 3):
            call = functools.partial(
                occlusion_effects, scorer, X, baseline, scale=scale, candidates=m, scores=scores
            )
            rate = rows_per_second(call, b, args.min_time, args.repeats)
            print(f"batch {b}, candidates {m or 15}: {1e6 / rate:.2f} us/row")


if __name__ == "__main__":
    main()
