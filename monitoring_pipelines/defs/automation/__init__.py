"""Jobs, the nightly schedule and the sensors of one monitored model, one module each.

Sensors read Dagster's event log, the metric store and the MLflow registry, gather the inputs of a decision
(``actions.decisions``) and act on its verdict; they never import Evidently or Great Expectations (see
test_definitions.py). Every run request carries a run key, so the daemon starts an action once. Guard rails
(cooldown, one retrain at a time, no blocked day, evidence, approval) are checked before the request; the jobs
check their own preconditions (a challenger to promote, a previous champion that served, labelled data to train
on) and refuse with the reason in the audit trail.
"""

from monitoring_pipelines.defs.automation.breach_retrain import breach_retrain_sensor
from monitoring_pipelines.defs.automation.challenger_promotion import challenger_promotion_sensor
from monitoring_pipelines.defs.automation.champion_changed import champion_changed_sensor
from monitoring_pipelines.defs.automation.jobs import model_jobs
from monitoring_pipelines.defs.automation.labels_landed import labels_landed_sensor
from monitoring_pipelines.defs.automation.post_promotion_rollback import post_promotion_rollback_sensor
from monitoring_pipelines.defs.automation.schedules import nightly_schedule
from monitoring_pipelines.plan.schema import MonitoringPlan


def build_model_automation(plan: MonitoringPlan, assets: list) -> dict[str, list]:
    jobs = model_jobs(plan, assets)
    return {
        "jobs": [jobs.nightly, jobs.refresh, jobs.retrain, jobs.promote, jobs.rollback],
        "schedules": [nightly_schedule(plan, jobs.nightly)],
        "sensors": [
            labels_landed_sensor(plan, jobs.nightly),
            breach_retrain_sensor(plan, jobs.retrain),
            challenger_promotion_sensor(plan, jobs.promote),
            post_promotion_rollback_sensor(plan, jobs.rollback),
            champion_changed_sensor(plan, jobs.refresh),
        ],
    }
