"""What every monitoring asset of a model does around its family: trace the step, judge and store the day's
figures, update incidents, refuse a blocked day, and join the day's served rows with their labels."""

import datetime as dt
import functools

import dagster as dg
import pandas as pd

from monitoring_pipelines.actions import decisions
from monitoring_pipelines.actions.registry import CHAMPION
from monitoring_pipelines.data import sources
from monitoring_pipelines.defs import metadata
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.resources import MetricStoreResource, ReportsResource
from monitoring_pipelines.errors import BlockedDayError
from monitoring_pipelines.families.performance.calculator import join_labels
from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.incidents.alerting import dispatch
from monitoring_pipelines.judge.health import assess_rows, judge, read_history
from monitoring_pipelines.judge.metrics import Family, MetricValue
from monitoring_pipelines.ops import telemetry
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.store.metric_store import MetricStore

_log = telemetry.get_logger("monitoring_pipelines.assets")


def common(plan: MonitoringPlan) -> dict:
    """Arguments every asset of the model shares: its group and owners."""
    return dict(group_name=plan.name, owners=[f"team:{plan.owners.team}"])


def daily_partitions(plan: MonitoringPlan) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=plan.schedule.start_date.isoformat(), timezone="UTC")


def day_of(context) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


def traced(model: str, step: str):
    """Run an asset's body as a monitoring step: a span (when OTEL_* configures an endpoint) and log lines
    tagged with model, day, run and family; the row count and version come from the result's metadata.
    A step using the metric store opens it first, so a store that cannot be reached fails the step with an
    error naming the model and day (``MetricStoreResource.open``)."""

    def wrap(fn):
        @functools.wraps(fn)  # Dagster reads the parameters and docstring through __wrapped__
        def body(context, *args, **kwargs):
            day = context.partition_key if context.has_partition_key else None
            with telemetry.step(step, model=model, day=day, run_id=context.run_id) as span:
                store = kwargs.get("store")
                if isinstance(store, MetricStoreResource):
                    store.open(model, day)
                result = fn(context, *args, **kwargs)
                meta = getattr(result, "metadata", None) or {}
                rows = metadata.raw(meta.get("dagster/row_count", meta.get("evaluated_rows")))
                span.set(rows=rows, model_version=metadata.raw(meta.get("model_version")))
                done = f" ({rows} rows)" if rows is not None else ""
                _log.info("model %s: %s of %s done%s", model, step, day or "all days", done)
                return result

        return body

    return wrap


def store_day(
    plan: MonitoringPlan,
    context,
    store: MetricStoreResource,
    families: list[Family],
    values: list[MetricValue],
    version: str,
    alias: str = CHAMPION,
    unjudged: frozenset[str] = frozenset(),
):
    """Judge the day's figures against the plan (with history) and replace the day's rows of ``families``."""
    day = day_of(context)
    history = read_history(store.store, plan, day, [f.value for f in families])
    rows = judge(
        plan,
        day,
        values,
        model_version=version,
        alias=alias,
        run_id=context.run_id,
        history=history,
        unjudged_segments=unjudged,
    )
    store.store.replace_rows(plan.name, day, [f.value for f in families], rows)
    return rows


def update_incidents(
    plan: MonitoringPlan, context, store: MetricStoreResource, reports: ReportsResource, day: dt.date, rows
):
    """Judge the day's stored rows against the plan (with history), open / escalate / resolve incidents and
    send each change to the plan's channels. Returns (assessments, changes, delivery report)."""
    assessments = assess_rows(plan, day, rows, read_history(store.store, plan, day))
    changes = incidents.update(store.store, plan, day, rows, run_id=context.run_id, assessments=assessments)
    delivery = dispatch(
        store.store,
        plan,
        changes,
        run_id=context.run_id,
        report_url=lambda c: reports.url_for(plan.name, "drift", c.day) if c.family == "drift" else None,
    )
    if not delivery.ok:
        context.log.warning(delivery.summary())
    return assessments, changes, delivery


def quality_blocked(store: MetricStore, model: str, day: dt.date) -> bool:
    """Whether the stored quality result of ``day`` has failed blocking checks."""
    return decisions.blocked_day(day, store.blocked_days(model, start=day, end=day)).blocked


def refuse_if_blocked(plan: MonitoringPlan, context, store: MetricStoreResource) -> None:
    """Blocking quality checks stop every decision-feeding figure of the day, also on later re-runs
    (late labels, manual launches), not only inside the nightly run where Dagster skips the steps."""
    day, m = day_of(context), plan.name
    if quality_blocked(store.store, m, day):
        raise BlockedDayError(
            f"model {m} day {day}: blocking quality checks of {m}/{n.SCORING_BATCH} failed; "
            f"{context.asset_key.to_user_string()} is not computed on a broken batch"
        )


def labelled(plan: MonitoringPlan, batch: pd.DataFrame, day: dt.date, columns: list[str] | None = None):
    """Served rows (those with a score; failed requests have none) joined with the labels known so far,
    under the same label rules as performance (performance.join_labels), the label in column ``__label``."""
    lab, p = plan.data.labels, plan.data.predictions
    served = batch[batch[p.score].notna()]
    if lab is None:
        return served.iloc[0:0].assign(**{"__label": []})
    labels = sources.read_labels(plan, day, keep_duplicates=True).rename(columns={lab.id: p.id})
    return join_labels(served, labels, id_col=p.id, label_col=lab.label, columns=columns, as_col="__label").rows
