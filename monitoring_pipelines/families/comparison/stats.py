"""The comparison's statistics on one day's labelled rows: DeLong's test of two correlated ROC AUCs and the
paired bootstrap of every metric's delta (calculator module doc for the method and its choices).

``weighted_metrics`` computes the metrics for many resamples at once from the count matrix; row b equals
scikit-learn's metric with ``sample_weight=weights[b]`` (the tests check it replicate by replicate). Calling
scikit-learn once per replicate gives the same figures to 1e-12 but is about 40x slower at the demo's day size
(``benchmarks/comparison_bootstrap.py``): 1,000 resamples x 2 models x 6 metrics are 12,000 calls whose input
validation dominates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

from monitoring_pipelines.families.comparison.names import METRICS

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20260101
CONFIDENCE = 0.95
BOOTSTRAP_CHUNK_CELLS = 4_000_000  # resamples x rows held in memory at once (32 MB of float64)
_EPS = np.finfo(np.float64).eps  # scikit-learn 1.9's log_loss clip for float64 scores


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
    """1-based ranks of ``x``, ties sharing the mean of their ranks (Sun & Xu's midranks)."""
    return rankdata(np.asarray(x, dtype=np.float64), method="average")


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
    if variance <= 0:  # identical rankings: no evidence either way
        z = 0.0 if delta == 0 else float(np.sign(delta) * np.inf)
    else:
        z = delta / np.sqrt(variance)
    return DeLong(float(aucs[0]), float(aucs[1]), max(variance, 0.0), float(z), float(2 * norm.sf(abs(z))))


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
    chunk = max(1, min(resamples, BOOTSTRAP_CHUNK_CELLS // max(n, 1)))
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
