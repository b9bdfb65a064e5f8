"""Fit every family on the reference of one model version: the ``ReferenceProfile`` the nightly runs reuse.

This sits above the families (it composes them; no family imports another): the data layer's column
statistics (``data.reference.profile_columns``), the drift family's fit on all reference rows, and the
label-free estimate's calibration when the reference has labels. The ``reference_profile`` asset calls it
once per champion version; nightly runs read the profile, never the raw reference again.
"""

from __future__ import annotations

import pandas as pd

from monitoring_pipelines.data.reference import (
    ReferenceProfile,
    profile_columns,
    reference_sample,
    require_columns,
)
from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.families.drift.calculator import fit_reference
from monitoring_pipelines.families.performance.estimation import EstimationCalculator
from monitoring_pipelines.plan.schema import MonitoringPlan


def build_profile(reference: pd.DataFrame, plan: MonitoringPlan, model_version: str) -> ReferenceProfile:
    """Profile the reference rows of ``model_version``. Raises if a feature the plan lists is missing."""
    require_columns(reference, plan, model_version)
    columns, sample = profile_columns(reference, plan), reference_sample(reference, plan)
    calibration = None
    if plan.data.reference.label in reference.columns:
        try:
            calibration = EstimationCalculator.from_plan(plan).fit(reference).calibration
        except ValueError as exc:
            raise DataSourceError(
                f"model {plan.name} version {model_version}: reference column {plan.data.reference.label!r} "
                f"cannot calibrate the label-free estimate: {exc}"
            ) from exc
    return ReferenceProfile(
        plan.name,
        str(model_version),
        len(reference),
        columns,
        sample,
        calibration,
        fit_reference(reference, plan, str(model_version)),
    )
