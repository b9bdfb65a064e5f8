"""The asset graph of one monitored model (DESIGN section 3), built from its plan.

Every asset is thin (one module each under ``defs/assets/``): load, call the family, judge the figures against
the plan, write the day's rows to the metric store in one transaction, and return the figures a person looks at
first as metadata.
"""

import dagster as dg

from monitoring_pipelines.defs.assets.challenger_comparison import challenger_comparison_asset
from monitoring_pipelines.defs.assets.drift_report import drift_report_asset
from monitoring_pipelines.defs.assets.external import external_specs
from monitoring_pipelines.defs.assets.fairness import fairness_asset
from monitoring_pipelines.defs.assets.incident_overview import incident_overview_asset
from monitoring_pipelines.defs.assets.model_health import model_health_asset
from monitoring_pipelines.defs.assets.performance import performance_asset
from monitoring_pipelines.defs.assets.reference_profile import reference_profile_asset
from monitoring_pipelines.defs.assets.scoring_batch import scoring_batch_asset
from monitoring_pipelines.defs.assets.service_health import service_health_asset
from monitoring_pipelines.plan.schema import MonitoringPlan

# in graph order: the external inputs, then each monitoring step
ASSET_BUILDERS = (
    reference_profile_asset,
    scoring_batch_asset,
    drift_report_asset,
    performance_asset,
    fairness_asset,
    service_health_asset,
    challenger_comparison_asset,
    model_health_asset,
    incident_overview_asset,
)


def build_model_assets(plan: MonitoringPlan) -> list[dg.AssetSpec | dg.AssetsDefinition]:
    return [*external_specs(plan), *(build(plan) for build in ASSET_BUILDERS)]
