"""Label-free performance estimate: confidence-based performance estimation (CBPE, the method of NannyML).

1. Calibration, once per champion version: isotonic regression of the reference labels on the champion's
   reference scores, so that a calibrated score is the probability that the row is positive. It is kept as
   the regression's knots and applied with linear interpolation (clipped to the knots' range).
2. Each day, without labels: with calibrated probabilities p_i and the served predictions ŷ_i, the expected
   confusion matrix is TP = Σ p_i·[ŷ_i = 1], FP = Σ (1 − p_i)·[ŷ_i = 1], FN = Σ p_i·[ŷ_i = 0],
   TN = Σ (1 − p_i)·[ŷ_i = 0]; accuracy, precision, recall and F1 follow from it.
3. Expected ROC AUC: every row counts as a positive with weight p_i and as a negative with weight 1 − p_i, and
   the ROC AUC of that weighted sample is computed (expected TPR and FPR at every threshold, trapezoids).

``EstimationCalculator`` follows ``families/base.py``: ``fit`` = the calibration (step 1) on the reference,
``calculate`` = the estimate of one day (steps 2 and 3). scikit-learn (isotonic regression, weighted ROC AUC)
is reached through the family's adapter ``sklearn.py``.

The estimate is right as long as the relation between score and outcome holds (covariate shift is fine,
concept drift is not); docs/performance.md gives its measured error on the demo.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring_pipelines.families.performance import sklearn
from monitoring_pipelines.families.performance.result import EstimatedPerformance
from monitoring_pipelines.plan.schema import MonitoringPlan

__all__ = [
    "Calibration",
    "EstimatedPerformance",
    "EstimationCalculator",
    "estimate",
    "expected_roc_auc",
    "fit_calibration",
]


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
    scores, positives = np.asarray(scores, dtype=float), np.asarray(positives, dtype=float)
    keep = ~np.isnan(scores) & ~np.isnan(positives)
    if keep.sum() < 2 or len(np.unique(positives[keep])) < 2:
        raise ValueError("calibration needs labelled reference rows of both classes")
    x, y = sklearn.isotonic_knots(scores[keep], positives[keep])
    return Calibration(tuple(float(v) for v in x), tuple(float(v) for v in y), int(keep.sum()))


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
    p = np.asarray(probabilities, dtype=float)
    if p.sum() <= 0 or (1 - p).sum() <= 0:
        return None
    s = np.asarray(scores, dtype=float)
    y = np.r_[np.ones(len(s)), np.zeros(len(s))]
    return sklearn.weighted_roc_auc(y, np.r_[s, s], np.r_[p, 1 - p])


@dataclass(frozen=True)
class EstimationCalculator:
    """The label-free estimate (the calculator protocol of ``families/base.py``): ``fit`` calibrates on the
    reference rows with a score and a label, once per champion version; ``calculate`` estimates one day."""

    score_col: str
    prediction_col: str
    label_col: str
    positive_class: int = 1
    calibration: Calibration | None = None

    @classmethod
    def from_plan(cls, plan: MonitoringPlan, calibration: Calibration | None = None) -> EstimationCalculator:
        """The plan's score and prediction columns and the reference's label column; ``calibration``: one
        fitted earlier (the ``reference_profile`` asset keeps it), so ``calculate`` needs no ``fit``."""
        return cls(
            score_col=plan.data.predictions.score,
            prediction_col=plan.data.predictions.prediction,
            label_col=plan.data.reference.label,
            positive_class=plan.model.positive_class,
            calibration=calibration,
        )

    def fit(self, reference: pd.DataFrame) -> EstimationCalculator:
        """Calibrate on the reference rows that have both a score and a label (ValueError without both
        classes among them)."""
        rows = reference[reference[self.score_col].notna() & reference[self.label_col].notna()]
        calibration = fit_calibration(
            rows[self.score_col].to_numpy(dtype=float),
            (rows[self.label_col] == self.positive_class).to_numpy(dtype=float),
        )
        return dataclasses.replace(self, calibration=calibration)

    def calculate(self, day: dt.date, served: pd.DataFrame) -> EstimatedPerformance:
        """The estimate of ``day`` from its served rows (those with a score)."""
        if self.calibration is None:
            raise ValueError(f"the label-free estimate of {day} needs a calibration: fit the calculator first")
        return estimate(
            served[self.score_col].to_numpy(dtype=float),
            (served[self.prediction_col] == self.positive_class).to_numpy(),
            self.calibration,
        )
