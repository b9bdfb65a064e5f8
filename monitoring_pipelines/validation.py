"""Full validation of monitoring plans: the plan's own structure (``plan.schema``) and what only a family knows.

The plan schema imports no family; this layer sits above both. ``FAMILY_CHECKS`` are the checks that need a
family (each returns ``(field path, message)`` for every problem), and ``parse_plan`` / ``load_plan`` /
``load_plans`` run the schema's loaders with them. Everything that loads plans for real (the code location,
``monitoring-pipelines plan validate``, the demo) loads them through this module.

Great Expectations' own verdict on a plan's expectations (``quality.expectation_problems``) is not part of
it: importing GX costs seconds, so the code location leaves it to the nightly run and the CLI asks for it.
"""

from __future__ import annotations

from pathlib import Path

from monitoring_pipelines.families.catalogue import CATALOGUE
from monitoring_pipelines.families.comparison.calculator import PROMOTABLE
from monitoring_pipelines.families.drift.stats import method_problem
from monitoring_pipelines.families.quality.calculator import derived_check_names
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


def drift_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """Each per-column drift test must be one the drift family computes on all rows, for the column's kind.
    (A column that is no model input is reported by the schema.)"""
    problems = []
    for col, test in plan.drift.columns.items():
        if col in plan.features.model_inputs:
            why = method_problem(test.method, "numerical" if col in plan.features.numerical else "categorical")
            if why:
                problems.append((f"drift.columns.{col}.method", why))
    return problems


def quality_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """The quality section against the checks the quality family derives from this plan (without GX)."""
    return plan.quality.problems(derived_check_names(plan))


def promotion_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """Promotion pools daily significance tests of comparison.<metric>_delta; only PROMOTABLE metrics have one."""
    promote = plan.actions.promote
    if promote is None or promote.metric in PROMOTABLE:
        return []
    return [
        (
            "actions.promote.metric",
            f"with a significance test across days, "
            f"{promote.metric!r} is not compared between challenger and champion; "
            f"use one of {sorted(PROMOTABLE)}",
        )
    ]


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
