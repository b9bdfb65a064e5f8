"""The quality family's Great Expectations 1.x adapter: the only module that imports GX.

GX is imported inside the functions (``import great_expectations`` costs about 4 s; the code location and the
sensors never pay it). Here: expectations built from their JSON shape and checked (``construct``,
``plan_problems``), how each expectation can run on a day read in parts (``strategy``), the runner of one
``validate()`` on a frame (``Runner``), the result of one ``validate()`` on all rows from results on disjoint
parts (``combine_rows``), and GX results turned into ``CheckOutcome`` (``outcome``).
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from monitoring_pipelines.families.quality.checks import CheckSpec, derived_specs
from monitoring_pipelines.families.quality.result import CheckOutcome
from monitoring_pipelines.plan.schema import MonitoringPlan

EXAMPLES = 5
RESULT_FORMAT = "SUMMARY"
CHECK_META = "monitoring_check"  # key in each expectation's meta: the check it belongs to

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


def construct(type_: str, kwargs: dict, meta: dict, where: str) -> tuple[object | None, list[tuple[str, str]]]:
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
    if strategy(exp) is None:
        return None, [
            (
                f"{where}.type",
                f"{type_} is not supported on a day's batch: it needs a SQL query or another "
                "table (supported: column, column-pair and multicolumn expectations, row count, column set)",
            )
        ]
    return exp, []


def plan_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """GX's verdict on the plan's own expectations and on the kwargs of its overrides."""
    from great_expectations.compatibility import pydantic
    from great_expectations.expectations.registry import get_expectation_impl

    problems = []
    for i, e in enumerate(plan.quality.expectations):
        problems += construct(e.type, dict(e.kwargs), dict(e.meta), f"quality.expectations[{i}]")[1]
    types = {s.name: s.expectation for s in derived_specs(plan)}
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


def strategy(exp) -> str | None:
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


def columns_of(exp) -> tuple[str, ...]:
    kw = exp.configuration.kwargs
    cols = [kw[k] for k in _COLUMN_KWARGS if isinstance(kw.get(k), str)]
    cols += [c for c in kw.get("column_list") or [] if isinstance(c, str)]
    return tuple(dict.fromkeys(cols))


class Runner:
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


def combine_rows(exp, parts: list[dict]) -> dict:
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


def outcome(spec: CheckSpec, exp, extra: dict, r: dict) -> CheckOutcome:
    """The check's outcome from GX's result ``r`` of expectation ``exp`` (``extra``: more expected-metadata)."""
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
