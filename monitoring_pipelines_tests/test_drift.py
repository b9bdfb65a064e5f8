"""drift.compute (Evidently 0.7) on real UCI Adult rows, each score recomputed independently with scipy.

Evidently's defaults, read from evidently/legacy/calculations/stattests/ (0.7.23):
* > 1000 reference rows, numerical: ``wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)``; ``np.std`` is the
  population std (ddof=0). Categorical: ``scipy.spatial.distance.jensenshannon`` over the shares of each category
  in the union of both samples' categories (``get_binned_data``, ``feel_zeroes=False``). Threshold 0.1, drift
  when score >= threshold.
* <= 1000 reference rows, numerical with > 5 values: ``ks_2samp(ref, cur).pvalue``, drift when p <= 0.05.
Nulls are dropped from both samples before any test (``get_one_column_drift``).

Reports are run once per module (~1-2 s each) and shared.
"""

from __future__ import annotations

import warnings

import fsspec
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitoring_pipelines import drift, reference
from monitoring_pipelines.demo import load_adult
from monitoring_pipelines.plan import ColumnDriftTest, DriftSettings
from monitoring_pipelines.metrics import Family

MEMORY_URL = "memory://drift-tests/adult_income/2026-01-05/drift.html"


@pytest.fixture(scope="module")
def rows(plan):
    df = load_adult().sample(frac=1, random_state=11).reset_index(drop=True)
    df[plan.data.predictions.score] = 1 / (1 + np.exp(-(df["age"] - 38) / 10))
    return df


@pytest.fixture(scope="module")
def ref(rows, plan):
    """The drift reference as the pipeline passes it: the profile's sample of 20,000 Adult rows."""
    return reference.build_profile(rows.iloc[:20_000], plan, "1").sample


@pytest.fixture(scope="module")
def clean_day(rows):
    return rows.iloc[20_000:25_000].reset_index(drop=True)


@pytest.fixture(scope="module")
def older_day(clean_day):
    return clean_day.assign(age=clean_day["age"] + 10)


@pytest.fixture(scope="module")
def clean(ref, clean_day, plan):
    return drift.compute(ref, clean_day, plan)


@pytest.fixture(scope="module")
def html_file(tmp_path_factory):
    return tmp_path_factory.mktemp("drift") / "nested" / "dir" / "drift.html"


@pytest.fixture(scope="module")
def shifted(ref, older_day, plan, html_file):
    return drift.compute(ref, older_day, plan, html_path=str(html_file))


@pytest.fixture(scope="module")
def small(rows, plan):
    """A 800-row reference (<= 1000: p-value tests) against 2,000 rows aged by 10 years; HTML to memory://."""
    ref_small = rows.iloc[30_000:30_800].reset_index(drop=True)
    cur = rows.iloc[31_000:33_000].reset_index(drop=True)
    cur = cur.assign(age=cur["age"] + 10)
    try:
        with warnings.catch_warnings():  # Evidently's chi-square divides by a zero expected count (see below)
            warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
            result = drift.compute(ref_small, cur, plan, html_path=MEMORY_URL)
        with fsspec.open(MEMORY_URL, "rb") as f:
            html = f.read()
    finally:
        fs = fsspec.filesystem("memory")
        if fs.exists("/drift-tests"):
            fs.rm("/drift-tests", recursive=True)
    return ref_small, cur, result, html


def by_column(result) -> dict:
    return {f.column: f for f in [*result.features, result.prediction]}


def wasserstein_normed(ref: pd.Series, cur: pd.Series, ddof: int = 0) -> float:
    r, c = ref.dropna().to_numpy(dtype=float), cur.dropna().to_numpy(dtype=float)
    return stats.wasserstein_distance(r, c) / max(float(np.std(r, ddof=ddof)), 0.001)


def chi_square_p(ref: pd.Series, cur: pd.Series) -> float:
    r, c = ref.dropna(), cur.dropna()
    keys = sorted(set(r) | set(c))
    observed = c.value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float)
    expected = r.value_counts().reindex(keys, fill_value=0).to_numpy(dtype=float) * len(c) / len(r)
    with np.errstate(divide="ignore"):
        return float(stats.chisquare(observed, expected).pvalue)


def js_distance(ref: pd.Series, cur: pd.Series) -> float:
    r, c = ref.dropna(), cur.dropna()
    keys = sorted(set(r) | set(c))
    p = r.value_counts().reindex(keys, fill_value=0).to_numpy() / len(r)
    q = c.value_counts().reindex(keys, fill_value=0).to_numpy() / len(c)
    return float(jensenshannon(p, q))


# --------------------------------------------------------------------------------------------------------
# same population


