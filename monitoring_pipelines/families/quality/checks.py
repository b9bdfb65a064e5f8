"""The quality family's checks, from the plan alone: names, specs, derived-check parameters, volume bounds.

Check names come from the plan (``check_specs(plan)``), so Dagster can declare them when the code location
loads without reading any data or importing Great Expectations; their parameters come from the reference
profile and the model's recent row counts at run time (``calculator.build_suite``). Derived checks
(docs/quality.md):

| check | expectation | blocking |
|---|---|---|
| ``row_count`` | at least one row | yes |
| ``row_volume`` | row count within ``quality.volume`` (default: 0.5x-2x the median of the last 14 stored days) | no |
| ``request_id_unique`` | ids unique | yes |
| ``score_in_unit_interval`` | score within [0, 1] | yes |
| ``<col>_present`` | a context column (e.g. a protected attribute) is in the log | no |
| ``<col>_not_null`` | null share <= reference null share + NULL_TOLERANCE | yes |
| ``<col>_numeric`` | numerical feature has a numeric dtype | yes |
| ``<col>_in_range`` | numerical values within the reference range widened by RANGE_TOLERANCE (99%) | no |
| ``<col>_known_categories`` | categorical values seen in reference (99%) | no |

The plan adds expectations in GX's own shape (``quality.expectations``), changes derived ones by check name
(``quality.overrides``) or switches them off (``quality.disable``).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from monitoring_pipelines.plan.schema import MonitoringPlan, VolumeSettings

NULL_TOLERANCE = 0.05
RANGE_TOLERANCE = 0.10  # share of the reference range added on each side
MOSTLY = 0.99
# numpy dtype names, then pandas' nullable dtypes, which GX only recognises by class name ("Int64Dtype"; the
# dtype string "Int64" matched nothing, so a nullable-int column failed the blocking <col>_numeric check)
NUMERIC_DTYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
    "UInt8Dtype",
    "UInt16Dtype",
    "UInt32Dtype",
    "UInt64Dtype",
    "Float32Dtype",
    "Float64Dtype",
]

DERIVED = "derived"


@dataclass(frozen=True)
class CheckSpec:
    name: str
    column: str | None
    blocking: bool
    description: str
    expectation: str  # the GX expectation type
    origin: str = DERIVED  # "derived", "derived, quality.overrides.<name>" or "quality.expectations[i]"


# --------------------------------------------------------------------------------------------------------
# check names and specs (plan only, no GX)


def check_name(column: str, suffix: str) -> str:
    """Dagster check names allow letters, digits and '_' only."""
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', column)}_{suffix}"


def derived_specs(plan: MonitoringPlan) -> list[CheckSpec]:
    """The checks derived from the plan's columns, before ``quality.disable`` / ``quality.overrides``."""
    p, v = plan.data.predictions, plan.quality.volume
    specs = [
        CheckSpec(
            "row_count", None, True, "The day has at least one prediction.", "expect_table_row_count_to_be_between"
        ),
        CheckSpec(
            "row_volume",
            None,
            v.blocking,
            "The day's row count lies in the expected volume: plan quality.volume, else "
            f"{v.min_ratio:g}x-{v.max_ratio:g}x the median of the last {v.lookback_days} stored days "
            f"(needs {v.min_history_days}).",
            "expect_table_row_count_to_be_between",
        ),
        CheckSpec("request_id_unique", p.id, True, f"Every {p.id} appears once.", "expect_column_values_to_be_unique"),
        CheckSpec(
            "score_in_unit_interval",
            p.score,
            True,
            f"{p.score} lies within [0, 1].",
            "expect_column_values_to_be_between",
        ),
    ]
    for col in plan.features.context:
        specs.append(
            CheckSpec(
                check_name(col, "present"),
                col,
                False,
                f"The log carries the context column {col} (protected attributes feed fairness).",
                "expect_column_to_exist",
            )
        )
    for col in plan.features.model_inputs:
        specs.append(
            CheckSpec(
                check_name(col, "not_null"),
                col,
                True,
                f"Share of nulls in {col} stays within {NULL_TOLERANCE:.0%} of the reference's.",
                "expect_column_values_to_not_be_null",
            )
        )
    for col in plan.features.numerical:
        specs.append(
            CheckSpec(
                check_name(col, "numeric"),
                col,
                True,
                f"{col} arrives with a numeric type.",
                "expect_column_values_to_be_in_type_list",
            )
        )
        specs.append(
            CheckSpec(
                check_name(col, "in_range"),
                col,
                False,
                f"{MOSTLY:.0%} of {col} lies within the reference range widened by {RANGE_TOLERANCE:.0%}.",
                "expect_column_values_to_be_between",
            )
        )
    for col in plan.features.categorical:
        specs.append(
            CheckSpec(
                check_name(col, "known_categories"),
                col,
                False,
                f"{MOSTLY:.0%} of non-null {col} values were seen in the reference.",
                "expect_column_values_to_be_in_set",
            )
        )
    return specs


