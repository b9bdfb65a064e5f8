"""scoring_batch: the day's predictions and their quality checks (Great Expectations), one asset check each."""

import datetime as dt

import dagster as dg

from monitoring_pipelines.actions.registry import CHAMPION
from monitoring_pipelines.data import sources
from monitoring_pipelines.data.reference import ReferenceProfile
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import num
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource, ReportsResource
from monitoring_pipelines.defs.steps import common, daily_partitions, day_of, store_day, traced, update_incidents
from monitoring_pipelines.errors import RegistryError
from monitoring_pipelines.families.quality import calculator as quality
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import MonitoringPlan


def scoring_batch_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name
    batch_key = n.key(m, n.SCORING_BATCH)
    specs = [
        dg.AssetCheckSpec(s.name, asset=batch_key, blocking=s.blocking, description=s.description)
        for s in quality.check_specs(plan)
    ]

    @dg.asset(
        key=batch_key,
        partitions_def=daily_partitions(plan),
        deps=[n.key(m, n.PREDICTION_LOG)],
        ins={"reference_profile": dg.AssetIn(n.key(m, n.REFERENCE_PROFILE))},
        check_specs=specs,
        kinds={"pandas", "great_expectations"},
        **common(plan),
    )
    @traced(m, "quality")
    def scoring_batch(
        context,
        reference_profile: ReferenceProfile,
        store: MetricStoreResource,
        registry: RegistryResource,
        reports: ReportsResource,
    ):  # value: the day's DataFrame (no annotation: checks add outputs)
        """The day's predictions, checked with Great Expectations against the champion's reference profile, the
        model's recent daily volume and the plan's own expectations (docs/quality.md). Each expectation is an
        asset check; blocking ones stop drift, performance, fairness and comparison for the day, so a broken
        batch never feeds a decision."""
        day = day_of(context)
        try:
            champion = registry.registry.require(m, CHAMPION)
        except RegistryError as exc:
            raise RegistryError(f"model {m} day {day}: {exc}") from exc
        if champion.version != reference_profile.model_version:
            raise RegistryError(
                f"model {m} day {day}: the reference profile is for version {reference_profile.model_version} but the "
                f"champion is version {champion.version}; materialize {m}/{n.REFERENCE_PROFILE} first "
                f"(sensor {n.scoped(m, n.REFERENCE_SENSOR)} does this)"
            )
        lookback = plan.quality.volume.lookback_days
        recent = store.store.rows(
            m,
            family=Family.QUALITY.value,
            metric="row_count",
            start=day - dt.timedelta(days=lookback),
            end=day - dt.timedelta(days=1),
        )
        batch = sources.read_predictions(plan, day)
        result = quality.validate(batch, plan, reference_profile, recent_row_counts=recent["value"].tolist())
        # a blocked day keeps only its quality rows: figures of an earlier run of this day would otherwise
        # survive as if the batch could be trusted (and feed evidence for promotions)
        families = list(Family) if result.blocking_failed else [Family.QUALITY]
        store_day(plan, context, store, families, result.metrics(), champion.version)
        if result.blocking_failed:
            # model_health never runs on a blocked day: the data-quality incident is raised (and sent) here
            update_incidents(plan, context, store, reports, day, store.store.rows(m, start=day, end=day))
        return dg.MaterializeResult(
            value=batch,
            check_results=[_check_result(m, day, o) for o in result.outcomes],
            metadata={
                "dagster/row_count": len(batch),
                "model_version": champion.version,
                "disabled_checks": ", ".join(plan.quality.disable) or "none",
                "failed_checks": len(result.failed),
                "blocking_failed_checks": len(result.blocking_failed),
                "failed": dg.MetadataValue.md(", ".join(o.spec.name for o in result.failed) or "_none_"),
            },
        )

    return scoring_batch


def _check_result(model: str, day: dt.date, o) -> dg.AssetCheckResult:
    """One expectation's outcome as an asset check result, explained by its own metadata."""
    return dg.AssetCheckResult(
        check_name=o.spec.name,
        passed=o.passed,
        severity=dg.AssetCheckSeverity.ERROR if o.spec.blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "model": model,
            "day": day.isoformat(),
            "column": o.spec.column or "",
            "expectation": o.expectation,
            "expected": dg.MetadataValue.json(o.expected),
            "observed": num(o.observed),
            "unexpected_count": num(o.unexpected_count),
            "unexpected_share": num(o.unexpected_share),
            "unexpected_examples": dg.MetadataValue.json([str(x) for x in o.examples]),
            "observed_value": o.observed_text or "",
            "origin": o.spec.origin,
            "error": o.error or "",
        },
        description=o.spec.description,
    )
