"""Events round-trip through the codec; malformed bytes raise one typed error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import MAX_MESSAGE_BYTES, EventDecodeError, Reason, decode, encode
from streams.events import (
    EVENT_TYPES,
    DeadLetter,
    Decision,
    DriftEvent,
    DriftKind,
    EnrichedTransaction,
    FeatureVector,
    Label,
    LabeledExample,
    MetricFamily,
    MetricSample,
    MetricsSnapshot,
    ModelUpdate,
    ModelUpdateAction,
    Prediction,
    Stage,
    Transaction,
    Watermark,
)

ids = st.from_regex(r"\A[A-Za-z0-9_.:\-]{1,64}\Z")
# hypothesis takes naive bounds and attaches the zones itself.
aware = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
probability = st.floats(min_value=0.0, max_value=1.0)
short = st.text(max_size=64)

transactions = st.builds(
    Transaction,
    transaction_id=ids,
    event_time=aware,
    customer_id=ids,
    terminal_id=ids,
    amount=st.floats(min_value=0, max_value=1_000_000),
    currency=st.from_regex(r"\A[A-Z]{3}\Z"),
    merchant_category=st.none() | st.from_regex(r"\A[0-9]{4}\Z"),
    country=st.none() | st.from_regex(r"\A[A-Z]{2}\Z"),
    sequence=st.none() | st.integers(min_value=0, max_value=2**53),
)
labels = st.builds(
    lambda tx_time, delay, **kw: Label(transaction_time=tx_time, label_time=tx_time + delay, **kw),
    tx_time=aware.filter(lambda d: d.year < 2099),
    delay=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
    transaction_id=ids,
    customer_id=ids,
    terminal_id=ids,
    is_fraud=st.booleans(),
)
predictions = st.builds(
    Prediction,
    transaction_id=ids,
    customer_id=ids,
    terminal_id=ids,
    score=probability,
    deep_score=st.none() | probability,
    online_score=st.none() | probability,
    decision=st.sampled_from(Decision),
    model_versions=st.dictionaries(short, short, max_size=4),
    reason_codes=st.lists(short, max_size=16),
    event_time=aware,
    scored_time=aware,
)
dead_letters = st.builds(
    DeadLetter,
    stage=st.sampled_from(Stage),
    reason=st.sampled_from([r.value for r in Reason]),
    error=st.text(max_size=2048),
    source_topic=short,
    source_partition=st.integers(min_value=0, max_value=10_000),
    source_offset=st.integers(min_value=0, max_value=2**62),
    original=st.binary(max_size=256).map(lambda b: __import__("base64").b64encode(b).decode()),
    failed_time=aware,
)
drift_events = st.builds(
    DriftEvent,
    detector=short,
    kind=st.sampled_from(DriftKind),
    statistic=finite,
    event_time=aware,
    detected_time=aware,
    actions=st.lists(short, max_size=3),
)
model_updates = st.builds(
    ModelUpdate,
    model_name=short,
    action=st.sampled_from(ModelUpdateAction),
    version=st.none() | short,
    manifest=st.none()
    | st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=5),
    issued_time=aware,
)

watermarks = st.builds(
    Watermark, source_partition=st.integers(min_value=0, max_value=10_000), event_time=aware
)
enriched = st.builds(
    EnrichedTransaction,
    transaction=transactions,
    customer_features=st.lists(finite, max_size=64),
    source_partition=st.integers(min_value=0, max_value=10_000),
    source_offset=st.integers(min_value=0, max_value=2**62),
    ingest_time=aware,
)
feature_vectors = st.builds(
    FeatureVector,
    transaction_id=ids,
    customer_id=ids,
    terminal_id=ids,
    event_time=aware,
    feature_set=short,
    values=st.lists(finite, max_size=32),
)
labeled_examples = st.builds(
    LabeledExample,
    transaction_id=ids,
    customer_id=ids,
    terminal_id=ids,
    event_time=aware,
    label_time=aware,
    is_fraud=st.booleans(),
    feature_set=short,
    values=st.lists(finite, max_size=32),
    score=st.none() | probability,
    model_versions=st.dictionaries(short, short, max_size=4),
)
metric_samples = st.builds(
    MetricSample,
    name=short,
    labels=st.dictionaries(short, st.text(max_size=256), max_size=16),
    value=finite,
)
metrics_snapshots = st.builds(
    MetricsSnapshot,
    process=short,
    instance=short,
    taken_time=aware,
    part=st.integers(min_value=0, max_value=100),
    parts=st.integers(min_value=1, max_value=101),
    families=st.lists(
        st.builds(
            MetricFamily,
            name=short,
            kind=st.sampled_from(["counter", "gauge", "histogram", "info", "unknown"]),
            samples=st.lists(metric_samples, max_size=5),
        ),
        max_size=4,
    ),
)

ALL = {
    Transaction: transactions,
    Label: labels,
    Prediction: predictions,
    DeadLetter: dead_letters,
    DriftEvent: drift_events,
    ModelUpdate: model_updates,
    Watermark: watermarks,
    EnrichedTransaction: enriched,
    FeatureVector: feature_vectors,
    LabeledExample: labeled_examples,
    MetricsSnapshot: metrics_snapshots,
}


def test_every_event_type_has_a_round_trip_strategy() -> None:
    assert set(ALL) == set(EVENT_TYPES.values())


@pytest.mark.parametrize("cls", list(ALL), ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_event_round_trips_through_the_codec(cls: type, data: st.DataObject) -> None:
    event = data.draw(ALL[cls])
    raw = encode(event)
    assert isinstance(raw, bytes)
    json.loads(raw.decode("utf-8"))  # valid UTF-8 JSON
    assert decode(cls, raw) == event


def _tx(**over: object) -> bytes:
    base: dict[str, object] = {
        "schema_version": 1,
        "transaction_id": "42",
        "event_time": "2018-04-01T00:00:31+00:00",
        "customer_id": "7",
        "terminal_id": "9",
        "amount": 12.5,
    }
    base.update(over)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("raw", "stage", "reason"),
    [
        (b"\xff\xfe{}", Stage.DECODE, Reason.INVALID_UTF8),
        (b'{"transaction_id": ', Stage.DECODE, Reason.INVALID_JSON),
        (b"[1, 2]", Stage.DECODE, Reason.NOT_AN_OBJECT),
        (b"x" * (MAX_MESSAGE_BYTES + 1), Stage.DECODE, Reason.OVERSIZED),
        (_tx(amount=...), Stage.VALIDATE, Reason.MISSING_FIELD),
        (_tx(extra="field"), Stage.VALIDATE, Reason.EXTRA_FIELD),
        (_tx(amount="12.5"), Stage.VALIDATE, Reason.WRONG_TYPE),
        (_tx(customer_id=7), Stage.VALIDATE, Reason.WRONG_TYPE),
        (_tx(amount=-1.0), Stage.VALIDATE, Reason.OUT_OF_RANGE),
        (_tx(schema_version=2), Stage.VALIDATE, Reason.UNKNOWN_SCHEMA_VERSION),
        (_tx(schema_version="1"), Stage.VALIDATE, Reason.UNKNOWN_SCHEMA_VERSION),
        (_tx(event_time="2018-04-01T00:00:31"), Stage.VALIDATE, Reason.INVALID_VALUE),
        (_tx(event_time="yesterday"), Stage.VALIDATE, Reason.WRONG_TYPE),
        (_tx(transaction_id="x" * 65), Stage.VALIDATE, Reason.OVERSIZED_FIELD),
        (_tx(transaction_id="a b"), Stage.VALIDATE, Reason.INVALID_VALUE),
        (_tx(channel="carrier-pigeon"), Stage.VALIDATE, Reason.INVALID_VALUE),
        (_tx().replace(b"12.5", b"NaN"), Stage.VALIDATE, Reason.NON_FINITE),
        (_tx().replace(b"12.5", b"Infinity"), Stage.VALIDATE, Reason.NON_FINITE),
        (_tx().replace(b"12.5", b"1e400"), Stage.VALIDATE, Reason.NON_FINITE),
    ],
)
def test_malformed_bytes_raise_one_typed_error(raw: bytes, stage: Stage, reason: Reason) -> None:
    with pytest.raises(EventDecodeError) as info:
        decode(Transaction, raw)
    assert (info.value.stage, info.value.reason) == (stage, reason), str(info.value)


def test_decode_error_keeps_the_transaction_id_for_accounting() -> None:
    with pytest.raises(EventDecodeError) as info:
        decode(Transaction, _tx(amount=-5.0))
    assert info.value.transaction_id == "42"
    assert info.value.schema_version == 1


def test_label_cannot_precede_its_transaction() -> None:
    t = datetime(2018, 4, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="earlier than"):
        Label(
            transaction_id="1",
            customer_id="2",
            terminal_id="3",
            is_fraud=True,
            transaction_time=t,
            label_time=t - timedelta(seconds=1),
        )


def test_events_are_frozen() -> None:
    tx = decode(Transaction, _tx())
    with pytest.raises(ValueError):
        tx.amount = 3.0  # type: ignore[misc]
