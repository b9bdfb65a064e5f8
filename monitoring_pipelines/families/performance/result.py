"""Results of the performance family: realised figures (labels joined) and the label-free estimate."""

from __future__ import annotations

from dataclasses import dataclass

from monitoring_pipelines.families.performance.names import ESTIMATED_FAMILY, FAMILY, EstimatedMetric, Metric
from monitoring_pipelines.judge.metrics import MetricValue

# the figures of a non-partial day (None on a partial one), in the order they are stored; plain strings (also
# result field names), so that str() and f-strings of them give the name, not ``Metric.ROC_AUC``
FIGURES = tuple(
    m.value
    for m in (
        Metric.ROC_AUC,
        Metric.PR_AUC,
        Metric.ACCURACY,
        Metric.PRECISION,
        Metric.RECALL,
        Metric.F1,
        Metric.LOG_LOSS,
        Metric.BRIER_SCORE,
        Metric.EXPECTED_CALIBRATION_ERROR,
    )
)
# bad-input counts: always given, partial day or not (calculator module doc, "Bad input")
BAD_INPUT = tuple(
    m.value for m in (Metric.LABELS_DUPLICATE_IDS, Metric.LABELS_OUT_OF_CLASSES, Metric.SCORES_OUT_OF_RANGE)
)


@dataclass(frozen=True)
class PerformanceResult:
    """Performance figures of one day. Figures are None when the day is ``partial`` (see the calculator's
    module doc); the bad-input counts (``BAD_INPUT``) are always given."""

    prediction_rows: int
    labelled_rows: int
    label_coverage: float | None
    evaluated_rows: int
    partial: bool
    partial_reason: str | None
    positive_rate: float | None = None
    labels_duplicate_ids: int = 0
    labels_out_of_classes: int = 0
    scores_out_of_range: int = 0
    roc_auc: float | None = None
    pr_auc: float | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    log_loss: float | None = None
    brier_score: float | None = None
    expected_calibration_error: float | None = None

    def metrics(self) -> list[MetricValue]:
        """Every catalogued figure, None ones included (they are judged 'unknown')."""
        values = {
            Metric.LABELLED_ROWS.value: float(self.labelled_rows),
            Metric.LABEL_COVERAGE.value: self.label_coverage,
        }
        values |= {name: getattr(self, name) for name in FIGURES}
        values |= {name: float(getattr(self, name)) for name in BAD_INPUT}
        return [MetricValue(FAMILY, name, value) for name, value in values.items()]

    def headline(self) -> dict[str, float | str | None]:
        return {
            "roc_auc": self.roc_auc,
            "f1": self.f1,
            "expected_calibration_error": self.expected_calibration_error,
            "label_coverage": self.label_coverage,
            "labelled_rows": self.labelled_rows,
            **{name: getattr(self, name) for name in BAD_INPUT},
            "partial_reason": self.partial_reason,
        }


@dataclass(frozen=True)
class EstimatedPerformance:
    """The label-free estimate (CBPE) of one day: ``rows`` with a score; figures None when undefined."""

    rows: int
    roc_auc: float | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None

    def metrics(self) -> list[MetricValue]:
        return [
            MetricValue(ESTIMATED_FAMILY, EstimatedMetric.ESTIMATED_ROWS.value, float(self.rows)),
            MetricValue(ESTIMATED_FAMILY, EstimatedMetric.ROC_AUC.value, self.roc_auc),
            MetricValue(ESTIMATED_FAMILY, EstimatedMetric.ACCURACY.value, self.accuracy),
            MetricValue(ESTIMATED_FAMILY, EstimatedMetric.PRECISION.value, self.precision),
            MetricValue(ESTIMATED_FAMILY, EstimatedMetric.RECALL.value, self.recall),
            MetricValue(ESTIMATED_FAMILY, EstimatedMetric.F1.value, self.f1),
        ]

    def headline(self) -> dict[str, float | str | None]:
        return {
            "estimated_rows": self.rows,
            "estimated_roc_auc": self.roc_auc,
            "estimated_accuracy": self.accuracy,
            "estimated_f1": self.f1,
        }
