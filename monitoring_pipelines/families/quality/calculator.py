"""Data quality of one day's scoring batch: ``QualityCalculator`` and the functions the assets call.

The checks and their names come from the plan (``checks``); their parameters from the reference profile and the
model's recent row counts (``build_suite``); Great Expectations runs them (``gx``, the only module importing it).
GX checks the plan's expectation types and kwargs when the suite is built or by ``expectation_problems`` (what
``plan validate`` should call), never at code-location load: ``import great_expectations`` costs about 4 s.

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

The day comes through the day reader (``data.reader``): a parquet day is read chunk by chunk (one column set at
a time), so memory is bounded by a chunk of one column set (or a parquet row group), the id column as Arrow for
uniqueness, and one whole column for the other non-row-local expectations.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from monitoring_pipelines.data.reader import DayReader, FrameDay, open_day
from monitoring_pipelines.data.reference import ReferenceProfile
from monitoring_pipelines.errors import DataSourceError, PlanError
from monitoring_pipelines.families.quality import gx
from monitoring_pipelines.families.quality.checks import (
    DERIVED,
    MOSTLY,
    NULL_TOLERANCE,
    NUMERIC_DTYPES,
    RANGE_TOLERANCE,
    CheckSpec,
    VolumeBounds,
    check_name,
    check_specs,
    derived_check_names,
    volume_bounds,
)
from monitoring_pipelines.families.quality.gx import EXAMPLES
from monitoring_pipelines.families.quality.result import CheckOutcome, QualityResult
from monitoring_pipelines.plan.schema import MonitoringPlan

# The family's API stays importable from here, where the quality assets and the CLI look for it.
__all__ = [
    "CHUNK_ROWS",
    "EXAMPLES",
    "MOSTLY",
    "NULL_TOLERANCE",
    "RANGE_TOLERANCE",
    "CheckOutcome",
    "CheckSpec",
    "QualityCalculator",
    "QualityResult",
    "VolumeBounds",
    "build_suite",
    "check_name",
    "check_specs",
    "derived_check_names",
    "expectation_problems",
    "validate",
    "validate_parquet",
    "validate_single",
    "volume_bounds",
]

CHUNK_ROWS = 1_000_000
Suite = list[tuple[CheckSpec, object, dict]]  # (spec, GX expectation, extra expected-metadata) per check


@dataclass(frozen=True)
class QualityCalculator:
    """The quality family of one model: ``fit`` on the champion's reference profile (null shares, ranges and
    categories parameterise the derived checks), then ``calculate`` one day at a time. The suite is built per
    day because ``row_volume`` also depends on the model's recent row counts."""

    plan: MonitoringPlan
    profile: ReferenceProfile | None = None
    chunk_rows: int = CHUNK_ROWS

    def fit(self, reference: ReferenceProfile) -> QualityCalculator:
        """The calculator whose derived checks use ``reference``'s profile."""
        return replace(self, profile=reference)

    def suite(self, recent_row_counts: Sequence[float] = ()) -> Suite:
        """The day's suite (``build_suite``): derived checks from the fitted profile, the plan's own expectations."""
        if self.profile is None:
            raise ValueError(f"model {self.plan.name}: the quality calculator is not fitted on a reference profile")
        return build_suite(self.plan, self.profile, recent_row_counts)

    def calculate(self, day: dt.date, *, recent_row_counts: Sequence[float] = ()) -> QualityResult:
        """Every check on all rows of ``day``'s prediction log, read through the day reader."""
        suite = self.suite(recent_row_counts)  # plan mistakes first, then the data's
        return _run(open_day(self.plan, day), suite, self.plan, self.chunk_rows)

    def measure(self, day: DayReader, *, recent_row_counts: Sequence[float] = ()) -> QualityResult:
        """Every check on all rows of a day already opened (``FrameDay`` for a frame in memory)."""
        return _run(day, self.suite(recent_row_counts), self.plan, self.chunk_rows)


# --------------------------------------------------------------------------------------------------------
# building the suite


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
        return {"column": col, "type_list": NUMERIC_DTYPES}
    if spec.name.endswith("_in_range"):
        c = profile.column(col)
        pad = RANGE_TOLERANCE * (c.maximum - c.minimum)
        return {"column": col, "min_value": c.minimum - pad, "max_value": c.maximum + pad, "mostly": MOSTLY}
    if spec.name.endswith("_known_categories"):
        return {"column": col, "value_set": sorted(profile.column(col).categories), "mostly": MOSTLY}
    raise AssertionError(
        f"no expectation for derived check {spec.name}"
    )  # checks.derived_specs and this are kept in step


