"""Resources shared by every model: the metric store, the MLflow registry, where reports go, and the IO manager
(Dagster's filesystem one, saying why a reference profile is missing).

Each reads its location at launch (``settings``), never at import; tests pass explicit values.
"""

import datetime as dt
from functools import cached_property

import dagster as dg

from monitoring_pipelines import settings
from monitoring_pipelines.actions.registry import CHAMPION, Registry
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.errors import RegistryError, StoreError
from monitoring_pipelines.store.metric_store import MetricStore


class MetricStoreResource(dg.ConfigurableResource):
    """The SQL metric store (SQLite by default, PostgreSQL when MONITORING_STORE_URL says so)."""

    url: str | None = None

    @cached_property
    def store(self) -> MetricStore:
        store = MetricStore(self.url or settings.store_url())
        store.migrate()
        return store

    def open(self, model: str, day: str | None) -> MetricStore:
        """The store, connected and migrated; when it cannot be reached the error names the model and day
        of the step that needed it (the store's own message names only the store)."""
        try:
            return self.store
        except StoreError as exc:
            raise StoreError(
                f"model {model}{f' day {day}' if day else ''}: cannot open the metric store: {exc}"
            ) from exc


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


class _ProfileAwareIO(dg.IOManager):
    """Dagster's filesystem IO manager, unchanged, except when a ``<model>/reference_profile`` that was never
    stored is loaded: then the step fails saying why (no registered model or champion in the registry, or the
    champion's profile not built yet), with model and day, instead of a bare FileNotFoundError."""

    def __init__(self, files: dg.IOManager, registry: Registry):
        self.files = files
        self.registry = registry

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        self.files.handle_output(context, obj)

    def load_input(self, context: dg.InputContext):
        try:
            return self.files.load_input(context)
        except FileNotFoundError:
            if not (context.has_asset_key and context.asset_key.path[-1] == n.REFERENCE_PROFILE):
                raise
        failure = self._missing_profile(context)
        raise failure  # outside the except: RegistryError carries no chained MLflow exception (actions/registry.py)

    def _missing_profile(self, context: dg.InputContext) -> RegistryError:
        key = context.asset_key
        model = key.path[0]
        where = f"model {model} day {context.partition_key}" if context.has_partition_key else f"model {model}"
        try:
            champion = self.registry.require(model, CHAMPION)
        except RegistryError as exc:
            return RegistryError(f"{where}: no reference profile, because {exc}")
        return RegistryError(
            f"{where}: no reference profile of the champion (version {champion.version}) was ever materialized; "
            f"materialize {key.to_user_string()} (sensor {n.scoped(model, n.REFERENCE_SENSOR)} does this)"
        )


@dg.io_manager(required_resource_keys={"registry"})
def profile_aware_io_manager(init_context) -> dg.IOManager:
    """Dagster's default IO manager (pickles under the instance's storage folder, as ``fs_io_manager``) that
    says why a reference profile is missing."""
    files = dg.FilesystemIOManager().create_io_manager(init_context)
    return _ProfileAwareIO(files, init_context.resources.registry.registry)


def default_resources() -> dict:
    return {
        "store": MetricStoreResource(),
        "registry": RegistryResource(),
        "reports": ReportsResource(),
        "io_manager": profile_aware_io_manager,
    }
