"""Resources shared by every model: the metric store, the MLflow registry, and where reports go.

Each reads its location at launch (``settings``), never at import; tests pass explicit values.
"""

import datetime as dt
from functools import cached_property

import dagster as dg

from monitoring_pipelines import settings
from monitoring_pipelines.actions.registry import Registry
from monitoring_pipelines.store.metric_store import MetricStore


class MetricStoreResource(dg.ConfigurableResource):
    """The SQL metric store (SQLite by default, PostgreSQL when MONITORING_STORE_URL says so)."""

    url: str | None = None

    @cached_property
    def store(self) -> MetricStore:
        store = MetricStore(self.url or settings.store_url())
        store.migrate()
        return store


class RegistryResource(dg.ConfigurableResource):
    """The MLflow model registry (MLFLOW_TRACKING_URI, default a SQLite registry under MONITORING_HOME)."""

    tracking_uri: str | None = None

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.tracking_uri or settings.mlflow_tracking_uri())


class ReportsResource(dg.ConfigurableResource):
    """Where HTML reports are written: a local folder or an fsspec URL (MONITORING_REPORTS_URL)."""

    base_url: str | None = None

    def url_for(self, model: str, kind: str, day: dt.date) -> str:
        base = (self.base_url or settings.reports_url()).rstrip("/")
        return f"{base}/{model}/{kind}/{day.isoformat()}.html"


def default_resources() -> dict:
    return {"store": MetricStoreResource(), "registry": RegistryResource(), "reports": ReportsResource()}
