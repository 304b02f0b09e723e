"""Child processes that never outlive their parent."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def bind_to_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGKILL this process when its parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died between fork and prctl
        os._exit(1)


def spawn(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` as a child bound to this process (Linux: dies with it).

    The child gets a process group of its own: Ctrl-C in a terminal reaches the
    parent only, which then stops its children in order (workers before the broker
    they talk to) instead of all of them dying at once.
    """
    return subprocess.Popen(
        list(cmd),
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        preexec_fn=bind_to_parent if sys.platform == "linux" else None,
        close_fds=True,
        process_group=0,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Signal ``proc``, wait up to ``timeout`` seconds, then SIGKILL; return its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
