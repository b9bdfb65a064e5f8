"""Feature and prediction drift: decisions on all of the day's rows, an illustrative Evidently report on a sample.

* **Figures and decisions** (metric rows, asset metadata) come from ``drift_stats``: Evidently 0.7.23's own
  tests, same statistic, threshold and decision, computed with numpy/scipy over *every* row of the day
  against reference statistics fitted once per champion version on the *full* reference
  (``fit_reference``, called by the ``reference_profile`` asset; nightly runs never re-read the reference).
  Without a plan entry a column gets Evidently's default test (distances above 1000 reference rows, p-values
  below); ``drift.columns`` may choose one of ``drift_stats.METHODS`` per feature, any other method is an
  error naming model, column and method.
* ``compute_day`` reads a parquet day one column at a time (pyarrow), reduces it and lets it go, so memory
  holds one column, not the day; other sources are read whole and go through ``compute``. Both give
  identical results (test_drift_scale.py).
* **The HTML report** (``write_report``) is Evidently's ``DataDriftPreset`` on a seeded random sample of
  ``REPORT_ROWS`` current rows against ``REPORT_ROWS`` reference rows: about 1-2 s whatever the day's size.
  It illustrates; where its sampled figures differ from the metadata, the metadata (all rows) is right.
* **Small references.** With at most 1000 reference rows Evidently switches to p-value tests, and its
  chi-square gives p = 0 to any category the reference lacks (a clean 800-row Adult reference flags
  workclass and native_country). Such columns are still measured exactly, but without a plan method they
  are not judged: ``DriftResult.unjudged_segments`` makes their rows, and the share when a model input is
  among them, status ``unknown`` (stored, shown, never alerted). docs/drift.md explains the choice.

This is the only module that imports Evidently (inside ``write_report``: its import costs about 4 s).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitoring_pipelines.errors import DataSourceError, PlanError
from monitoring_pipelines.families.drift import stats as drift_stats
from monitoring_pipelines.families.drift.stats import ReferenceColumnStats
from monitoring_pipelines.judge.metrics import Family, MetricValue
from monitoring_pipelines.plan.schema import MonitoringPlan

# Rows of each side of the HTML report (seeded random samples). Evidently 0.7 spends ~1-2 s on 27 columns at
# this size (docs/drift.md); above 1000 reference rows, so the report shows the same default tests.
REPORT_ROWS = 5_000
REPORT_SEED = 0

_METHOD_IDS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
    "Kullback-Leibler divergence": "kl_div",
    "Hellinger distance": "hellinger",
}


@dataclass(frozen=True)
class FeatureDrift:
    column: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """The day's drift, every figure from all ``evaluated_rows`` rows (= ``current_rows``, the whole day).

    ``small_reference`` lists the columns tested with Evidently's small-reference p-value default (at most
    1000 reference values, no plan method); ``report_sample`` is the seeded sample of the day that the HTML
    report shows (not used for any figure here).
    """

    features: list[FeatureDrift]
    prediction: FeatureDrift
    current_rows: int
    evaluated_rows: int
    reference_rows: int
    protected: list[FeatureDrift] = field(default_factory=list)  # protected attributes that are not model inputs
    protected_missing: list[str] = field(default_factory=list)  # ... fitted, but absent from the day's log
    small_reference: list[str] = field(default_factory=list)
    report_sample: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted) / len(self.features)

    @property
    def report_rows(self) -> int:
        return 0 if self.report_sample is None else len(self.report_sample)

    def top(self, n: int = 5) -> list[FeatureDrift]:
        """Drifted features first, then by score relative to threshold (p-value tests: smaller is worse)."""

        def severity(f: FeatureDrift) -> float:
            if drift_stats.METHODS[f.method].p_value:
                return f.threshold / max(f.score, 1e-300)
            return f.score / f.threshold

        return sorted(self.features, key=lambda f: (not f.drifted, -severity(f)))[:n]

    def unjudged_segments(self) -> frozenset[str]:
        """Metric segments to store with status unknown (health.judge): the small-reference columns, and the
        model-level figures ('') when a model input is among them (their share would count its flag)."""
        inputs = {f.column for f in self.features}
        model_level = {""} if inputs & set(self.small_reference) else set()
        return frozenset({*self.small_reference, *model_level})

    def metrics(self) -> list[MetricValue]:
        out = [
            MetricValue(Family.DRIFT, "share_of_drifted_features", self.share),
            MetricValue(Family.DRIFT, "drifted_features", float(len(self.drifted))),
            MetricValue(Family.DRIFT, "prediction_drift_score", self.prediction.score, self.prediction.column),
        ]
        for f in self.features:
            out.append(MetricValue(Family.DRIFT, "feature_drift_score", f.score, f.column))
            out.append(MetricValue(Family.DRIFT, "feature_drifted", float(f.drifted), f.column))
        for f in self.protected:
            out.append(MetricValue(Family.DRIFT, "protected_drift_score", f.score, f.column))
            out.append(MetricValue(Family.DRIFT, "protected_drifted", float(f.drifted), f.column))
        return out


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
    return _compute(
        reference,
        len(current),
        lambda c: current[c] if c in current.columns else None,
        plan,
        reference_rows,
        _where(plan, day),
    )


def compute_day(
    plan: MonitoringPlan, day: dt.date, reference: dict[str, ReferenceColumnStats], *, reference_rows: int
) -> DriftResult:
    """The drift family of the day's prediction log, every row of the UTC day. Parquet files are read one
    column at a time; other sources whole (``sources.read_predictions``)."""
    from monitoring_pipelines.data import sources

    if plan.data.predictions.source != "parquet":
        return compute(reference, sources.read_predictions(plan, day), plan, reference_rows=reference_rows, day=day)
    src = plan.data.predictions
    ctx = sources._context(plan, day)
    files = sources._locate(plan, src, "data.predictions.path")
    with ExitStack() as stack:
        day_files = [
            _ParquetDay.open(stack, files, path, plan, day, ctx, reference)
            for path in sources._prediction_files(files, day, ctx)
        ]
        rows = sum(f.rows for f in day_files)

        def column(name: str) -> pd.Series | None:
            parts = [f.column(name) for f in day_files]
            if any(p is None for p in parts):
                return None
            return _concat(parts)

        return _compute(reference, rows, column, plan, reference_rows, ctx)


@dataclass
class _ParquetDay:
    """One parquet file of the day: the rows inside the day's window, read column by column."""

    file: object  # pyarrow.parquet.ParquetFile
    names: set[str]
    keep: np.ndarray | None  # rows inside the window; None = all
    rows: int

    @classmethod
    def open(
        cls,
        stack: ExitStack,
        files,
        path: str,
        plan: MonitoringPlan,
        day: dt.date,
        ctx: str,
        reference: dict[str, ReferenceColumnStats],
    ) -> _ParquetDay:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from monitoring_pipelines.data import sources

        shown = files.show(path)
        try:
            schema = pq.read_schema(stack.enter_context(files.fs.open(path, "rb")))
            # text columns come as dictionaries (categories): value counts without a Python string per row
            text = [
                c
                for c in reference
                if c in schema.names
                and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))
            ]
            pf = pq.ParquetFile(stack.enter_context(files.fs.open(path, "rb")), read_dictionary=text)
            missing = [c for c in plan.logged_columns if c not in schema.names]
            if missing:
                raise DataSourceError(f"{ctx}: file {shown} lacks column(s) {', '.join(missing)}")
            ts = sources._utc(
                pf.read(columns=[plan.data.predictions.timestamp]).column(0).to_pandas(), ctx, f"file {shown}"
            )
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataSourceError(f"{ctx}: cannot read parquet file {shown}: {type(exc).__name__}: {exc}") from exc
        start = sources._day_start(day)
        keep = ((ts >= start) & (ts < start + dt.timedelta(days=1))).to_numpy()
        rows = int(keep.sum())
        return cls(pf, set(schema.names), None if rows == keep.size else keep, rows)

    def column(self, name: str) -> pd.Series | None:
        if name not in self.names:
            return None
        import pyarrow as pa

        values = self.file.read(columns=[name]).column(0)
        if self.keep is not None:
            values = values.filter(pa.array(self.keep))
        return values.to_pandas()


