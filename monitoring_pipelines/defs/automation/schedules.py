"""The nightly schedule of one model: its previous, completed UTC day, at the plan's hour."""

import dagster as dg

from monitoring_pipelines.defs import names as n
from monitoring_pipelines.plan.schema import MonitoringPlan


def nightly_schedule(plan: MonitoringPlan, nightly) -> dg.ScheduleDefinition:
    m = plan.name
    return dg.build_schedule_from_partitioned_job(
        nightly,
        name=n.scoped(m, n.NIGHTLY_SCHEDULE),
        hour_of_day=plan.schedule.hour,
        minute_of_hour=plan.schedule.minute,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every night ({plan.schedule.cron} UTC) monitor {m}'s previous, completed UTC day.",
    )
