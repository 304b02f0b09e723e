"""The Grafana dashboards, built with Grafana's own SDK and written to ``grafana/``.

Generated, not hand-written: the builders of ``grafana-foundation-sdk`` follow the
dashboard schema of the Grafana release they were generated from (schemaVersion 42,
Grafana 12.2+), so a typo in an option name fails here rather than in a browser, and
the committed JSON is reproducible (``streamscore grafana generate --check``, run by
a test, says whether it is current). The SDK is a development dependency: users
get the JSON, which Grafana provisions or ``streamscore grafana push`` uploads.

Every query uses only metric names from :mod:`streams.metrics` (and Faust's sensor,
process collector); the integration test runs every query against a real Prometheus
scraping a worker. Panels reference the datasource by a fixed uid, the one
provisioned in ``grafana/provisioning/datasources/``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders.heatmap import Panel as Heatmap
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.statetimeline import Panel as StateTimeline
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    DataSourceRef,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode

DATASOURCE_UID = "streamscore-prometheus"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
DEFAULT_DIR = Path("grafana/dashboards")
RATE = "$__rate_interval"

Query = tuple[str, str]  # (PromQL, legend)


def _queries(panel: Any, queries: list[Query]) -> Any:
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(
            Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
        )
    return panel.datasource(DATASOURCE)


def _legend() -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs([])
    )


def timeseries(
    title: str, unit: str, queries: list[Query], description: str = "", bars: bool = False
) -> Timeseries:
    """A time-series panel over Prometheus queries."""
    panel = (
        Timeseries()
        .title(title)
        .description(description)
        .unit(unit)
        .legend(_legend())
        .tooltip(cb.VizTooltipOptions().mode(TooltipDisplayMode.MULTI))
        .fill_opacity(10)
        .height(8)
        .span(12)
    )
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80)
    result: Timeseries = _queries(panel, queries)
    return result


def stat(title: str, unit: str, query: Query, description: str = "") -> Stat:
    """A single-value panel (last value)."""
    panel = (
        Stat()
        .title(title)
        .description(description)
        .unit(unit)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .height(4)
        .span(6)
    )
    result: Stat = _queries(panel, [query])
    return result


def _threshold_one() -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color="green"), Threshold(value=1.0, color="red")])
    )


def drift_annotation() -> db.AnnotationQuery:
    """Drift firings as annotations, from the drift-events counter."""
    return (
        db.AnnotationQuery()
        .name("Drift events")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr(
            "sum by (kind, detector, feature) "
            "(increase(streamscore_drift_events_total[$__interval])) > 0"
        )
        .step("30s")
        .title_format("drift: {{kind}} {{detector}} {{feature}}")
        .text_format("{{kind}} stream, detector {{detector}}")
    )


def _base(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["streamscore"])
        .time("now-30m", "now")
        .refresh("10s")
        .timezone("browser")
        .readonly()
    )


def _numbered(dashboard: db.Dashboard) -> dict[str, Any]:
    """The dashboard as JSON, its panels numbered in order (Grafana wants unique ids)."""
    data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(dashboard.build()))
    for i, panel in enumerate(data.get("panels", []), start=1):
        panel["id"] = i
    return data


def overview() -> dict[str, Any]:
    """Throughput, latency, lag, dead letters and decisions."""

    def stages(direction: str) -> str:
        return f"sum by (stage) (rate(streamscore_events_{direction}_total[{RATE}]))"

    def latency(q: float, since: str) -> str:
        return (
            f"histogram_quantile({q}, sum by (le, stage) (rate("
            f'streamscore_end_to_end_latency_seconds_bucket{{since="{since}"}}[{RATE}])))'
        )

    d = (
        _base("streamscore-overview", "streamscore / Overview", "Is the pipeline keeping up?")
        .with_row(db.Row("Throughput"))
        .with_panel(
            stat(
                "Predictions / s",
                "ops",
                (f'sum(rate(streamscore_events_out_total{{stage="score"}}[{RATE}]))', "score"),
            )
        )
        .with_panel(
            stat(
                "Dead letters / s",
                "ops",
                (f"sum(rate(streamscore_dead_letters_total[{RATE}]))", "dead letters"),
            )
        )
        .with_panel(
            stat("Consumer lag", "short", ("sum(streamscore_consumer_lag_messages)", "lag"))
        )
        .with_panel(
            stat(
                "Event time",
                "dateTimeAsIso",
                ('max(streamscore_watermark_timestamp_seconds{stage="ingest"}) * 1000', "ingest"),
            )
        )
        .with_panel(timeseries("Events in / s", "ops", [(stages("in"), "{{stage}}")]))
        .with_panel(timeseries("Events out / s", "ops", [(stages("out"), "{{stage}}")]))
        .with_row(db.Row("Latency"))
        .with_panel(
            timeseries(
                "End-to-end latency since ingestion",
                "s",
                [
                    (latency(q=0.5, since="ingest_time"), "p50 {{stage}}"),
                    (latency(q=0.99, since="ingest_time"), "p99 {{stage}}"),
                ],
                "From the customer stage reading a transaction to the stage's output.",
            )
        )
        .with_panel(
            timeseries(
                "End-to-end latency since event time",
                "s",
                [
                    (latency(q=0.5, since="event_time"), "p50 {{stage}}"),
                    (latency(q=0.99, since="event_time"), "p99 {{stage}}"),
                ],
                "From the transaction's own timestamp (meaningful live, not in replays).",
            )
        )
        .with_panel(
            timeseries(
                "Batch time p99",
                "s",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, stage) "
                        f"(rate(streamscore_batch_duration_seconds_bucket[{RATE}])))",
                        "{{stage}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries(
                "Batch size p50",
                "short",
                [
                    (
                        "histogram_quantile(0.5, sum by (le, stage) "
                        f"(rate(streamscore_batch_size_events_bucket[{RATE}])))",
                        "{{stage}}",
                    )
                ],
            )
        )
        .with_row(db.Row("Backlog, errors and decisions"))
        .with_panel(
            timeseries(
                "Consumer lag by topic",
                "short",
                [("sum by (topic) (streamscore_consumer_lag_messages)", "{{topic}}")],
            )
        )
        .with_panel(
            timeseries(
                "Dead letters / s by stage and reason",
                "ops",
                [
                    (
                        f"sum by (stage, reason) (rate(streamscore_dead_letters_total[{RATE}]))",
                        "{{stage}} {{reason}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries(
                "Forced releases / s by reason",
                "ops",
                [
                    (
                        f"sum by (reason) (rate(streamscore_forced_releases_total[{RATE}]))",
                        "{{reason}}",
                    )
                ],
                "Transactions featurized before their terminal features were final: labels "
                "still in flight after label_wait_s, or a source partition still behind "
                "after source_wait_s. Zero when every feature is exact.",
            )
        )
        .with_panel(
            timeseries(
                "Decisions / s",
                "ops",
                [
                    (
                        f"sum by (decision) (rate(streamscore_decisions_total[{RATE}]))",
                        "{{decision}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries(
                "Produced / s",
                "ops",
                [
                    (
                        f"sum by (kind) (rate(streamscore_produced_messages_total[{RATE}]))",
                        "{{kind}}",
                    )
                ],
            )
        )
        .with_row(db.Row("Processes"))
        .with_panel(
            timeseries(
                "Faust event runtime p99",
                "ms",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, job) "
                        f"(rate(streamscore_faust_events_runtime_ms_bucket[{RATE}])))",
                        "{{job}}",
                    )
                ],
                "Per batch event (Faust's sensor, in milliseconds).",
            )
        )
        .with_panel(
            timeseries(
                "CPU",
                "percentunit",
                [
                    (
                        f"sum by (job, instance) (rate(process_cpu_seconds_total[{RATE}]))",
                        "{{job}} {{instance}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries(
                "Resident memory",
                "bytes",
                [
                    (
                        "sum by (job, instance) (process_resident_memory_bytes)",
                        "{{job}} {{instance}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries(
                "Messages received / s by topic (Faust)",
                "ops",
                [
                    (
                        "sum by (topic) "
                        f"(rate(streamscore_faust_messages_received_per_topic_total[{RATE}]))",
                        "{{topic}}",
                    )
                ],
            )
        )
        .annotation(drift_annotation())
    )
    return _numbered(d)


def model_health() -> dict[str, Any]:
    """Versions in service, shadow against champion, live quality, score distribution."""

    def by_role(series: str) -> str:
        return f"sum by (role) (rate(streamscore_score_ratio_{series}[{RATE}]))"

    d = (
        _base("streamscore-model-health", "streamscore / Model health", "Are the models good?")
        .with_row(db.Row("Models in service"))
        .with_panel(
            _queries(
                StateTimeline().title("Versions in service").height(6).span(24),
                [("max by (role, version) (streamscore_model_info)", "{{role}} {{version}}")],
            )
        )
        .with_panel(
            timeseries(
                "Swaps, rejections, rollbacks",
                "short",
                [
                    (
                        f"sum by (role) (increase(streamscore_model_swaps_total[{RATE}]))",
                        "swap {{role}}",
                    ),
                    (
                        "sum by (role, reason) "
                        f"(increase(streamscore_model_rejections_total[{RATE}]))",
                        "rejected {{role}} {{reason}}",
                    ),
                    (
                        f"sum by (role) (increase(streamscore_model_rollbacks_total[{RATE}]))",
                        "rollback {{role}}",
                    ),
                ],
                bars=True,
            )
        )
        .with_panel(
            timeseries(
                "Scoring time p99 by role and provider",
                "s",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, role, provider) "
                        f"(rate(streamscore_scoring_duration_seconds_bucket[{RATE}])))",
                        "{{role}} {{provider}}",
                    )
                ],
            )
        )
        .with_row(db.Row("Live quality over matured labels"))
        .with_panel(
            timeseries(
                "ROC AUC",
                "percentunit",
                [("max by (role) (streamscore_live_auc_ratio)", "{{role}}")],
            ).span(8)
        )
        .with_panel(
            timeseries(
                "Average precision",
                "percentunit",
                [("max by (role) (streamscore_live_average_precision_ratio)", "{{role}}")],
            ).span(8)
        )
        .with_panel(
            timeseries(
                "Card precision@k",
                "percentunit",
                [("max by (role) (streamscore_live_card_precision_at_k_ratio)", "{{role}}")],
            ).span(8)
        )
        .with_row(db.Row("Scores: shadow against champion"))
        .with_panel(
            timeseries(
                "Mean score by role",
                "percentunit",
                [(f"{by_role('sum')} / {by_role('count')}", "{{role}}")],
                "The challenger (shadow) next to the champion, the online model and the blend.",
            )
        )
        .with_panel(
            _queries(
                Heatmap().title("Score distribution (blend)").calculate(False).height(8).span(12),
                [
                    (
                        'sum by (le) (increase(streamscore_score_ratio_bucket{role="blend"}'
                        f"[{RATE}]))",
                        "{{le}}",
                    )
                ],
            )
        )
        .with_row(db.Row("Learning"))
        .with_panel(
            timeseries(
                "Matured labels / s",
                "ops",
                [(f"sum by (label) (rate(streamscore_matured_labels_total[{RATE}]))", "{{label}}")],
            ).span(8)
        )
        .with_panel(
            timeseries(
                "Online learner",
                "ops",
                [
                    (
                        f"sum by (outcome) (rate(streamscore_online_examples_total[{RATE}]))",
                        "{{outcome}}",
                    ),
                    (
                        f"sum(rate(streamscore_online_snapshots_published_total[{RATE}]))",
                        "snapshots",
                    ),
                ],
            ).span(8)
        )
        .with_panel(
            timeseries(
                "Trainer: validation AUC",
                "percentunit",
                [("max by (model) (streamscore_trainer_validation_auc_ratio)", "{{model}}")],
            ).span(8)
        )
        .annotation(drift_annotation())
    )
    return _numbered(d)


def drift() -> dict[str, Any]:
    """Detector states, with every firing as an annotation."""
    d = (
        _base("streamscore-drift", "streamscore / Drift", "Has the data changed?")
        .with_panel(
            timeseries(
                "Detector state (statistic / threshold)",
                "short",
                [
                    (
                        "max by (kind, detector, feature) (streamscore_drift_statistic_ratio)",
                        "{{kind}} {{detector}} {{feature}}",
                    )
                ],
                "1 is the firing threshold.",
            )
            .thresholds(_threshold_one())
            .span(24)
        )
        .with_panel(
            timeseries(
                "Drift events by detector",
                "short",
                [
                    (
                        "sum by (kind, detector, feature) "
                        f"(increase(streamscore_drift_events_total[{RATE}]))",
                        "{{kind}} {{detector}} {{feature}}",
                    )
                ],
                bars=True,
            )
        )
        .with_panel(
            timeseries(
                "Live ROC AUC",
                "percentunit",
                [("max by (role) (streamscore_live_auc_ratio)", "{{role}}")],
            )
        )
        .with_panel(
            stat(
                "Drift events in range",
                "short",
                ("sum(increase(streamscore_drift_events_total[$__range]))", "events"),
            ).height(8)
        )
        .annotation(drift_annotation())
    )
    return _numbered(d)


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "overview.json": overview,
    "model-health.json": model_health,
    "drift.json": drift,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    with warnings.catch_warnings():
        # The SDK prefers the v2 schema, which Grafana 12 serves only behind toggles.
        warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
        return {
            name: json.dumps(build(), indent=2, sort_keys=True) + "\n"
            for name, build in DASHBOARDS.items()
        }


def write(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write every dashboard; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def stale(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of dashboard files that are missing or differ from the generator."""
    return [
        name
        for name, text in render().items()
        if not (directory / name).is_file() or (directory / name).read_text("utf-8") != text
    ]