def test_clean_resample_has_no_drift(clean, plan, ref, clean_day):
    assert [f.column for f in clean.features] == plan.features.model_inputs
    assert clean.drifted == [] and clean.share == 0.0
    assert not clean.prediction.drifted and clean.prediction.column == plan.data.predictions.score
    assert (clean.reference_rows, clean.current_rows, clean.evaluated_rows) == (len(ref), len(clean_day), len(clean_day))
    for f in clean.features:
        assert f.threshold == 0.1 and 0 <= f.score < f.threshold, f


def test_default_methods_with_large_reference(clean, plan):
    methods = {f.column: f.method for f in clean.features}
    assert methods == {**{c: "wasserstein" for c in plan.features.numerical},
                       **{c: "jensenshannon" for c in plan.features.categorical}}
    assert clean.prediction.method == "wasserstein"


def test_clean_scores_equal_scipy(clean, ref, clean_day, plan):
    got = by_column(clean)
    for col in [*plan.features.numerical, plan.data.predictions.score]:
        assert got[col].score == pytest.approx(wasserstein_normed(ref[col], clean_day[col]), rel=0, abs=1e-9), col
    for col in plan.features.categorical:
        assert got[col].score == pytest.approx(js_distance(ref[col], clean_day[col]), rel=0, abs=1e-6), col


# --------------------------------------------------------------------------------------------------------
# age + 10 years


def test_older_population_drifts_on_age_only(shifted, plan):
    assert [f.column for f in shifted.drifted] == ["age"]
    assert shifted.share == len(shifted.drifted) / len(shifted.features) == 1 / len(plan.features.model_inputs)
    assert not shifted.prediction.drifted  # scores were not recomputed for the older rows


def test_shifted_scores_equal_scipy(shifted, ref, older_day, plan):
    got = by_column(shifted)
    for col in [*plan.features.numerical, plan.data.predictions.score]:
        expected = wasserstein_normed(ref[col], older_day[col])
        assert got[col].score == pytest.approx(expected, rel=0, abs=1e-9), col
        assert got[col].drifted == (expected >= 0.1), col
    for col in plan.features.categorical:
        expected = js_distance(ref[col], older_day[col])
        assert got[col].score == pytest.approx(expected, rel=0, abs=1e-6), col
        assert got[col].drifted == (expected >= 0.1), col


def test_wasserstein_norm_is_population_std(shifted, ref, older_day):
    """The 1e-9 match above is discriminating: normalising by the sample std (ddof=1) is off by ~2e-5 here."""
    score = by_column(shifted)["age"].score
    assert abs(score - wasserstein_normed(ref["age"], older_day["age"], ddof=1)) > 1e-6


def test_top_puts_drifted_first(shifted):
    top = shifted.top(3)
    assert [f.column for f in top][0] == "age" and top[0].drifted
    assert len(top) == 3 and not any(f.drifted for f in top[1:])
    rest = sorted((f for f in shifted.features if not f.drifted), key=lambda f: -f.score / f.threshold)
    assert [f.column for f in top[1:]] == [f.column for f in rest[:2]]
    assert len(shifted.top(100)) == len(shifted.features)


def test_top_orders_mixed_tests_by_severity():
    f = drift.FeatureDrift
    r = drift.DriftResult(
        features=[f("a", "wasserstein", 0.1, 0.05, False), f("b", "ks", 0.05, 1e-12, True),
                  f("c", "jensenshannon", 0.1, 0.35, True), f("d", "ks", 0.05, 0.5, False),
                  f("e", "ks", 0.05, 0.06, False),
                  # a tie at the boundary: chi-square drifts on p < threshold, wasserstein on score >= threshold
                  f("g", "chisquare", 0.05, 0.05, False), f("h", "wasserstein", 0.1, 0.1, True)],
        prediction=f("score", "wasserstein", 0.1, 0.0, False), current_rows=1, evaluated_rows=1, reference_rows=1)
    # drifted: b 0.05/1e-12 > c 3.5 > h 1.0; then g 1.0 > e 0.05/0.06 = 0.83 > a 0.5 > d 0.1
    assert [x.column for x in r.top(7)] == ["b", "c", "h", "g", "e", "a", "d"]
    assert [x.column for x in r.top(2)] == ["b", "c"]
    assert r.share == pytest.approx(3 / 7)


def test_metrics(shifted, plan):
    ms = shifted.metrics()
    assert all(m.family == Family.DRIFT for m in ms)
    single = {m.metric: m.value for m in ms if m.metric in ("share_of_drifted_features", "drifted_features")}
    assert single == {"share_of_drifted_features": shifted.share, "drifted_features": 1.0}
    scores = {m.segment: m.value for m in ms if m.metric == "feature_drift_score"}
    flags = {m.segment: m.value for m in ms if m.metric == "feature_drifted"}
    assert scores == {f.column: f.score for f in shifted.features}
    assert flags == {c: float(c == "age") for c in plan.features.model_inputs}
    (pred,) = [m for m in ms if m.metric == "prediction_drift_score"]
    assert (pred.value, pred.segment) == (shifted.prediction.score, plan.data.predictions.score)