def _concat(parts: list[pd.Series]) -> pd.Series:
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
        return pd.Series(pd.api.types.union_categoricals(parts))
    return pd.concat(parts, ignore_index=True)


def _compute(
    reference: dict[str, ReferenceColumnStats],
    rows: int,
    column: Callable[[str], pd.Series | None],
    plan: MonitoringPlan,
    reference_rows: int,
    ctx: str,
) -> DriftResult:
    """One column at a time: load it (``column`` gives None when the day lacks it), test it, keep its sampled
    rows for the report, let it go."""
    features, score = plan.features.model_inputs, plan.data.predictions.score
    protected = [c for c in plan.protected_attributes if c not in features and c in reference]
    unfitted = [c for c in [*features, score] if c not in reference]
    if unfitted:
        raise DataSourceError(
            f"{ctx}: the reference profile has no drift statistics for {unfitted}; "
            "re-materialize the reference_profile asset"
        )
    if rows == 0:
        raise DataSourceError(f"{ctx}: the day has no rows, so there is no drift to measure")
    positions = _sample_positions(rows)
    chosen = plan.drift.columns
    tested, sample, missing_protected = {}, {}, []
    for col in [*features, score, *protected]:
        values = column(col)
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
        sample[col] = (sampled.astype(object) if isinstance(sampled.dtype, pd.CategoricalDtype) else sampled).to_numpy()
        del values
    small = small_reference_columns(plan, {c: reference[c] for c in tested})
    return DriftResult(
        [tested[c] for c in features],
        tested[score],
        rows,
        rows,
        reference_rows,
        [tested[c] for c in protected if c in tested],
        missing_protected,
        small,
        pd.DataFrame(sample),
    )


