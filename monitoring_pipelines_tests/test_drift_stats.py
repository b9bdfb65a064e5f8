"""drift_stats reproduces Evidently 0.7's default drift test: method, threshold, score and decision per column.

Every scenario runs Evidently's own ``DataDriftPreset`` (explicit DataDefinition, ``include_tests=True``,
parsed by ``evidently.per_column`` as the adapter does) on real UCI Adult rows and compares it with
``drift_stats`` fitted on the same reference; scores must agree to 1e-9 relative. Each score is also
recomputed from the cleaned pandas columns with scipy directly.

Two derived numerical columns exercise the discrete branches: ``hours_band`` (4 values of hours_per_week)
and ``is_male`` (0/1).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitoring_pipelines.demo import load_adult
from monitoring_pipelines.families.drift import stats as drift_stats
from monitoring_pipelines.families.drift.evidently import per_column

NUM = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week", "hours_band", "is_male"]
CAT = ["workclass", "education", "marital_status", "occupation", "relationship", "race", "sex", "native_country"]
CONTINUOUS = NUM[:6]


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    df = load_adult().sample(frac=1, random_state=3).reset_index(drop=True)
    df["hours_band"] = np.digitize(df["hours_per_week"], [30, 40, 50]).astype("int64")
    df["is_male"] = (df["sex"] == "Male").astype("int64")
    return df


def _shifted(cur: pd.DataFrame) -> pd.DataFrame:
    """Older people, and 30% of the rows re-labelled as divorced."""
    cur = cur.assign(age=cur["age"] + 5)
    cur.loc[cur.sample(frac=0.3, random_state=1).index, "marital_status"] = "Divorced"
    return cur


def _with_nulls(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """10% nulls in numerical and categorical columns, and a few infinities (Evidently drops both)."""
    df = df.copy()
    rng = np.random.default_rng(seed)
    for col in ("age", "hours_band", "is_male", "race", "education"):
        df.loc[rng.random(len(df)) < 0.1, col] = None
    df["fnlwgt"] = df["fnlwgt"].astype("float64")
    df.loc[df.index[:3], "fnlwgt"] = [np.inf, -np.inf, np.nan]
    return df


def _scenarios(adult: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, dict | None]]:
    big_ref, small_ref, cur = adult.iloc[:5000], adult.iloc[:800], adult.iloc[5000:8000].reset_index(drop=True)
    # 1,200 reference rows; age keeps fewer than 1,000 non-null values and alone takes the small-reference branch
    null_ref = _with_nulls(adult.iloc[10_000:11_200], seed=1)
    null_ref.loc[null_ref.index[:200], "age"] = np.nan
    # hours_band gets 2 values the reference never had (6 in all), is_male a third: the distinct values are
    # counted over both samples
    extra = cur.assign(
        hours_band=np.where(cur.index % 7 == 0, cur["hours_band"] + 4, cur["hours_band"]),
        is_male=np.where(cur.index % 11 == 0, 2, cur["is_male"]),
    )
    return {
        "clean": (big_ref, cur, None),
        "shifted": (big_ref, _shifted(cur), None),
        "thresholds": (big_ref, _shifted(cur), {"age": 0.5, "fnlwgt": 0.01, "marital_status": 0.25}),
        "small_clean": (small_ref, cur, None),
        "small_shifted": (small_ref, _shifted(cur), None),
        "nulls": (null_ref, _with_nulls(cur, seed=2), None),
        "extra_values": (big_ref, extra, None),
        "small_extra_values": (small_ref, extra, None),
    }


@pytest.fixture(scope="module")
def scenarios(adult):
    return _scenarios(adult)


@pytest.fixture(scope="module")
def evidently_results(scenarios) -> dict[str, dict]:
    """Evidently's per-column results for every scenario (about 1 s each)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUM, categorical_columns=CAT)
    out = {}
    for name, (ref, cur, thresholds) in scenarios.items():
        report = Report([DataDriftPreset(columns=NUM + CAT, per_column_threshold=thresholds)], include_tests=True)
        with warnings.catch_warnings():  # Evidently: chi-square on zero expected counts, summaries adding ±inf
            warnings.simplefilter("ignore", RuntimeWarning)
            snapshot = report.run(
                Dataset.from_pandas(cur[NUM + CAT], data_definition=definition),
                Dataset.from_pandas(ref[NUM + CAT], data_definition=definition),
            )
        out[name] = per_column(snapshot.dict())
    return out


