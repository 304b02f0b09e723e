"""Scoring engines per batch size: onnxruntime CPU (1, 2 threads), torch, onnxruntime CUDA.

Two models with random weights (speed does not depend on them): the feed-forward
network the worker serves (15 features, hidden 64-32) and the bigger one a GPU is for,
a GRU over each customer's last ``seq_len`` transactions (hidden 64). Each cell is
rows per second, the best of ``repeats`` rounds of at least ``min_time`` seconds.
The CUDA column is measured when onnxruntime has the CUDA execution provider and a
GPU; otherwise the table says so.

This module imports torch (to build and export the models), so it is loaded only
when the engines are measured; the worker never imports it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streams.bench.report import Table, rate

NAMES = tuple(f"f{i:02d}" for i in range(15))


def rows_per_second(fn: Callable[[], object], rows: int, min_time: float, repeats: int) -> float:
    """Best rate over ``repeats`` rounds, each calling ``fn`` for at least ``min_time`` s."""
    fn()
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time:
            fn()
            calls += 1
        best = max(best, calls * rows / elapsed)
    return best


@dataclass
class EngineRates:
    """Rows per second by (model, engine) and batch size."""

    sizes: list[int]
    rows: dict[tuple[str, str], list[float | None]] = field(default_factory=dict)
    cuda: str = ""


def cuda_available() -> tuple[bool, str]:
    """Whether onnxruntime can run on a GPU here, and what it said."""
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return False, "no GPU available to this run (onnxruntime has no CUDA provider)"
    return True, "CUDAExecutionProvider"


def measure_engines(
    sizes: list[int],
    seq_len: int = 16,
    min_time: float = 0.2,
    repeats: int = 2,
    threads: tuple[int, ...] = (1, 2),
    cache_dir: Path | None = None,
) -> EngineRates:
    """Measure every engine on both models at each batch size.

    The exported ONNX models are kept in ``cache_dir`` (when given) for later runs:
    exporting takes longer than measuring.
    """
    import torch

    from models.export import export_onnx
    from models.nets import FraudNet, SequenceNet, torch_threads
    from models.serving import OnnxScorer, ProviderUnavailableError

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    ffnn = FraudNet(len(NAMES)).eval()
    ffnn.set_standardization(rng.normal(size=(1000, len(NAMES))))
    gru = SequenceNet(len(NAMES), hidden=64).eval()
    specs: list[tuple[str, torch.nn.Module, int | None]] = [
        ("ffnn 64-32", ffnn, None),
        (f"gru64 x{seq_len}", gru, seq_len),
    ]
    has_cuda, cuda_note = cuda_available()
    result = EngineRates(sizes, cuda=cuda_note)
    with torch_threads(1):
        for label, module, seq in specs:
            cached = None if cache_dir is None else cache_dir / f"{label.replace(' ', '-')}.onnx"
            if cached is not None and cached.exists():
                data = cached.read_bytes()
            else:
                data = export_onnx(module, None, NAMES, version=f"bench-{label}", seq_len=seq)  # type: ignore[arg-type]
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cached.write_bytes(data)
            inputs = {
                b: rng.normal(size=(b, len(NAMES)) if seq is None else (b, seq, len(NAMES))).astype(
                    np.float32
                )
                for b in sizes
            }
            for t in threads:
                scorer = OnnxScorer(data, feature_names=NAMES, provider="cpu", intra_op_threads=t)
                result.rows[(label, f"ORT CPU {t}t")] = [
                    rows_per_second(functools.partial(scorer.score_batch, X), b, min_time, repeats)
                    for b, X in inputs.items()
                ]
            with torch.inference_mode():
                cells: list[float | None] = []
                for b, X in inputs.items():
                    x = torch.from_numpy(X)
                    cells.append(
                        rows_per_second(functools.partial(module, x), b, min_time, repeats)
                    )
                result.rows[(label, "torch CPU 1t")] = cells
            if has_cuda:
                try:
                    scorer = OnnxScorer(data, feature_names=NAMES, provider="cuda")
                except ProviderUnavailableError as exc:
                    result.cuda = f"CUDA provider failed: {exc}"
                    continue
                result.rows[(label, "ORT CUDA")] = [
                    rows_per_second(functools.partial(scorer.score_batch, X), b, min_time, repeats)
                    for b, X in inputs.items()
                ]
    return result


def engines_table(rates: EngineRates, stream_batch: float | None) -> Table:
    """Rows per second by engine and batch size, CUDA over CPU where both ran."""
    table = Table(
        "Scoring engines: rows/s per batch size",
        ["model", "engine", *[f"b={b}" for b in rates.sizes]],
    )
    for (model, engine), cells in rates.rows.items():
        table.add(model, engine, *[rate(c) for c in cells])
    models = sorted({m for m, _ in rates.rows})
    for model in models:
        cpu = rates.rows.get((model, "ORT CPU 1t"))
        gpu = rates.rows.get((model, "ORT CUDA"))
        if cpu is None:
            continue
        if gpu is None:
            table.add(model, "ORT CUDA", *["-" for _ in rates.sizes])
            continue
        ratios = [f"{g / c:.1f}x" if g and c else "-" for g, c in zip(gpu, cpu, strict=True)]
        table.add(model, "CUDA / CPU 1t", *ratios)
    table.note(f"GPU: {rates.cuda}")
    if stream_batch is not None:
        table.note(f"the pipeline run scored batches of {stream_batch:.0f} rows on average")
    table.note("weights are random; ORT sessions as the worker builds them (models.serving)")
    return table
