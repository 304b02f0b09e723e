"""Plain values that move between the Kafka edge and the pure pipeline core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka message, as the core sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """One message to produce.

    ``partition`` None lets the key decide; ``value`` None is a tombstone.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One changelog entry of a state table: ``value`` None deletes ``key``."""

    table: str
    partition: int
    key: str
    value: Any