@pytest.fixture(scope="module")
def ours(scenarios) -> dict[str, dict[str, drift_stats.ColumnDrift]]:
    return {
        name: drift_stats.drift_all(drift_stats.fit_reference(ref, NUM, CAT), cur, thresholds)
        for name, (ref, cur, thresholds) in scenarios.items()
    }


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


@pytest.mark.slow  # Evidently's own reports of eight scenarios: about 13 s of setup
@pytest.mark.parametrize(
    "scenario",
    ["clean", "shifted", "thresholds", "small_clean", "small_shifted", "nulls", "extra_values", "small_extra_values"],
)
def test_every_column_matches_evidently(scenario, ours, evidently_results):
    theirs = evidently_results[scenario]
    assert list(ours[scenario]) == NUM + CAT
    for col, mine in ours[scenario].items():
        ev = theirs[col]
        assert (mine.method, mine.threshold, mine.drifted) == (ev.method, ev.threshold, ev.drifted), col
        assert _close(mine.score, ev.score), (col, mine.score, ev.score)


def _methods(result: dict[str, drift_stats.ColumnDrift]) -> dict[str, str]:
    return {c: r.method for c, r in result.items()}


def test_large_reference_uses_distances(ours):
    expected = {
        **dict.fromkeys(CONTINUOUS, "wasserstein"),
        **dict.fromkeys(["hours_band", "is_male", *CAT], "jensenshannon"),
    }
    assert _methods(ours["clean"]) == expected
    assert all(r.threshold == 0.1 for r in ours["clean"].values())


def test_small_reference_uses_p_values(ours):
    # <= 1000 reference rows: ks for continuous columns, chi-square for 3-5 values, z for 2 values
    expected = {
        **dict.fromkeys(CONTINUOUS, "ks"),
        "hours_band": "chisquare",
        "is_male": "z",
        "sex": "z",
        **{c: "chisquare" for c in CAT if c != "sex"},
    }
    assert _methods(ours["small_clean"]) == expected
    assert all(r.threshold == 0.05 for r in ours["small_clean"].values())


def test_branch_follows_the_columns_non_null_reference_rows(scenarios, ours):
    ref = scenarios["nulls"][0]
    assert ref["age"].count() <= 1000 < ref["hours_band"].count()
    methods = _methods(ours["nulls"])
    assert methods["age"] == "ks"
    assert methods["fnlwgt"] == "wasserstein"  # 1,197 finite values
    assert methods["hours_band"] == "jensenshannon"


def test_distinct_values_are_counted_over_both_samples(ours):
    assert _methods(ours["extra_values"])["hours_band"] == "wasserstein"  # 4 in the reference, 6 together
    assert _methods(ours["small_extra_values"])["hours_band"] == "ks"
    assert _methods(ours["small_extra_values"])["is_male"] == "chisquare"  # 2 in the reference, 3 together


def test_shift_and_reweighting_are_detected(ours):
    assert {c for c, r in ours["clean"].items() if r.drifted} == set()
    assert {c for c, r in ours["shifted"].items() if r.drifted} == {"age", "marital_status"}
    # a threshold override keeps the default method: age (0.41) passes at 0.5, marital_status (0.21) at 0.25,
    # fnlwgt (0.046) drifts at 0.01
    assert {c for c, r in ours["thresholds"].items() if r.drifted} == {"fnlwgt"}


def _clean(s: pd.Series) -> pd.Series:
    return s.replace([-np.inf, np.inf], np.nan).dropna()


def _scipy_score(method: str, ref: pd.Series, cur: pd.Series) -> float:
    """The score straight from scipy on the cleaned pandas columns, counts aligned by pandas."""
    if method == "wasserstein":
        return stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    if method == "ks":
        return stats.ks_2samp(ref, cur).pvalue
    counts = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0).to_numpy()
    if method == "jensenshannon":
        return jensenshannon(counts[:, 0], counts[:, 1])
    if method == "chisquare":
        with np.errstate(divide="ignore"):
            return stats.chisquare(counts[:, 1], counts[:, 0] * len(cur) / len(ref)).pvalue
    assert method == "z"
    if len(counts) == 1:
        return 1.0
    p1, p2 = counts[0, 0] / len(ref), counts[0, 1] / len(cur)
    pooled = (counts[0, 0] + counts[0, 1]) / (len(ref) + len(cur))
    return 2 * stats.norm.sf(abs(p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur))))


