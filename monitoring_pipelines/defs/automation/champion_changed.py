"""champion_changed: profile a new champion version's reference, once per version and stint."""

import dagster as dg

from monitoring_pipelines.actions.operations import TAG_CHAMPION_SINCE
from monitoring_pipelines.actions.registry import CHAMPION
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.automation.events import meta, sensor
from monitoring_pipelines.defs.resources import RegistryResource
from monitoring_pipelines.plan.schema import MonitoringPlan


def champion_changed_sensor(plan: MonitoringPlan, refresh) -> dg.SensorDefinition:
    m = plan.name

    @sensor(
        name=n.scoped(m, n.REFERENCE_SENSOR),
        job=refresh,
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def champion_changed(context: dg.SensorEvaluationContext, registry: RegistryResource):
        """When the champion alias points to a version whose reference profile has not been computed yet,
        compute it (once per version), so the nightly run compares against the right reference."""
        champion = registry.registry.by_alias(m, CHAMPION)
        if champion is None:
            return dg.SkipReason(f"model {m}: no champion alias in the registry")
        latest = context.instance.fetch_materializations(n.key(m, n.REFERENCE_PROFILE), limit=1).records
        if latest and meta(latest[0], "model_version") == champion.version:
            return dg.SkipReason(f"reference profile is current (v{champion.version})")
        # a failed refresh is requested again (a new key per failure), else every nightly run would stay blocked
        failed = context.instance.get_runs(
            dg.RunsFilter(
                job_name=n.scoped(m, n.REFRESH_REFERENCE),
                statuses=[dg.DagsterRunStatus.FAILURE],
                tags={n.TAG_CHAMPION_VERSION: champion.version},
            )
        )
        # one key per stint as champion (a rolled-back-to version must be profiled again: the latest profile is
        # another version's), and a new key per failure
        stint = champion.tags.get(TAG_CHAMPION_SINCE, "")
        return dg.RunRequest(
            run_key=f"reference:{m}:v{champion.version}:{stint}:{len(failed)}",
            tags={n.TAG_MODEL: m, n.TAG_CHAMPION_VERSION: champion.version},
        )

    return champion_changed
