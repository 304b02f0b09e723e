"""Simulated batches as wire events: transactions, and labels that arrive later.

A label delay is a :class:`timedelta`, a spec string, or a callable
``(rng, is_fraud) -> seconds`` giving one delay per transaction. Spec strings are a
sum of terms: a duration (``7d``, ``36h``, ``90m``, ``45s``, ``1d12h``), a uniform
range (``1d..14d``) or an exponential with a mean (``exp:2d``); e.g. ``5d+exp:1d``.
Delays are rounded to whole seconds and are never negative.

Examples
--------
>>> from datetime import UTC, datetime
>>> from producers.simulation.config import SimulationConfig
>>> from producers.simulation.generator import simulate
>>> cfg = SimulationConfig(n_customers=50, n_terminals=100, days=2, seed=1)
>>> events = list(simulated_events(simulate(cfg), "1d"))
>>> from collections import Counter
>>> Counter(type(e).__name__ for e in events)
Counter({'Transaction': 100, 'Label': 100})
>>> first_label = next(e for e in events if isinstance(e, Label))
>>> first_label.label_time - first_label.transaction_time
datetime.timedelta(days=1)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from producers.simulation.batch import Batch
from producers.simulation.config import DAY_SECONDS
from producers.simulation.profiles import CHANNELS
from streams.events import Channel, Label, Transaction

#: One label delay (seconds) per transaction, from a random generator and the truth.
DelayModel = Callable[[np.random.Generator, NDArray[np.bool_]], NDArray[np.float64]]
LabelDelay = timedelta | str | DelayModel

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[dhms])+$")
_CHANNELS = [Channel(name) for name in CHANNELS]
_DELAY_STREAM = 4


def parse_duration(text: str) -> timedelta:
    """Parse ``7d``, ``36h``, ``90m``, ``45s`` or a sequence of them such as ``1d12h``.

    Examples
    --------
    >>> parse_duration("1d12h")
    datetime.timedelta(days=1, seconds=43200)
    >>> parse_duration("7 days")
    Traceback (most recent call last):
    ...
    ValueError: not a duration: '7 days' (use e.g. 7d, 36h, 90m, 45s, 1d12h)
    """
    compact = text.strip().lower()
    if not _DURATION.match(compact):
        raise ValueError(f"not a duration: {text!r} (use e.g. 7d, 36h, 90m, 45s, 1d12h)")
    seconds = sum(
        float(n) * _UNIT_SECONDS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([dhms])", compact)
    )
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class _SpecDelay:
    """Sum of fixed, uniform and exponential terms (seconds)."""

    fixed: float
    uniform: tuple[tuple[float, float], ...]
    exponential: tuple[float, ...]

    def __call__(
        self, rng: np.random.Generator, is_fraud: NDArray[np.bool_]
    ) -> NDArray[np.float64]:
        out = np.full(is_fraud.size, self.fixed)
        for low, high in self.uniform:
            out += rng.uniform(low, high, is_fraud.size)
        for mean in self.exponential:
            out += rng.exponential(mean, is_fraud.size)
        return out


def parse_delay(spec: str) -> DelayModel:
    """Parse a label-delay spec (see the module docstring) into a delay model.

    Examples
    --------
    >>> model = parse_delay("5d+1d..3d")
    >>> d = model(np.random.default_rng(0), np.zeros(1000, bool)) / 86_400
    >>> bool(d.min() >= 6 and d.max() <= 8)
    True
    """
    fixed, uniform, exponential = 0.0, [], []
    for term in (t.strip() for t in spec.split("+")):
        if term.startswith("exp:"):
            exponential.append(parse_duration(term[4:]).total_seconds())
        elif ".." in term:
            low, _, high = term.partition("..")
            lo, hi = parse_duration(low).total_seconds(), parse_duration(high).total_seconds()
            if hi < lo:
                raise ValueError(f"empty delay range: {term!r}")
            uniform.append((lo, hi))
        else:
            fixed += parse_duration(term).total_seconds()
    return _SpecDelay(fixed, tuple(uniform), tuple(exponential))


def as_delay_model(delay: LabelDelay) -> DelayModel:
    """Turn a timedelta, a spec string or a delay model into a delay model."""
    if isinstance(delay, timedelta):
        if delay < timedelta(0):
            raise ValueError("label delay must not be negative")
        return _SpecDelay(delay.total_seconds(), (), ())
    if isinstance(delay, str):
        return parse_delay(delay)
    return delay


def transactions(batch: Batch) -> Iterator[Transaction]:
    """Yield the batch's transactions as validated :class:`Transaction` events."""
    origin = batch.start.timestamp()
    columns = zip(
        batch.transaction_id.astype(str).tolist(),
        (batch.time_seconds + origin).tolist(),
        batch.customer_id.astype(str).tolist(),
        batch.terminal_id.astype(str).tolist(),
        batch.amount.tolist(),
        [_CHANNELS[c] for c in batch.channel.tolist()],
        np.char.zfill(batch.merchant_category.astype(str), 4).tolist(),
        batch.sequence.tolist(),
        strict=True,
    )
    for tx_id, timestamp, customer, terminal, amount, channel, mcc, seq in columns:
        yield Transaction(
            transaction_id=tx_id,
            event_time=datetime.fromtimestamp(timestamp, UTC),
            customer_id=customer,
            terminal_id=terminal,
            amount=amount,
            channel=channel,
            merchant_category=mcc,
            sequence=seq,
        )


