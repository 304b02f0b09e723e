"""Events on the wire: the pydantic models every topic carries.

Every event is frozen, forbids unknown fields, carries a ``schema_version``, uses
timezone-aware timestamps and rejects NaN and infinity. They are serialized in one
place, :mod:`streams.codec`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

SCHEMA_VERSION: Literal[1] = 1

#: Identifiers are strings on the wire (Kafka keys are strings); numeric source ids
#: are written in their decimal form.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
]
ShortText = Annotated[str, StringConstraints(max_length=64)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Event(BaseModel):
    """Base of every event: frozen, strict about fields, finite numbers only."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        use_attribute_docstrings=True,
        str_strip_whitespace=False,
    )

    #: The topic-level name of the event, used by the JSON Schema exporter.
    event_name: ClassVar[str] = "event"

    schema_version: Literal[1] = SCHEMA_VERSION
    """Version of this event's schema; a consumer rejects versions it does not know."""


class Channel(enum.StrEnum):
    """How the card was presented."""

    POS = "pos"
    ECOM = "ecom"
    ATM = "atm"
    MOTO = "moto"


class Transaction(Event):
    """A card transaction as the card network reports it, keyed by ``customer_id``."""

    event_name: ClassVar[str] = "transaction"

    transaction_id: Identifier
    """Unique id of the transaction (the source id, decimal if it was numeric)."""
    event_time: AwareDatetime
    """When the transaction happened (event time: drives every window)."""
    customer_id: Identifier
    """The card holder (the Kafka key of the `transactions` topic)."""
    terminal_id: Identifier
    """The terminal (merchant device) that took the payment."""
    amount: Annotated[float, Field(ge=0.0, le=1_000_000.0)]
    """Amount in `currency`; negative or non-finite amounts are rejected."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "EUR"
    """ISO 4217 currency code."""
    channel: Channel | None = None
    """How the card was presented, when the network says."""
    merchant_category: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] | None = None
    """ISO 18245 merchant category code (MCC), when known."""
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    """ISO 3166-1 alpha-2 country of the terminal, when known."""
    sequence: Annotated[int, Field(ge=0)] | None = None
    """Per-customer sequence number set by producers that number their events."""


class Label(Event):
    """The delayed truth about a transaction, keyed by ``terminal_id``."""

    event_name: ClassVar[str] = "label"

    transaction_id: Identifier
    """The transaction this label is about."""
    customer_id: Identifier
    """The transaction's customer."""
    terminal_id: Identifier
    """The transaction's terminal (the Kafka key of the `labels` topic)."""
    is_fraud: bool
    """True when the transaction was fraudulent."""
    transaction_time: AwareDatetime
    """Event time of the labelled transaction."""
    label_time: AwareDatetime
    """When the label became known (event time of the label)."""

    @field_validator("label_time")
    @classmethod
    def _not_before_transaction(cls, value: datetime, info: Any) -> datetime:
        tx_time = info.data.get("transaction_time")
        if tx_time is not None and value < tx_time:
            raise ValueError("label_time is earlier than transaction_time")
        return value


class Decision(enum.StrEnum):
    """What the system recommends for a transaction."""

    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class Prediction(Event):
    """The system's verdict on one transaction, keyed by ``transaction_id``."""

    event_name: ClassVar[str] = "prediction"

    transaction_id: Identifier
    """The scored transaction."""
    customer_id: Identifier
    """The transaction's customer."""
    terminal_id: Identifier
    """The transaction's terminal."""
    score: Probability
    """Blended probability of fraud, the one decisions use."""
    deep_score: Probability | None = None
    """Score of the deep (ONNX) model, if it scored this transaction."""
    online_score: Probability | None = None
    """Score of the online (River) model, if it scored this transaction."""
    challenger_score: Probability | None = None
    """Score of a challenger model in shadow (recorded, never used for decisions)."""
    decision: Decision
    """Approve, review or decline, from the configured thresholds."""
    model_versions: dict[ShortText, ShortText]
    """Version of every model that contributed, by role (`deep`, `online`, `blend`...)."""
    reason_codes: Annotated[list[ShortText], Field(max_length=16)] = []
    """Features that pushed the score up most, strongest first."""
    event_time: AwareDatetime
    """Event time of the transaction."""
    scored_time: AwareDatetime
    """Wall-clock time the score was computed."""


