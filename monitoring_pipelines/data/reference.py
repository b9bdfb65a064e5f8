"""Reference statistics of one model version, computed once and reused every night (the container).

``monitoring_pipelines.profiling.build_profile`` fills it: the column statistics below (``profile_columns``)
and each family's fit on the same rows.

The profile holds what the nightly quality expectations need (null shares, numeric ranges, category sets,
row count), the drift statistics of every drift-tested column fitted on *all* reference rows
(``drift_reference`` from ``drift.fit_reference``: model inputs, score, protected attributes the model does
not read), and a bounded sample of reference rows for the illustrative HTML drift report. Nightly runs read
the profile, never the raw reference again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.plan.schema import MonitoringPlan

if TYPE_CHECKING:  # the families' fitted states; the data layer only carries them
    from monitoring_pipelines.families.drift.stats import ReferenceColumnStats
    from monitoring_pipelines.families.performance.estimation import Calibration

# Rows kept for the HTML drift report, which shows a seeded REPORT_ROWS of them (families/drift/evidently.py;
# decisions use ``drift_reference``, fitted on every row).
REFERENCE_SAMPLE_ROWS = 50_000


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: str  # "numerical" | "categorical"
    null_share: float
    minimum: float | None = None
    maximum: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    categories: dict[str, float] = field(default_factory=dict)  # value -> share of non-null rows


@dataclass(frozen=True)
class ReferenceProfile:
    model: str
    model_version: str
    row_count: int
    columns: dict[str, ColumnProfile]
    sample: pd.DataFrame  # at most REFERENCE_SAMPLE_ROWS rows: model inputs, protected attributes, score
    calibration: Calibration | None = None  # for the label-free estimate; None without reference labels
    drift_reference: dict[str, ReferenceColumnStats] = field(default_factory=dict)  # per drift-tested column, all rows

    def column(self, name: str) -> ColumnProfile:
        return self.columns[name]


def require_columns(reference: pd.DataFrame, plan: MonitoringPlan, model_version: str) -> None:
    """Raise, naming model, version and columns, unless ``reference`` has rows and every model input and the score."""
    score = plan.data.predictions.score
    missing = [c for c in [*plan.features.model_inputs, score] if c not in reference.columns]
    if missing:
        raise DataSourceError(
            f"model {plan.name} version {model_version}: reference data lacks column(s) {missing} "
            f"(plan data.reference; it must hold the model inputs and the champion's score column {score!r})"
        )
    if reference.empty:
        raise DataSourceError(f"model {plan.name} version {model_version}: reference data has no rows")


def profile_columns(reference: pd.DataFrame, plan: MonitoringPlan) -> dict[str, ColumnProfile]:
    """Null share, range and quantiles of every numerical feature and the score; category shares of the rest."""
    score = plan.data.predictions.score
    columns: dict[str, ColumnProfile] = {}
    for col in [*plan.features.numerical, score]:
        s = pd.to_numeric(reference[col], errors="raise")
        q = s.quantile([0.01, 0.05, 0.5, 0.95, 0.99])
        columns[col] = ColumnProfile(
            col,
            "numerical",
            float(s.isna().mean()),
            float(s.min()),
            float(s.max()),
            {f"q{int(k * 100):02d}": float(v) for k, v in q.items()},
        )
    for col in plan.features.categorical:
        s = reference[col]
        shares = s.dropna().astype(str).value_counts(normalize=True)
        columns[col] = ColumnProfile(
            col, "categorical", float(s.isna().mean()), categories={str(k): float(v) for k, v in shares.items()}
        )
    return columns


def reference_sample(reference: pd.DataFrame, plan: MonitoringPlan) -> pd.DataFrame:
    """At most REFERENCE_SAMPLE_ROWS seeded rows (model inputs, score, protected attributes) for the HTML report."""
    needed = [*plan.features.model_inputs, plan.data.predictions.score]
    protected = [c for c in plan.protected_attributes if c not in needed and c in reference.columns]
    sample = reference[[*needed, *protected]]
    if len(sample) > REFERENCE_SAMPLE_ROWS:
        sample = sample.sample(REFERENCE_SAMPLE_ROWS, random_state=0)
    return sample.reset_index(drop=True)
