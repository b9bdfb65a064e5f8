"""drift_report: feature and prediction drift of the day against the champion's reference."""

import dagster as dg

from monitoring_pipelines.data.reference import ReferenceProfile
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import table
from monitoring_pipelines.defs.resources import MetricStoreResource, ReportsResource
from monitoring_pipelines.defs.steps import common, daily_partitions, day_of, refuse_if_blocked, store_day, traced
from monitoring_pipelines.errors import RegistryError
from monitoring_pipelines.families.drift import calculator as drift
from monitoring_pipelines.families.drift.stats import SMALL_REFERENCE_ROWS
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import MonitoringPlan


def drift_report_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(
        key=n.key(m, n.DRIFT_REPORT),
        partitions_def=daily_partitions(plan),
        deps=[n.key(m, n.SCORING_BATCH)],
        ins={"reference_profile": dg.AssetIn(n.key(m, n.REFERENCE_PROFILE))},
        kinds={"evidently"},
        **common(plan),
    )
    @traced(m, "drift")
    def drift_report(
        context, reference_profile: ReferenceProfile, store: MetricStoreResource, reports: ReportsResource
    ) -> dg.MaterializeResult:
        """Feature and prediction drift of the day against the champion's reference: Evidently's tests (or the
        plan's drift.columns choice) computed on every row of the day against statistics fitted once on the
        whole reference. These figures (metadata, metric store) are authoritative. The HTML report is
        Evidently's on a seeded sample of the day (report_sample_rows): an illustration. Metadata lists the
        drifted share and the top drifted features."""
        refuse_if_blocked(plan, context, store)
        day, version = day_of(context), reference_profile.model_version
        fitted = getattr(reference_profile, "drift_reference", None)
        if not fitted:
            raise RegistryError(
                f"model {m} day {day}: the reference profile of version {version} holds no drift statistics "
                f"(made by an older release); re-materialize {m}/{n.REFERENCE_PROFILE}"
            )
        result = drift.compute_day(plan, day, fitted, reference_rows=reference_profile.row_count)
        url = reports.url_for(m, "drift", day)
        report_reference_rows = drift.write_report(result, reference_profile.sample, plan, url)
        unjudged = result.unjudged_segments()
        store_day(plan, context, store, [Family.DRIFT], result.metrics(), version, unjudged=unjudged)
        if result.small_reference:
            context.log.warning(
                f"model {m} day {day}: {', '.join(result.small_reference)} tested against at most "
                f"{SMALL_REFERENCE_ROWS} reference values: stored as unknown"
            )
        if result.protected_missing:
            context.log.warning(
                f"model {m} day {day}: protected attribute(s) {', '.join(result.protected_missing)} "
                "absent from the prediction log: not drift-tested"
            )
        top = [
            {"feature": f.column, "method": f.method, "score": f.score, "threshold": f.threshold, "drifted": f.drifted}
            for f in result.top(5)
        ]
        judged = "yes"
        if unjudged:
            judged = (
                f"no for {', '.join(sorted(s or 'model-level figures' for s in unjudged))}: at most "
                f"{SMALL_REFERENCE_ROWS} reference values (docs/drift.md)"
            )
        return dg.MaterializeResult(
            metadata={
                "share_of_drifted_features": result.share,
                "drifted_features": len(result.drifted),
                "prediction_drift_score": result.prediction.score,
                "model_version": version,
                "top_features": table(top),
                "report": dg.MetadataValue.path(url),
                "protected_attributes_drifted": ", ".join(f.column for f in result.protected if f.drifted) or "none",
                "protected_attributes_missing": ", ".join(result.protected_missing) or "none",
                "evaluated_rows": result.evaluated_rows,
                "report_sample_rows": result.report_rows,
                "report_reference_rows": report_reference_rows,
                "judged": judged,
            }
        )

    return drift_report
