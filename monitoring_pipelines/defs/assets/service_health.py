"""service_health: request volume, throughput, latency and errors from the prediction log."""

import dagster as dg
import pandas as pd

from monitoring_pipelines.actions.registry import CHAMPION
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import headline
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.defs.steps import common, daily_partitions, store_day, traced
from monitoring_pipelines.families.service import calculator as service
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import MonitoringPlan


def service_health_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(
        key=n.key(m, n.SERVICE_HEALTH),
        partitions_def=daily_partitions(plan),
        ins={"scoring_batch": dg.AssetIn(n.key(m, n.SCORING_BATCH))},
        kinds={"pandas"},
        **common(plan),
    )
    @traced(m, "service")
    def service_health(
        context, scoring_batch: pd.DataFrame, store: MetricStoreResource, registry: RegistryResource
    ) -> dg.MaterializeResult:
        """Service health from the prediction log: request count, throughput (average and busiest minute),
        latency p50/p95/p99/max, error rate, and rows served by a version other than the champion."""
        p = plan.data.predictions
        version = registry.registry.require(m, CHAMPION).version
        result = service.compute(
            scoring_batch,
            timestamp_col=p.timestamp,
            latency_col=p.latency_ms,
            status_col=p.status,
            ok_status=p.ok_status,
            version_col=p.model_version,
            expected_version=version,
        )
        store_day(plan, context, store, [Family.SERVICE], result.metrics(), version)
        return dg.MaterializeResult(metadata={**headline(result.headline()), "model_version": version})

    return service_health
