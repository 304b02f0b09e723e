"""Batch helpers give what per-event calls give, in model input order."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from models.features import DEFAULT_DELAY_S, FEATURE_NAMES, CustomerWindows, TerminalWindows
from models.features.batch import apply_labels, assemble, observe_customers, observe_terminals
from models.features.clock import time_flags

DAY = 86_400.0


def test_batches_equal_event_by_event_calls_across_batch_boundaries() -> None:
    rng = np.random.default_rng(11)
    n = 300
    times = np.sort(rng.integers(0, 40 * 24, n)) * 3600.0
    customers = rng.integers(0, 9, n).tolist()
    terminals = rng.integers(0, 5, n).tolist()
    amounts = rng.gamma(2.0, 20.0, n).round(2).tolist()
    c_states: dict[Hashable, CustomerWindows] = {}
    t_states: dict[Hashable, TerminalWindows] = {}
    got_c, got_t = [], []
    for start in range(0, n, 64):
        batch = range(start, min(start + 64, n))
        labels = [(terminals[i], i, times[i], times[i] + 7 * DAY, i % 4 == 0) for i in batch]
        got_c.append(
            observe_customers(c_states, [(customers[i], i, times[i], amounts[i], i) for i in batch])
        )
        got_t.append(
            observe_terminals(
                t_states, [(terminals[i], i, times[i]) for i in batch], DEFAULT_DELAY_S
            )
        )
        assert apply_labels(t_states, labels) == len(labels)
        assert apply_labels(t_states, labels) == 0
    one_c: dict[int, CustomerWindows] = {}
    one_t: dict[int, TerminalWindows] = {}
    want_c, want_t = [], []
    for i in range(n):
        cw = one_c.setdefault(customers[i], CustomerWindows())
        want_c.append(cw.observe(i, times[i], amounts[i], i))
        tw = one_t.setdefault(terminals[i], TerminalWindows())
        tw.add_transaction(i, times[i])
        want_t.append(tw.features(times[i], DEFAULT_DELAY_S))
        if i % 64 == 63 or i == n - 1:
            for j in range(i - i % 64, i + 1):
                one_t[terminals[j]].add_label(j, times[j], times[j] + 7 * DAY, j % 4 == 0)
    np.testing.assert_array_equal(np.vstack(got_c), np.array(want_c))
    np.testing.assert_array_equal(np.vstack(got_t), np.array(want_t))
    assert np.vstack(got_t)[:, 1::2].max() > 0


def test_assemble_puts_columns_in_feature_order() -> None:
    customer = np.arange(12.0).reshape(2, 6)
    terminal = -np.arange(12.0).reshape(2, 6)
    x = assemble([5.0, 6.0], [0.0, 2.5 * DAY], customer, terminal)
    assert x.shape == (2, len(FEATURE_NAMES))
    assert x[1, :3].tolist() == [6.0, *time_flags(2.5 * DAY)]
    np.testing.assert_array_equal(x[:, 3:9], customer)
    np.testing.assert_array_equal(x[:, 9:], terminal)
    assert assemble([], [], np.empty((0, 6)), np.empty((0, 6))).shape == (0, 15)
