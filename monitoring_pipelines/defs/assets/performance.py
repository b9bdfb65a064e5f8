"""performance: the champion's realised performance once labels arrive, and its label-free estimate daily."""

import dagster as dg
import pandas as pd

from monitoring_pipelines.data import sources
from monitoring_pipelines.data.reference import ReferenceProfile
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import headline, num
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.defs.steps import common, daily_partitions, day_of, refuse_if_blocked, store_day, traced
from monitoring_pipelines.families.performance import calculator as perf
from monitoring_pipelines.families.performance import estimation
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import MonitoringPlan


def performance_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(
        key=n.key(m, n.PERFORMANCE),
        partitions_def=daily_partitions(plan),
        ins={
            "scoring_batch": dg.AssetIn(n.key(m, n.SCORING_BATCH)),
            "reference_profile": dg.AssetIn(n.key(m, n.REFERENCE_PROFILE)),
        },
        deps=[n.key(m, n.LABELS)],
        kinds={"scikit-learn"},
        **common(plan),
    )
    @traced(m, "performance")
    def performance(
        context,
        scoring_batch: pd.DataFrame,
        reference_profile: ReferenceProfile,
        store: MetricStoreResource,
        registry: RegistryResource,
    ) -> dg.MaterializeResult:
        """Performance of the champion on the day's rows. Realised once labels arrive: ROC AUC, PR AUC,
        accuracy, precision, recall, F1, log loss, Brier score, calibration error and the label coverage (below
        the plan's minimum coverage the day is partial and not judged). Estimated from the scores alone every
        day (family performance_estimated, confidence-based performance estimation). Re-run when labels land."""
        refuse_if_blocked(plan, context, store)
        day = day_of(context)
        p, lab = plan.data.predictions, plan.data.labels
        served = scoring_batch[scoring_batch[p.score].notna()]
        labels = (
            sources.read_labels(plan, day, keep_duplicates=True).rename(columns={lab.id: p.id})
            if lab is not None
            else pd.DataFrame({p.id: [], "label": []})
        )
        result = perf.compute(
            served,
            labels,
            id_col=p.id,
            label_col=lab.label if lab else "label",
            score_col=p.score,
            prediction_col=p.prediction,
            positive_class=plan.model.positive_class,
            min_coverage=lab.min_coverage if lab else 1.0,
        )
        families, values = [Family.PERFORMANCE], result.metrics()
        estimated = None
        if reference_profile.calibration is not None:
            estimated = estimation.estimate(
                served[p.score].to_numpy(dtype=float),
                (served[p.prediction] == plan.model.positive_class).to_numpy(),
                reference_profile.calibration,
            )
            families, values = [*families, Family.PERFORMANCE_ESTIMATED], [*values, *estimated.metrics()]
        version = reference_profile.model_version
        store_day(plan, context, store, families, values, version)
        return dg.MaterializeResult(
            metadata={
                **headline(result.headline()),
                "estimated_roc_auc": num(estimated.roc_auc if estimated else None),
                "estimated_accuracy": num(estimated.accuracy if estimated else None),
                "model_version": version,
            }
        )

    return performance
