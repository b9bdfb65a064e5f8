"""Confidence-based performance estimation: exact formulas, an independent ROC, and agreement with reality."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from monitoring_pipelines.families.performance.estimation import (
    Calibration,
    EstimationCalculator,
    estimate,
    expected_roc_auc,
    fit_calibration,
)

IDENTITY = Calibration(x=(0.0, 1.0), y=(0.0, 1.0), reference_rows=2)


def test_the_expected_confusion_matrix_by_hand():
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    predicted = scores >= 0.5
    est = estimate(scores, predicted, IDENTITY)
    tp, fp, fn, tn = 0.9 + 0.8, 0.1 + 0.2, 0.3 + 0.1, 0.7 + 0.9
    assert est.rows == 4
    assert est.accuracy == pytest.approx((tp + tn) / 4, abs=1e-12)
    assert est.precision == pytest.approx(tp / (tp + fp), abs=1e-12)
    assert est.recall == pytest.approx(tp / (tp + fn), abs=1e-12)
    assert est.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)


def _trapezoid_auc(scores: np.ndarray, p: np.ndarray) -> float:
    """Expected TPR / FPR at every distinct threshold, highest first, then the area (written independently)."""
    thresholds = np.unique(scores)[::-1]
    tpr, fpr = [0.0], [0.0]
    for t in thresholds:
        above = scores >= t
        tpr.append(p[above].sum() / p.sum())
        fpr.append((1 - p[above]).sum() / (1 - p).sum())
    return float(sum((fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2 for i in range(1, len(tpr))))


def test_the_expected_roc_auc_equals_an_independent_trapezoid_computation_with_ties():
    rng = np.random.default_rng(1)
    scores = np.round(rng.uniform(size=500), 2)  # many ties
    p = np.clip(scores + rng.normal(0, 0.1, 500), 0, 1)
    assert expected_roc_auc(scores, p) == pytest.approx(_trapezoid_auc(scores, p), abs=1e-12)


def test_calibration_recovers_a_known_probability_curve():
    rng = np.random.default_rng(2)
    scores = rng.uniform(size=50_000)
    truth = scores**2  # the model over-states: P(positive | s) = s^2
    cal = fit_calibration(scores, rng.uniform(size=scores.size) < truth)
    grid = np.linspace(0.05, 0.95, 19)
    error = np.abs(cal.probabilities(grid) - grid**2)
    assert error.max() < 0.05 and error.mean() < 0.015  # an uncalibrated (identity) map is 0.25 off at s = 0.5
    assert np.all(np.diff(cal.probabilities(np.linspace(0, 1, 200))) >= 0)
    assert cal.reference_rows == 50_000


def _population(rng, n, shift=0.0):
    """Scores from a beta distribution (shifted = covariate shift), outcomes from the fixed P(y|s) = s^1.5."""
    scores = np.clip(rng.beta(2 + 3 * shift, 5 - 3 * shift, size=n), 0, 1)
    return scores, (rng.uniform(size=n) < scores**1.5).astype(int)


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_the_estimate_matches_realised_figures_without_and_with_covariate_shift(shift):
    rng = np.random.default_rng(3)
    ref_scores, ref_y = _population(rng, 20_000)
    cal = fit_calibration(ref_scores, ref_y)
    scores, y = _population(rng, 20_000, shift)
    predicted = scores >= 0.5
    est = estimate(scores, predicted, cal)
    assert est.roc_auc == pytest.approx(roc_auc_score(y, scores), abs=0.02)
    assert est.accuracy == pytest.approx(accuracy_score(y, predicted), abs=0.02)
    assert est.precision == pytest.approx(precision_score(y, predicted), abs=0.03)
    assert est.recall == pytest.approx(recall_score(y, predicted), abs=0.03)
    assert est.f1 == pytest.approx(f1_score(y, predicted), abs=0.03)


def test_concept_drift_is_what_the_estimate_cannot_see():
    rng = np.random.default_rng(4)
    ref_scores, ref_y = _population(rng, 20_000)
    cal = fit_calibration(ref_scores, ref_y)
    scores = rng.beta(2, 5, size=20_000)
    y = (rng.uniform(size=scores.size) < 0.3).astype(int)  # outcome no longer depends on the score
    est = estimate(scores, scores >= 0.5, cal)
    assert roc_auc_score(y, scores) == pytest.approx(0.5, abs=0.02)
    assert est.roc_auc > 0.7  # still believes the old relation holds


def test_calibration_needs_both_classes_and_an_empty_day_estimates_nothing():
    with pytest.raises(ValueError, match="both classes"):
        fit_calibration(np.array([0.1, 0.9]), np.array([1, 1]))
    empty = estimate(np.array([]), np.array([], dtype=bool), IDENTITY)
    assert empty.rows == 0 and empty.roc_auc is None and empty.accuracy is None
    assert {m.metric: m.value for m in empty.metrics()}["estimated_rows"] == 0.0


def test_the_calculator_fits_the_calibration_on_the_reference_and_estimates_a_day(plan):
    rng = np.random.default_rng(5)
    ref_scores, ref_y = _population(rng, 5_000)
    reference = pd.DataFrame({"score": ref_scores, "label": ref_y})
    reference.loc[:9, "label"] = np.nan  # rows without a label do not calibrate
    scores, _ = _population(rng, 3_000, 0.5)
    served = pd.DataFrame({"score": scores, "predicted_label": (scores >= 0.5).astype(int)})
    calculator = EstimationCalculator.from_plan(plan)
    assert (calculator.score_col, calculator.prediction_col, calculator.label_col) == (
        "score",
        "predicted_label",
        "label",
    )
    with pytest.raises(ValueError, match="fit the calculator first"):
        calculator.calculate(dt.date(2026, 1, 5), served)
    fitted = calculator.fit(reference)
    assert fitted.calibration == fit_calibration(ref_scores[10:], ref_y[10:])
    assert fitted.calculate(dt.date(2026, 1, 5), served) == estimate(scores, scores >= 0.5, fitted.calibration)
    # a calibration kept from an earlier fit (the reference profile) needs no new fit
    kept = EstimationCalculator.from_plan(plan, fitted.calibration)
    assert kept.calculate(dt.date(2026, 1, 5), served) == fitted.calculate(dt.date(2026, 1, 5), served)
