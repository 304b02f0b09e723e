"""Scripted drift: changes to the simulated world from a given day on.

A drift is written ``KIND@day=N[,key=value...]`` (``KIND@N`` is short for
``KIND@day=N``); several are separated by ``;`` or given one by one. Every drift
takes ``day`` (the first day it applies, counted from 0) and an optional ``until``
(the first day it no longer applies). Days before a drift are exactly the stream
without it: each drift draws from a random stream of its own.

``amount-shift`` — genuine spending changes scale (``factor``, default 1.5)
    Every genuine amount is ``factor`` times what it would have been (same customer,
    time and terminal). With ``threshold=scale`` (the default) the large-amount fraud
    threshold scales too, so prices move and the fraud share stays put: a covariate
    shift of ``amount`` and of the customer average-amount features, and a concept
    shift for any model that learned the old threshold (it now flags genuine
    spending). ``threshold=fixed`` keeps the threshold, so many genuine large
    purchases become scenario-1 fraud: a label shift as well.

``new-pattern`` (alias ``card-testing``) — a fraud pattern the history never showed
    Each day ``customers`` random cards (default 3) are tested by fraudsters: a
    burst of about ``burst`` (default 15, Poisson) small amounts, uniform in
    [0.50, ``max_amount``] (default 5.00), seconds to minutes apart, starting
    between midnight and ``night_hour`` (default 6), all on a pool of ``terminals``
    e-commerce terminals (default 5) picked when the pattern starts. Fraud scenario 4.
    The handbook features can see it: the night flag, a jump of the customer's 1-day
    count with a fall of its 1-day average amount, and, once the 7-day-delayed labels
    arrive, the risk of the pool's terminals. It shifts the night share, the
    customer count features and, for a model trained before it, the error rate.

``fraud-surge`` — more fraud of the known kinds (``factor``, default 3)
    ``factor`` times as many terminals (scenario 2) and customers (scenario 3) are
    compromised each day: a prior shift (fraud share up, same patterns).

Examples
--------
>>> parse_drifts("new-pattern@day=30; amount-shift@day=20,factor=1.5")
(CardTesting(day=30, until=None, customers=3, burst=15.0, max_amount=5.0, terminals=5, \
night_hour=6), AmountShift(day=20, until=None, factor=1.5, threshold='scale'))
>>> format_drift(parse_drift("card-testing@10,burst=30,until=40"))
'new-pattern@day=10,until=40,burst=30.0'
>>> parse_drift("amount-shift@day=20,factr=2")
Traceback (most recent call last):
...
ValueError: amount-shift: unknown parameter 'factr' (known: day, until, factor, threshold)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal


@dataclass(frozen=True, slots=True)
class _Window:
    """The days a drift applies: ``day`` included, ``until`` excluded (None: forever)."""

    day: int
    until: int | None = None

    def active(self, day: int) -> bool:
        """Tell whether the drift applies on ``day`` (counted from 0)."""
        return day >= self.day and (self.until is None or day < self.until)

    def _check_window(self) -> None:
        if self.day < 0:
            raise ValueError(f"day must be non-negative, got {self.day}")
        if self.until is not None and self.until <= self.day:
            raise ValueError(f"until ({self.until}) must be after day ({self.day})")


@dataclass(frozen=True, slots=True)
class AmountShift(_Window):
    """Genuine amounts scale by ``factor`` (and the fraud threshold with them unless fixed)."""

    kind: ClassVar[str] = "amount-shift"
    factor: float = 1.5
    threshold: Literal["scale", "fixed"] = "scale"

    def __post_init__(self) -> None:
        self._check_window()
        if not 0 < self.factor <= 100:
            raise ValueError(f"factor must be in (0, 100], got {self.factor}")
        if self.threshold not in ("scale", "fixed"):
            raise ValueError(f"threshold must be 'scale' or 'fixed', got {self.threshold!r}")


@dataclass(frozen=True, slots=True)
class CardTesting(_Window):
    """Night bursts of small amounts on a pool of e-commerce terminals (scenario 4)."""

    kind: ClassVar[str] = "new-pattern"
    customers: int = 3
    burst: float = 15.0
    max_amount: float = 5.0
    terminals: int = 5
    night_hour: int = 6

    def __post_init__(self) -> None:
        self._check_window()
        if self.customers < 0 or self.terminals < 1:
            raise ValueError("customers must be >= 0 and terminals >= 1")
        if not 1 <= self.burst <= 1_000:
            raise ValueError(f"burst must be in [1, 1000], got {self.burst}")
        if not 0.5 < self.max_amount <= 1_000:
            raise ValueError(f"max_amount must be in (0.5, 1000], got {self.max_amount}")
        if not 1 <= self.night_hour <= 23:
            raise ValueError(f"night_hour must be in [1, 23], got {self.night_hour}")


@dataclass(frozen=True, slots=True)
class FraudSurge(_Window):
    """``factor`` times as many compromised terminals and customers each day."""

    kind: ClassVar[str] = "fraud-surge"
    factor: float = 3.0

    def __post_init__(self) -> None:
        self._check_window()
        if not 0 <= self.factor <= 1_000:
            raise ValueError(f"factor must be in [0, 1000], got {self.factor}")


Drift = AmountShift | CardTesting | FraudSurge

_KINDS: dict[str, type[AmountShift] | type[CardTesting] | type[FraudSurge]] = {
    "amount-shift": AmountShift,
    "new-pattern": CardTesting,
    "card-testing": CardTesting,
    "fraud-surge": FraudSurge,
}


def _converter(annotation: str) -> Callable[[str], object]:
    """Parse a parameter value according to its field annotation (a string here)."""
    if annotation == "int":
        return int
    if annotation == "float":
        return float
    if annotation == "int | None":
        return lambda text: None if text.lower() in ("", "none") else int(text)
    return str


def parse_drift(text: str) -> Drift:
    """Parse one drift written ``KIND@day=N[,key=value...]`` (or ``KIND@N,...``).

    Raises
    ------
    ValueError
        For an unknown kind or parameter, a value of the wrong type or out of range.
    """
    kind, sep, params = text.strip().partition("@")
    kind = kind.strip().lower()
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown drift kind {kind!r} (known: {', '.join(_KINDS)})")
    if not sep:
        raise ValueError(f"{kind}: missing '@day=N' in {text!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, object] = {}
    for i, item in enumerate(p.strip() for p in params.split(",")):
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            if i != 0:
                raise ValueError(f"{kind}: expected key=value, got {item!r}")
            key, raw = "day", item
        if key not in fields:
            known = ", ".join(fields)
            raise ValueError(f"{cls.kind}: unknown parameter {key!r} (known: {known})")
        if key in values:
            raise ValueError(f"{cls.kind}: parameter {key!r} given twice")
        try:
            values[key] = _converter(str(fields[key].type))(raw.strip())
        except ValueError:
            raise ValueError(f"{cls.kind}: bad value {raw.strip()!r} for {key}") from None
    if "day" not in values:
        raise ValueError(f"{cls.kind}: 'day' is required")
    try:
        return cls(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{cls.kind}: {exc}") from None


def parse_drifts(specs: str | Iterable[str]) -> tuple[Drift, ...]:
    """Parse drifts given as one ``;``-separated string or as several strings.

    Examples
    --------
    >>> [d.kind for d in parse_drifts(["fraud-surge@60", "amount-shift@20;new-pattern@30"])]
    ['fraud-surge', 'amount-shift', 'new-pattern']
    >>> parse_drifts("")
    ()
    """
    texts = [specs] if isinstance(specs, str) else list(specs)
    return tuple(parse_drift(part) for text in texts for part in text.split(";") if part.strip())


def format_drift(drift: Drift) -> str:
    """Write a drift the way :func:`parse_drift` reads it (defaults left out)."""
    parts = [f"day={drift.day}"]
    for f in dataclasses.fields(drift):
        value = getattr(drift, f.name)
        if f.name != "day" and value != f.default:
            parts.append(f"{f.name}={value}")
    return f"{drift.kind}@{','.join(parts)}"
