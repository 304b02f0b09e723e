"""Per-transaction features: streaming window state, frame featurization, parity.

One code path serves the stream and the trainer: :class:`CustomerWindows` and
:class:`TerminalWindows` hold one entity's state and answer feature queries in event
time; :func:`featurize_frame` replays a frame through them; :func:`compare_features`
checks computed features against a reference (the handbook's, read with
:mod:`models.features.handbook`).
"""

from __future__ import annotations

from models.features.batch import apply_labels, assemble, observe_customers, observe_terminals
from models.features.clock import epoch_seconds, time_flags
from models.features.customer import CustomerWindows, TxId
from models.features.frame import DEFAULT_DELAY, TRANSACTION_COLUMNS, featurize_frame
from models.features.handbook import from_handbook, handbook_arrival_order, reference_features
from models.features.names import (
    CUSTOMER_FEATURES,
    CUSTOMER_HORIZON_S,
    DAY_S,
    DEFAULT_DELAY_S,
    FEATURE_NAMES,
    TERMINAL_FEATURES,
    TIME_FEATURES,
    WINDOW_DAYS,
    WINDOWS_S,
    terminal_horizon_s,
)
from models.features.parity import FeatureParity, Mismatch, ParityReport, compare_features
from models.features.terminal import TerminalWindows

__all__ = [
    "CUSTOMER_FEATURES",
    "CUSTOMER_HORIZON_S",
    "DAY_S",
    "DEFAULT_DELAY",
    "DEFAULT_DELAY_S",
    "FEATURE_NAMES",
    "TERMINAL_FEATURES",
    "TIME_FEATURES",
    "TRANSACTION_COLUMNS",
    "WINDOWS_S",
    "WINDOW_DAYS",
    "CustomerWindows",
    "FeatureParity",
    "Mismatch",
    "ParityReport",
    "TerminalWindows",
    "TxId",
    "apply_labels",
    "assemble",
    "compare_features",
    "epoch_seconds",
    "featurize_frame",
    "from_handbook",
    "handbook_arrival_order",
    "observe_customers",
    "observe_terminals",
    "reference_features",
    "terminal_horizon_s",
    "time_flags",
]
