"""Group fairness of labelled predictions: per-group rates and the gaps between groups.

Pure computation: no Dagster, no I/O. fairlearn is imported inside ``compute`` (it pulls in scikit-learn).
Per-group figures come from ``fairlearn.metrics.MetricFrame``, one frame per protected attribute and one for
the intersection of all of them (when there is more than one), fed the day's confusion table weighted by
row counts rather than the raw rows (same figures, ~100x faster; see ``compute``). The gaps are computed
here from those per-group figures rather than with fairlearn's ``*_difference`` helpers, because those
cannot leave out small groups. (Evidently's GroupBy is not used: for classification metrics it returns
the overall value for every group.)

Decisions
---------
* Segments: a group is ``sex=Female``; an intersection group is ``sex=Female&race=Black`` (attributes in plan
  order); a gap belongs to the attribute segment ``sex`` or ``sex&race``.
* A missing protected value becomes its own group ``<missing>`` (``sex=<missing>``): it is reported, never
  dropped. Values are compared as text, so 1 and "1" are the same group.
* Groups with fewer than ``min_group_size`` rows are reported per group but left out of every gap
  (``Disparity.excluded_groups``, ``FairnessResult.small_groups``); a gap needs two compared groups, else None.
  Rate gaps also need the rate's own denominator to reach ``min_rate_support`` (default 0): TPR gaps compare
  groups with at least that many actual positives, FPR gaps groups with that many actual negatives.
* True positive rate is None for a group without actual positives, false positive rate None for a group
  without actual negatives. fairlearn reports 0.0 there (scikit-learn's empty confusion-matrix row), which
  would invent a gap; undefined rates are also left out of the gaps.
* demographic_parity_difference = max - min selection rate; demographic_parity_ratio = min / max (None when
  every compared group has selection rate 0); equal_opportunity_difference = max - min TPR;
  equalized_odds_difference = the larger of the TPR gap and the FPR gap (the one defined, if only one is).
  These equal fairlearn's between-groups differences when no group is excluded.
* Worst group, for UI metadata: the group with the lowest selection rate (demographic parity; the positive
  class is read as the favourable outcome), the lowest TPR (equal opportunity), and for equalized odds the
  lowest-TPR group when the TPR gap is the larger one, else the highest-FPR group.
* Rows with a missing label or prediction are skipped (``skipped_rows``); callers pass labelled rows. With no
  usable rows the result is partial: no groups, every gap None.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.judge.metrics import Family, MetricValue

MISSING = "<missing>"
GAP_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
)
_T, _P, _W = "__y_true__", "__y_pred__", "__rows__"  # private column names of the confusion table
_GROUP_METRICS = ("group_count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


@dataclass(frozen=True)
class GroupFigures:
    """One group of one attribute (or of the intersection)."""

    attribute: str
    segment: str
    group_count: int
    positives: int
    negatives: int
    selection_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None
    accuracy: float
    small: bool


@dataclass(frozen=True)
class Disparity:
    """Gaps between the compared (large enough) groups of one attribute segment."""

    attribute: str
    compared_groups: tuple[str, ...]
    excluded_groups: tuple[str, ...]
    demographic_parity_difference: float | None = None
    demographic_parity_ratio: float | None = None
    equal_opportunity_difference: float | None = None
    equalized_odds_difference: float | None = None
    worst_groups: tuple[tuple[str, str | None], ...] = ()

    def worst_group(self, metric: str) -> str | None:
        return dict(self.worst_groups).get(metric)


@dataclass(frozen=True)
class FairnessResult:
    """Per-group figures and per-attribute gaps. ``attributes`` lists the attribute segments in order."""

    rows: int
    skipped_rows: int
    min_group_size: int
    attributes: tuple[str, ...]
    groups: tuple[GroupFigures, ...]
    disparities: tuple[Disparity, ...]
    partial: bool
    partial_reason: str | None

    @property
    def small_groups(self) -> tuple[str, ...]:
        """Segments of the groups below ``min_group_size``: reported, excluded from gaps, not to be alerted on."""
        return tuple(g.segment for g in self.groups if g.small)

    def disparity(self, attribute: str) -> Disparity:
        return next(d for d in self.disparities if d.attribute == attribute)

    def metrics(self) -> list[MetricValue]:
        out = []
        for g in self.groups:
            out += [MetricValue(Family.FAIRNESS, m, _float(getattr(g, m)), g.segment) for m in _GROUP_METRICS]
        for d in self.disparities:
            out += [MetricValue(Family.FAIRNESS, m, getattr(d, m), d.attribute) for m in GAP_METRICS]
        return out

    def headline(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {"rows": self.rows}
        for d in self.disparities:
            for metric, short in (
                ("demographic_parity_difference", "demographic_parity"),
                ("equal_opportunity_difference", "equal_opportunity"),
            ):
                out[f"{d.attribute}.{metric}"] = getattr(d, metric)
                out[f"{d.attribute}.{short}_worst_group"] = d.worst_group(metric)
            out[f"{d.attribute}.equalized_odds_difference"] = d.equalized_odds_difference
        out["small_groups"] = ", ".join(self.small_groups) or None
        out["partial_reason"] = self.partial_reason
        return out


def compute(
    df: pd.DataFrame,
    *,
    label_col: str,
    prediction_col: str,
    protected_attributes: list[str],
    min_group_size: int,
    min_rate_support: int = 0,
    positive_class: int = 1,
) -> FairnessResult:
    """Per-group rates and gaps for each protected attribute and, with more than one, their intersection."""
    missing = [c for c in (label_col, prediction_col, *protected_attributes) if c not in df.columns]
    if missing:
        raise DataSourceError(f"fairness input lacks column(s) {missing}; it has {list(df.columns)}")

    usable = df[label_col].notna() & df[prediction_col].notna()
    data = df.loc[usable]
    attrs = list(protected_attributes)
    segments = [[a] for a in attrs] + ([attrs] if len(attrs) > 1 else [])
    common = dict(
        rows=len(data),
        skipped_rows=int((~usable).sum()),
        min_group_size=min_group_size,
        attributes=tuple("&".join(s) for s in segments),
    )
    if data.empty:
        empty = tuple(Disparity("&".join(s), (), ()) for s in segments)
        return FairnessResult(
            **common, groups=(), disparities=empty, partial=True, partial_reason="no labelled rows with a prediction"
        )

    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    # MetricFrame runs on the confusion table (one row per group x label x prediction, weighted by its row
    # count), not on the raw rows: every figure here is a ratio of confusion counts, so the weighted result is
    # the same, and fairlearn 0.15 np.stack-s every cell of every metric column (75 s at 1M rows, vs ~0.3 s).
    table = (
        pd.DataFrame({a: _as_groups(data[a]) for a in attrs})
        .assign(
            **{
                _T: (data[label_col] == positive_class).astype(int),
                _P: (data[prediction_col] == positive_class).astype(int),
            }
        )
        .groupby([*attrs, _T, _P], sort=False)
        .size()
        .rename(_W)
        .reset_index()
    )
    frame_metrics = {
        "group_count": lambda t, p, sample_weight: float(np.sum(sample_weight)),
        "positives": lambda t, p, sample_weight: float(np.sum(sample_weight * t)),
        "selection_rate": partial(selection_rate, pos_label=1),
        "true_positive_rate": partial(true_positive_rate, pos_label=1),
        "false_positive_rate": partial(false_positive_rate, pos_label=1),
        "accuracy": accuracy_score,
    }
    weights = {name: {"sample_weight": table[_W].to_numpy()} for name in frame_metrics}

    groups: list[GroupFigures] = []
    disparities: list[Disparity] = []
    for seg_attrs in segments:
        attribute = "&".join(seg_attrs)
        features = table[seg_attrs[0]] if len(seg_attrs) == 1 else table[seg_attrs]
        by_group = MetricFrame(
            metrics=frame_metrics,
            y_true=table[_T].to_numpy(),
            y_pred=table[_P].to_numpy(),
            sensitive_features=features,
            sample_params=weights,
        ).by_group
        # the intersection frame spans the full product of values; combinations never seen have NaN counts
        by_group = by_group[by_group["group_count"].notna()]
        seg_groups = [_group(attribute, seg_attrs, key, row, min_group_size) for key, row in by_group.iterrows()]
        groups += seg_groups
        disparities.append(_disparity(attribute, seg_groups, min_rate_support))
    return FairnessResult(
        **common, groups=tuple(groups), disparities=tuple(disparities), partial=False, partial_reason=None
    )


def _as_groups(values: pd.Series) -> pd.Series:
    """Group labels as text, with missing values as the explicit group ``<missing>``."""
    return values.astype(object).where(values.notna(), MISSING).astype(str)


def _group(attribute: str, attrs: list[str], key, row: pd.Series, min_group_size: int) -> GroupFigures:
    key = key if isinstance(key, tuple) else (key,)
    n, positives = int(row["group_count"]), int(row["positives"])
    negatives = n - positives
    return GroupFigures(
        attribute=attribute,
        segment="&".join(f"{a}={v}" for a, v in zip(attrs, key)),
        group_count=n,
        positives=positives,
        negatives=negatives,
        selection_rate=float(row["selection_rate"]),
        true_positive_rate=float(row["true_positive_rate"]) if positives else None,
        false_positive_rate=float(row["false_positive_rate"]) if negatives else None,
        accuracy=float(row["accuracy"]),
        small=n < min_group_size,
    )


def _disparity(attribute: str, groups: list[GroupFigures], min_rate_support: int) -> Disparity:
    compared = [g for g in groups if not g.small]
    sel = _extremes(compared, "selection_rate")
    # a rate is compared only when its own denominator is large enough: a group with 3 actual positives has
    # a TPR of 0, 1/3, 2/3 or 1 whatever the model does, and would dominate every gap
    tpr = _extremes([g for g in compared if g.positives >= min_rate_support], "true_positive_rate")
    fpr = _extremes([g for g in compared if g.negatives >= min_rate_support], "false_positive_rate")
    dpd = _gap(sel)
    tpr_gap, fpr_gap = _gap(tpr), _gap(fpr)
    dpr = sel[0][1] / sel[1][1] if sel and sel[1][1] > 0 else None

    odds_gap, odds_worst = None, None
    if tpr_gap is not None and (fpr_gap is None or tpr_gap >= fpr_gap):
        odds_gap, odds_worst = tpr_gap, tpr[0][0]
    elif fpr_gap is not None:
        odds_gap, odds_worst = fpr_gap, fpr[1][0]
    return Disparity(
        attribute=attribute,
        compared_groups=tuple(g.segment for g in compared),
        excluded_groups=tuple(g.segment for g in groups if g.small),
        demographic_parity_difference=dpd,
        demographic_parity_ratio=dpr,
        equal_opportunity_difference=tpr_gap,
        equalized_odds_difference=odds_gap,
        worst_groups=(
            ("demographic_parity_difference", sel[0][0] if sel else None),
            ("demographic_parity_ratio", sel[0][0] if sel and dpr is not None else None),
            ("equal_opportunity_difference", tpr[0][0] if tpr else None),
            ("equalized_odds_difference", odds_worst),
        ),
    )


def _extremes(groups: list[GroupFigures], field: str):
    """((segment, lowest value), (segment, highest value)) over the groups where ``field`` is defined, or None
    when fewer than two groups define it (a gap needs two groups)."""
    defined = [(g.segment, getattr(g, field)) for g in groups if getattr(g, field) is not None]
    if len(defined) < 2:
        return None
    return min(defined, key=lambda sv: sv[1]), max(defined, key=lambda sv: sv[1])


def _gap(extremes) -> float | None:
    return None if extremes is None else extremes[1][1] - extremes[0][1]


def _float(value) -> float | None:
    return None if value is None else float(value)
