"""The assets other systems make: the prediction log (serving), the labels (labelling), the MLflow model."""

import dagster as dg

from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.steps import common, daily_partitions
from monitoring_pipelines.plan.schema import MonitoringPlan


def external_specs(plan: MonitoringPlan) -> list[dg.AssetSpec]:
    m, predictions, labels = plan.name, plan.data.predictions, plan.data.labels
    prediction_log = dg.AssetSpec(
        n.key(m, n.PREDICTION_LOG),
        partitions_def=daily_partitions(plan),
        kinds={predictions.source},
        description=f"The day's prediction log of {m}, written by the serving system "
        f"({predictions.source}: {predictions.path or predictions.table}).",
        **common(plan),
    )
    label_log = dg.AssetSpec(
        n.key(m, n.LABELS),
        kinds={labels.source} if labels else set(),
        description=f"Delayed ground-truth labels of {m} (expected about "
        f"{labels.expected_delay_days if labels else '?'} days after the prediction).",
        **common(plan),
    )
    champion_model = dg.AssetSpec(
        n.key(m, n.CHAMPION_MODEL),
        kinds={"mlflow"},
        description=f"The MLflow registered model {m}; aliases champion, challenger and previous_champion name "
        "versions.",
        **common(plan),
    )
    return [prediction_log, label_log, champion_model]