def derived_check_names(plan: MonitoringPlan) -> list[str]:
    """Names of the checks derived from the plan's columns, before ``quality.disable`` / ``quality.overrides``."""
    return [s.name for s in derived_specs(plan)]


def check_specs(plan: MonitoringPlan) -> list[CheckSpec]:
    """Every check of the plan's ``scoring_batch``: derived ones (minus disabled, overrides applied), then the
    plan's own expectations."""
    q = plan.quality
    specs = []
    for s in derived_specs(plan):
        if s.name in q.disable:
            continue
        o = q.overrides.get(s.name)
        if o is not None:
            s = CheckSpec(
                s.name,
                s.column,
                s.blocking if o.blocking is None else o.blocking,
                o.description or s.description,
                s.expectation,
                f"{DERIVED}, quality.overrides.{s.name}",
            )
        specs.append(s)
    for i, e in enumerate(q.expectations):
        column = e.kwargs.get("column")
        specs.append(
            CheckSpec(
                e.name,
                column if isinstance(column, str) else None,
                e.blocking,
                e.description or f"Plan expectation {e.type} ({_kwargs_text(e.kwargs)}).",
                e.type,
                f"quality.expectations[{i}]",
            )
        )
    return specs


def _kwargs_text(kwargs: dict) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------------------------------------
# volume


@dataclass(frozen=True)
class VolumeBounds:
    min_rows: int | None
    max_rows: int | None
    basis: str


def volume_bounds(settings: VolumeSettings, recent_row_counts: Sequence[float]) -> VolumeBounds:
    """The expected row count of a day. ``recent_row_counts``: the stored row counts of the model's previous
    ``lookback_days`` days (the caller reads them). Fixed plan bounds win side by side; otherwise each bound is a
    ratio of the recent median, once at least ``min_history_days`` days are stored (before that only the fixed
    bounds apply, and ``row_count`` still requires one row)."""
    counts = [float(c) for c in recent_row_counts if c is not None and not math.isnan(float(c))]
    median = statistics.median(counts) if len(counts) >= settings.min_history_days else None
    lo, hi = settings.min_rows, settings.max_rows
    if median is not None:
        lo = lo if lo is not None else math.ceil(settings.min_ratio * median)
        hi = hi if hi is not None else math.floor(settings.max_ratio * median)
    parts = []
    if settings.min_rows is not None or settings.max_rows is not None:
        parts.append(f"plan quality.volume: min_rows={settings.min_rows}, max_rows={settings.max_rows}")
    if median is not None:
        parts.append(
            f"median of {len(counts)} recent days = {median:g} rows x [{settings.min_ratio:g}, {settings.max_ratio:g}]"
        )
    else:
        parts.append(f"{len(counts)} recent day(s) stored, {settings.min_history_days} needed for a derived range")
    return VolumeBounds(lo, hi, "; ".join(parts))
