"""The drift family's typed result: one day's feature, prediction and protected-attribute drift."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from monitoring_pipelines.families.drift.names import FAMILY, Metric
from monitoring_pipelines.families.drift.stats import METHODS
from monitoring_pipelines.judge.metrics import MetricValue


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
            if METHODS[f.method].p_value:
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
            MetricValue(FAMILY, Metric.SHARE_OF_DRIFTED_FEATURES.value, self.share),
            MetricValue(FAMILY, Metric.DRIFTED_FEATURES.value, float(len(self.drifted))),
            MetricValue(FAMILY, Metric.PREDICTION_DRIFT_SCORE.value, self.prediction.score, self.prediction.column),
        ]
        for f in self.features:
            out.append(MetricValue(FAMILY, Metric.FEATURE_DRIFT_SCORE.value, f.score, f.column))
            out.append(MetricValue(FAMILY, Metric.FEATURE_DRIFTED.value, float(f.drifted), f.column))
        for f in self.protected:
            out.append(MetricValue(FAMILY, Metric.PROTECTED_DRIFT_SCORE.value, f.score, f.column))
            out.append(MetricValue(FAMILY, Metric.PROTECTED_DRIFTED.value, float(f.drifted), f.column))
        return out

    def headline(self) -> dict[str, float | str | None]:
        """The drifted share, the drifted count and the prediction's drift score."""
        return {
            Metric.SHARE_OF_DRIFTED_FEATURES.value: self.share,
            Metric.DRIFTED_FEATURES.value: float(len(self.drifted)),
            Metric.PREDICTION_DRIFT_SCORE.value: self.prediction.score,
        }
