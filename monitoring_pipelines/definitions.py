"""The code location: one asset group per monitoring plan, plus shared resources.

Plans are read when the location loads ($MONITORING_PLANS_DIR, default the bundled demo plan). A broken plan
fails the load with file and field named: a model is never dropped silently.
"""

from __future__ import annotations

import dagster as dg

from monitoring_pipelines.defs.automation import build_model_automation
from monitoring_pipelines.defs.model_assets import build_model_assets
from monitoring_pipelines.defs.resources import default_resources
from monitoring_pipelines.ops import telemetry
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.validation import load_plans


def build_model_defs(plan: MonitoringPlan) -> dg.Definitions:
    assets = build_model_assets(plan)
    return dg.Definitions(assets=assets, **build_model_automation(plan, assets))


def build_definitions(plans: list[MonitoringPlan]) -> dg.Definitions:
    return dg.Definitions.merge(
        *[build_model_defs(p) for p in plans],
        # The monitoring steps share one day's batch in memory and import heavy libraries lazily; in-process
        # execution avoids re-importing the code location per step (notes/library-facts.md, Dagster gotcha 7).
        dg.Definitions(resources=default_resources(), executor=dg.in_process_executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    # the project's own log lines as JSON with model / day / run fields (MONITORING_LOG_FORMAT=text for plain)
    telemetry.configure_logging()
    return build_definitions(load_plans())
