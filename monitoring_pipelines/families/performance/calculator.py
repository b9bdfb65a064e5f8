"""Model performance of one day's predictions against the labels that have arrived for them.

Pure computation: no Dagster, no I/O. The figures come from scikit-learn through the family's adapter
(``performance/sklearn.py``, which imports it only when a figure is computed), so importing this module stays
cheap (the code location and sensors import it). The result is ``result.PerformanceResult``; the label join
lives in ``labels.py``; the label-free estimate in ``estimation.py``.

Decisions
---------
* Labels are joined to the day's predictions on the id (inner join). Label rows whose id is not among the
  day's predictions belong to other days and are ignored. Label rows with a missing label are not labels
  yet and are dropped. When the label table holds an id twice (a relabel), the *last* row wins, so one
  prediction is never counted twice. ``join_labels`` does this join (one hash pass over the ids, then
  integer work), and the fairness and comparison steps can call it to rest on exactly the same labels.
* Binary classification with the classes 0 and 1: ``positive_class`` must be one of them (else ValueError).
* ``label_coverage`` = prediction rows with a label / prediction rows (None when the day has no
  predictions).
* The day is **partial** when coverage is below ``min_coverage``, when no labelled row can be evaluated,
  or when the evaluated labels hold a single class (ROC AUC is undefined). A partial day reports only
  ``labelled_rows``, ``label_coverage`` and the bad-input counts below; every performance figure is None,
  so it is judged 'unknown' and never alerted on. Figures from a few early labels would be noisy and
  alert-prone, and a single-class day would give AUC-less but accuracy-full rows that are hard to compare
  with the days around them.
* Labelled rows with a missing score or predicted label are left out of the figures (the quality family
  reports the nulls); ``evaluated_rows`` says how many rows the figures rest on.
* ``log_loss``, ``brier_score`` and ``expected_calibration_error`` need probabilities. scikit-learn 1.9
  *rejects* scores outside [0, 1] (ValueError) and clips the rest to [eps, 1 - eps] with eps = machine
  epsilon of the score dtype (it no longer uses 1e-15). Scores are cast to float64 first, so the clip is
  always 2.2e-16 (float32 scores would otherwise be clipped at 1.2e-7 and change the loss); when any
  evaluated score lies outside [0, 1] the three figures are None. ROC AUC and PR AUC only need a ranking
  and are still computed.
* ``expected_calibration_error`` (ECE) over the evaluated rows: 10 equal-width bins with edges the floats
  ``k / 10`` (k = 0..10); bin k holds ``k/10 <= score < (k+1)/10`` and the last bin also holds 1.0
  (``[0.9, 1.0]``, the convention of ``numpy.histogram``). ECE = sum over non-empty bins of
  ``(n_b / n) * |mean(y in b) - mean(score in b)|``, computed as ``sum_b |sum(y in b) - sum(score in b)| / n``
  (the same sum, one division). The edges are compared as floats: a score of exactly 0.3 is in bin 3,
  whereas ``floor(score * 10)`` or ``numpy.linspace(0, 1, 11)`` (whose 4th edge is 0.30000000000000004)
  would place some edge values one bin off.

Bad input (counted, exposed as result fields and metric rows, never dropped silently)
--------------------------------------------------------------------------------------
The label input holds every label that arrived on or after the day, most of them for *other* days'
predictions, so a label whose id is not in this day's log cannot be called unknown from this input (it is
probably another day's): that count is not made here. Only what is unambiguous for the day is counted, and
only over label rows whose id *is* one of the day's predictions (so a bad label is counted on its own day,
not on every day whose run reads it):

* ``labels_duplicate_ids``: day ids that hold more than one non-missing label row in the input (a relabel,
  or a duplicate delivery). The last row still wins; the count says it happened. Callers that deduplicate
  labels before calling (``sources.read_labels`` does by default) hide these: pass the raw rows, sorted by
  arrival, to get the count.
* ``labels_out_of_classes``: day ids whose (winning) label is not one of the two classes 0 and 1
  (``positive_class`` is 0 or 1; the other value is the negative class). Labels are compared by value, so
  1, 1.0 and True are class 1, while the text ``"1"``, 2 or 0.5 are not. These rows are left out of
  ``labelled_rows``, ``label_coverage`` and every figure (a value outside the classes is not a label the
  model can be judged on; counting it as the negative class would silently bend every figure).
* ``scores_out_of_range``: evaluated rows whose score lies outside [0, 1] (they keep ROC/PR AUC and the
  label-based figures but switch off the probabilistic ones, see above). Counted on partial days too. The
  whole day's score range is a blocking quality check (``score_in_unit_interval``); this count is about
  the rows the performance figures rest on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.families.performance import sklearn
from monitoring_pipelines.families.performance.labels import CLASSES, LabelJoin, join_labels
from monitoring_pipelines.families.performance.result import BAD_INPUT, FIGURES, PerformanceResult
from monitoring_pipelines.plan.schema import MonitoringPlan

__all__ = [
    "BAD_INPUT",
    "CLASSES",
    "ECE_BINS",
    "FIGURES",
    "LabelJoin",
    "PerformanceCalculator",
    "PerformanceResult",
    "compute",
    "expected_calibration_error",
    "join_labels",
]

_LABEL = "__monitoring_label__"
ECE_BINS = 10
# the floats k/10, not linspace(0, 1, 11) (its 0.30000000000000004 would put a score of 0.3 in bin 2)
_ECE_EDGES = np.arange(ECE_BINS + 1) / ECE_BINS


@dataclass(frozen=True)
class PerformanceCalculator:
    """Realised performance of one day (the calculator protocol of ``families/base.py``). Nothing is learnt
    from the reference (the label-free estimate's calibration is: ``estimation.EstimationCalculator``)."""

    id_col: str
    score_col: str
    prediction_col: str
    label_col: str
    min_coverage: float
    positive_class: int = 1

    @classmethod
    def from_plan(cls, plan: MonitoringPlan) -> PerformanceCalculator:
        """The plan's columns; the labels passed to ``calculate`` carry their id under the prediction log's
        id column name. Without a label source: label column ``label``, coverage 1.0 (every day partial)."""
        p, lab = plan.data.predictions, plan.data.labels
        return cls(
            id_col=p.id,
            score_col=p.score,
            prediction_col=p.prediction,
            label_col=lab.label if lab else "label",
            min_coverage=lab.min_coverage if lab else 1.0,
            positive_class=plan.model.positive_class,
        )

    def fit(self, reference: pd.DataFrame | None = None) -> PerformanceCalculator:
        return self

    def calculate(self, day: dt.date, predictions: pd.DataFrame, labels: pd.DataFrame) -> PerformanceResult:
        """``compute`` on ``day``'s served predictions and the labels known so far."""
        return compute(
            predictions,
            labels,
            id_col=self.id_col,
            score_col=self.score_col,
            prediction_col=self.prediction_col,
            label_col=self.label_col,
            positive_class=self.positive_class,
            min_coverage=self.min_coverage,
        )


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
    the predicted label. ``labels`` may hold an id more than once (the last row wins and the id is counted
    in ``labels_duplicate_ids``). See the module docstring for the partial-day, probability and bad-input
    rules.
    """
    _require(predictions, "predictions", [id_col, score_col, prediction_col])
    _require(labels, "labels", [id_col, label_col])
    if positive_class not in CLASSES:
        raise ValueError(f"positive_class must be one of {CLASSES} (binary classification), got {positive_class!r}")

    # private name for the label: the prediction log may carry a column of the same name
    join = join_labels(
        predictions, labels, id_col=id_col, label_col=label_col, columns=[score_col, prediction_col], as_col=_LABEL
    )
    joined = join.rows

    n_pred, n_lab = len(predictions), len(joined)
    coverage = n_lab / n_pred if n_pred else None
    evaluable = (joined[score_col].notna() & joined[prediction_col].notna()).to_numpy()
    y_true = (joined[_LABEL] == positive_class).to_numpy(dtype=bool, na_value=False)[evaluable].astype(int)
    y_pred = (joined[prediction_col] == positive_class).to_numpy(dtype=bool, na_value=False)[evaluable].astype(int)
    score = joined[score_col].to_numpy(dtype=np.float64, na_value=np.nan)[evaluable]
    out_of_range = int(np.count_nonzero((score < 0) | (score > 1)))

    base = dict(
        prediction_rows=n_pred,
        labelled_rows=n_lab,
        label_coverage=coverage,
        evaluated_rows=len(y_true),
        labels_duplicate_ids=join.duplicate_ids,
        labels_out_of_classes=join.out_of_classes,
        scores_out_of_range=out_of_range,
    )
    reason = _partial_reason(n_pred, coverage, min_coverage, y_true)
    if reason:
        return PerformanceResult(**base, partial=True, partial_reason=reason)

    probabilistic = out_of_range == 0
    return PerformanceResult(
        **base,
        partial=False,
        partial_reason=None,
        positive_rate=float(y_true.mean()),
        **sklearn.classification_figures(y_true, y_pred, score, probabilistic=probabilistic),
        expected_calibration_error=expected_calibration_error(y_true, score) if probabilistic else None,
    )


def expected_calibration_error(y_true: np.ndarray, score: np.ndarray) -> float:
    """ECE with ``ECE_BINS`` equal-width bins on [0, 1], the last bin closed (see the module doc).
    ``y_true`` is 0/1, ``score`` lies in [0, 1]; an empty input gives NaN."""
    score = np.asarray(score, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.float64)
    if score.size == 0:
        return float("nan")
    if np.any((score < 0) | (score > 1)) or np.isnan(score).any():
        raise ValueError("expected_calibration_error needs scores within [0, 1]")
    # bin k: edges[k] <= s < edges[k+1]; side='right' sends s == edges[k] to bin k, and 1.0 to the last bin
    bins = np.minimum(np.searchsorted(_ECE_EDGES, score, side="right") - 1, ECE_BINS - 1)
    gap = np.bincount(bins, weights=y, minlength=ECE_BINS) - np.bincount(bins, weights=score, minlength=ECE_BINS)
    return float(np.abs(gap).sum() / score.size)


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
