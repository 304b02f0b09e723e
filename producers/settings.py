"""Settings of the producers: replay and the synthetic generator.

Env prefix ``STREAMSCORE_``, sections nested with ``__``
(e.g. ``STREAMSCORE_REPLAY__LABEL_DELAY=7d``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Section(BaseModel):
    """Base of settings sections: field docstrings become descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid", frozen=True)


class ReplaySettings(Section):
    """Defaults of `streamscore replay` and the commands that replay files."""

    label_delay: str = "7d"
    """Delay between a transaction and its label in event time: a duration (`7d`, `36h`),
    a range (`1d..14d`), an exponential (`exp:2d`) or a sum (`5d+exp:1d`)."""
    linger_ms: int = Field(default=20, ge=0)
    """Producer linger: how long a batch may wait to fill up."""
    handbook_dir: Path = Path("../shared/data/handbook")
    """Directory of the handbook benchmark files (transactions and reference features)."""


class ProducersSettings(BaseSettings):
    """Settings of the producers (env prefix `STREAMSCORE_`)."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMSCORE_",
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )

    replay: ReplaySettings = ReplaySettings()
    """Replay of transaction files."""
