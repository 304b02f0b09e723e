"""The one place events become bytes and bytes become events.

Wire format: UTF-8 JSON, one event per message; keys are UTF-8 strings. Anything
that cannot become a valid event raises :class:`EventDecodeError`, which carries the
stage and a reason code from :class:`Reason` so the caller can route it to the
dead-letter topic.

Examples
--------
>>> from datetime import datetime, timezone
>>> from streams.events import Transaction
>>> tx = Transaction(transaction_id="1", customer_id="7", terminal_id="9", amount=12.5,
...                  event_time=datetime(2018, 4, 1, tzinfo=timezone.utc))
>>> decode(Transaction, encode(tx)) == tx
True
>>> decode(Transaction, b'{"transaction_id": 1')
Traceback (most recent call last):
...
streams.codec.EventDecodeError: decode/invalid_json: ...
"""

from __future__ import annotations

import base64
import enum
import json
from typing import TypeVar

from pydantic import ValidationError

from streams.events import SCHEMA_VERSION, Event, Stage

E = TypeVar("E", bound=Event)

#: Messages above this size are rejected before parsing (bytes).
MAX_MESSAGE_BYTES = 64 * 1024


class Reason(enum.StrEnum):
    """Reason codes of dead letters: a fixed set, documented in the README."""

    OVERSIZED = "oversized_message"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    MISSING_FIELD = "missing_field"
    EXTRA_FIELD = "extra_field"
    WRONG_TYPE = "wrong_type"
    NON_FINITE = "non_finite_number"
    OUT_OF_RANGE = "out_of_range"
    OVERSIZED_FIELD = "oversized_field"
    INVALID_VALUE = "invalid_value"
    DUPLICATE = "duplicate_transaction"
    TOO_LATE = "too_late"
    FEATURE_ERROR = "feature_error"
    SCORING_ERROR = "scoring_error"
    NON_FINITE_SCORE = "non_finite_score"
    INTERNAL_ERROR = "internal_error"


class EventDecodeError(ValueError):
    """Bytes that are not a valid event of the expected type."""

    def __init__(
        self,
        stage: Stage,
        reason: Reason,
        detail: str,
        *,
        schema_version: int | None = None,
        transaction_id: str | None = None,
    ) -> None:
        super().__init__(f"{stage.value}/{reason.value}: {detail}")
        self.stage = stage
        self.reason = reason
        self.detail = detail
        self.schema_version = schema_version
        self.transaction_id = transaction_id


def encode(event: Event) -> bytes:
    """Serialize an event to UTF-8 JSON bytes."""
    return event.model_dump_json().encode("utf-8")


def encode_key(key: str | None) -> bytes | None:
    """Serialize a message key (UTF-8)."""
    return None if key is None else key.encode("utf-8")


def decode(cls: type[E], data: bytes | bytearray | memoryview | None) -> E:
    """Parse and validate bytes as an event of type ``cls`` (strict: no coercion).

    Raises
    ------
    EventDecodeError
        With stage ``decode`` (size, UTF-8, JSON syntax) or ``validate`` (schema).
    """
    if data is None:
        raise EventDecodeError(Stage.DECODE, Reason.INVALID_JSON, "message has no value")
    raw = bytes(data)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EventDecodeError(
            Stage.DECODE, Reason.OVERSIZED, f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}"
        )
    try:
        return cls.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise _decode_error(raw, exc) from None
    except UnicodeDecodeError as exc:  # pragma: no cover - pydantic reports it itself
        raise EventDecodeError(Stage.DECODE, Reason.INVALID_UTF8, str(exc)) from None


def _decode_error(raw: bytes, exc: ValidationError) -> EventDecodeError:
    """Classify a failed parse; only runs on the error path, so it may be slow."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return EventDecodeError(Stage.DECODE, Reason.INVALID_UTF8, str(err))
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as err:
        return EventDecodeError(Stage.DECODE, Reason.INVALID_JSON, str(err)[:2048])
    if not isinstance(obj, dict):
        return EventDecodeError(
            Stage.DECODE, Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}"
        )
    version = obj.get("schema_version", SCHEMA_VERSION)
    tx_id = obj.get("transaction_id")
    tx_id_str = str(tx_id)[:64] if isinstance(tx_id, str | int) else None
    version_int = version if type(version) is int else None
    if version != SCHEMA_VERSION or type(version) is not int:
        reason = Reason.UNKNOWN_SCHEMA_VERSION
        detail = f"schema_version {version!r} is not {SCHEMA_VERSION}"
    else:
        reason, detail = _reason_of(exc), _summarize(exc)
    return EventDecodeError(
        Stage.VALIDATE, reason, detail, schema_version=version_int, transaction_id=tx_id_str
    )


def b64(data: bytes | None) -> str | None:
    """Base64 text of raw bytes (for dead letters)."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def _reason_of(exc: ValidationError) -> Reason:
    """Map pydantic's first error to one of our reason codes."""
    kind = exc.errors(include_url=False)[0]["type"]
    if kind == "missing":
        return Reason.MISSING_FIELD
    if kind == "extra_forbidden":
        return Reason.EXTRA_FIELD
    if kind == "finite_number":
        return Reason.NON_FINITE
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return Reason.OUT_OF_RANGE
    if kind.endswith("_too_long") or kind == "too_long":
        return Reason.OVERSIZED_FIELD
    if kind.endswith(("_type", "_parsing")):
        return Reason.WRONG_TYPE
    return Reason.INVALID_VALUE


def _summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']} [{err['type']}]")
    return "; ".join(parts)[:2048]