def test_html_report_to_local_path(shifted, html_file):
    assert html_file.exists()
    html = html_file.read_text()
    assert len(html.encode()) > 100_000
    assert "Value Drift for column age" in html
    assert "Drift is detected for 9.091% of columns (1 out of 11)." in html


# --------------------------------------------------------------------------------------------------------
# small reference: p-value tests


def test_small_reference_uses_ks_with_scipy_p_values(small, plan):
    ref_small, cur, result, _ = small
    got = by_column(result)
    assert result.reference_rows == 800
    for col in [*plan.features.numerical, plan.data.predictions.score]:
        r, c = ref_small[col].dropna(), cur[col].dropna()
        assert pd.concat([r, c]).nunique() > 5  # else Evidently picks chi-square / z
        assert got[col].method == "ks" and got[col].threshold == 0.05, col
        p = stats.ks_2samp(r, c).pvalue
        assert got[col].score == pytest.approx(p, rel=1e-9, abs=1e-300), col
        assert got[col].drifted == (p <= 0.05), col
    assert got["age"].drifted and got["age"].score < 1e-20


def test_small_reference_uses_chi_square_for_categories(small, plan):
    """Evidently's chi-square takes the reference shares as the exact expectation (no reference variance), and a
    category absent from the 800 reference rows has expected count 0: p = 0, drift, even though only age moved."""
    ref_small, cur, result, _ = small
    got = by_column(result)
    for col in plan.features.categorical:
        assert got[col].method == "chisquare" and got[col].threshold == 0.05, col
        p = chi_square_p(ref_small[col], cur[col])
        assert got[col].score == pytest.approx(p, rel=1e-9, abs=1e-300), col
        assert got[col].drifted == (p < 0.05), col
    unseen = set(cur["education"].dropna()) - set(ref_small["education"].dropna())
    assert unseen and got["education"].score == 0.0 and got["education"].drifted


def test_small_reference_top_ranks_smallest_p_value_first(small):
    _, _, result, _ = small
    top = result.top(len(result.features))
    n_drifted = len(result.drifted)
    assert n_drifted >= 2 and all(f.drifted for f in top[:n_drifted]) and not any(f.drifted for f in top[n_drifted:])
    for part in (top[:n_drifted], top[n_drifted:]):  # all p-value tests here: ascending p within each part
        p_values = [max(f.score, 1e-300) for f in part]
        assert p_values == sorted(p_values)


def test_html_report_to_memory_url(small):
    *_, html = small
    assert len(html) > 100_000
    assert b"Value Drift for column age" in html


# --------------------------------------------------------------------------------------------------------
# sampling of large days


def test_large_day_is_sampled(ref, rows, plan, monkeypatch):
    monkeypatch.setattr(drift, "MAX_CURRENT_ROWS", 1500)
    day = rows.iloc[25_000:29_000].reset_index(drop=True)
    result = drift.compute(ref, day, plan)
    assert (result.current_rows, result.evaluated_rows, result.reference_rows) == (4000, 1500, len(ref))
    # the seeded sample is what Evidently saw: its score differs from the full day's
    sample = day.sample(1500, random_state=0)
    got = by_column(result)["hours_per_week"].score
    assert got == pytest.approx(wasserstein_normed(ref["hours_per_week"], sample["hours_per_week"]), rel=0, abs=1e-9)
    assert abs(got - wasserstein_normed(ref["hours_per_week"], day["hours_per_week"])) > 1e-6


def test_the_plan_chooses_the_test_and_threshold_of_a_column(ref, older_day, plan):
    chosen = plan.model_copy(update={"drift": DriftSettings(columns={
        "age": ColumnDriftTest(method="psi", threshold=0.2),
        "hours_per_week": ColumnDriftTest(method="ks", threshold=0.01)})})
    result = {f.column: f for f in drift.compute(ref, older_day, chosen).features}
    assert (result["age"].method, result["age"].threshold) == ("psi", 0.2)
    assert result["age"].drifted == (result["age"].score >= 0.2)  # distance: drift at or above
    assert (result["hours_per_week"].method, result["hours_per_week"].threshold) == ("ks", 0.01)
    assert result["hours_per_week"].drifted == (result["hours_per_week"].score < 0.01)  # p-value: drift below
    assert result["workclass"].method == "jensenshannon"  # the others keep Evidently's default
