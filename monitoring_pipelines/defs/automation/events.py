"""What the sensors read from Dagster: model_health records after a cursor, their metadata, and the model's
retrain runs. Also the sensor decorator that shows a sensor's docstring in the UI."""

import datetime as dt
import inspect

import dagster as dg

from monitoring_pipelines.defs import names as n

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
HEALTH_PAGE = 500  # model_health records a sensor reads per tick; the cursor moves past them, the rest come next tick


def sensor(**kwargs):
    """``dg.sensor`` that shows the function's docstring in the UI (Dagster does not take it by itself)."""

    def decorate(fn):
        return dg.sensor(description=inspect.cleandoc(fn.__doc__), **kwargs)(fn)

    return decorate


def _health_records(context, model: str, limit: int, ascending: bool):
    cursor = int(context.cursor) if context.cursor else None
    return context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=n.key(model, n.MODEL_HEALTH), after_storage_id=cursor),
        limit=limit,
        ascending=ascending,
    ).records


def new_health_records(context, model: str):
    """The oldest ``HEALTH_PAGE`` model_health materializations after the sensor's cursor (a storage id)."""
    return _health_records(context, model, HEALTH_PAGE, ascending=True)


def newest_health_record(context, model: str):
    """The newest model_health materialization after the sensor's cursor, or None."""
    records = _health_records(context, model, 1, ascending=False)
    return records[0] if records else None


def meta(record, key: str, default=None):
    """A materialization's metadata value (plain), or ``default``."""
    v = record.asset_materialization.metadata.get(key)
    return default if v is None else v.value


def family_statuses(record) -> dict[str, str]:
    """A model_health record's worst status per family (its ``status.<family>`` metadata)."""
    metadata = record.asset_materialization.metadata
    return {k.removeprefix("status."): v.value for k, v in metadata.items() if k.startswith("status.")}


def retrain_running(context, model: str) -> bool:
    job = n.scoped(model, n.RETRAIN_MODEL)
    return bool(context.instance.get_runs(dg.RunsFilter(job_name=job, statuses=ACTIVE), limit=1))


def retrain_trigger_days(context, model: str, pending: list[dg.RunRequest]) -> list[dt.date]:
    """The trigger days of the model's retrain runs (any status), then of the requests this tick makes."""
    runs = context.instance.get_runs(dg.RunsFilter(job_name=n.scoped(model, n.RETRAIN_MODEL)))
    days = [r.tags.get(n.TAG_TRIGGER_DAY) for r in runs] + [r.tags[n.TAG_TRIGGER_DAY] for r in pending]
    return [dt.date.fromisoformat(d) for d in days if d]
