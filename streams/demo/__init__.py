"""`streamscore demo`: the whole system on one machine, with a live dashboard and a report.

It starts the embedded broker (unless one is configured), creates a run's topics,
trains a first model on the first days of the stream, starts a worker, the online
learner and the batch trainer, then publishes a simulated stream with a scripted
drift (or replays a file) while a terminal dashboard shows what the system publishes:
throughput, end-to-end latency, decisions, live AUC/AP over the labels sent so far,
models in service, drift events and dead letters. When the stream ends or on Ctrl-C
the processes stop, a summary is printed and a report is written.

Modules: :mod:`~streams.demo.config` (what a run is), :mod:`~streams.demo.stream`
(the data), :mod:`~streams.demo.feed` (the paced producer), :mod:`~streams.demo.reader`
and :mod:`~streams.demo.state` (outputs into figures), :mod:`~streams.demo.dashboard`,
:mod:`~streams.demo.run` (orchestration), :mod:`~streams.demo.report`,
:mod:`~streams.demo.charts`, :mod:`~streams.demo.summary`, :mod:`~streams.demo.screenshot`.
"""

from __future__ import annotations

from streams.demo.config import DemoConfig
from streams.demo.run import DemoRun, run_demo

__all__ = ["DemoConfig", "DemoRun", "run_demo"]