class Stage(enum.StrEnum):
    """Where in the pipeline an event failed."""

    DECODE = "decode"
    VALIDATE = "validate"
    CLEAN = "clean"
    FEATURIZE = "featurize"
    SCORE = "score"
    LEARN = "learn"


class DeadLetter(Event):
    """An input that could not be processed, with everything needed to replay it."""

    event_name: ClassVar[str] = "dead_letter"

    stage: Stage
    """The stage that rejected the input."""
    reason: ShortText
    """A reason code from the fixed set in :mod:`streams.errors`."""
    error: Annotated[str, StringConstraints(max_length=2048)]
    """Human-readable detail (truncated)."""
    source_topic: ShortText
    """Topic the input was read from."""
    source_partition: Annotated[int, Field(ge=0)]
    """Partition the input was read from."""
    source_offset: Annotated[int, Field(ge=0)]
    """Offset of the input in that partition."""
    source_schema_version: int | None = None
    """The input's schema_version, when it could be read."""
    transaction_id: ShortText | None = None
    """The input's transaction id, when it could be read (for accounting)."""
    original_key: str | None = None
    """The input's Kafka key, base64."""
    original: str
    """The input's original bytes, base64."""
    failed_time: AwareDatetime
    """Wall-clock time of the failure."""


class DriftKind(enum.StrEnum):
    """What a drift detector watches."""

    ERROR = "error"
    SCORE = "score"
    FEATURE = "feature"


class DriftEvent(Event):
    """A drift detector fired."""

    event_name: ClassVar[str] = "drift_event"

    detector: ShortText
    """Detector type (e.g. `ADWIN`, `PageHinkley`, `KSWIN`)."""
    kind: DriftKind
    """What the detector watches."""
    feature: ShortText | None = None
    """The feature, for per-feature detectors."""
    partition: Annotated[int, Field(ge=0)] | None = None
    """Partition whose stream fired, when the detector is per partition."""
    statistic: float
    """The detector's statistic when it fired (e.g. the estimated mean)."""
    event_time: AwareDatetime
    """Event time at which the drift was detected."""
    detected_time: AwareDatetime
    """Wall-clock time of detection."""
    actions: list[ShortText] = []
    """Actions taken (`alert`, `shift_blend`, `request_retrain`)."""
    model_versions: dict[ShortText, ShortText] = {}
    """Models in service when it fired."""


class ModelUpdateAction(enum.StrEnum):
    """What a model update asks workers to do."""

    PUBLISH = "publish"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    REJECT = "reject"
    RETRAIN_REQUEST = "retrain_request"


class ModelUpdate(Event):
    """A pointer to a model artifact and its signed manifest (never model bytes)."""

    event_name: ClassVar[str] = "model_update"

    model_name: ShortText
    """The model family, the compacted topic's key."""
    action: ModelUpdateAction
    """What workers should do with it."""
    version: ShortText | None = None
    """The model version concerned (absent for retrain requests)."""
    uri: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """Where the artifact directory lives (registry URI)."""
    manifest: dict[str, Any] | None = None
    """The artifact's manifest, as signed."""
    signature: Annotated[str, StringConstraints(max_length=512)] | None = None
    """Signature of the manifest (hex or base64, per the registry's scheme)."""
    reason: Annotated[str, StringConstraints(max_length=512)] | None = None
    """Why this update was issued (drift, schedule, operator...)."""
    issued_time: AwareDatetime
    """Wall-clock time the update was issued."""


class EnrichedTransaction(Event):
    """Internal: a valid transaction with its customer-side features, keyed by terminal.

    Carried on the `txn-by-terminal` repartition topic from the customer stage to the
    terminal stage.
    """

    event_name: ClassVar[str] = "enriched_transaction"

    transaction: Transaction
    """The validated, cleaned transaction."""
    customer_features: Annotated[list[float], Field(max_length=64)]
    """Customer-side features, in the feature set's order."""
    source_partition: Annotated[int, Field(ge=0)]
    """Partition of the `transactions` topic the transaction came from."""
    source_offset: Annotated[int, Field(ge=0)]
    """Its offset there."""
    ingest_time: AwareDatetime
    """Wall-clock time the customer stage read it (for latency accounting)."""


