"""Logging set-up: JSON lines on stderr, configured once at start-up.

Context that every line should carry (model version, partition) lives in
contextvars; :class:`ContextFilter` copies it onto each record.
"""

from __future__ import annotations

import contextvars
import logging
import sys

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
