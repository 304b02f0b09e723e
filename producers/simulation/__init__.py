"""Synthetic card-transaction stream with labelled fraud and scripted drift.

The world follows the design of the transaction simulator described in the Fraud
Detection Handbook (chapter 3.2): customers and terminals on a 100 x 100 map,
customers paying at terminals within a radius, a Poisson number of transactions a
day around midday, normal amounts around each customer's mean, and three fraud
scenarios (large amounts, compromised terminals, leaked cards). On top of it,
:mod:`producers.simulation.drift` scripts changes from a chosen day on.

Examples
--------
>>> from producers.simulation import SimulationConfig, parse_drifts, simulate, simulated_events
>>> cfg = SimulationConfig(n_customers=100, n_terminals=200, days=3, seed=42,
...                        drifts=parse_drifts("new-pattern@day=1"))
>>> events = list(simulated_events(simulate(cfg), "1d"))
>>> events[0].model_dump(mode="json", exclude_none=True)  # doctest: +NORMALIZE_WHITESPACE
{'schema_version': 1, 'transaction_id': '0', 'event_time': '2018-04-01T00:02:42Z',
 'customer_id': '44', 'terminal_id': '30', 'amount': 13.32, 'currency': 'EUR',
 'channel': 'pos', 'merchant_category': '5814', 'sequence': 0}
>>> label = next(e for e in events if e.event_name == "label")
>>> label.model_dump(mode="json")  # doctest: +NORMALIZE_WHITESPACE
{'schema_version': 1, 'transaction_id': '0', 'customer_id': '44', 'terminal_id': '30',
 'is_fraud': False, 'transaction_time': '2018-04-01T00:02:42Z',
 'label_time': '2018-04-02T00:02:42Z'}
"""

from __future__ import annotations

from producers.simulation.batch import Batch
from producers.simulation.config import Scenario, SimulationConfig
from producers.simulation.drift import (
    AmountShift,
    CardTesting,
    Drift,
    FraudSurge,
    format_drift,
    parse_drift,
    parse_drifts,
)
from producers.simulation.emit import (
    DelayModel,
    LabelDelay,
    as_delay_model,
    label_for,
    parse_delay,
    parse_duration,
    simulated_events,
    transactions,
)
from producers.simulation.generator import Simulator, simulate, simulate_frame

__all__ = [
    "AmountShift",
    "Batch",
    "CardTesting",
    "DelayModel",
    "Drift",
    "FraudSurge",
    "LabelDelay",
    "Scenario",
    "SimulationConfig",
    "Simulator",
    "as_delay_model",
    "format_drift",
    "label_for",
    "parse_delay",
    "parse_drift",
    "parse_drifts",
    "parse_duration",
    "simulate",
    "simulate_frame",
    "simulated_events",
    "transactions",
]
