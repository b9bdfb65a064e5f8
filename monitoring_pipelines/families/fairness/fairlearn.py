"""The fairness family's one door to fairlearn (and the scikit-learn metric it feeds fairlearn).

fairlearn is imported inside the function: it pulls in scikit-learn (about 1.2 s), and the code location and
the sensors import this family without ever computing a figure.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd


def figures_by_group(
    y_true: np.ndarray, y_pred: np.ndarray, rows: np.ndarray, sensitive_features: pd.Series | pd.DataFrame
) -> pd.DataFrame:
    """fairlearn ``MetricFrame.by_group`` of a confusion table: one row per group x label x prediction (0/1
    ``y_true`` / ``y_pred``) weighted by its row count ``rows``. Columns: ``group_count``, ``positives``,
    ``selection_rate``, ``true_positive_rate``, ``false_positive_rate``, ``accuracy``; one row per group (an
    intersection spans the full product of values: combinations never seen have NaN counts)."""
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    frame_metrics = {
        "group_count": lambda t, p, sample_weight: float(np.sum(sample_weight)),
        "positives": lambda t, p, sample_weight: float(np.sum(sample_weight * t)),
        "selection_rate": partial(selection_rate, pos_label=1),
        "true_positive_rate": partial(true_positive_rate, pos_label=1),
        "false_positive_rate": partial(false_positive_rate, pos_label=1),
        "accuracy": accuracy_score,
    }
    weights = {name: {"sample_weight": rows} for name in frame_metrics}
    return MetricFrame(
        metrics=frame_metrics,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive_features,
        sample_params=weights,
    ).by_group