def expectation_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    """Plan fields whose expectation GX rejects (unknown type, bad kwargs, unsupported kind), with GX's message.
    Imports Great Expectations (about 4 s): meant for ``monitoring-pipelines plan validate``; the nightly run
    performs the same checks when it builds the suite."""
    return gx.plan_problems(plan)


def build_suite(plan: MonitoringPlan, profile: ReferenceProfile, recent_row_counts: Sequence[float] = ()) -> Suite:
    """(spec, GX expectation, extra expected-metadata) for every check. Raises ``PlanError`` naming the model and
    the plan field when GX rejects a plan expectation or an override."""
    problems = gx.plan_problems(plan)
    if problems:
        raise PlanError([(f"model {plan.name}", where, msg) for where, msg in problems])
    volume = volume_bounds(plan.quality.volume, recent_row_counts)
    suite = []
    for spec in check_specs(plan):
        if spec.origin.startswith(DERIVED):
            override = plan.quality.overrides.get(spec.name)
            kwargs = {**_derived_kwargs(spec, plan, profile, volume), **(override.kwargs if override else {})}
            exp, errors = gx.construct(spec.expectation, kwargs, {}, f"quality.overrides.{spec.name}")
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
            exp, _ = gx.construct(e.type, dict(e.kwargs), dict(e.meta), spec.origin)
        exp.meta = {**(exp.meta or {}), gx.CHECK_META: spec.name}  # results are matched to expectations by it
        suite.append((spec, exp, {"basis": volume.basis} if spec.name == "row_volume" else {}))
    return suite


# --------------------------------------------------------------------------------------------------------
# running the suite on a day


