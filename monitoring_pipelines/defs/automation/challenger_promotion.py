"""challenger_promotion: promote the challenger when its shadow evidence holds the plan's rule
(``promotion_verdict``), or record a pending promotion for a person to approve."""

import dagster as dg

from monitoring_pipelines.actions import decisions
from monitoring_pipelines.actions.decisions import PromotionOutcome
from monitoring_pipelines.actions.registry import CHALLENGER, CHAMPION
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.automation.events import sensor
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.families.comparison import calculator as cmp
from monitoring_pipelines.plan.schema import MonitoringPlan


def challenger_promotion_sensor(plan: MonitoringPlan, promote_challenger: dg.JobDefinition) -> dg.SensorDefinition:
    m = plan.name
    job = n.scoped(m, n.PROMOTE_CHALLENGER)

    @sensor(
        name=n.scoped(m, n.PROMOTE_SENSOR),
        job=promote_challenger,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def challenger_promotion(
        context: dg.SensorEvaluationContext, store: MetricStoreResource, registry: RegistryResource
    ):
        """Promote the challenger when its shadow evidence since it became challenger holds the plan's rule
        (actions.promote): enough labelled days, pooled ROC AUC uplift, a significant combined DeLong test, no
        fairness gap widened beyond the tolerance, no day with failed blocking checks. Days inside its training
        window, and days used up by an earlier rollback of the same version, never count. With approval: manual
        it records a pending promotion (audit trail and an observation on challenger_comparison) and nothing
        moves: a person launches promote_challenger."""
        rule = plan.actions.promote
        if rule is None:
            return dg.SkipReason(f"model {m}: the plan allows no promotion")
        reg = registry.registry
        challenger = reg.by_alias(m, CHALLENGER)
        champion = reg.require(m, CHAMPION) if challenger is not None else None
        fresh = challenger is not None and challenger.version != champion.version
        verdict = decisions.promotion_verdict(
            rule,
            challenger=challenger.version if challenger else None,
            champion=champion.version if champion else None,
            evidence=cmp.stored_evidence(store.store, plan, challenger) if fresh else None,
        )
        if not verdict.holds:
            return dg.SkipReason(verdict.reason)
        day = verdict.day.isoformat()
        if verdict.outcome is PromotionOutcome.AWAIT_APPROVAL:
            audit = store.store.actions(m)
            already = audit[
                (audit["action"] == "promote")
                & (audit["status"] == "pending_approval")
                & (audit["to_version"] == challenger.version)
            ]
            skip = f"{verdict.reason}; awaiting approval: launch {job}"
            if not already.empty:
                return dg.SkipReason(skip)
            store.store.record_action(
                model=m,
                action="promote",
                status="pending_approval",
                trigger=verdict.reason,
                partition_date=verdict.day,
                to_version=challenger.version,
                actor=context.sensor_name,
            )
            pending = dg.AssetObservation(
                asset_key=n.key(m, n.CHALLENGER_COMPARISON),
                partition=day,
                metadata={
                    "pending_promotion": f"v{challenger.version}",
                    "evidence": verdict.reason,
                    "approve": f"launch job {job} with config "
                    f"ops.{m}__promote.config = {{reason: 'approved: ...', day: '{day}'}}",
                },
            )
            return dg.SensorResult(skip_reason=skip, asset_events=[pending])
        return dg.RunRequest(
            run_key=f"promote:{m}:v{challenger.version}:{day}",
            run_config={"ops": {f"{m}__promote": {"config": {"reason": verdict.reason, "day": day}}}},
            tags={n.TAG_MODEL: m, n.TAG_TRIGGER: "evidence", n.TAG_TRIGGER_DAY: day},
        )

    return challenger_promotion
