"""Build dead-letter outputs: the reason, the stage and the original bytes."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.codec import EventDecodeError, Reason, b64, encode
from streams.events import DeadLetter, Stage
from streams.records import Output, Record


def dead_letter(
    record: Record,
    stage: Stage,
    reason: Reason,
    error: str,
    *,
    transaction_id: str | None = None,
    schema_version: int | None = None,
) -> DeadLetter:
    """A :class:`DeadLetter` for ``record``."""
    return DeadLetter(
        stage=stage,
        reason=reason.value,
        error=error[:2048],
        source_topic=record.topic[:64],
        source_partition=record.partition,
        source_offset=record.offset,
        source_schema_version=schema_version,
        transaction_id=None if transaction_id is None else transaction_id[:64],
        original_key=b64(record.key),
        original=b64(record.value) or "",
        failed_time=datetime.now(UTC),
    )


def from_decode_error(record: Record, exc: EventDecodeError) -> DeadLetter:
    """A dead letter for bytes that failed to decode or validate."""
    return dead_letter(
        record,
        exc.stage,
        exc.reason,
        exc.detail,
        transaction_id=exc.transaction_id,
        schema_version=exc.schema_version,
    )


def to_output(letter: DeadLetter, topic: str, key: bytes | None) -> Output:
    """The message that carries ``letter`` to the dead-letter topic."""
    return Output(topic=topic, key=key, value=encode(letter))