def _sample_positions(rows: int) -> np.ndarray:
    """The report's rows: a seeded random choice of REPORT_ROWS positions (all rows of a smaller day), in order."""
    if rows <= REPORT_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(REPORT_SEED).choice(rows, REPORT_ROWS, replace=False))


def _where(plan: MonitoringPlan, day: dt.date | None) -> str:
    return f"model {plan.name}, day {day.isoformat()}" if day else f"model {plan.name}"


# --------------------------------------------------------------------------------------------------------
# the HTML report


def write_report(result: DriftResult, reference_sample: pd.DataFrame, plan: MonitoringPlan, url: str) -> int:
    """Evidently's report of ``result.report_sample`` against a seeded sample of ``reference_sample`` (at most
    REPORT_ROWS rows each), saved as HTML to ``url`` (local path or fsspec URL). Returns the reference rows
    shown. Plan-chosen tests are passed on, so the report shows the tests the figures used."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    features, score = [f.column for f in result.features], result.prediction.column
    protected = [f.column for f in result.protected]
    cols = [*features, score, *protected]
    ref = reference_sample[cols]
    if len(ref) > REPORT_ROWS:
        ref = ref.sample(REPORT_ROWS, random_state=REPORT_SEED)
    definition = DataDefinition(
        numerical_columns=[*plan.features.numerical, score],
        categorical_columns=[*plan.features.categorical, *protected],
    )
    chosen = plan.drift.columns
    preset = DataDriftPreset(
        columns=features,
        per_column_method={c: t.method for c, t in chosen.items()} or None,
        per_column_threshold={c: t.threshold for c, t in chosen.items()} or None,
    )
    report = Report([preset, ValueDrift(column=score), *[ValueDrift(column=c) for c in protected]], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(result.report_sample[cols], data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    _save_html(snapshot, url)
    return len(ref)


def _per_column(d: dict) -> dict[str, FeatureDrift]:
    """Per-column method, threshold, score and decision from an Evidently snapshot's ``dict()``."""
    raw: dict[str, dict] = {}
    for m in d["metrics"]:
        c = m["config"]
        if c["type"] == "evidently:metric_v2:ValueDrift":
            raw[c["column"]] = {
                "method": _METHOD_IDS.get(c["method"], c["method"]),
                "threshold": float(c["threshold"]),
                "score": float(m["value"]),
            }
    for t in d["tests"]:
        col = t["metric_config"]["params"].get("column")
        if col in raw and "Value Drift" in t["name"]:
            status = getattr(t["status"], "value", t["status"])
            raw[col]["drifted"] = status == "FAIL"
    return {col: FeatureDrift(col, **v) for col, v in raw.items() if "drifted" in v}


def _save_html(snapshot, url: str) -> None:
    import tempfile

    import fsspec

    with tempfile.TemporaryDirectory() as tmp:
        local = f"{tmp}/report.html"
        snapshot.save_html(local)
        fs, path = fsspec.core.url_to_fs(url)
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        fs.put_file(local, path)