@pytest.mark.parametrize("scenario", ["shifted", "small_shifted", "nulls", "small_extra_values"])
def test_scores_equal_scipy_directly(scenario, scenarios, ours):
    ref, cur, _ = scenarios[scenario]
    for col, mine in ours[scenario].items():
        expected = _scipy_score(mine.method, _clean(ref[col]), _clean(cur[col]))
        assert _close(mine.score, expected), (col, mine.method, mine.score, expected)


@pytest.mark.parametrize("seed", range(5))
def test_wasserstein_is_scipys_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 50, 3000).astype(float)  # many ties, within and across the samples
    cur = np.concatenate([rng.integers(10, 70, 5000), rng.normal(30, 10, 500)])
    stats_ = drift_stats.fit_reference(pd.DataFrame({"x": ref}), ["x"], [])["x"]
    assert drift_stats._wasserstein(stats_.sorted_values, cur) == stats.wasserstein_distance(ref, cur)


def test_constant_reference_is_normed_by_the_floor():
    ref = pd.DataFrame({"x": np.r_[np.full(1500, 2.0), np.arange(6.0)]})
    result = drift_stats.column_drift(drift_stats.fit_reference(ref, ["x"], [])["x"], pd.Series([2.0] * 100 + [3.0]))
    assert result.method == "wasserstein"
    assert _close(
        result.score, stats.wasserstein_distance(ref["x"], [2.0] * 100 + [3.0]) / max(ref["x"].std(ddof=0), 0.001)
    )


def test_bad_input_names_the_column():
    ref = drift_stats.fit_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}), ["x"], ["c"])
    with pytest.raises(ValueError, match=r"current data has no column\(s\) \['c'\]"):
        drift_stats.drift_all(ref, pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match=r"thresholds or methods given for column\(s\) \['y'\]"):
        drift_stats.drift_all(ref, pd.DataFrame({"x": [1.0], "c": ["a"]}), {"y": 0.2})
    with pytest.raises(ValueError, match="column 'x' in the current data should be numerical"):
        drift_stats.column_drift(ref["x"], pd.Series(["1.0"]))
    with pytest.raises(ValueError, match="column 'c': no non-null values in the current data"):
        drift_stats.column_drift(ref["c"], pd.Series([None, None], dtype=object))
    with pytest.raises(ValueError, match=r"reference has no column\(s\) \['y'\]"):
        drift_stats.fit_reference(pd.DataFrame({"x": [1.0]}), ["x", "y"], [])


@pytest.mark.parametrize("seed", range(6))
def test_sturges_edges_equal_numpys_without_the_merged_sample(seed):
    """get_binned_data bins concat(ref, cur) with np.histogram_bin_edges(..., "sturges"); drift_stats rebuilds the
    edges from min, max, size and integer-ness (numpy widens integer bins to at least 1)."""
    rng = np.random.default_rng(seed)
    cases = [
        rng.normal(3, 2, 5000),
        rng.integers(0, 22, 3_000_000),
        rng.integers(-5, 400, 777),
        np.full(50, 7),
        np.full(40, 2.5),
        rng.integers(0, 2, 9).astype(float),
    ]
    a = cases[seed]
    integer = np.issubdtype(a.dtype, np.integer)
    got = drift_stats._sturges_edges(a.min(), a.max(), a.size, integer)
    np.testing.assert_array_equal(got, np.histogram_bin_edges(a, bins="sturges"))


def test_plan_methods_are_refused_for_the_wrong_type_or_when_not_computed():
    assert drift_stats.method_problem("psi", "numerical") is None
    assert "applies to categorical columns, not numerical" in drift_stats.method_problem("chisquare", "numerical")
    assert "applies to numerical columns, not categorical" in drift_stats.method_problem("ks", "categorical")
    assert "'TVD' is not computed on all rows" in drift_stats.method_problem("TVD", "categorical")
    ref = drift_stats.fit_reference(pd.DataFrame({"c": ["a", "b"] * 10}), [], ["c"])["c"]
    with pytest.raises(ValueError, match="column 'c': method 'anderson' is not computed on all rows"):
        drift_stats.column_drift(ref, pd.Series(["a"]), 0.1, "anderson")
