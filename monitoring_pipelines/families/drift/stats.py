"""Evidently 0.7.23's per-column drift tests, recomputed with numpy/scipy on all rows.

Same statistic, threshold and decision as Evidently 0.7.23 (``ValueDrift`` / ``DataDriftPreset`` ->
``legacy.calculations.data_drift.get_one_column_drift``), read from ``evidently/legacy/calculations/stattests/``:

* Cleaning (``get_one_column_drift``): ``±inf`` become null and nulls are dropped from both samples; an
  empty column is an error. "Reference rows" below means the reference's *non-null* values of that column.
* Default selection, no method set (``registry._get_default_stattest``): ``n_values`` = distinct non-null
  values of reference and current *together* (``pd.concat([ref, cur]).nunique()``).

  ============================  ==========================================  ========================
  reference rows                numerical                                   categorical
  ============================  ==========================================  ========================
  > 1000                        ``wasserstein`` (n_values > 5), else        ``jensenshannon``
                                ``jensenshannon``
  <= 1000                       ``ks`` (n_values > 5), ``chisquare``         ``chisquare``
                                (3-5), ``z`` (<= 2)                         (n_values > 2), else ``z``
  ============================  ==========================================  ========================

* A method chosen by the plan (``drift.columns``) must be registered for the column's type, as Evidently's
  ``get_registered_stattest`` requires: ``ks`` and ``wasserstein`` numerical only, ``chisquare`` and ``z``
  categorical only (Evidently's *default* choice may still apply them to a numerical column with few
  values), ``jensenshannon``, ``psi``, ``kl_div``, ``hellinger`` both. ``METHODS`` lists what is computed
  here; any other registered method (``TVD`` is a 1000-fold permutation test, ``anderson``, ``ed``, ...)
  is refused by ``method_problem`` rather than approximated.

* Statistics and decisions (p-value tests drift when ``p < threshold``, except ``ks``: ``p <=``; distances
  when ``score >= threshold``):

  - ``wasserstein`` (``wasserstein_distance_norm.py``): ``scipy.stats.wasserstein_distance(ref, cur) /
    max(np.std(ref), 0.001)`` (population std, ddof=0); default threshold 0.1.
  - ``ks`` (``ks_stattest.py``): ``scipy.stats.ks_2samp(ref, cur).pvalue``; 0.05; ``p <= threshold``.
  - ``chisquare`` (``chisquare_stattest.py``): ``scipy.stats.chisquare(cur_counts, ref_counts * n_cur /
    n_ref)`` over the union of values; 0.05. A value absent from the reference has expected count 0, so
    p = 0 (drift), however rare the value: with small references this is the main source of false alarms.
  - ``z`` (``z_stattest.py``): two-proportion z-test on "value != smallest value", p = ``2 * (1 -
    norm.cdf(|z|))``, 1 when both samples hold the same single value; 0.05.
  - ``jensenshannon`` / ``psi`` / ``kl_div`` (``jensenshannon.py``, ``psi.py``, ``kl_div.py``) on
    ``utils.get_binned_data``: a numerical column whose reference has more than 20 distinct values is cut
    into ``np.histogram_bin_edges(concat(ref, cur), "sturges")`` bins; anything else is compared value by
    value over the union of both samples' values. Shares = counts / rows. ``psi`` and ``kl_div`` first
    replace zero shares (``feel_zeroes``: the smallest non-zero share / 1e6 if that is <= 1e-4, else 1e-4);
    ``jensenshannon`` does not. Scores: ``scipy.spatial.distance.jensenshannon(p, q)`` (natural log),
    ``sum((p - q) * ln(p / q))``, ``scipy.stats.entropy(p, q)``; default threshold 0.1.
  - ``hellinger`` (``hellinger_distance.py``): categorical, ``sqrt(1 - clip(sum sqrt(p_i q_i), 0, 1))`` over
    the value shares; numerical, the same over ``np.histogram(density=True)`` of both samples on
    ``np.histogram_bin_edges(unique values of both, "sturges")`` bins, each term times the bin width; 0.1.

``fit_reference`` reduces the reference once per model version (sorted values, std and integer-ness for
numerical columns; value counts for categorical ones and for numerical ones with at most 20 distinct values);
``column_drift`` / ``drift_all`` then only scan the current rows. The sorted reference values are kept
because the exact Wasserstein distance and KS p-value need the reference's empirical CDF at every current
value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, entropy, ks_2samp, norm

Kind = Literal["numerical", "categorical"]

# registry._get_default_stattest: at most this many reference rows -> p-value tests, more -> distances
SMALL_REFERENCE_ROWS = 1000
# ... and a numerical column with at most this many distinct values is treated as discrete
MAX_DISCRETE_VALUES = 5
# utils.get_binned_data: a numerical reference with more distinct values than this is binned (sturges)
MAX_KEYED_VALUES = 20
# wasserstein_distance_norm.py: the std used as norm is floored, so a constant reference does not divide by 0
MIN_NORM = 0.001


@dataclass(frozen=True)
class Method:
    """A drift test computed here: the column types Evidently registers it for, its default threshold, and
    whether its score is a p-value (drift below the threshold) or a distance (drift at or above)."""

    kinds: tuple[str, ...]
    default_threshold: float
    p_value: bool


METHODS = {
    "wasserstein": Method(("numerical",), 0.1, False),
    "ks": Method(("numerical",), 0.05, True),
    "chisquare": Method(("categorical",), 0.05, True),
    "z": Method(("categorical",), 0.05, True),
    "jensenshannon": Method(("numerical", "categorical"), 0.1, False),
    "psi": Method(("numerical", "categorical"), 0.1, False),
    "kl_div": Method(("numerical", "categorical"), 0.1, False),
    "hellinger": Method(("numerical", "categorical"), 0.1, False),
}
DEFAULT_THRESHOLDS = {name: m.default_threshold for name, m in METHODS.items()}


def method_problem(method: str, kind: Kind) -> str | None:
    """Why ``method`` cannot be the plan's test of a ``kind`` column, or None when it can."""
    if method not in METHODS:
        return (
            f"method {method!r} is not computed on all rows (supported: {', '.join(METHODS)}); "
            "choose one of those or leave the column to Evidently's default"
        )
    if kind not in METHODS[method].kinds:
        return f"method {method!r} applies to {' or '.join(METHODS[method].kinds)} columns, not {kind} ones"
    return None


