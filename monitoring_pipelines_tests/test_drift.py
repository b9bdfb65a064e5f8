"""drift.compute on real UCI Adult rows: every figure from all rows against statistics of the whole reference,
equal to Evidently 0.7's own output on the same data, and recomputed independently with scipy.

Evidently's defaults, read from evidently/legacy/calculations/stattests/ (0.7.23):
* > 1000 reference rows, numerical: ``wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)``; ``np.std`` is the
  population std (ddof=0). Categorical: ``scipy.spatial.distance.jensenshannon`` over the shares of each category
  in the union of both samples' categories (``get_binned_data``, ``feel_zeroes=False``). Threshold 0.1, drift
  when score >= threshold.
* <= 1000 reference rows, numerical with > 5 values: ``ks_2samp(ref, cur).pvalue``, drift when p <= 0.05;
  categorical: chi-square p-value, drift when p < 0.05.
Nulls are dropped from both samples before any test (``get_one_column_drift``).

The HTML report (Evidently on a seeded sample) is written once per module (~2 s each) and shared.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import fsspec
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitoring_pipelines import profiling
from monitoring_pipelines.demo import load_adult
from monitoring_pipelines.errors import DataSourceError, PlanError
from monitoring_pipelines.families.drift import calculator as drift
from monitoring_pipelines.families.drift import evidently as drift_report
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import ColumnDriftTest, DriftSettings

MEMORY_URL = "memory://drift-tests/adult_income/2026-01-05/drift.html"
DAY = dt.date(2026, 1, 5)


@pytest.fixture(scope="module")
def rows(plan):
    df = load_adult().sample(frac=1, random_state=11).reset_index(drop=True)
    df[plan.data.predictions.score] = 1 / (1 + np.exp(-(df["age"] - 38) / 10))
    return df


@pytest.fixture(scope="module")
def ref(rows):
    return rows.iloc[:20_000].reset_index(drop=True)


@pytest.fixture(scope="module")
def profile(ref, plan):
    """What the pipeline passes: the reference profile, drift statistics fitted on all 20,000 rows."""
    return profiling.build_profile(ref, plan, "1")


def run(profile, current, plan, day=DAY):
    return drift.compute(profile.drift_reference, current, plan, reference_rows=profile.row_count, day=day)


@pytest.fixture(scope="module")
def clean_day(rows):
    return rows.iloc[20_000:25_000].reset_index(drop=True)


@pytest.fixture(scope="module")
def older_day(clean_day):
    return clean_day.assign(age=clean_day["age"] + 10)


@pytest.fixture(scope="module")
def clean(profile, clean_day, plan):
    return run(profile, clean_day, plan)


@pytest.fixture(scope="module")
def html_file(tmp_path_factory):
    return tmp_path_factory.mktemp("drift") / "nested" / "dir" / "drift.html"


@pytest.fixture(scope="module")
def shifted(profile, older_day, plan, html_file):
    result = run(profile, older_day, plan)
    drift.write_report(result, profile.sample, plan, str(html_file))
    return result


def evidently(ref: pd.DataFrame, cur: pd.DataFrame, plan, methods=None, thresholds=None) -> dict:
    """Evidently's own per-column result on the same rows (all of them, no sampling)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    score = plan.data.predictions.score
    protected = [c for c in plan.protected_attributes if c not in plan.features.model_inputs]
    cols = [*plan.features.model_inputs, score, *protected]
    definition = DataDefinition(
        numerical_columns=[*plan.features.numerical, score],
        categorical_columns=[*plan.features.categorical, *protected],
    )
    report = Report(
        [
            DataDriftPreset(
                columns=plan.features.model_inputs, per_column_method=methods, per_column_threshold=thresholds
            ),
            ValueDrift(column=score),
            *[ValueDrift(column=c) for c in protected],
        ],
        include_tests=True,
    )
    with warnings.catch_warnings():  # Evidently's chi-square divides by a zero expected count
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(
            Dataset.from_pandas(cur[cols], data_definition=definition),
            Dataset.from_pandas(ref[cols], data_definition=definition),
        )
    return drift_report.per_column(snapshot.dict())


def assert_equals_evidently(result, theirs: dict) -> None:
    mine = by_column(result)
    assert set(mine) == set(theirs)
    for col, f in mine.items():
        ev = theirs[col]
        assert (f.method, f.threshold, f.drifted) == (ev.method, ev.threshold, ev.drifted), col
        assert math.isclose(f.score, ev.score, rel_tol=1e-9, abs_tol=0.0), (col, f.score, ev.score)


