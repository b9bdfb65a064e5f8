"""Model performance of one day's predictions against the labels that have arrived for them.

Pure computation: no Dagster, no I/O. scikit-learn is imported inside ``compute`` so that importing this
module stays cheap (the code location and sensors import it).

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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.judge.metrics import Family, MetricValue

_LABEL = "__monitoring_label__"
_FIGURES = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "log_loss",
    "brier_score",
    "expected_calibration_error",
)
BAD_INPUT = ("labels_duplicate_ids", "labels_out_of_classes", "scores_out_of_range")
CLASSES = (0, 1)
ECE_BINS = 10
# the floats k/10, not linspace(0, 1, 11) (its 0.30000000000000004 would put a score of 0.3 in bin 2)
_ECE_EDGES = np.arange(ECE_BINS + 1) / ECE_BINS


@dataclass(frozen=True)
class PerformanceResult:
    """Performance figures of one day. Figures are None when the day is ``partial`` (see module doc);
    the bad-input counts (``BAD_INPUT``) are always given."""

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
        values = {"labelled_rows": float(self.labelled_rows), "label_coverage": self.label_coverage}
        values |= {name: getattr(self, name) for name in _FIGURES}
        values |= {name: float(getattr(self, name)) for name in BAD_INPUT}
        return [MetricValue(Family.PERFORMANCE, name, value) for name, value in values.items()]

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

    from sklearn import metrics as skm

    probabilistic = out_of_range == 0
    return PerformanceResult(
        **base,
        partial=False,
        partial_reason=None,
        positive_rate=float(y_true.mean()),
        roc_auc=float(skm.roc_auc_score(y_true, score)),
        pr_auc=float(skm.average_precision_score(y_true, score)),
        accuracy=float(skm.accuracy_score(y_true, y_pred)),
        precision=float(skm.precision_score(y_true, y_pred, zero_division=0)),
        recall=float(skm.recall_score(y_true, y_pred, zero_division=0)),
        f1=float(skm.f1_score(y_true, y_pred, zero_division=0)),
        log_loss=float(skm.log_loss(y_true, score, labels=[0, 1])) if probabilistic else None,
        brier_score=float(skm.brier_score_loss(y_true, score, pos_label=1)) if probabilistic else None,
        expected_calibration_error=expected_calibration_error(y_true, score) if probabilistic else None,
    )


@dataclass(frozen=True)
class LabelJoin:
    """The day's prediction rows that have a usable label, and what was left out on the way (module doc,
    "Bad input"). ``rows`` keeps the prediction order and holds ``id_col``, the requested columns (all, in
    their order, by default) and the label (under ``as_col``, last), as an inner ``merge`` would."""

    rows: pd.DataFrame
    duplicate_ids: int
    out_of_classes: int


def join_labels(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    id_col: str,
    label_col: str,
    columns: list[str] | None = None,
    as_col: str | None = None,
) -> LabelJoin:
    """Join one day's ``predictions`` with ``labels`` (id + label, from any day) by the rules of this module:
    missing labels are not labels, the last row of an id wins, labels outside ``CLASSES`` are left out;
    relabelled ids and out-of-class labels of the day's ids are counted.

    ``columns``: the prediction columns to keep (default: all); ``as_col``: the name of the label column in
    ``rows`` (default ``label_col``). The fairness and comparison steps can use this so that they rest on
    the same labels as the performance figures (and join in one pass instead of ``DataFrame.merge``).
    """
    as_col = as_col or label_col
    keep = [c for c in (columns if columns is not None else predictions.columns) if c != id_col]
    if as_col in (id_col, *keep):
        raise ValueError(f"the label column name {as_col!r} is taken by a prediction column: pass another as_col")
    # no column selection when every column is kept: on a wide day that would be one more full copy
    left = predictions if columns is None else predictions[[id_col, *keep]]
    known = labels.loc[labels[label_col].notna(), [id_col, label_col]]
    left_ids, label_ids = left[id_col], known[id_col]
    if is_numeric_dtype(left_ids) != is_numeric_dtype(label_ids):
        # an int id in one table and a string id in the other: pandas refuses to merge; compare as text
        left_ids, label_ids = left_ids.astype(str), label_ids.astype(str)

    index = pd.Index(left_ids)
    if not index.is_unique:  # the quality step blocks such a day; still give the merge's answer
        return _join_by_merge(
            left.assign(**{id_col: left_ids}), known.assign(**{id_col: label_ids}), id_col, label_col, as_col
        )
    # one hash pass: the prediction row of every label row (-1: another day's id); the rest is integer work
    pos = index.get_indexer(label_ids)
    mine = pos >= 0
    pos, values = pos[mine], known[label_col].to_numpy()[mine]  # label rows of this day's ids, in input order
    repeated = pd.Series(pos).duplicated(keep="last").to_numpy()  # True on every row but the one that wins
    duplicate_ids = int(np.unique(pos[repeated]).size)
    pos, values = pos[~repeated], values[~repeated]
    in_classes = _in_classes(pd.Series(values, dtype=known[label_col].dtype))
    pos, values = pos[in_classes], values[in_classes]
    order = np.argsort(pos, kind="stable")  # prediction order, as an inner merge on unique left keys gives
    rows = left.take(pos[order])  # the one copy of the day's columns (take: a new frame, not a view)
    rows.index = pd.RangeIndex(len(rows))  # reset_index would copy every column once more
    rows[as_col] = pd.array(values[order], dtype=known[label_col].dtype)
    return LabelJoin(rows=rows, duplicate_ids=duplicate_ids, out_of_classes=int(np.count_nonzero(~in_classes)))


def _join_by_merge(left: pd.DataFrame, known: pd.DataFrame, id_col: str, label_col: str, as_col: str) -> LabelJoin:
    """``join_labels`` when the day repeats a prediction id: every prediction row of the id gets the label."""
    known = known.rename(columns={label_col: as_col})
    mine = known[known[id_col].isin(left[id_col])]
    repeated = mine[id_col].duplicated(keep="last")
    duplicate_ids = int(mine.loc[repeated, id_col].nunique())
    mine = mine[~repeated]
    in_classes = _in_classes(mine[as_col])
    rows = left.merge(mine[in_classes], on=id_col, how="inner")
    return LabelJoin(rows=rows, duplicate_ids=duplicate_ids, out_of_classes=int(np.count_nonzero(~in_classes)))


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


def _in_classes(values: pd.Series) -> np.ndarray:
    """Whether each (non-missing) label equals one of ``CLASSES`` by value (1, 1.0, True: yes; "1": no)."""
    hit = np.zeros(len(values), dtype=bool)
    for cls in CLASSES:
        hit |= (values == cls).to_numpy(dtype=bool, na_value=False)
    return hit


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
