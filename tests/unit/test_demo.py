"""The demo's pure parts: bookkeeping of outputs, figures, summary, dashboard, charts."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from streams.codec import EventDecodeError, decode
from streams.demo.charts import timeline, write_charts
from streams.demo.config import DemoConfig
from streams.demo.dashboard import render, status_line
from streams.demo.feed import malformed
from streams.demo.state import DemoState
from streams.demo.stream import DemoStream
from streams.demo.summary import daily, lines, summarize, summary_line
from streams.events import Transaction

START = pd.Timestamp("2018-04-01", tz="UTC")


def tiny_stream(n: int = 300, days: float = 4.0, seed: int = 0) -> DemoStream:
    """``n`` transactions over ``days`` days, a tenth of them frauds, labels a day late."""
    rng = np.random.default_rng(seed)
    event = START + pd.to_timedelta(np.sort(rng.uniform(0, days * 86_400, n)), unit="s")
    frame = pd.DataFrame(
        {
            "transaction_id": [f"tx-{i}" for i in range(n)],
            "customer_id": [f"c{i % 20}" for i in range(n)],
            "terminal_id": [f"t{i % 30}" for i in range(n)],
            "amount": rng.uniform(1, 200, n),
            "is_fraud": np.arange(n) % 10 == 0,
            "event_time": event,
            "label_time": event + pd.Timedelta(days=1),
        }
    )
    return DemoStream(
        frame, "toy", np.ones(n, dtype=np.int8), np.arange(n), ("new-pattern@day=2,customers=6",)
    )


def played(stream: DemoStream, scored: int | None = None) -> DemoState:
    """A state that sent every transaction 0.1 s apart; frauds score high, 50 ms later."""
    state = DemoState(stream)
    state.started = 100.0
    state.step("streaming", 100.0)
    n = len(stream.frame) if scored is None else scored
    for i in range(len(stream.frame)):
        state.on_sent([i], 100.0 + 0.1 * i)
    for i in range(n):
        fraud = bool(stream.is_fraud[i])
        state.on_prediction(
            {
                "transaction_id": f"tx-{i}",
                "score": 0.9 if fraud else 0.1,
                "decision": "decline" if fraud else "approve",
                "model_versions": {"deep": "v1" if i < n // 2 else "v2", "online": "o1"},
            },
            at=100.0 + 0.1 * i + 0.05,
        )
    return state


def test_state_counts_each_prediction_once_and_measures_latency_from_sending() -> None:
    state = played(tiny_stream(n=50))
    state.on_prediction(
        {"transaction_id": "tx-3", "score": 0.5, "decision": "approve", "model_versions": {}},
        at=500.0,
    )
    state.on_prediction(
        {"transaction_id": "unknown", "score": 0.5, "decision": "approve", "model_versions": {}},
        at=500.0,
    )
    view = state.view(now=105.0)
    assert view.predictions == 50
    assert view.duplicates == 1
    assert view.outstanding == 0
    assert view.latency_p50_ms == pytest.approx(50.0)
    assert view.latency_p99_ms == pytest.approx(50.0)
    assert view.decisions == {"approve": 45, "decline": 5}
    assert view.caught == view.frauds_scored == 5
    assert view.deep_share == [("v1", 25), ("v2", 25)]


def test_state_scores_quality_only_over_labels_it_has_sent() -> None:
    stream = tiny_stream(n=200)
    state = played(stream)
    assert state.view(now=120.0).matured == 0
    assert math.isnan(state.view(now=120.0).auc)
    state.on_labels_sent(list(range(100)))
    view = state.view(now=120.0)
    assert view.matured == 100
    assert view.matured_frauds == 10
    assert view.auc == pytest.approx(1.0)
    assert view.ap == pytest.approx(1.0)


def test_state_accounts_for_dead_letters_of_malformed_messages() -> None:
    state = played(tiny_stream(n=20), scored=19)
    state.bad_sent = 2
    assert not state.accounted()
    state.on_dead_letter({"reason": "invalid_json"}, at=110.0)
    state.on_dead_letter({"reason": "out_of_range"}, at=110.0)
    assert not state.accounted()
    state.on_prediction(
        {"transaction_id": "tx-19", "score": 0.1, "decision": "approve", "model_versions": {}},
        at=111.0,
    )
    assert state.accounted()
    assert state.view(now=111.0).dead_reasons == [("invalid_json", 1), ("out_of_range", 1)]


def test_state_keeps_model_updates_and_counts_online_snapshots() -> None:
    state = played(tiny_stream(n=10))
    state.on_model_update({"model_name": "online", "action": "publish", "version": "o2"}, 1.0)
    state.on_model_update({"model_name": "deep", "action": "promote", "version": "v2"}, 2.0)
    state.on_drift(
        {
            "event_time": "2018-04-03T10:00:00Z",
            "kind": "feature",
            "detector": "cusum",
            "feature": "amount",
            "actions": ["alert"],
        }
    )
    view = state.view(now=102.0)
    assert view.online_snapshots == 1
    assert [(u.action, u.version) for u in view.updates] == [("promote", "v2")]
    assert view.drift_counts == {"feature": 1}


def test_rate_counts_predictions_of_the_last_seconds() -> None:
    state = played(tiny_stream(n=300))  # 10 predictions a second from t=100 to t=130
    view = state.view(now=130.0)
    assert view.rate == pytest.approx(10.0, abs=0.2)
    assert sum(view.rate_history) == pytest.approx(300, abs=1)


def test_summary_line_reports_every_figure() -> None:
    state = played(tiny_stream(n=100))
    state.on_labels_sent(list(range(100)))
    state.bad_sent = 1
    state.on_dead_letter({"reason": "invalid_json"}, at=120.0)
    line = summary_line(summarize(state), "reports/demo-x")
    assert line == (
        "demo: events=101 predictions=100 dead_letters=1 auc=1.000 ap=1.000 models=2 "
        "drift_events=0 report=reports/demo-x"
    )


def test_summary_of_a_run_without_predictions_has_no_figures_to_invent() -> None:
    state = DemoState(tiny_stream(n=10))
    summary = summarize(state)
    assert summary.predictions == 0
    assert math.isnan(summary.auc_matured)
    assert "predictions=0" in summary_line(summary, "r")
    assert "auc=–" in summary_line(summary, "r")
    rows = dict(lines(summary, "interrupted", 12.0, 0.0))
    assert rows["ended"].startswith("interrupted after 0.2 min")


def test_dashboard_shows_the_figures_at_terminal_widths() -> None:
    stream = tiny_stream(n=100)
    state = played(stream)
    state.on_labels_sent(list(range(100)))
    for width in (80, 120):
        console = Console(width=width, record=True, color_system=None, file=io.StringIO())
        console.print(render(state.view(now=110.0), stream.source, stream.drifts))
        text = console.export_text()
        assert "50 ms" in text
        assert "1.000" in text
        assert "new-pattern@day=2" in text
    assert "scored=100" in status_line(state.view(now=110.0))


def test_timeline_bins_throughput_and_latency_by_wall_clock() -> None:
    state = played(tiny_stream(n=300))
    line = timeline(state, bin_s=10.0)
    assert line.rate.tolist() == pytest.approx([10.0, 10.0, 10.0])
    assert line.p99_ms.tolist() == pytest.approx([50.0, 50.0, 50.0])


@pytest.mark.parametrize("scored", [300, 0])
def test_charts_are_written_for_a_tiny_run(tmp_path: Path, scored: int) -> None:
    state = played(tiny_stream(n=300), scored=scored)
    state.on_labels_sent(list(range(300)))
    state.on_drift({"event_time": "2018-04-03T10:00:00Z", "kind": "error", "detector": "ADWIN"})
    paths = write_charts(tmp_path, state, daily(state), train_days=1)
    assert [p.name for p in paths] == [
        "throughput.png",
        "latency.png",
        "quality.png",
        "decisions.png",
        "models.png",
        "drift.png",
        "overview.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("n", range(5))
def test_every_kind_of_malformed_message_is_rejected_by_the_decoder(n: int) -> None:
    with pytest.raises(EventDecodeError):
        decode(Transaction, malformed(n, "2018-04-01T10:00:00+00:00"))


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="days"):
        DemoConfig(days=0)
    with pytest.raises(ValueError, match="rate"):
        DemoConfig(rate=0)
    assert DemoConfig(days=30).first_model_days == 10
    assert DemoConfig(days=6, file=Path("x.parquet")).drift_specs == ()
