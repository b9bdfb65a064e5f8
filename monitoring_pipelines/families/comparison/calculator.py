"""Shadow comparison of other model versions against the champion on the same rows, and the evidence across days.

The champion's scores are the ones it served (the prediction log); each *candidate* -- the MLflow ``challenger``
and, while one exists, the ``previous_champion`` (what a rollback would return to) -- scores the same feature
rows offline. Pure computation over DataFrames and loaded models: no Dagster, no registry calls.

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
  counts), in chunks of at most ``_CELLS`` matrix cells, so memory stays bounded at any row count. Its time
  grows as resamples x rows (27 s at 100k labelled rows on 2 cores), so above ``BOOTSTRAP_MAX_ROWS`` (20,000)
  the interval is computed on a seeded subsample of the labelled rows: wider, never falsely narrow. DeLong's
  test and the deltas themselves always use every labelled row.
  Lower is better for log loss and Brier score: a negative delta there is an improvement.
* ``roc_auc_delta``'s variance, z and two-sided p-value from **DeLong's test** (DeLong, DeLong & Clarke-Pearson
  1988) with the fast midrank algorithm of Sun & Xu (2014): O(n log n), exact same variance as the O(n^2)
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

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitoring_pipelines.judge.metrics import Family, MetricValue

CHAMPION_ROLE = "champion"
CHALLENGER_ROLE = "challenger"
PREVIOUS_ROLE = "previous_champion"

DECISION_THRESHOLD = 0.5
METRICS = ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier_score")
LOWER_IS_BETTER = frozenset({"log_loss", "brier_score"})
FAIRNESS_GAPS = ("equal_opportunity_difference", "demographic_parity_difference")
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20260101
BOOTSTRAP_MAX_ROWS = 20_000  # labelled rows the bootstrap resamples at most (a seeded subsample above it)
CONFIDENCE = 0.95
# metrics the promotion rule can use: they need a significance test of the accumulated delta (DeLong)
PROMOTABLE = ("roc_auc",)
_CELLS = 4_000_000  # bootstrap chunk: resamples x rows held in memory at once (32 MB of float64)
_EPS = np.finfo(np.float64).eps  # scikit-learn 1.9's log_loss clip for float64 scores


def segment(role: str, version: str) -> str:
    return f"{role}={version}"


def fairness_segment(role: str, version: str, attribute: str) -> str:
    return f"{role}={version}|{attribute}"


# ----------------------------------------------------------------------------------------------------------
# DeLong


@dataclass(frozen=True)
class DeLong:
    """DeLong's test of two correlated ROC AUCs on the same rows: ``delta`` = ``auc_b`` - ``auc_a``."""

    auc_a: float
    auc_b: float
    variance: float
    z: float
    p_value: float  # two-sided

    @property
    def delta(self) -> float:
        return self.auc_b - self.auc_a


def midrank(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, ties sharing the mean of their ranks (one sort)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    bounds = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1], True])  # start of every run of equal values, and n
    mid = (bounds[:-1] + 1 + bounds[1:]) / 2.0  # mean of the ranks start+1 .. end of each run
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(mid, np.diff(bounds))
    return ranks


