"""Data quality of one day's scoring batch, with Great Expectations 1.x (the only module that imports it).

Check names come from the plan alone (``check_specs(plan)``), so Dagster can declare them when the code
location loads without reading any data; their parameters come from the reference profile at run time.
Derived checks (docs/architecture.md):

| check | expectation | blocking |
|---|---|---|
| ``row_count`` | at least one row | yes |
| ``request_id_unique`` | ids unique | yes |
| ``score_in_unit_interval`` | score within [0, 1] | yes |
| ``<col>_present`` | a context column (e.g. a protected attribute) is in the log | no |
| ``<col>_not_null`` | null share <= reference null share + NULL_TOLERANCE | yes |
| ``<col>_numeric`` | numerical feature has a numeric dtype | yes |
| ``<col>_in_range`` | numerical values within the reference range widened by RANGE_TOLERANCE (99%) | no |
| ``<col>_known_categories`` | categorical values seen in reference (99%) | no |
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from monitoring_pipelines.metrics import Family, MetricValue
from monitoring_pipelines.plan import MonitoringPlan
from monitoring_pipelines.reference import ReferenceProfile

NULL_TOLERANCE = 0.05
RANGE_TOLERANCE = 0.10  # share of the reference range added on each side
MOSTLY = 0.99
EXAMPLES = 5
# numpy dtype names, then pandas' nullable dtypes, which GX only recognises by class name ("Int64Dtype"; the
# dtype string "Int64" matched nothing, so a nullable-int column failed the blocking <col>_numeric check)
_NUMERIC_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64",
                   "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype",
                   "UInt64Dtype", "Float32Dtype", "Float64Dtype"]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    column: str | None
    blocking: bool
    description: str


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


def check_name(column: str, suffix: str) -> str:
    """Dagster check names allow letters, digits and '_' only."""
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', column)}_{suffix}"


def check_specs(plan: MonitoringPlan) -> list[CheckSpec]:
    p = plan.data.predictions
    specs = [
        CheckSpec("row_count", None, True, "The day has at least one prediction."),
        CheckSpec("request_id_unique", p.id, True, f"Every {p.id} appears once."),
        CheckSpec("score_in_unit_interval", p.score, True, f"{p.score} lies within [0, 1]."),
    ]
    for col in plan.features.context:
        specs.append(CheckSpec(check_name(col, "present"), col, False,
                               f"The log carries the context column {col} (protected attributes feed fairness)."))
    for col in plan.features.model_inputs:
        specs.append(CheckSpec(check_name(col, "not_null"), col, True,
                               f"Share of nulls in {col} stays within {NULL_TOLERANCE:.0%} of the reference's."))
    for col in plan.features.numerical:
        specs.append(CheckSpec(check_name(col, "numeric"), col, True, f"{col} arrives with a numeric type."))
        specs.append(CheckSpec(check_name(col, "in_range"), col, False,
                               f"{MOSTLY:.0%} of {col} lies within the reference range widened by {RANGE_TOLERANCE:.0%}."))
    for col in plan.features.categorical:
        specs.append(CheckSpec(check_name(col, "known_categories"), col, False,
                               f"{MOSTLY:.0%} of non-null {col} values were seen in the reference."))
    return specs


def _expectations(plan: MonitoringPlan, profile: ReferenceProfile) -> list[tuple[CheckSpec, object]]:
    import great_expectations.expectations as gxe

    p = plan.data.predictions
    pairs = []
    for spec in check_specs(plan):
        col = spec.column
        if spec.name == "row_count":
            exp = gxe.ExpectTableRowCountToBeBetween(min_value=1)
        elif spec.name == "request_id_unique":
            exp = gxe.ExpectColumnValuesToBeUnique(column=col)
        elif spec.name == "score_in_unit_interval":
            exp = gxe.ExpectColumnValuesToBeBetween(column=p.score, min_value=0.0, max_value=1.0)
        elif spec.name.endswith("_present"):
            exp = gxe.ExpectColumnToExist(column=col)
        elif spec.name.endswith("_not_null"):
            allowed_null = min(1.0, profile.column(col).null_share + NULL_TOLERANCE)
            exp = gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=round(1.0 - allowed_null, 6))
        elif spec.name.endswith("_numeric"):
            exp = gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=_NUMERIC_DTYPES)
        elif spec.name.endswith("_in_range"):
            c = profile.column(col)
            pad = RANGE_TOLERANCE * (c.maximum - c.minimum)
            exp = gxe.ExpectColumnValuesToBeBetween(column=col, min_value=c.minimum - pad, max_value=c.maximum + pad,
                                                    mostly=MOSTLY)
        elif spec.name.endswith("_known_categories"):
            exp = gxe.ExpectColumnValuesToBeInSet(column=col, value_set=sorted(profile.column(col).categories),
                                                  mostly=MOSTLY)
        else:  # pragma: no cover - check_specs and this mapping are kept in step
            raise AssertionError(f"no expectation for check {spec.name}")
        pairs.append((spec, exp))
    return pairs


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


def _categories_as_profiled(batch: pd.DataFrame, plan: MonitoringPlan) -> pd.DataFrame:
    """Non-object categorical columns (int codes, ``category`` dtype) as strings, nulls kept: the reference
    profile stores ``str(value)``, so ``[1, 2]`` would otherwise never match its own reference set ``{"1", "2"}``."""
    cast = {c: batch[c].astype(str).where(batch[c].notna()) for c in plan.features.categorical
            if c in batch.columns and batch[c].dtype != object}
    return batch.assign(**cast) if cast else batch


def validate(batch: pd.DataFrame, plan: MonitoringPlan, profile: ReferenceProfile) -> QualityResult:
    """Run the derived suite on one day's rows (all rows, no sampling) and return one outcome per check."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    # an ephemeral context makes a temporary Data Docs folder it never removes (library-facts GX gotcha 2)
    for site in (ctx.variables.data_docs_sites or {}).values():
        folder = site.get("store_backend", {}).get("base_directory")
        if folder and os.path.isdir(folder) and Path(folder).parent == Path(tempfile.gettempdir()):
            shutil.rmtree(folder)
    batch_def = (ctx.data_sources.add_pandas("monitoring").add_dataframe_asset(plan.name)
                 .add_batch_definition_whole_dataframe("day"))
    pairs = _expectations(plan, profile)
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"{plan.name}_quality"))
    for _, exp in pairs:
        suite.add_expectation(exp)
    gx_batch = _categories_as_profiled(batch, plan)
    result = batch_def.get_batch(batch_parameters={"dataframe": gx_batch}).validate(suite, result_format="SUMMARY")
    if len(result.results) != len(pairs):
        raise RuntimeError(f"model {plan.name}: GX returned {len(result.results)} results for {len(pairs)} expectations")
    by_id = {str(exp.id): spec for spec, exp in pairs}
    outcomes = []
    for r in result.results:
        spec = by_id[str(r.expectation_config.id)]
        res = r.result or {}
        kwargs = {k: _plain(v) for k, v in r.expectation_config.kwargs.items() if k not in ("batch_id", "column")}
        if "value_set" in kwargs and len(kwargs["value_set"]) > 20:
            kwargs["value_set"] = f"{len(kwargs['value_set'])} reference categories"
        share = res.get("unexpected_percent")
        outcomes.append(CheckOutcome(
            spec=spec, passed=bool(r.success), expectation=r.expectation_config.type, expected=kwargs,
            observed=_plain(res.get("observed_value")) if isinstance(_plain(res.get("observed_value")), (int, float)) else None,
            unexpected_count=_plain(res.get("unexpected_count")),
            unexpected_share=None if share is None else float(share) / 100.0,
            examples=[_plain(v) for v in (res.get("partial_unexpected_list") or [])[:EXAMPLES]],
            error=_error_message(r.exception_info.to_json_dict() if hasattr(r.exception_info, "to_json_dict") else r.exception_info),
        ))
    null_shares = {c: float(batch[c].isna().mean()) if len(batch) else float("nan") for c in plan.features.model_inputs}
    return QualityResult(outcomes, len(batch), null_shares)