def by_column(result) -> dict:
    return {f.column: f for f in [*result.features, result.prediction, *result.protected]}


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
    assert (clean.reference_rows, clean.current_rows, clean.evaluated_rows) == (
        len(ref),
        len(clean_day),
        len(clean_day),
    )
    for f in clean.features:
        assert f.threshold == 0.1 and 0 <= f.score < f.threshold, f
    assert clean.small_reference == [] and clean.unjudged_segments() == frozenset()


def test_default_methods_with_large_reference(clean, plan):
    methods = {f.column: f.method for f in clean.features}
    assert methods == {
        **{c: "wasserstein" for c in plan.features.numerical},
        **{c: "jensenshannon" for c in plan.features.categorical},
    }
    assert clean.prediction.method == "wasserstein"
    assert [(f.column, f.method) for f in clean.protected] == [("sex", "jensenshannon"), ("race", "jensenshannon")]


def test_clean_scores_equal_scipy_on_the_whole_reference(clean, ref, clean_day, plan):
    got = by_column(clean)
    for col in [*plan.features.numerical, plan.data.predictions.score]:
        assert got[col].score == pytest.approx(wasserstein_normed(ref[col], clean_day[col]), rel=0, abs=1e-9), col
    for col in [*plan.features.categorical, "sex", "race"]:
        assert got[col].score == pytest.approx(js_distance(ref[col], clean_day[col]), rel=0, abs=1e-12), col


def test_clean_day_equals_evidentlys_own_output(clean, ref, clean_day, plan):
    assert_equals_evidently(clean, evidently(ref, clean_day, plan))


# --------------------------------------------------------------------------------------------------------
# age + 10 years


def test_older_population_drifts_on_age_only(shifted, plan):
    assert [f.column for f in shifted.drifted] == ["age"]
    assert shifted.share == len(shifted.drifted) / len(shifted.features) == 1 / len(plan.features.model_inputs)
    assert not shifted.prediction.drifted  # scores were not recomputed for the older rows


def test_shifted_day_equals_evidentlys_own_output(shifted, ref, older_day, plan):
    assert_equals_evidently(shifted, evidently(ref, older_day, plan))


def test_wasserstein_norm_is_population_std(shifted, ref, older_day):
    """The 1e-9 match above is discriminating: normalising by the sample std (ddof=1) is off by ~2e-5 here."""
    score = by_column(shifted)["age"].score
    assert score == pytest.approx(wasserstein_normed(ref["age"], older_day["age"]), rel=0, abs=1e-12)
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
        features=[
            f("a", "wasserstein", 0.1, 0.05, False),
            f("b", "ks", 0.05, 1e-12, True),
            f("c", "jensenshannon", 0.1, 0.35, True),
            f("d", "ks", 0.05, 0.5, False),
            f("e", "ks", 0.05, 0.06, False),
            # a tie at the boundary: chi-square drifts on p < threshold, wasserstein on score >= threshold
            f("g", "chisquare", 0.05, 0.05, False),
            f("h", "wasserstein", 0.1, 0.1, True),
        ],
        prediction=f("score", "wasserstein", 0.1, 0.0, False),
        current_rows=1,
        evaluated_rows=1,
        reference_rows=1,
    )
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
    protected = {m.segment: m.value for m in ms if m.metric == "protected_drift_score"}
    assert protected == {f.column: f.score for f in shifted.protected} and set(protected) == {"sex", "race"}


# --------------------------------------------------------------------------------------------------------
# the HTML report: Evidently on a seeded sample


def test_html_report_to_local_path(shifted, html_file):
    assert html_file.exists()
    html = html_file.read_text()
    assert len(html.encode()) > 100_000
    assert "Value Drift for column age" in html
    assert "Drift is detected for 9.091% of columns (1 out of 11)." in html


def test_report_sample_is_seeded_and_every_figure_uses_all_rows(profile, rows, plan, monkeypatch):
    monkeypatch.setattr(drift_report, "REPORT_ROWS", 1500)
    day = rows.iloc[25_000:29_000].reset_index(drop=True)
    result = run(profile, day, plan)
    assert (result.current_rows, result.evaluated_rows, result.report_rows) == (4000, 4000, 1500)
    again = run(profile, day, plan)
    pd.testing.assert_frame_equal(result.report_sample, again.report_sample)
    positions = np.sort(np.random.default_rng(drift_report.REPORT_SEED).choice(4000, 1500, replace=False))
    assert result.report_sample["age"].tolist() == day["age"].iloc[positions].tolist()
    got = by_column(result)["hours_per_week"].score
    assert got == pytest.approx(
        wasserstein_normed(profile.sample["hours_per_week"], day["hours_per_week"]), rel=0, abs=1e-12
    )
    sampled = wasserstein_normed(profile.sample["hours_per_week"], day["hours_per_week"].iloc[positions])
    assert abs(got - sampled) > 1e-6  # the sample would have given another figure


