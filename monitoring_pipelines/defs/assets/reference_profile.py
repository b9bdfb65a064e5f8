"""reference_profile: the champion version's reference statistics, computed once per version."""

import dagster as dg

from monitoring_pipelines.actions.registry import CHAMPION
from monitoring_pipelines.data import sources
from monitoring_pipelines.data.reference import ReferenceProfile
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.resources import RegistryResource
from monitoring_pipelines.defs.steps import common, traced
from monitoring_pipelines.families.drift import calculator as drift
from monitoring_pipelines.families.drift.stats import SMALL_REFERENCE_ROWS
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.profiling import build_profile


def reference_profile_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(
        key=n.key(m, n.REFERENCE_PROFILE), deps=[n.key(m, n.CHAMPION_MODEL)], kinds={"pandas", "mlflow"}, **common(plan)
    )
    @traced(m, "reference")
    def reference_profile(context, registry: RegistryResource) -> dg.MaterializeResult[ReferenceProfile]:
        """Reference statistics of the current champion version, computed once per version from all of its
        reference rows and reused every night: null shares, ranges and categories for the quality checks, the
        drift statistics of every model input, the score and the protected attributes, and a bounded sample
        for the illustrative HTML drift report. A reference of at most 1000 rows is flagged here: its drift
        figures are measured but not alerted on (docs/drift.md)."""
        ref = registry.registry.require(m, CHAMPION)
        if plan.data.reference.source == "mlflow_artifact":
            frame = registry.registry.read_reference(ref, plan.data.reference.artifact_path)
        else:
            frame = sources.read_reference(plan)
        profile = build_profile(frame, plan, ref.version)
        small = drift.small_reference_columns(plan, profile.drift_reference)
        untested = [
            c
            for c in plan.protected_attributes
            if c not in plan.features.model_inputs and c not in profile.drift_reference
        ]
        warning = "none"
        if small:
            limit = SMALL_REFERENCE_ROWS
            warning = (
                f"{len(small)} column(s) have at most {limit} reference values: {', '.join(small)}. "
                "Evidently's p-value tests apply there (chi-square flags any category the reference lacks), "
                "so their drift figures are stored with status unknown and never alerted on; provide a "
                "larger reference or choose their test in drift.columns (docs/drift.md)."
            )
            context.log.warning(f"model {m} version {ref.version}: {warning}")
        return dg.MaterializeResult(
            value=profile,
            metadata={
                "model_version": ref.version,
                "alias": CHAMPION,
                "dagster/row_count": profile.row_count,
                "sample_rows": len(profile.sample),
                "drift_columns": len(profile.drift_reference),
                "drift_small_reference": warning,
                "protected_attributes_not_drift_tested": ", ".join(untested) or "none",
            },
        )

    return reference_profile
