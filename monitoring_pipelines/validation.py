"""Full validation of monitoring plans: the plan's own structure (``plan.schema``) and what only a family knows.

The plan schema imports no family; this layer sits above both. ``FAMILY_CHECKS`` are the checks that need a
family (each returns ``(field path, message)`` for every problem), and ``parse_plan`` / ``load_plan`` /
``load_plans`` run the schema's loaders with them. Everything that loads plans for real (the code location,
``monitoring-pipelines plan validate``, the demo) loads them through this module.

Great Expectations' own verdict on a plan's expectations (``quality.expectation_problems``) is not part of
it: importing GX costs seconds, so the code location leaves it to the nightly run and the CLI asks for it.
"""

from __future__ import annotations

import math
from pathlib import Path

from monitoring_pipelines.families.catalogue import CATALOGUE
from monitoring_pipelines.families.comparison.names import PROMOTABLE
from monitoring_pipelines.families.drift.stats import METHODS, method_problem
from monitoring_pipelines.families.quality.checks import derived_check_names
from monitoring_pipelines.plan import schema
from monitoring_pipelines.plan.schema import MonitoringPlan

_CATALOGUED = frozenset(f"{family.value}.{metric}" for family, metrics in CATALOGUE.items() for metric in metrics)


def threshold_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """A threshold on a metric no family computes would never fire: refuse it (typos included)."""
    return [
        (
            f"thresholds.{key}",
            f"unknown metric {key!r}; expected '<family>.<metric>' from the catalogue in docs/plans.md",
        )
        for key in plan.thresholds
        if key not in _CATALOGUED
    ]


# The largest score of a bounded distance: beyond it a threshold never fires. Jensen-Shannon with the natural
# logarithm (scipy's default, as Evidently) reaches sqrt(ln 2) on disjoint distributions; Hellinger reaches 1.
_MAX_DISTANCE = {"jensenshannon": math.sqrt(math.log(2)), "hellinger": 1.0}


def drift_threshold_problem(method: str, threshold: float) -> str | None:
    """Why ``threshold`` would silently disable (or always fire) the ``method`` test, or None when it is fine.
    A p-value test flags drift below its threshold, so it needs 0 < threshold < 1; a distance flags drift at
    or above it, so it needs threshold > 0 (and at most the largest possible distance)."""
    if method not in METHODS:
        return None  # the method itself is refused (method_problem)
    if METHODS[method].p_value:
        if not 0 < threshold < 1:
            return (
                f"{threshold} is not a p-value between 0 and 1 (exclusive): '{method}' flags drift when its p-value "
                f"is below the threshold, so {'no column would ever drift' if threshold <= 0 else 'every column would drift'}"
            )
        return None
    if threshold <= 0:
        return f"{threshold} is not above 0: every '{method}' distance is at least 0, so every column would drift"
    top = _MAX_DISTANCE.get(method)
    if top is not None and threshold > top:
        return f"{threshold} is above {top:.4g}, the largest '{method}' distance: no column would ever drift"
    return None


def drift_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """Each per-column drift test must be one the drift family computes on all rows, for the column's kind,
    with a threshold that can both flag and clear drift. (A column that is no model input is reported by the
    schema.)"""
    problems = []
    for col, test in plan.drift.columns.items():
        if col in plan.features.model_inputs:
            why = method_problem(test.method, "numerical" if col in plan.features.numerical else "categorical")
            if why:
                problems.append((f"drift.columns.{col}.method", why))
        why = drift_threshold_problem(test.method, test.threshold)
        if why:
            problems.append((f"drift.columns.{col}.threshold", why))
    return problems


def quality_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """The quality section against the checks the quality family derives from this plan (without GX)."""
    return plan.quality.problems(derived_check_names(plan))


def promotion_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """Promotion pools daily significance tests of comparison.<metric>_delta; only PROMOTABLE metrics have one.
    Its guards must be able to hold and to fail: the promotable metrics lie in [0, 1], so their delta lies in
    [-1, 1], and a fairness gap (a difference of rates) widens by at most 1."""
    promote = plan.actions.promote
    if promote is None:
        return []
    problems = []
    if promote.metric not in PROMOTABLE:
        problems.append(
            (
                "actions.promote.metric",
                f"with a significance test across days, "
                f"{promote.metric!r} is not compared between challenger and champion; "
                f"use one of {sorted(PROMOTABLE)}",
            )
        )
    if promote.min_uplift >= 1:
        problems.append(
            (
                "actions.promote.min_uplift",
                f"{promote.min_uplift} can never be reached: the {promote.metric} delta of two models is below 1, "
                "so no challenger would ever be promoted",
            )
        )
    elif promote.min_uplift <= -1:
        problems.append(
            (
                "actions.promote.min_uplift",
                f"{promote.min_uplift} is met by any challenger: the {promote.metric} delta is never below -1",
            )
        )
    if promote.max_fairness_regression >= 1:
        problems.append(
            (
                "actions.promote.max_fairness_regression",
                f"{promote.max_fairness_regression} never refuses a challenger: a fairness gap widens by at most 1",
            )
        )
    return problems


FAMILY_CHECKS: tuple[schema.PlanCheck, ...] = (threshold_problems, drift_problems, quality_problems, promotion_problems)


def parse_plan(raw: object, file: str) -> MonitoringPlan:
    """Validate an already-parsed YAML document completely. Raises PlanError with every problem found."""
    return schema.parse_plan(raw, file, FAMILY_CHECKS)


def load_plan(path: str | Path) -> MonitoringPlan:
    """Read and validate one plan file completely. Raises PlanError with every problem found."""
    return schema.load_plan(path, FAMILY_CHECKS)


def load_plans(directory: str | Path | None = None) -> list[MonitoringPlan]:
    """Every plan of ``directory`` (default ``$MONITORING_PLANS_DIR``, else the bundled plan), validated
    completely; one broken plan fails them all, with every problem of every file."""
    return schema.load_plans(directory, FAMILY_CHECKS)