@pytest.fixture(scope="module")
def small(rows, plan):
    """A 800-row reference (<= 1000: p-value tests) against 2,000 rows aged by 10 years; HTML to memory://."""
    ref_small = rows.iloc[30_000:30_800].reset_index(drop=True)
    cur = rows.iloc[31_000:33_000].reset_index(drop=True)
    cur = cur.assign(age=cur["age"] + 10)
    prof = profiling.build_profile(ref_small, plan, "1")
    result = run(prof, cur, plan)
    try:
        with warnings.catch_warnings():  # Evidently's chi-square divides by a zero expected count (see below)
            warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
            shown = drift.write_report(result, prof.sample, plan, MEMORY_URL)
        with fsspec.open(MEMORY_URL, "rb") as f:
            html = f.read()
    finally:
        fs = fsspec.filesystem("memory")
        if fs.exists("/drift-tests"):
            fs.rm("/drift-tests", recursive=True)
    return ref_small, cur, result, html, shown


def test_html_report_to_memory_url(small):
    *_, html, shown = small
    assert len(html) > 100_000 and shown == 800
    assert b"Value Drift for column age" in html


# --------------------------------------------------------------------------------------------------------
# small reference: p-value tests, measured exactly, not judged


def test_small_reference_equals_evidentlys_own_output(small, plan):
    ref_small, cur, result, *_ = small
    assert result.reference_rows == 800
    assert_equals_evidently(result, evidently(ref_small, cur, plan))


def test_small_reference_uses_ks_with_scipy_p_values(small, plan):
    ref_small, cur, result, *_ = small
    got = by_column(result)
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
    ref_small, cur, result, *_ = small
    got = by_column(result)
    for col in plan.features.categorical:
        assert got[col].method == "chisquare" and got[col].threshold == 0.05, col
        p = chi_square_p(ref_small[col], cur[col])
        assert got[col].score == pytest.approx(p, rel=1e-9, abs=1e-300), col
        assert got[col].drifted == (p < 0.05), col
    unseen = set(cur["education"].dropna()) - set(ref_small["education"].dropna())
    assert unseen and got["education"].score == 0.0 and got["education"].drifted


def test_clean_small_reference_flags_unseen_categories_but_is_not_judged(rows, plan):
    """The default for small references: measured exactly as Evidently (a clean day flags workclass and
    native_country: categories the 800 rows lack), but stored with status unknown, so nothing pages."""
    prof = profiling.build_profile(rows.iloc[30_000:30_800].reset_index(drop=True), plan, "1")
    clean_cur = rows.iloc[31_000:33_000].reset_index(drop=True)
    result = run(prof, clean_cur, plan)
    assert {"workclass", "native_country"} <= {f.column for f in result.drifted}
    assert by_column(result)["native_country"].score == 0.0
    inputs = [*plan.features.model_inputs, plan.data.predictions.score, "sex", "race"]
    assert sorted(result.small_reference) == sorted(drift.small_reference_columns(plan, prof.drift_reference))
    assert sorted(result.small_reference) == sorted(inputs)
    segments = result.unjudged_segments()
    assert segments == frozenset({"", *inputs})
    assert all(m.segment in segments for m in result.metrics())
    # a plan-chosen test is the team's decision: judged (and the share stays unjudged while others are small)
    chosen = plan.model_copy(
        update={
            "drift": DriftSettings(columns={"native_country": ColumnDriftTest(method="jensenshannon", threshold=0.1)})
        }
    )
    judged = run(prof, clean_cur, chosen)
    assert "native_country" not in judged.unjudged_segments() and "" in judged.unjudged_segments()


def test_small_reference_top_ranks_smallest_p_value_first(small):
    _, _, result, *_ = small
    top = result.top(len(result.features))
    n_drifted = len(result.drifted)
    assert n_drifted >= 2 and all(f.drifted for f in top[:n_drifted]) and not any(f.drifted for f in top[n_drifted:])
    for part in (top[:n_drifted], top[n_drifted:]):  # all p-value tests here: ascending p within each part
        p_values = [max(f.score, 1e-300) for f in part]
        assert p_values == sorted(p_values)


