"""The jobs of one model: the nightly monitoring run, the reference refresh, and the three actions (retrain,
promote, rollback), each carried out by ``actions.operations`` and audited."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import dagster as dg

from monitoring_pipelines.actions import operations as actions
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.plan.schema import MonitoringPlan


class RetrainConfig(dg.Config):
    trigger: str = "manual"
    day: str = ""  # ISO day whose breach triggered the retrain; '' = the latest complete UTC day


class ActionConfig(dg.Config):
    reason: str = "manual"
    day: str = ""  # ISO day of the evidence / breach behind the action; '' = not tied to a day


@dataclass(frozen=True)
class ModelJobs:
    nightly: Any  # asset jobs (dg.define_asset_job): resolved when the Definitions are built
    refresh: Any
    retrain: dg.JobDefinition
    promote: dg.JobDefinition
    rollback: dg.JobDefinition


def _actor(context) -> str:
    return context.run.tags.get("dagster/sensor_name", "user")


def _alias_job(plan: MonitoringPlan, job: str, op: str, action, description: str) -> dg.JobDefinition:
    """A one-op job that moves aliases with ``action`` (actions.promote / actions.rollback), audited."""
    m = plan.name

    @dg.op(name=f"{m}__{op}", description=description)
    def alias_op(context, config: ActionConfig, store: MetricStoreResource, registry: RegistryResource) -> str:
        day = dt.date.fromisoformat(config.day) if config.day else None
        run = dict(reason=config.reason, run_id=context.run_id, actor=_actor(context), day=day)
        return action(plan, registry.registry, store.store, **run)

    @dg.job(name=n.scoped(m, job), tags={n.TAG_MODEL: m}, description=description)
    def alias_job():
        alias_op()

    return alias_job


def _retrain_job(plan: MonitoringPlan) -> dg.JobDefinition:
    m = plan.name

    @dg.op(name=f"{m}__retrain", pool="retrain")  # the instance's pool limit: one retrain at a time across models
    def retrain_op(context, config: RetrainConfig, store: MetricStoreResource, registry: RegistryResource) -> str:
        """Train a new version with the plan's recipe on the recent labelled window and register it as challenger."""
        day = dt.date.fromisoformat(config.day) if config.day else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        run = dict(trigger=config.trigger, day=day, run_id=context.run_id, actor=_actor(context))
        version = actions.retrain(plan, registry.registry, store.store, **run)
        context.log.info(f"model {m}: registered version {version} as challenger")
        return version

    @dg.job(name=n.scoped(m, n.RETRAIN_MODEL), tags={n.TAG_MODEL: m, "monitoring/kind": "retrain"})
    def retrain_model():
        """Retrain the model on its recent labelled window (plan: actions.retrain) and register the result as the
        MLflow challenger, tagged with the trigger, day, data window and this run's id."""
        retrain_op()

    return retrain_model


def model_jobs(plan: MonitoringPlan, assets: list) -> ModelJobs:
    m = plan.name
    partitioned = [a for a in assets if isinstance(a, dg.AssetsDefinition) and a.partitions_def is not None]
    nightly = dg.define_asset_job(
        n.scoped(m, n.NIGHTLY_MONITORING),
        selection=dg.AssetSelection.assets(*partitioned, n.key(m, n.INCIDENTS)),
        description=f"One UTC day of {m}: quality checks, drift, performance, fairness, service health, "
        "challenger comparison and the day's health summary.",
        tags={n.TAG_MODEL: m},
    )
    refresh = dg.define_asset_job(
        n.scoped(m, n.REFRESH_REFERENCE),
        selection=[n.key(m, n.REFERENCE_PROFILE)],
        description=f"Recompute the reference profile of {m}'s current champion version.",
        tags={n.TAG_MODEL: m},
    )
    promote = _alias_job(
        plan,
        n.PROMOTE_CHALLENGER,
        "promote",
        actions.promote,
        "Promote the MLflow challenger to champion (old champion kept as previous_champion). Refuses without a "
        "challenger. Launch it from the UI to approve a pending promotion.",
    )
    rollback = _alias_job(
        plan,
        n.ROLLBACK_CHAMPION,
        "rollback",
        actions.rollback,
        "Roll the champion back to previous_champion (only a version that served as champion before).",
    )
    return ModelJobs(nightly, refresh, _retrain_job(plan), promote, rollback)
