"""Batches of events through per-entity window state, for a worker's hot path.

A worker keeps one :class:`CustomerWindows` per customer on the partitions that own
the customers, and one :class:`TerminalWindows` per terminal where transactions are
keyed by terminal. These helpers take a micro-batch of one partition, update the
state of each event's entity and return the features as one float64 matrix, ready to
be joined into the model's input with :func:`assemble`.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, MutableMapping, Sequence

import numpy as np

from models.features.clock import time_flags
from models.features.customer import CustomerWindows, TxId
from models.features.names import FEATURE_NAMES
from models.features.terminal import TerminalWindows

#: (customer key, transaction id, event time in seconds, amount, arrival sequence)
CustomerEvent = tuple[Hashable, TxId, float, float, int]
#: (terminal key, transaction id, event time in seconds)
TerminalEvent = tuple[Hashable, TxId, float]
#: (terminal key, transaction id, transaction time, label time, is fraud)
LabelEvent = tuple[Hashable, TxId, float, float, bool]


def observe_customers(
    states: MutableMapping[Hashable, CustomerWindows], events: Sequence[CustomerEvent]
) -> np.ndarray:
    """Add each transaction to its customer's windows; return the n x 6 customer features.

    Events are taken in the given (arrival) order, each seeing the ones before it.

    Examples
    --------
    >>> states = {}
    >>> observe_customers(states, [("c1", "t1", 0.0, 10.0, 0), ("c1", "t2", 60.0, 30.0, 1)])
    array([[ 1., 10.,  1., 10.,  1., 10.],
           [ 2., 20.,  2., 20.,  2., 20.]])
    """
    flat = array("d")
    put = flat.extend
    for key, tx_id, time_s, amount, seq in events:
        windows = states.get(key)
        if windows is None:
            windows = states[key] = CustomerWindows()
        put(windows.observe(tx_id, time_s, amount, seq))
    return _matrix(flat)


def observe_terminals(
    states: MutableMapping[Hashable, TerminalWindows],
    events: Sequence[TerminalEvent],
    delay_s: float,
) -> np.ndarray:
    """Add each transaction to its terminal's windows; return the n x 6 terminal features."""
    flat = array("d")
    put = flat.extend
    for key, tx_id, time_s in events:
        windows = states.get(key)
        if windows is None:
            windows = states[key] = TerminalWindows()
        windows.add_transaction(tx_id, time_s)
        put(windows.features(time_s, delay_s))
    return _matrix(flat)


def apply_labels(
    states: MutableMapping[Hashable, TerminalWindows], labels: Iterable[LabelEvent]
) -> int:
    """Record labels in their terminals' windows; return how many were new."""
    added = 0
    for key, tx_id, tx_time_s, label_time_s, is_fraud in labels:
        windows = states.get(key)
        if windows is None:
            windows = states[key] = TerminalWindows()
        added += windows.add_label(tx_id, tx_time_s, label_time_s, is_fraud)
    return added


def _matrix(flat: array[float]) -> np.ndarray:
    """View six features per event as an n x 6 matrix (no copy)."""
    return np.frombuffer(flat, dtype=np.float64).reshape(-1, 6)


def assemble(
    amounts: Sequence[float],
    times_s: Sequence[float],
    customer: np.ndarray,
    terminal: np.ndarray,
) -> np.ndarray:
    """Return the n x 15 model input in :data:`FEATURE_NAMES` order.

    Examples
    --------
    >>> x = assemble([12.5], [0.0], np.ones((1, 6)), np.zeros((1, 6)))
    >>> x.shape, x[0, :3].tolist()
    ((1, 15), [12.5, 0.0, 1.0])
    """
    matrix = np.empty((len(amounts), len(FEATURE_NAMES)))
    matrix[:, 0] = amounts
    matrix[:, 1:3] = [time_flags(t) for t in times_s] if len(times_s) else np.empty((0, 2))
    matrix[:, 3:9] = customer
    matrix[:, 9:15] = terminal
    return matrix
