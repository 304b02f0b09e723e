"""Run one worker process: ensure topics, build the Faust app, run until stopped."""

from __future__ import annotations

import logging

from models.settings import ModelsSettings
from streams.runtime import kafka_connection
from streams.settings import StreamsSettings
from streams.topics import create_topics, topic_specs

logger = logging.getLogger(__name__)


def run_worker(settings: StreamsSettings, log_level: str = "WARNING") -> None:
    """Run a worker until SIGINT/SIGTERM (blocks).

    With no bootstrap server configured, an embedded broker is started first and
    its address printed as ``bootstrap: HOST:PORT``.
    """
    import faust

    from streams.app import StreamWorker

    with kafka_connection(settings) as conn:
        if not settings.kafka.bootstrap_servers:
            print(f"bootstrap: {conn.bootstrap_servers}", flush=True)
        create_topics(conn, topic_specs(settings.topics))
        worker = StreamWorker(settings, conn, ModelsSettings())
        from streams import metrics
        from streams.exporter import serve_metrics

        metrics.init_worker_series()
        serve_metrics(settings.metrics)  # metrics: the /metrics endpoint of this process
        faust.Worker(
            worker.app,
            loglevel=log_level,
            quiet=True,
            redirect_stdouts=False,
            override_logging=False,
        ).execute_from_commandline()
