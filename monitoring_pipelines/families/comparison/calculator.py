"""Shadow comparison of other model versions against the champion on the same rows, and the evidence across days.

The champion's scores are the ones it served (the prediction log); each *candidate* -- the MLflow ``challenger``
and, while one exists, the ``previous_champion`` (what a rollback would return to) -- scores the same feature
rows offline. Pure computation over DataFrames and loaded models: no Dagster, no registry calls.

Modules: ``names`` (metric names, roles, segments), ``stats`` (DeLong, the paired bootstrap), ``result``
(``CandidateComparison``, ``ComparisonResult``, ``Evidence``), ``evidence`` (pooling stored days), and this one:
``ComparisonCalculator`` (the calculator protocol of ``families/base.py``) and ``compare_candidate``. Every
public name of those modules is importable from here too.

Figures of one day, per candidate (segment ``<role>=<version>``, e.g. ``challenger=4``)
-----------------------------------------------------------------------------------
* On every served row (status ok, with a score): ``prediction_agreement`` (same predicted class; a candidate
  predicts the positive class at score >= ``DECISION_THRESHOLD``) and ``score_correlation`` (Pearson).
* On the labelled rows (the same label join as performance, ``performance.join_labels``): the candidate's own
  ``roc_auc``, ``pr_auc`` (average precision), ``accuracy``, ``f1``, ``log_loss``, ``brier_score``, and for each
  the delta ``<metric>_delta`` = candidate - champion with a 95 % confidence interval
  (``<metric>_delta_ci_low`` / ``_ci_high``) from a **paired bootstrap**: ``BOOTSTRAP_RESAMPLES`` (1,000)
  resamples of the labelled rows with replacement, the *same* resample for both models (so the interval
  reflects the difference, not two independent noises), seeded by (``BOOTSTRAP_SEED``, day), percentile
  interval. It is vectorized: a resample is a vector of row counts, every metric is computed for all
  resamples at once from the count matrix (ROC AUC and average precision from per-score-level sums of the
  counts; equal to scikit-learn with ``sample_weight``, ~40x faster than calling it per resample), in chunks
  of at most ``BOOTSTRAP_CHUNK_CELLS`` matrix cells, so memory stays bounded at any row count. Its time
  grows as resamples x rows (27 s at 100k labelled rows on 2 cores), so above ``BOOTSTRAP_MAX_ROWS`` (20,000)
  the interval is computed on a seeded subsample of the labelled rows: wider, never falsely narrow. DeLong's
  test and the deltas themselves always use every labelled row.
  Lower is better for log loss and Brier score: a negative delta there is an improvement.
* ``roc_auc_delta``'s variance, z and two-sided p-value from **DeLong's test** (DeLong, DeLong & Clarke-Pearson
  1988) with the fast midrank algorithm of Sun & Xu (2014; midranks by ``scipy.stats.rankdata``): O(n log n), exact same variance as the O(n^2)
  structural components.
* Fairness: for each protected attribute, candidate - champion of ``equal_opportunity_difference`` and
  ``demographic_parity_difference`` (``fairness.compute`` with the plan's group-size rules, on the labelled
  rows; the champion with its served predictions), segment ``<role>=<version>|<attribute>``. Positive = the
  candidate's gap is wider.
* Prediction drift of every model against *its own* reference (``drift_stats``, Evidently's default test on
  the score column): ``score_drift`` / ``score_drifted`` with segment ``champion=<v>`` or ``challenger=<v>``.

Rows carry the version and alias they were computed for: candidate rows are stored with the candidate's
version and alias, champion rows with the champion's (``ComparisonResult.values_by_model``).
``served_rows`` (segment ``version=<v>``) records which versions actually served the day's rows, so that
decisions attribute a day to the version that served it, not to whatever was champion when the job ran.

Evidence across days (``accumulate``)
-------------------------------------
The challenger's evidence is every *labelled day* since it became challenger: days after the last day of its
training data (registry tag ``monitoring.trigger_day``) or after the day it was last rolled back
(``monitoring.evidence_after``) -- compared days inside its training window would flatter it. A day counts
when its DeLong test exists and at least ``min_coverage`` of its served rows are labelled, and when its
stored blocking quality checks did not fail. The daily tests are combined with **Stouffer's weighted Z**:
``Z = sum(sqrt(n_d) * z_d) / sqrt(sum(n_d))`` over days ``d`` with ``n_d`` labelled rows, one-sided p-value
``P(N(0,1) >= Z)`` for "the challenger's ROC AUC is higher". Days hold disjoint rows, so their z are
independent under the null; combining the day-level tests keeps each day's AUC within one day's base rate
(a pooled AUC over days would also rank rows of one day against another's). The pooled delta is the
row-weighted mean of the daily deltas; fairness regressions are pooled the same way. ``Evidence.refusals``
checks them against the plan's promotion rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring_pipelines.families.comparison.evidence import accumulate, stored_evidence
from monitoring_pipelines.families.comparison.names import (
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    FAIRNESS_GAPS,
    FAMILY,
    LOWER_IS_BETTER,
    METRICS,
    PREVIOUS_ROLE,
    PROMOTABLE,
    Metric,
    fairness_segment,
    segment,
)
from monitoring_pipelines.families.comparison.result import (
    CandidateComparison,
    ComparisonResult,
    DayEvidence,
    Evidence,
    ScoreDrift,
)
from monitoring_pipelines.families.comparison.stats import (
    BOOTSTRAP_CHUNK_CELLS,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    DeLong,
    delong,
    midrank,
    paired_bootstrap,
    weighted_metrics,
)
from monitoring_pipelines.plan.schema import MonitoringPlan

__all__ = [
    "BOOTSTRAP_CHUNK_CELLS",
    "BOOTSTRAP_MAX_ROWS",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CHALLENGER_ROLE",
    "CHAMPION_ROLE",
    "CONFIDENCE",
    "DECISION_THRESHOLD",
    "FAIRNESS_GAPS",
    "LOWER_IS_BETTER",
    "METRICS",
    "PREVIOUS_ROLE",
    "PROMOTABLE",
    "CandidateComparison",
    "ComparisonCalculator",
    "ComparisonResult",
    "DayEvidence",
    "DeLong",
    "Evidence",
    "Peers",
    "ScoreDrift",
    "accumulate",
    "compare_candidate",
    "delong",
    "fairness_segment",
    "midrank",
    "paired_bootstrap",
    "score_drift",
    "segment",
    "served_by",
    "served_versions",
    "stored_evidence",
    "weighted_metrics",
]

DECISION_THRESHOLD = 0.5  # a candidate predicts the positive class at score >= this
BOOTSTRAP_MAX_ROWS = 20_000  # labelled rows the bootstrap resamples at most (a seeded subsample above it)


@dataclass(frozen=True)
class Peers:
    """What the comparison reuses from its sibling families, handed in by the caller (``defs``) because families
    never import each other: the drift family's test of one numeric column (for score drift) and the fairness
    family's gaps (for the candidate's fairness regression)."""

    # (reference values, current values) -> an object with .method .score .threshold .drifted
    score_test: Callable[[pd.Series, pd.Series], Any]
    # (labelled rows, 0/1 prediction column, 0/1 label column) -> {(attribute, gap metric): gap}
    fairness_gaps: Callable[[pd.DataFrame, str, str], dict[tuple[str, str], float | None]]


def score_drift(
    role: str, version: str, scores: np.ndarray, reference_scores: np.ndarray | None, score_test: Callable
) -> ScoreDrift:
    """The drift family's default test (``score_test``) of ``scores`` against ``reference_scores``."""
    if reference_scores is None:
        return ScoreDrift(role, version, None, None, None, None, "no reference scores for this version")
    ref = pd.Series(reference_scores, dtype="float64").dropna()
    cur = pd.Series(scores, dtype="float64").dropna()
    if ref.empty or cur.empty:
        return ScoreDrift(role, version, None, None, None, None, "no scores" if cur.empty else "empty reference")
    d = score_test(ref, cur)
    return ScoreDrift(role, version, d.method, d.score, d.threshold, d.drifted)