# --------------------------------------------------------------------------------------------------------
# the plan's per-column tests


PLAN_TESTS = {
    "age": ("psi", 0.2),
    "hours_per_week": ("ks", 0.01),
    "capital_gain": ("kl_div", 0.05),
    "education_num": ("hellinger", 0.1),
    "capital_loss": ("jensenshannon", 0.05),
    "workclass": ("hellinger", 0.05),
    "education": ("psi", 0.1),
    "marital_status": ("z", 0.05),
    "occupation": ("chisquare", 0.01),
    "relationship": ("kl_div", 0.1),
    "native_country": ("wasserstein", 0.1),
}


def plan_with(plan, tests: dict):
    return plan.model_copy(
        update={
            "drift": DriftSettings(columns={c: ColumnDriftTest(method=m, threshold=t) for c, (m, t) in tests.items()})
        }
    )


@pytest.mark.parametrize("reference_rows", [20_000, 900])
def test_the_plans_per_column_tests_equal_evidentlys(rows, older_day, plan, reference_rows):
    tests = {c: v for c, v in PLAN_TESTS.items() if c != "native_country"}
    chosen = plan_with(plan, tests)
    ref = rows.iloc[:reference_rows].reset_index(drop=True)
    result = run(profiling.build_profile(ref, chosen, "1"), older_day, chosen)
    got = by_column(result)
    assert {c: (got[c].method, got[c].threshold) for c in tests} == tests
    assert_equals_evidently(
        result,
        evidently(
            ref,
            older_day,
            plan,
            methods={c: m for c, (m, _) in tests.items()},
            thresholds={c: t for c, (_, t) in tests.items()},
        ),
    )
    assert got["age"].drifted == (got["age"].score >= 0.2)  # distance: drift at or above
    assert got["hours_per_week"].drifted == (got["hours_per_week"].score <= 0.01)  # ks: p at or below


def test_a_method_not_computed_on_all_rows_is_refused_naming_model_column_and_method(ref, plan):
    for method, problem in [("anderson", "not computed on all rows"), ("TVD", "not computed on all rows")]:
        with pytest.raises(
            PlanError,
            match=rf"model adult_income: drift.columns.age.method: column 'age': "
            rf"method '{method}' is {problem}",
        ):
            profiling.build_profile(ref, plan_with(plan, {"age": (method, 0.1)}), "1")
    with pytest.raises(
        PlanError,
        match="drift.columns.native_country.method: column 'native_country': method "
        "'wasserstein' applies to numerical columns, not categorical ones",
    ):
        drift.check_plan_methods(plan_with(plan, PLAN_TESTS))


# --------------------------------------------------------------------------------------------------------
# bad days: errors name model, day and column


def test_a_feature_missing_from_the_day_names_model_day_and_column(profile, clean_day, plan):
    with pytest.raises(DataSourceError, match=r"model adult_income, day 2026-01-05: column 'occupation' is missing"):
        run(profile, clean_day.drop(columns=["occupation"]), plan)


def test_a_protected_attribute_missing_from_the_day_is_reported(profile, clean_day, plan):
    result = run(profile, clean_day.drop(columns=["race"]), plan)
    assert result.protected_missing == ["race"] and [f.column for f in result.protected] == ["sex"]


def test_a_changed_type_names_model_day_and_column(profile, clean_day, plan):
    as_text = clean_day.assign(age=clean_day["age"].astype(str))
    with pytest.raises(
        DataSourceError,
        match=r"model adult_income, day 2026-01-05: drift of column 'age': "
        r"column 'age' in the current data should be numerical",
    ):
        run(profile, as_text, plan)
    codes = clean_day.assign(workclass=clean_day["workclass"].astype("category").cat.codes)
    with pytest.raises(
        DataSourceError,
        match=r"day 2026-01-05: drift of column 'workclass': .*the current values "
        r"are number but the reference's are text \(type changed\)",
    ):
        run(profile, codes, plan)


def test_an_empty_day_or_an_all_null_column_names_model_and_day(profile, clean_day, plan):
    with pytest.raises(DataSourceError, match=r"model adult_income, day 2026-01-05: the day has no rows"):
        run(profile, clean_day.iloc[:0], plan)
    with pytest.raises(
        DataSourceError,
        match=r"day 2026-01-05: drift of column 'education': column 'education': "
        r"no non-null values in the current data",
    ):
        run(profile, clean_day.assign(education=None), plan)
