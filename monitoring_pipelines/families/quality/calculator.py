"""Data quality of one day's scoring batch, with Great Expectations 1.x (the only module that imports it).

Check names come from the plan alone (``check_specs(plan)``), so Dagster can declare them when the code
location loads without reading any data (or importing GX); their parameters come from the reference profile
and the model's recent row counts at run time. Derived checks (docs/quality.md):

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
(``quality.overrides``) or switches them off (``quality.disable``). GX checks the types and kwargs when the
suite is built (first use) or by ``expectation_problems`` (what ``plan validate`` should call), never at
code-location load: ``import great_expectations`` costs about 4 s.

**How a day is validated (column-wise, in row chunks).** GX's pandas engine filters and copies the whole
frame for every column expectation, so one ``validate()`` of a wide day costs far more than the same
expectations run on the columns they read. Each expectation therefore runs on a frame of just its columns,
and the result is exactly what one ``validate()`` on the whole day gives (``validate_single``; the tests
compare every field):

* row-local map expectations (not null, between, in set, regex, ...: each row's verdict depends on that row
  alone) run per chunk of ``chunk_rows`` rows; element, missing and unexpected counts are summed, the
  unexpected examples concatenated in row order, and GX's own ``mostly`` rule and result formatter are applied
  to the sums;
* uniqueness runs per bucket of the value's hash (``ceil(rows / chunk_rows)`` buckets): equal values land in
  the same bucket, so the duplicate counts add up exactly, and the examples are merged by row number;
* the others (mean, quantiles, dtype, column pairs, ...) run once over all rows of their columns;
* row-count expectations run on a zero-column frame with the day's row count; schema expectations (column
  exists, column set) on the day's columns with no rows.

``validate_parquet`` reads a parquet day chunk by chunk (one column set at a time), so memory is bounded by a
chunk of one column set (or a parquet row group), the id column as Arrow for uniqueness, and one whole column
for the other non-row-local expectations.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
import shutil
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring_pipelines.data.reference import ReferenceProfile
from monitoring_pipelines.errors import DataSourceError, PlanError
from monitoring_pipelines.judge.metrics import Family, MetricValue
from monitoring_pipelines.plan.schema import MonitoringPlan, VolumeSettings

NULL_TOLERANCE = 0.05
RANGE_TOLERANCE = 0.10  # share of the reference range added on each side
MOSTLY = 0.99
EXAMPLES = 5
CHUNK_ROWS = 1_000_000
RESULT_FORMAT = "SUMMARY"
# numpy dtype names, then pandas' nullable dtypes, which GX only recognises by class name ("Int64Dtype"; the
# dtype string "Int64" matched nothing, so a nullable-int column failed the blocking <col>_numeric check)
_NUMERIC_DTYPES = [
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

# GX 1.x map metrics whose verdict on a row depends on that row alone, so chunk results add up exactly.
# Anything else (unique, increasing, z-scores, outliers, dtype checks, custom metrics) sees all rows at once.
_ROW_LOCAL_METRICS = frozenset(
    {
        "column_values.nonnull",
        "column_values.null",
        "column_values.between",
        "column_values.in_set",
        "column_values.not_in_set",
        "column_values.value_length.between",
        "column_values.value_length.equals",
        "column_values.dateutil_parseable",
        "column_values.json_parseable",
        "column_values.match_json_schema",
        "column_values.match_like_pattern",
        "column_values.match_like_pattern_list",
        "column_values.not_match_like_pattern",
        "column_values.not_match_like_pattern_list",
        "column_values.match_regex",
        "column_values.match_regex_list",
        "column_values.not_match_regex",
        "column_values.not_match_regex_list",
        "column_values.match_strftime_format",
    }
)
_ROW_COUNT_TYPES = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
_SCHEMA_TYPES = frozenset(
    {
        "expect_column_to_exist",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_columns_to_match_set",
    }
)
_COLUMN_KWARGS = ("column", "column_A", "column_B")

DERIVED = "derived"
CHECK_META = "monitoring_check"  # key in each expectation's meta: the check it belongs to


@dataclass(frozen=True)
class CheckSpec:
    name: str
    column: str | None
    blocking: bool
    description: str
    expectation: str  # the GX expectation type
    origin: str = DERIVED  # "derived", "derived, quality.overrides.<name>" or "quality.expectations[i]"


@dataclass(frozen=True)
class CheckOutcome:
    spec: CheckSpec
    passed: bool
    expectation: str
    expected: dict
    observed: float | None
    unexpected_count: int | None
    unexpected_share: float | None
    examples: list
    error: str | None = None
    observed_text: str | None = None  # a non-numeric observed value (a dtype, a set of values), shortened
    result: dict = field(default_factory=dict, repr=False)  # GX's result fields (SUMMARY format)


@dataclass(frozen=True)
class QualityResult:
    outcomes: list[CheckOutcome]
    row_count: int
    null_shares: dict[str, float]

    @property
    def failed(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def blocking_failed(self) -> list[CheckOutcome]:
        return [o for o in self.failed if o.spec.blocking]

    def metrics(self) -> list[MetricValue]:
        out = [MetricValue(Family.QUALITY, "check_failed", float(not o.passed), o.spec.name) for o in self.outcomes]
        out += [MetricValue(Family.QUALITY, "null_share", v, c) for c, v in self.null_shares.items()]
        out += [
            MetricValue(Family.QUALITY, "row_count", float(self.row_count)),
            MetricValue(Family.QUALITY, "failed_checks", float(len(self.failed))),
            MetricValue(Family.QUALITY, "blocking_failed_checks", float(len(self.blocking_failed))),
        ]
        return out


# --------------------------------------------------------------------------------------------------------
# check names and specs (plan only, no GX)


def check_name(column: str, suffix: str) -> str:
    """Dagster check names allow letters, digits and '_' only."""
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', column)}_{suffix}"


def _derived_specs(plan: MonitoringPlan) -> list[CheckSpec]:
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
    return [s.name for s in _derived_specs(plan)]


def check_specs(plan: MonitoringPlan) -> list[CheckSpec]:
    """Every check of the plan's ``scoring_batch``: derived ones (minus disabled, overrides applied), then the
    plan's own expectations."""
    q = plan.quality
    specs = []
    for s in _derived_specs(plan):
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


