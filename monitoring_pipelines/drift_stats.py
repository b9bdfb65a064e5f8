"""Evidently 0.7's default per-column drift test, recomputed with numpy/scipy on all rows.

Same statistic, threshold and decision as Evidently 0.7.23 with no method or threshold set
(``ValueDrift`` / ``DataDriftPreset`` -> ``legacy.calculations.data_drift.get_one_column_drift``), read from
``evidently/legacy/calculations/stattests/``:

* Cleaning (``get_one_column_drift``): ``±inf`` become null and nulls are dropped from both samples; an
  empty column is an error. "Reference rows" below means the reference's *non-null* values of that column.
* Selection (``registry._get_default_stattest``): ``n_values`` = distinct non-null values of reference and
  current *together* (``pd.concat([ref, cur]).nunique()``).

  ============================  ==========================================  ========================
  reference rows                numerical                                   categorical
  ============================  ==========================================  ========================
  > 1000                        ``wasserstein`` (n_values > 5), else        ``jensenshannon``
                                ``jensenshannon``
  <= 1000                       ``ks`` (n_values > 5), ``chisquare``         ``chisquare``
                                (3-5), ``z`` (<= 2)                         (n_values > 2), else ``z``
  ============================  ==========================================  ========================

* Statistics and decisions:

  - ``wasserstein`` (``wasserstein_distance_norm.py``): ``scipy.stats.wasserstein_distance(ref, cur) /
    max(np.std(ref), 0.001)`` (population std, ddof=0); threshold 0.1; drifted if ``score >= threshold``.
  - ``jensenshannon`` (``jensenshannon.py`` + ``utils.get_binned_data(..., feel_zeroes=False)``): for these
    columns always the category path (reference has <= 5 distinct values, under the 20 needed for the
    numeric histogram path): the share of each value over the union of both samples' values (absent = 0),
    ``scipy.spatial.distance.jensenshannon(p, q)`` with the natural log; 0.1; ``>=``.
  - ``ks`` (``ks_stattest.py``): ``scipy.stats.ks_2samp(ref, cur).pvalue``; 0.05; drifted if ``p <= 0.05``.
  - ``chisquare`` (``chisquare_stattest.py``): ``scipy.stats.chisquare(cur_counts, ref_counts * n_cur /
    n_ref)`` over the union of values; 0.05; drifted if ``p < 0.05``.
  - ``z`` (``z_stattest.py``): two-proportion z-test on "value != smallest value", p = ``2 * (1 -
    norm.cdf(|z|))``, 1 when both samples hold the same single value; 0.05; drifted if ``p < 0.05``.

``fit_reference`` reduces the reference once (sorted values and std for numerical columns, value counts for
categorical ones and for numerical ones with <= 5 distinct values); ``column_drift`` / ``drift_all`` then
only scan the current rows. The sorted reference values are kept because the exact Wasserstein distance
needs the reference's empirical CDF at every current value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, ks_2samp, norm

Kind = Literal["numerical", "categorical"]

# registry._get_default_stattest: at most this many reference rows -> p-value tests, more -> distances
SMALL_REFERENCE_ROWS = 1000
# ... and a numerical column with at most this many distinct values is treated as discrete
MAX_DISCRETE_VALUES = 5
# wasserstein_distance_norm.py: the std used as norm is floored, so a constant reference does not divide by 0
MIN_NORM = 0.001

DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "jensenshannon": 0.1, "ks": 0.05, "chisquare": 0.05, "z": 0.05}


@dataclass(frozen=True)
class ReferenceColumnStats:
    """What the drift test needs from one reference column, computed once per model version.

    ``rows`` counts the non-null, finite values (Evidently's branch depends on it). Numerical columns keep
    their ``sorted_values`` and ``std``; ``counts`` (value -> count) is set for categorical columns and for
    numerical ones with at most 5 distinct values, the only ones that can be tested on counts.
    """

    column: str
    kind: Kind
    rows: int
    n_unique: int
    sorted_values: np.ndarray | None = None
    std: float | None = None
    counts: dict | None = None


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: ``score`` is a distance (wasserstein, jensenshannon) or a p-value (ks, chisquare, z)."""

    column: str
    method: str
    threshold: float
    score: float
    drifted: bool


def fit_reference(df: pd.DataFrame, numerical: list[str], categorical: list[str]) -> dict[str, ReferenceColumnStats]:
    """Reduce the reference rows to per-column statistics (columns in the order given, numerical first)."""
    missing = [c for c in [*numerical, *categorical] if c not in df.columns]
    if missing:
        raise ValueError(f"reference has no column(s) {missing}")
    out = {c: _fit_numerical(c, df[c]) for c in numerical}
    out.update({c: _fit_categorical(c, df[c]) for c in categorical})
    return out


def _fit_numerical(column: str, values: pd.Series) -> ReferenceColumnStats:
    finite = _finite(column, values, "reference")
    std = float(np.std(finite))  # before sorting: the same summation order as Evidently's np.std(series)
    finite.sort()
    n_unique = int(np.count_nonzero(np.diff(finite))) + 1
    counts = _counts(pd.Series(finite)) if n_unique <= MAX_DISCRETE_VALUES else None
    return ReferenceColumnStats(column, "numerical", finite.size, n_unique, sorted_values=finite, std=std,
                                counts=counts)


def _fit_categorical(column: str, values: pd.Series) -> ReferenceColumnStats:
    counts = _counts(values)
    rows = sum(counts.values())
    if rows == 0:
        raise ValueError(f"column {column!r}: no non-null values in the reference")
    return ReferenceColumnStats(column, "categorical", rows, len(counts), counts=counts)


def drift_all(stats_by_col: dict[str, ReferenceColumnStats], current_df: pd.DataFrame,
              thresholds: dict[str, float] | None = None) -> dict[str, ColumnDrift]:
    """``column_drift`` for every fitted column; ``thresholds`` overrides the default per column (as
    Evidently's ``per_column_threshold``: the method stays the default one)."""
    missing = [c for c in stats_by_col if c not in current_df.columns]
    if missing:
        raise ValueError(f"current data has no column(s) {missing}")
    thresholds = thresholds or {}
    unknown = [c for c in thresholds if c not in stats_by_col]
    if unknown:
        raise ValueError(f"thresholds given for column(s) {unknown} that have no reference statistics")
    return {c: column_drift(s, current_df[c], thresholds.get(c)) for c, s in stats_by_col.items()}


def column_drift(stats: ReferenceColumnStats, current_values, threshold: float | None = None) -> ColumnDrift:
    """Evidently's default drift test of one column: reference ``stats`` against all ``current_values``."""
    current = current_values if isinstance(current_values, pd.Series) else pd.Series(current_values)
    if stats.kind == "numerical":
        cur = _finite(stats.column, current, "current")
        cur_counts = None
        if stats.n_unique <= MAX_DISCRETE_VALUES:  # otherwise n_values > 5 whatever the current holds
            cur_counts = _counts(pd.Series(cur))
            n_values = len(stats.counts.keys() | cur_counts.keys())
        else:
            n_values = stats.n_unique
        if n_values > MAX_DISCRETE_VALUES:
            method = "wasserstein" if stats.rows > SMALL_REFERENCE_ROWS else "ks"
        else:
            method = _discrete_method(stats.rows, n_values)
    else:
        cur_counts = _counts(current)
        if not cur_counts:
            raise ValueError(f"column {stats.column!r}: no non-null values in the current data")
        method = _discrete_method(stats.rows, len(stats.counts.keys() | cur_counts.keys()))

    threshold = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    if method == "wasserstein":
        score = _wasserstein(stats.sorted_values, cur) / max(stats.std, MIN_NORM)
        drifted = score >= threshold
    elif method == "ks":
        score = ks_2samp(stats.sorted_values, cur).pvalue
        drifted = score <= threshold  # ks_stattest.py uses <=, the other p-value tests <
    else:
        ref_n, cur_n, ref_c, cur_c = _aligned(stats.counts, cur_counts)
        if method == "jensenshannon":
            score = jensenshannon(ref_c / ref_n, cur_c / cur_n)
            drifted = score >= threshold
        elif method == "chisquare":
            # a value the reference never had has expected count 0: statistic inf, p = 0 (drift), as in Evidently
            with np.errstate(divide="ignore"):
                score = chisquare(cur_c, ref_c * (cur_n / ref_n)).pvalue
            drifted = score < threshold
        else:
            score = _z_pvalue(stats.counts, cur_counts, ref_n, cur_n)
            drifted = score < threshold
    return ColumnDrift(stats.column, method, threshold, float(score), bool(drifted))


def _discrete_method(reference_rows: int, n_values: int) -> str:
    if reference_rows > SMALL_REFERENCE_ROWS:
        return "jensenshannon"
    return "chisquare" if n_values > 2 else "z"


def _wasserstein(ref_sorted: np.ndarray, cur: np.ndarray) -> float:
    """``scipy.stats.wasserstein_distance(ref, cur)``, bit for bit, with the reference already sorted.

    scipy integrates |F_ref - F_cur| over the merged sorted values, counting each sample's values <= every
    merged value with a ``searchsorted`` of all merged values (two argsorts, two searches over 1.1M keys at
    1M rows). The same integer counts come cheaper: a reference value is counted from its first position in
    the merged values onwards (a search of only the reference's values, then a cumulative sum); and where the
    next merged value is larger, the values <= the i-th one are exactly the first i + 1, so the current's
    count is the rest. Where the next value is equal the step width is 0 and the term vanishes either way.
    """
    merged = np.concatenate((ref_sorted, cur))
    merged.sort()
    deltas = np.diff(merged)
    ref_idx = np.bincount(merged.searchsorted(ref_sorted, "left"), minlength=merged.size).cumsum()[:-1]
    cur_idx = np.arange(1, merged.size) - ref_idx
    return float(np.vecdot(np.abs(ref_idx / ref_sorted.size - cur_idx / cur.size), deltas))


def _z_pvalue(ref_counts: dict, cur_counts: dict, n1: int, n2: int) -> float:
    """z_stattest.py: the same arithmetic, on counts instead of 0/1 series."""
    if len(ref_counts) == 1 and ref_counts.keys() == cur_counts.keys():
        return 1.0
    first = sorted(ref_counts.keys() | cur_counts.keys())[0]
    p1 = float(n1 - ref_counts.get(first, 0)) / n1  # share of values != the smallest one
    p2 = float(n2 - cur_counts.get(first, 0)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))  # not norm.sf: Evidently's 1 - cdf rounds to 0 sooner


def _aligned(ref_counts: dict, cur_counts: dict) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Both samples' counts over the union of their values (reference's order, then new current values)."""
    keys = list(ref_counts | cur_counts)
    ref_c = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.int64)
    cur_c = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.int64)
    return int(ref_c.sum()), int(cur_c.sum()), ref_c, cur_c


def _finite(column: str, values: pd.Series, where: str) -> np.ndarray:
    """Non-null, finite values as float64; Evidently refuses a non-numeric dtype for a numerical column."""
    if not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"column {column!r} in the {where} data should be numerical, got dtype {values.dtype}")
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError(f"column {column!r}: no non-null values in the {where} data")
    return arr


def _counts(values: pd.Series) -> dict:
    """Value -> count of the non-null values. Zero counts (unobserved levels of a pandas ``category``) and
    infinite values (Evidently turns them into nulls) are left out."""
    vc = values.value_counts(dropna=True, sort=False)
    return {k: int(n) for k, n in vc.items() if n > 0 and not _is_infinite(k)}


def _is_infinite(value) -> bool:
    return isinstance(value, (float, np.floating)) and bool(np.isinf(value))