@dataclass(frozen=True)
class ReferenceColumnStats:
    """What the drift tests need from one reference column, computed once per model version.

    ``rows`` counts the non-null, finite values (Evidently's branch depends on it). Numerical columns keep
    their ``sorted_values`` (float64), ``std`` and whether the column was ``integer`` (numpy widens integer
    histogram bins to at least 1); ``counts`` (value -> count) is set for categorical columns and for
    numerical ones with at most 20 distinct values, the only ones tested on counts.
    """

    column: str
    kind: Kind
    rows: int
    n_unique: int
    sorted_values: np.ndarray | None = None
    std: float | None = None
    counts: dict | None = None
    integer: bool = False


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: ``score`` is a distance (wasserstein, jensenshannon, psi, kl_div, hellinger) or a
    p-value (ks, chisquare, z)."""

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
    counts = _counts(pd.Series(finite)) if n_unique <= MAX_KEYED_VALUES else None
    return ReferenceColumnStats(
        column,
        "numerical",
        finite.size,
        n_unique,
        sorted_values=finite,
        std=std,
        counts=counts,
        integer=_is_integer(values),
    )


def _fit_categorical(column: str, values: pd.Series) -> ReferenceColumnStats:
    counts = _counts(values)
    rows = sum(counts.values())
    if rows == 0:
        raise ValueError(f"column {column!r}: no non-null values in the reference")
    return ReferenceColumnStats(column, "categorical", rows, len(counts), counts=counts)


def drift_all(
    stats_by_col: dict[str, ReferenceColumnStats],
    current_df: pd.DataFrame,
    thresholds: dict[str, float] | None = None,
    methods: dict[str, str] | None = None,
) -> dict[str, ColumnDrift]:
    """``column_drift`` for every fitted column. ``thresholds`` and ``methods`` override Evidently's default
    per column, as ``per_column_threshold`` / ``per_column_method`` do (a threshold alone keeps the default
    method)."""
    missing = [c for c in stats_by_col if c not in current_df.columns]
    if missing:
        raise ValueError(f"current data has no column(s) {missing}")
    thresholds, methods = thresholds or {}, methods or {}
    unknown = [c for c in [*thresholds, *methods] if c not in stats_by_col]
    if unknown:
        raise ValueError(f"thresholds or methods given for column(s) {unknown} that have no reference statistics")
    return {c: column_drift(s, current_df[c], thresholds.get(c), methods.get(c)) for c, s in stats_by_col.items()}


def numeric_drift(reference_values: pd.Series, current_values: pd.Series) -> ColumnDrift:
    """Evidently's default drift test of one numeric column (e.g. a model's scores): ``current_values`` against
    ``reference_values``, both without missing values."""
    return column_drift(_fit_numerical("score", reference_values), current_values)


def column_drift(
    stats: ReferenceColumnStats, current_values, threshold: float | None = None, method: str | None = None
) -> ColumnDrift:
    """Evidently's drift test of one column (its default choice, or ``method``): reference ``stats`` against
    all ``current_values``."""
    current = current_values if isinstance(current_values, pd.Series) else pd.Series(current_values)
    if method is not None:
        problem = method_problem(method, stats.kind)
        if problem:
            raise ValueError(f"column {stats.column!r}: {problem}")
    if stats.kind == "numerical":
        cur = _finite(stats.column, current, "current")
        cur_integer = _is_integer(current)
        keyed = method in ("jensenshannon", "psi", "kl_div") and stats.n_unique <= MAX_KEYED_VALUES
        cur_counts = None
        if keyed or (method is None and stats.n_unique <= MAX_DISCRETE_VALUES):
            cur_counts = _counts(pd.Series(cur))
        if method is None:
            n_values = (
                len(stats.counts.keys() | cur_counts.keys())
                if stats.n_unique <= MAX_DISCRETE_VALUES
                else stats.n_unique
            )  # more than 5 in the reference: more than 5 together
            if n_values > MAX_DISCRETE_VALUES:
                method = "wasserstein" if stats.rows > SMALL_REFERENCE_ROWS else "ks"
            else:
                method = _discrete_method(stats.rows, n_values)
    else:
        cur, cur_integer = None, False
        cur_counts = _counts(current)
        if not cur_counts:
            raise ValueError(f"column {stats.column!r}: no non-null values in the current data")
        ref_kinds, cur_kinds = _value_kinds(stats.counts), _value_kinds(cur_counts)
        if not ref_kinds & cur_kinds:  # e.g. codes 1, 2, 3 where the reference had "Private", "Self-emp"
            raise ValueError(
                f"column {stats.column!r}: the current values are {' and '.join(sorted(cur_kinds))} "
                f"but the reference's are {' and '.join(sorted(ref_kinds))} (type changed)"
            )
        if method is None:
            method = _discrete_method(stats.rows, len(stats.counts.keys() | cur_counts.keys()))

    spec = METHODS[method]
    threshold = spec.default_threshold if threshold is None else float(threshold)
    if method == "wasserstein":
        score = _wasserstein(stats.sorted_values, cur) / max(stats.std, MIN_NORM)
    elif method == "ks":
        score = ks_2samp(stats.sorted_values, cur).pvalue
    elif method in ("chisquare", "z"):
        if method == "chisquare":
            ref_n, cur_n, ref_c, cur_c = _aligned(stats.counts, cur_counts)
            # a value the reference never had has expected count 0: statistic inf, p = 0 (drift), as in Evidently
            with np.errstate(divide="ignore"):
                score = chisquare(cur_c, ref_c * (cur_n / ref_n)).pvalue
        else:
            score = _z_pvalue(stats.counts, cur_counts, stats.rows, sum(cur_counts.values()))
    elif method == "hellinger":
        score = _hellinger(stats, cur, cur_counts, cur_integer)
    else:
        ref_p, cur_p = _binned(stats, cur, cur_counts, cur_integer, feel_zeroes=method != "jensenshannon")
        if method == "jensenshannon":
            score = jensenshannon(ref_p, cur_p)
        elif method == "psi":
            score = np.sum((ref_p - cur_p) * np.log(ref_p / cur_p))
        else:
            score = entropy(ref_p, cur_p)
    score = float(score)
    if spec.p_value:
        drifted = score <= threshold if method == "ks" else score < threshold  # ks_stattest.py uses <=
    else:
        drifted = score >= threshold
    return ColumnDrift(stats.column, method, threshold, score, bool(drifted))


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
    The merged values are the two sorted runs merged by a stable sort (timsort finds the runs: linear), which
    gives the same array as sorting everything at once, in a fraction of the time.
    """
    merged = np.concatenate((ref_sorted, np.sort(cur)))
    merged.sort(kind="stable")
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