# --------------------------------------------------------------------------------------------------------
# building the suite (GX)


def _derived_kwargs(spec: CheckSpec, plan: MonitoringPlan, profile: ReferenceProfile, volume: VolumeBounds) -> dict:
    col = spec.column
    if spec.name == "row_count":
        return {"min_value": 1}
    if spec.name == "row_volume":
        # GX refuses two empty bounds; 0 rows is the weakest bound and row_count already requires one row
        return {"min_value": volume.min_rows or 0, "max_value": volume.max_rows}
    if spec.name == "request_id_unique":
        return {"column": col}
    if spec.name == "score_in_unit_interval":
        return {"column": col, "min_value": 0.0, "max_value": 1.0}
    if spec.name.endswith("_present"):
        return {"column": col}
    if spec.name.endswith("_not_null"):
        allowed_null = min(1.0, profile.column(col).null_share + NULL_TOLERANCE)
        return {"column": col, "mostly": round(1.0 - allowed_null, 6)}
    if spec.name.endswith("_numeric"):
        return {"column": col, "type_list": _NUMERIC_DTYPES}
    if spec.name.endswith("_in_range"):
        c = profile.column(col)
        pad = RANGE_TOLERANCE * (c.maximum - c.minimum)
        return {"column": col, "min_value": c.minimum - pad, "max_value": c.maximum + pad, "mostly": MOSTLY}
    if spec.name.endswith("_known_categories"):
        return {"column": col, "value_set": sorted(profile.column(col).categories), "mostly": MOSTLY}
    raise AssertionError(f"no expectation for derived check {spec.name}")  # _derived_specs and this are kept in step