def delong(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLong:
    """DeLong's test with Sun & Xu's midranks. ``y`` is 0/1 with both classes present."""
    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong's test needs both classes among the labelled rows")
    aucs, v10, v01 = [], [], []
    for s in (np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)):
        x, yy = s[y], s[~y]
        tx, ty, tz = midrank(x), midrank(yy), midrank(np.concatenate([x, yy]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
        v10.append((tz[:m] - tx) / n)  # per positive: share of negatives it outranks (ties half)
        v01.append(1.0 - (tz[m:] - ty) / m)  # per negative: share of positives that outrank it
    s10 = np.cov(np.vstack(v10)) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack(v01)) if n > 1 else np.zeros((2, 2))
    variance = float((s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n)
    delta = aucs[1] - aucs[0]
    from scipy.stats import norm

    if variance <= 0:  # identical rankings: no evidence either way
        z = 0.0 if delta == 0 else float(np.sign(delta) * np.inf)
    else:
        z = delta / np.sqrt(variance)
    return DeLong(float(aucs[0]), float(aucs[1]), max(variance, 0.0), float(z), float(2 * norm.sf(abs(z))))


# ----------------------------------------------------------------------------------------------------------
# metrics under resampling weights (one row of ``weights`` = one resample's row counts)


def weighted_metrics(weights: np.ndarray, y: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict:
    """Every metric of ``METRICS`` for each row of ``weights`` (shape resamples x rows), as arrays.

    Row b equals scikit-learn's metric with ``sample_weight=weights[b]`` (ROC AUC with ties counted half,
    average precision over the distinct score levels, log loss with scores clipped to [eps, 1 - eps]).
    """
    w = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(predicted).astype(bool)
    total = w.sum(axis=1)
    order = np.argsort(s, kind="mergesort")
    starts = np.flatnonzero(np.r_[True, s[order][1:] != s[order][:-1]])
    ws = w[:, order]
    pos = np.add.reduceat(ws * y[order], starts, axis=1)  # weight of positives per distinct score, ascending
    neg = np.add.reduceat(ws * ~y[order], starts, axis=1)
    P, N = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (np.cumsum(neg, axis=1) - 0.5 * neg)).sum(axis=1) / (P * N)
        tp, fp = np.cumsum(pos[:, ::-1], axis=1), np.cumsum(neg[:, ::-1], axis=1)  # thresholds descending
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        ap = (pos[:, ::-1] * precision).sum(axis=1) / P
        TP, FP, FN = w @ (p & y), w @ (p & ~y), w @ (~p & y)
        f1 = np.divide(2 * TP, 2 * TP + FP + FN, out=np.zeros_like(TP), where=(2 * TP + FP + FN) > 0)
        clipped = np.clip(s, _EPS, 1 - _EPS)
        loss = -(y * np.log(clipped) + ~y * np.log(1 - clipped))
        return {
            "roc_auc": auc,
            "pr_auc": ap,
            "accuracy": (w @ (p == y)) / total,
            "f1": f1,
            "log_loss": (w @ loss) / total,
            "brier_score": (w @ (s - y) ** 2) / total,
        }


def paired_bootstrap(
    y: np.ndarray,
    base: tuple[np.ndarray, np.ndarray],
    other: tuple[np.ndarray, np.ndarray],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed=BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, tuple[float | None, float | None]]:
    """Percentile interval of ``metric(other) - metric(base)`` for every metric, both models evaluated on the
    same resamples. ``base`` / ``other`` are (scores, predicted 0/1). ``seed``: anything numpy's
    ``default_rng`` takes. Resamples without both classes are left out of the AUC intervals."""
    n = len(y)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CELLS // max(n, 1)))
    deltas: dict[str, list[np.ndarray]] = {k: [] for k in METRICS}
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size)
        a, b = weighted_metrics(counts, y, *base), weighted_metrics(counts, y, *other)
        for k in METRICS:
            deltas[k].append(b[k] - a[k])
        done += size
    tail = (1 - confidence) / 2 * 100
    out = {}
    for k in METRICS:
        d = np.concatenate(deltas[k])
        d = d[np.isfinite(d)]
        out[k] = (float(np.percentile(d, tail)), float(np.percentile(d, 100 - tail))) if d.size else (None, None)
    return out


# ----------------------------------------------------------------------------------------------------------
# one day


@dataclass(frozen=True)
class ScoreDrift:
    """Drift of one model's scores on the day against the scores in its own reference data."""

    role: str
    version: str
    method: str | None
    score: float | None
    threshold: float | None
    drifted: bool | None
    reason: str | None = None  # why it could not be computed

    def values(self) -> list[MetricValue]:
        seg = segment(self.role, self.version)
        return [
            MetricValue(Family.COMPARISON, "score_drift", self.score, seg),
            MetricValue(Family.COMPARISON, "score_drifted", None if self.drifted is None else float(self.drifted), seg),
        ]


def score_drift(role: str, version: str, scores: np.ndarray, reference_scores: np.ndarray | None) -> ScoreDrift:
    """Evidently's default drift test (``drift_stats``) of ``scores`` against ``reference_scores``."""
    from monitoring_pipelines.families.drift import stats as drift_stats

    if reference_scores is None:
        return ScoreDrift(role, version, None, None, None, None, "no reference scores for this version")
    ref = pd.Series(reference_scores, dtype="float64").dropna()
    cur = pd.Series(scores, dtype="float64").dropna()
    if ref.empty or cur.empty:
        return ScoreDrift(role, version, None, None, None, None, "no scores" if cur.empty else "empty reference")
    stats = drift_stats.fit_reference(pd.DataFrame({"score": ref}), ["score"], [])["score"]
    d = drift_stats.column_drift(stats, cur)
    return ScoreDrift(role, version, d.method, d.score, d.threshold, d.drifted)


@dataclass(frozen=True)
class CandidateComparison:
    """One candidate (challenger or previous champion) against the champion on the day's rows."""

    role: str
    version: str
    compared_rows: int
    prediction_agreement: float | None
    score_correlation: float | None
    labelled_rows: int = 0
    champion: dict = field(default_factory=dict)  # metric -> champion's value on the labelled rows
    candidate: dict = field(default_factory=dict)  # metric -> candidate's value
    intervals: dict = field(default_factory=dict)  # metric -> (low, high) of the delta
    delong: DeLong | None = None
    fairness_delta: dict = field(default_factory=dict)  # (attribute, gap metric) -> candidate - champion
    score_drift: ScoreDrift | None = None

    @property
    def segment(self) -> str:
        return segment(self.role, self.version)

    def delta(self, metric: str) -> float | None:
        a, b = self.champion.get(metric), self.candidate.get(metric)
        return None if a is None or b is None else b - a

    def values(self) -> list[MetricValue]:
        f, seg = Family.COMPARISON, self.segment
        out = [
            MetricValue(f, "prediction_agreement", self.prediction_agreement, seg),
            MetricValue(f, "score_correlation", self.score_correlation, seg),
            MetricValue(f, "labelled_rows", float(self.labelled_rows), seg),
        ]
        for k in METRICS:
            low, high = self.intervals.get(k, (None, None))
            out += [
                MetricValue(f, k, self.candidate.get(k), seg),
                MetricValue(f, f"{k}_delta", self.delta(k), seg),
                MetricValue(f, f"{k}_delta_ci_low", low, seg),
                MetricValue(f, f"{k}_delta_ci_high", high, seg),
            ]
        d = self.delong
        out += [
            MetricValue(f, "roc_auc_delta_variance", d.variance if d else None, seg),
            MetricValue(f, "roc_auc_delta_z", d.z if d and np.isfinite(d.z) else None, seg),
            MetricValue(f, "roc_auc_delta_p_value", d.p_value if d else None, seg),
        ]
        for (attribute, gap), value in self.fairness_delta.items():
            out.append(MetricValue(f, f"{gap}_delta", value, fairness_segment(self.role, self.version, attribute)))
        if self.score_drift is not None:
            out += self.score_drift.values()
        return out


@dataclass(frozen=True)
class ComparisonResult:
    model: str
    day: dt.date
    champion_version: str
    compared_rows: int
    served_versions: dict  # version -> served rows (from the log's model_version column)
    champion_score_drift: ScoreDrift | None
    candidates: tuple[CandidateComparison, ...] = ()
    evidence: Evidence | None = None
    champion_alias: str = CHAMPION_ROLE  # 'served' when the version that served the day is no longer champion

    def candidate(self, role: str) -> CandidateComparison | None:
        return next((c for c in self.candidates if c.role == role), None)

    @property
    def challenger_version(self) -> str | None:
        c = self.candidate(CHALLENGER_ROLE)
        return c.version if c else None

    def values_by_model(self) -> dict[tuple[str, str], list[MetricValue]]:
        """(version, alias) -> the values computed for that model version (how they are stored)."""
        f = Family.COMPARISON
        champ = [
            MetricValue(f, "challenger_present", float(self.challenger_version is not None)),
            MetricValue(f, "compared_rows", float(self.compared_rows)),
        ]
        champ += [
            MetricValue(f, "served_rows", float(rows), f"version={v}") for v, rows in self.served_versions.items()
        ]
        if self.champion_score_drift is not None:
            champ += self.champion_score_drift.values()
        out = {(self.champion_version, self.champion_alias): champ}
        for c in self.candidates:
            values = c.values()
            if c.role == CHALLENGER_ROLE and self.evidence is not None:
                values += self.evidence.values()
            out.setdefault((c.version, c.role), []).extend(values)
        return out

    def headline(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {"compared_rows": float(self.compared_rows)}
        for c in self.candidates:
            p = c.role
            out |= {
                f"{p}.prediction_agreement": c.prediction_agreement,
                f"{p}.labelled_rows": float(c.labelled_rows),
                f"{p}.roc_auc_delta": c.delta("roc_auc"),
                f"{p}.roc_auc_delta_ci_low": c.intervals.get("roc_auc", (None, None))[0],
                f"{p}.roc_auc_delta_ci_high": c.intervals.get("roc_auc", (None, None))[1],
                f"{p}.delong_p_value": c.delong.p_value if c.delong else None,
            }
        if self.evidence is not None:
            out |= self.evidence.headline()
        return out


def _positive_scores(model, frame: pd.DataFrame, inputs: list[str], positive_class: int) -> np.ndarray:
    classes = list(model.classes_)
    if positive_class not in classes:
        raise ValueError(f"the model's classes {classes} do not include the positive class {positive_class}")
    return model.predict_proba(frame[inputs])[:, classes.index(positive_class)].astype(np.float64)


def _figures(y: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict:
    one = weighted_metrics(np.ones((1, len(y))), y, scores, predicted)
    return {k: (float(v[0]) if np.isfinite(v[0]) else None) for k, v in one.items()}


def _gaps(plan, frame: pd.DataFrame, predicted_col: str, label_col: str) -> dict:
    from monitoring_pipelines.families.fairness import calculator as fairness

    attrs = [a for a in plan.protected_attributes if a in frame.columns]
    if not attrs or frame.empty:
        return {}
    result = fairness.compute(
        frame,
        label_col=label_col,
        prediction_col=predicted_col,
        protected_attributes=attrs,
        min_group_size=plan.fairness.min_group_size,
        min_rate_support=plan.fairness.min_rate_support,
        positive_class=1,
    )
    return {(a, g): getattr(result.disparity(a), g) for a in attrs for g in FAIRNESS_GAPS}


def compare_candidate(
    plan,
    day: dt.date,
    served: pd.DataFrame,
    labelled: pd.DataFrame,
    *,
    role: str,
    version: str,
    model,
    reference_scores: np.ndarray | None,
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
    drift = score_drift(role, version, cand, reference_scores)
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
    gaps_champ = _gaps(plan, frame, "__champ_pred", "__y")
    gaps_cand = _gaps(plan, frame, "__cand_pred", "__y")
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


def served_versions(plan, batch: pd.DataFrame) -> dict[str, int]:
    """Rows per served model version (the log's ``model_version`` column); {} when the plan maps none."""
    col = plan.data.predictions.model_version
    if not col or col not in batch.columns:
        return {}
    return {str(v): int(n) for v, n in batch[col].astype(str).value_counts().sort_index().items()}


def served_by(rows: pd.DataFrame) -> dict[dt.date, str]:
    """Day -> the version that served most of the day's rows, from stored ``served_rows`` rows."""
    hit = rows[(rows["family"] == Family.COMPARISON.value) & (rows["metric"] == "served_rows")]
    out = {}
    for day, group in hit.groupby("partition_date"):
        top = group.sort_values(["value", "segment"], ascending=[False, True]).iloc[0]
        out[day] = str(top["segment"]).removeprefix("version=")
    return out


# ----------------------------------------------------------------------------------------------------------
# evidence across days


@dataclass(frozen=True)
class DayEvidence:
    day: dt.date
    rows: int
    delta: float
    z: float


@dataclass(frozen=True)
class Evidence:
    """What the stored daily comparisons of one candidate version say, pooled over its evidence days."""

    role: str
    version: str
    since: dt.date | None  # first day that may count (None: every compared day)
    days: tuple[DayEvidence, ...]
    skipped: dict  # day -> why it does not count
    fairness_regression: dict  # "attribute.gap" -> pooled candidate - champion (positive = wider gap)

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.days)

    @property
    def better_days(self) -> int:
        return sum(1 for d in self.days if d.delta > 0)

    @property
    def last_day(self) -> dt.date | None:
        return self.days[-1].day if self.days else None

    @property
    def delta(self) -> float | None:
        return sum(d.rows * d.delta for d in self.days) / self.rows if self.days else None

    @property
    def z(self) -> float | None:
        if not self.days:
            return None
        return float(sum(np.sqrt(d.rows) * d.z for d in self.days) / np.sqrt(self.rows))

    @property
    def p_value(self) -> float | None:
        """One-sided: the probability of a combined Z this high if the candidate were not better."""
        from scipy.stats import norm

        return None if self.z is None else float(norm.sf(self.z))

    @property
    def worst_fairness_regression(self) -> float | None:
        values = [v for v in self.fairness_regression.values() if v is not None]
        return max(values) if values else None

    def refusals(self, rule) -> list[str]:
        """Why the plan's promotion rule (``actions.promote``) does not hold; [] when it does."""
        out = []
        if len(self.days) < rule.min_days:
            out.append(f"{len(self.days)} labelled day(s) of evidence, the plan needs {rule.min_days}")
        if self.delta is not None and self.delta < rule.min_uplift:
            out.append(f"pooled {rule.metric} delta {self.delta:+.4f} is below min_uplift {rule.min_uplift}")
        if self.p_value is not None and self.p_value >= rule.significance:
            out.append(f"not significant: one-sided p = {self.p_value:.3g} >= {rule.significance}")
        worst = self.worst_fairness_regression
        if worst is not None and worst > rule.max_fairness_regression:
            which = max(
                (k for k, v in self.fairness_regression.items() if v is not None),
                key=lambda k: self.fairness_regression[k],
            )
            out.append(
                f"fairness regression {which} +{worst:.3f} exceeds max_fairness_regression "
                f"{rule.max_fairness_regression}"
            )
        return out

    def describe(self) -> str:
        if not self.days:
            return f"{self.role} v{self.version}: no labelled day of evidence yet"
        return (
            f"{self.role} v{self.version}: better on {self.better_days} of {len(self.days)} labelled days "
            f"({self.days[0].day}..{self.last_day}, {self.rows} rows), pooled roc_auc delta {self.delta:+.4f}, "
            f"Stouffer z {self.z:.2f}, one-sided p {self.p_value:.3g}"
        )

    def values(self) -> list[MetricValue]:
        f, seg = Family.COMPARISON, segment(self.role, self.version)
        return [
            MetricValue(f, "evidence_days", float(len(self.days)), seg),
            MetricValue(f, "evidence_rows", float(self.rows), seg),
            MetricValue(f, "evidence_better_days", float(self.better_days), seg),
            MetricValue(f, "evidence_roc_auc_delta", self.delta, seg),
            MetricValue(f, "evidence_z", self.z, seg),
            MetricValue(f, "evidence_p_value", self.p_value, seg),
            MetricValue(f, "evidence_fairness_regression", self.worst_fairness_regression, seg),
        ]

    def headline(self) -> dict[str, float | str | None]:
        return {
            "evidence_days": float(len(self.days)),
            "evidence_rows": float(self.rows),
            "evidence_better_days": float(self.better_days),
            "evidence_roc_auc_delta": self.delta,
            "evidence_p_value": self.p_value,
            "evidence_fairness_regression": self.worst_fairness_regression,
            "evidence": self.describe(),
        }


def accumulate(
    rows: pd.DataFrame,
    *,
    role: str,
    version: str,
    since: dt.date | None,
    min_coverage: float,
    blocked: set[dt.date] = frozenset(),
    days: set[dt.date] | None = None,
) -> Evidence:
    """Pool the stored daily comparisons (``rows``: metric rows of the comparison family, any days) of one
    candidate version. ``since``: first day that may count; ``blocked``: days whose blocking quality checks
    failed; ``days``: if given, only these days may count (e.g. a rollback window)."""
    seg = segment(role, version)
    comp = rows[rows["family"] == Family.COMPARISON.value]

    def series(metric: str, seg_: str = seg) -> dict:
        hit = comp[(comp["metric"] == metric) & (comp["segment"] == seg_)]
        return {d: (None if pd.isna(v) else float(v)) for d, v in zip(hit["partition_date"], hit["value"])}

    delta, z, labelled, compared = (
        series("roc_auc_delta"),
        series("roc_auc_delta_z"),
        series("labelled_rows"),
        series("compared_rows", ""),
    )
    counted, skipped = [], {}
    for day in sorted(delta):
        if since is not None and day < since:
            continue
        if days is not None and day not in days:
            continue
        if day in blocked:
            skipped[day.isoformat()] = "blocking quality checks failed"
        elif delta[day] is None or z.get(day) is None:
            skipped[day.isoformat()] = "no labelled comparison"
        elif not compared.get(day) or (labelled.get(day) or 0) / compared[day] < min_coverage:
            skipped[day.isoformat()] = f"label coverage below {min_coverage}"
        else:
            counted.append(DayEvidence(day, int(labelled[day]), delta[day], z[day]))
    kept = {d.day: d.rows for d in counted}
    regression = {}
    prefix = seg + "|"
    gaps = comp[comp["segment"].str.startswith(prefix) & comp["metric"].isin([f"{g}_delta" for g in FAIRNESS_GAPS])]
    for (seg_, metric), group in gaps.groupby(["segment", "metric"]):
        pairs = [(kept[d], v) for d, v in zip(group["partition_date"], group["value"]) if d in kept and pd.notna(v)]
        name = f"{seg_.removeprefix(prefix)}.{metric.removesuffix('_delta')}"
        regression[name] = sum(n * v for n, v in pairs) / sum(n for n, _ in pairs) if pairs else None
    return Evidence(role, version, since, tuple(counted), skipped, regression)


def stored_evidence(
    store,
    plan,
    ref,
    *,
    role: str = CHALLENGER_ROLE,
    through: dt.date | None = None,
    current: pd.DataFrame | None = None,
) -> Evidence:
    """``accumulate`` over the metric store's comparison rows of ``ref`` (a registry ``ModelVersionRef``) from
    its ``evidence_since`` day up to ``through``; ``current``: rows of a day being computed, which replace
    that day's stored rows. Days whose stored blocking quality checks failed do not count."""
    since = ref.evidence_since
    rows = store.rows(plan.name, family=Family.COMPARISON.value, start=since, end=through)
    if current is not None and len(current):
        rows = pd.concat(
            [rows[~rows["partition_date"].isin(set(current["partition_date"]))], current], ignore_index=True
        )
    quality = store.rows(
        plan.name, family=Family.QUALITY.value, metric="blocking_failed_checks", start=since, end=through
    )
    blocked = {d for d, v in zip(quality["partition_date"], quality["value"]) if pd.notna(v) and v > 0}
    min_coverage = plan.data.labels.min_coverage if plan.data.labels else 1.0
    return accumulate(rows, role=role, version=ref.version, since=since, min_coverage=min_coverage, blocked=blocked)
