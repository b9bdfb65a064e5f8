"""The shadow comparison's wiring: the comparison family with what it borrows from the drift and fairness families.

Families never import each other; this module, above them, hands the comparison the drift family's test of
one numeric column (the candidate's score drift) and the fairness family's gaps (its fairness regression).
"""

from __future__ import annotations

import functools

from monitoring_pipelines.families.comparison.calculator import Peers
from monitoring_pipelines.families.drift.stats import numeric_drift
from monitoring_pipelines.families.fairness.calculator import gaps
from monitoring_pipelines.plan.schema import MonitoringPlan


def peers(plan: MonitoringPlan) -> Peers:
    """The drift and fairness computations the comparison of ``plan``'s model reuses."""
    return Peers(score_test=numeric_drift, fairness_gaps=functools.partial(gaps, plan))
