"""Logging set-up: JSON lines on stderr, configured once at start-up.

Context that every line should carry (model version, partition) lives in
contextvars; :class:`ContextFilter` copies it onto each record.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable

from pythonjsonlogger.json import JsonFormatter

#: Fields added to every log record while set (e.g. ``{"model_version": "v3"}``).
log_context: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "log_context", default=None
)


class ContextFilter(logging.Filter):
    """Copy :data:`log_context` onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (log_context.get() or {}).items():
            setattr(record, key, value)
        return True


def configure(level: str = "INFO", json_logs: bool = True) -> None:
    """Configure the root logger once (idempotent)."""
    root = logging.getLogger()
    if getattr(root, "_streamscore_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ContextFilter())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Faust/aiokafka are chatty at INFO; their warnings still come through.
    for noisy in ("aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    root._streamscore_configured = True  # type: ignore[attr-defined]


class Summarized:
    """Log a frequent event at most once per ``every_s``, with what happened since.

    For events that can fire several times a second (drift firings while windows fill
    from a cold start): the first one logs at once; later ones within ``every_s`` are
    counted and reported with the next line that does log (``since_last``: counts by
    key of what was not logged). Nothing is lost from the event's own channels
    (topics, metrics); only the log line is summarized.
    """

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: float | None = None
        self._unlogged: Counter[str] = Counter()

    def due(self, keys: Iterable[str]) -> dict[str, int] | None:
        """Count one event; return the counts to log with it, or None to skip the line.

        The counts are those of the events not logged since the last line, this one
        included.
        """
        self._unlogged.update(keys)
        now = self._clock()
        if self._last is not None and now - self._last < self.every_s:
            return None
        self._last = now
        counts, self._unlogged = dict(self._unlogged), Counter()
        return counts
