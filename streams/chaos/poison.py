"""Poison records: every kind of bad input, each with the dead-letter reason it must get.

Most kinds fail at decoding or validation; ``duplicate`` (a valid transaction sent
again at a new offset) and ``too_late`` (valid, but far behind its partition's
event-time watermark) pass validation and fail at the cleaning stage. Three kinds are
bad labels, dead-lettered by the terminal stage. Poison transactions that pass
validation use customers and terminals of their own, so that were one wrongly
accepted it could not disturb the features of valid ones.

Examples
--------
>>> from streams.codec import decode, EventDecodeError
>>> from streams.events import Transaction
>>> import pandas as pd
>>> p = poison_record("non_finite", 0, 7, 1_522_540_800_000, pd.Timestamp("2018-04-01", tz="UTC"))
>>> p.expected, p.role
('non_finite_number', 'transactions')
>>> try:
...     decode(Transaction, p.value)
... except EventDecodeError as exc:
...     exc.reason.value
'non_finite_number'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from streams.chaos.plan import Planned
from streams.codec import MAX_MESSAGE_BYTES, Reason

_T = "transactions"
_L = "labels"


def _tx(ident: str, when: datetime, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": ident,
        "event_time": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "customer_id": f"{ident}-c",
        "terminal_id": f"{ident}-t",
        "amount": 12.5,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


def _label(ident: str, when: datetime, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": ident,
        "customer_id": f"{ident}-c",
        "terminal_id": f"{ident}-t",
        "is_fraud": False,
        "transaction_time": (when - timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "label_time": when.isoformat().replace("+00:00", "Z"),
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()


def _js(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


#: kind -> (topic role, dead-letter reason, builder of the value from (id, event time)).
_KINDS: dict[str, tuple[str, Reason, Callable[[str, datetime], bytes | None]]] = {
    "invalid_utf8": (_T, Reason.INVALID_UTF8, lambda i, t: b"\xff\xfe\x00" + i.encode()),
    "invalid_json": (_T, Reason.INVALID_JSON, lambda i, t: b'{"transaction_id": "' + i.encode()),
    "empty": (_T, Reason.INVALID_JSON, lambda i, t: b""),
    "null_value": (_T, Reason.INVALID_JSON, lambda i, t: None),
    "utf8_bom": (_T, Reason.INVALID_JSON, lambda i, t: b"\xef\xbb\xbf" + _js(_tx(i, t))),
    "deep_nesting": (_T, Reason.INVALID_JSON, lambda i, t: b"[" * 3000 + b"]" * 3000),
    "not_an_object": (_T, Reason.NOT_AN_OBJECT, lambda i, t: b'["' + i.encode() + b'", 1]'),
    "unknown_schema_version": (
        _T,
        Reason.UNKNOWN_SCHEMA_VERSION,
        lambda i, t: _js(_tx(i, t, schema_version=9)),
    ),
    "missing_field": (_T, Reason.MISSING_FIELD, lambda i, t: _js(_tx(i, t, amount=_DROP))),
    "extra_field": (_T, Reason.EXTRA_FIELD, lambda i, t: _js(_tx(i, t, note="hello"))),
    "wrong_type": (_T, Reason.WRONG_TYPE, lambda i, t: _js(_tx(i, t, amount="12.5"))),
    "numeric_id": (_T, Reason.WRONG_TYPE, lambda i, t: _js(_tx(i, t, transaction_id=123))),
    "bool_amount": (_T, Reason.WRONG_TYPE, lambda i, t: _js(_tx(i, t, amount=True))),
    "bad_time": (_T, Reason.WRONG_TYPE, lambda i, t: _js(_tx(i, t, event_time="yesterday"))),
    "naive_time": (
        _T,
        Reason.INVALID_VALUE,
        lambda i, t: _js(_tx(i, t, event_time=t.replace(tzinfo=None).isoformat())),
    ),
    "non_finite": (
        _T,
        Reason.NON_FINITE,
        lambda i, t: _js(_tx(i, t)).replace(b"12.5", b"NaN"),
    ),
    "negative_amount": (_T, Reason.OUT_OF_RANGE, lambda i, t: _js(_tx(i, t, amount=-3.0))),
    "huge_amount": (_T, Reason.OUT_OF_RANGE, lambda i, t: _js(_tx(i, t, amount=1e7))),
    "oversized_field": (
        _T,
        Reason.OVERSIZED_FIELD,
        lambda i, t: _js(_tx(i, t, customer_id="c" * 100)),
    ),
    "oversized": (
        _T,
        Reason.OVERSIZED,
        lambda i, t: _js(_tx(i, t)) + b" " * (MAX_MESSAGE_BYTES + 100),
    ),
    "bad_id": (_T, Reason.INVALID_VALUE, lambda i, t: _js(_tx(i, t, transaction_id=f"{i} x"))),
    "bad_currency": (_T, Reason.INVALID_VALUE, lambda i, t: _js(_tx(i, t, currency="eur"))),
    "too_late": (_T, Reason.TOO_LATE, lambda i, t: _js(_tx(i, t - timedelta(days=30)))),
    "label_invalid_json": (_L, Reason.INVALID_JSON, lambda i, t: b'{"is_fraud": tru'),
    "label_missing_field": (
        _L,
        Reason.MISSING_FIELD,
        lambda i, t: _js(_label(i, t, is_fraud=_DROP)),
    ),
    "label_before_transaction": (
        _L,
        Reason.INVALID_VALUE,
        lambda i, t: _js(_label(i, t, label_time="2000-01-01T00:00:00Z")),
    ),
}

#: Every poison kind (``duplicate`` copies a valid transaction already published).
POISON_KINDS: tuple[str, ...] = (*_KINDS, "duplicate")


def poison_record(
    kind: str,
    k: int,
    seed: int,
    timestamp_ms: int,
    first_time: pd.Timestamp,
    original: Planned | None = None,
) -> Planned:
    """The ``k``-th poison record of a run, of ``kind``, published at ``timestamp_ms``.

    ``too_late`` gets an event time 30 days before the record it is published next
    to (its partition's watermark is then far ahead); ``first_time`` bounds it so it
    stays a plausible date.
    """
    ident = f"poison-{seed}-{k}"
    if kind == "duplicate" and original is not None:
        return Planned(
            -1,
            original.role,
            original.key,
            original.value,
            timestamp_ms,
            original.ident,
            "duplicate",
            customer=original.customer,
            expected=Reason.DUPLICATE.value,
        )
    if kind == "duplicate":  # nothing valid published yet: a malformed record instead
        kind = "invalid_json"
    role, reason, build = _KINDS[kind]
    when = max(datetime.fromtimestamp(timestamp_ms / 1000, UTC), first_time.to_pydatetime())
    return Planned(
        -1,
        role,
        f"{ident}-c".encode() if role == _T else f"{ident}-t".encode(),
        build(ident, when),
        timestamp_ms,
        ident,
        kind,
        expected=reason.value,
    )