def _binned(
    stats: ReferenceColumnStats, cur: np.ndarray | None, cur_counts: dict | None, cur_integer: bool, feel_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """utils.get_binned_data: the shares of both samples per histogram bin or per value."""
    if stats.kind == "numerical" and stats.n_unique > MAX_KEYED_VALUES:
        ref_v = stats.sorted_values
        edges = _sturges_edges(
            min(ref_v[0], cur.min()), max(ref_v[-1], cur.max()), ref_v.size + cur.size, stats.integer and cur_integer
        )
        ref_p = np.histogram(ref_v, edges)[0] / ref_v.size
        cur_p = np.histogram(cur, edges)[0] / cur.size
    else:
        ref_n, cur_n, ref_c, cur_c = _aligned(stats.counts, cur_counts)
        ref_p, cur_p = ref_c / ref_n, cur_c / cur_n
    if feel_zeroes:
        for p in (ref_p, cur_p):
            smallest = p[p != 0].min()
            np.place(p, p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return ref_p, cur_p


def _hellinger(
    stats: ReferenceColumnStats, cur: np.ndarray | None, cur_counts: dict | None, cur_integer: bool
) -> float:
    """hellinger_distance.py: on value shares (categorical) or density histograms (numerical)."""
    total = 0.0
    if stats.kind == "categorical":
        ref_n, cur_n, ref_c, cur_c = _aligned(stats.counts, cur_counts)
        for p1, p2 in zip(ref_c / ref_n, cur_c / cur_n):
            total += np.sqrt(float(p1) * float(p2))
    else:
        keys = np.union1d(np.unique(stats.sorted_values), np.unique(cur))
        integer = stats.integer and cur_integer
        edges = _sturges_edges(keys[0], keys[-1], keys.size, integer)
        h1 = np.histogram(stats.sorted_values, bins=edges, density=True)[0]
        h2 = np.histogram(cur, bins=edges, density=True)[0]
        width = (max(edges) - min(edges)) / (len(edges) - 1)
        for p1, p2 in zip(h1, h2):
            total += np.sqrt(float(p1) * float(p2)) * width
    return float(np.sqrt(1 - np.clip(total, 0, 1)))


def _sturges_edges(lo: float, hi: float, size: int, integer: bool) -> np.ndarray:
    """``np.histogram_bin_edges(a, bins="sturges")`` from ``a``'s minimum, maximum, size and integer-ness, so the
    merged sample need not exist (numpy 2.x ``_get_outer_edges`` / ``_hist_bin_sturges`` / ``_get_bin_edges``)."""
    if integer:
        lo, hi = np.int64(lo), np.int64(hi)
        spread = float(np.subtract(hi, lo, dtype=np.uint64, casting="unsafe"))  # numpy's _unsigned_subtract
    else:
        lo, hi = np.float64(lo), np.float64(hi)
        spread = hi - lo
    first, last = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
    width = spread / (np.log2(size) + 1.0)
    if width:
        if integer and width < 1:
            width = 1
        n_bins = int(np.ceil(spread / width))  # first/last differ from lo/hi only when spread is 0
    else:
        n_bins = 1
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=np.float64)


def _aligned(ref_counts: dict, cur_counts: dict) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Both samples' counts over the union of their values: the reference's values in the reference's order,
    then the values only the current has in sorted order (so the result does not depend on how the current
    rows were read: all at once, by column, as categories)."""
    new = sorted((k for k in cur_counts if k not in ref_counts), key=lambda k: (type(k).__name__, str(k)))
    keys = [*ref_counts, *new]
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


def _value_kinds(counts: dict) -> set[str]:
    """The kinds of values a categorical column holds: text, number, bool or another type's name."""

    def kind(v) -> str:
        if isinstance(v, str):
            return "text"
        if isinstance(v, (bool, np.bool_)):
            return "bool"
        if isinstance(v, (int, float, np.number)):
            return "number"
        return type(v).__name__

    return {kind(v) for v in counts}


def _is_integer(values: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(values.dtype)


def _counts(values: pd.Series) -> dict:
    """Value -> count of the non-null values. Zero counts (unobserved levels of a pandas ``category``) and
    infinite values (Evidently turns them into nulls) are left out."""
    vc = values.value_counts(dropna=True, sort=False)
    return {k: int(n) for k, n in vc.items() if n > 0 and not _is_infinite(k)}


def _is_infinite(value) -> bool:
    return isinstance(value, (float, np.floating)) and bool(np.isinf(value))
