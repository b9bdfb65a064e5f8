"""Model performance of one day's predictions against the labels that have arrived for them.

Pure computation: no Dagster, no I/O. scikit-learn is imported inside ``compute`` so that importing this
module stays cheap (the code location and sensors import it).

Decisions
---------
* Labels are joined to the day's predictions on the id (inner join). Label rows whose id is not among the
  day's predictions belong to other days and are ignored. Label rows with a missing label are not labels
  yet and are dropped. When the label table holds an id twice (a relabel), the *last* row wins, so one
  prediction is never counted twice.
* ``label_coverage`` = prediction rows with a label / prediction rows (None when the day has no
  predictions).
* The day is **partial** when coverage is below ``min_coverage``, when no labelled row can be evaluated,
  or when the evaluated labels hold a single class (ROC AUC is undefined). A partial day reports only
  ``labelled_rows`` and ``label_coverage``; every performance figure is None, so it is judged 'unknown'
  and never alerted on. Figures from a few early labels would be noisy and alert-prone, and a single-class
  day would give AUC-less but accuracy-full rows that are hard to compare with the days around them.
* Labelled rows with a missing score or predicted label are left out of the figures (the quality family
  reports the nulls); ``evaluated_rows`` says how many rows the figures rest on.
* ``log_loss`` and ``brier_score`` need probabilities. scikit-learn 1.9 *rejects* scores outside [0, 1]
  (ValueError) and clips the rest to [eps, 1 - eps] with eps = machine epsilon of the score dtype
  (it no longer uses 1e-15). Scores are cast to float64 first, so the clip is always 2.2e-16 (float32
  scores would otherwise be clipped at 1.2e-7 and change the loss); when any score lies outside [0, 1]
  both figures are None and ``scores_out_of_range`` counts the offending rows. ROC AUC and PR AUC only
  need a ranking and are still computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.metrics import Family, MetricValue

_LABEL = "__monitoring_label__"
_FIGURES = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier_score")


@dataclass(frozen=True)
class PerformanceResult:
    """Performance figures of one day. Figures are None when the day is ``partial`` (see module doc)."""

    prediction_rows: int
    labelled_rows: int
    label_coverage: float | None
    evaluated_rows: int
    partial: bool
    partial_reason: str | None
    positive_rate: float | None = None
    scores_out_of_range: int = 0
    roc_auc: float | None = None
    pr_auc: float | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    log_loss: float | None = None
    brier_score: float | None = None

    def metrics(self) -> list[MetricValue]:
        """Every catalogued figure, None ones included (they are judged 'unknown')."""
        values = {"labelled_rows": float(self.labelled_rows), "label_coverage": self.label_coverage}
        values |= {name: getattr(self, name) for name in _FIGURES}
        return [MetricValue(Family.PERFORMANCE, name, value) for name, value in values.items()]

    def headline(self) -> dict[str, float | str | None]:
        return {
            "roc_auc": self.roc_auc,
            "f1": self.f1,
            "label_coverage": self.label_coverage,
            "labelled_rows": self.labelled_rows,
            "partial_reason": self.partial_reason,
        }


def compute(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    id_col: str,
    score_col: str,
    prediction_col: str,
    label_col: str,
    positive_class: int = 1,
    min_coverage: float,
) -> PerformanceResult:
    """Join ``labels`` (id + label, from any day) to one day's ``predictions`` and score them.

    ``id_col`` names the id in both frames; ``score_col`` is the positive-class score, ``prediction_col``
    the predicted label. See the module docstring for the partial-day and probability rules.
    """
    _require(predictions, "predictions", [id_col, score_col, prediction_col])
    _require(labels, "labels", [id_col, label_col])

    # private name for the label: the prediction log may carry a column of the same name
    known = labels.loc[labels[label_col].notna(), [id_col, label_col]].rename(columns={label_col: _LABEL})
    left, right = predictions[[id_col, score_col, prediction_col]], known.drop_duplicates(id_col, keep="last")
    if is_numeric_dtype(left[id_col]) != is_numeric_dtype(right[id_col]):
        # an int id in one table and a string id in the other: pandas refuses to merge; compare as text
        left = left.assign(**{id_col: left[id_col].astype(str)})
        right = right.assign(**{id_col: right[id_col].astype(str)})
    joined = left.merge(right, on=id_col, how="inner")

    n_pred, n_lab = len(predictions), len(joined)
    coverage = n_lab / n_pred if n_pred else None
    evaluable = joined[score_col].notna() & joined[prediction_col].notna()
    y_true = (joined.loc[evaluable, _LABEL] == positive_class).to_numpy(dtype=int)
    y_pred = (joined.loc[evaluable, prediction_col] == positive_class).to_numpy(dtype=int)
    score = joined.loc[evaluable, score_col].to_numpy(dtype=np.float64)

    base = dict(prediction_rows=n_pred, labelled_rows=n_lab, label_coverage=coverage, evaluated_rows=len(y_true))
    reason = _partial_reason(n_pred, coverage, min_coverage, y_true)
    if reason:
        return PerformanceResult(**base, partial=True, partial_reason=reason)

    from sklearn import metrics as skm

    out_of_range = int(np.count_nonzero((score < 0) | (score > 1)))
    probabilistic = out_of_range == 0
    return PerformanceResult(
        **base,
        partial=False,
        partial_reason=None,
        positive_rate=float(y_true.mean()),
        scores_out_of_range=out_of_range,
        roc_auc=float(skm.roc_auc_score(y_true, score)),
        pr_auc=float(skm.average_precision_score(y_true, score)),
        accuracy=float(skm.accuracy_score(y_true, y_pred)),
        precision=float(skm.precision_score(y_true, y_pred, zero_division=0)),
        recall=float(skm.recall_score(y_true, y_pred, zero_division=0)),
        f1=float(skm.f1_score(y_true, y_pred, zero_division=0)),
        log_loss=float(skm.log_loss(y_true, score, labels=[0, 1])) if probabilistic else None,
        brier_score=float(skm.brier_score_loss(y_true, score, pos_label=1)) if probabilistic else None,
    )


def _partial_reason(n_pred: int, coverage: float | None, min_coverage: float, y_true: np.ndarray) -> str | None:
    if n_pred == 0:
        return "no predictions this day"
    if coverage < min_coverage:
        return f"label coverage {coverage:.3f} is below min_coverage {min_coverage}"
    if len(y_true) == 0:
        return "no labelled row with a score and a predicted label"
    if len(np.unique(y_true)) < 2:
        return f"labels hold a single class ({'positive' if y_true[0] else 'negative'} only)"
    return None


def _require(df: pd.DataFrame, what: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataSourceError(f"{what} lack column(s) {missing}; they have {list(df.columns)}")