def _positive_scores(model, frame: pd.DataFrame, inputs: list[str], positive_class: int) -> np.ndarray:
    classes = list(model.classes_)
    if positive_class not in classes:
        raise ValueError(f"the model's classes {classes} do not include the positive class {positive_class}")
    return model.predict_proba(frame[inputs])[:, classes.index(positive_class)].astype(np.float64)


def _figures(y: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict:
    one = weighted_metrics(np.ones((1, len(y))), y, scores, predicted)
    return {k: (float(v[0]) if np.isfinite(v[0]) else None) for k, v in one.items()}


def _gaps(peers: Peers, frame: pd.DataFrame, predicted_col: str, label_col: str) -> dict:
    found = peers.fairness_gaps(frame, predicted_col, label_col)
    return {k: v for k, v in found.items() if k[1] in FAIRNESS_GAPS}


def compare_candidate(
    plan: MonitoringPlan,
    day: dt.date,
    served: pd.DataFrame,
    labelled: pd.DataFrame,
    *,
    role: str,
    version: str,
    model,
    reference_scores: np.ndarray | None,
    peers: Peers,
    label_col: str = "__label",
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> CandidateComparison:
    """``model`` (the candidate) against the champion's served scores on ``served`` rows (status ok, with a
    score) and ``labelled`` (those rows joined with their labels, the label in ``label_col``)."""
    p, pos = plan.data.predictions, plan.model.positive_class
    inputs = plan.features.model_inputs
    if served.empty:
        return CandidateComparison(role, version, 0, None, None)
    cand = _positive_scores(model, served, inputs, pos)
    champ = served[p.score].to_numpy(dtype=np.float64)
    champ_pred = (served[p.prediction] == pos).to_numpy(dtype=bool, na_value=False)
    agreement = float(np.mean((cand >= DECISION_THRESHOLD) == champ_pred))
    corr = float(np.corrcoef(champ, cand)[0, 1]) if len(served) > 1 and champ.std() > 0 and cand.std() > 0 else None
    drift = score_drift(role, version, cand, reference_scores, peers.score_test)
    base = dict(
        role=role,
        version=version,
        compared_rows=len(served),
        prediction_agreement=agreement,
        score_correlation=corr,
        score_drift=drift,
    )
    if labelled.empty:
        return CandidateComparison(**base)
    y = (labelled[label_col] == pos).to_numpy(dtype=bool, na_value=False)
    l_champ = labelled[p.score].to_numpy(dtype=np.float64)
    l_champ_pred = (labelled[p.prediction] == pos).to_numpy(dtype=bool, na_value=False)
    l_cand = _positive_scores(model, labelled, inputs, pos)
    l_cand_pred = l_cand >= DECISION_THRESHOLD
    champion, candidate = _figures(y, l_champ, l_champ_pred), _figures(y, l_cand, l_cand_pred)
    both = 0 < y.sum() < len(y)
    test = delong(y, l_champ, l_cand) if both else None
    intervals = {}
    if both:
        # the interval's cost is resamples x rows (27 s at 100k labelled rows): above BOOTSTRAP_MAX_ROWS it is
        # computed on a seeded subsample of the labelled rows, so it is wider (conservative), never narrower
        rows = np.arange(len(y))
        if len(y) > BOOTSTRAP_MAX_ROWS:
            rows = np.sort(
                np.random.default_rng([BOOTSTRAP_SEED, day.toordinal(), 1]).choice(
                    len(y), BOOTSTRAP_MAX_ROWS, replace=False
                )
            )
        if 0 < y[rows].sum() < len(rows):
            intervals = paired_bootstrap(
                y[rows],
                (l_champ[rows], l_champ_pred[rows]),
                (l_cand[rows], l_cand_pred[rows]),
                resamples=resamples,
                seed=[BOOTSTRAP_SEED, day.toordinal()],
            )
    frame = labelled.assign(
        __champ_pred=l_champ_pred.astype(int), __cand_pred=l_cand_pred.astype(int), __y=y.astype(int)
    )
    gaps_champ = _gaps(peers, frame, "__champ_pred", "__y")
    gaps_cand = _gaps(peers, frame, "__cand_pred", "__y")
    fairness_delta = {
        k: (None if gaps_cand.get(k) is None or gaps_champ.get(k) is None else gaps_cand[k] - gaps_champ[k])
        for k in gaps_champ
    }
    return CandidateComparison(
        **base,
        labelled_rows=len(labelled),
        champion=champion,
        candidate=candidate,
        intervals=intervals,
        delong=test,
        fairness_delta=fairness_delta,
    )


def served_versions(plan: MonitoringPlan, batch: pd.DataFrame) -> dict[str, int]:
    """Rows per served model version (the log's ``model_version`` column); {} when the plan maps none."""
    col = plan.data.predictions.model_version
    if not col or col not in batch.columns:
        return {}
    return {str(v): int(n) for v, n in batch[col].astype(str).value_counts().sort_index().items()}


def served_by(rows: pd.DataFrame) -> dict[dt.date, str]:
    """Day -> the version that served most of the day's rows, from stored ``served_rows`` rows."""
    hit = rows[(rows["family"] == FAMILY.value) & (rows["metric"] == Metric.SERVED_ROWS.value)]
    out = {}
    for day, group in hit.groupby("partition_date"):
        top = group.sort_values(["value", "segment"], ascending=[False, True]).iloc[0]
        out[day] = str(top["segment"]).removeprefix("version=")
    return out


@dataclass(frozen=True)
class ComparisonCalculator:
    """One candidate model version against the champion (the calculator protocol of ``families/base.py``):
    ``fit`` takes the candidate's scores on its own reference (for its score drift), once per candidate
    version; ``calculate`` compares it on one day's served and labelled rows."""

    plan: MonitoringPlan
    role: str
    version: str
    model: Any  # anything with ``classes_`` and ``predict_proba`` (the registry's loaded model)
    peers: Peers
    reference_scores: np.ndarray | None = None
    resamples: int = BOOTSTRAP_RESAMPLES

    def fit(self, reference: pd.DataFrame | None) -> ComparisonCalculator:
        """The reference's score column (the scores this version gave its own reference rows); a reference
        without one (or none at all) leaves the score drift out, with its reason."""
        score = self.plan.data.predictions.score
        scores = None if reference is None or score not in reference.columns else reference[score]
        return dataclasses.replace(self, reference_scores=None if scores is None else scores.to_numpy(dtype=float))

    def calculate(
        self, day: dt.date, served: pd.DataFrame, labelled: pd.DataFrame, *, label_col: str = "__label"
    ) -> CandidateComparison:
        """``compare_candidate`` on ``day``'s served rows and those of them with a label (in ``label_col``)."""
        return compare_candidate(
            self.plan,
            day,
            served,
            labelled,
            role=self.role,
            version=self.version,
            model=self.model,
            reference_scores=self.reference_scores,
            peers=self.peers,
            label_col=label_col,
            resamples=self.resamples,
        )
