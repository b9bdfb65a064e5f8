"""post_promotion_rollback: roll back a promoted champion that breaches the plan's rules on its first served
days when the previous champion was better (``rollback_decision``)."""

import dagster as dg

from monitoring_pipelines.actions import decisions
from monitoring_pipelines.actions.operations import TAG_CHAMPION_SINCE
from monitoring_pipelines.actions.registry import CHAMPION, PREVIOUS_CHAMPION
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.automation.events import newest_health_record, sensor
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.families.comparison import calculator as cmp
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import MonitoringPlan


def post_promotion_rollback_sensor(plan: MonitoringPlan, rollback_champion: dg.JobDefinition) -> dg.SensorDefinition:
    m = plan.name

    @sensor(
        name=n.scoped(m, n.ROLLBACK_SENSOR),
        job=rollback_champion,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def post_promotion_rollback(
        context: dg.SensorEvaluationContext, store: MetricStoreResource, registry: RegistryResource
    ):
        """Roll back a promoted champion that breaches the plan's rollback triggers (actions.rollback.on) on one
        of the first within_days_of_promotion days it served (days attributed by the model_version of the
        prediction log, not by the alias at run time), when the previous champion, scored in shadow on the same
        days, was better. One rollback per promotion (run key)."""
        rule = plan.actions.rollback
        if rule is None or not rule.on:
            return dg.SkipReason(f"model {m}: the plan allows no rollback")
        newest = newest_health_record(context, m)
        if newest is None:
            return dg.SkipReason("no new model_health")
        cursor = str(newest.storage_id)
        reg = registry.registry
        champion, previous = reg.require(m, CHAMPION), reg.by_alias(m, PREVIOUS_CHAMPION)
        promoted = previous is not None and TAG_CHAMPION_SINCE in champion.tags
        stint, rows = [], None
        if promoted:
            served = cmp.served_by(store.store.rows(m, family=Family.COMPARISON.value, metric="served_rows"))
            stint = decisions.champion_stint(served, champion.version)
            window = stint[: rule.within_days_of_promotion]
            rows = store.store.rows(m, start=window[0], end=window[-1]) if window else None
        decision = decisions.rollback_decision(
            rule,
            champion=champion.version,
            promoted=promoted,
            previous=previous.version if previous else None,
            stint=stint,
            rows=rows,
        )
        if not decision.rollback:
            return dg.SensorResult(cursor=cursor, skip_reason=decision.reason)
        config = {"reason": decision.reason, "day": decision.last_served_day.isoformat()}
        return dg.SensorResult(
            cursor=cursor,
            run_requests=[
                dg.RunRequest(
                    run_key=f"rollback:{m}:v{champion.version}:{champion.tags[TAG_CHAMPION_SINCE]}",
                    run_config={"ops": {f"{m}__rollback": {"config": config}}},
                    tags={
                        n.TAG_MODEL: m,
                        n.TAG_TRIGGER: decision.trigger,
                        n.TAG_TRIGGER_DAY: decision.trigger_day.isoformat(),
                    },
                )
            ],
        )

    return post_promotion_rollback
