"""Event-time helpers: epoch seconds and the weekend and night flags.

Times inside the feature core are seconds since the Unix epoch (UTC) as floats;
whole seconds and microseconds are represented exactly enough that window edges
compare exactly. Flags are computed in UTC, the handbook's time zone.
"""

from __future__ import annotations

from datetime import datetime

from models.features.names import DAY_S

#: 1970-01-01 was a Thursday; Monday is weekday 0.
_EPOCH_WEEKDAY = 3
#: The night ends with the hour 06 (00:00-06:59 is night): seconds into the day.
_NIGHT_END_S = 7 * 3600


def epoch_seconds(when: datetime) -> float:
    """Return a timezone-aware datetime as float seconds since the epoch.

    Raises
    ------
    ValueError
        If ``when`` is naive: event time must say its time zone.

    Examples
    --------
    >>> from datetime import UTC
    >>> epoch_seconds(datetime(2018, 4, 1, 0, 0, 31, tzinfo=UTC))
    1522540831.0
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: event times must be timezone-aware")
    return when.timestamp()


def time_flags(when: float | datetime) -> tuple[float, float]:
    """Return ``(TX_DURING_WEEKEND, TX_DURING_NIGHT)`` for an event time.

    Parameters
    ----------
    when
        Seconds since the epoch, or a timezone-aware datetime.

    Returns
    -------
    tuple
        1.0 on Saturday or Sunday (UTC) else 0.0; 1.0 when the UTC hour is <= 6 else 0.0.

    Examples
    --------
    >>> from datetime import UTC
    >>> time_flags(datetime(2018, 4, 1, 6, 59, 59, tzinfo=UTC))  # a Sunday morning
    (1.0, 1.0)
    >>> time_flags(datetime(2018, 4, 2, 7, 0, tzinfo=UTC))
    (0.0, 0.0)
    """
    seconds = epoch_seconds(when) if isinstance(when, datetime) else when
    days = seconds // DAY_S
    weekend = 1.0 if (days + _EPOCH_WEEKDAY) % 7 >= 5 else 0.0
    night = 1.0 if seconds - days * DAY_S < _NIGHT_END_S else 0.0
    return weekend, night
