"""The conditions of a benchmark run: date, machine, load, versions, settings."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from streams.settings import StreamsSettings

PACKAGES = (
    "streamscore",
    "faust-streaming",
    "aiokafka",
    "onnxruntime",
    "onnxruntime-gpu",
    "numpy",
    "pydantic",
    "river",
    "torch",
)


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> str:
    """Installed versions of the packages that decide the figures."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def git_commit(cwd: Path | None = None) -> str | None:
    """The checked-out commit (short) and whether the tree has changes, if in git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + (" (with local changes)" if dirty else "")


def gpu_name() -> str:
    """The GPU onnxruntime can use, or why there is none."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "none (no CUDA execution provider in this onnxruntime)"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "CUDA execution provider present, nvidia-smi unavailable"
    return out.replace("\n", ", ") or "CUDA execution provider present"


def conditions(settings: StreamsSettings, mode: str, broker: str) -> list[tuple[str, str]]:
    """What a reader needs to compare this run with another, as (name, value) pairs."""
    worker, topics = settings.worker, settings.topics
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("mode", mode),
        (
            "machine",
            f"{platform.node()}: {os.cpu_count()} CPUs ({cpu_model()}), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        ),
        ("load average at start (1, 5, 15 min)", load),
        ("GPU", gpu_name()),
        ("broker", broker),
        ("commit", git_commit() or "not a git checkout"),
        ("versions", versions()),
        (
            "settings",
            f"partitions={topics.partitions}, batch_size={worker.batch_size}, "
            f"label_wait_s={worker.label_wait_s}, emit_features={worker.emit_features}, "
            f"store={worker.store}, reason_codes={settings.scoring.reason_codes}",
        ),
    ]