def _construct(type_: str, kwargs: dict, meta: dict, where: str) -> tuple[object | None, list[tuple[str, str]]]:
    """A GX expectation from its JSON shape, or the problems GX found, each at its plan field."""
    from great_expectations.compatibility import pydantic
    from great_expectations.exceptions import ExpectationNotFoundError, InvalidExpectationConfigurationError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    try:
        exp = ExpectationConfiguration(type=type_, kwargs=kwargs, meta=meta).to_domain_obj()
    except ExpectationNotFoundError:
        close = difflib.get_close_matches(type_, list_registered_expectation_implementations(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return None, [(f"{where}.type", f"unknown Great Expectations expectation type {type_!r}{hint}")]
    except pydantic.ValidationError as exc:
        by_field: dict[str, list[str]] = {}
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"] if part != "__root__")
            by_field.setdefault(f"{where}.kwargs" + (f".{loc}" if loc else ""), []).append(err["msg"])
        return None, [(f, " or ".join(dict.fromkeys(msgs))) for f, msgs in by_field.items()]
    except (InvalidExpectationConfigurationError, TypeError, ValueError) as exc:
        return None, [(f"{where}.kwargs", f"{type(exc).__name__}: {exc}")]
    if _strategy(exp) is None:
        return None, [
            (
                f"{where}.type",
                f"{type_} is not supported on a day's batch: it needs a SQL query or another "
                "table (supported: column, column-pair and multicolumn expectations, row count, column set)",
            )
        ]
    return exp, []


def _plan_problems(plan: MonitoringPlan, where_prefix: str = "") -> list[tuple[str, str]]:
    """GX's verdict on the plan's own expectations and on the kwargs of its overrides."""
    from great_expectations.compatibility import pydantic
    from great_expectations.expectations.registry import get_expectation_impl

    problems = []
    for i, e in enumerate(plan.quality.expectations):
        problems += _construct(e.type, dict(e.kwargs), dict(e.meta), f"quality.expectations[{i}]")[1]
    types = {s.name: s.expectation for s in _derived_specs(plan)}
    for name, o in plan.quality.overrides.items():
        if name not in types:
            continue  # reported by the plan schema
        cls = get_expectation_impl(types[name])
        for key, value in o.kwargs.items():
            where = f"quality.overrides.{name}.kwargs.{key}"
            fld = cls.__fields__.get(key)
            if fld is None:
                problems.append((where, f"{types[name]} has no argument {key!r}"))
                continue
            _, err = fld.validate(value, {}, loc=key)
            if err:
                messages = [
                    e["msg"] for e in pydantic.ValidationError(err if isinstance(err, list) else [err], cls).errors()
                ]
                problems.append((where, " or ".join(dict.fromkeys(messages))))
    return problems


def expectation_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """Plan fields whose expectation GX rejects (unknown type, bad kwargs, unsupported kind), with GX's message.
    Imports Great Expectations (about 4 s): meant for ``monitoring-pipelines plan validate``; the nightly run
    performs the same checks when it builds the suite."""
    return _plan_problems(plan)


def build_suite(
    plan: MonitoringPlan, profile: ReferenceProfile, recent_row_counts: Sequence[float] = ()
) -> list[tuple[CheckSpec, object, dict]]:
    """(spec, GX expectation, extra expected-metadata) for every check. Raises ``PlanError`` naming the model and
    the plan field when GX rejects a plan expectation or an override."""
    problems = _plan_problems(plan)
    if problems:
        raise PlanError([(f"model {plan.name}", where, msg) for where, msg in problems])
    volume = volume_bounds(plan.quality.volume, recent_row_counts)
    suite = []
    for spec in check_specs(plan):
        if spec.origin.startswith(DERIVED):
            override = plan.quality.overrides.get(spec.name)
            kwargs = {**_derived_kwargs(spec, plan, profile, volume), **(override.kwargs if override else {})}
            exp, errors = _construct(spec.expectation, kwargs, {}, f"quality.overrides.{spec.name}")
            if errors:
                raise PlanError(
                    [
                        (
                            f"model {plan.name}",
                            where,
                            f"{msg} (check {spec.name} with the reference profile of version {profile.model_version})",
                        )
                        for where, msg in errors
                    ]
                )
        else:
            e = plan.quality.expectations[int(spec.origin.split("[")[1].rstrip("]"))]
            exp, _ = _construct(e.type, dict(e.kwargs), dict(e.meta), spec.origin)
        exp.meta = {**(exp.meta or {}), CHECK_META: spec.name}  # results are matched to expectations by it
        suite.append((spec, exp, {"basis": volume.basis} if spec.name == "row_volume" else {}))
    return suite


# --------------------------------------------------------------------------------------------------------
# how each expectation is run


def _strategy(exp) -> str | None:
    """'count' | 'schema' | 'rows' (row-local: per chunk) | 'hashed' (uniqueness: per bucket of the value's hash,
    so equal values meet) | 'whole' (all rows of its columns) | None (unsupported)."""
    from great_expectations.expectations.expectation import (
        ColumnAggregateExpectation,
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    t = exp.expectation_type
    if t in _ROW_COUNT_TYPES:
        return "count"
    if t in _SCHEMA_TYPES:
        return "schema"
    if isinstance(exp, ColumnMapExpectation):
        if exp.map_metric == "column_values.unique":
            return "hashed"
        return "rows" if exp.map_metric in _ROW_LOCAL_METRICS else "whole"
    if isinstance(exp, (ColumnAggregateExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)):
        return "whole"
    if t == "expect_column_type_to_be":
        return "whole"
    return None


def _columns(exp) -> tuple[str, ...]:
    kw = exp.configuration.kwargs
    cols = [kw[k] for k in _COLUMN_KWARGS if isinstance(kw.get(k), str)]
    cols += [c for c in kw.get("column_list") or [] if isinstance(c, str)]
    return tuple(dict.fromkeys(cols))


class _Gx:
    """One ephemeral GX context; ``run`` validates a list of expectations on one frame (one ``validate()``)."""

    def __init__(self, plan: MonitoringPlan):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        # an ephemeral context makes a temporary Data Docs folder it never removes (library-facts GX gotcha 2)
        for site in (ctx.variables.data_docs_sites or {}).values():
            folder = site.get("store_backend", {}).get("base_directory")
            if folder and os.path.isdir(folder) and Path(folder).parent == Path(tempfile.gettempdir()):
                shutil.rmtree(folder)
        self._gx = gx
        self._plan = plan
        self._batch_def = (
            ctx.data_sources.add_pandas("monitoring")
            .add_dataframe_asset(plan.name)
            .add_batch_definition_whole_dataframe("day")
        )

    def run(self, frame: pd.DataFrame, expectations: list) -> list[dict]:
        suite = self._gx.ExpectationSuite(name=f"{self._plan.name}_quality", expectations=list(expectations))
        result = self._batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format=RESULT_FORMAT
        )
        if len(result.results) != len(expectations):
            raise RuntimeError(
                f"model {self._plan.name}: GX returned {len(result.results)} results for "
                f"{len(expectations)} expectations"
            )
        # results do not come back in suite order (failed metrics come last): match them by check name
        by_check = {(r.expectation_config.meta or {}).get(CHECK_META): r for r in result.results}
        out = []
        for exp in expectations:
            r = by_check.get(exp.meta[CHECK_META])
            if r is None or r.expectation_config.type != exp.expectation_type:
                raise RuntimeError(
                    f"model {self._plan.name}: GX returned no result for check "
                    f"{exp.meta[CHECK_META]} ({exp.expectation_type})"
                )
            info = r.exception_info
            out.append(
                {
                    "success": bool(r.success),
                    "result": dict(r.result or {}),
                    "exception_info": info.to_json_dict() if hasattr(info, "to_json_dict") else (info or {}),
                }
            )
        return out


def _raised(info: dict) -> bool:
    infos = [info] if "raised_exception" in info else [i for i in info.values() if isinstance(i, dict)]
    return any(i.get("raised_exception") for i in infos)


def _combine_rows(exp, parts: list[dict]) -> dict:
    """The result one validate() on all rows would give, from the results on disjoint parts of the rows (row
    chunks for row-local map expectations, hash buckets for uniqueness): counts summed, examples in row order,
    GX's own mostly rule and result formatter."""
    from great_expectations.expectations.expectation import _format_map_output, _mostly_success, parse_result_format

    if len(parts) == 1:
        return parts[0]
    failed = [p for p in parts if _raised(p["exception_info"])]
    if failed:  # GX could not evaluate a chunk: the check fails with GX's error, as on the whole day
        return failed[0]
    res = [p["result"] for p in parts]
    element = sum(r["element_count"] for r in res)
    unexpected = sum(r["unexpected_count"] for r in res)
    # ColumnMapExpectation judges non-null rows (its results carry missing_count); not_null judges all rows
    nonnull = element - sum(r["missing_count"] for r in res) if all("missing_count" in r for r in res) else None
    considered = element if nonnull is None else nonnull
    success = True if considered == 0 else _mostly_success(considered, unexpected, exp.mostly)
    fmt = parse_result_format(RESULT_FORMAT)
    n = fmt["partial_unexpected_count"]
    # each part holds its first n unexpected rows, so the first n of the day are among them: order by row number
    # (hash buckets interleave rows; row chunks are in order already)
    pairs = [
        pair
        for r in res
        for pair in zip(r.get("partial_unexpected_index_list", []), r.get("partial_unexpected_list", []))
    ]
    pairs = sorted(pairs, key=lambda pair: pair[0])[:n]
    out = _format_map_output(
        result_format=fmt,
        success=success,
        element_count=element,
        nonnull_count=nonnull,
        unexpected_count=unexpected,
        unexpected_list=[v for _, v in pairs],
        unexpected_index_list=[i for i, _ in pairs],
    )
    return {"success": out["success"], "result": out["result"], "exception_info": parts[0]["exception_info"]}


# --------------------------------------------------------------------------------------------------------
# the day's rows: in memory or read from parquet chunk by chunk


def _buckets(values: pd.Series, k: int):
    """Bucket 0..k-1 of each value from its hash (equal values, equal bucket); None when an object column holds
    non-text values, whose hash (of their text) could split values pandas finds equal (1 and 1.0)."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    filled = values.where(values.notna(), "") if values.dtype == object else values
    return (pd.util.hash_array(filled.to_numpy(), categorize=False) % np.uint64(k)).astype(np.int64)


class _MemoryFrames:
    def __init__(self, batch: pd.DataFrame, chunk_rows: int):
        self.batch, self.chunk_rows, self.rows = batch, chunk_rows, len(batch)
        self.columns = list(batch.columns)

    def _select(self, columns: Sequence[str]) -> pd.DataFrame:
        present = [c for c in columns if c in self.batch.columns]
        return self.batch[present] if present else pd.DataFrame(index=self.batch.index)

    def whole(self, columns: Sequence[str]) -> pd.DataFrame:
        return self._select(columns)

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        frame = self._select(columns)
        for start in range(0, max(self.rows, 1), self.chunk_rows):
            yield frame.iloc[start : start + self.chunk_rows]

    def empty(self) -> pd.DataFrame:
        return self.batch.iloc[:0]

    def hashed(self, column: str, k: int) -> list[pd.DataFrame] | None:
        if column not in self.batch.columns:
            return None
        bucket = _buckets(self.batch[column], k)
        return None if bucket is None else [self.batch[[column]].iloc[np.flatnonzero(bucket == b)] for b in range(k)]

    def null_counts(self, columns: Sequence[str]) -> dict[str, int]:
        return {c: int(self.batch[c].isna().sum()) for c in columns if c in self.batch.columns}


class _ParquetFrames:
    """A day of a parquet prediction log, read one column set and one chunk at a time (never all of it).

    Rows outside the day (by the plan's timestamp, as ``sources.read_predictions`` keeps them) are dropped; the
    kept rows are numbered 0..n-1 across the day's files, as ``read_predictions`` numbers them."""

    def __init__(self, plan: MonitoringPlan, day: dt.date, chunk_rows: int):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from monitoring_pipelines.data import sources

        src = plan.data.predictions
        ctx = f"model {plan.name}, day {day.isoformat()}"
        if src.source != "parquet":
            raise DataSourceError(
                f"{ctx}: data.predictions.source is {src.source!r}; chunked reading needs parquet "
                "(validate the day's frame with quality.validate)"
            )
        # the same file resolution as sources.read_predictions (folder, {date} template or glob)
        located = sources._locate(plan, src, "data.predictions.path")
        start = sources._day_start(day)
        end = sources._day_start(day + dt.timedelta(days=1))
        self._pq, self._fs, self.chunk_rows = pq, located.fs, chunk_rows
        self._files: list[tuple[str, object]] = []  # (path, keep mask or None when every row is in the day)
        self.columns: list[str] = []
        self._types: dict = {}
        self.rows = 0
        for path in sources._prediction_files(located, day, ctx):
            shown = located.show(path)
            with self._fs.open(path, "rb") as fh:
                try:
                    pf = pq.ParquetFile(fh)
                    names = pf.schema_arrow.names
                    missing = [c for c in plan.logged_columns if c not in names]
                    if missing:
                        raise DataSourceError(f"{ctx}: file {shown} lacks column(s) {', '.join(missing)}")
                    ts = pf.read(columns=[src.timestamp]).column(0).to_pandas()
                except (OSError, ValueError, pa.ArrowException) as exc:
                    raise DataSourceError(
                        f"{ctx}: cannot read parquet file {shown}: {type(exc).__name__}: {exc}"
                    ) from exc
            ts = sources._utc(ts.rename(src.timestamp), ctx, f"file {shown}")
            keep = ((ts >= start) & (ts < end)).to_numpy()
            self._files.append((path, None if keep.all() else keep))
            self.rows += int(keep.sum())
            self.columns += [c for c in names if c not in self.columns]
            self._types.update({f.name: f.type for f in pf.schema_arrow if f.name not in self._types})
        self._schema_frame = pd.DataFrame({c: pd.Series(dtype=object) for c in self.columns})

    def _tables(self, columns: Sequence[str], batch_size: int | None) -> Iterator:
        import pyarrow as pa

        for path, keep in self._files:
            with self._fs.open(path, "rb") as fh:
                pf = self._pq.ParquetFile(fh)
                present = [c for c in columns if c in pf.schema_arrow.names]
                offset = 0
                batches = (
                    pf.iter_batches(batch_size=batch_size, columns=present)
                    if batch_size
                    else [pf.read(columns=present)]
                )
                for batch in batches:
                    n = batch.num_rows
                    if keep is not None:
                        batch = batch.filter(pa.array(keep[offset : offset + n]))
                    offset += n
                    yield batch

    def _frames(self, columns: Sequence[str], batch_size: int | None) -> Iterator[pd.DataFrame]:
        first = 0
        for table in self._tables(columns, batch_size):
            frame = table.to_pandas() if table.num_columns else pd.DataFrame(index=pd.RangeIndex(table.num_rows))
            frame.index = pd.RangeIndex(first, first + len(frame))
            first += len(frame)
            yield frame

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        produced = False
        for frame in self._frames(columns, self.chunk_rows):
            if len(frame) or not produced:
                produced = True
                yield frame
        if not produced:
            yield pd.DataFrame({c: pd.Series(dtype=object) for c in columns if c in self.columns})

    def whole(self, columns: Sequence[str]) -> pd.DataFrame:
        frames = list(self._frames(columns, None))
        kept = [f for f in frames if len(f)] or frames[:1]
        if not kept:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns if c in self.columns})
        return pd.concat(kept) if len(kept) > 1 else kept[0]

    def empty(self) -> pd.DataFrame:
        return self._schema_frame

    def hashed(self, column: str, k: int) -> Iterator[pd.DataFrame] | None:
        """The column's rows split into ``k`` buckets by the hash of their value, one bucket at a time; the
        column is held once as Arrow (compact), never as k x pandas."""
        import pyarrow as pa

        if column not in self.columns:
            return None
        arrays, buckets = [], []
        for table in self._tables([column], self.chunk_rows):
            col = table.column(0)  # an Array from a record batch
            bucket = _buckets(col.to_pandas(), k)
            if bucket is None:
                return None
            arrays.append(col)
            buckets.append(bucket)
        values = pa.chunked_array(arrays, type=self._types[column])
        bucket = np.concatenate(buckets) if buckets else np.zeros(0, dtype=np.int64)

        def frames() -> Iterator[pd.DataFrame]:
            for b in range(k):
                rows = np.flatnonzero(bucket == b)
                yield pd.DataFrame({column: values.take(pa.array(rows)).to_pandas()}).set_index(pd.Index(rows))

        return frames()

    def null_counts(self, columns: Sequence[str]) -> dict[str, int]:
        import pyarrow.compute as pc

        present = [c for c in columns if c in self.columns]
        counts = dict.fromkeys(present, 0)
        for table in self._tables(present, self.chunk_rows):
            for c in table.column_names:
                counts[c] += int(pc.sum(pc.is_null(table.column(c), nan_is_null=True)).as_py() or 0)
        return counts


# --------------------------------------------------------------------------------------------------------
# running the suite


def _categories_as_profiled(frame: pd.DataFrame, plan: MonitoringPlan) -> pd.DataFrame:
    """Non-object categorical columns (int codes, ``category`` dtype) as strings, nulls kept: the reference
    profile stores ``str(value)``, so ``[1, 2]`` would otherwise never match its own reference set ``{"1", "2"}``."""
    cast = {
        c: frame[c].astype(str).where(frame[c].notna())
        for c in plan.features.categorical
        if c in frame.columns and frame[c].dtype != object
    }
    return frame.assign(**cast) if cast else frame


def _run(frames, suite: list[tuple[CheckSpec, object, dict]], plan: MonitoringPlan) -> QualityResult:
    gx = _Gx(plan)
    results: dict[int, dict] = {}
    groups: dict[tuple[str, ...], dict[str, list[int]]] = {}
    for i, (_, exp, _) in enumerate(suite):
        kind = _strategy(exp)
        if kind == "count":
            # GX decides on a zero-column frame holding the day's row count: no data needed
            results[i] = gx.run(pd.DataFrame(index=pd.RangeIndex(frames.rows)), [exp])[0]
        elif kind == "schema":
            results[i] = gx.run(frames.empty(), [exp])[0]
        else:
            groups.setdefault(_columns(exp), {"rows": [], "whole": [], "hashed": []})[kind].append(i)
    single_chunk = frames.rows <= frames.chunk_rows
    for columns, parts in groups.items():
        for i in [] if single_chunk else parts["hashed"]:
            buckets = frames.hashed(columns[0], math.ceil(frames.rows / frames.chunk_rows))
            if buckets is None:  # values whose text may differ while pandas finds them equal (1 and 1.0)
                parts["whole"].append(i)
            else:
                results[i] = _combine_rows(suite[i][1], [gx.run(b, [suite[i][1]])[0] for b in buckets])
        at_once = parts["whole"] + (parts["rows"] + parts["hashed"] if single_chunk else [])
        if at_once:
            frame = _categories_as_profiled(frames.whole(columns), plan)
            for i, r in zip(at_once, gx.run(frame, [suite[i][1] for i in at_once])):
                results[i] = r
        if parts["rows"] and not single_chunk:
            exps = [suite[i][1] for i in parts["rows"]]
            per_chunk = [gx.run(_categories_as_profiled(chunk, plan), exps) for chunk in frames.chunks(columns)]
            for k, i in enumerate(parts["rows"]):
                results[i] = _combine_rows(suite[i][1], [chunk[k] for chunk in per_chunk])
    inputs = plan.features.model_inputs
    nulls = frames.null_counts(inputs)
    # a model input missing from the frame has no share (its not_null check fails with GX's error)
    null_shares = {c: nulls[c] / frames.rows if c in nulls and frames.rows else float("nan") for c in inputs}
    outcomes = [_outcome(spec, exp, extra, results[i]) for i, (spec, exp, extra) in enumerate(suite)]
    return QualityResult(outcomes, frames.rows, null_shares)


def validate(
    batch: pd.DataFrame,
    plan: MonitoringPlan,
    profile: ReferenceProfile,
    *,
    recent_row_counts: Sequence[float] = (),
    chunk_rows: int = CHUNK_ROWS,
) -> QualityResult:
    """Run the suite on one day's rows (all rows, no sampling), column-wise and in chunks of ``chunk_rows``
    rows; one outcome per check, equal to ``validate_single``'s. ``recent_row_counts``: the row counts of the
    model's previous days, for ``row_volume``."""
    suite = build_suite(plan, profile, recent_row_counts)
    return _run(_MemoryFrames(batch, chunk_rows), suite, plan)


def validate_parquet(
    plan: MonitoringPlan,
    profile: ReferenceProfile,
    day: dt.date,
    *,
    recent_row_counts: Sequence[float] = (),
    chunk_rows: int = CHUNK_ROWS,
) -> QualityResult:
    """``validate`` of the day's parquet prediction log, read chunk by chunk (one column set and at most
    ``chunk_rows`` rows, or one parquet row group, at a time) instead of loading the day."""
    suite = build_suite(plan, profile, recent_row_counts)
    return _run(_ParquetFrames(plan, day, chunk_rows), suite, plan)


def validate_single(
    batch: pd.DataFrame, plan: MonitoringPlan, profile: ReferenceProfile, *, recent_row_counts: Sequence[float] = ()
) -> QualityResult:
    """The same suite in one plain GX ``validate()`` on the whole frame: the reference ``validate`` must equal
    (tests) and the anchor of benchmarks/quality_scale.py. Not used by the pipeline: slower on wide days."""
    suite = build_suite(plan, profile, recent_row_counts)
    results = _Gx(plan).run(_categories_as_profiled(batch, plan), [exp for _, exp, _ in suite])
    outcomes = [_outcome(spec, exp, extra, r) for (spec, exp, extra), r in zip(suite, results)]
    null_shares = {
        c: float(batch[c].isna().mean()) if c in batch.columns and len(batch) else float("nan")
        for c in plan.features.model_inputs
    }
    return QualityResult(outcomes, len(batch), null_shares)


# --------------------------------------------------------------------------------------------------------
# GX results -> outcomes


def _error_message(exception_info: dict | None) -> str | None:
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    messages = [i.get("exception_message") for i in infos if isinstance(i, dict) and i.get("exception_message")]
    if messages:
        return "; ".join(messages)
    raised = [i for i in infos if isinstance(i, dict) and (i.get("raised_exception") or i.get("exception_traceback"))]
    if raised:
        return (raised[0].get("exception_traceback") or "expectation raised").strip().splitlines()[-1]
    return None


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _outcome(spec: CheckSpec, exp, extra: dict, r: dict) -> CheckOutcome:
    res = r["result"]
    kwargs = {k: _plain(v) for k, v in exp.configuration.kwargs.items() if k not in ("batch_id", "column")}
    if "value_set" in kwargs and len(kwargs["value_set"]) > 20:
        kwargs["value_set"] = f"{len(kwargs['value_set'])} reference categories"
    observed = _plain(res.get("observed_value"))
    numeric = isinstance(observed, (int, float)) and not isinstance(observed, bool)
    text = None if observed is None or numeric else str(observed)
    share = res.get("unexpected_percent")
    return CheckOutcome(
        spec=spec,
        passed=bool(r["success"]),
        expectation=exp.expectation_type,
        expected={**kwargs, **extra},
        observed=observed if numeric else None,
        unexpected_count=_plain(res.get("unexpected_count")),
        unexpected_share=None if share is None else float(share) / 100.0,
        examples=[_plain(v) for v in (res.get("partial_unexpected_list") or [])[:EXAMPLES]],
        error=_error_message(r["exception_info"]),
        observed_text=text if text is None or len(text) <= 200 else text[:197] + "...",
        result=res,
    )