class Watermark(Event):
    """Internal: a source partition's progress in event time, sent in-band.

    The customer stage sends one to every `txn-by-terminal` partition after each
    batch: every transaction of ``source_partition`` with an event time up to
    ``event_time`` has been sent before it.
    """

    event_name: ClassVar[str] = "watermark"

    source_partition: Annotated[int, Field(ge=0)]
    """Partition of the `transactions` topic this watermark speaks for."""
    event_time: AwareDatetime
    """Every transaction of that partition up to this event time was sent before."""


class FeatureVector(Event):
    """The complete feature vector of one valid transaction, keyed by terminal."""

    event_name: ClassVar[str] = "feature_vector"

    transaction_id: Identifier
    """The transaction."""
    customer_id: Identifier
    """Its customer."""
    terminal_id: Identifier
    """Its terminal."""
    event_time: AwareDatetime
    """Its event time."""
    feature_set: ShortText
    """Name and version of the feature set (fixes names and order)."""
    values: Annotated[list[float], Field(max_length=256)]
    """Feature values in the feature set's order."""


class LabeledExample(Event):
    """A label joined with the features used when its transaction was scored."""

    event_name: ClassVar[str] = "labeled_example"

    transaction_id: Identifier
    """The transaction."""
    customer_id: Identifier
    """Its customer."""
    terminal_id: Identifier
    """Its terminal (the Kafka key)."""
    event_time: AwareDatetime
    """Event time of the transaction."""
    label_time: AwareDatetime
    """When the label became known."""
    is_fraud: bool
    """The label."""
    feature_set: ShortText
    """Name and version of the feature set."""
    values: Annotated[list[float], Field(max_length=256)]
    """Feature values used at scoring time."""
    score: Probability | None = None
    """Blended score given at scoring time."""
    deep_score: Probability | None = None
    """Deep model score at scoring time."""
    online_score: Probability | None = None
    """Online model score at scoring time."""
    model_versions: dict[ShortText, ShortText] = {}
    """Models that scored it."""


LabelValue = Annotated[str, StringConstraints(max_length=256)]


class MetricSample(Event):
    """One sample of a metric family, as Prometheus' text format would show it."""

    name: ShortText
    """Sample name: the family name plus a suffix where the type has one (`_total`,
    `_bucket`, `_sum`, `_count`, `_info`)."""
    labels: Annotated[dict[ShortText, LabelValue], Field(max_length=16)] = {}
    """Label names and values (a histogram bucket carries its bound as `le`)."""
    value: float
    """The sample's value (finite: samples that are NaN or infinite are left out)."""


class MetricFamily(Event):
    """Every sample of one metric at the time of a snapshot."""

    name: ShortText
    """Metric name, e.g. `streamscore_events_in_total` without the `_total`."""
    kind: Literal["counter", "gauge", "histogram", "summary", "info", "stateset", "unknown"]
    """Prometheus metric type."""
    samples: list[MetricSample] = []
    """Its samples."""


class MetricsSnapshot(Event):
    """A process's metric values at one moment, keyed by process name.

    A large registry is split over several messages that share ``taken_time``;
    ``part`` counts from 0 to ``parts - 1``.
    """

    event_name: ClassVar[str] = "metrics_snapshot"

    process: ShortText
    """Role of the process (`worker`, `learner`, `trainer`, `producer`)."""
    instance: ShortText
    """Which process: host name and process id."""
    taken_time: AwareDatetime
    """Wall-clock time the values were read."""
    part: Annotated[int, Field(ge=0)] = 0
    """Index of this message among those of one snapshot."""
    parts: Annotated[int, Field(ge=1)] = 1
    """Number of messages of this snapshot."""
    families: list[MetricFamily]
    """Metric families in this part."""


#: Every event type, by its name.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.event_name: cls
    for cls in (
        Transaction,
        Label,
        Prediction,
        DeadLetter,
        DriftEvent,
        ModelUpdate,
        EnrichedTransaction,
        Watermark,
        FeatureVector,
        LabeledExample,
        MetricsSnapshot,
    )
}