def label_for(tx: Transaction, is_fraud: bool, delay: timedelta) -> Label:
    """Build the label of ``tx``, known ``delay`` after the transaction.

    Examples
    --------
    >>> tx = Transaction(transaction_id="3", customer_id="1", terminal_id="2", amount=9.5,
    ...                  event_time=datetime(2018, 4, 1, 12, tzinfo=UTC))
    >>> label_for(tx, True, timedelta(days=7)).label_time.isoformat()
    '2018-04-08T12:00:00+00:00'
    """
    return Label(
        transaction_id=tx.transaction_id,
        customer_id=tx.customer_id,
        terminal_id=tx.terminal_id,
        is_fraud=is_fraud,
        transaction_time=tx.event_time,
        label_time=tx.event_time + delay,
    )


@dataclass(frozen=True, slots=True)
class _Pending:
    """Labels not yet due, as columns."""

    label_seconds: NDArray[np.int64]
    tx_seconds: NDArray[np.int64]
    transaction_id: NDArray[np.int64]
    customer_id: NDArray[np.int64]
    terminal_id: NDArray[np.int64]
    is_fraud: NDArray[np.bool_]

    def take(self, index: NDArray[np.bool_] | NDArray[np.intp]) -> _Pending:
        """Select rows by a boolean mask or by positions."""
        return _Pending(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    def join(self, other: _Pending) -> _Pending:
        """Append ``other``'s rows."""
        return _Pending(
            *(
                np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in dataclasses.fields(self)
            )
        )


def label_seconds(batch: Batch, delay: DelayModel, rng: np.random.Generator) -> NDArray[np.int64]:
    """Label times of a batch's transactions, in whole seconds from ``batch.start``."""
    raw = np.asarray(delay(rng, batch.is_fraud), dtype=np.float64)
    if raw.shape != (len(batch),) or not np.isfinite(raw).all():
        raise ValueError("a delay model must return one finite delay per transaction")
    return batch.time_seconds + np.maximum(np.rint(raw), 0).astype(np.int64)


def simulated_events(
    batches: Iterable[Batch], delay: LabelDelay, *, seed: int = 0, flush: bool = True
) -> Iterator[Transaction | Label]:
    """Interleave transactions and their delayed labels in event-time order.

    An event's time is the transaction's ``event_time`` or the label's
    ``label_time``; at equal times transactions come first, so a label never
    precedes its transaction. With ``flush`` the labels still pending after the
    last transaction follow it; without, they are dropped.
    """
    model = as_delay_model(delay)
    empty = np.empty(0, np.int64)
    pending = _Pending(empty, empty, empty, empty, empty, np.empty(0, bool))
    start: datetime | None = None
    for batch in batches:
        start = batch.start.astimezone(UTC)
        rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(_DELAY_STREAM, batch.day))
        )
        fresh = _Pending(
            label_seconds(batch, model, rng),
            batch.time_seconds,
            batch.transaction_id,
            batch.customer_id,
            batch.terminal_id,
            batch.is_fraud,
        )
        pending = pending.join(fresh)
        due = pending.label_seconds < (batch.day + 1) * DAY_SECONDS
        now, pending = pending.take(due), pending.take(~due)
        yield from _merge(batch, now, start)
    if flush and start is not None:
        order = np.lexsort((pending.transaction_id, pending.label_seconds))
        yield from _labels(pending.take(order), start)


def _merge(batch: Batch, labels: _Pending, start: datetime) -> Iterator[Transaction | Label]:
    times = np.concatenate([batch.time_seconds, labels.label_seconds])
    kinds = np.concatenate(
        [np.zeros(len(batch), np.int8), np.ones(labels.label_seconds.size, np.int8)]
    )
    ids = np.concatenate([batch.transaction_id, labels.transaction_id])
    order = np.lexsort((ids, kinds, times))
    txs = transactions(batch)
    label_events = _labels(labels.take(order[kinds[order] == 1] - len(batch)), start)
    for kind in kinds[order].tolist():
        yield next(label_events) if kind else next(txs)


def _labels(pending: _Pending, start: datetime) -> Iterator[Label]:
    origin = start.timestamp()
    columns = zip(
        pending.transaction_id.astype(str).tolist(),
        pending.customer_id.astype(str).tolist(),
        pending.terminal_id.astype(str).tolist(),
        pending.is_fraud.tolist(),
        (pending.tx_seconds + origin).tolist(),
        (pending.label_seconds + origin).tolist(),
        strict=True,
    )
    for tx_id, customer, terminal, fraud, tx_time, label_time in columns:
        yield Label(
            transaction_id=tx_id,
            customer_id=customer,
            terminal_id=terminal,
            is_fraud=fraud,
            transaction_time=datetime.fromtimestamp(tx_time, UTC),
            label_time=datetime.fromtimestamp(label_time, UTC),
        )
