"""What a demo run is: the stream it plays, how fast, and the knobs of its processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def default_drift(days: int) -> tuple[str, ...]:
    """The scripted change of a simulated demo: a new fraud pattern halfway through.

    Examples
    --------
    >>> default_drift(30)
    ('new-pattern@day=15,customers=6',)
    >>> default_drift(1)
    ()
    """
    if days < 2:
        return ()
    return (f"new-pattern@day={days // 2},customers=6",)


def default_train_days(days: int) -> int:
    """Days at the start of the stream the first model is trained on.

    Examples
    --------
    >>> default_train_days(30), default_train_days(3), default_train_days(1)
    (10, 1, 1)
    """
    return max(1, days // 3)


@dataclass(frozen=True)
class DemoConfig:
    """Everything a demo run needs besides the broker settings.

    Parameters
    ----------
    days
        Event days played (the simulated stream's length, or the first days of ``file``).
    file
        A transactions file to replay instead of the simulated stream.
    customers, terminals, seed
        Size and seed of the simulated world.
    drifts
        Scripted changes of the simulated stream (``KIND@day=N,...``); None: the
        default (:func:`default_drift`).
    train_days
        Days the first model is trained on (None: :func:`default_train_days`).
    rate
        Transactions published per wall second.
    label_delay
        When each label is published after its transaction (a delay spec).
    bad_every
        One malformed message per this many transactions (0: none), to show the
        dead-letter path.
    out_dir
        Where ``demo-<timestamp>/`` reports go.
    headless
        Print status lines instead of the live dashboard.
    trainer_every_days, trainer_window_days, trainer_eval_days, trainer_epochs
        The batch trainer's schedule and training knobs during the demo.
    """

    days: int = 30
    file: Path | None = None
    customers: int = 1500
    terminals: int = 3000
    seed: int = 0
    drifts: tuple[str, ...] | None = None
    train_days: int | None = None
    rate: float = 700.0
    label_delay: str = "2d"
    bad_every: int = 1000
    out_dir: Path = Path("reports")
    headless: bool = False
    trainer_every_days: float = 4.0
    trainer_window_days: float = 14.0
    trainer_eval_days: float = 3.0
    trainer_epochs: int = 15
    refresh_s: float = 0.5
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.bad_every < 0:
            raise ValueError("bad_every must be >= 0")

    @property
    def drift_specs(self) -> tuple[str, ...]:
        """The scripted drifts of the simulated stream (none for a replayed file)."""
        if self.file is not None:
            return ()
        return default_drift(self.days) if self.drifts is None else self.drifts

    @property
    def first_model_days(self) -> int:
        """Days the first model is trained on."""
        return default_train_days(self.days) if self.train_days is None else self.train_days

    def first_model_env(self) -> dict[str, str]:
        """Training settings of the first model: its last quarter is held out.

        Examples
        --------
        >>> DemoConfig(days=3).first_model_env()["STREAMSCORE_TRAINER__EVAL_DAYS"]
        '0.25'
        """
        return {"STREAMSCORE_TRAINER__EVAL_DAYS": f"{self.first_model_days / 4:g}"}

    def process_env(self) -> dict[str, str]:
        """Environment of the demo's processes (trainer schedule, metric snapshots...)."""
        env = {
            "STREAMSCORE_TRAINER__SCHEDULE": "event_time",
            "STREAMSCORE_TRAINER__EVERY_DAYS": str(self.trainer_every_days),
            "STREAMSCORE_TRAINER__WINDOW_DAYS": str(self.trainer_window_days),
            "STREAMSCORE_TRAINER__EVAL_DAYS": str(self.trainer_eval_days),
            "STREAMSCORE_TRAINER__EPOCHS": str(self.trainer_epochs),
            "STREAMSCORE_TRAINER__MIN_EXAMPLES": "200",
            "STREAMSCORE_PROMOTION__MIN_LABELS": "1500",
            "STREAMSCORE_PROMOTION__MIN_POSITIVES": "15",
            "STREAMSCORE_METRICS__PORT": "0",
            "STREAMSCORE_METRICS__SNAPSHOT_INTERVAL_S": "2",
            "STREAMSCORE_LEARNER__SNAPSHOT_INTERVAL_S": "3",
        }
        env.update(self.extra_env)
        return env
