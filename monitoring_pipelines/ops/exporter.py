"""Prometheus exposition of the metric store: the latest figure and status of each model's headline metrics.

The exporter reads the SQL view ``latest_metric_values`` (sql/views/004_latest_metric_values.sql) at every scrape, so
Prometheus sees what the nightly runs stored, without a second copy of the data. Two ways to serve it
(docs/observability.md):

    monitoring-pipelines metrics serve --host 127.0.0.1 --port 9464   # an HTTP endpoint Prometheus scrapes
    monitoring-pipelines metrics textfile /var/lib/node_exporter/monitoring.prom   # for node_exporter

Series (all gauges; names and labels are stable, documented in docs/observability.md):

    monitoring_metric_value{model, version, family, metric, segment}        latest known figure
    monitoring_metric_status{model, version, family, metric, segment}       0 ok, 1 unknown, 2 warning, 3 critical
    monitoring_metric_day_timestamp_seconds{model, version, family, metric, segment}   day of that status (UTC)
    monitoring_family_status{model, family}                                 worst status of the latest day

A store that cannot be read makes the scrape fail (HTTP 500, Prometheus marks the target down): an
exporter that served stale or empty figures when its source is broken would hide the outage.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from monitoring_pipelines.judge.metrics import Status
from monitoring_pipelines.store.metric_store import MetricStore

LABELS = ["model", "version", "family", "metric", "segment"]

# Rows with a segment are exported only for these metrics (per feature / per attribute); every model-level
# row (segment '') is exported. Per-group rates and per-check rows stay in the store and the dashboards:
# they would multiply the series count without being what an alert rule or an overview panel needs.
SEGMENTED = {
    ("drift", "feature_drift_score"),
    ("drift", "protected_drift_score"),
    ("fairness", "demographic_parity_difference"),
    ("fairness", "equal_opportunity_difference"),
    ("fairness", "equalized_odds_difference"),
}


def status_code(status: str) -> int:
    """The numeric status of the exposition: the rank judge/health.py uses (ok 0, unknown 1, warning 2, critical 3)."""
    return Status(status).rank


def _day_seconds(day) -> float:
    day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


class MetricStoreCollector(Collector):
    """A prometheus_client collector that queries the store on every scrape."""

    def __init__(self, store: MetricStore):
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        value = GaugeMetricFamily(
            "monitoring_metric_value",
            "Latest known figure of a monitored metric (the most recent day on which it could be computed).",
            labels=LABELS,
        )
        status = GaugeMetricFamily(
            "monitoring_metric_status",
            "Status of the metric on its latest day: 0 ok, 1 unknown, 2 warning, 3 critical.",
            labels=LABELS,
        )
        day = GaugeMetricFamily(
            "monitoring_metric_day_timestamp_seconds", "Start (UTC) of the day the status refers to.", labels=LABELS
        )
        family = GaugeMetricFamily(
            "monitoring_family_status",
            "Worst status of a family on the model's latest day: 0 ok, 1 unknown, 2 warning, 3 critical.",
            labels=["model", "family"],
        )
        rows = self.store.latest_metric_values("reading the latest metric values for Prometheus")
        families = self.store.latest_family_statuses("reading the latest family statuses for Prometheus")
        for model, version, fam, metric, segment, partition_date, st, latest in rows:
            if segment and (fam, metric) not in SEGMENTED:
                continue
            labels = [model, version or "", fam, metric, segment]
            if latest is not None and not math.isnan(float(latest)):
                value.add_metric(labels, float(latest))
            status.add_metric(labels, status_code(st))
            day.add_metric(labels, _day_seconds(partition_date))
        for model, fam, st in families:
            family.add_metric([model, fam], status_code(st))
        yield from (value, status, day, family)


def registry_for(store: MetricStore) -> CollectorRegistry:
    """A fresh registry holding only the store collector (no process/platform metrics of the exporter)."""
    store.migrate()  # an empty store serves a valid, empty exposition rather than "no such table"
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricStoreCollector(store))
    return registry


def exposition(store: MetricStore) -> str:
    """The current exposition as text (what a scrape returns)."""
    return generate_latest(registry_for(store)).decode()