def _buckets(values: pd.Series, k: int):
    """Bucket 0..k-1 of each value from its hash (equal values, equal bucket); None when an object column holds
    non-text values, whose hash (of their text) could split values pandas finds equal (1 and 1.0)."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    filled = values.where(values.notna(), "") if values.dtype == object else values
    return (pd.util.hash_array(filled.to_numpy(), categorize=False) % np.uint64(k)).astype(np.int64)


def _hash_buckets(day: DayReader, column: str, k: int, chunk_rows: int) -> Iterator[pd.DataFrame] | None:
    """The column's rows split into ``k`` buckets by the hash of their value, one bucket at a time (rows keep
    their row numbers); None when the values cannot be bucketed (``_buckets``). Text is held as Arrow while
    the buckets are made (compact), never as k x pandas."""
    if column not in day.columns:
        return None
    pieces: list[pa.Array | pd.Series] = []
    buckets, indexes = [], []
    for chunk in day.chunks([column], chunk_rows):
        if column not in chunk.columns:  # a file of the day lacks it: GX sees the day's frame instead
            return None
        values = chunk[column]
        bucket = _buckets(values, k)
        if bucket is None:
            return None
        pieces.append(pa.Array.from_pandas(values) if values.dtype == object else values)
        buckets.append(bucket)
        indexes.append(chunk.index)
    bucket = np.concatenate(buckets)
    index = indexes[0].append(indexes[1:])
    bounds = np.cumsum([0, *(len(p) for p in pieces)])

    def frames() -> Iterator[pd.DataFrame]:
        for b in range(k):
            rows = np.flatnonzero(bucket == b)
            parts = []
            for piece, lo, hi in zip(pieces, bounds[:-1], bounds[1:]):
                local = rows[(rows >= lo) & (rows < hi)] - lo
                if isinstance(piece, pa.Array):
                    parts.append(piece.take(pa.array(local)).to_pandas())
                else:
                    parts.append(piece.iloc[local].reset_index(drop=True))
            values = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
            yield pd.DataFrame({column: values.set_axis(index.take(rows))})

    return frames()


def _categories_as_profiled(frame: pd.DataFrame, plan: MonitoringPlan) -> pd.DataFrame:
    """Non-object categorical columns (int codes, ``category`` dtype) as strings, nulls kept: the reference
    profile stores ``str(value)``, so ``[1, 2]`` would otherwise never match its own reference set ``{"1", "2"}``."""
    cast = {
        c: frame[c].astype(str).where(frame[c].notna())
        for c in plan.features.categorical
        if c in frame.columns and frame[c].dtype != object
    }
    return frame.assign(**cast) if cast else frame


def _run(day: DayReader, suite: Suite, plan: MonitoringPlan, chunk_rows: int) -> QualityResult:
    runner = gx.Runner(plan)
    results: dict[int, dict] = {}
    groups: dict[tuple[str, ...], dict[str, list[int]]] = {}
    for i, (_, exp, _) in enumerate(suite):
        kind = gx.strategy(exp)
        if kind == "count":
            # GX decides on a zero-column frame holding the day's row count: no data needed
            results[i] = runner.run(pd.DataFrame(index=pd.RangeIndex(day.rows)), [exp])[0]
        elif kind == "schema":
            results[i] = runner.run(day.empty(), [exp])[0]
        else:
            groups.setdefault(gx.columns_of(exp), {"rows": [], "whole": [], "hashed": []})[kind].append(i)
    single_chunk = day.rows <= chunk_rows
    for columns, parts in groups.items():
        for i in [] if single_chunk else parts["hashed"]:
            buckets = _hash_buckets(day, columns[0], math.ceil(day.rows / chunk_rows), chunk_rows)
            if buckets is None:  # values whose text may differ while pandas finds them equal (1 and 1.0)
                parts["whole"].append(i)
            else:
                results[i] = gx.combine_rows(suite[i][1], [runner.run(b, [suite[i][1]])[0] for b in buckets])
        at_once = parts["whole"] + (parts["rows"] + parts["hashed"] if single_chunk else [])
        if at_once:
            frame = _categories_as_profiled(day.frame(columns), plan)
            for i, r in zip(at_once, runner.run(frame, [suite[i][1] for i in at_once])):
                results[i] = r
        if parts["rows"] and not single_chunk:
            exps = [suite[i][1] for i in parts["rows"]]
            per_chunk = [
                runner.run(_categories_as_profiled(chunk, plan), exps) for chunk in day.chunks(columns, chunk_rows)
            ]
            for k, i in enumerate(parts["rows"]):
                results[i] = gx.combine_rows(suite[i][1], [chunk[k] for chunk in per_chunk])
    inputs = plan.features.model_inputs
    nulls = day.null_counts(inputs)
    # a model input missing from the frame has no share (its not_null check fails with GX's error)
    null_shares = {c: nulls[c] / day.rows if c in nulls and day.rows else float("nan") for c in inputs}
    outcomes = [gx.outcome(spec, exp, extra, results[i]) for i, (spec, exp, extra) in enumerate(suite)]
    return QualityResult(outcomes, day.rows, null_shares)


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
    calculator = QualityCalculator(plan, profile, chunk_rows)
    return calculator.measure(FrameDay(batch), recent_row_counts=recent_row_counts)


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
    src = plan.data.predictions
    if src.source != "parquet":
        raise DataSourceError(
            f"model {plan.name}, day {day.isoformat()}: data.predictions.source is {src.source!r}; chunked "
            "reading needs parquet (validate the day's frame with quality.validate)"
        )
    return QualityCalculator(plan, profile, chunk_rows).calculate(day, recent_row_counts=recent_row_counts)


def validate_single(
    batch: pd.DataFrame, plan: MonitoringPlan, profile: ReferenceProfile, *, recent_row_counts: Sequence[float] = ()
) -> QualityResult:
    """The same suite in one plain GX ``validate()`` on the whole frame: the reference ``validate`` must equal
    (tests) and the anchor of benchmarks/quality_scale.py. Not used by the pipeline: slower on wide days."""
    suite = build_suite(plan, profile, recent_row_counts)
    results = gx.Runner(plan).run(_categories_as_profiled(batch, plan), [exp for _, exp, _ in suite])
    outcomes = [gx.outcome(spec, exp, extra, r) for (spec, exp, extra), r in zip(suite, results)]
    null_shares = {
        c: float(batch[c].isna().mean()) if c in batch.columns and len(batch) else float("nan")
        for c in plan.features.model_inputs
    }
    return QualityResult(outcomes, len(batch), null_shares)
