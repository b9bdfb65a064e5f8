"""The performance family's one door to scikit-learn.

scikit-learn is imported inside each function: ``import sklearn`` costs about 1.2 s, and the code location
and the sensors import this family without ever computing a figure.
"""

from __future__ import annotations

import numpy as np


def classification_figures(
    y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray, *, probabilistic: bool
) -> dict[str, float | None]:
    """ROC AUC, PR AUC (average precision), accuracy, precision, recall, F1 of 0/1 ``y_true`` against the
    0/1 ``y_pred`` and the positive-class ``score`` (float64); with ``probabilistic`` also log loss and Brier
    score (None without: scikit-learn rejects scores outside [0, 1])."""
    from sklearn import metrics as skm

    return {
        "roc_auc": float(skm.roc_auc_score(y_true, score)),
        "pr_auc": float(skm.average_precision_score(y_true, score)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "log_loss": float(skm.log_loss(y_true, score, labels=[0, 1])) if probabilistic else None,
        "brier_score": float(skm.brier_score_loss(y_true, score, pos_label=1)) if probabilistic else None,
    }


def isotonic_knots(scores: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x, y) of the isotonic regression of ``positives`` (0/1) on ``scores``, y within [0, 1]."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, positives)
    return iso.X_thresholds_, iso.y_thresholds_


def roc_auc(y_true, scores) -> float:
    """ROC AUC of ``scores`` against the binary ``y_true`` (e.g. a retrained version's holdout)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, scores))


def weighted_roc_auc(y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """ROC AUC of ``scores`` against 0/1 ``y_true`` with per-row ``weights``."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, scores, sample_weight=weights))
