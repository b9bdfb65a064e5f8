"""fairness: the champion's rates and gaps per protected group and intersection (fairlearn)."""

import dagster as dg
import pandas as pd

from monitoring_pipelines.actions.registry import CHAMPION
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import headline
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.defs.steps import (
    common,
    daily_partitions,
    day_of,
    labelled,
    refuse_if_blocked,
    store_day,
    traced,
)
from monitoring_pipelines.families.fairness import calculator as fair
from monitoring_pipelines.judge.metrics import Family, MetricValue
from monitoring_pipelines.plan.schema import MonitoringPlan


def fairness_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(
        key=n.key(m, n.FAIRNESS),
        partitions_def=daily_partitions(plan),
        ins={"scoring_batch": dg.AssetIn(n.key(m, n.SCORING_BATCH))},
        deps=[n.key(m, n.LABELS)],
        kinds={"fairlearn"},
        **common(plan),
    )
    @traced(m, "fairness")
    def fairness(
        context, scoring_batch: pd.DataFrame, store: MetricStoreResource, registry: RegistryResource
    ) -> dg.MaterializeResult:
        """Fairness of the champion per protected group and per intersection of the plan's protected
        attributes (fairlearn MetricFrame): per-group rates and the parity / opportunity / odds gaps. Groups
        below the plan's minimum size are reported but never alerted on."""
        refuse_if_blocked(plan, context, store)
        day = day_of(context)
        present = [a for a in plan.protected_attributes if a in scoring_batch.columns]
        missing = [a for a in plan.protected_attributes if a not in scoring_batch.columns]
        joined = labelled(plan, scoring_batch, day, columns=[plan.data.predictions.prediction, *present])
        result = fair.compute(
            joined,
            label_col="__label",
            prediction_col=plan.data.predictions.prediction,
            protected_attributes=present,
            min_group_size=plan.fairness.min_group_size,
            min_rate_support=plan.fairness.min_rate_support,
            positive_class=plan.model.positive_class,
        )
        # a protected attribute missing from the day's log is reported (and its quality check fails), not skipped
        gone = [MetricValue(Family.FAIRNESS, "attribute_missing", 1.0, a) for a in missing]
        version = registry.registry.require(m, CHAMPION).version
        values = [*result.metrics(), *gone]
        store_day(plan, context, store, [Family.FAIRNESS], values, version, unjudged=frozenset(result.small_groups))
        head = {**result.headline(), "missing_attributes": ", ".join(missing) or "none"}
        return dg.MaterializeResult(metadata={**headline(head), "model_version": version})

    return fairness
