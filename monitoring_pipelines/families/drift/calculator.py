"""Feature and prediction drift: exact decisions on all of the day's rows (``DriftCalculator``).

* **Figures and decisions** (metric rows, asset metadata) come from ``stats``: Evidently 0.7.23's own tests,
  same statistic, threshold and decision, computed with numpy/scipy over *every* row of the day against
  reference statistics fitted once per champion version on the *full* reference (``fit_reference``, called by
  the ``reference_profile`` asset; nightly runs never re-read the reference). Without a plan entry a column
  gets Evidently's default test (distances above 1000 reference rows, p-values below); ``drift.columns`` may
  choose one of ``stats.METHODS`` per feature, any other method is an error naming model, column and method.
* The day comes through the day reader (``data.reader``): a parquet day is read one column at a time, so
  memory holds one column, not the day; other sources are read whole. Both give identical results
  (test_drift_scale.py).
* **The HTML report** is Evidently's, on a seeded sample of the day kept here (``evidently.write_report``).
* **Small references.** With at most 1000 reference rows Evidently switches to p-value tests, and its
  chi-square gives p = 0 to any category the reference lacks (a clean 800-row Adult reference flags
  workclass and native_country). Such columns are still measured exactly, but without a plan method they
  are not judged: ``DriftResult.unjudged_segments`` makes their rows, and the share when a model input is
  among them, status ``unknown`` (stored, shown, never alerted). docs/drift.md explains the choice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import pandas as pd

from monitoring_pipelines.data import sources
from monitoring_pipelines.data.reader import DayReader, FrameDay, open_day
from monitoring_pipelines.errors import DataSourceError, PlanError
from monitoring_pipelines.families.drift import evidently as drift_report
from monitoring_pipelines.families.drift import stats as drift_stats
from monitoring_pipelines.families.drift.result import DriftResult, FeatureDrift
from monitoring_pipelines.families.drift.stats import ReferenceColumnStats
from monitoring_pipelines.plan.schema import MonitoringPlan

# kept importable from here, beside the rest of the family's API (the drift_report asset calls it)
write_report = drift_report.write_report


@dataclass(frozen=True)
class DriftCalculator:
    """The drift family of one model: ``fit`` on the reference rows once per champion version (or build it
    from a stored profile's ``drift_reference``), then ``calculate`` one day at a time."""

    plan: MonitoringPlan
    reference: dict[str, ReferenceColumnStats] = field(default_factory=dict)
    reference_rows: int = 0

    def fit(self, reference: pd.DataFrame, model_version: str = "") -> DriftCalculator:
        """Reference statistics of every drift-tested column, from all ``reference`` rows."""
        return replace(
            self, reference=fit_reference(reference, self.plan, model_version), reference_rows=len(reference)
        )

    def calculate(self, day: dt.date, reader: DayReader | None = None) -> DriftResult:
        """The drift of every row of ``day`` (read through the day reader unless ``reader`` is given)."""
        ctx = sources.day_context(self.plan, day)
        return self.measure(reader or open_day(self.plan, day), ctx)

    def measure(self, day: DayReader, ctx: str) -> DriftResult:
        """One column at a time: read it, test it, keep its sampled rows for the report, let it go. ``ctx``
        starts every error message (model and day)."""
        plan, reference = self.plan, self.reference
        features, score = plan.features.model_inputs, plan.data.predictions.score
        protected = [c for c in plan.protected_attributes if c not in features and c in reference]
        unfitted = [c for c in [*features, score] if c not in reference]
        if unfitted:
            raise DataSourceError(
                f"{ctx}: the reference profile has no drift statistics for {unfitted}; "
                "re-materialize the reference_profile asset"
            )
        if day.rows == 0:
            raise DataSourceError(f"{ctx}: the day has no rows, so there is no drift to measure")
        positions = drift_report.sample_positions(day.rows)
        chosen = plan.drift.columns
        tested, sample, missing_protected = {}, {}, []
        for col in [*features, score, *protected]:
            values = day.column(col)
            if values is None:
                if col in protected:  # a context column may be absent (its quality check fails); said, not skipped
                    missing_protected.append(col)
                    continue
                raise DataSourceError(f"{ctx}: column {col!r} is missing from the day's prediction log")
            test = chosen.get(col)
            try:
                r = drift_stats.column_drift(
                    reference[col], values, test.threshold if test else None, test.method if test else None
                )
            except ValueError as exc:
                raise DataSourceError(f"{ctx}: drift of column {col!r}: {exc}") from exc
            tested[col] = FeatureDrift(r.column, r.method, r.threshold, r.score, r.drifted)
            sampled = values.iloc[positions]
            sample[col] = (
                sampled.astype(object) if isinstance(sampled.dtype, pd.CategoricalDtype) else sampled
            ).to_numpy()
            del values
        small = small_reference_columns(plan, {c: reference[c] for c in tested})
        return DriftResult(
            [tested[c] for c in features],
            tested[score],
            day.rows,
            day.rows,
            self.reference_rows,
            [tested[c] for c in protected if c in tested],
            missing_protected,
            small,
            pd.DataFrame(sample),
        )


# --------------------------------------------------------------------------------------------------------
# once per champion version


def fit_reference(reference: pd.DataFrame, plan: MonitoringPlan, model_version: str) -> dict[str, ReferenceColumnStats]:
    """Reference statistics of every drift-tested column, from all reference rows: the model inputs, the score
    and the protected attributes the model does not read (those present in the reference)."""
    score = plan.data.predictions.score
    protected = [c for c in plan.protected_attributes if c not in plan.features.model_inputs and c in reference]
    numerical, categorical = [*plan.features.numerical, score], [*plan.features.categorical, *protected]
    check_plan_methods(plan)
    try:
        return drift_stats.fit_reference(reference, numerical, categorical)
    except ValueError as exc:
        raise DataSourceError(f"model {plan.name} version {model_version}: drift reference: {exc}") from exc


def check_plan_methods(plan: MonitoringPlan) -> None:
    """Refuse a ``drift.columns`` method that is not computed on all rows or does not fit the column's type."""
    problems = []
    for col, chosen in plan.drift.columns.items():
        kind = "numerical" if col in plan.features.numerical else "categorical"
        problem = drift_stats.method_problem(chosen.method, kind)
        if problem:
            problems.append((f"model {plan.name}", f"drift.columns.{col}.method", f"column {col!r}: {problem}"))
    if problems:
        raise PlanError(problems)


def small_reference_columns(plan: MonitoringPlan, reference: dict[str, ReferenceColumnStats]) -> list[str]:
    """Columns whose default test is a small-reference p-value test (<= 1000 reference values, no plan method)."""
    return [
        c for c, s in reference.items() if s.rows <= drift_stats.SMALL_REFERENCE_ROWS and c not in plan.drift.columns
    ]


# --------------------------------------------------------------------------------------------------------
# every night


def compute(
    reference: dict[str, ReferenceColumnStats],
    current: pd.DataFrame,
    plan: MonitoringPlan,
    *,
    reference_rows: int,
    day: dt.date | None = None,
) -> DriftResult:
    """The drift family of ``current`` (all rows, in memory) against the fitted ``reference``."""
    ctx = f"model {plan.name}, day {day.isoformat()}" if day else f"model {plan.name}"
    return DriftCalculator(plan, reference, reference_rows).measure(FrameDay(current), ctx)


def compute_day(
    plan: MonitoringPlan, day: dt.date, reference: dict[str, ReferenceColumnStats], *, reference_rows: int
) -> DriftResult:
    """The drift family of the day's prediction log, every row of the UTC day, through the day reader (a
    parquet day one column at a time; other sources whole)."""
    return DriftCalculator(plan, reference, reference_rows).calculate(day)
