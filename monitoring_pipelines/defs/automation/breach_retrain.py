"""breach_retrain: a day's health that meets the plan's retrain rules starts retrain_model (``retrain_trigger``)."""

import datetime as dt

import dagster as dg

from monitoring_pipelines.actions import decisions
from monitoring_pipelines.actions.decisions import RetrainOutcome
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.automation.events import (
    family_statuses,
    new_health_records,
    retrain_running,
    retrain_trigger_days,
    sensor,
)
from monitoring_pipelines.defs.resources import MetricStoreResource
from monitoring_pipelines.defs.steps import quality_blocked
from monitoring_pipelines.plan.schema import MonitoringPlan


def breach_retrain_sensor(plan: MonitoringPlan, retrain_model: dg.JobDefinition) -> dg.SensorDefinition:
    m = plan.name

    @sensor(
        name=n.scoped(m, n.BREACH_SENSOR),
        job=retrain_model,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def breach_retrain(context: dg.SensorEvaluationContext, store: MetricStoreResource):
        """A critical breach named in the plan (actions.retrain.on, e.g. drift.critical) in a day's model_health
        starts retrain_model, once per model, day and trigger; not within the cooldown, not while a retrain
        runs, never on a day whose blocking quality checks failed."""
        rule = plan.actions.retrain
        if rule is None or not rule.on:
            return dg.SkipReason(f"model {m}: the plan starts no retraining (actions.retrain.on)")
        records = new_health_records(context, m)
        if not records:
            return dg.SkipReason("no new model_health")
        requests, skips, cursor = [], [], records[-1].storage_id
        for rec in records:
            day = dt.date.fromisoformat(rec.partition_key)
            statuses = family_statuses(rec)
            if not decisions.fired_rules(statuses, rule.on):
                continue
            # the guards are looked up only for a day whose health fired a rule (one tick reads many records)
            trigger = decisions.retrain_trigger(
                rule,
                day,
                statuses,
                blocked=quality_blocked(store.store, m, day),
                running=retrain_running(context, m),
                earlier_trigger_days=retrain_trigger_days(context, m, requests),
            )
            if trigger.outcome is RetrainOutcome.RUNNING:
                # look at this breach again on the next tick, once the running retrain has finished
                cursor = rec.storage_id - 1
                skips.append(f"{day}: {trigger.reason}")
                break
            if not trigger.retrain:
                skips.append(f"{day}: {trigger.reason}")
                continue
            hit = ",".join(trigger.rules)
            requests.append(
                dg.RunRequest(
                    run_key=f"retrain:{m}:{day}:{trigger.rules[0]}",
                    run_config={"ops": {f"{m}__retrain": {"config": {"trigger": hit, "day": day.isoformat()}}}},
                    tags={n.TAG_MODEL: m, n.TAG_TRIGGER: hit, n.TAG_TRIGGER_DAY: day.isoformat()},
                )
            )
        for why in skips:
            context.log.info(f"model {m}: not retraining for {why}")
        return dg.SensorResult(
            run_requests=requests,
            cursor=str(cursor),
            skip_reason=None if requests else "; ".join(skips) or "no breach that retrains",
        )

    return breach_retrain
