"""Label-free performance estimate: confidence-based performance estimation (CBPE, the method of NannyML).

1. Calibration, once per champion version: isotonic regression of the reference labels on the champion's
   reference scores, so that a calibrated score is the probability that the row is positive. It is kept as
   the regression's knots and applied with linear interpolation (clipped to the knots' range).
2. Each day, without labels: with calibrated probabilities p_i and the served predictions ŷ_i, the expected
   confusion matrix is TP = Σ p_i·[ŷ_i = 1], FP = Σ (1 − p_i)·[ŷ_i = 1], FN = Σ p_i·[ŷ_i = 0],
   TN = Σ (1 − p_i)·[ŷ_i = 0]; accuracy, precision, recall and F1 follow from it.
3. Expected ROC AUC: every row counts as a positive with weight p_i and as a negative with weight 1 − p_i, and
   the ROC AUC of that weighted sample is computed (expected TPR and FPR at every threshold, trapezoids).

The estimate is right as long as the relation between score and outcome holds (covariate shift is fine,
concept drift is not); docs/performance.md gives its measured error on the demo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitoring_pipelines.judge.metrics import Family, MetricValue


@dataclass(frozen=True)
class Calibration:
    """Isotonic calibration as knots: ``probability(score) = interp(score, x, y)``."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    reference_rows: int

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(np.asarray(scores, dtype=float), self.x, self.y), 0.0, 1.0)


def fit_calibration(scores: np.ndarray, positives: np.ndarray) -> Calibration:
    """Fit on reference rows: ``scores`` in [0, 1] and ``positives`` (1 = positive class, 0 = not)."""
    from sklearn.isotonic import IsotonicRegression

    scores, positives = np.asarray(scores, dtype=float), np.asarray(positives, dtype=float)
    keep = ~np.isnan(scores) & ~np.isnan(positives)
    if keep.sum() < 2 or len(np.unique(positives[keep])) < 2:
        raise ValueError("calibration needs labelled reference rows of both classes")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores[keep], positives[keep])
    return Calibration(
        tuple(float(v) for v in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_), int(keep.sum())
    )


@dataclass(frozen=True)
class EstimatedPerformance:
    rows: int
    roc_auc: float | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None

    def metrics(self) -> list[MetricValue]:
        f = Family.PERFORMANCE_ESTIMATED
        return [
            MetricValue(f, "estimated_rows", float(self.rows)),
            MetricValue(f, "roc_auc", self.roc_auc),
            MetricValue(f, "accuracy", self.accuracy),
            MetricValue(f, "precision", self.precision),
            MetricValue(f, "recall", self.recall),
            MetricValue(f, "f1", self.f1),
        ]


def _ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else float(num / den)


def estimate(scores: np.ndarray, predicted_positive: np.ndarray, calibration: Calibration) -> EstimatedPerformance:
    """Estimated figures of one day from its scores and served predictions (rows with a score only)."""
    scores = np.asarray(scores, dtype=float)
    pred = np.asarray(predicted_positive, dtype=bool)
    if len(scores) == 0:
        return EstimatedPerformance(0)
    p = calibration.probabilities(scores)
    tp, fp = float(np.sum(p[pred])), float(np.sum(1 - p[pred]))
    fn, tn = float(np.sum(p[~pred])), float(np.sum(1 - p[~pred]))
    n = len(scores)
    return EstimatedPerformance(
        rows=n,
        roc_auc=expected_roc_auc(scores, p),
        accuracy=(tp + tn) / n,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


def expected_roc_auc(scores: np.ndarray, probabilities: np.ndarray) -> float | None:
    """ROC AUC of the sample where each row is a positive with weight p and a negative with weight 1 - p."""
    from sklearn.metrics import roc_auc_score

    p = np.asarray(probabilities, dtype=float)
    if p.sum() <= 0 or (1 - p).sum() <= 0:
        return None
    s = np.asarray(scores, dtype=float)
    y = np.r_[np.ones(len(s)), np.zeros(len(s))]
    return float(roc_auc_score(y, np.r_[s, s], sample_weight=np.r_[p, 1 - p]))
